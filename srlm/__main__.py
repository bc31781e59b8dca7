"""`python -m srlm`: compose the config with Hydra, validate it, run the experiment."""

from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig

from srlm.compose import register_configs
from srlm.errors import SrlmError

register_configs()


def secondary_slurm_task() -> bool:
    """True in every task but the first of a multi-task SLURM step (hydra.launcher.nodes > 1
    starts one task per node). One driver runs the experiment; it starts the training ranks on
    the other nodes itself (srlm.training.nodes), so the other tasks only step aside."""
    import os

    tasks, rank = int(os.environ.get("SLURM_NTASKS", "1")), int(os.environ.get("SLURM_PROCID", "0"))
    if tasks > 1 and rank > 0:
        print(
            f"[srlm] SLURM task {rank} of {tasks}: the driver runs in task 0 and starts the "
            "training ranks on this node when a training stage needs them",
            flush=True,
        )
        return True
    return False


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> None:
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    from srlm.compose import validate
    from srlm.runner import run

    if secondary_slurm_task():
        return
    if cfg.get("run_dir") is None:
        with open_dict(cfg):
            cfg.run_dir = HydraConfig.get().runtime.output_dir
    try:
        config = validate(cfg)  # before anything heavy is imported or loaded
        run(config)
    except SrlmError as e:
        print(f"srlm: error: {e}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
