"""The tree passes ruff's checks and its formatter (pyproject.toml: [tool.ruff])."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import ROOT


@pytest.mark.parametrize(
    "args", [["check", "."], ["format", "--check", "."]], ids=["check", "format"]
)
def test_ruff(args):
    p = subprocess.run(
        [sys.executable, "-m", "ruff", *args], cwd=ROOT, capture_output=True, text=True
    )
    assert p.returncode == 0, p.stdout[-4000:] + p.stderr[-2000:]
