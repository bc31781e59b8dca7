"""Sweeps checked whole before their first job: a bad value found when its job starts costs
every job that trained before it.

    python -m srlm -m sweep=NAME ...          every job of a Hydra multirun is composed and
                                              checked (srlm.preflight) before Hydra launches any
    python -m srlm.sweeps sweeps/SPEC.yaml    a wandb sweep spec: every listed value, and both
                                              ends of every range (a bayes or random search
                                              draws between them), in the command line the
                                              wandb agent builds

Checks that depend on the machine (GPUs, the cache, the run directory) are left to each job,
which runs them where it executes: a sweep is often submitted from a login node without GPUs.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import yaml

from srlm.errors import Problems, SrlmError, error_lines, problems_of

# wandb distributions whose `min` and `max` are the values themselves (not exponents).
VALUE_RANGES = {
    "int_uniform",
    "uniform",
    "q_uniform",
    "log_uniform_values",
    "q_log_uniform_values",
}
AGENT_PREFIX = ["python", "-m", "srlm"]


def _check_one(overrides: list[str]) -> list[str]:
    from srlm.compose import compose_or_explain
    from srlm.preflight import check

    try:
        check(compose_or_explain(overrides), here=False)
    except SrlmError as e:
        return problems_of(e)
    return []


# ---------------------------------------------------------------- Hydra multirun
def job_overrides(overrides: list[str]) -> list[list[str]]:
    """The overrides of every job of `python -m srlm -m OVERRIDES`, as Hydra's basic sweeper
    makes them: a sweep file's hydra.sweeper.params first, the command line's values winning."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create()
    parsed = parser.parse_overrides(list(overrides))
    fixed = [o.input_line for o in parsed if not o.is_sweep_override()]
    params = _sweeper_params(fixed)
    every = parser.parse_overrides([f"{k}={v}" for k, v in params.items()] + list(overrides))
    return [job for batch in BasicSweeper.split_arguments(every, None) for job in batch]


def _sweeper_params(overrides: list[str]) -> dict:
    from srlm.compose import compose_or_explain

    cfg = compose_or_explain(overrides, with_hydra=True)
    return dict(cfg.hydra.sweeper.get("params") or {})


def check_multirun(overrides: list[str]) -> int:
    """Compose and check every job of a multirun; Problems naming each bad job. The number of
    jobs otherwise."""
    jobs = job_overrides(overrides)
    common = set.intersection(*(set(job) for job in jobs)) if len(jobs) > 1 else set()
    found = [_check_one(job) for job in jobs]
    # A problem of the command itself shows in every job: said once.
    everywhere = [p for p in found[0] if all(p in f for f in found)]
    problems = [f"every job: {p}" if len(jobs) > 1 else p for p in everywhere]
    for n, (job, job_problems) in enumerate(zip(jobs, found, strict=True), 1):
        shown = " ".join(o for o in job if o not in common)
        problems += [
            f"job {n} of {len(jobs)} ({shown}): {p}" for p in job_problems if p not in everywhere
        ]
    if problems:
        raise Problems(problems)
    return len(jobs)


# ---------------------------------------------------------------- wandb sweep specs
def spec_values(name: str, param: dict) -> list:
    """The values of a wandb parameter that a check must try: every listed one, or a range's
    two ends."""
    if "values" in param:
        return list(param["values"])
    if "value" in param:
        return [param["value"]]
    dist = param.get("distribution", "uniform" if "min" in param else None)
    if dist in VALUE_RANGES:
        return [param["min"], param["max"]]
    if dist == "log_uniform":  # min and max are exponents of e
        return [math.exp(param["min"]), math.exp(param["max"])]
    raise Problems([f"parameters.{name}: distribution {dist!r} is not one srlm can check"])


def spec_choices(spec: dict) -> list[dict]:
    """One choice per value of every parameter; the other parameters keep their first value."""
    params = {k: spec_values(k, p) for k, p in spec["parameters"].items()}
    base = {k: v[0] for k, v in params.items()}
    return [base | {k: v} for k, vs in params.items() for v in vs]


def agent_argv(spec: dict, choice: dict) -> list[str]:
    """The argv a wandb agent runs for one choice of parameter values, built as the agent
    builds it (wandb.sdk.launch.sweeps.utils)."""
    from wandb.sdk.launch.sweeps.utils import create_sweep_command, create_sweep_command_args

    sweep_vars = create_sweep_command_args({"args": {k: {"value": v} for k, v in choice.items()}})
    sweep_vars |= {
        "env": ["/usr/bin/env"],
        "interpreter": ["python"],
        "program": [spec.get("program")],
    }
    argv = []
    for part in create_sweep_command(list(spec["command"])):
        part = str(part)
        if part.startswith("${") and part.endswith("}"):
            argv += sweep_vars.get(part[2:-1]) or []
        else:
            argv.append(part)
    return argv


def check_wandb_spec(path: str | Path) -> int:
    """Check every value a wandb sweep spec can hand srlm; Problems naming the spec, the
    parameter and value. The number of command lines checked otherwise."""
    path = Path(path)
    try:
        spec = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise Problems([f"{path}: cannot read the sweep spec ({e})".replace("\n", " ")]) from None
    if not isinstance(spec, dict) or not isinstance(spec.get("parameters"), dict):
        raise Problems([f"{path}: a wandb sweep spec needs a 'parameters' mapping"])
    command = spec.get("command") or []
    if "${args_no_hyphens}" not in command or command[1:4] != AGENT_PREFIX:
        raise Problems(
            [
                f"{path}: command must run `${{env}} python -m srlm ... ${{args_no_hyphens}}` "
                "so that each parameter reaches srlm as key=value"
            ]
        )
    problems, checked = [], set()
    for choice in spec_choices(spec):
        overrides = agent_argv(spec, choice)[4:]
        if tuple(overrides) in checked:
            continue
        checked.add(tuple(overrides))
        swept = " ".join(f"{k}={v}" for k, v in choice.items())
        problems += [f"{path} ({swept}): {p}" for p in _check_one(overrides)]
    if problems:
        raise Problems(list(dict.fromkeys(problems)))
    return len(checked)


def main(argv: list[str] | None = None) -> None:
    specs = sys.argv[1:] if argv is None else argv
    if not specs or any(s.startswith("-") for s in specs):
        print("usage: python -m srlm.sweeps SPEC.yaml [SPEC.yaml ...]", file=sys.stderr)
        sys.exit(2)
    failed = False
    for spec in specs:
        try:
            n = check_wandb_spec(spec)
            print(f"{spec}: {n} command lines checked, no problem found")
        except SrlmError as e:
            print("\n".join(error_lines(e)), file=sys.stderr)
            failed = True
    sys.exit(2 if failed else 0)


if __name__ == "__main__":
    main()
