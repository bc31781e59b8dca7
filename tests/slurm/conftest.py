"""The one-node SLURM cluster of the `slurm` tests, started by scripts/slurm/up.sh."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from tests.conftest import ROOT


@pytest.fixture(scope="session")
def slurm_cluster() -> None:
    """Install (once) and start the loopback cluster; skip when this machine cannot."""
    if os.geteuid() != 0:
        pytest.skip("the SLURM tests start a cluster with scripts/slurm/up.sh, which needs root")
    if shutil.which("sinfo") is None and shutil.which("apt-get") is None:
        pytest.skip("SLURM is not installed and apt-get is unavailable to install it")
    p = subprocess.run(
        ["bash", str(ROOT / "scripts" / "slurm" / "up.sh")],
        capture_output=True,
        text=True,
        timeout=900,
    )
    if p.returncode != 0:
        pytest.fail(f"scripts/slurm/up.sh failed (exit {p.returncode}):\n{p.stdout}\n{p.stderr}")
    print("\n" + p.stdout.strip())
