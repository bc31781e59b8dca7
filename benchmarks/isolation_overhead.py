"""What running each phase in a child process costs, next to the phase's own work.

    python benchmarks/isolation_overhead.py [--repeats 3]

A phase child pays an interpreter start, the imports (torch, transformers, lightning) and a
model load that an in-process phase would share with the previous phase. This times exactly
that, side by side in one run: the same "import + load the embedded model" done in a spawned
child and done again in this (already warm) process. The difference is the isolation cost
per phase; compare it with a phase's wall time in a run's iter_*/stages.json.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import time


def _load(model_dir: str) -> None:
    import lightning  # noqa: F401
    import torch  # noqa: F401

    from srlm.config import ModelConfig
    from srlm.training.model import load_causal_lm, load_tokenizer

    load_tokenizer(model_dir)
    load_causal_lm(model_dir, ModelConfig(name="m", source=model_dir))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    from srlm.models import resolve_model_dir

    model_dir = resolve_model_dir("embedded:smollm2-135m-instruct")
    _load(model_dir)  # warm this process
    child, inproc = [], []
    for _ in range(args.repeats):
        t = time.perf_counter()
        p = mp.get_context("spawn").Process(target=_load, args=(model_dir,))
        p.start()
        p.join()
        child.append(time.perf_counter() - t)
        t = time.perf_counter()
        _load(model_dir)
        inproc.append(time.perf_counter() - t)
    c, i = min(child), min(inproc)
    print(f"child process (start + imports + model load): {c:6.2f} s")
    print(f"in-process (model load only):                 {i:6.2f} s")
    print(f"isolation cost per phase: {c - i:.2f} s  (ratio {c / i:.1f}x of an in-process load)")


if __name__ == "__main__":
    main()
