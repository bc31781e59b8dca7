"""What a method provides to the iteration engine (srlm.runner).

A method names the stages of its rollout phase; the runner runs each unfinished one in order
and then trains on :meth:`Method.training_examples`. Stages read the files earlier stages
wrote and write their own (atomically), so any stage can be rerun on its own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from srlm.config import Config
from srlm.rollout.base import RolloutEngine
from srlm.rundir import RunDir
from srlm.training.data import Example

# Stages call this for the engine serving M_t; it starts on first use, so a stage that needs
# no model (pair selection) never pays for one.
EngineFn = Callable[[], RolloutEngine]

ALL_LOSSES = ("dpo", "ipo", "dpo_nll", "simpo", "sft")


@dataclass(frozen=True)
class Needs:
    """What a method needs from the reward and optimizer axes; checked by srlm.config.validate
    (srlm.rewards.base.check_combination) before any model loads.

    - ``rewards``: the reward kinds the method can turn into pairs: pointwise, pairwise
      (scores from comparisons within a prompt's group), verifiable (needs gold answers).
    - ``self_judge``: the judge must be the policy itself (a method that trains its judge).
    - ``losses``: the optimizer losses that fit the pairs the method makes.
    - ``why`` / ``loss_why``: what the method does with them, for the refusal message.
    """

    rewards: tuple[str, ...]
    why: str
    self_judge: bool = False
    losses: tuple[str, ...] = ALL_LOSSES
    loss_why: str = ""


class Method:
    name: str = ""
    rollout_stages: tuple[str, ...] = ()
    needs: Needs = Needs(
        rewards=("pointwise", "pairwise"), why="it ranks each prompt's responses by score"
    )

    def __init__(self, config: Config, run: RunDir):
        self.config = config
        self.run = run

    def warm_start_examples(self, tokenizer) -> list[Example]:
        """Supervised examples for an optional warm start before iteration 1."""
        return []

    def run_stage(self, stage: str, t: int, engine: EngineFn) -> dict:
        """Run one rollout-phase stage of iteration t; return its statistics."""
        raise NotImplementedError

    def training_examples(self, t: int, tokenizer) -> list[Example]:
        raise NotImplementedError

    # Methods that measure their model (held-out accuracy, judge accuracy) set this and
    # implement evaluate(); the runner calls it on M_0 (as iteration 0) and after each
    # iteration's training, on the model that iteration produced.
    evaluates: bool = False

    def evaluate(self, t: int, engine: EngineFn) -> dict:
        """Metrics of the model after iteration t (t = 0: the starting model)."""
        return {}

    # The shared evaluate stage (srlm/eval) measures, unless eval.win_rates / eval.judge_accuracy
    # say otherwise: win rates of answers for methods that train instruction following, and
    # the policy's judging on labelled pairs when the policy is the run's judge.
    eval_win_rates: bool = True
    eval_judge_accuracy: bool = True

    def eval_answers(
        self, conversations: list[list[dict]], engine: EngineFn, sampling
    ) -> list[dict]:
        """The model's answers to held-out conversations (each ends with a user turn), as a user
        of the method's model would get them: {"response": str | None, "response_tokens": int,
        ...}. None: the model gave no usable answer."""
        eng = engine()
        prompts = [
            eng.tokenizer.apply_chat_template(c, tokenize=False, add_generation_prompt=True)
            for c in conversations
        ]
        outs = eng.generate(prompts, sampling, n=1, desc="evaluate: answers")
        return [
            {
                "response": c.text.strip(),
                "response_tokens": c.num_tokens,
                "finish_reason": c.finish_reason,
            }
            for [c] in outs
        ]
