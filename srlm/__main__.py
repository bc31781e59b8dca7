"""`python -m srlm`: compose the config with Hydra, validate it, run the experiment."""

from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig

from srlm.config import register_configs
from srlm.errors import SrlmError

register_configs()


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> None:
    from srlm.config import validate
    from srlm.runner import run

    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

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
