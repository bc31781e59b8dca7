"""Data-parallel rollout: `rollout.data_parallel_size` copies of the engine, one process each.

vLLM's offline ``LLM`` refuses ``data_parallel_size > 1`` in one process (it would hang), and
transformers has no such option, so srlm runs the replicas itself: each is an ordinary engine
(vLLM or transformers, with ``rollout.tensor_parallel_size`` GPUs of its own) in a spawned
process, and this class splits every request's prompts into contiguous shards, one per replica,
and puts the answers back in prompt order. The replicas work at the same time; a stage sees one
engine.

Devices: on a GPU machine replica i gets the GPUs ``[i*tp, (i+1)*tp)`` of the visible ones
(``CUDA_VISIBLE_DEVICES`` in its process), so data x tensor parallel must fit the GPUs. On a CPU
the cores are split between the replicas instead, so that they do not compete for the same
ones (more replicas than cores share them round-robin).
Replica i samples with seed ``rollout.seed + i``: replicas with one seed would draw the same
random numbers for their (different) prompts, which is harmless, but distinct seeds keep runs
with different replica counts from looking accidentally alike.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import traceback
from dataclasses import replace

from srlm.config import ModelConfig, RolloutConfig
from srlm.errors import SetupError
from srlm.procs import child_setup
from srlm.rollout.base import RolloutEngine

# Seconds to wait for a replica to load its model before giving up (70B weights from a slow
# file system take minutes).
START_TIMEOUT_S = 3600


def shard_bounds(n_items: int, n_shards: int) -> list[tuple[int, int]]:
    """Contiguous [start, end) ranges covering n_items, sizes differing by at most one."""
    base, extra = divmod(n_items, n_shards)
    bounds, start = [], 0
    for i in range(n_shards):
        end = start + base + (1 if i < extra else 0)
        bounds.append((start, end))
        start = end
    return bounds


def replica_devices(replica: int, tensor_parallel_size: int, visible: list[str]) -> list[str]:
    """The accelerator ids replica `replica` owns among the `visible` ones."""
    return visible[replica * tensor_parallel_size : (replica + 1) * tensor_parallel_size]


def replica_cores(replica: int, replicas: int, cores: list[int]) -> list[int]:
    """The CPU cores replica `replica` of `replicas` runs on: an equal share of `cores`, or one
    core shared round-robin when there are more replicas than cores."""
    if replicas > len(cores):
        return [cores[replica % len(cores)]]
    start, end = shard_bounds(len(cores), replicas)[replica]
    return cores[start:end]


def _visible_gpus() -> list[str]:
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        return [d for d in env.split(",") if d.strip()]
    import torch

    return [str(i) for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []


def _serve(
    conn,
    factory,
    model_dir: str,
    model: ModelConfig,
    rollout: RolloutConfig,
    gpus: list[str] | None,
    cpus: list[int] | None,
) -> None:
    """A replica's process: load the engine, then answer requests until told to close."""
    child_setup()  # a replica (and its vLLM engine, srlm.rollout.vllm_engine) ends with the phase
    try:
        if gpus is not None:
            os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(gpus)
        if cpus is not None:
            os.sched_setaffinity(0, cpus)
            os.environ["OMP_NUM_THREADS"] = str(len(cpus))
            if rollout.tensor_parallel_size == 1:
                # vLLM's CPU backend binds its threads itself; give it this replica's cores.
                # (With tensor parallelism it wants one list per rank.)
                os.environ["VLLM_CPU_OMP_THREADS_BIND"] = ",".join(map(str, cpus))
            import torch

            torch.set_num_threads(len(cpus))
        engine = factory(model_dir, model, rollout)
    except BaseException:  # noqa: BLE001 - every failure goes back to the parent
        conn.send(("error", traceback.format_exc()))
        return
    conn.send(("ready", None))
    while True:
        op, args = conn.recv()
        if op == "close":
            engine.close()
            conn.send(("ok", None))
            return
        try:
            conn.send(("ok", getattr(engine, op)(*args)))
        except BaseException:  # noqa: BLE001
            conn.send(("error", traceback.format_exc()))


