"""What a method provides to the iteration engine (srlm.runner), and the method registry.

A method names the stages of its rollout phase; the runner runs each unfinished one in order
and then trains on :meth:`Method.training_examples`. Stages read the files earlier stages
wrote and write their own (atomically), so any stage can be rerun on its own. A method never
calls back into the runner: what it needs scheduled (a warm start, and from what data) it
declares, and the runner schedules it.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from srlm.config import Config, MethodConfig, SamplingConfig
from srlm.errors import ConfigError
from srlm.rollout.base import RolloutEngine, format_prompt, set_prompt_format
from srlm.rundir import RunDir
from srlm.training.data import Example, Group
from srlm.training.selection import Validation

# Stages call this for the engine serving M_t; it starts on first use, so a stage that needs
# no model (pair selection) never pays for one.
EngineFn = Callable[[], RolloutEngine]


@dataclass(frozen=True)
class Needs:
    """What a method needs from the reward and optimizer axes; checked by srlm.compose.validate
    (srlm.rewards.base.check_combination) before any model loads.

    - ``rewards``: the reward kinds the method can turn into pairs: pointwise, pairwise
      (scores from comparisons within a prompt's group), verifiable (needs gold answers).
    - ``self_judge``: the judge must be the policy itself (a method that trains its judge).
    - ``losses``: the optimizer losses that fit the pairs the method makes (None: every loss
      registered in srlm.core.losses).
    - ``why`` / ``loss_why``: what the method does with them, for the refusal message.
    """

    rewards: tuple[str, ...]
    why: str
    self_judge: bool = False
    losses: tuple[str, ...] | None = None
    loss_why: str = ""


class Method:
    name: str = ""
    # The method's config schema (a srlm.config.MethodConfig subclass), set by @register_method.
    schema: type[MethodConfig] = MethodConfig
    rollout_stages: tuple[str, ...] = ()
    needs: Needs = Needs(
        rewards=("pointwise", "pairwise"), why="it ranks each prompt's responses by score"
    )
    # The supervised warm start before iteration 1, run when method.warm_start.enabled:
    # "seed": from seed data alone (Self-Rewarding's M0 -> M1), before anything else;
    # "first_rollout": from what iteration 1's rollout stages write on M_0 (EvalPlanner's
    # M1^SFT): the runner first evaluates M_0 and runs those stages, then the warm start, and
    # iteration 1 trains from its checkpoint on the pairs M_0 sampled.
    warm_start_from: str = "seed"

    @classmethod
    def check_config(cls, config: Config) -> None:
        """Checks of this method's settings against other groups (srlm.compose.validate)."""

    def __init__(self, config: Config, run: RunDir):
        self.config = config
        self.run = run

    def prompt_tokenizer(self, tokenizer):
        """The trainer's tokenizer, marked with the policy's model.prompt_format, so that the
        examples' prompts are the ones the policy was sampled with (the rollout engine marks
        its own tokenizer the same way)."""
        return set_prompt_format(tokenizer, self.config.model.prompt_format)

    def warm_start_examples(self, tokenizer) -> list[Example]:
        """Supervised examples for an optional warm start before iteration 1."""
        return []

    def run_stage(self, stage: str, t: int, engine: EngineFn) -> dict:
        """Run one rollout-phase stage of iteration t; return its statistics."""
        raise NotImplementedError

    def training_examples(self, t: int, tokenizer) -> list[Example]:
        raise NotImplementedError

    # Methods whose rollout scores every sample of a prompt's group on its own (set
    # `trains_groups` and implement training_groups()) can also train with a group loss
    # (optimizer=grpo), on the groups instead of the pairs made from them.
    trains_groups: bool = False

    def training_groups(self, t: int, tokenizer) -> list[Group]:
        """Iteration t's prompts, each with its sampled responses and their rewards."""
        raise NotImplementedError

    # Methods that can train online or semi-online (trainer.sync_every >= 1, srlm.training.online)
    # set `trains_online` and implement the four hooks below.
    trains_online: bool = False

    def online_prompts(self) -> list[dict]:
        """The rows the online regimes draw each step's prompts from (in a seeded order)."""
        raise NotImplementedError

    def online_prompt(self, tokenizer, row: dict) -> str:
        """The text the policy answers for `row`, a row of online_prompts()."""
        raise NotImplementedError

    def online_sampling(self) -> tuple[SamplingConfig, int]:
        """How each online step samples the policy, and how many samples per prompt."""
        raise NotImplementedError

    def online_examples(
        self, t: int, questions: list[dict], outs, engine: EngineFn, tokenizer, grouped: bool
    ) -> tuple[list, dict]:
        """One online step's training data from `outs`, the engine's samples for `questions`
        (rows of online_prompts): groups (`grouped`, a group loss) or pairs made by the
        method's own rule; and the step's reward statistics."""
        raise NotImplementedError

    # Methods that measure their model (held-out accuracy, judge accuracy) set this and
    # implement evaluate(); the runner calls it on M_0 (as iteration 0) and after each
    # iteration's training, on the model that iteration produced.
    evaluates: bool = False

    def evaluate(self, t: int, engine: EngineFn) -> dict:
        """Metrics of the model after iteration t (t = 0: the starting model)."""
        return {}

    # Methods with a validation set (set `validates` and implement validation()) can select
    # each iteration's checkpoint on it: method.select_checkpoints, srlm.training.selection.
    validates: bool = False

    def validation(self, t: int, tokenizer) -> Validation:
        """Prompts the trainer answers greedily at each candidate checkpoint of iteration t's
        training, and how an answer is scored; held out from training and from evaluation."""
        raise NotImplementedError

    # The shared evaluate stage (srlm/eval) measures, unless eval.win_rates / eval.judge_accuracy
    # say otherwise: win rates of answers for methods that train instruction following, and
    # the policy's judging on labelled pairs when the policy is the run's judge.
    eval_win_rates: bool = True
    eval_judge_accuracy: bool = True
    # Whether a System-2 decoder (inference=..., srlm/inference) may write the answers whose
    # win rates are measured, and why not when it may not.
    eval_decoders: bool = True
    eval_decoders_why: str = ""
    # Methods with held-out questions and gold answers (set `has_eval_questions`, implement
    # eval_questions()) compare the run's decoder with direct on them unless eval.questions
    # names others; a method that distils a decoder into the model (`distils`) always does.
    has_eval_questions: bool = False
    distils: bool = False

    def eval_questions(self):
        """The method's held-out questions (srlm.inference.questions.QuestionSet), or None."""
        return None

    def eval_answers(
        self, conversations: list[list[dict]], engine: EngineFn, sampling
    ) -> list[dict]:
        """The model's answers to held-out conversations (each ends with a user turn), as a user
        of the method's model would get them: {"response": str | None, "response_tokens": int,
        ...}. None: the model gave no usable answer."""
        eng = engine()
        prompts = [format_prompt(eng.tokenizer, c) for c in conversations]
        outs = eng.generate(prompts, sampling, n=1, desc="evaluate: answers")
        return [
            {
                "response": c.text.strip(),
                "response_tokens": c.num_tokens,
                "finish_reason": c.finish_reason,
            }
            for [c] in outs
        ]


# ---------------------------------------------------------------- registry
_METHODS: dict[str, type[Method]] = {}


def group_by(rows, key: str) -> dict:
    """Rows grouped by the value of `key`, groups in order of first appearance and rows in
    their order within each."""
    groups: dict = {}
    for r in rows:
        groups.setdefault(r[key], []).append(r)
    return groups


def sample_rows(prompts: list[dict], outs, fields, text: str = "response") -> list[list[dict]]:
    """One row per sample of an online step, grouped by prompt: `fields(prompt row)`, then the
    sample's index, its text (under the key `text`), token count and finish reason."""
    return [
        [
            fields(p)
            | {
                "sample": j,
                text: c.text.strip(),
                "tokens": c.num_tokens,
                "finish_reason": c.finish_reason,
            }
            for j, c in enumerate(cs)
        ]
        for p, cs in zip(prompts, outs, strict=True)
    ]


def register_method(name: str, schema: type[MethodConfig]):
    """Class decorator: make a Method the implementation of ``method=<name>``, configured by
    ``schema`` (its ``conf/method/<name>.yaml`` starts from ``/schema/method/<name>@_here_``)."""

    def wrap(cls: type[Method]) -> type[Method]:
        if cls.warm_start_from not in ("seed", "first_rollout"):
            raise TypeError(
                f"{cls.__name__}.warm_start_from={cls.warm_start_from!r}: seed or first_rollout"
            )
        cls.name, cls.schema = name, schema
        _METHODS[name] = cls
        return cls

    return wrap


def _load_method_modules() -> None:
    """Import every module of srlm.methods, so that each registers its method."""
    for info in pkgutil.iter_modules([str(Path(__file__).parent)]):
        importlib.import_module(f"srlm.methods.{info.name}")


def method_names() -> list[str]:
    _load_method_modules()
    return list(_METHODS)


def get_method(name: str) -> type[Method]:
    """The Method class registered as ``method=<name>``."""
    if name not in _METHODS:
        _load_method_modules()
    if name not in _METHODS:
        raise ConfigError(
            f"method={name}: no method is registered under this name; known: {', '.join(_METHODS)}"
        )
    return _METHODS[name]
