"""Rollout: one interface (srlm/rollout/base.py), two engines (vLLM and transformers generate),
data-parallel replicas of either; ``make_engine`` (srlm/rollout/engines.py) picks one."""

from __future__ import annotations

from srlm.rollout.base import Completion, RolloutEngine, chat_prompt

__all__ = ["Completion", "RolloutEngine", "chat_prompt"]
