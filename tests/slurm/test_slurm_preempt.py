"""SLURM preemption and requeue of a plain `sbatch` job on the loopback cluster: the job's
processes get SIGTERM mid-training, the whole run stops within 30 s (none left over, not even an
orphan that SLURM's process tracking would no longer see), and the requeued job resumes at the
first unfinished stage and finishes.

    sudo bash scripts/slurm/up.sh
    .venv/bin/python -m pytest -m slurm tests/slurm/test_slurm_preempt.py -s

`scontrol requeue` ends a running job as preemption with PreemptMode=REQUEUE does (SIGTERM to
its processes, SIGKILL after KillWait) and queues it again; the requeued job runs the same batch
script, with SLURM_RESTART_COUNT=1.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.slurm.test_slurm_multinode import IRPO_TINY
from tests.slurm.test_slurm_multirun import _start_now, finished_job, scontrol_job

pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("slurm_cluster")]

TIMEOUT_S = 900


def first_start_processes(marker: str) -> list[int]:
    """Live processes of the job's first start: the run's marker, and no SLURM_RESTART_COUNT."""
    found = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                env = f.read().split(b"\0")
            with open(f"/proc/{entry}/stat") as f:
                zombie = f.read().rsplit(")", 1)[1].split()[0] == "Z"
        except OSError:
            continue
        if f"SRLM_CRASH_MARKER={marker}".encode() in env and not zombie:
            if not any(
                e.startswith(b"SLURM_RESTART_COUNT=") and e != b"SLURM_RESTART_COUNT=0" for e in env
            ):
                found.append(int(entry))
    return found


def test_requeue_mid_training_stops_the_run_and_resumes(tmp_path: Path):
    run_dir = tmp_path / "run"
    out = tmp_path / "job.out"
    marker = uuid.uuid4().hex
    srlm = [sys.executable, "-m", "srlm", *IRPO_TINY, f"run_dir={run_dir}"]
    r = subprocess.run(
        [
            "sbatch",
            "--parsable",
            "--partition=debug",
            "--nodes=1",
            "--cpus-per-task=2",
            "--mem=4G",
            "--requeue",
            "--open-mode=append",
            f"--output={out}",
            f"--chdir={ROOT}",
            f"--job-name=srlm-preempt-{marker[:8]}",
            f"--export=ALL,SRLM_CRASH_MARKER={marker},WANDB_MODE=offline",
            # The first start freezes after its first training step (SIGSTOP to its process
            # group, srlm.procs.fault), so that the requeue lands mid-training whatever the
            # machine's load; SLURM sends SIGCONT before SIGTERM. The requeued start runs free.
            '--wrap=if [ -z "$SLURM_RESTART_COUNT" ]; then export SRLM_FAULT=iter_01:train-step-1'
            f" SRLM_FAULT_SIGNAL=STOP; fi; exec {shlex.join(srlm)}",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert r.returncode == 0, r.stderr
    job = r.stdout.strip().split(";")[0]
    deadline = time.time() + TIMEOUT_S
    try:
        # Requeue once the first start is frozen after its first training step.
        while time.time() < deadline:
            text = out.read_text() if out.exists() else ""
            if "[srlm] fault iter_01:train-step-1: SIGSTOP" in text:
                break
            assert scontrol_job(job).get("JobState") in ("PENDING", "RUNNING"), text[-3000:]
            time.sleep(0.5)
        before = json.loads((run_dir / "iter_01" / "stages.json").read_text())
        assert "train" not in before
        r = subprocess.run(["scontrol", "requeue", job], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        requeued = time.time()
        left = first_start_processes(marker)
        while left and time.time() - requeued < 30:
            time.sleep(0.2)
            left = first_start_processes(marker)
        stop_s = time.time() - requeued
        assert not left, f"processes of the first start still run 30 s after the requeue: {left}"
        _start_now(job)
        info = finished_job(job, wait_s=max(1, deadline - time.time()))
    except BaseException:
        subprocess.run(["scancel", job], capture_output=True)
        raise
    text = out.read_text()
    assert info["JobState"] == "COMPLETED", (info, text[-4000:])
    assert int(info["Restarts"]) >= 1, info
    assert "srlm: error: stopped by SIGTERM" in text, text[-4000:]
    after = json.loads((run_dir / "iter_01" / "stages.json").read_text())
    for stage, record in before.items():  # recorded before the requeue: kept, not run again
        assert after[stage] == record, stage
    assert "train" in after and (run_dir / "iter_01" / "checkpoint" / "model.safetensors").exists()
    assert text.count("[srlm] iteration 1: samples") == 1, text[-4000:]
    print(
        f"\n  job {job}: requeued mid-training, first start gone in {stop_s:.1f} s, "
        f"resumed with {list(before)} kept, restarts {info['Restarts']}, {info['JobState']}"
    )
