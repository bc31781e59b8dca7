"""The pre-flight: every check that needs no model, run before anything loads or is written.

A mistake found after the warm start has trained costs the warm start; on a cluster, GPU hours.
So before the run directory is touched, srlm reads everything the run will read and checks
everything it can without a model:

    data       every data file of the method and of the evaluation, row by row with types
               (file:line), by building the method and the evaluation exactly as the phases will
    models     every model the run loads (the policy, a judge or reward model, the evaluation's
               judge) resolved to a directory or a cached hub snapshot, without loading it
    lengths    every generation budget (``*.max_tokens``) leaves room for a prompt within the
               model's max_length
    machine    (``here=True``) what depends on the machine the run executes on: GPUs for the
               trainer's accelerator and strategy, devices for vLLM's tensor x data parallel
               size, a writable model cache (SRLM_CACHE) and run directory

Every problem is reported at once (srlm.errors.Problems). A sweep checked where it is
submitted (a login node without GPUs) passes ``here=False``: its jobs check the machine
themselves when they start, inside the SLURM job.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any

from srlm.config import INITIAL, Config, ModelConfig, RolloutConfig
from srlm.errors import Problems, SrlmError, problems_of

# Fewest tokens a prompt needs beside a generation budget: below it a chat template alone
# fills the context and the prompt is cut to nothing.
MIN_PROMPT_TOKENS = 64


def preflight(config: Config, *, here: bool = True) -> None:
    """Raise Problems listing everything found wrong with `config` before any model loads."""
    problems = check_data(config) + check_models(config) + check_lengths(config)
    if here:
        problems += check_machine(config) + check_run_dir(config)
    if problems:
        raise Problems(problems)


def check(cfg, *, here: bool = True) -> Config:
    """validate() and preflight() of a composed config, every problem of both at once; the
    typed config when there is none."""
    from srlm.compose import validate

    try:
        return_config, problems = validate(cfg), []
    except Problems as e:
        if getattr(e, "config", None) is None:
            raise  # unknown names or keys: there is no typed config to look at further
        return_config, problems = e.config, e.problems
    try:
        preflight(return_config, here=here)
    except Problems as e:
        problems += e.problems
    except Exception:
        if not problems:
            raise
        # Tripped over a value validate() already reported: those lines say what to fix.
    if problems:
        raise Problems(problems)
    return return_config


def _errors(fn, *args) -> list[str]:
    try:
        fn(*args)
    except SrlmError as e:
        return problems_of(e)
    return []


# ---------------------------------------------------------------- data
def check_data(config: Config) -> list[str]:
    """Read every data file the run will read, as the phases will read it."""
    from srlm.eval.stage import Evaluation
    from srlm.methods import get_method
    from srlm.rundir import RunDir

    method = get_method(config.method.name)
    run = RunDir(config.run_dir or ".")
    problems = _errors(method, config, run)
    if method.evaluates or config.eval.enabled:
        # Evaluation reads only class-level facts of the method while it loads its data, so
        # the class stands in when the method's own data failed.
        problems += _errors(Evaluation, config, run, method)
    return problems


# ---------------------------------------------------------------- models
def walk(obj: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(key, value) of every field of a config tree, depth first."""
    if not is_dataclass(obj):
        return
    for f in fields(obj):
        value = getattr(obj, f.name)
        key = f"{prefix}{f.name}"
        yield key, value
        yield from walk(value, f"{key}.")


def models_of(config: Config) -> list[tuple[str, ModelConfig]]:
    """Every model config of the run that names weights to load: the policy, a fixed prompt
    writer, and a reward's or the evaluation's judge unless it is the policy itself or the run's
    starting model."""
    found = [("model", config.model)]
    for key, value in walk(config):
        if key != "model" and isinstance(value, ModelConfig):
            if not value.is_policy and value.source != INITIAL:
                found.append((key, value))
    return found


def check_models(config: Config) -> list[str]:
    from srlm.models import check_model
    from srlm.rollout.base import check_prompt_format

    problems = []
    for key, model in models_of(config):
        problems += _errors(check_model, key, model.source, model.path)
        problems += _errors(check_prompt_format, key, model)  # a base model needs plain
    return problems


# ---------------------------------------------------------------- lengths
def check_lengths(config: Config) -> list[str]:
    """A generation budget must leave a prompt room in the context of the model that generates:
    the policy's, a judge's own model when it has one, or a fixed prompt writer's."""
    problems = []
    for key, value in walk(config):
        if not (key.endswith(".max_tokens") or key.endswith("_max_tokens")):
            continue
        if not isinstance(value, int):
            continue
        model_key, model = _generating_model(config, key)
        room = model.max_length - MIN_PROMPT_TOKENS
        if value > room:
            problems.append(
                f"{key}={value} with {model_key}.max_length={model.max_length}: a generation "
                f"budget must leave at least {MIN_PROMPT_TOKENS} of the model's tokens for the "
                f"prompt; use {key}<={room} or a larger {model_key}.max_length"
            )
    return problems


def _generating_model(config: Config, key: str) -> tuple[str, ModelConfig]:
    writer = getattr(config.method, "prompt_writer", None)
    if key.startswith("method.prompt_sampling.") and isinstance(writer, ModelConfig):
        return "method.prompt_writer", writer
    for owner in ("reward", "eval.judge"):
        if key.startswith(owner + "."):
            node: Any = config
            for part in owner.split("."):
                node = getattr(node, part)
            own = getattr(node, "model", None)
            if isinstance(own, ModelConfig) and not own.is_policy and own.source != INITIAL:
                return f"{owner}.model", own
    return "model", config.model


