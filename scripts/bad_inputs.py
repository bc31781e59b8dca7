"""Run every mistake of tests/bad_inputs.py as the real command line and count the outcomes.

    python scripts/bad_inputs.py                    # this checkout
    python scripts/bad_inputs.py --src /tmp/old     # another checkout's srlm (e.g. a baseline
                                                    #   worktree), same table
    python scripts/bad_inputs.py --only keys,data --timeout 60

Each case runs as `python -m srlm ...` (or srlm.evaluate, srlm.report, srlm.sweeps) in a fresh
scratch directory, killed after --timeout seconds (its whole process group), and is classed:

    clear    exit status 2, every stderr line `srlm: error: ...`, each expected text present,
             no traceback, no model loaded, nothing written where the run would write
    weak     refused before any model loaded and without a traceback, but the message lacks
             what the table expects or is not in srlm's one-line form
    late     refused only after a model loaded (or a stage ran)
    bad      a traceback, accepted (exit 0, or still running at the timeout)

Prints one line per case and the counts per outcome and category.
"""

from __future__ import annotations

import argparse
import collections
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.bad_inputs import CASES, MODULES, Case  # noqa: E402
from tests.test_bad_inputs import srlm_args, tree  # noqa: E402

# What srlm prints once a phase starts or a model loads: a refusal after it is late.
LATE_MARKS = ("[srlm] iteration", "Loading checkpoint", "loading weights", "converting")


def classify(case: Case, tmp: Path, code: int | None, err: str, out: str, before, after) -> str:
    if code is None:
        return "bad"  # still running at the timeout: accepted
    if "Traceback" in err:
        return "bad"
    if code == 0:
        return "bad"
    if any(mark in out + err for mark in LATE_MARKS):
        return "late"
    lines = [line for line in err.splitlines() if line.strip()]
    expected = [e.replace("{tmp}", str(tmp)) for e in case.expected]
    clear = (
        code == 2
        and lines
        and all(line.startswith("srlm: error: ") for line in lines)
        and all(any(e in line for line in lines) for e in expected)
        and before == after
    )
    return "clear" if clear else "weak"


def run(case: Case, src: Path, timeout: float) -> tuple[str, float, str]:
    with tempfile.TemporaryDirectory(prefix="srlm-bad-") as d:
        tmp = Path(d)
        env = {**os.environ, "PYTHONPATH": str(src), "HYDRA_FULL_ERROR": "0"}
        env |= {k: v.replace("{tmp}", str(tmp)) for k, v in case.env.items()}
        if case.setup is not None:
            case.setup(tmp)
        before = tree(tmp)
        args = srlm_args(case, tmp) if case.command == "srlm" else case.argv(tmp)
        cmd = [sys.executable, "-m", MODULES[case.command], *args]
        started = time.time()
        proc = subprocess.Popen(
            cmd,
            cwd=src,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        try:
            out, err = proc.communicate(timeout=timeout)
            code = proc.returncode
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
            code = None
        took = time.time() - started
        outcome = classify(case, tmp, code, err, out, before, tree(tmp))
        first = next((line for line in err.splitlines() if line.strip()), "")
        return outcome, took, first[:160]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--src", type=Path, default=ROOT, help="the checkout whose srlm runs")
    parser.add_argument("--only", default="", help="comma-separated categories or case ids")
    parser.add_argument("--timeout", type=float, default=45.0)
    args = parser.parse_args()
    only = {x for x in args.only.split(",") if x}
    cases = [c for c in CASES if not only or c.category in only or c.id in only]
    counts: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for case in cases:
        outcome, took, first = run(case, args.src.resolve(), args.timeout)
        counts[case.category][outcome] += 1
        counts["all"][outcome] += 1
        print(f"{outcome:5s} {took:5.1f}s {case.category:11s} {case.id:34s} {first}", flush=True)
    print()
    for category, c in counts.items():
        shown = "  ".join(f"{k} {c[k]}" for k in ("clear", "weak", "late", "bad"))
        print(f"{category:11s} {sum(c.values()):3d} cases  {shown}")


if __name__ == "__main__":
    main()
