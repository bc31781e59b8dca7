"""Self-Rewarding end to end on the embedded model, at tiny sizes, as a user runs it.

The runs start from the shared warm-started model (tests/e2e/conftest.py): the zero-shot
embedded model almost never writes a parseable "Score: N", so without it no pair would form.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from srlm.compose import compose, validate
from tests.conftest import ROOT, run_srlm

pytestmark = pytest.mark.e2e

TINY = [
    "logger=none",
    "eval.enabled=false",  # measured once, in test_self_reward_vllm
    "method.iterations=1",
    "method.prompts_per_iteration=4",
    "method.samples_per_prompt=4",
    "reward.samples=2",
    "method.prompt_sampling.max_tokens=80",
    "method.response_sampling.max_tokens=48",
    "reward.sampling.max_tokens=80",
    "method.warm_start.enabled=false",
    "optimizer.epochs=2",
    "optimizer.lr=2e-5",
]


def _check_run(run_dir: Path, init: Path, out: str) -> None:
    assert "margin" in out and "pairs" in out, out  # the summary table was printed
    it = run_dir / "iter_01"
    for name in ("prompts", "samples", "judgements", "pairs"):
        assert (it / f"{name}.jsonl").exists(), name
    judged = [json.loads(x) for x in (it / "judgements.jsonl").read_text().splitlines()]
    assert all(len(r["judgements"]) == 2 and len(r["scores"]) == 2 for r in judged)
    stages = json.loads((it / "stages.json").read_text())
    assert stages["pairs"]["stats"]["pairs"] >= 1, stages["pairs"]

    train = stages["train"]["stats"]
    # DPO moved the training pairs the right way: the implicit reward margin starts at 0
    # (policy == reference) and must end positive, with most pairs ranked correctly.
    assert train["margin_before"] == 0.0
    assert train["margin_after"] > 0, train
    assert train["pair_accuracy_after"] > 0.5, train

    before, after = (
        load_file(init / "model.safetensors"),
        load_file(it / "checkpoint" / "model.safetensors"),
    )
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert len(changed) > len(before) // 2, f"only {len(changed)} of {len(before)} tensors changed"
    assert (it / "checkpoint" / "metrics.jsonl").read_text().strip()


def test_self_reward_hf(warm_model, tmp_path):
    run_dir = tmp_path / "run"
    p = run_srlm(["rollout=hf", f"model.path={warm_model}", f"run_dir={run_dir}", *TINY])
    assert p.returncode == 0, p.stderr[-3000:]
    _check_run(run_dir, warm_model, p.stdout)


EVAL = [
    "eval.enabled=true",
    "eval.max_prompts=3",
    "eval.max_pairs=3",
    "eval.sampling.max_tokens=24",
    "eval.judge.sampling.max_tokens=24",
]


@pytest.mark.vllm
def test_self_reward_vllm(warm_model, tmp_path):
    """The whole loop on vLLM, with the evaluate stage: M_0 and M_1 answer held-out prompts, the
    policy judges labelled pairs, a fixed judge (M_0) compares M_1's answers with M_0's in both
    orders. (`python -m srlm.evaluate RUN --redo` is tested on a cheaper run, in
    tests/e2e/test_system2_e2e.py.) One engine serves the whole run (rollout.keep_engine): it
    starts for M_0 and takes M_1's weights in place, checked against the trainer's probe (on
    by default on CPU)."""
    pytest.importorskip("vllm")
    run_dir = tmp_path / "run"
    p = run_srlm(["rollout=vllm", f"model.path={warm_model}", f"run_dir={run_dir}", *TINY, *EVAL])
    assert p.returncode == 0, p.stderr[-3000:]
    _check_run(run_dir, warm_model, p.stdout)
    records = [json.loads((run_dir / f"iter_{t:02d}" / "stages.json").read_text()) for t in (0, 1)]
    started = [(t, s) for t in (0, 1) for s, r in records[t].items() if "engine_seconds" in r]
    assert started == [(0, "evaluate")], started  # the judge M_0 has an engine of its own
    assert records[1]["evaluate"]["engine_load_seconds"] > 0, records[1]["evaluate"]
    phases = [json.loads(x)["phase"] for x in (run_dir / "phases.jsonl").read_text().splitlines()]
    assert phases == ["evaluate+rollout", "train", "evaluate", "winrates"], phases

    for t in (0, 1):
        ev = json.loads((run_dir / f"iter_{t:02d}" / "stages.json").read_text())["evaluate"][
            "stats"
        ]
        assert ev["eval_prompts"] == 3 and ev["response_tokens"] > 0, ev
        assert ev["judge_n"] == 3 and 0.0 <= ev["judge_accuracy"] <= 1.0, ev
    stages = json.loads((run_dir / "iter_01" / "stages.json").read_text())
    wr = stages["winrates"]["stats"]
    # verdict_mode=probability: every comparison has a verdict in both orders.
    assert wr["judged_vs_m0"] == 3 and wr["unjudged_vs_m0"] == 0, wr
    assert wr["wins_vs_m0"] + wr["ties_vs_m0"] + wr["losses_vs_m0"] == 3
    assert 0.0 < wr["lc_win_rate_vs_m0"] < 1.0, wr
    rows = [
        json.loads(x)
        for x in (run_dir / "iter_01" / "eval_winrates.jsonl").read_text().splitlines()
    ]
    assert len(rows) == 3 and all(r["ab"] and r["ba"] for r in rows)
    assert "win_rate_vs_m0" in (run_dir / "report" / "index.html").read_text()


def test_killed_mid_stage_resumes_without_redoing_finished_stages(warm_model, tmp_path):
    run_dir = tmp_path / "run"
    args = [
        sys.executable,
        "-m",
        "srlm",
        "rollout=hf",
        f"model.path={warm_model}",
        f"run_dir={run_dir}",
        *TINY,
    ]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        args,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        start_new_session=True,
    )
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if "iteration 1: judgements" in line:
            # Kill the whole process group (the parent and its stage child) mid-stage.
            os.killpg(proc.pid, signal.SIGKILL)
            break
    proc.wait(timeout=60)
    assert proc.returncode != 0, "".join(seen)[-2000:]

    it = run_dir / "iter_01"
    stages = json.loads((it / "stages.json").read_text())
    assert set(stages) == {"prompts", "samples"}
    samples_before = (it / "samples.jsonl").read_bytes()
    finished_at = stages["samples"]["finished"]

    p = run_srlm(["rollout=hf", f"model.path={warm_model}", f"run_dir={run_dir}", *TINY])
    assert p.returncode == 0, p.stderr[-3000:]
    assert "iteration 1: prompts" not in p.stdout and "iteration 1: samples" not in p.stdout
    assert "iteration 1: judgements" in p.stdout
    assert (it / "samples.jsonl").read_bytes() == samples_before
    stages = json.loads((it / "stages.json").read_text())
    assert stages["samples"]["finished"] == finished_at
    assert {"judgements", "pairs", "train"} <= set(stages)

    # A finished run is not redone either: the rerun only prints the summary.
    p = run_srlm(["rollout=hf", f"model.path={warm_model}", f"run_dir={run_dir}", *TINY])
    assert p.returncode == 0 and "[srlm] iteration" not in p.stdout

    # The same directory with another config is refused, and says how to start fresh.
    p = run_srlm(
        [
            "rollout=hf",
            f"model.path={warm_model}",
            f"run_dir={run_dir}",
            *TINY,
            "optimizer.beta=0.3",
        ]
    )
    assert p.returncode == 2 and "overwrite=true" in p.stderr and "optimizer.beta" in p.stderr


def test_engine_refuses_stale_weights(warm_model, tmp_path):
    from srlm.errors import SetupError
    from srlm.rollout.engines import make_engine

    cfg = validate(compose(["rollout=hf"]))
    make_engine(str(warm_model), cfg.model, cfg.rollout).close()  # the real probe passes

    stale = tmp_path / "stale"
    stale.mkdir()
    for f in warm_model.iterdir():
        if f.is_file():
            (stale / f.name).symlink_to(f)
    probe = json.loads((warm_model / "probe_logprobs.json").read_text())
    (stale / "probe_logprobs.json").unlink()
    probe["logprobs"] = [x - 0.5 for x in probe["logprobs"]]  # as if the trainer had moved on
    (stale / "probe_logprobs.json").write_text(json.dumps(probe))
    with pytest.raises(SetupError, match="does not serve the weights"):
        make_engine(str(stale), cfg.model, cfg.rollout)

    # A kept engine (rollout.keep_engine) checks each checkpoint it loads in place.
    from srlm.runner import PolicyEngine

    kept = PolicyEngine("", cfg, keep=True)
    kept.serve(str(warm_model))
    kept()
    kept.serve(str(stale))
    try:
        with pytest.raises(SetupError, match="does not serve the weights"):
            kept()
    finally:
        kept.release()
