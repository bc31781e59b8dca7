"""srlm's vLLM rollout engine against raw vLLM `LLM.generate`, on the same prompts and sampling
settings, side by side in one run, in float32 and bfloat16.

    .venv/bin/python benchmarks/rollout_vllm.py [--questions 120] [--samples 6] [--cpu-bind all]

The prompts are the IRPO quickstart's (two-shot, two-digit addition); each engine generates
greedily once per question, then `--samples` samples per question at T=0.8, max 40 tokens.
Prints, per dtype, output tokens/s of each and their ratio, with and without the engine start
(srlm's start includes its stale-weight probe). On CPU the raw side binds its threads as vLLM
does by default (one core per worker kept for the scheduler process), srlm's as
`rollout.cpu_bind` says (`--cpu-bind`, default all: every core).
"""

from __future__ import annotations

import argparse
import os
import time


def _prompts(tok, n: int) -> list[str]:
    from pathlib import Path

    import yaml

    from srlm.data.arithmetic import train_test_split
    from srlm.methods.irpo import build_prompt

    root = Path(__file__).resolve().parent.parent
    shots = yaml.safe_load((root / "experiments/irpo_quickstart.yaml").read_text())["method"]
    questions, _ = train_test_split("add2", n, 100, seed=0)
    return [build_prompt(tok, q["question"], shots["examples"][:2]) for q in questions]


def _raw(model_dir: str, dtype: str, prompts: list[str], samples: int) -> dict:
    from vllm import LLM, SamplingParams

    t0 = time.time()
    llm = LLM(model=model_dir, dtype=dtype, seed=0, max_model_len=2048, enforce_eager=True)
    tok = llm.get_tokenizer()
    inputs = [{"prompt_token_ids": tok(p, add_special_tokens=False).input_ids} for p in prompts]
    started = time.time()
    tokens = 0
    for n, temperature in ((1, 0.0), (samples, 0.8)):
        outs = llm.generate(
            inputs, SamplingParams(n=n, temperature=temperature, max_tokens=40), use_tqdm=False
        )
        tokens += sum(len(c.token_ids) for o in outs for c in o.outputs)
    done = time.time()
    llm.llm_engine.engine_core.shutdown()
    return {"start": started - t0, "generate": done - started, "tokens": tokens}


def _srlm(model_dir: str, dtype: str, prompts: list[str], samples: int, cpu_bind: str) -> dict:
    from srlm.config import ModelConfig, RolloutConfig, SamplingConfig
    from srlm.rollout.engines import make_engine

    t0 = time.time()
    bind = os.environ.get("VLLM_CPU_OMP_THREADS_BIND")
    engine = make_engine(
        model_dir,
        ModelConfig(name="smollm2", source=model_dir),
        RolloutConfig(engine="vllm", dtype=dtype, cpu_bind=cpu_bind),
    )
    # srlm binds the engine's threads through the environment; the raw side keeps vLLM's own.
    if bind is None:
        os.environ.pop("VLLM_CPU_OMP_THREADS_BIND", None)
    started = time.time()
    tokens = 0
    for n, temperature in ((1, 0.0), (samples, 0.8)):
        outs = engine.generate(
            prompts,
            # top_p 1 as in the raw call: vLLM's top-p filter costs time of its own on CPU
            SamplingConfig(temperature=temperature, top_p=1.0, max_tokens=40),
            n=n,
            desc="srlm",
        )
        tokens += sum(c.num_tokens for o in outs for c in o)
    done = time.time()
    engine.close()
    return {"start": started - t0, "generate": done - started, "tokens": tokens}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--questions", type=int, default=120)
    ap.add_argument("--samples", type=int, default=6)
    ap.add_argument(
        "--cpu-bind",
        default="all",
        choices=("all", "vllm"),
        help="srlm's rollout.cpu_bind (vllm: the same core binding as the raw side)",
    )
    args = ap.parse_args()
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "2")
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")

    from srlm.models import resolve_model_dir
    from srlm.training.model import load_tokenizer

    model_dir = resolve_model_dir("embedded:smollm2-135m-instruct")
    prompts = _prompts(load_tokenizer(model_dir), args.questions)
    print(f"{len(prompts)} prompts: greedy once, then {args.samples} samples each at T=0.8")
    for dtype in ("float32", "bfloat16"):
        raw = _raw(model_dir, dtype, prompts, args.samples)
        ours = _srlm(model_dir, dtype, prompts, args.samples, args.cpu_bind)
        for name, r in (("raw vLLM", raw), ("srlm engine", ours)):
            print(
                f"{dtype:<9} {name:<12} start {r['start']:5.1f} s  generate {r['generate']:6.1f} s"
                f"  {r['tokens'] / r['generate']:6.0f} tok/s  with start "
                f"{r['tokens'] / (r['start'] + r['generate']):6.0f} tok/s"
            )
        print(
            f"{dtype:<9} srlm / raw: {raw['generate'] / ours['generate']:.2f}x generation, "
            f"{(raw['start'] + raw['generate']) / (ours['start'] + ours['generate']):.2f}x with start"
        )


if __name__ == "__main__":
    main()
