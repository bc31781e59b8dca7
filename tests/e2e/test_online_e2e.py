"""The online regime end to end on the embedded model, at tiny sizes, through the CLI: IRPO with
GRPO, the engine synced in memory every step, killed with SIGKILL in its second iteration and
resumed from the first iteration's checkpoint; the same on two DDP ranks, each with its own
engine; a sync that does not reach the engine stops the run; and semi-online Self-Rewarding
judged by the current policy."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tests.conftest import ROOT, run_srlm

pytestmark = pytest.mark.e2e

TINY = [
    "rollout=hf",
    "logger=none",
    "method=irpo",
    "optimizer=grpo",
    "method.task=add1",
    "method.iterations=2",
    "method.train_questions=6",
    "method.test_questions=4",
    "method.samples_per_question=6",
    "method.temperatures=[1.0]",
    "method.max_tokens=24",
    "optimizer.lr=2e-5",
    "trainer.sync_every=1",
    "trainer.steps_per_iteration=2",
    "trainer.prompts_per_step=3",
]


def _stages(run_dir: Path, t: int) -> dict:
    return json.loads((run_dir / f"iter_{t:02d}" / "stages.json").read_text())


def test_online_grpo_runs_syncs_and_resumes_after_a_kill(tmp_path):
    run_dir = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "srlm", f"run_dir={run_dir}", *TINY],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1200,
        # After the first optimizer step of iteration 2: the whole process group is killed.
        env={**os.environ, "SRLM_FAULT": "iter_02:train-step-1", "PYTHONUNBUFFERED": "1"},
        start_new_session=True,
    )
    assert proc.returncode != 0 and "fault iter_02:train-step-1" in proc.stdout, proc.stdout
    assert "train" in _stages(run_dir, 1)
    assert not (run_dir / "iter_02" / "stages.json").exists() or "train" not in _stages(run_dir, 2)

    p = run_srlm([f"run_dir={run_dir}", *TINY])
    assert p.returncode == 0, p.stderr[-3000:]
    # Resumed from iteration 1's checkpoint and optimizer state, not from the start.
    assert "resuming at iteration 2, step 2" in p.stdout, p.stdout
    assert "iteration 1: online" not in p.stdout

    for t in (1, 2):
        train = _stages(run_dir, t)["train"]["stats"]
        # Two optimizer steps, each after a sync that the probe check accepted.
        assert train["steps"] == 2 and train["syncs"] == 2, train
        assert train["sync_probe_diff_max"] < 0.05, train
        assert train["examples"] >= 2 and train["kl"] is not None, train
        history = [
            json.loads(x)
            for x in (run_dir / f"iter_{t:02d}" / "checkpoint" / "metrics.jsonl").open()
        ]
        assert [h["step"] for h in history] == [2 * t - 1, 2 * t]
        assert all("grpo/clip_fraction" in h and "sample_accuracy" in h for h in history)
    for t in (0, 1, 2):
        assert 0.0 <= _stages(run_dir, t)["evaluate"]["stats"]["accuracy"] <= 1.0
    assert "accuracy" in p.stdout  # the summary table

    from srlm.models import resolve_model_dir

    start = load_file(
        Path(resolve_model_dir("embedded:smollm2-135m-instruct")) / "model.safetensors"
    )
    end = load_file(run_dir / "iter_02" / "checkpoint" / "model.safetensors")
    assert sum(not torch.equal(start[k], end[k]) for k in start) > len(start) // 2


def test_online_grpo_on_two_ddp_ranks_each_with_its_own_engine(tmp_path):
    """trainer=cpu_ddp: two ranks (gloo), each sampling its half of a step's prompts from its
    own synced engine; DDP averages the gradients, the ranks end with equal weights."""
    run_dir = tmp_path / "run"
    tiny = [a for a in TINY if not a.startswith(("method.iterations", "trainer.prompts"))]
    p = run_srlm(
        [
            f"run_dir={run_dir}",
            *tiny,
            "method.iterations=1",
            "trainer=cpu_ddp",
            "trainer.prompts_per_step=4",
        ]
    )
    assert p.returncode == 0, p.stderr[-3000:]
    assert "iteration 1: online, 2 steps (sync every 1), 2 ranks" in p.stdout, p.stdout
    train = _stages(run_dir, 1)["train"]["stats"]
    assert train["world_size"] == 2 and train["steps"] == 2 and train["syncs"] == 2, train
    hashes = train["rank_weights_sha256"]
    assert len(hashes) == 2 and hashes[0] == hashes[1], hashes
    assert train["sync_probe_diff_max"] < 0.05, train
    history = [json.loads(x) for x in (run_dir / "iter_01" / "checkpoint" / "metrics.jsonl").open()]
    # Each step's row covers both ranks' prompts: 2 prompts each, 6 samples per prompt.
    assert all(h["reward_judgements"] == 4 * 6 for h in history), history
    assert 0.0 <= _stages(run_dir, 1)["evaluate"]["stats"]["accuracy"] <= 1.0

    from srlm.models import resolve_model_dir

    start = load_file(
        Path(resolve_model_dir("embedded:smollm2-135m-instruct")) / "model.safetensors"
    )
    end = load_file(run_dir / "iter_01" / "checkpoint" / "model.safetensors")
    assert sum(not torch.equal(start[k], end[k]) for k in start) > len(start) // 2


def test_a_sync_that_does_not_reach_the_engine_stops_the_run(tmp_path):
    """The probe check after a sync: an engine that drops the weights it is sent keeps serving
    the old model, and the first sync after the trainer's weights moved raises."""
    from srlm.compose import compose, validate
    from srlm.errors import SetupError
    from srlm.methods import get_method
    from srlm.rollout.engines import make_engine
    from srlm.rollout.hf_engine import HfEngine
    from srlm.rundir import RunDir
    from srlm.training.model import load_causal_lm, load_tokenizer
    from srlm.training.online import OnlineModule

    config = validate(compose([f"run_dir={tmp_path / 'run'}", *TINY]))
    method = get_method("irpo")(config, RunDir(config.run_dir))
    from srlm.models import resolve_model_dir

    model_dir = resolve_model_dir(config.model.source, config.model.path)
    engine = make_engine(model_dir, config.model, config.rollout)
    assert isinstance(engine, HfEngine)
    engine.sync_from = lambda model: {}  # the deliberately wrong sync: nothing arrives
    model = load_causal_lm(model_dir, config.model, config.trainer)
    module = OnlineModule(
        model, config, method, lambda: engine, load_tokenizer(model_dir), None, {}
    )
    module.sync()  # step 0: the engine already serves the start
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(1.05)
    module.step = 1
    with pytest.raises(SetupError, match="does not serve the trainer's weights at step 1"):
        module.sync()


