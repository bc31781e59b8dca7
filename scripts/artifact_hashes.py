"""Hashes of what srlm computes, to show that a change of structure changed no behaviour.

Two parts, each written to one JSON file of name -> sha256:

- ``configs``: the resolved config of every option of every group and every experiment file,
  composed as ``python -m srlm GROUP=OPTION`` would (cheap: no model loads);
- ``runs``: a tiny run of each method with ``rollout=hf`` and a fixed seed (the warm start, the
  stage files and the trained weights): every stage JSONL row, every stage's statistics except
  clock times, and every tensor of every checkpoint.

    python scripts/artifact_hashes.py configs OUT.json
    python scripts/artifact_hashes.py runs OUT.json [--only self_reward,irpo] [--keep DIR]
        [--set OVERRIDE ...]
    python scripts/artifact_hashes.py compare A.json B.json

Run it before and after a change, then ``compare``: it prints every name whose hash differs.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

TINY = ["rollout=hf", "logger=none", "seed=0", "method.iterations=1", "optimizer.epochs=1"]
EVAL_TINY = [
    "eval.enabled=true",
    "eval.max_prompts=2",
    "eval.max_pairs=2",
    "eval.sampling.max_tokens=16",
    "eval.judge.sampling.max_tokens=16",
]
RUNS: dict[str, list[str]] = {
    "self_reward": [
        "method=self_reward",
        "method.prompts_per_iteration=3",
        "method.samples_per_prompt=2",
        "reward.samples=1",
        "method.prompt_sampling.max_tokens=48",
        "method.response_sampling.max_tokens=32",
        "reward.sampling.max_tokens=48",
        "method.warm_start.enabled=true",
        "method.warm_start.epochs=1",
        *EVAL_TINY,
    ],
    "tpo_pairwise": [
        "method=tpo",
        "reward=pairwise_judge",
        "method.prompts_per_iteration=2",
        "method.samples_per_prompt=3",
        "method.sampling.max_tokens=48",
        "reward.sampling.max_tokens=32",
        "method.warm_start.enabled=false",
        "eval.enabled=false",
    ],
    "meta_reward": [
        "method=meta_reward",
        "method.prompts_per_iteration=2",
        "method.samples_per_prompt=2",
        "method.response_sampling.max_tokens=32",
        "reward.samples=2",
        "reward.sampling.max_tokens=48",
        "method.meta_judge_sampling.max_tokens=48",
        "method.train_judge=[true]",
        "method.position_weights=iteration",
        "method.judge_pair_share=1.0",
        "method.warm_start.enabled=false",
        "method.warm_start_meta_format=false",
        "eval.enabled=false",
    ],
    "irpo": [
        "method=irpo",
        "method.task=add1",
        "method.train_questions=4",
        "method.test_questions=4",
        "method.samples_per_question=3",
        "method.pairs_per_question=1",
        "method.temperatures=[1.0]",
        "method.max_tokens=32",
        "optimizer.batch_size=4",
        "eval.enabled=false",
    ],
    # IRPO's dpo_nll training: the gold solution joins the winners (the paper's GSM8K option),
    # so pairs form even when the small model's own answers are all wrong.
    "irpo_train": [
        "method=irpo",
        "method.task=add2",
        "method.add_gold_to_winners=true",
        "method.train_questions=8",
        "method.test_questions=4",
        "method.samples_per_question=4",
        "method.pairs_per_question=2",
        "method.temperatures=[1.0]",
        "method.max_tokens=40",
        "optimizer.batch_size=4",
        "eval.enabled=false",
    ],
    "thinking_judge": [
        "method=thinking_judge",
        "method.instructions_per_iteration=[6]",
        "method.plans_per_instruction=2",
        "method.executions_per_plan=8",
        "method.max_pairs_per_instruction=1",
        "method.sft_warm_start=true",
        "method.sft_epochs=1",
        "method.response_sampling.max_tokens=32",
        "method.triple_sampling.max_tokens=96",
        "method.plan_sampling.max_tokens=64",
        "method.execution_sampling.max_tokens=64",
        "eval.enabled=false",
        "method.eval_max_tokens=32",
        "eval.max_pairs=2",
    ],
}
# Keys of stage statistics and rows that are clock readings, not results.
CLOCK_KEYS = (
    "seconds",
    "time",
    "finished",
    "started",
    "elapsed",
    "per_second",
    "tokens_per_s",
    "duration",
    "wall",
)


def _digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[
        :16
    ]


def _drop_clock(obj):
    if isinstance(obj, dict):
        return {k: _drop_clock(v) for k, v in obj.items() if not any(c in k for c in CLOCK_KEYS)}
    if isinstance(obj, list):
        return [_drop_clock(v) for v in obj]
    return obj


def config_hashes() -> dict[str, str]:
    sys.path.insert(0, str(ROOT))
    from omegaconf import OmegaConf

    from srlm.compose import compose

    commands = [[]]
    for group in ("method", "model", "reward", "optimizer", "rollout", "trainer", "logger"):
        commands += [[f"{group}={p.stem}"] for p in sorted((ROOT / "conf" / group).glob("*.yaml"))]
    for method in sorted(p.stem for p in (ROOT / "conf" / "method").glob("*.yaml")):
        for reward in sorted(p.stem for p in (ROOT / "conf" / "reward").glob("*.yaml")):
            commands.append([f"method={method}", f"reward={reward}"])
    commands += [[f"experiment={p.stem}"] for p in sorted((ROOT / "experiments").glob("*.yaml"))]
    out = {}
    for overrides in commands:
        try:
            cfg = compose(overrides)
            plain = OmegaConf.to_container(cfg, resolve=False)
            plain.pop("hydra", None)
            out[" ".join(overrides) or "(default)"] = _digest(plain)
        except Exception as e:  # a refused composition is part of the behaviour too
            out[" ".join(overrides) or "(default)"] = f"error: {type(e).__name__}"
    return out


def run_artifacts(run_dir: Path) -> dict[str, str]:
    """name -> hash of a run's artifacts: every stage file's rows and every stage's statistics
    (clock readings left out), every checkpoint's tensors (their exact bytes)."""
    from safetensors.torch import load_file

    out = {}
    for it in sorted(run_dir.glob("iter_*")):
        for f in sorted(it.rglob("*.jsonl")):
            if f.parent.name == "checkpoint":
                continue  # the trainer's own log (losses with clock times)
            rows = [json.loads(x) for x in f.read_text().splitlines() if x.strip()]
            out[str(f.relative_to(run_dir))] = _digest(_drop_clock(rows))
        stages = json.loads((it / "stages.json").read_text())
        for stage, record in stages.items():
            out[f"{it.name}/stages.json:{stage}"] = _digest(_drop_clock(record.get("stats", {})))
        weights = it / "checkpoint" / "model.safetensors"
        if weights.exists():
            tensors = load_file(weights)
            h = hashlib.sha256()
            for k in sorted(tensors):
                h.update(k.encode())
                h.update(
                    tensors[k]
                    .contiguous()
                    .view(-1)
                    .view(dtype=__import__("torch").uint8)
                    .numpy()
                    .tobytes()
                )
            out[f"{it.name}/checkpoint"] = h.hexdigest()[:16]
    return out


