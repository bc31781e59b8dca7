"""Where a run's time goes, from its own timings: each phase process's seconds split into work
(generation and scoring, training, evaluation) and overhead (process start and imports, engine
start, the trainer's model load and checkpoint save).

    .venv/bin/python benchmarks/iteration_breakdown.py RUN_DIR
    .venv/bin/python benchmarks/iteration_breakdown.py --run [OVERRIDES...]   # run first
    .venv/bin/python benchmarks/iteration_breakdown.py --experiment grpo_quickstart --run

With --run it runs ``python -m srlm experiment=irpo_quickstart OVERRIDES...`` (or the
--experiment given) into a fresh directory and then prints that run's table. The same table is
in the run's HTML report (srlm.report.load.time_breakdown). For an online run it also splits
the optimizer steps themselves: generation, scoring, training, and the rest of each step (the
weight sync, its probe check, the prompts' bookkeeping).
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
    ap.add_argument("--run", nargs="*", metavar="OVERRIDE", help="run the experiment first")
    ap.add_argument("--experiment", default="irpo_quickstart")
    args = ap.parse_args()
    run_dir = args.run_dir
    if args.run is not None:
        run_dir = run_dir or Path(tempfile.mkdtemp(prefix="srlm-breakdown-")) / "run"
        cmd = [sys.executable, "-m", "srlm", f"experiment={args.experiment}", f"run_dir={run_dir}"]
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
        f"\noutside the work (start-up, engine start, model load, save, sync): "
        f"{overhead_share(rows):.1%}"
    )
    online_steps(run_dir)


def online_steps(run_dir: Path) -> None:
    """The online iterations' optimizer steps: where a step's time goes."""
    from srlm.rundir import RunDir

    run = RunDir(run_dir)
    keys = ["step", "generation", "scoring", "train", "sync", "outside"]
    rows = []
    for t in sorted(int(d.name.removeprefix("iter_")) for d in run_dir.glob("iter_*")):
        stats = run.stages(t).get("train", {}).get("stats") or {}
        if "step_seconds" in stats:
            rows.append((t, stats["steps"], [stats.get(f"{k}_seconds") or 0.0 for k in keys]))
    if not rows:
        return
    print(f"\nonline steps{'it':>7}{'steps':>7}" + "".join(f"{k + ' s':>13}" for k in keys))
    for t, n, xs in rows:
        print(f"{'':<12}{t:>7}{n:>7}" + "".join(f"{x:>13.1f}" for x in xs))
    step = sum(xs[0] for _, _, xs in rows)
    outside = sum(xs[-1] for _, _, xs in rows)
    print(f"\nshare of the steps outside generation, scoring and training: {outside / step:.1%}")


if __name__ == "__main__":
    main()
