"""Every sweep hands valid overrides to the config it targets.

wandb specs (sweeps/*.yaml): every value a parameter can take (each listed value; both ends of
a distribution) composes and validates as part of the command line a wandb agent builds from
the spec (with wandb's own code), ends up in the composed config, and gets a run directory of
its own; the metric is one that srlm logs. Hydra sweep files (conf/sweep/*.yaml): a dry
multirun, Hydra's own sweeper and launcher with a task that only validates, composes every
job, and all jobs of one sweep share a wandb group.
"""

from __future__ import annotations

import ast
import itertools
import math
from pathlib import Path

import pytest
import yaml
from hydra import compose as hydra_compose
from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf, open_dict

from srlm.compose import CONF_DIR, register_configs, validate
from srlm.sweeps import (
    AGENT_PREFIX,
    agent_argv,
    check_multirun,
    check_wandb_spec,
    job_overrides,
    spec_choices,
    spec_values,
)
from srlm.tracking import choose_group, hydra_multirun, iteration_metrics
from tests.conftest import ROOT

SPECS = sorted((ROOT / "sweeps").glob("*.yaml"))
SWEEP_FILES = sorted((CONF_DIR / "sweep").glob("*.yaml"))


def _load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def _compose(overrides: list[str]) -> tuple[DictConfig, DictConfig]:
    """(the job's config, its hydra node) as `python -m srlm OVERRIDES` composes them."""
    register_configs()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = hydra_compose("config", overrides=overrides, return_hydra_config=True)
    hydra = cfg.hydra
    run_dir = OmegaConf.select(cfg, "hydra.run.dir")  # resolved while the hydra node is there
    with open_dict(cfg):
        del cfg["hydra"]
    with open_dict(hydra):
        hydra.resolved_run_dir = run_dir
    return cfg, hydra


def _literal_keys(path: Path, function: str | None = None) -> set[str]:
    """String keys of the dict literals in a module (or in one function of it)."""
    tree = ast.parse(path.read_text())
    if function is not None:
        found = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == function]
        tree = ast.Module(body=found, type_ignores=[])
    return {
        k.value
        for n in ast.walk(tree)
        if isinstance(n, ast.Dict)
        for k in n.keys
        if isinstance(k, ast.Constant) and isinstance(k.value, str)
    }


def logged_metric_names(method: str) -> set[str]:
    """The metric names a run of `method` can log, read from the code: the literal keys of the
    statistics its stages, the trainer and the reward sources return, mapped to names the way
    the logger maps a summary row; the evaluate stage's keys under eval/."""
    src = ROOT / "srlm"
    stage = _literal_keys(src / "methods" / f"{method}.py")
    for folder in ("training", "rewards", "core"):
        for path in (src / folder).glob("*.py"):
            stage |= _literal_keys(path)
    evaluate = _literal_keys(src / "methods" / f"{method}.py", "evaluate")
    for path in (src / "eval").glob("*.py"):  # the shared evaluate stage, where there is one
        evaluate |= _literal_keys(path)
    row = {k: 0.0 for k in stage} | {f"eval/{k}": 0.0 for k in evaluate}
    return set(iteration_metrics(row, seconds=0.0))


@pytest.mark.parametrize("path", SPECS, ids=[p.stem for p in SPECS])
def test_wandb_spec_is_well_formed(path: Path):
    spec = _load(path)
    assert spec["method"] in ("grid", "random", "bayes"), spec["method"]
    assert spec["parameters"], "a sweep needs parameters"
    command = spec["command"]
    assert command[0] == "${env}" and command[1:4] == AGENT_PREFIX, command
    assert "${args_no_hyphens}" in command, "parameters must reach Hydra as key=value"
    if spec["method"] == "bayes":
        assert spec.get("metric", {}).get("goal") in ("maximize", "minimize"), (
            "bayes needs a metric and a goal"
        )


