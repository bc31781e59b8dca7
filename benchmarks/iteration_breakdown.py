"""Where a run's time goes, from its own timings: each phase process's seconds split into work
(generation and scoring, training, evaluation) and overhead (process start and imports, engine
start, the trainer's model load and checkpoint save).

    .venv/bin/python benchmarks/iteration_breakdown.py RUN_DIR
    .venv/bin/python benchmarks/iteration_breakdown.py --run [OVERRIDES...]   # run first

With --run it runs ``python -m srlm experiment=irpo_quickstart OVERRIDES...`` into a fresh
directory and then prints that run's table. The same table is in the run's HTML report
(srlm.report.load.time_breakdown).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run_dir", nargs="?", type=Path)
    ap.add_argument("--run", nargs="*", metavar="OVERRIDE", help="run the IRPO quickstart first")
    args = ap.parse_args()
    run_dir = args.run_dir
    if args.run is not None:
        run_dir = run_dir or Path(tempfile.mkdtemp(prefix="srlm-breakdown-")) / "run"
        cmd = [sys.executable, "-m", "srlm", "experiment=irpo_quickstart", f"run_dir={run_dir}"]
        t0 = time.time()
        subprocess.run(cmd + args.run, check=True)
        print(f"\nwall time of the whole command: {time.time() - t0:.0f} s")
    if run_dir is None:
        ap.error("give RUN_DIR or --run")

    from srlm.report.load import OVERHEAD, WORK, overhead_share, time_breakdown

    rows = time_breakdown(run_dir)
    if not rows:
        raise SystemExit(f"{run_dir}: no phases.jsonl (a run made before phases were logged)")
    cols = ["seconds", *WORK, *OVERHEAD]
    print(f"{'phase':<18}{'it':>3}" + "".join(f"{c:>13}" for c in cols))
    for r in rows:
        print(f"{r['phase']:<18}{r['iteration']:>3}" + "".join(f"{r[c]:>13.1f}" for c in cols))
    total = {c: sum(r[c] for r in rows) for c in cols}
    print(f"{'all':<18}{'':>3}" + "".join(f"{total[c]:>13.1f}" for c in cols))
    print(
        f"\noutside the work (start-up, engine start, model load, save): {overhead_share(rows):.1%}"
    )


if __name__ == "__main__":
    main()
