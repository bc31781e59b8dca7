"""Data-parallel rollout on vLLM: two vLLM replicas of the embedded model, one process and one
core each, answer like one engine (rollout.data_parallel_size=2).

    pytest -m e2e tests/e2e/test_rollout_replicas.py -s
"""

from __future__ import annotations

import pytest

from srlm.config import ModelConfig, RolloutConfig, SamplingConfig
from srlm.models import resolve_model_dir
from srlm.rollout import chat_prompt
from srlm.rollout.engines import make_engine
from srlm.rollout.replicas import ReplicatedEngine

pytestmark = [pytest.mark.e2e, pytest.mark.vllm]

QUESTIONS = [
    "What is 2 + 3?",
    "Name a colour.",
    "What is the capital of France?",
    "Say hello.",
    "What is 10 - 4?",
]


def test_vllm_replicas_answer_in_prompt_order():
    pytest.importorskip("vllm")
    source = "embedded:smollm2-135m-instruct"
    model_dir = resolve_model_dir(source)
    model = ModelConfig(name="smollm2_135m", source=source, max_length=512)
    rollout = RolloutConfig(engine="vllm", cpu_kvcache_gib=1)

    one = make_engine(model_dir, model, rollout)
    prompts = [chat_prompt(one.tokenizer, q) for q in QUESTIONS]
    # Two candidate tokens (" 5" and " 6" as the model spells them) after each prompt: values
    # that differ from prompt to prompt, so answers put back in the wrong order would show.
    cands = one.encode(" 5")[:1] + one.encode(" 6")[:1]
    expected = one.next_token_logprobs(prompts, cands)
    one.close()

    two = make_engine(
        model_dir, model, RolloutConfig(engine="vllm", cpu_kvcache_gib=1, data_parallel_size=2)
    )
    try:
        assert isinstance(two, ReplicatedEngine) and len({p.pid for p in two.procs}) == 2
        got = two.next_token_logprobs(prompts, cands)
        assert len(got) == len(prompts)
        for g, e in zip(got, expected, strict=True):
            assert g == pytest.approx(e, abs=0.02)
        outs = two.generate(
            prompts, SamplingConfig(temperature=0.8, top_p=0.95, max_tokens=16), n=2
        )
        assert len(outs) == len(prompts) and all(len(o) == 2 for o in outs)
        assert all(c.num_tokens > 0 for o in outs for c in o)
    finally:
        procs = list(two.procs)
        two.close()
    assert not any(p.is_alive() for p in procs)
