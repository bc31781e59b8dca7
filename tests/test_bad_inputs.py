"""Every mistake of tests/bad_inputs.py gets its clear error: exit status 2, one `srlm: error:`
line per problem naming the key or the file and line, no traceback, before any model loads, and
nothing written where the run would write.

Run in-process through each command's own entry (python -m srlm's pre-check, srlm.evaluate's,
srlm.report's and srlm.sweeps' main), so the table stays in the fast tier;
scripts/bad_inputs.py runs the same table as real command lines."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from tests.bad_inputs import CASES, TINY, Case


def _gpus() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def srlm_args(case: Case, tmp: Path) -> list[str]:
    """The case's arguments, with the tiny defaults and a scratch run_dir where it sets none."""
    argv = case.argv(tmp)
    given = {a.lstrip("+").split("=", 1)[0] for a in argv}
    extra = [o for o in TINY if o.split("=", 1)[0] not in given]
    if case.command == "srlm" and "run_dir" not in given:
        extra.append(f"run_dir={tmp}/run")
    return [*extra, *argv] if "-m" not in argv else ["-m", *extra, *[a for a in argv if a != "-m"]]


def run_case(case: Case, tmp: Path) -> int:
    """The case's exit status; its output goes to pytest's capture."""
    argv = srlm_args(case, tmp) if case.command == "srlm" else case.argv(tmp)
    try:
        if case.command == "srlm":
            from srlm.__main__ import precheck

            precheck(argv)
            return 0
        if case.command == "evaluate":
            from srlm.evaluate import main

            return main(argv)
        if case.command == "report":
            from srlm.report.page import main

            return main(argv)
        from srlm.sweeps import main

        main(argv)
    except SystemExit as e:
        return int(e.code or 0)
    return 0


def tree(root: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
    }


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_a_clear_error(case: Case, tmp_path: Path, monkeypatch, capfd):
    if case.needs_no_gpu and _gpus():
        pytest.skip("this machine has the GPU the case lacks")
    for key, value in case.env.items():
        monkeypatch.setenv(key, value.replace("{tmp}", str(tmp_path)))
    if case.setup is not None:
        case.setup(tmp_path)
    before = tree(tmp_path)
    capfd.readouterr()

    code = run_case(case, tmp_path)

    err = capfd.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, f"exit status {code}; stderr:\n{err}"
    assert "Traceback" not in err, err
    assert lines and all(line.startswith("srlm: error: ") for line in lines), err
    expected = [e.replace("{tmp}", str(tmp_path)) for e in case.expected]
    found = [next((i for i, line in enumerate(lines) if e in line), None) for e in expected]
    assert None not in found, f"expected {expected[found.index(None)]!r} in:\n{err}"
    assert tree(tmp_path) == before, "a refused command changed files"


def test_table_covers_every_category_and_the_reported_examples():
    categories = {c.category for c in CASES}
    assert categories == {
        "keys",
        "data",
        "models",
        "hardware",
        "lengths",
        "environment",
        "run_dir",
        "sweeps",
        "evaluate",
        "report",
    }
    assert len(CASES) >= 80
    args = {" ".join(c.args) for c in CASES}
    for example in (  # the examples of the reliability report, verbatim
        "+optimizer.bta=0.2",
        "reward=judge_model reward.model.path=/nonexistent",
        "eval.judge.model.source=/nonexistent",
        "method.warm_start.lr=-1",
        "method.warm_start.batch_size=0",
        "method.warm_start.epochs=0",
        "trainer=ddp",
        "model.max_length=128 method.response_sampling.max_tokens=500",
        "data.limit=0",
    ):
        assert example in args, example
    assert any(c.env.get("SRLM_CACHE") == "/proc/x" for c in CASES)


def test_command_line_exit_and_lines(tmp_path: Path):
    """The real command: exit 2, the lines, no traceback, and the run directory not made."""
    import subprocess

    run = tmp_path / "run"
    p = subprocess.run(
        [sys.executable, "-m", "srlm", f"run_dir={run}", *TINY, "+optimizer.bta=0.2", "seed=-x"],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
        env={**os.environ, "HYDRA_FULL_ERROR": "0"},
    )
    assert p.returncode == 2, p.stderr
    assert "Traceback" not in p.stderr
    assert p.stderr.startswith("srlm: error: ")
    assert not run.exists()
