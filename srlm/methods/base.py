"""What a method provides to the iteration engine (srlm.runner).

A method names the stages of its rollout phase; the runner runs each unfinished one in order
and then trains on :meth:`Method.training_examples`. Stages read the files earlier stages
wrote and write their own (atomically), so any stage can be rerun on its own.
"""

from __future__ import annotations

from collections.abc import Callable

from srlm.config import Config
from srlm.rollout.base import RolloutEngine
from srlm.rundir import RunDir
from srlm.training.data import Example

# Stages call this for the engine serving M_t; it starts on first use, so a stage that needs
# no model (pair selection) never pays for one.
EngineFn = Callable[[], RolloutEngine]


class Method:
    name: str = ""
    rollout_stages: tuple[str, ...] = ()

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
