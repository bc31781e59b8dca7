"""Weight sync: the trainer's current weights put into a running rollout engine, in memory.

The iterative regime hands weights over through a checkpoint: the trainer saves, the next phase
starts an engine on the saved directory (or, with rollout.keep_engine, the run's one engine
reloads its weights from it: `srlm_reload(path)` below). Training online or semi-online
refreshes the generating model every few optimizer steps, where a save and an engine start per
refresh (tens of seconds on CPU) would cost more than the steps. So the engine lives for the
whole run next to the trainer, and a sync copies the weights across in memory.

vLLM on CPU always runs its engine core, and the worker that holds the model, in a separate
process; its GPU weight-transfer backends (NCCL, CUDA IPC) do not exist there, and its RPC
channel pickles whatever it carries. So the data does not go through the RPC: the trainer
allocates one buffer in shared memory (a file on the RAM-backed /dev/shm, mapped by both
processes), laid out once for the model's parameters in the engine's dtype. A sync is

1. the trainer copies each parameter into its slot (casting to the engine's dtype);
2. one `collective_rpc` tells the worker to reload its weights from views of that buffer;
3. the engine's prefix cache is reset: its KV blocks were computed with the old weights.

The worker side is `WeightSyncWorker`, mixed into vLLM's worker class through
`worker_extension_cls`. It reloads with the model runner's `reload_weights`, not the model's
`load_weights`: on CPU the linear layers repack their weights for the kernels after loading, and
a plain `load_weights` leaves the repacked (old) copy in use. `reload_weights` repacks every
layer it loads, but not an output head tied to the embedding, which loads nothing itself; the
worker repacks that one too (without it the probe check fails after every sync, and a
save-and-reload through vLLM's own `reload_weights(weights_path=...)` is just as stale). With tensor parallelism every
worker maps the whole buffer and takes its own shard while loading, as it does from a
checkpoint.

The transformers engine holds its own copy of the model (the generating model of a semi-online
run is the trainer's model as of the last sync, not as of the last step), so its sync is a
`load_state_dict` in the same process.

After a sync the caller compares the engine's log-probs of the fixed probe text with the
trainer's (`RolloutEngine.check_probe`): a sync that did not take stops the run.

On GPU, vLLM's sleep mode would free the engine's memory during training; it is not available
on CPU, and srlm's GPU path of the persistent engine is untested (no vLLM on the GPU machines
srlm is tested on).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from srlm.errors import SetupError

# Every slot starts on a 64-byte boundary: aligned views for the vector kernels that copy them.
_ALIGN = 64
SHARED_DIR = "/dev/shm"
EXTENSION = "srlm.rollout.weight_sync.WeightSyncWorker"


@dataclass(frozen=True)
class Slot:
    """Where one parameter lives in the shared buffer."""

    name: str
    shape: tuple[int, ...]
    dtype: str  # torch dtype name without "torch.", e.g. "bfloat16"
    offset: int
    nbytes: int


def layout(shapes: list[tuple[str, tuple[int, ...]]], dtype: torch.dtype) -> list[Slot]:
    """Consecutive, aligned slots for the named shapes, all of one dtype."""
    item = torch.empty((), dtype=dtype).element_size()
    slots, offset = [], 0
    for name, shape in shapes:
        nbytes = item * int(torch.Size(shape).numel())
        slots.append(Slot(name, tuple(shape), str(dtype).removeprefix("torch."), offset, nbytes))
        offset += -(-nbytes // _ALIGN) * _ALIGN
    return slots


def buffer_size(slots: list[Slot]) -> int:
    return max((s.offset + s.nbytes for s in slots), default=0)


def views(buffer: torch.Tensor, slots: list[Slot]) -> Iterator[tuple[str, torch.Tensor]]:
    """(name, tensor) pairs viewing the buffer: no copy."""
    for s in slots:
        raw = buffer[s.offset : s.offset + s.nbytes]
        yield s.name, raw.view(getattr(torch, s.dtype)).view(s.shape)


def map_buffer(path: str, size: int) -> torch.Tensor:
    """The shared buffer as a uint8 tensor; writes go to every process that maps it."""
    return torch.from_file(path, shared=True, size=size, dtype=torch.uint8)


class SharedWeights:
    """The trainer's side: a shared buffer laid out for a model's parameters."""

    def __init__(self, model: torch.nn.Module, dtype: torch.dtype, directory: str = SHARED_DIR):
        # named_parameters lists a tied weight once (SmolLM2's lm_head is its embedding), under
        # the name the checkpoint loader expects.
        shapes = [(n, tuple(p.shape)) for n, p in model.named_parameters()]
        self.slots = layout(shapes, dtype)
        self.nbytes = buffer_size(self.slots)
        free = _free_bytes(directory)
        if free < self.nbytes:
            raise SetupError(
                f"weight sync needs {self.nbytes / 2**20:.0f} MiB of shared memory in "
                f"{directory}, which has {free / 2**20:.0f} MiB free (a container's default "
                "/dev/shm is 64 MiB: start it with a larger --shm-size)"
            )
        self.path = str(Path(directory) / f"srlm-weights-{os.getpid()}-{uuid.uuid4().hex[:8]}")
        self.buffer = map_buffer(self.path, self.nbytes)

    @torch.no_grad()
    def write(self, model: torch.nn.Module) -> None:
        params = dict(model.named_parameters())
        for name, view in views(self.buffer, self.slots):
            view.copy_(params[name].detach())

    def describe(self) -> tuple[str, list[dict]]:
        """What the engine's worker needs to map the buffer: its path and the slots."""
        return self.path, [asdict(s) for s in self.slots]

    def close(self) -> None:
        self.buffer = None
        Path(self.path).unlink(missing_ok=True)


def _free_bytes(directory: str) -> int:
    st = os.statvfs(directory)
    return st.f_bavail * st.f_frsize


class WeightSyncWorker:
    """Mixed into vLLM's worker class (`worker_extension_cls`); reached by `collective_rpc`.

    Its method names carry srlm's prefix: vLLM refuses an extension whose names clash with the
    worker's own.
    """

    def srlm_attach(self, path: str, slots: list[dict]) -> None:
        self.srlm_slots = [Slot(**(s | {"shape": tuple(s["shape"])})) for s in slots]
        self.srlm_buffer = map_buffer(path, buffer_size(self.srlm_slots))

    def srlm_reload(self, path: str | None = None) -> None:
        """Reload the model from the shared buffer, or from a checkpoint directory `path`
        (benchmarks/weight_sync.py compares the two)."""
        from vllm.model_executor.layers.vocab_parallel_embedding import ParallelLMHead

        if path is None:
            self.reload_weights(weights_iterator=views(self.srlm_buffer, self.srlm_slots))
        else:
            self.reload_weights(weights_path=path)
        # An output head tied to the embedding (SmolLM2, Llama 3.2) loads nothing of its own,
        # so the reload does not process it again; on CPU it keeps the packed copy of the old
        # embedding it made at start and serves the old logits (the probe measured half the
        # change missing). Processing it again packs the new one.
        for module in self.model_runner.get_model().modules():
            if isinstance(module, ParallelLMHead):
                module.quant_method.process_weights_after_loading(module)