@pytest.mark.parametrize("path", SPECS, ids=[p.stem for p in SPECS])
def test_wandb_spec_values_compose(path: Path):
    spec = _load(path)
    run_dirs = {}
    for choice in spec_choices(spec):
        argv = agent_argv(spec, choice)
        assert argv[1:4] == AGENT_PREFIX, argv
        overrides = argv[4:]
        cfg, hydra = _compose(overrides)
        validate(cfg)
        for key, value in choice.items():
            if (CONF_DIR / key).is_dir():  # a config group: the value is the option chosen
                assert hydra.runtime.choices[key] == value, key
            else:
                assert OmegaConf.select(cfg, key) == pytest.approx(value), key
        # The run directory names every parameter: one directory per run, and a rerun resumes it.
        run_dir = hydra.resolved_run_dir
        for arg in overrides:
            if arg.split("=", 1)[0] in choice:
                assert arg in Path(run_dir).name, (arg, run_dir)
        run_dirs[run_dir] = choice
    assert len(run_dirs) == len({tuple(sorted(c.items())) for c in spec_choices(spec)})


@pytest.mark.parametrize("path", SPECS, ids=[p.stem for p in SPECS])
def test_wandb_spec_metric_is_logged(path: Path):
    spec = _load(path)
    if "metric" not in spec:
        return
    first = {k: spec_values(k, p)[0] for k, p in spec["parameters"].items()}
    cfg, _ = _compose(agent_argv(spec, first)[4:])
    names = logged_metric_names(cfg.method.name)
    assert spec["metric"]["name"] in names, (
        f"{spec['metric']['name']!r} is not logged by method={cfg.method.name}; e.g. "
        f"{sorted(n for n in names if n.startswith('iter/eval/')) or sorted(names)[:20]}"
    )


def test_agent_builds_key_value_overrides():
    spec = {
        "command": [
            "${env}",
            "python",
            "-m",
            "srlm",
            "experiment=irpo_quickstart",
            "${args_no_hyphens}",
        ]
    }
    argv = agent_argv(spec, {"optimizer": "ipo", "optimizer.lr": 1e-05})
    assert argv == [
        "/usr/bin/env",
        "python",
        "-m",
        "srlm",
        "experiment=irpo_quickstart",
        "optimizer=ipo",
        "optimizer.lr=1e-05",
    ]


# ---------------------------------------------------------------- Hydra sweep files
def _swept(params: dict) -> dict[str, list[str]]:
    """Each sweeper parameter's values as Hydra's sweeper splits them (commas, range(), choice())."""
    parser = OverridesParser.create()
    out = {}
    for key, value in params.items():
        [override] = parser.parse_overrides([f"{key}={value}"])
        out[key] = (
            list(override.sweep_string_iterator())
            if override.is_sweep_override()
            else [override.value()]
        )
    return out


def _dry_multirun(overrides: list[str]) -> list[dict]:
    """Hydra's multirun of `python -m srlm -m OVERRIDES`, each job composed by Hydra's sweeper
    and launcher as in a real run; the task validates the config and records what the logger
    would group the run under, instead of running it."""
    jobs = []

    def task(cfg: DictConfig) -> None:
        hc = HydraConfig.get()
        with open_dict(cfg):  # as srlm/__main__.py does
            cfg.run_dir = hc.runtime.output_dir
        config = validate(cfg)
        jobs.append(
            {
                "overrides": list(hc.overrides.task),
                "run_dir": config.run_dir,
                "group": choose_group(config.logger.group, {}, *hydra_multirun()),
            }
        )

    register_configs()
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            returns = GlobalHydra.instance().hydra.multirun(
                config_name="config",
                task_function=task,
                with_log_configuration=False,
                overrides=[
                    *overrides,
                    "hydra.mode=MULTIRUN",
                    "hydra/job_logging=none",
                    "hydra/hydra_logging=none",
                ],
            )
        for batch in returns:
            for ret in batch:
                _ = ret.return_value  # re-raises the error of a job that failed
    finally:
        HydraConfig.instance().cfg = None  # later tests must not look like multirun jobs
        GlobalHydra.instance().clear()
    return jobs


