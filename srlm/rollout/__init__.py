"""Rollout: one interface, two engines (vLLM and transformers generate)."""

from __future__ import annotations

from srlm.config import ModelConfig, RolloutConfig
from srlm.rollout.base import Completion, RolloutEngine, chat_prompt

__all__ = ["Completion", "RolloutEngine", "chat_prompt", "make_engine"]


def make_engine(model_dir: str, model: ModelConfig, rollout: RolloutConfig) -> RolloutEngine:
    if rollout.data_parallel_size > 1:
        # Each replica is a make_engine of its own (and checks its own weights).
        from srlm.rollout.replicas import ReplicatedEngine

        return ReplicatedEngine(model_dir, model, rollout)
    if rollout.engine == "vllm":
        from srlm.rollout.vllm_engine import VllmEngine

        engine: RolloutEngine = VllmEngine(model_dir, model, rollout)
    else:
        from srlm.rollout.hf_engine import HfEngine

        engine = HfEngine(model_dir, model, rollout)
    if rollout.check_weights:
        engine.check_weights(model_dir, rollout.check_weights_tolerance)
    return engine
