"""Crash test: a tiny run killed at enumerated points, resumed each time, ends as an
uninterrupted run does, and no process of the run is left after any kill.

    .venv/bin/python -m pytest tests/integration/test_crash.py -m slow -q -s

One chain of restarts: the run starts with SRLM_FAULT=<point 1>, which kills its whole process
group with SIGKILL when reached (srlm.procs.fault), is started again with <point 2>, and so on;
the last start has no fault and finishes. Points: before a stage's work (before-file), between
its files and its record in stages.json (after-file), after the record (after-record), in the
middle of training (train-step-1), in every stage of the run: the warm start, the evaluate
stages of M_0 and M_1, the four rollout stages, the train stage. One point SIGKILLs the driver
alone (the phase child must die with it), one sends SIGTERM to the group mid-training (the whole
run must be gone within 30 s). Each run is started in a session of its own, and every process
carries a marker in its environment, so that a left-over process is found whichever parent it
ended under. The final stage rows, stage statistics (clock readings left out) and checkpoint
tensors are compared with one uninterrupted run's.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.conftest import ROOT, script_module
from tests.tiny_models import tiny_model

SEED_JUDGEMENTS = ROOT / "srlm" / "data" / "seed_judgements.jsonl"
# A tiny TPO run (direct responses) with every kind of stage: the warm start (on two seed
# judgements), the evaluate stage of M_0 and M_1, the four rollout stages, a train stage that
# trains (the expected-score judge scores every judgement that ends, so pairs form). The model is
# a tiny random one (tests/tiny_models.py): what is tested is how the run stops and resumes, and
# a 3M-parameter model loads, samples and trains in a fraction of the embedded model's time.
TINY = [
    "rollout=hf",
    "logger=none",
    "seed=0",
    "method=tpo",
    "method.thoughts=false",
    "method.iterations=1",
    "optimizer.epochs=1",
    "method.prompts_per_iteration=2",
    "method.samples_per_prompt=4",
    "method.sampling.max_tokens=16",
    "reward.samples=1",
    "reward.score_mode=expected",
    "reward.sampling.max_tokens=64",
    "method.warm_start.enabled=true",
    "method.warm_start.epochs=1",
    "eval.enabled=true",
    "eval.max_prompts=1",
    "eval.max_pairs=1",
    "eval.sampling.max_tokens=8",
    "eval.judge.sampling.max_tokens=8",
    "eval.win_rates=false",
]

# (point, signal, target), in the order the run reaches them; a rerun after a kill at an
# after-file point redoes that stage, so the next point is still ahead of it.
KILLS = [
    ("0/warm_start:before-file", "KILL", "group"),
    ("iter_00:train-step-1", "TERM", "group"),
    ("0/warm_start:after-file", "KILL", "group"),
    ("0/evaluate:after-file", "KILL", "group"),
    ("1/samples:after-file", "KILL", "group"),
    ("1/split:before-file", "KILL", "driver"),
    ("1/split:after-record", "KILL", "group"),
    ("1/judgements:after-file", "KILL", "group"),
    ("1/pairs:after-file", "KILL", "group"),
    ("1/train:after-file", "KILL", "group"),
    ("1/evaluate:after-record", "KILL", "group"),
]
STOP_LIMIT_S = 30.0


def stage_of(point: str) -> str:
    """The stage a kill point lies in: "1/samples:after-file" -> samples."""
    where = point.split(":")[0]
    if where.startswith("iter_"):  # iter_NN:train-step-K, inside the training of iter_NN
        return "warm_start" if where == "iter_00" else "train"
    return where.split("/")[-1]


def artifacts(run_dir: Path) -> dict[str, str]:
    """name -> hash of every stage's rows, every stage's statistics (clock readings left out)
    and every checkpoint's tensors (scripts/artifact_hashes.py's run_artifacts)."""
    return script_module("artifact_hashes").run_artifacts(run_dir)


def marked(marker: str) -> list[int]:
    """Pids of live processes whose environment carries the run's marker."""
    needle = f"SRLM_CRASH_MARKER={marker}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                if needle not in f.read().split(b"\0"):
                    continue
            with open(f"/proc/{entry}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    continue  # a zombie waiting for its reaper holds nothing
        except OSError:
            continue
        found.append(int(entry))
    return found


def tiny_seed_judgements(path: Path) -> Path:
    """Two of srlm's seed judgements (a low and a high score): a warm start of 3 examples."""
    rows = [json.loads(x) for x in SEED_JUDGEMENTS.read_text().splitlines() if x.strip()]
    low = next(r for r in rows if r["score"] <= 1)
    high = next(r for r in rows if r["score"] >= 4)
    path.write_text(json.dumps(low) + "\n" + json.dumps(high) + "\n")
    return path


def start(
    run_dir: Path, marker: str, point: tuple | None, log: Path, extra: list[str]
) -> subprocess.Popen:
    env = {**os.environ, "SRLM_CRASH_MARKER": marker, "WANDB_MODE": "offline"}
    if point:
        env |= {"SRLM_FAULT": point[0], "SRLM_FAULT_SIGNAL": point[1]}
        env |= {"SRLM_FAULT_TARGET": point[2]}
    with open(log, "w") as out:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "srlm",
                *TINY,
                *extra,
                f"run_dir={run_dir}",
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the group the fault signals
        )


