"""Non-default method x reward x optimizer combinations end to end on the embedded model, at tiny
sizes, through the CLI: a pairwise judge for TPO, SFT (STaR) and GRPO for IRPO. (The pair losses
differ from DPO only in their function, tested by hand in tests/unit/test_losses.py and in the
trainer in tests/unit/test_trainer_losses.py.)

    pytest -m e2e tests/e2e/test_axes_e2e.py
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_srlm

pytestmark = pytest.mark.e2e

COMMON = ["rollout=hf", "logger=none", "method.iterations=1", "eval.enabled=false"]


def _stages(run_dir: Path, t: int = 1) -> dict:
    return json.loads((run_dir / f"iter_{t:02d}" / "stages.json").read_text())


def _read(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def test_tpo_with_a_pairwise_judge(tpo_warm_model, tmp_path):
    run_dir = tmp_path / "run"
    p = run_srlm(
        [
            *COMMON,
            "method=tpo",
            "reward=pairwise_judge",
            f"model.path={tpo_warm_model}",
            f"run_dir={run_dir}",
            "method.prompts_per_iteration=2",
            "method.samples_per_prompt=3",
            "method.sampling.max_tokens=120",
            "method.warm_start.enabled=false",
            "reward.sampling.max_tokens=64",
            "optimizer.epochs=1",
        ]
    )
    assert p.returncode == 0, p.stderr[-3000:]
    stats = _stages(run_dir)["judgements"]["stats"]
    # Pairwise health: every comparison in both orders, order flips and ties counted.
    assert {"parse_failure_rate", "tie_rate", "order_flip_rate", "verdict_tie_rate"} <= set(stats)
    rows = _read(run_dir / "iter_01" / "judgements.jsonl")
    judged = [r for r in rows if r["judged_response"] is not None]
    by_prompt = {}
    for r in judged:
        by_prompt.setdefault(r["prompt_id"], []).append(r)
    # K(K-1) comparisons per prompt, each stored once (with the response shown first).
    assert stats["judgements"] == sum(len(g) * (len(g) - 1) for g in by_prompt.values())
    assert all("elo" in r and "verdicts" in r for r in judged)


IRPO_TINY = [
    "method=irpo",
    "method.task=add1",
    "method.train_questions=6",
    "method.test_questions=8",
    "method.samples_per_question=4",
    "method.temperatures=[1.0]",
    "method.max_tokens=40",
]


def test_irpo_with_sft(tmp_path):
    run_dir = tmp_path / "run"
    p = run_srlm(
        [
            *COMMON,
            *IRPO_TINY,
            "optimizer=sft",
            f"run_dir={run_dir}",
            "method.pairs_per_question=2",
            "optimizer.batch_size=4",
        ]
    )
    assert p.returncode == 0, p.stderr[-3000:]
    stages = _stages(run_dir)
    train = stages["train"]["stats"]
    assert train["examples"] == stages["pairs"]["stats"]["pairs"] >= 1, stages["pairs"]
    # SFT on the correct samples only: no rejected side was scored or trained.
    assert "rejected_logp_change" not in train and train["chosen_logp_change"] > 0, train
    history = _read(run_dir / "iter_01" / "checkpoint" / "metrics.jsonl")
    assert history and all("loss/nll" in h and "loss/dpo" not in h for h in history)


def test_irpo_with_grpo_trains_on_the_groups(tmp_path):
    """optimizer=grpo in the iterative regime: each question's scored samples are one group,
    the groups whose samples all scored the same are left out, and the samples better than
    their group gain log-prob against the worse ones."""
    run_dir = tmp_path / "run"
    p = run_srlm(
        [
            *COMMON,
            *IRPO_TINY,
            "optimizer=grpo",
            f"run_dir={run_dir}",
            "optimizer.lr=2e-5",
            "optimizer.epochs=2",
            "optimizer.batch_size=2",
        ]
    )
    assert p.returncode == 0, p.stderr[-3000:]
    it = run_dir / "iter_01"
    train = _stages(run_dir)["train"]["stats"]
    by_question: dict = {}
    for r in _read(it / "rewards.jsonl"):
        if r["finish_reason"] != "length":
            by_question.setdefault(r["question_id"], set()).add(r["reward"])
    mixed = sum(len(v) > 1 for v in by_question.values())
    assert mixed >= 1, by_question
    assert train["groups"] == len(by_question) and train["groups_trained"] == mixed, train
    assert train["groups_uniform"] == len(by_question) - mixed
    assert train["advantage_logp_gap"] > 0, train
    history = _read(it / "checkpoint" / "metrics.jsonl")
    assert history[0]["grpo/ratio_mean"] == pytest.approx(1.0, abs=1e-3)
    assert all("grpo/kl" in h and "grpo/clip_fraction" in h for h in history)
