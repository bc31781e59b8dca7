"""Which engine a rollout config gets: one vLLM or transformers engine, or data-parallel
replicas of one (srlm/rollout/replicas.py)."""

from __future__ import annotations

from srlm.config import ModelConfig, RolloutConfig
from srlm.rollout.base import RolloutEngine, set_prompt_format


def make_engine(
    model_dir: str, model: ModelConfig, rollout: RolloutConfig, sleep: bool = False
) -> RolloutEngine:
    """The rollout engine for `model_dir`; `sleep`: it may sleep between uses (rollout.sleep)."""
    if rollout.data_parallel_size > 1:
        from srlm.rollout.replicas import ReplicatedEngine

        # Each replica's process starts a single engine of its own (and checks its own weights).
        engine: RolloutEngine = ReplicatedEngine(model_dir, model, rollout, single_engine)
    else:
        engine = single_engine(model_dir, model, rollout, sleep)
    # Stages format prompts with the engine's tokenizer: it carries its model's prompt format.
    set_prompt_format(engine.tokenizer, model.prompt_format)
    return engine


def single_engine(
    model_dir: str, model: ModelConfig, rollout: RolloutConfig, sleep: bool = False
) -> RolloutEngine:
    # Engines are imported on use: vLLM is optional, and each engine's import costs seconds.
    if rollout.engine == "vllm":
        from srlm.rollout.vllm_engine import VllmEngine

        engine: RolloutEngine = VllmEngine(model_dir, model, rollout, sleep)
    else:
        from srlm.rollout.hf_engine import HfEngine

        engine = HfEngine(model_dir, model, rollout)
    if rollout.check_weights:
        engine.check_weights(model_dir, rollout.check_weights_tolerance)
    return engine
