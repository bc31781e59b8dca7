"""A real multirun through the SLURM launcher on the one-node loopback cluster.

    sudo bash scripts/slurm/up.sh
    flock /tmp/srlm-cpu.lock .venv/bin/python -m pytest -m slurm tests/slurm -s

Each test submits `python -m srlm -m hydra/launcher=slurm ...` from the repository root, as a
user would, with a tiny Self-Rewarding iteration on the embedded model (transformers
rollouts, no warm start), and checks what SLURM and srlm left behind. Without the warm start
the embedded model's judge rarely ends with a parseable score, so usually no pair forms and
the train stage is recorded as skipped: the tests assert on stages, not on pairs.
No accounting database: job states come from `scontrol show job` (kept for MinJobAge=3600 s).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT

pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("slurm_cluster")]

ROLLOUT_STAGES = ("prompts", "samples", "judgements", "pairs")
TINY = [
    "rollout=hf",
    "logger=none",
    "eval.enabled=false",
    "method.iterations=1",
    "method.prompts_per_iteration=2",
    "method.samples_per_prompt=2",
    "reward.samples=1",
    "method.warm_start.enabled=false",
    "method.response_sampling.max_tokens=24",
    "reward.sampling.max_tokens=24",
    "method.prompt_sampling.max_tokens=48",
]
SWEEP_TIMEOUT_S = 420


def _launcher(name: str, parallel: int) -> list[str]:
    return [
        "hydra/launcher=slurm",
        "hydra.launcher.partition=debug",
        "hydra.launcher.cpus_per_task=1",
        "hydra.launcher.mem_gb=4",
        f"hydra.launcher.array_parallelism={parallel}",
        "hydra.launcher.timeout_min=20",
        f"hydra.launcher.name={name}",
    ]


def _command(sweep_values: str, sweep_dir: Path, name: str, parallel: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "srlm",
        "-m",
        f"optimizer.beta={sweep_values}",
        *TINY,
        f"hydra.sweep.dir={sweep_dir}",
        *_launcher(name, parallel),
    ]


def _env() -> dict:
    return {**os.environ, "WANDB_MODE": "offline", "TOKENIZERS_PARALLELISM": "false"}


def scontrol_job(job_id: str) -> dict[str, str]:
    """`scontrol show job -o JOB_ID` as a dict (JobState, RunTime, Restarts, ExitCode...)."""
    out = subprocess.run(
        ["scontrol", "show", "job", "-o", job_id], capture_output=True, text=True, timeout=30
    )
    assert out.returncode == 0, f"scontrol show job {job_id}: {out.stderr}"
    return dict(re.findall(r"(\w+)=(\S*)", out.stdout))


def finished_job(job_id: str, wait_s: float = 60) -> dict[str, str]:
    """The job's scontrol record once SLURM has it ended: submitit's submitting command exits
    as soon as it reads the job's result file, while the job's own script may still be
    finishing (RUNNING, then COMPLETING) for a moment."""
    end = time.time() + wait_s
    info = scontrol_job(job_id)
    while (
        info.get("JobState") in ("PENDING", "CONFIGURING", "RUNNING", "COMPLETING")
        and time.time() < end
    ):
        time.sleep(0.5)
        info = scontrol_job(job_id)
    return info


def _start_now(job_id: str, wait_s: float = 60) -> None:
    """SLURM holds a requeued job back for 120 s (its EligibleTime); that wait tests nothing,
    so once the job is pending again it is made eligible now."""
    end = time.time() + wait_s
    while time.time() < end:
        info = scontrol_job(job_id)
        if info.get("JobState") == "PENDING":
            r = subprocess.run(
                ["scontrol", "update", f"JobId={job_id}", "StartTime=now"],
                capture_output=True,
                text=True,
                timeout=30,
            )
            assert r.returncode == 0, r.stderr
            print(
                f"{time.strftime('%T')} job {job_id} pending; eligible {scontrol_job(job_id).get('EligibleTime')}"
            )
            return
        if info.get("JobState") == "RUNNING" and int(info.get("Restarts", 0)) >= 1:
            return
        time.sleep(0.5)


def submitit_job_ids(sweep_dir: Path) -> list[str]:
    """SLURM job ids from submitit's folders, hydra.sweep.dir/.submitit/<job id>/.

    Several jobs go out as one job array (ids ARRAYID_TASK; the folder named by the bare
    array id holds only the sbatch script); a single job as a plain job (id N). Each job's
    folder holds its pickled submission, <job id>_submitted.pkl."""
    folder = sweep_dir / ".submitit"
    if not folder.is_dir():
        return []
    ids = [p.name for p in folder.iterdir() if (p / f"{p.name}_submitted.pkl").exists()]
    return sorted(ids, key=lambda j: [int(x) for x in j.split("_")])


def _cancel(name: str) -> None:
    subprocess.run(["scancel", "--name", name], capture_output=True, timeout=30)


def _logs(sweep_dir: Path) -> str:
    parts = [f"sweep dir (kept): {sweep_dir}"]
    for p in sorted((sweep_dir / ".submitit").rglob("*_log.*")):
        parts.append(f"--- {p.relative_to(sweep_dir)}\n{p.read_text(errors='replace')[-3000:]}")
    return "\n".join(parts)


def _run_dirs(sweep_dir: Path) -> list[Path]:
    return sorted(p.parent for p in sweep_dir.glob("*/config.yaml"))


def _stages(run_dir: Path) -> dict:
    path = run_dir / "iter_01" / "stages.json"
    return json.loads(path.read_text()) if path.exists() else {}


@pytest.fixture
def sweep_root():
    """A fresh directory for the sweep, outside pytest's basetemp: other pytest sessions on
    the same machine prune old basetemps (keeping three), which could remove it mid-run.
    The test removes it at its end; a failed test leaves it (its path is in the report)."""
    return Path(tempfile.mkdtemp(prefix="srlm-slurm-test-"))


def _report(job_id: str, info: dict[str, str], run_dir: Path | None = None) -> None:
    where = f"  {run_dir.name[:60]}..." if run_dir else ""
    print(
        f"  job {job_id:>8}  state {info.get('JobState')}  exit {info.get('ExitCode')}  "
        f"wall {info.get('RunTime')}  restarts {info.get('Restarts')}{where}"
    )


def _check_run_dir(run_dir: Path) -> dict:
    """srlm's run record: config.yaml, and iteration 1 finished (train trained or skipped)."""
    assert (run_dir / "config.yaml").exists(), run_dir
    stages = _stages(run_dir)
    for stage in ROLLOUT_STAGES:
        assert stage in stages and stages[stage].get("finished"), (run_dir, stage, stages)
    assert "train" in stages, stages  # trained, or {"skipped": ...} when no pair formed
    assert (run_dir / "summary.json").exists()
    return stages


