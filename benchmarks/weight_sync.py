"""Putting the trainer's weights into a running vLLM engine: srlm's in-memory sync against saving
a checkpoint and reloading it, side by side in one run, on the embedded model.

    .venv/bin/python benchmarks/weight_sync.py [--syncs 4] [--dtype bfloat16]

One engine serves throughout. Before each sync the trainer's float32 model is changed (every
weight scaled by 1 + 0.02 N(0, 1), enough to move the probe text's log-probs well past the
check's tolerance); the two ways alternate:

- memory: `VllmEngine.sync_from` (a shared-memory buffer and one RPC; srlm.rollout.weight_sync);
- disk: `save_pretrained` to a directory, then the worker's `reload_weights(weights_path=...)`
  (with the same repacking of a tied output head as the memory path) and a prefix-cache reset,
  the cheapest way through a checkpoint without restarting the engine (the iterative regime
  restarts it: the `engine_seconds` of a run's stages).

After each, the engine's log-probs of the probe text are compared with the trainer's; a sync
that did not take would stop here. Finally the trainer's model changes once more without a
sync, and the check must catch it. Prints seconds per sync, MB/s, and disk/memory.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--syncs", type=int, default=4, help="syncs of each kind")
    ap.add_argument("--dtype", default="bfloat16", help="the engine's dtype")
    ap.add_argument("--tolerance", type=float, default=0.1)
    args = ap.parse_args()
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "2")
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")

    import torch

    from srlm.config import ModelConfig, RolloutConfig
    from srlm.errors import SetupError
    from srlm.models import resolve_model_dir
    from srlm.rollout.base import PROBE_TEXT
    from srlm.rollout.engines import make_engine
    from srlm.rollout.hf_engine import token_logprobs
    from srlm.training.model import load_causal_lm, load_tokenizer

    model_dir = resolve_model_dir("embedded:smollm2-135m-instruct")
    config = ModelConfig(name="smollm2", source=model_dir)
    model = load_causal_lm(model_dir, config).eval()
    tok = load_tokenizer(model_dir)
    probe_ids = tok(PROBE_TEXT, add_special_tokens=False).input_ids
    engine = make_engine(model_dir, config, RolloutConfig(engine="vllm", dtype=args.dtype))
    gen = torch.Generator().manual_seed(0)

    @torch.no_grad()
    def change() -> None:
        for p in model.parameters():
            p.mul_(1 + 0.02 * torch.randn(p.shape, generator=gen))

    def disk_sync(directory: str) -> dict:
        started = time.perf_counter()
        model.save_pretrained(directory)
        saved = time.perf_counter()
        engine.llm.collective_rpc("srlm_reload", args=(directory,))
        engine.llm.reset_prefix_cache()
        return {"sync_seconds": time.perf_counter() - started, "save_seconds": saved - started}

    results: dict[str, list[dict]] = {"memory": [], "disk": []}
    with tempfile.TemporaryDirectory(dir=os.environ.get("TMPDIR")) as directory:
        for i in range(args.syncs):
            for kind in ("memory", "disk"):
                change()
                r = engine.sync_from(model) if kind == "memory" else disk_sync(directory)
                r["probe"] = engine.check_probe(
                    token_logprobs(model, probe_ids), args.tolerance, f"the trainer's {kind} sync"
                )
                results[kind].append(r)
                print(
                    f"sync {i + 1} {kind:<6} {r['sync_seconds']:6.3f} s"
                    f"  probe |diff| {r['probe']:.3f}",
                    flush=True,
                )
        change()
        try:
            engine.check_probe(
                token_logprobs(model, probe_ids),
                args.tolerance,
                "the model changed after its last sync",
            )
            print("the check did NOT catch a model changed without a sync")
        except SetupError as e:
            print(f"unsynced change caught: {e}")
    nbytes = engine.shared.nbytes
    engine.close()

    mem = statistics.median(r["sync_seconds"] for r in results["memory"])
    disk = statistics.median(r["sync_seconds"] for r in results["disk"])
    write = statistics.median(r["sync_write_seconds"] for r in results["memory"])
    save = statistics.median(r["save_seconds"] for r in results["disk"])
    print(
        f"\nmemory: {mem:.3f} s per sync (median of {args.syncs}; {write:.3f} s copying into the "
        f"shared buffer), {nbytes / 1e6:.0f} MB in {args.dtype}, {nbytes / 1e6 / mem:.0f} MB/s"
    )
    print(f"disk:   {disk:.3f} s per sync ({save:.3f} s saving float32 safetensors)")
    print(f"disk / memory: {disk / mem:.1f}x")


if __name__ == "__main__":
    main()
