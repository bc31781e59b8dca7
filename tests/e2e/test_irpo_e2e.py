"""IRPO end to end on the embedded model, at tiny sizes, through the CLI as a user runs it.

Single-digit addition (add1) keeps the prompts short and gives the zero-trained model a mix of
right and wrong samples, so pairs form without help from the gold solutions.
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
    "method=irpo",
    "optimizer=dpo_nll",
    "logger=none",
    "method.task=add1",
    "method.iterations=1",
    "method.train_questions=6",
    "method.test_questions=8",
    "method.samples_per_question=4",
    "method.pairs_per_question=2",
    "method.temperatures=[1.0]",
    "method.max_tokens=40",
    "optimizer.lr=2e-5",
    "optimizer.batch_size=4",
    # Checkpoint selection through the runner: the last step scored on 4 held-out problems.
    "method.validation_questions=4",
    "method.select_checkpoints=1",
]


def _read(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def _check_run(run_dir: Path, out: str) -> None:
    assert "accuracy" in out and "pairs" in out, out  # the summary table was printed
    it = run_dir / "iter_01"
    for name in ("samples", "rewards", "pairs"):
        assert (it / f"{name}.jsonl").exists(), name
    stages = json.loads((it / "stages.json").read_text())
    assert stages["samples"]["stats"]["samples"] == 6 * 4
    rewards = _read(it / "rewards.jsonl")
    assert all(r["reward"] in (0, 1) for r in rewards)
    pairs = stages["pairs"]["stats"]
    assert pairs["pairs"] >= 1, pairs
    # Every pair is a correct sample against an incorrect one of the same question.
    by_key = {(r["question_id"], r["sample"]): r for r in rewards}
    for p in _read(it / "pairs.jsonl"):
        assert by_key[(p["question_id"], p["chosen_sample"])]["reward"] == 1
        assert by_key[(p["question_id"], p["rejected_sample"])]["reward"] == 0

    # Held-out accuracy was measured on the starting model (iteration 0) and after training.
    for t in (0, 1):
        ev = json.loads((run_dir / f"iter_{t:02d}" / "stages.json").read_text())["evaluate"][
            "stats"
        ]
        assert 0.0 <= ev["accuracy"] <= 1.0 and 0.0 <= ev["format_rate"] <= 1.0, ev
        assert len(_read(run_dir / f"iter_{t:02d}" / "eval.jsonl")) == 8

    # The loss was IRPO's: DPO plus the NLL term, logged at every step.
    train = stages["train"]["stats"]
    assert train["examples"] == pairs["pairs"] and train["nll"] > 0, train
    history = _read(it / "checkpoint" / "metrics.jsonl")
    assert history and all("loss/nll" in h and "loss/dpo" in h for h in history)
    assert all(abs(h["loss"] - (h["loss/dpo"] + h["loss/nll"])) < 1e-4 for h in history)
    # The one candidate (the last step) was scored on the validation problems and kept.
    assert [s["step"] for s in train["selection"]] == [train["steps"]], train
    assert 0.0 <= train["selection"][0]["validation_accuracy"] <= 1.0
    assert train["selected_step"] == train["steps"] and "kept step" in out

    from srlm.models import resolve_model_dir

    init = Path(resolve_model_dir("embedded:smollm2-135m-instruct"))
    before, after = (
        load_file(init / "model.safetensors"),
        load_file(it / "checkpoint" / "model.safetensors"),
    )
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert len(changed) > len(before) // 2, f"only {len(changed)} of {len(before)} tensors changed"


def test_irpo_hf(tmp_path):
    run_dir = tmp_path / "run"
    p = run_srlm(["rollout=hf", f"run_dir={run_dir}", *TINY])
    assert p.returncode == 0, p.stderr[-3000:]
    _check_run(run_dir, p.stdout)
