"""Every wandb sweep spec hands valid overrides to the config it targets."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from srlm.config import compose, validate
from tests.conftest import ROOT

SPECS = sorted((ROOT / "sweeps").glob("*.yaml"))


def _agent_overrides(spec: dict, values: dict) -> list[str]:
    """The key=value list a wandb agent builds from the command and one parameter choice."""
    out = []
    for part in spec["command"]:
        if part in ("${env}", "python", "-m", "srlm", "${program}"):
            continue
        if part == "${args_no_hyphens}":
            out += [f"{k}={v}" for k, v in values.items()]
        else:
            out.append(part)
    return out


@pytest.mark.parametrize("path", SPECS, ids=[p.stem for p in SPECS])
def test_sweep_spec_composes(path: Path):
    spec = yaml.safe_load(path.read_text())
    assert "${args_no_hyphens}" in spec["command"], "parameters must reach Hydra as key=value"
    first = {k: (v["values"][0] if "values" in v else v.get("min", v.get("value"))) for k, v in spec["parameters"].items()}
    overrides = _agent_overrides(spec, first)
    # The run_dir interpolation refers to a config key; OmegaConf resolves it after composition.
    cfg = compose(overrides)
    validate(cfg)
    for key, value in first.items():
        node = cfg
        for part in key.split("."):
            node = node[part]
        assert node == value, key
