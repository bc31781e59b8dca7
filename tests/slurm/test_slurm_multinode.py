"""Training over two SLURM nodes (trainer.num_nodes=2) on the loopback cluster (node1, node2:
two slurmds on this machine, scripts/slurm/up.sh).

    sudo bash scripts/slurm/up.sh
    .venv/bin/python -m pytest -m slurm tests/slurm/test_slurm_multinode.py -s

The run is submitted as a user would on a cluster, through Hydra's SLURM launcher with
`hydra.launcher.nodes=2`: submitit starts srlm in one task per node; task 0 drives the run and
task 1 steps aside; the training stage goes to both nodes through `srun --overlap`, one CPU
rank (gloo) on each. A tiny IRPO iteration on the embedded model (transformers rollouts)
gives the pairs: arithmetic with gold answers forms pairs without a warm start.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.slurm.test_slurm_multirun import (
    _cancel,
    _env,
    _logs,
    _report,
    _run_dirs,
    finished_job,
    submitit_job_ids,
    sweep_root,  # noqa: F401 - fixture
)

pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("slurm_cluster")]

IRPO_TINY = [
    "method=irpo",
    "rollout=hf",
    "logger=none",
    "eval.enabled=false",
    "method.iterations=1",
    "method.task=add1",
    "method.train_questions=6",
    "method.test_questions=4",
    "method.samples_per_question=4",
    "method.pairs_per_question=2",
    "method.temperatures=[1.0]",
    "method.max_tokens=40",
    "optimizer.batch_size=2",
    "optimizer.lr=2e-5",
]
# Rollout, two training ranks and the held-out evaluation on a 2-core machine: about 3 min
# alone, more beside other work.
TIMEOUT_S = 900


def test_training_stage_on_two_nodes(sweep_root: Path):  # noqa: F811
    sweep = sweep_root / "sweep"
    name = f"srlm-test-{uuid.uuid4().hex[:8]}"
    cmd = [
        sys.executable,
        "-m",
        "srlm",
        "-m",
        "seed=0",
        *IRPO_TINY,
        "trainer=cpu_ddp",
        "trainer.devices=1",
        "trainer.num_nodes=2",
        f"hydra.sweep.dir={sweep}",
        "hydra/launcher=slurm",
        "hydra.launcher.partition=debug",
        "hydra.launcher.nodes=2",
        "hydra.launcher.cpus_per_task=1",
        "hydra.launcher.mem_gb=4",
        "hydra.launcher.timeout_min=20",
        f"hydra.launcher.name={name}",
    ]
    print("\n$ python " + " ".join(cmd[1:]))
    started = time.time()
    try:
        p = subprocess.run(
            cmd, cwd=ROOT, capture_output=True, text=True, timeout=TIMEOUT_S, env=_env()
        )
    except subprocess.TimeoutExpired:
        _cancel(name)
        pytest.fail(f"the run did not finish in {TIMEOUT_S}s\n{_logs(sweep)}")
    wall = time.time() - started
    assert p.returncode == 0, (
        f"exit {p.returncode}\n{p.stdout[-3000:]}\n{p.stderr[-5000:]}\n{_logs(sweep)}"
    )

    [job_id] = submitit_job_ids(sweep)
    info = finished_job(job_id)
    print(f"run finished in {wall:.0f}s (submission to exit of the submitting command)")
    _report(job_id, info)
    assert info["JobState"] == "COMPLETED" and info["ExitCode"] == "0:0", info
    assert info["NumNodes"] == "2" and info["NodeList"] == "node[1-2]", info

    # Task 0 drove the run; task 1 stepped aside (submitit logs each task on its own).
    folder = sweep / ".submitit" / job_id
    log0 = (folder / f"{job_id}_0_log.out").read_text()
    log1 = (folder / f"{job_id}_1_log.out").read_text()
    assert "[srlm] iteration 1: train" in log0 and "training on 2 nodes (node1,node2)" in log0, log0
    assert "SLURM task 1 of 2" in log1 and "iteration 1" not in log1, log1

    [run_dir] = _run_dirs(sweep)
    stages = json.loads((run_dir / "iter_01" / "stages.json").read_text())
    pairs = stages["pairs"]["stats"]["pairs"]
    assert pairs >= 2, stages["pairs"]
    train = stages["train"]["stats"]
    print(
        f"  train: world {train['world_size']}, nodes {train['nodes']}, {train['examples']} pairs, "
        f"margin {train['margin_before']:+.4f} -> {train['margin_after']:+.4f}"
    )
    assert train["world_size"] == 2 and train["nodes"] == ["node1", "node2"], train
    # The ranks on the two nodes ended with the same weights, and the checkpoint holds them.
    hashes = train["rank_weights_sha256"]
    assert len(hashes) == 2 and hashes[0] == hashes[1], hashes
    ckpt = run_dir / "iter_01" / "checkpoint"
    assert json.loads((ckpt / "train_stats.json").read_text())["rank_weights_sha256"] == hashes
    # DPO on the training pairs moved the preference margin up.
    assert train["margin_after"] > train["margin_before"], train
    for k in (0, 1):
        node = json.loads((run_dir / "iter_01" / "train_nodes" / f"node_{k}.json").read_text())
        assert node["node"] == f"node{k + 1}"
    shutil.rmtree(sweep_root, ignore_errors=True)


def test_sbatch_of_a_single_run_on_two_nodes(tmp_path: Path):
    """Without Hydra's launcher: `sbatch --nodes=2 --wrap "python -m srlm ... trainer.num_nodes=2"`."""
    run_dir = tmp_path / "run"
    out = tmp_path / "job.out"
    args = " ".join(
        [
            *IRPO_TINY,
            "trainer=cpu_ddp",
            "trainer.devices=1",
            "trainer.num_nodes=2",
            f"run_dir={run_dir}",
        ]
    )
    wrap = f"cd {ROOT} && {sys.executable} -m srlm {args}"
    p = subprocess.run(
        [
            "sbatch",
            "--wait",
            "--nodes=2",
            "--ntasks-per-node=1",
            "--cpus-per-task=1",
            "--time=20",
            f"--output={out}",
            "--job-name=srlm-test-sbatch",
            f"--wrap={wrap}",
        ],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        env=_env(),
    )
    log = out.read_text() if out.exists() else ""
    assert p.returncode == 0, f"{p.stdout}\n{p.stderr}\n{log[-5000:]}"
    train = json.loads((run_dir / "iter_01" / "stages.json").read_text())["train"]["stats"]
    assert train["nodes"] == ["node1", "node2"] and train["world_size"] == 2, train
    assert "training on 2 nodes" in log