def test_slurm_multirun_two_jobs(sweep_root: Path):
    sweep = sweep_root / "sweep"
    name = f"srlm-test-{uuid.uuid4().hex[:8]}"
    cmd = _command("0.05,0.1", sweep, name, parallel=2)
    print("\n$ python " + " ".join(cmd[1:]))
    started = time.time()
    try:
        p = subprocess.run(
            cmd, cwd=ROOT, capture_output=True, text=True, timeout=SWEEP_TIMEOUT_S, env=_env()
        )
    except subprocess.TimeoutExpired:
        _cancel(name)
        pytest.fail(f"the multirun did not finish in {SWEEP_TIMEOUT_S}s\n{_logs(sweep)}")
    wall = time.time() - started
    assert p.returncode == 0, (
        f"exit {p.returncode}\n{p.stdout[-3000:]}\n{p.stderr[-5000:]}\n{_logs(sweep)}"
    )

    job_ids = submitit_job_ids(sweep)
    assert len(job_ids) == 2, job_ids
    assert len({j.split("_")[0] for j in job_ids}) == 1, "one SLURM job array"
    run_dirs = _run_dirs(sweep)
    assert len(run_dirs) == 2, run_dirs
    # One directory per job (the names are long enough here to be shortened with a hash).
    assert {
        yaml.safe_load((d / "config.yaml").read_text())["optimizer"]["beta"] for d in run_dirs
    } == {0.05, 0.1}

    print(f"multirun finished in {wall:.0f}s (submission to exit of the submitting command)")
    for job_id in job_ids:
        info = finished_job(job_id)
        _report(job_id, info)
        assert info["JobState"] == "COMPLETED", info
        assert info["ExitCode"] == "0:0", info
        folder = sweep / ".submitit" / job_id
        for suffix in ("_log.out", "_log.err", "_result.pkl"):
            assert list(folder.glob(f"*{suffix}")), f"no *{suffix} in {folder}"
    array_id = job_ids[0].split("_")[0]
    assert (sweep / ".submitit" / array_id / f"{array_id}_submission.sh").exists()
    for run_dir in run_dirs:
        stages = _check_run_dir(run_dir)
        print(
            f"  {run_dir.name}: stages {list(stages)}; train "
            f"{'skipped' if 'skipped' in json.dumps(stages['train']) else 'trained'}"
        )
    shutil.rmtree(sweep_root, ignore_errors=True)


