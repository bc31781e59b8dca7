"""The train stage's step, four ways side by side in one run, on the same pairs: each sequence
on its own with a plain padding mask and logits over every position (how srlm computed it
before), the same under the 4-D mask the packed rows use, the same with logits only where a
response token is predicted, and the pair packed into one row (the prompt once, both responses
after it; srlm.training.data).

    .venv/bin/python benchmarks/train_stage.py [--pairs PAIRS.jsonl] [--steps 4] [--batch 8]

The pairs are an IRPO run's (iter_NN/pairs.jsonl, prompts rebuilt with the quickstart's
few-shot examples) or, without --pairs, made up with the same shape: a 130-token prompt and
two 26-token answers. Prints tokens/s of each (tokens: the non-padding tokens of the chosen and
rejected sequences, as a trainer that does not pack would count them) and the ratios; the
variants run interleaved, so that machine noise hits all alike.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch


class _AllLogits(torch.nn.Module):
    """The model without `logits_to_keep`: logits at every position."""

    def __init__(self, model):
        super().__init__()
        self.inner = model

    def forward(self, input_ids, attention_mask, position_ids):
        return self.inner(
            input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids
        )


def _pairs(path: Path | None, tok, n: int) -> list[dict]:
    from srlm.training.data import Example, encode_example

    if path is None:
        g = torch.Generator().manual_seed(0)
        ids = lambda k: torch.randint(100, 40000, (k,), generator=g).tolist()  # noqa: E731
        return [{"prefix": ids(130), "branches": [ids(26), ids(26)]} for _ in range(n)]
    import yaml

    from srlm.methods.irpo import build_prompt

    root = Path(__file__).resolve().parent.parent
    shots = yaml.safe_load((root / "experiments/irpo_quickstart.yaml").read_text())["method"]
    rows = [json.loads(x) for x in path.read_text().splitlines() if x.strip()][:n]
    return [
        encode_example(
            tok,
            Example(
                build_prompt(tok, r["question"], shots["examples"][:2]), r["chosen"], r["rejected"]
            ),
            2048,
        )
        for r in rows
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pairs", type=Path, default=None)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--batch", type=int, default=8, help="pairs per step")
    ap.add_argument("--precision", choices=["bf16", "fp32"], default="bf16")
    args = ap.parse_args()

    from srlm.config import ModelConfig
    from srlm.models import resolve_model_dir
    from srlm.training.data import collate, sequence_logps
    from srlm.training.model import load_causal_lm, load_tokenizer

    model_dir = resolve_model_dir("embedded:smollm2-135m-instruct")
    tok = load_tokenizer(model_dir)
    model = load_causal_lm(model_dir, ModelConfig(name="smollm2", source=model_dir))
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-7)
    pairs = _pairs(args.pairs, tok, args.batch)
    tokens = sum(2 * len(p["prefix"]) + sum(map(len, p["branches"])) for p in pairs)

    def separate(rows):  # every (prompt, response) sequence in a row of its own
        return [
            {"prefix": r["prefix"], "branches": [b]}
            for k in (0, 1)
            for r in rows
            for b in [r["branches"][k]]
        ]

    def padding_mask(rows):  # the 2-D mask of plain right-padded sequences (no 4-D mask)
        batch = collate(rows, tok.pad_token_id)
        mask = torch.zeros_like(batch["input_ids"])
        for i, r in enumerate(rows):
            mask[i, : len(r["prefix"]) + sum(map(len, r["branches"]))] = 1
        return batch | {"attention_mask": mask}

    variants = {
        "separate, 2-D mask, all logits": (_AllLogits(model), padding_mask(separate(pairs))),
        "separate, all logits": (_AllLogits(model), collate(separate(pairs), tok.pad_token_id)),
        "separate, kept logits": (model, collate(separate(pairs), tok.pad_token_id)),
        "packed, kept logits": (model, collate(pairs, tok.pad_token_id)),
    }

    def step(name: str) -> float:
        net, batch = variants[name]
        t = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.precision == "bf16"):
            logps, _ = sequence_logps(net, batch)
        logps.sum().backward()
        opt.step()
        opt.zero_grad()
        return time.perf_counter() - t

    for name in variants:  # warm-up
        step(name)
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.steps):
        for name in variants:
            times[name].append(step(name))
    base = None
    print(
        f"{args.batch} pairs per step, {tokens} tokens, {args.precision}, threads={torch.get_num_threads()}"
    )
    for name, ts in times.items():
        rate = tokens / (sum(ts) / len(ts))
        base = base or rate
        print(f"{name:<32}{rate:9.1f} tokens/s   {rate / base:5.2f}x")


if __name__ == "__main__":
    main()
