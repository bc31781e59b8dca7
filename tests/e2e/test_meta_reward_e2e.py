"""Meta-Rewarding end to end on the embedded model, at tiny sizes, as a user runs it.

The run starts from the shared warm-started model (tests/e2e/conftest.py), which judges in the
"Score: N" format. That warm start teaches no meta-judge verdict: from it, the 135M model wrote
a parseable "Winner: Judgement X" in 0 of 16 meta-judgements, so no judge pair could form. The
run therefore adds a short warm start of its own with the meta-judge format
(method.warm_start_meta_format, not in the paper), on a quarter of the seed judgements to keep
it quick (the full set took about 5 minutes here).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tests.conftest import run_srlm

pytestmark = pytest.mark.e2e

TINY = [
    "method=meta_reward",
    "rollout=hf",
    "logger=none",
    "eval.enabled=false",
    "method.iterations=1",
    "method.prompts_per_iteration=3",
    "method.samples_per_prompt=3",
    "method.response_sampling.max_tokens=40",
    "reward.samples=3",
    "reward.sampling.max_tokens=64",
    "method.meta_judge_sampling.max_tokens=64",
    "method.length_rho=[0.32]",
    "method.train_judge=[true]",
    # Pool omega's win counts over the iteration and do not cap judge pairs: with so few
    # meta-judgements, this keeps a judge pair from vanishing by chance.
    "method.position_weights=iteration",
    "method.judge_pair_share=1.0",
    "method.warm_start.enabled=true",
    "method.warm_start.epochs=2",
    "method.warm_start.batch_size=2",
    "method.warm_start.lr=5e-5",
    "method.warm_start_meta_format=true",
    "optimizer.epochs=2",
    "optimizer.lr=2e-5",
]


def _rows(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def test_meta_reward_hf(warm_model, tmp_path):
    from srlm.data import builtin_path

    # Every 4th seed judgement: 8 rows scoring 0 to 5.
    seeds = tmp_path / "seed_judgements.jsonl"
    seeds.write_text(
        "".join(builtin_path("seed_judgements").read_text().splitlines(keepends=True)[::4])
    )
    run_dir = tmp_path / "run"
    p = run_srlm(
        [f"model.path={warm_model}", f"run_dir={run_dir}", f"data.seed_judgements={seeds}", *TINY]
    )
    assert p.returncode == 0, p.stderr[-3000:]
    assert "pairs" in p.stdout and "margin" in p.stdout, p.stdout[-2000:]  # the summary table

    it = run_dir / "iter_01"
    stages = json.loads((it / "stages.json").read_text())
    for name in (
        "prompts",
        "samples",
        "judgements",
        "actor_pairs",
        "meta_judgements",
        "judge_pairs",
        "pairs",
        "train",
    ):
        assert name in stages, name
    judged = _rows(it / "judgements.jsonl")
    assert len(judged) == 9 and all(len(r["judgements"]) == 3 for r in judged)

    # Meta-judgements ran in both orders: every compared pair (m, n) as A=m,B=n and A=n,B=m.
    meta = _rows(it / "meta_judgements.jsonl")
    assert meta, stages["meta_judgements"]
    orders: dict[tuple, set] = {}
    for r in meta:
        orders.setdefault((r["prompt_id"], r["sample"], *r["pair"]), set()).add(
            (r["first"], r["second"])
        )
    for (_, _, m, n), seen in orders.items():
        assert seen == {(m, n), (n, m)}
    ms = stages["meta_judgements"]["stats"]
    assert ms["meta_judgements"] == len(meta) == 2 * len(orders)
    assert ms["meta_parse_failures"] < len(meta), "no meta-judgement had a verdict"

    # Judge pairs formed, and the training set includes them.
    jp = _rows(it / "judge_pairs.jsonl")
    assert len(jp) >= 1, stages["judge_pairs"]
    assert all(p["chosen"] != p["rejected"] and p["chosen_elo"] > p["rejected_elo"] for p in jp)
    pairs = stages["pairs"]["stats"]
    assert pairs["judge_pairs_used"] >= 1 and pairs["judge_pairs_used"] == len(jp)
    used = _rows(it / "pairs.jsonl")
    assert sum(p["kind"] == "judge" for p in used) == pairs["judge_pairs_used"]
    train = stages["train"]["stats"]
    assert (
        train["examples"] == pairs["pairs"] == pairs["actor_pairs_used"] + pairs["judge_pairs_used"]
    )
    assert train["margin_before"] == 0.0 and train["margin_after"] > 0, train

    # Training changed the weights (against the warm start of this run, i.e. M_1).
    m1 = run_dir / "iter_00" / "checkpoint"
    before, after = (
        load_file(m1 / "model.safetensors"),
        load_file(it / "checkpoint" / "model.safetensors"),
    )
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert len(changed) > len(before) // 2, f"only {len(changed)} of {len(before)} tensors changed"