@pytest.mark.parametrize("path", SWEEP_FILES, ids=[p.stem for p in SWEEP_FILES])
def test_hydra_sweep_file_composes_every_job(path: Path, tmp_path: Path):
    params = _load(path)["hydra"]["sweeper"]["params"]
    swept = _swept(params)
    jobs = _dry_multirun([f"sweep={path.stem}", f"hydra.sweep.dir={tmp_path}/multirun"])
    assert len(jobs) == math.prod(len(v) for v in swept.values())
    expected = {
        frozenset(f"{k}={v}" for k, v in zip(swept, combo, strict=True))
        for combo in itertools.product(*swept.values())
    }
    got = {frozenset(o for o in job["overrides"] if o.split("=", 1)[0] in swept) for job in jobs}
    assert got == expected
    assert len({job["run_dir"] for job in jobs}) == len(jobs), (
        "two jobs would share a run directory"
    )
    assert {job["group"] for job in jobs} == {f"multirun-{path.stem}"}


def test_multirun_without_sweep_file_is_grouped_by_sweep_dir(tmp_path: Path):
    jobs = _dry_multirun(
        ["optimizer.beta=0.05,0.1", "rollout=hf", f"hydra.sweep.dir={tmp_path}/beta_study"]
    )
    assert len(jobs) == 2
    assert {job["group"] for job in jobs} == {"beta_study"}
    assert hydra_multirun() == (None, None)


@pytest.mark.parametrize("path", SWEEP_FILES, ids=[p.stem for p in SWEEP_FILES])
def test_precheck_sees_the_jobs_hydra_launches(path: Path, tmp_path: Path):
    """srlm.sweeps.job_overrides (what python -m srlm -m checks before the first job) lists the
    jobs Hydra's own sweeper launches, command-line values winning over the sweep file's."""
    overrides = [f"sweep={path.stem}", f"hydra.sweep.dir={tmp_path}/multirun"]
    launched = {frozenset(job["overrides"]) for job in _dry_multirun(overrides)}
    # Hydra keeps hydra.* overrides apart from the job's own (hydra.overrides.task).
    checked = {
        frozenset(o for o in job if not o.startswith("hydra.")) for job in job_overrides(overrides)
    }
    assert checked == launched
    assert check_multirun(overrides) == len(launched)


def test_precheck_command_line_wins_over_sweep_file(tmp_path: Path):
    jobs = job_overrides(["sweep=self_reward_beta", "optimizer.beta=0.3,0.5"])
    launched = _dry_multirun(
        ["sweep=self_reward_beta", "optimizer.beta=0.3,0.5", f"hydra.sweep.dir={tmp_path}/m"]
    )
    assert sorted(map(sorted, jobs)) == sorted(sorted(j["overrides"]) for j in launched)
    assert {o for job in jobs for o in job if o.startswith("optimizer.beta=")} == {
        "optimizer.beta=0.3",
        "optimizer.beta=0.5",
    }


@pytest.mark.parametrize("path", SPECS, ids=[p.stem for p in SPECS])
def test_shipped_wandb_specs_pass_the_check(path: Path):
    assert check_wandb_spec(path) == len(
        {tuple(agent_argv(_load(path), c)) for c in spec_choices(_load(path))}
    )


def test_spec_values_are_the_listed_values_or_range_ends():
    assert spec_values("a", {"values": [1, 2, 3]}) == [1, 2, 3]
    assert spec_values("a", {"value": 5}) == [5]
    assert spec_values("a", {"distribution": "uniform", "min": 0.5, "max": 2.0}) == [0.5, 2.0]
    assert spec_values("a", {"min": 1, "max": 4}) == [1, 4]  # wandb's default: uniform
    low, high = spec_values("a", {"distribution": "log_uniform", "min": 0.0, "max": 1.0})
    assert (low, high) == (1.0, pytest.approx(math.e))
