"""Training throughput of float32 vs bf16 autocast on this machine, side by side in one run.

    python benchmarks/train_precision.py [--steps 4] [--batch 4] [--tokens 256]

Prints tokens/s of each precision and their ratio; both run the same DPO-shaped steps
(chosen + rejected sequences, forward and backward) on the embedded model, interleaved so
that machine noise hits both alike.
"""

from __future__ import annotations

import argparse
import time

import torch


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--batch", type=int, default=4, help="sequences per step")
    ap.add_argument("--tokens", type=int, default=256, help="tokens per sequence")
    args = ap.parse_args()

    from srlm.config import ModelConfig
    from srlm.models import resolve_model_dir
    from srlm.training.model import load_causal_lm

    model_dir = resolve_model_dir("embedded:smollm2-135m-instruct")
    model = load_causal_lm(model_dir, ModelConfig(name="smollm2", source=model_dir))
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-7)
    ids = torch.randint(0, 49152, (args.batch, args.tokens))
    device_type = "cpu"

    def step(bf16: bool) -> float:
        t = time.perf_counter()
        with torch.autocast(device_type, dtype=torch.bfloat16, enabled=bf16):
            logits = model(input_ids=ids).logits
        loss = torch.nn.functional.cross_entropy(
            logits[:, :-1].float().reshape(-1, logits.size(-1)), ids[:, 1:].reshape(-1)
        )
        loss.backward()
        opt.step()
        opt.zero_grad()
        return time.perf_counter() - t

    step(False), step(True)  # warm-up
    times = {False: [], True: []}
    for _ in range(args.steps):
        for bf16 in (False, True):
            times[bf16].append(step(bf16))
    tok = args.batch * args.tokens
    fp32 = tok / (sum(times[False]) / args.steps)
    bf16 = tok / (sum(times[True]) / args.steps)
    print(f"float32      {fp32:8.1f} tokens/s")
    print(f"bf16-mixed   {bf16:8.1f} tokens/s")
    print(f"ratio bf16/fp32: {bf16 / fp32:.2f}x  (threads={torch.get_num_threads()})")


if __name__ == "__main__":
    main()
