"""`python -m srlm`: compose the config with Hydra, validate it, run the experiment."""

from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig

from srlm.compose import register_configs
from srlm.errors import SrlmError, error_lines

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


# Set once precheck() has run the whole pre-flight of a single run's command in this process, so
# that runner.prepare() does not read every data file and model a second time.
_PREFLOWN = False


def precheck(argv: list[str]) -> None:
    """The whole pre-flight of the command, before Hydra makes or writes anything: a refused
    command leaves no trace in the run directory, and a multirun's every job is checked before
    the first starts. Exits 2 with one `srlm: error:` line per problem."""
    from hydra._internal.utils import get_args_parser

    try:
        args = get_args_parser().parse_args(argv)
    except SystemExit:
        return  # Hydra reports its own usage errors
    if (
        args.help
        or args.hydra_help
        or args.cfg
        or args.info
        or args.shell_completion
        or args.experimental_rerun
        or args.config_name
        or args.config_path
        or args.config_dir
    ):
        return  # not a run of srlm's own config
    try:
        if args.multirun:
            from srlm.sweeps import check_multirun

            check_multirun(args.overrides)
        else:
            _check_run(args.overrides)
    except SrlmError as e:
        print("\n".join(error_lines(e)), file=sys.stderr)
        sys.exit(2)


def _check_run(overrides: list[str]) -> None:
    from omegaconf import OmegaConf, open_dict

    from srlm.compose import compose_or_explain
    from srlm.preflight import check

    cfg = compose_or_explain(overrides, with_hydra=True)
    run_dir = OmegaConf.select(cfg, "hydra.run.dir")
    with open_dict(cfg):
        del cfg["hydra"]
        if cfg.get("run_dir") is None:
            cfg.run_dir = run_dir
    check(cfg, here=True)
    global _PREFLOWN
    _PREFLOWN = True


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
        run(config, preflown=_PREFLOWN)
    except SrlmError as e:
        print("\n".join(error_lines(e)), file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    precheck(sys.argv[1:])
    main()
