"""The Hydra launcher configs (conf/hydra/launcher/*.yaml) compose, and the SLURM one turns
into the sbatch options it documents. No cluster needed: runs with the default test suite."""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from srlm.compose import CONF_DIR, register_configs

LAUNCHERS = sorted(p.stem for p in (CONF_DIR / "hydra" / "launcher").glob("*.yaml"))


def _hydra_cfg(overrides: list[str]):
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    register_configs()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose("config", overrides=overrides, return_hydra_config=True)


def test_launchers_present():
    assert {"slurm", "local"} <= set(LAUNCHERS)


@pytest.mark.parametrize("name", LAUNCHERS)
def test_launcher_composes(name):
    cfg = _hydra_cfg([f"hydra/launcher={name}"])
    launcher = cfg.hydra.launcher
    target = {"slurm": "SlurmLauncher", "local": "LocalLauncher"}[name]
    assert launcher._target_.endswith(target)
    assert launcher.tasks_per_node == 1
    # Every key of the YAML file is a key of the plugin's schema (a typo would be refused
    # by Hydra, this names the file).
    own = OmegaConf.load(CONF_DIR / "hydra" / "launcher" / f"{name}.yaml")
    assert set(own) - {"defaults"} <= set(launcher)


def test_slurm_launcher_overrides():
    cfg = _hydra_cfg(
        [
            "hydra/launcher=slurm",
            "hydra.launcher.partition=gpu",
            "hydra.launcher.gpus_per_node=8",
            "hydra.launcher.timeout_min=1440",
            "hydra.launcher.max_num_timeout=5",
            "+hydra.launcher.additional_parameters.account=myproj",
        ]
    )
    launcher = cfg.hydra.launcher
    assert launcher.partition == "gpu"
    assert launcher.gpus_per_node == 8
    assert launcher.timeout_min == 1440
    assert launcher.max_num_timeout == 5
    assert launcher.additional_parameters.account == "myproj"


def test_slurm_launcher_sbatch_script(tmp_path: Path, monkeypatch):
    """The parameters reach sbatch as the plugin passes them to submitit (no submission)."""
    import submitit
    from submitit.slurm.slurm import SlurmExecutor

    # submitit refuses to build an executor where `srun` is not on PATH; the script text is
    # made without it, so this runs on a machine that has no SLURM installed yet.
    monkeypatch.setattr(SlurmExecutor, "affinity", classmethod(lambda cls: 1))
    from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf

    cfg = _hydra_cfg(
        [
            "hydra/launcher=slurm",
            "hydra.launcher.cpus_per_task=4",
            "hydra.launcher.mem_gb=32",
            "hydra.launcher.gpus_per_node=2",
            f"hydra.sweep.dir={tmp_path}",
            "+hydra.launcher.additional_parameters.account=myproj",
        ]
    )
    params = OmegaConf.to_container(cfg.hydra.launcher, resolve=False)
    params.pop("_target_")
    params.pop("submitit_folder")
    params["name"] = "srlm"
    # As hydra_plugins.hydra_submitit_launcher.BaseSubmititLauncher.launch does:
    max_num_timeout = params.pop("max_num_timeout")
    base = set(OmegaConf.structured(BaseQueueConf).keys())
    params = {k if k in base else f"slurm_{k}": v for k, v in params.items()}
    executor = submitit.AutoExecutor(
        folder=tmp_path, cluster="slurm", slurm_max_num_timeout=max_num_timeout
    )
    executor.update_parameters(**params)
    text = executor._executor._make_submission_file_text("python -m x", "uid")
    for line in [
        "#SBATCH --partition=debug",
        "#SBATCH --cpus-per-task=4",
        "#SBATCH --mem=32GB",
        "#SBATCH --gpus-per-node=2",
        "#SBATCH --ntasks-per-node=1",
        "#SBATCH --nodes=1",
        "#SBATCH --time=60",
        "#SBATCH --signal=USR2@120",
        "#SBATCH --account=myproj",
        "export OMP_NUM_THREADS=$SLURM_CPUS_PER_TASK",
    ]:
        assert line in text, f"{line!r} not in the sbatch script:\n{text}"
    assert executor._executor.max_num_timeout == 3
