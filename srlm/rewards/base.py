"""The one interface between methods and reward sources.

A method hands a source the responses it wants scored, grouped by prompt (a pairwise judge
needs the whole group to compare its samples; a pointwise judge scores each on its own), and
gets back one :class:`Scored` per response plus the source's health statistics:

    reward = get_reward(config)                        # in the method's __init__: no model loads
    result = reward.score([[Item(q, r1), Item(q, r2)], ...], engine)   # in a stage
    result.scored[g][i].score    # float, or None when the source could not score it
    result.scored[g][i].record   # raw judge texts, parsed values ... (stored next to the response)
    result.health                # parse-failure rate, tie rate, (pairwise) order-flip rate ...

``engine`` is the stage's EngineFn for the policy M_t; a source that judges with the policy
calls it, one with its own model (judge_model, a separate pairwise judge, a reward model) never
does, so the policy's engine need not start for it.

Sources have a ``kind``:

- ``pointwise``: a score per response from the response alone (a judge's rubric score, a
  reward model's scalar);
- ``pairwise``: scores from comparisons between a prompt's responses (Elo over the group);
  only differences within a group mean anything;
- ``verifiable``: 1 or 0 from a rule that checks the response against a gold answer
  (``Item.gold``);
- ``verdict``: 1 or 0 from a judgement's verdict against the label (``Item.gold``: A or B) of
  the answer known to be better.

Methods declare which kinds they can use (:class:`srlm.methods.base.Needs`);
:func:`check_combination` refuses a method x reward x optimizer that cannot work, at start.
"""

from __future__ import annotations

import importlib
import pkgutil
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from srlm.config import SAME_ROLLOUT, RewardConfig, RolloutConfig
from srlm.core.parsing import cut_off
from srlm.core.stats import mean
from srlm.errors import ConfigError
from srlm.models import resolve_model_dir
from srlm.rollout.engines import make_engine

KINDS = ("pointwise", "pairwise", "verifiable", "verdict")


@dataclass
class Item:
    """One response to score: the instruction it answers, the response, and a gold answer if any.

    ``finish_reason`` is how the response's generation ended ("stop" | "length"), for a source
    whose responses are themselves judgements (``verdict``): one cut at max_tokens has no
    verdict. Sources that judge the response ignore it.
    """

    instruction: str
    response: str
    gold: str | None = None
    finish_reason: str | None = None


@dataclass
class Scored:
    """The score of one response (None: no usable judgement; never a made-up value) and what
    the source wants stored next to it (raw judge texts, parsed values)."""

    score: float | None
    record: dict[str, Any] = field(default_factory=dict)


@dataclass
class Scores:
    scored: list[list[Scored]]
    health: dict[str, Any]


class RewardSource(ABC):
    """A reward option. Subclasses set ``kind`` and implement :meth:`score`.

    The constructor must be cheap (it runs in the parent process before any model loads);
    models are loaded on first use and released by :meth:`close`.
    """

    name: ClassVar[str] = ""
    schema: ClassVar[type[RewardConfig]] = RewardConfig
    kind: ClassVar[str] = ""
    # Whether this source can judge with the policy itself (needed by methods that train their
    # own judge, e.g. meta_reward); see also judged_by_policy().
    can_judge_with_policy: ClassVar[bool] = False

    def __init__(self, config, run_config=None):
        self.config = config
        self.run_config = run_config

    @classmethod
    def judged_by_policy(cls, config) -> bool:
        """Whether, with this config, the policy being trained is the judge."""
        return cls.can_judge_with_policy

    @abstractmethod
    def score(self, groups: list[list[Item]], engine: Callable) -> Scores:
        """Score every response of every group; ``engine()`` gives the policy's rollout engine."""

    def close(self) -> None:  # noqa: B027 (optional: most sources hold no model)
        """Release any model this source loaded."""


def release_policy(policy: Callable | None) -> None:
    """Close the policy's engine if the stage's EngineFn holds one (srlm.runner.PolicyEngine)."""
    release = getattr(policy, "release", None)
    if release is not None:
        release()


def judge_rollout(reward: RewardConfig, run_rollout: RolloutConfig | None) -> RolloutConfig:
    """The rollout settings of a reward source's own engine: its own, or the run's."""
    own = getattr(reward, "rollout", None)
    if own is not None and own.engine != SAME_ROLLOUT:
        return own
    return run_rollout if run_rollout is not None else RolloutConfig(engine="hf")


class OwnEngine:
    """The rollout engine of a judge that is not the policy: its own model, fixed for the run,
    started on first use (the weights never change, so nothing is reloaded between stages)."""

    def __init__(self, model, rollout):
        self.model, self.rollout = model, rollout
        self.engine = None

    def __call__(self, policy: Callable | None = None):
        """The judge's engine. ``policy`` is the stage's EngineFn: its engine is released
        first, so that on one accelerator the policy's and the judge's engines never hold
        memory at the same time (the policy restarts lazily if a later stage needs it)."""
        release_policy(policy)
        if self.engine is None:
            self.engine = make_engine(
                resolve_model_dir(self.model.source, self.model.path), self.model, self.rollout
            )
        return self.engine

    def close(self) -> None:
        if self.engine is not None:
            self.engine.close()
            self.engine = None