def test_semi_online_self_rewarding_judged_by_the_current_policy(warm_model, tmp_path):
    """Online Self-Rewarding: fresh answers to seed instructions, judged by the policy itself
    (reward=self_judge through the same synced engine), DPO on the best-against-worst pairs,
    the engine synced every 2 steps."""
    run_dir = tmp_path / "run"
    p = run_srlm(
        [
            f"run_dir={run_dir}",
            f"model.path={warm_model}",
            "rollout=hf",
            "logger=none",
            "eval.enabled=false",
            "method=self_reward",
            "method.warm_start.enabled=false",  # warm_model is the warm start already
            "method.iterations=1",
            "method.samples_per_prompt=4",
            "method.response_sampling.max_tokens=32",
            "reward.samples=2",
            "reward.sampling.max_tokens=64",
            "optimizer.lr=2e-5",
            "trainer.sync_every=2",
            "trainer.steps_per_iteration=2",
            "trainer.prompts_per_step=2",
            "trainer.reference=last_sync",
        ]
    )
    assert p.returncode == 0, p.stderr[-3000:]
    train = _stages(run_dir, 1)["train"]["stats"]
    assert train["steps"] == 2 and train["syncs"] == 1, train
    assert train["examples"] >= 2 and train["score_mean"] is not None, train
    history = [json.loads(x) for x in (run_dir / "iter_01" / "checkpoint" / "metrics.jsonl").open()]
    for h in history:
        # Each step's pairs came from the judge's scores; its health is logged per step.
        assert h["pairs"] >= 1 and h["examples"] == h["pairs"], h
        assert h["reward_judgements"] == 2 * 4 * 2 and 0 <= h["reward_parse_failure_rate"] <= 1
    # Step 1 trains against the reference it was sampled from (margin 0 before the update).
    assert abs(history[0]["rewards/margin"]) < 1e-4, history[0]
    start = load_file(warm_model / "model.safetensors")
    end = load_file(run_dir / "iter_01" / "checkpoint" / "model.safetensors")
    assert sum(not torch.equal(start[k], end[k]) for k in start) > len(start) // 2
