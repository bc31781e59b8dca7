"""srlm's train stage against TRL's DPOTrainer on the same pairs in the same order, side by side.

    .venv/bin/pip install -e '.[bench]'        # TRL, for this benchmark only
    .venv/bin/python benchmarks/train_vs_trl.py [--pairs 32] [--batch 8] [--repeats 2]

Both train the embedded SmolLM2-135M-Instruct with DPO (sigmoid loss, beta 0.1, lr 1e-6
constant, AdamW, gradient clipping at 1.0, one epoch, no shuffling, dropout off in both) on the
same pairs: IRPO-style prompts (two worked examples of two-digit addition, the embedded chat
template) with a right and a wrong worked answer, about 236 tokens a side. TRL is configured at
its best here: its own bf16, reference log-probs precomputed once (`precompute_ref_log_probs`,
so it keeps no second model), the same threads. Its padding-free mode is disabled in TRL 1.16
("temporarily unavailable after a refactor"), so it pads each batch to its longest sequence.

For float32 and bf16 autocast, the runs interleave (srlm, TRL, srlm, TRL, ...) so that machine
noise hits both alike, and it prints tokens/s for the whole stage (model load, reference pass,
steps, statistics, save) and for the steps alone, with the ratio srlm / TRL. Tokens: the
non-padding tokens of the chosen and rejected sequences (prompt + response, each side), what
either trainer computes without packing. Then the per-step losses of both, side by side: they
start at log 2 and must agree within 2% after (bf16 rounds differently in the two).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

BETA, LR, MAX_LENGTH = 0.1, 1e-6, 512


def make_pairs(tok, n: int) -> list[dict]:
    """n prompt/chosen/rejected texts: a worked answer and the same with the tens miscounted."""
    from srlm.data.arithmetic import FEW_SHOT, train_test_split
    from srlm.methods.irpo import build_prompt

    rows, _ = train_test_split("add2", n, 1, seed=0)
    shots = [{"question": s["question"], "reasoning": s["reasoning"]} for s in FEW_SHOT["add2"][:2]]
    pairs = []
    for r in rows:
        wrong = str(int(r["answer"]) + 10)
        pairs.append(
            {
                "prompt": build_prompt(tok, r["question"], shots),
                "chosen": r["solution"],
                "rejected": r["solution"].rsplit(r["answer"], 1)[0] + wrong,
            }
        )
    return pairs


def count_tokens(tok, pairs: list[dict]) -> int:
    def n(text: str) -> int:
        return len(tok(text, add_special_tokens=False).input_ids)

    # +1 per response: both trainers append the end-of-turn token.
    return sum(2 * n(p["prompt"]) + n(p["chosen"]) + n(p["rejected"]) + 2 for p in pairs)


def run_srlm(model_dir: str, pairs: list[dict], batch: int, bf16: bool) -> dict:
    from srlm.config import ModelConfig, OptimizerConfig, TrainerConfig
    from srlm.training.data import Example
    from srlm.training.trainer import train

    out = Path(tempfile.mkdtemp(prefix="srlm_bench_"))
    t0 = time.perf_counter()
    stats = train(
        [Example(p["prompt"], p["chosen"], p["rejected"]) for p in pairs],
        model_dir,
        out / "ckpt",
        ModelConfig(name="smollm2", source=model_dir, max_length=MAX_LENGTH),
        OptimizerConfig(
            loss="dpo",
            beta=BETA,
            lr=LR,
            lr_end=LR,
            schedule="constant",
            batch_size=batch,
            epochs=1,
            shuffle=False,
        ),
        TrainerConfig(
            accelerator="cpu",
            precision="bf16-mixed" if bf16 else "32-true",
            num_threads=torch_threads(),
        ),
    )
    whole = time.perf_counter() - t0
    losses = [
        json.loads(line)["loss"]
        for line in (out / "ckpt" / "metrics.jsonl").read_text().splitlines()
    ]
    shutil.rmtree(out, ignore_errors=True)
    return {"whole": whole, "steps": stats["steps_seconds"], "losses": losses}


def run_trl(model_dir: str, pairs: list[dict], batch: int, bf16: bool) -> dict:
    import torch
    from datasets import Dataset
    from torch.utils.data import SequentialSampler
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig, DPOTrainer

    class InOrder(DPOTrainer):
        # The same pairs in the same order as srlm's (optimizer.shuffle=false).
        def _get_train_sampler(self, *args, **kwargs):
            return SequentialSampler(self.train_dataset)

    out = Path(tempfile.mkdtemp(prefix="trl_bench_"))
    t0 = time.perf_counter()
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    args = DPOConfig(
        output_dir=str(out),
        beta=BETA,
        loss_type=["sigmoid"],
        learning_rate=LR,
        lr_scheduler_type="constant",
        warmup_steps=0,
        weight_decay=0.0,
        max_grad_norm=1.0,
        per_device_train_batch_size=batch,
        num_train_epochs=1,
        max_length=MAX_LENGTH,
        precompute_ref_log_probs=True,
        bf16=bf16,
        use_cpu=True,
        logging_steps=1,
        report_to="none",
        save_strategy="no",
        disable_dropout=True,
        dataloader_num_workers=0,
        seed=0,
    )
    trainer = InOrder(
        model=model, args=args, train_dataset=Dataset.from_list(pairs), processing_class=tok
    )
    t1 = time.perf_counter()
    trainer.train()
    steps = time.perf_counter() - t1
    trainer.save_model(str(out / "ckpt"))
    whole = time.perf_counter() - t0
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    shutil.rmtree(out, ignore_errors=True)
    return {"whole": whole, "steps": steps, "losses": losses}


def torch_threads() -> int:
    return len(os.sched_getaffinity(0))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pairs", type=int, default=32)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--precisions", default="fp32,bf16")
    args = ap.parse_args()

    import torch

    from srlm.models import resolve_model_dir
    from srlm.training.model import load_tokenizer

    torch.set_num_threads(torch_threads())
    # Imported before any timing, so that neither side's first run pays for them.
    import lightning  # noqa: F401
    import trl  # noqa: F401

    model_dir = resolve_model_dir("embedded:smollm2-135m-instruct")
    tok = load_tokenizer(model_dir)
    pairs = make_pairs(tok, args.pairs)
    tokens = count_tokens(tok, pairs)
    print(
        f"{len(pairs)} pairs, {tokens / (2 * len(pairs)):.0f} tokens a side, batch {args.batch}, "
        f"{torch_threads()} threads; tokens/s over {tokens} tokens"
    )
    runs: dict[tuple[str, str], list[dict]] = {}
    for _ in range(args.repeats):
        for precision in args.precisions.split(","):
            bf16 = precision == "bf16"
            for name, fn in (("srlm", run_srlm), ("trl", run_trl)):
                runs.setdefault((precision, name), []).append(
                    fn(model_dir, pairs, args.batch, bf16)
                )

    print(f"\n{'':<6}{'':<8}{'whole stage':>14}{'steps only':>14}")
    for precision in args.precisions.split(","):
        rates = {}
        for name in ("srlm", "trl"):
            rs = runs[(precision, name)]
            rates[name] = [tokens / statistics.median(r[k] for r in rs) for k in ("whole", "steps")]
            print(f"{precision:<6}{name:<8}{rates[name][0]:>10.1f} t/s{rates[name][1]:>10.1f} t/s")
        ratio = [a / b for a, b in zip(rates["srlm"], rates["trl"], strict=True)]
        print(f"{precision:<6}{'ratio':<8}{ratio[0]:>12.2f}x{ratio[1]:>12.2f}x")

    print("\nper-step loss (first repeat)")
    for precision in args.precisions.split(","):
        ours, theirs = runs[(precision, "srlm")][0]["losses"], runs[(precision, "trl")][0]["losses"]
        for i, (a, b) in enumerate(zip(ours, theirs, strict=False), start=1):
            print(f"{precision:<6}step {i}: srlm {a:.5f}  trl {b:.5f}  diff {abs(a - b) / b:6.2%}")


if __name__ == "__main__":
    main()
