import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Keep the embedded model's converted checkpoint and wandb's files out of the user's home
# only when the caller asks; by default the cache is shared so the conversion happens once.
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def run_srlm(
    args: list[str],
    cwd: Path = ROOT,
    timeout: int = 1200,
    env: dict | None = None,
    module: str = "srlm",
):
    """Run `python -m MODULE ARGS` (`python -m srlm ARGS` by default) as a user would; return
    the completed process."""
    import subprocess

    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


@pytest.fixture
def srlm_cli():
    return run_srlm
