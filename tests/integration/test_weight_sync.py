"""Weight sync (srlm.rollout.weight_sync): the shared buffer's layout, and real engines taking
the trainer's weights in memory, with the probe check catching a sync that did not happen."""

from __future__ import annotations

import pytest
import torch

from srlm.config import ModelConfig, RolloutConfig
from srlm.errors import SetupError
from srlm.rollout.base import PROBE_TEXT
from srlm.rollout.engines import make_engine
from srlm.rollout.hf_engine import token_logprobs
from srlm.rollout.weight_sync import SharedWeights, WeightSyncWorker, buffer_size, layout
from srlm.training.model import load_causal_lm
from tests.unit.tiny_lm import save_tiny_lm


def test_layout_aligns_every_slot_to_64_bytes():
    slots = layout([("a", (3,)), ("b", (2, 40)), ("c", ())], torch.bfloat16)
    # a: 3 x 2 bytes at 0; b: 160 bytes at 64; c: a scalar at 64 + 192 (160 rounded up).
    assert [(s.offset, s.nbytes) for s in slots] == [(0, 6), (64, 160), (256, 2)]
    assert buffer_size(slots) == 258
    assert {s.dtype for s in slots} == {"bfloat16"}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    path = tmp_path_factory.mktemp("tiny_lm")
    save_tiny_lm(path)
    return str(path)


@torch.no_grad()
def _change(model, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    for p in model.parameters():
        p.mul_(1 + 0.05 * torch.randn(p.shape, generator=gen))


def test_a_second_mapping_of_the_buffer_sees_the_written_weights(tiny):
    """What the engine's worker maps (by path, in its own process) is what the trainer wrote,
    cast to the engine's dtype; a later write shows through the same mapping."""
    model = load_causal_lm(tiny, ModelConfig(name="tiny", source=tiny))
    shared = SharedWeights(model, torch.bfloat16)
    try:
        shared.write(model)
        worker = WeightSyncWorker()
        worker.srlm_attach(*shared.describe())
        seen = dict(_views(worker))
        # The tied output layer is not listed twice.
        assert list(seen) == [n for n, _ in model.named_parameters()]
        for name, p in model.named_parameters():
            assert torch.equal(seen[name], p.detach().to(torch.bfloat16))
        _change(model, 1)
        shared.write(model)
        name, p = next(iter(model.named_parameters()))
        assert torch.equal(dict(_views(worker))[name], p.detach().to(torch.bfloat16))
    finally:
        shared.close()


def _views(worker):
    from srlm.rollout.weight_sync import views

    return views(worker.srlm_buffer, worker.srlm_slots)


def _check(engine, model, tok, source: str) -> float:
    ids = tok(PROBE_TEXT, add_special_tokens=False).input_ids
    return engine.check_probe(token_logprobs(model, ids), 0.01, source)


def test_the_transformers_engine_serves_the_last_sync_not_the_last_step(tiny):
    config = ModelConfig(name="tiny", source=tiny)
    engine = make_engine(tiny, config, RolloutConfig(engine="hf"))
    model = load_causal_lm(tiny, config)
    _check(engine, model, engine.tokenizer, "the start")
    _change(model, 1)
    with pytest.raises(SetupError, match="does not serve the trainer's step 1"):
        _check(engine, model, engine.tokenizer, "the trainer's step 1")
    stats = engine.sync_from(model)
    assert stats["sync_bytes"] == sum(p.numel() * 4 for p in model.state_dict().values())
    _check(engine, model, engine.tokenizer, "the trainer's step 1")
    engine.close()


@pytest.mark.slow
@pytest.mark.vllm
def test_vllm_takes_the_weights_in_memory_and_the_probe_catches_a_missed_sync():
    """A real vLLM engine (its own process on CPU): stale until synced, right after each sync,
    and a change the engine never received is caught."""
    pytest.importorskip("vllm")
    from srlm.models import resolve_model_dir
    from srlm.training.model import load_tokenizer

    model_dir = resolve_model_dir("embedded:smollm2-135m-instruct")
    config = ModelConfig(name="smollm2", source=model_dir)
    model = load_causal_lm(model_dir, config).eval()
    tok = load_tokenizer(model_dir)
    # As the online regimes start it: sleep mode wanted (rollout.sleep=auto), but vLLM's CPU
    # platform has none, so the engine starts without it and sleep() frees nothing.
    engine = make_engine(
        model_dir, config, RolloutConfig(engine="vllm", dtype="float32"), sleep=True
    )
    try:
        assert not engine.sleeps and engine.sleep() == 0.0 and engine.wake() == 0.0
        _check(engine, model, tok, "the start")
        for step in (1, 2):  # the second sync reuses the buffer the first one laid out
            _change(model, step)
            with pytest.raises(SetupError, match=f"does not serve the trainer's step {step}"):
                _check(engine, model, tok, f"the trainer's step {step}")
            stats = engine.sync_from(model)
            assert stats["sync_bytes"] >= 4 * sum(p.numel() for p in model.parameters())
            _check(engine, model, tok, f"the trainer's step {step}")
        path = engine.shared.path
    finally:
        engine.close()
    import os

    assert not os.path.exists(path)  # the shared buffer goes with the engine


@pytest.mark.vllm
def test_sleep_mode_on_is_refused_where_vllm_has_none():
    pytest.importorskip("vllm")
    from vllm.platforms import current_platform

    from srlm.rollout.vllm_engine import sleep_mode

    assert sleep_mode(RolloutConfig(engine="vllm", sleep="off")) is False
    if current_platform.is_sleep_mode_available():
        pytest.skip("this platform has vLLM's sleep mode")
    assert sleep_mode(RolloutConfig(engine="vllm", sleep="auto")) is False
    with pytest.raises(SetupError, match="rollout.sleep=on: vLLM has no sleep mode"):
        sleep_mode(RolloutConfig(engine="vllm", sleep="on"))


@pytest.mark.vllm
def test_the_cpu_engine_binds_its_threads_to_every_core_unless_told_otherwise(monkeypatch):
    pytest.importorskip("vllm")
    import os

    from vllm.platforms import current_platform

    from srlm.rollout.vllm_engine import bind_cpu_threads

    if not current_platform.is_cpu():
        pytest.skip("vLLM's CPU backend only")
    key = "VLLM_CPU_OMP_THREADS_BIND"
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {3, 0, 1})
    for kwargs in ({"cpu_bind": "vllm"}, {"tensor_parallel_size": 2}):
        monkeypatch.delenv(key, raising=False)
        bind_cpu_threads(RolloutConfig(engine="vllm", **kwargs))
        assert key not in os.environ, kwargs
    bind_cpu_threads(RolloutConfig(engine="vllm"))
    assert os.environ[key] == "0,1,3"
    monkeypatch.setenv(key, "1")  # the user's (or a replica's) own binding stays
    bind_cpu_threads(RolloutConfig(engine="vllm"))
    assert os.environ[key] == "1"
