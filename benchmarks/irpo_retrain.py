"""Retrain one IRPO iteration of a finished run under other optimizer settings, on the very pairs
that iteration trained on, and score each result on the run's held-out questions (greedy).

    .venv/bin/python benchmarks/irpo_retrain.py RUN_DIR --iteration 2 \
        --variant base= --variant lr5e-6=optimizer.lr=5e-6,optimizer.lr_end=5e-7

Each variant is NAME=OVERRIDES (comma-separated optimizer.* / method.* overrides on top of the
run's own config). The iteration's start model (M_{t-1}, the run's iter_{t-1}/checkpoint) is
scored too. Sampling is left out on purpose: every variant sees the same pairs, so a difference
in accuracy comes from training alone. The held-out scoring runs on transformers (rollout=hf)
whatever the run used, so its figures compare with each other, not digit for digit with the
run's own vLLM-scored table.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--iteration", type=int, default=2)
    ap.add_argument("--variant", action="append", default=[], help="NAME=k=v,k=v")
    ap.add_argument("--out", type=Path, default=None, help="write the table as JSON here")
    args = ap.parse_args()

    from srlm.evaluate import load_run_config
    from srlm.methods import get_method
    from srlm.rundir import RunDir
    from srlm.runner import PolicyEngine
    from srlm.training.model import load_tokenizer
    from srlm.training.trainer import train

    t = args.iteration
    start = args.run_dir / f"iter_{t - 1:02d}" / "checkpoint"
    if not start.exists():  # iteration 1 of a run without a warm start starts from M_0
        from srlm.models import resolve_model_dir

        m = load_run_config(args.run_dir, []).model
        start = Path(resolve_model_dir(m.source, m.path))
    results = []
    scratch = Path(tempfile.mkdtemp(prefix="irpo_retrain_"))
    try:
        # A copy of the run's rows (no checkpoints): the scoring writes its eval rows there.
        copy = scratch / "run"
        shutil.copytree(args.run_dir, copy, ignore=shutil.ignore_patterns("checkpoint*"))
        variants = [(f"start (M_{t - 1})", None)] + [_parse(v) for v in args.variant]
        for name, overrides in variants:
            config = load_run_config(copy, [])
            for key, value in (overrides or {}).items():
                _set(config, key, value)
            config.run_dir = str(copy)
            config.rollout.engine = "hf"
            run = RunDir(str(copy))
            method = get_method(config.method.name)(config, run)
            t0 = time.time()
            model_dir = str(start)
            stats: dict = {}
            if overrides is not None:
                examples = method.training_examples(t, load_tokenizer(str(start)))
                out = scratch / f"model_{len(results)}"
                stats = train(
                    examples,
                    str(start),
                    out,
                    config.model,
                    config.optimizer.for_iteration(t),
                    config.trainer,
                    seed=config.seed + t,
                )
                model_dir = str(out)
            engine = PolicyEngine(model_dir, config)
            try:
                method.m.eval_maj_k = 0
                scored = method.evaluate(t, engine)
            finally:
                engine.release()
            row = {
                "variant": name,
                "overrides": overrides,
                "accuracy": scored["accuracy"],
                "steps": stats.get("steps"),
                "margin_after": stats.get("margin_after"),
                "seconds": round(time.time() - t0, 1),
            }
            results.append(row)
            print(json.dumps(row), flush=True)
            if overrides is not None:
                shutil.rmtree(scratch / f"model_{len(results) - 1}", ignore_errors=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if args.out:
        args.out.write_text(json.dumps(results, indent=1))


def _parse(spec: str) -> tuple[str, dict]:
    name, _, rest = spec.partition("=")
    return name, dict(part.partition("=")[::2] for part in rest.split(",") if part)


def _set(config, key: str, text: str) -> None:
    """config.<key> = text, read as the type the key has now (yaml.safe_load of the text)."""
    import yaml

    *path, leaf = key.split(".")
    node = config
    for part in path:
        node = getattr(node, part)
    if not hasattr(node, leaf):
        raise SystemExit(f"{key}: no such key")
    value = yaml.safe_load(text)
    if isinstance(value, str):  # YAML reads 5e-6 (no dot) as text
        try:
            value = float(value)
        except ValueError:
            pass
    setattr(node, leaf, value)


if __name__ == "__main__":
    main()