def test_slurm_requeue_resumes_finished_stages(sweep_root: Path):
    """`scontrol requeue` a running job after its first stage; the rerun keeps that stage."""
    sweep = sweep_root / "sweep"
    name = f"srlm-test-{uuid.uuid4().hex[:8]}"
    cmd = _command("0.2", sweep, name, parallel=1)
    print("\n$ python " + " ".join(cmd[1:]))
    log = (sweep_root / "submit.log").open("w")
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=_env())
    deadline = time.time() + SWEEP_TIMEOUT_S
    try:
        # Wait until the first stage of iteration 1 is recorded, then requeue the job.
        job_id, before = None, {}
        while time.time() < deadline and proc.poll() is None:
            ids = submitit_job_ids(sweep)
            job_id = ids[0] if ids else None
            dirs = _run_dirs(sweep)
            before = _stages(dirs[0]) if dirs else {}
            if job_id and "prompts" in before:
                break
            time.sleep(0.5)
        assert proc.poll() is None, "the job finished before it could be requeued"
        assert job_id and "prompts" in before, f"the first stage never finished\n{_logs(sweep)}"
        run_dir = _run_dirs(sweep)[0]
        prompts_mtime = (run_dir / "iter_01" / "prompts.jsonl").stat().st_mtime
        assert "judgements" not in before, "too late to requeue: the rollout is nearly done"
        r = subprocess.run(
            ["scontrol", "requeue", job_id], capture_output=True, text=True, timeout=30
        )
        assert r.returncode == 0, r.stderr
        requeued_at = time.time()
        print(f"requeued job {job_id} with stages {list(before)} finished")
        _start_now(job_id)
        proc.wait(timeout=max(1, deadline - time.time()))
    except BaseException:
        _cancel(name)
        proc.kill()
        raise
    finally:
        log.close()
    out = (sweep_root / "submit.log").read_text()
    assert proc.returncode == 0, f"exit {proc.returncode}\n{out[-5000:]}\n{_logs(sweep)}"

    info = finished_job(job_id)
    _report(job_id, info)
    assert info["JobState"] == "COMPLETED", info
    assert int(info["Restarts"]) >= 1, info
    after = _check_run_dir(run_dir)
    # The stages finished before the requeue were not run again: same record, same file.
    for stage, record in before.items():
        assert after[stage] == record, (stage, record, after[stage])
    assert (run_dir / "iter_01" / "prompts.jsonl").stat().st_mtime == prompts_mtime
    # ...and the rest of the iteration ran after it.
    judged = time.mktime(time.strptime(after["judgements"]["finished"], "%Y-%m-%dT%H:%M:%S"))
    assert judged >= int(requeued_at) - 1, (after["judgements"], requeued_at)
    # submitit appends to the job's log across restarts: two starts, the first stage once.
    job_log = (sweep / ".submitit" / job_id / f"{job_id}_0_log.out").read_text()
    assert job_log.count("Starting with JobEnvironment") >= 2, job_log
    assert job_log.count("[srlm] iteration 1: prompts") == 1, job_log
    print(
        f"  resumed: kept {list(before)}, ran {[s for s in after if s not in before]} after the requeue"
    )
    shutil.rmtree(sweep_root, ignore_errors=True)