# ---------------------------------------------------------------- registry
_SOURCES: dict[str, type[RewardSource]] = {}


def register_reward(name: str, schema: type[RewardConfig]):
    """Class decorator: make a RewardSource the implementation of ``reward=<name>``, configured
    by ``schema`` (a srlm.config.RewardConfig subclass, in srlm/config.py or the source's own
    module; ``conf/reward/<name>.yaml`` starts from ``/schema/reward/<name>@_here_``)."""

    def wrap(cls: type[RewardSource]) -> type[RewardSource]:
        if cls.kind not in KINDS:
            raise TypeError(f"{cls.__name__}.kind={cls.kind!r}: must be one of {', '.join(KINDS)}")
        cls.name, cls.schema = name, schema
        _SOURCES[name] = cls
        return cls

    return wrap


def load_reward_modules() -> None:
    """Import every module of srlm.rewards, so that each registers its source."""
    for info in pkgutil.iter_modules([str(Path(__file__).parent)]):
        importlib.import_module(f"srlm.rewards.{info.name}")


def reward_class(name: str) -> type[RewardSource]:
    if name not in _SOURCES:
        load_reward_modules()
    if name not in _SOURCES:
        raise ConfigError(
            f"reward={name}: no reward source is registered under this name; "
            f"known: {', '.join(sorted(_SOURCES))}"
        )
    return _SOURCES[name]


def reward_names() -> list[str]:
    load_reward_modules()
    return sorted(_SOURCES)


def get_reward(config) -> RewardSource:
    """The reward source of a validated srlm.config.Config (cheap: nothing loads yet)."""
    return reward_class(config.reward.name)(config.reward, config)


# ---------------------------------------------------------------- composition rules
def fitting_rewards(needs) -> list[str]:
    """Reward options that give what a method needs (by kind, and a policy judge if required)."""
    out = []
    for name in reward_names():
        cls = _SOURCES[name]
        if cls.kind in needs.rewards and (not needs.self_judge or cls.can_judge_with_policy):
            out.append(name)
    return out


def check_combination(method: str, needs, reward_cfg, loss: str) -> None:
    """Refuse a method x reward x optimizer that cannot work; the message names both keys and
    lists the options that would."""
    cls = reward_class(reward_cfg.name)
    reward = reward_cfg.name
    fits = ", ".join(fitting_rewards(needs)) or "none"
    if cls.kind not in needs.rewards:
        raise ConfigError(
            f"method={method} with reward={reward}: reward={reward} gives {cls.kind} scores, but "
            f"{needs.why}; rewards that fit method={method}: {fits}"
        )
    if needs.self_judge and not cls.judged_by_policy(reward_cfg):
        raise ConfigError(
            f"method={method} with reward={reward}: {needs.why}, so the judge must be the policy "
            f"itself; rewards that fit method={method}: {fits}"
        )
    if needs.losses is not None and loss not in needs.losses:
        raise ConfigError(
            f"method={method} with optimizer={loss}: {needs.loss_why or 'this loss does not fit the method'}; "
            f"optimizers that fit method={method}: {', '.join(needs.losses)}"
        )


# ---------------------------------------------------------------- health statistics


def tie_rate(groups: Sequence[Sequence[float | None]]) -> float | None:
    """Share of groups with at least two scores whose scores are all equal: no preference.

    Groups with fewer than two scores are left out (there is nothing to tie). None when no
    group has two scores.
    """
    scored = [[s for s in g if s is not None] for g in groups]
    scored = [g for g in scored if len(g) >= 2]
    if not scored:
        return None
    return sum(max(g) - min(g) < 1e-9 for g in scored) / len(scored)


def judgement_health(
    per_judgement: Sequence[float | None],
    scored: list[list[Scored]],
    finish_reasons: Sequence[str | None] = (),
) -> dict:
    """The health keys every judge reports: judgements made, how many could not be read and how
    many of those were cut at max_tokens (``finish_reasons``: one per judgement; a cut
    judgement is unreadable, srlm.core.parsing), the responses left without a score, the mean
    score and the tie rate over groups."""
    failures = sum(x is None for x in per_judgement)
    flat = [s for g in scored for s in g]
    return {
        "judgements": len(per_judgement),
        "parse_failures": failures,
        "parse_failure_rate": failures / max(len(per_judgement), 1),
        "truncated_judgements": sum(cut_off(r) for r in finish_reasons),
        "unscored_responses": sum(s.score is None for s in flat),
        "mean_score": mean(s.score for s in flat),
        "tie_rate": tie_rate([[s.score for s in g] for g in scored]),
    }
