"""Data-parallel rollout replicas (srlm.rollout.replicas): how prompts and devices are split, and
two real replica processes answering like one engine."""

from __future__ import annotations

import multiprocessing as mp

import pytest

from srlm.config import ModelConfig, RolloutConfig, SamplingConfig
from srlm.errors import SetupError
from srlm.rollout.engines import make_engine
from srlm.rollout.replicas import ReplicatedEngine, replica_cores, replica_devices, shard_bounds
from tests.unit.tiny_lm import save_tiny_lm


def test_shard_bounds():
    assert shard_bounds(5, 2) == [(0, 3), (3, 5)]
    assert shard_bounds(6, 3) == [(0, 2), (2, 4), (4, 6)]
    assert shard_bounds(1, 3) == [(0, 1), (1, 1), (1, 1)]
    assert shard_bounds(0, 2) == [(0, 0), (0, 0)]


def test_replica_devices_and_cores():
    gpus = [str(i) for i in range(8)]
    # 4 replicas x tensor parallel 2 over one 8-GPU node.
    assert [replica_devices(i, 2, gpus) for i in range(4)] == [
        ["0", "1"],
        ["2", "3"],
        ["4", "5"],
        ["6", "7"],
    ]
    # Under CUDA_VISIBLE_DEVICES=4,6 the ids are the visible ones.
    assert replica_devices(1, 1, ["4", "6"]) == ["6"]
    assert [replica_cores(i, 2, [0, 1, 2, 3, 4]) for i in range(2)] == [[0, 1, 2], [3, 4]]
    assert [replica_cores(i, 3, [0, 1]) for i in range(3)] == [[0], [1], [0]]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    path = tmp_path_factory.mktemp("tiny_lm")
    save_tiny_lm(path)
    return str(path)


PROMPTS = [
    "what is two plus three ?",
    "hello world",
    "the answer is",
    "a b c",
    "what is four plus five ?",
]


def test_two_replicas_answer_as_one_engine(tiny):
    model = ModelConfig(name="tiny", source=tiny, max_length=64)
    one = make_engine(tiny, model, RolloutConfig(engine="hf", check_weights=False))
    greedy = SamplingConfig(temperature=0.0, top_p=1.0, max_tokens=6)
    expected = one.generate(PROMPTS, greedy)
    expected_lp = one.next_token_logprobs(PROMPTS, [3, 4])
    probe = one.token_logprobs("what is two plus three ?")
    one.close()

    two = make_engine(
        tiny, model, RolloutConfig(engine="hf", data_parallel_size=2, check_weights=False)
    )
    assert isinstance(two, ReplicatedEngine) and len(two.procs) == 2
    pids = {p.pid for p in two.procs}
    assert len(pids) == 2
    try:
        got = two.generate(PROMPTS, greedy)
        # Greedy answers in prompt order, though replica 0 answered the first 3 and replica 1 the rest.
        assert [[c.text for c in o] for o in got] == [[c.text for c in o] for o in expected]
        lp = two.next_token_logprobs(PROMPTS, [3, 4])
        assert len(lp) == len(PROMPTS)
        assert all(
            abs(a - b) < 1e-4
            for r, e in zip(lp, expected_lp, strict=True)
            for a, b in zip(r, e, strict=True)
        )
        assert two.token_logprobs("what is two plus three ?") == pytest.approx(probe, abs=1e-4)
        # n samples per prompt, fewer prompts than replicas.
        sampled = two.generate(PROMPTS[:1], SamplingConfig(temperature=1.0, max_tokens=4), n=3)
        assert len(sampled) == 1 and len(sampled[0]) == 3
        assert two.generate([], greedy) == []
    finally:
        procs = list(two.procs)
        two.close()
    assert not any(p.is_alive() for p in procs)
    assert not [c for c in mp.active_children() if c.name.startswith("srlm-rollout-replica")]


def test_a_replica_that_cannot_start_is_named(tmp_path):
    model = ModelConfig(name="missing", source=str(tmp_path / "nowhere"), max_length=64)
    with pytest.raises(SetupError, match="rollout replica 0 failed"):
        make_engine(
            str(tmp_path / "nowhere"), model, RolloutConfig(engine="hf", data_parallel_size=2)
        )