# ---------------------------------------------------------------- machine
def check_machine(config: Config) -> list[str]:
    """What the machine the run executes on must have."""
    problems = []
    gpus = _gpu_count()
    t = config.trainer
    if t.accelerator in ("gpu", "cuda") and gpus == 0:
        problems.append(
            f"trainer.accelerator={t.accelerator}: this machine has no GPU that torch can use; "
            "choose trainer=cpu (or trainer=cpu_ddp for several CPU processes)"
        )
    elif t.accelerator in ("gpu", "cuda") and t.devices > gpus:
        problems.append(
            f"trainer.devices={t.devices}: this machine has {gpus} GPU(s); "
            f"use trainer.devices<={gpus}"
        )
    for key, value in walk(config):
        if isinstance(value, RolloutConfig):
            problems += _rollout_devices(key, value, gpus)
    problems += _cache_writable(config)
    if t.num_nodes > 1:
        from srlm.training.nodes import check_allocation

        problems += _errors(check_allocation, t.num_nodes)
    return problems


def _rollout_devices(key: str, r: RolloutConfig, gpus: int) -> list[str]:
    if r.engine == "vllm" and gpus == 0 and r.tensor_parallel_size > 1:
        return [
            f"{key}.tensor_parallel_size={r.tensor_parallel_size}: this machine has no GPU; "
            "vLLM on CPU runs one engine per replica (tensor_parallel_size=1); use "
            f"{key}.data_parallel_size to split prompts over several engines"
        ]
    need = r.tensor_parallel_size * r.data_parallel_size
    if r.engine == "vllm" and gpus and need > gpus:
        return [
            f"{key}.tensor_parallel_size={r.tensor_parallel_size} x {key}.data_parallel_size="
            f"{r.data_parallel_size} needs {need} GPUs; this machine has {gpus}"
        ]
    if r.keep_engine == "on" and gpus and r.engine == "vllm" and r.sleep == "off":
        # The kept engine would hold the GPU's memory through every train phase.
        return [kept_engine_needs_sleep(key, r.sleep)]
    if r.engine == "hf" and r.tensor_parallel_size > 1:
        return [
            f"{key}.tensor_parallel_size={r.tensor_parallel_size}: rollout=hf generates on one "
            "device; tensor parallelism is vLLM's (rollout=vllm)"
        ]
    return []


def kept_engine_needs_sleep(key: str, sleep: str) -> str:
    """Why a kept engine that cannot sleep is refused on a GPU (here, and at its start where
    vLLM's platform turns out to have no sleep mode)."""
    return (
        f"{key}.keep_engine=on on a GPU needs an engine that sleeps while the trainer trains, "
        f"and {key}.sleep={sleep} gives none: set {key}.sleep=auto, or {key}.keep_engine=auto "
        "or off"
    )


def _gpu_count() -> int:
    try:
        import torch
    except ImportError:
        return 0
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def _cache_writable(config: Config) -> list[str]:
    """The embedded model is converted once into SRLM_CACHE: that must be possible."""
    from srlm.models import EMBEDDED_PREFIX, cache_dir, embedded_converted

    embedded = [
        m.source[len(EMBEDDED_PREFIX) :]
        for _, m in models_of(config)
        if not m.path and m.source.startswith(EMBEDDED_PREFIX)
    ]
    if not embedded or all(embedded_converted(name) for name in embedded):
        return []
    where = cache_dir() / "models"
    reason = _unwritable(where)
    if reason is None:
        return []
    return [
        f"SRLM_CACHE={cache_dir()}: the embedded model is converted into {where} on first use, "
        f"but it cannot be written there ({reason}); point SRLM_CACHE at a writable directory"
    ]


# ---------------------------------------------------------------- run directory
def check_run_dir(config: Config) -> list[str]:
    if not config.run_dir:
        return ["run_dir is not set: pass run_dir=PATH"]
    root = Path(config.run_dir)
    if root.exists() and not root.is_dir():
        return [f"run_dir={config.run_dir}: a file, not a directory; choose another run_dir"]
    reason = _unwritable(root)
    if reason is not None:
        return [f"run_dir={config.run_dir}: cannot write there ({reason}); choose another run_dir"]
    from srlm.errors import RunDirError
    from srlm.rundir import RunDir

    try:
        replaces = RunDir(root).check_claim(config)
    except RunDirError as e:
        return [str(e)]
    return [] if replaces else check_records(root)  # a run being replaced is not read again


def check_records(root: Path) -> list[str]:
    """Read what a resumed run will read of its own records: every iteration's stages.json and
    the rows of every stage it records finished, so that a file broken since is named now."""
    from srlm.errors import RunDirError
    from srlm.rundir import RunDir

    run, problems = RunDir(root), []
    for stages_file in sorted(root.glob("iter_*/stages.json")):
        try:
            t = int(stages_file.parent.name.removeprefix("iter_"))
            for stage in run.stages(t):
                if run.stage_file(t, stage).exists():
                    run.read_rows(t, stage)
        except ValueError:
            continue  # not a directory srlm made
        except RunDirError as e:
            problems.append(str(e))
    return problems


def _unwritable(directory: Path) -> str | None:
    """Why nothing can be written in `directory` (None: it can). Tried, not read from the mode
    bits: root ignores them, and a read-only mount or a full disk shows only when writing."""
    existing = directory
    while not existing.exists():
        if existing.parent == existing:
            break
        existing = existing.parent
    if not existing.is_dir():
        return f"{existing} is a file"
    try:
        with tempfile.TemporaryFile(dir=existing, prefix=".srlm-probe-"):
            pass
    except OSError as e:
        return e.strerror or str(e)
    if existing != directory:
        # The missing part must be creatable too (a file system such as /proc refuses it).
        probe = existing / f".srlm-probe-{os.getpid()}"
        try:
            probe.mkdir()
            probe.rmdir()
        except OSError as e:
            return e.strerror or str(e)
    return None
