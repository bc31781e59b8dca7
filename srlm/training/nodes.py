"""Training stages over several nodes of a SLURM allocation (``trainer.num_nodes > 1``).

srlm's driver (the process that runs the iterations) lives on the first node of the allocation:
the batch step of ``sbatch --nodes=N``, or task 0 when Hydra's SLURM launcher runs
``hydra.launcher.nodes=N`` (the other tasks step aside, see srlm.__main__). Rollouts run on that
node. For a training stage the driver writes the stage's inputs to
``iter_XX/train_nodes/args.pkl`` (the run directory is on a file system every node sees) and
starts one task per node with ``srun --overlap``; each task starts ``trainer.devices`` ranks on
its node exactly as a one-node stage does (srlm.training.ranks.launch_ranks), with global
ranks ``node * devices + local`` and the first node's address as the rendezvous. Rank 0 writes
the checkpoint; each node task writes its statistics to ``node_K.json``, and the driver checks
that all nodes agree before it records the stage.

    python -m srlm.training.nodes SPEC_DIR MASTER_ADDR MASTER_PORT     (what srun runs)
"""

from __future__ import annotations

import json
import os
import pickle
import socket
import subprocess
import sys
from pathlib import Path

from srlm.errors import SetupError
from srlm.training.ranks import free_port, launch_ranks, without_clock

NODE_LAUNCH = [sys.executable, "-m", "srlm.training.nodes"]


def allocation_nodes() -> list[str]:
    """The node names of the SLURM job this process runs in, in SLURM's order."""
    nodelist = os.environ.get("SLURM_JOB_NODELIST") or os.environ.get("SLURM_NODELIST")
    if not nodelist:
        return []
    out = subprocess.run(
        ["scontrol", "show", "hostnames", nodelist], capture_output=True, text=True, check=True
    ).stdout
    return out.split()


def check_allocation(num_nodes: int) -> list[str]:
    """The nodes a num_nodes training stage will use; a clear error where there are too few."""
    if num_nodes == 1:
        return []
    nodes = allocation_nodes() if "SLURM_JOB_ID" in os.environ else []
    if not nodes:
        raise SetupError(
            f"trainer.num_nodes={num_nodes} needs a SLURM allocation of {num_nodes} nodes; this "
            f"process is not in a SLURM job. Submit it with `sbatch --nodes={num_nodes} ...` or "
            f"`-m hydra/launcher=slurm hydra.launcher.nodes={num_nodes}` (docs/scaling.md)"
        )
    if len(nodes) < num_nodes:
        raise SetupError(
            f"trainer.num_nodes={num_nodes}, but SLURM job {os.environ['SLURM_JOB_ID']} "
            f"has {len(nodes)} node(s): {','.join(nodes)}"
        )
    return nodes[:num_nodes]


def parse_node_addr(scontrol_line: str) -> str:
    """NodeAddr of a node from `scontrol show node -o NAME`."""
    for field in scontrol_line.split():
        if field.startswith("NodeAddr="):
            return field.split("=", 1)[1]
    raise SetupError(f"scontrol shows no NodeAddr: {scontrol_line[:200]}")


def node_addr(name: str) -> str:
    out = subprocess.run(
        ["scontrol", "show", "node", "-o", name], capture_output=True, text=True, check=True
    ).stdout
    return parse_node_addr(out)


def launch_nodes(rank_fn, args: tuple, out_dir: Path, num_nodes: int) -> dict:
    """Run one training stage, ``rank_fn(*args)`` on every rank, over `num_nodes` nodes; the
    statistics every rank agrees on."""

    nodes = check_allocation(num_nodes)
    spec = Path(out_dir).parent / "train_nodes"
    spec.mkdir(parents=True, exist_ok=True)
    for old in spec.glob("node_*.json"):
        old.unlink()
    (spec / "args.pkl").write_bytes(pickle.dumps((rank_fn, args)))
    # The driver runs on the first node, so a port free here is free on the rendezvous host.
    addr, port = node_addr(nodes[0]), free_port()
    cmd = [
        "srun",
        "--overlap",
        f"--nodes={num_nodes}",
        f"--ntasks={num_nodes}",
        "--ntasks-per-node=1",
        # One node failing ends the step; nodes that finish first wait for the others.
        "--kill-on-bad-exit=1",
        "--wait=0",
        f"--nodelist={','.join(nodes)}",
        "--job-name=srlm-train",
        *NODE_LAUNCH,
        str(spec),
        addr,
        str(port),
    ]
    print(
        f"[srlm] training on {num_nodes} nodes ({','.join(nodes)}), rendezvous {addr}:{port}",
        flush=True,
    )
    p = subprocess.run(cmd)
    if p.returncode != 0:
        raise RuntimeError(
            f"the training step on nodes {','.join(nodes)} failed (srun exit code "
            f"{p.returncode}; see above)"
        )
    results = [json.loads((spec / f"node_{k}.json").read_text()) for k in range(num_nodes)]
    stats = results[0]["stats"]
    if any(without_clock(r["stats"]) != without_clock(stats) for r in results):
        raise RuntimeError(f"training nodes report different statistics: {results}")
    return stats | {"nodes": [r["node"] for r in results]}


def main(argv: list[str]) -> None:

    spec, addr, port = Path(argv[0]), argv[1], int(argv[2])
    rank_fn, args = pickle.loads((spec / "args.pkl").read_bytes())
    trainer_cfg = args[5]
    node, num_nodes = int(os.environ["SLURM_PROCID"]), int(os.environ["SLURM_NTASKS"])
    if num_nodes != trainer_cfg.num_nodes:
        raise SystemExit(
            f"srlm.training.nodes: {num_nodes} tasks for trainer.num_nodes={trainer_cfg.num_nodes}"
        )
    stats = launch_ranks(
        rank_fn,
        trainer_cfg.devices,
        args,
        node_rank=node,
        num_nodes=num_nodes,
        master_addr=addr,
        port=port,
    )
    name = os.environ.get("SLURMD_NODENAME") or socket.gethostname()
    tmp = spec / f".node_{node}.json.tmp"
    tmp.write_text(json.dumps({"node": name, "stats": stats}))
    tmp.replace(spec / f"node_{node}.json")


if __name__ == "__main__":
    main(sys.argv[1:])
