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


def script_module(name: str):
    """scripts/NAME.py imported as a module (scripts/ is not a package), for tests of its parts."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture
def srlm_cli():
    return run_srlm


# The tiers (README, "Tests"): plain `pytest` runs the fast tier, unit and config tests, in a few
# minutes; `pytest -m "not gpu"` runs the whole suite (.ci/run). A directory decides
# a test's tier, so a heavy test cannot slip into the fast one by a forgotten marker.
TIER_OF_DIR = {"e2e": "e2e", "slurm": "slurm", "integration": "slow"}
HEAVY = {"e2e", "slurm", "slow", "browser", "gpu", "vllm"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        parts = Path(str(item.fspath)).relative_to(ROOT / "tests").parts
        if len(parts) > 1 and parts[0] in TIER_OF_DIR:
            item.add_marker(TIER_OF_DIR[parts[0]])
        elif len(parts) > 1 and parts[0] == "unit":
            heavy = HEAVY & {m.name for m in item.iter_markers()}
            if heavy:
                raise pytest.UsageError(
                    f"{item.nodeid} is marked {', '.join(sorted(heavy))}: heavy tests live in "
                    "tests/integration, tests/e2e or tests/slurm, not tests/unit"
                )