def run_hashes(
    only: list[str] | None, keep: Path | None, extra: list[str] | None = None
) -> dict[str, str]:
    base = keep or Path(tempfile.mkdtemp(prefix="srlm-hashes-"))
    out = {}
    for name, overrides in RUNS.items():
        if only and name not in only:
            continue
        run_dir = base / name
        p = subprocess.run(
            [sys.executable, "-m", "srlm", *TINY, *overrides, *(extra or []), f"run_dir={run_dir}"],
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        if p.returncode != 0:
            print(p.stdout[-2000:], p.stderr[-4000:], file=sys.stderr)
            raise SystemExit(f"{name}: the run failed (exit code {p.returncode})")
        out |= {f"{name}/{k}": v for k, v in run_artifacts(run_dir).items()}
        print(f"{name}: done", file=sys.stderr, flush=True)
    return out


def compare(a: Path, b: Path) -> int:
    x, y = json.loads(a.read_text()), json.loads(b.read_text())
    differ = [k for k in sorted(set(x) | set(y)) if x.get(k) != y.get(k)]
    for k in differ:
        print(f"{k}: {x.get(k)} -> {y.get(k)}")
    print(f"{len(set(x) | set(y)) - len(differ)} identical, {len(differ)} differ")
    return 1 if differ else 0


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("what", choices=("configs", "runs", "compare"))
    ap.add_argument("paths", nargs="+", type=Path)
    ap.add_argument("--only", default="", help="comma-separated run names (default: all)")
    ap.add_argument(
        "--keep", type=Path, help="write the runs here instead of a temporary directory"
    )
    ap.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="OVERRIDE",
        help="an override added to every run (repeatable), e.g. rollout.keep_engine=off",
    )
    args = ap.parse_args()
    if args.what == "compare":
        raise SystemExit(compare(*args.paths[:2]))
    hashes = (
        config_hashes()
        if args.what == "configs"
        else run_hashes([s for s in args.only.split(",") if s], args.keep, args.set)
    )
    args.paths[0].write_text(json.dumps(hashes, indent=1, sort_keys=True) + "\n")
    print(f"{len(hashes)} hashes -> {args.paths[0]}")


if __name__ == "__main__":
    main()
