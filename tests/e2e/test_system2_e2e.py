"""System-2 decoders and their distillation end to end on the embedded model, at tiny sizes,
through the commands a user runs: ``python -m srlm experiment=system2_quickstart``, then
``python -m srlm.evaluate RUN inference=...`` and ``python -m srlm.inference``.

    pytest -m e2e tests/e2e/test_system2_e2e.py
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_srlm

pytestmark = pytest.mark.e2e


def _read(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def _stages(run_dir: Path, t: int) -> dict:
    return json.loads((run_dir / f"iter_{t:02d}" / "stages.json").read_text())


def test_distilling_self_consistency_then_evaluating_another_decoder(tmp_path):
    run_dir = tmp_path / "run"
    p = run_srlm(
        [
            "experiment=system2_quickstart",
            "inference@method.teacher=self_consistency",
            "rollout=hf",
            "logger=none",
            f"run_dir={run_dir}",
            "method.iterations=1",
            "method.task=add2",
            "method.train_questions=6",
            "method.test_questions=3",
            "method.teacher_samples=2",
            "method.min_agreement=0.5",
            "method.teacher.n=2",
            "method.teacher.sampling.max_tokens=24",
            "optimizer.batch_size=2",
            "optimizer.lr=1e-5",
        ]
    )
    assert p.returncode == 0, p.stderr[-3000:]
    it = run_dir / "iter_01"
    teacher = _read(it / "teacher.jsonl")
    assert len(teacher) == 6 * 2
    # The teacher's own answers: self-consistency over inference.n samples, traced.
    assert all(len(r["trace"]["answers"]) == 2 for r in teacher)
    kept = _read(it / "distill.jsonl")
    stages = _stages(run_dir, 1)
    assert stages["filter"]["stats"]["kept"] == len(kept) >= 1
    assert all(r["agreement"] >= 0.5 for r in kept)
    train = stages["train"]["stats"]
    # Fine-tuned on the kept answers alone, which became likelier.
    assert train["examples"] == len(kept) and train["chosen_logp_change"] > 0, train
    for t in (0, 1):
        ev = _stages(run_dir, t)["evaluate"]["stats"]
        assert ev["decode_questions"] == 3
        assert {"decode_direct_accuracy", "decode_self_consistency_accuracy"} <= set(ev)
        gain = ev["decode_self_consistency_accuracy"] - ev["decode_direct_accuracy"]
        assert ev["decode_self_consistency_accuracy_gain"] == pytest.approx(gain)
        assert ev["decode_self_consistency_tokens"] > ev["decode_direct_tokens"]
    report = (run_dir / "report" / "index.html").read_text()
    assert "Decoders on held-out questions" in report

    # Another decoder on the same models, without retraining, everything measured again
    # (--redo) on fewer questions: its answers and intermediate texts are added; direct's are
    # measured again beside it.
    trained = (it / "checkpoint" / "model.safetensors").stat().st_mtime
    e = run_srlm(
        [
            str(run_dir),
            "--redo",
            "eval.max_questions=2",
            "inference=s2a",
            "inference.step_max_tokens=24",
            "inference.sampling.max_tokens=24",
        ],
        module="srlm.evaluate",
    )
    assert e.returncode == 0, e.stderr[-3000:]
    assert "report:" in e.stdout and "iteration 1: train" not in e.stdout
    assert (it / "checkpoint" / "model.safetensors").stat().st_mtime == trained
    for t in (0, 1):
        rows = _read(run_dir / f"iter_{t:02d}" / "eval_decode_s2a.jsonl")
        assert len(rows) == 2 and all("rewrite" in r["trace"] for r in rows)
        ev = _stages(run_dir, t)["evaluate"]["stats"]
        assert ev["decode_questions"] == 2 and "decode_s2a_accuracy_gain" in ev, ev
    # Only evaluation settings may change on an existing run.
    e = run_srlm([str(run_dir), "optimizer.beta=0.3"], module="srlm.evaluate")
    assert e.returncode == 2 and "only evaluation settings" in e.stderr, e.stderr


def test_decoders_side_by_side_on_a_task(tmp_path):
    out = tmp_path / "table"
    p = run_srlm(
        [
            "--tasks",
            "multiples",
            "--decoders",
            "direct,cove",
            "--questions",
            "2",
            "--out",
            str(out),
            "rollout=hf",
            "inference.sampling.max_tokens=24",
            "inference.step_max_tokens=24",
        ],
        module="srlm.inference",
    )
    assert p.returncode == 0, p.stderr[-3000:]
    table = json.loads((out / "table.json").read_text())
    assert set(table["multiples"]) == {"direct", "cove"}
    assert table["multiples"]["cove"]["calls"] > table["multiples"]["direct"]["calls"] == 1
    assert "| cove |" in (out / "table.md").read_text()
    cove = _read(out / "multiples" / "cove.jsonl")
    assert all("draft" in r["trace"] and "checks" in r["trace"] for r in cove)


def test_a_bad_decoder_setting_fails_before_any_model_loads(tmp_path):
    p = run_srlm(
        [
            "experiment=system2_quickstart",
            "inference@method.teacher=self_consistency",
            "method.teacher.n=1",
            f"run_dir={tmp_path / 'run'}",
        ]
    )
    assert p.returncode != 0
    assert "method.teacher.n=1" in p.stderr and "Loading" not in p.stderr, p.stderr
    assert not (tmp_path / "run" / "iter_00").exists()
