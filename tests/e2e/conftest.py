"""Shared end-to-end fixtures: warm-started models, each made once.

The zero-shot embedded model almost never ends a judgement with a parseable "Score: N", so
methods that judge themselves start from a warm-started model (Self-Rewarding's M1).
"""

from __future__ import annotations

from pathlib import Path

import pytest


def warm_start_checkpoint(run_dir: Path, overrides: list[str]) -> Path:
    """Run only the warm start of the config `overrides` on the embedded model; its checkpoint."""
    from srlm.compose import compose, validate
    from srlm.models import resolve_model_dir
    from srlm.runner import _run_phase

    cfg = validate(compose([f"run_dir={run_dir}", "rollout=hf", "logger=none", *overrides]))
    assert cfg.method.warm_start.enabled
    # In a child process, as `python -m srlm` runs it, so pytest does not keep the trainer's memory.
    _run_phase(cfg, "warm_start", 0, resolve_model_dir(cfg.model.source))
    ckpt = run_dir / "iter_00" / "checkpoint"
    assert (ckpt / "model.safetensors").exists()
    return ckpt


@pytest.fixture(scope="session")
def warm_model(tmp_path_factory) -> Path:
    """Self-Rewarding's warm start (IFT + EFT seed data, the paper's M1), made once per session."""
    return warm_start_checkpoint(tmp_path_factory.mktemp("warm"), ["method.warm_start.epochs=2"])


@pytest.fixture(scope="session")
def tpo_warm_model(tmp_path_factory) -> Path:
    """TPO's warm start (the judge's "Score: N" format and the thought layout), made once per session."""
    return warm_start_checkpoint(
        tmp_path_factory.mktemp("tpo_warm"),
        ["method=tpo", "method.warm_start.epochs=1", "method.warm_start.lr=1e-4"],
    )