def gone_within(marker: str, limit: float) -> float | None:
    """Seconds until no marked process is left (None: some still run after `limit`)."""
    t0 = time.time()
    while time.time() - t0 < limit:
        if not marked(marker):
            return time.time() - t0
        time.sleep(0.1)
    return None


@pytest.mark.parametrize("keep_engine", ["on", "off"], ids=["kept-engine", "engine-per-phase"])
def test_killed_and_resumed_run_equals_uninterrupted(tmp_path, keep_engine):
    """With rollout.keep_engine (on by default on CPU) the sampling phases run in the driver on
    its one engine; without it each phase has its own process: the same kills, the same
    artifacts, nothing left behind."""
    seed = tiny_seed_judgements(tmp_path / "seed_judgements.jsonl")
    model = tiny_model(tmp_path / "tiny_llama")
    base = [f"data.seed_judgements={seed}", f"model.path={model}"]
    extra = [*base, f"rollout.keep_engine={keep_engine}"]
    figures: dict = {"kills": 0, "points": [], "left": 0}
    t_start = time.time()

    marker = uuid.uuid4().hex
    # SRLM_CRASH_REFERENCE: an uninterrupted run of TINY made before (with the same srlm and
    # tests/integration/test_crash.py's seed file), to rerun only the crashes.
    reference = Path(os.environ.get("SRLM_CRASH_REFERENCE") or tmp_path / "reference")
    if not (reference / "summary.json").exists():
        # In one process (isolate_stages=false): the same artifacts as phases in child
        # processes, without their start-up cost.
        p = start(
            reference,
            marker,
            None,
            tmp_path / "reference.log",
            [*base, "isolate_stages=false", "rollout.keep_engine=off"],
        )
        assert p.wait(timeout=1800) == 0, (tmp_path / "reference.log").read_text()[-3000:]
    figures["reference_s"] = round(time.time() - t_start, 1)
    expected = artifacts(reference)
    assert any(k.endswith("checkpoint") for k in expected)

    run = tmp_path / "crashed"
    for n, point in enumerate(KILLS):
        log = tmp_path / f"kill{n:02d}.log"
        p = start(run, marker, point, log, extra)
        code = p.wait(timeout=1800)
        text = log.read_text()
        assert f"[srlm] fault {point[0]}:" in text, f"{point} not reached:\n{text[-3000:]}"
        if point[1] == "TERM":
            notice = text.split(f"[srlm] fault {point[0]}: SIGTERM")[1].splitlines()[0]
            stamp = float(notice.split()[-1])
            stopped = gone_within(marker, STOP_LIMIT_S)
            assert stopped is not None, f"processes left 30 s after SIGTERM: {marked(marker)}"
            figures["sigterm_stop_s"] = round(time.time() - stamp, 2)
            assert code == 128 + signal.SIGTERM, text[-2000:]
            assert "srlm: error: stopped by SIGTERM" in text
        else:
            # SIGKILL: the group dies at once; a phase child whose driver alone was killed
            # follows through its parent-death signal.
            assert code == -signal.SIGKILL
            assert gone_within(marker, 10.0) is not None, f"left after {point}: {marked(marker)}"
        # Nothing half-done is recorded: a stage killed before its record is not finished.
        stage = point[0].split(":")[0]
        if point[0].endswith(("before-file", "after-file")):
            it, name = stage.split("/")
            stages = run / f"iter_{int(it):02d}" / "stages.json"
            assert not stages.exists() or name not in json.loads(stages.read_text())
        figures["kills"] += 1
        figures["points"].append(point[0])

    p = start(run, marker, None, tmp_path / "final.log", extra)
    assert p.wait(timeout=900) == 0, (tmp_path / "final.log").read_text()[-3000:]
    assert gone_within(marker, 10.0) is not None
    figures["left"] = len(marked(marker))
    got = artifacts(run)
    differ = sorted(k for k in set(got) | set(expected) if got.get(k) != expected.get(k))
    figures["artifacts"] = len(expected)
    figures["identical"] = len(expected) - len(differ)
    figures["stages_hit"] = sorted({stage_of(p) for p in figures["points"]})
    figures["wall_s"] = round(time.time() - t_start, 1)
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    figures["cpu_s"] = round(used.ru_utime + used.ru_stime, 1)
    print(f"\ncrash test: {json.dumps(figures)}")
    assert not differ, f"artifacts differ from the uninterrupted run's: {differ}"
    assert figures["left"] == 0
