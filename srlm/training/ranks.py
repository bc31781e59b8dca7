"""Training ranks on this node: one process per device, started the way torchrun would.

The function each rank runs is passed in (a module-level function, which spawn can send), so
this module needs nothing of the trainer's and both the trainer and the multi-node program
(srlm.training.nodes) can start ranks through it.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import socket
import sys
import traceback
from collections.abc import Callable

from srlm.procs import child_setup


def launch_ranks(
    rank_fn: Callable[..., dict],
    devices: int,
    args: tuple,
    node_rank: int = 0,
    num_nodes: int = 1,
    master_addr: str = "127.0.0.1",
    port: int | None = None,
) -> dict:
    """Run `rank_fn(*args)` (srlm.training.trainer._train_rank) in `devices` new processes on this node, like torchrun does (on node
    `node_rank` of `num_nodes`: global ranks node_rank * devices + local).

    Lightning's own launcher for strategy=ddp/fsdp (in Lightning 2.6 `_SubprocessScriptLauncher`)
    starts the extra ranks by running the program's command line (sys.argv) again: from srlm's
    spawned phase child, or from pytest, that starts the whole srlm run (or test session) once
    more. `ddp_spawn` would work but trains in children and hands the weights back through a
    temporary checkpoint, and has no FSDP counterpart. So srlm starts the ranks itself (spawn:
    forking a process that already runs torch threads can deadlock) and sets LOCAL_RANK and the
    rendezvous variables; Lightning then treats the processes as launched from outside and only
    joins them into one process group (gloo on CPU, NCCL on GPU).
    """
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    port = port or free_port()
    world = devices * num_nodes
    layout = (node_rank, devices, world, master_addr, port)
    procs = [
        ctx.Process(
            target=_rank_main,
            args=(rank_fn, local, layout, results, args),
            name=f"srlm-train-rank{node_rank * devices + local}",
        )
        for local in range(devices)
    ]
    for p in procs:
        p.start()
    stats: dict[int, dict] = {}
    try:
        while len(stats) < devices:
            try:
                rank, ok, payload = results.get(timeout=1.0)
            except queue.Empty:
                dead = [
                    (node_rank * devices + r, p.exitcode)
                    for r, p in enumerate(procs)
                    if p.exitcode not in (None, 0)
                ]
                if dead:
                    raise RuntimeError(
                        f"training rank {dead[0][0]} died (exit code {dead[0][1]}); see above"
                    ) from None
                continue
            if not ok:
                raise RuntimeError(f"training rank {rank} failed:\n{payload}")
            stats[rank] = payload
    finally:
        if len(stats) < devices:
            # The other ranks may wait forever in a collective for the one that failed.
            for p in procs:
                if p.is_alive():
                    p.terminate()
        for p in procs:
            p.join()
        results.close()
    first = stats[min(stats)]  # keyed by global rank
    if any(without_clock(s) != without_clock(first) for s in stats.values()):
        raise RuntimeError(f"training ranks report different statistics: {stats}")
    return first


def without_clock(stats: dict) -> dict:
    """A rank's statistics without its own clock readings (*_seconds), which differ by rank:
    what every rank must agree on."""
    return {k: v for k, v in stats.items() if not k.endswith("_seconds")}


def _rank_main(rank_fn, local: int, layout: tuple, results, args: tuple) -> None:
    # A rank ends with its parent, and on SIGTERM at once (Lightning's handler trains on).
    child_setup()
    node_rank, devices, world, master_addr, port = layout
    rank = node_rank * devices + local
    os.environ.update(
        MASTER_ADDR=master_addr,
        MASTER_PORT=str(port),
        WORLD_SIZE=str(world),
        RANK=str(rank),
        LOCAL_RANK=str(local),
        NODE_RANK=str(node_rank),
    )
    try:
        results.put((rank, True, rank_fn(*args)))
    except BaseException:
        results.put((rank, False, traceback.format_exc()))
        sys.exit(1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
