"""The thinking judge end to end on the embedded model, at tiny sizes, through the CLI.

The judge trains on fixed triples (method.triples, as the paper does), because the embedded
135M model cannot write a whole triple itself (0 of 6 parsed at these sizes; the triple parser
is tested in tests/unit). It writes plans and verdicts some of the time (about a quarter of the
executions are correct, a third parse), so four instructions with two plans and four
executions each give correct-against-incorrect pairs to train on, on this seed and with room
to spare (every one of 16 (plan, order) cells would have to be all right or all wrong for none
to form).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tests.conftest import ROOT, run_srlm

pytestmark = pytest.mark.e2e

TINY = [
    "method=thinking_judge",
    "rollout=hf",
    "logger=none",
    "method.iterations=1",
    f"method.triples={ROOT / 'tests' / 'data' / 'triples.jsonl'}",
    "method.instructions_per_iteration=[4]",
    "method.plans_per_instruction=2",
    "method.executions_per_plan=4",
    "method.max_pairs_per_instruction=2",
    "method.sft_warm_start=false",
    "method.response_sampling.max_tokens=48",
    "method.triple_sampling.max_tokens=96",
    "method.plan_sampling.max_tokens=64",
    "method.execution_sampling.max_tokens=64",
    "eval.max_pairs=4",
    "method.eval_max_tokens=64",
    "optimizer.lr=2e-5",
    "optimizer.epochs=1",
    "optimizer.batch_size=2",
]


def _read(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def test_thinking_judge_hf(tmp_path):
    run_dir = tmp_path / "run"
    p = run_srlm([f"run_dir={run_dir}", *TINY])
    assert p.returncode == 0, p.stderr[-3000:]
    assert "pos_consistent_acc" in p.stdout, p.stdout  # the summary table was printed

    it = run_dir / "iter_01"
    stages = json.loads((it / "stages.json").read_text())
    assert {"triples", "plans", "executions", "pairs", "train"} <= set(stages)
    triples = _read(it / "triples.jsonl")
    assert len(triples) == 4 and all(t["ok"] for t in triples)
    kept = {t["id"] for t in triples}
    assert stages["triples"]["stats"]["triples"] == 4

    # Every plan was executed in both orders, two executions each, labelled by its order.
    plans = [p for p in _read(it / "plans.jsonl") if p["plan"] is not None]
    assert {p["triple_id"] for p in plans} <= kept
    execs = _read(it / "executions.jsonl")
    for plan in plans:
        mine = [
            e
            for e in execs
            if (e["triple_id"], e["plan_id"]) == (plan["triple_id"], plan["plan_id"])
        ]
        assert sorted(e["order"] for e in mine) == ["AB"] * 2 + ["BA"] * 2, mine
    for e in execs:
        assert e["correct"] == (e["verdict"] == {"AB": "A", "BA": "B"}[e["order"]])

    # Pairs: a correct against an incorrect execution of the same plan and order.
    pairs = _read(it / "pairs.jsonl")
    assert pairs, stages["executions"]["stats"]
    for pr in pairs:
        assert pr["chosen_verdict"] == {"AB": "A", "BA": "B"}[pr["order"]]
        assert pr["rejected_verdict"] != pr["chosen_verdict"]
        assert (
            pr["chosen"].startswith("[Start of Evaluation Plan]")
            and "[Start of Plan Execution]" in pr["chosen"]
        )

    # The judge was evaluated on the same labelled pairs (eval.pairs) before and after
    # training, each in both orders.
    for t in (0, 1):
        ev = json.loads((run_dir / f"iter_{t:02d}" / "stages.json").read_text())["evaluate"][
            "stats"
        ]
        assert ev["triples"] == 4
        assert 0.0 <= ev["pos_consistent_acc"] <= min(ev["acc_first"], ev["acc_second"]) <= 1.0, ev
        rows = _read(run_dir / f"iter_{t:02d}" / "eval.jsonl")
        assert sorted(r["order"] for r in rows) == sorted(["AB", "BA"] * 4)
        assert len({r["triple_id"] for r in rows}) == 4

    train = stages["train"]["stats"]
    assert train["examples"] == len(pairs) and train["margin_before"] == 0.0
    from srlm.models import resolve_model_dir

    init = Path(resolve_model_dir("embedded:smollm2-135m-instruct"))
    before, after = (
        load_file(init / "model.safetensors"),
        load_file(it / "checkpoint" / "model.safetensors"),
    )
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert len(changed) > len(before) // 2, f"only {len(changed)} of {len(before)} tensors changed"
    # DPO on the judge's own executions: the correct verdicts became likelier than the wrong.
    assert train["margin_after"] > 0.0, train
    assert train["chosen_logp_change"] > train["rejected_logp_change"], train
