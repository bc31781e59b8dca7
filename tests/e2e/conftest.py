"""Shared fixtures of the end-to-end tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def warm_model(tmp_path_factory) -> Path:
    """The embedded model after Self-Rewarding's warm start (the paper's M1), made once.

    The zero-shot embedded model almost never ends a judgement with "Score: N"; after the
    warm start on the seed judge examples it nearly always does, so judged methods form pairs.
    It is trained in a child process (as `python -m srlm` does), so the test process does not
    keep the trainer's memory.
    """
    from srlm.config import compose, validate
    from srlm.models import resolve_model_dir
    from srlm.runner import _run_phase

    run_dir = tmp_path_factory.mktemp("warm")
    cfg = validate(compose([f"run_dir={run_dir}", "rollout=hf", "logger=none", "method.warm_start.epochs=2"]))
    _run_phase(cfg, "warm_start", 0, resolve_model_dir(cfg.model.source))
    ckpt = run_dir / "iter_00" / "checkpoint"
    assert (ckpt / "model.safetensors").exists()
    return ckpt
