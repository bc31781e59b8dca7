"""TPO end to end on the embedded model, at tiny sizes, through the CLI as a user runs it.

The run starts from TPO's own warm start (made once for the module with the shared helper of
tests/e2e/conftest.py): Self-Rewarding's EFT + IFT seed data, which teaches the "Score: N"
judge format, plus the thought layout, which the 135M model rarely follows from the prompt
alone.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from srlm.judging import judge_prompt_text
from tests.conftest import run_srlm

pytestmark = pytest.mark.e2e

SEP = "Here is my response:"  # the generic thought prompt's split key

TINY = [
    "method=tpo",
    "rollout=hf",
    "logger=none",
    "eval.enabled=false",
    "method.iterations=1",
    "method.prompts_per_iteration=2",
    "method.samples_per_prompt=4",
    "method.sampling.max_tokens=160",
    "method.warm_start.enabled=false",
    "reward.samples=1",
    "reward.sampling.max_tokens=80",
    "optimizer.epochs=2",
    "optimizer.lr=2e-5",
]


def _read(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def test_tpo_hf(tpo_warm_model, tmp_path):
    run_dir = tmp_path / "run"
    p = run_srlm([f"model.path={tpo_warm_model}", f"run_dir={run_dir}", *TINY])
    assert p.returncode == 0, p.stderr[-3000:]
    assert "pairs" in p.stdout and "margin" in p.stdout, p.stdout  # the summary table

    it = run_dir / "iter_01"
    stages = json.loads((it / "stages.json").read_text())
    assert stages["samples"]["stats"]["samples"] == 2 * 4
    split = stages["split"]["stats"]
    assert 0 <= split["thought_parse_error_rate"] <= 1

    # The judge saw the instruction and the response, never the thought.
    rows = _read(it / "judgements.jsonl")
    judged = [r for r in rows if r["judged_response"] is not None]
    assert judged, "no output had the thought/response separator"
    for r in rows:
        if r["parse_error"]:
            assert r["judged_response"] is None and r["judgements"] == []
            continue
        # What was judged is exactly the text after the first separator, nothing before it ...
        after = r["output"].partition(SEP)[2].strip()
        assert r["judged_response"] == r["response"] == after
        # ... so the thought is in the judge prompt only as often as the model itself repeated
        # it after the separator (the small model sometimes writes its thoughts out twice).
        seen = judge_prompt_text(r["instruction"], r["judged_response"])
        if len(r["thought"]) >= 20:
            assert seen.count(r["thought"]) == after.count(r["thought"]) + r["instruction"].count(
                r["thought"]
            )

    # Pairs formed: whole outputs (thoughts included) as chosen and rejected.
    pairs = _read(it / "pairs.jsonl")
    assert len(pairs) == stages["pairs"]["stats"]["pairs"] >= 1, stages["pairs"]
    by_sample = {(r["prompt_id"], r["sample"]): r for r in rows}
    for pair in pairs:
        chosen = by_sample[(pair["prompt_id"], pair["chosen_sample"])]
        rejected = by_sample[(pair["prompt_id"], pair["rejected_sample"])]
        assert pair["chosen"] == chosen["output"] and pair["rejected"] == rejected["output"]
        assert not chosen["parse_error"] and chosen["score"] is not None
        assert rejected["parse_error"] or rejected["score"] is not None

    # ... and were trained on: DPO moved the pairs the right way and the weights changed.
    train = stages["train"]["stats"]
    assert train["examples"] == len(pairs)
    assert train["margin_before"] == 0.0 and train["margin_after"] > 0, train
    before = load_file(tpo_warm_model / "model.safetensors")
    after = load_file(it / "checkpoint" / "model.safetensors")
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert len(changed) > len(before) // 2, f"only {len(changed)} of {len(before)} tensors changed"