class ReplicatedEngine(RolloutEngine):
    def __init__(self, model_dir: str, model: ModelConfig, rollout: RolloutConfig, factory):
        """``factory(model_dir, model, rollout)`` starts one replica's engine, in its process
        (srlm.rollout.engines.single_engine; a module-level function, so spawn can send it)."""
        from srlm.training.model import load_tokenizer

        n, tp = rollout.data_parallel_size, rollout.tensor_parallel_size
        gpus = _visible_gpus()
        if gpus and n * tp > len(gpus):
            raise SetupError(
                f"rollout.data_parallel_size={n} x rollout.tensor_parallel_size={tp} needs {n * tp} "
                f"GPUs; {len(gpus)} are visible"
            )
        cores = sorted(os.sched_getaffinity(0))
        self.max_length = model.max_length
        ctx = mp.get_context("spawn")
        self.conns, self.procs = [], []
        for i in range(n):
            parent, child = ctx.Pipe()
            own_gpus = replica_devices(i, tp, gpus) if gpus else None
            own_cpus = None if gpus else replica_cores(i, n, cores)
            one = replace(rollout, data_parallel_size=1, seed=rollout.seed + i)
            proc = ctx.Process(
                target=_serve,
                args=(child, factory, model_dir, model, one, own_gpus, own_cpus),
                name=f"srlm-rollout-replica-{i}",
            )
            proc.start()
            child.close()
            self.conns.append(parent)
            self.procs.append(proc)
        try:
            for i in range(n):
                self._receive(i, timeout=START_TIMEOUT_S)
        except BaseException:
            self._stop(wait=0)
            raise
        # Stages format prompts with the tokenizer's chat template here, in the calling process.
        self.tokenizer = load_tokenizer(model_dir)

    def _receive(self, i: int, timeout: float | None = None):
        conn, proc = self.conns[i], self.procs[i]
        waited = 0.0
        while not conn.poll(5.0):
            waited += 5.0
            if not proc.is_alive():
                raise SetupError(
                    f"rollout replica {i} exited (code {proc.exitcode}) without an answer"
                )
            if timeout is not None and waited >= timeout:
                raise SetupError(f"rollout replica {i} did not start within {timeout:.0f} s")
        status, value = conn.recv()
        if status == "error":
            raise SetupError(f"rollout replica {i} failed:\n{value}")
        return value

    def _sharded(self, op: str, items: list, *rest):
        bounds = shard_bounds(len(items), len(self.conns))
        busy = [i for i, (s, e) in enumerate(bounds) if e > s]
        for i in busy:
            s, e = bounds[i]
            self.conns[i].send((op, (items[s:e], *rest)))
        out = []
        for i in busy:
            out.extend(self._receive(i))
        return out

    def generate(self, prompts, sampling, n=1, desc="generate"):
        if not prompts:
            return []
        return self._sharded("generate", prompts, sampling, n, desc)

    def next_token_logprobs(self, prompts, token_ids):
        if not prompts:
            return []
        return self._sharded("next_token_logprobs", prompts, token_ids)

    def token_logprobs(self, text: str) -> list[float]:
        self.conns[0].send(("token_logprobs", (text,)))
        return self._receive(0)

    def _each(self, op: str, *args) -> list:
        for conn in self.conns:
            conn.send((op, args))
        return [self._receive(i) for i in range(len(self.conns))]

    def load(self, model_dir: str) -> None:
        self._each("load", model_dir)

    def check_weights(self, model_dir: str, tolerance: float) -> None:
        """Each replica compares its own engine (at start, each did so in make_engine)."""
        self._each("check_weights", model_dir, tolerance)

    def close(self) -> None:
        for i, conn in enumerate(self.conns):
            try:
                conn.send(("close", ()))
                self._receive(i, timeout=120)
            except (OSError, EOFError, SetupError):
                pass
        self._stop()

    def _stop(self, wait: float = 30) -> None:
        for proc in self.procs:
            proc.join(timeout=wait)
            if proc.is_alive():
                proc.terminate()
                proc.join(timeout=10)
        self.conns, self.procs = [], []
