"""Who writes Self-Rewarding's prompts (method.prompt_writer): the policy M_t when null, else a
fixed model on its own engine, started after M_t's is released and closed when the stage ends;
and the checks that refuse a writer that cannot be loaded, before anything loads."""

from __future__ import annotations

import pytest

from srlm.compose import compose, compose_or_explain, validate
from srlm.errors import Problems, SetupError
from srlm.methods.self_reward import SelfReward
from srlm.preflight import check, check_lengths, check_models
from srlm.rundir import RunDir, read_jsonl
from tests.unit.test_rewards import FakeEngine

WRITER = "+model@method.prompt_writer=smollm2_135m"
# Two requests unlike the seed and held-out prompts and unlike each other, so both are kept.
REQUESTS = "Explain how ocean tides follow the moon.\n8. Compare the rules of chess and checkers for a beginner."


def _config(*extra: str):
    return validate(
        compose(
            [
                "method=self_reward",
                "rollout=hf",
                "logger=none",
                "method.warm_start.enabled=false",
                "method.prompts_per_iteration=2",
                *extra,
            ]
        )
    )


class Policy:
    """The rollout phase's EngineFn (srlm.runner.PolicyEngine): M_t's engine, started on call;
    `events` records when it starts and when it is released."""

    def __init__(self, events: list[str], reply=lambda p, k: REQUESTS):
        self.events, self.reply = events, reply
        self.engine: FakeEngine | None = None

    def __call__(self):
        if self.engine is None:
            self.events.append("policy start")
            self.engine = FakeEngine(self.reply)
        return self.engine

    def release(self):
        self.events.append("policy release")
        self.engine = None


@pytest.fixture
def writer_engines(monkeypatch):
    """srlm.rewards.base.make_engine replaced: each writer engine it starts is a FakeEngine,
    listed with the model and rollout settings it was asked for. Nothing loads."""
    started: list[tuple[str, object, object, FakeEngine]] = []

    def make_engine(model_dir, model, rollout):
        engine = FakeEngine(lambda p, k: REQUESTS)
        started.append((model_dir, model, rollout, engine))
        return engine

    monkeypatch.setattr("srlm.rewards.base.resolve_model_dir", lambda source, path: "WRITER_DIR")
    monkeypatch.setattr("srlm.rewards.base.make_engine", make_engine)
    return started


def test_without_a_writer_the_policy_writes_the_prompts(tmp_path, writer_engines):
    config = _config()
    assert config.method.prompt_writer is None
    events: list[str] = []
    policy = Policy(events)
    stats = SelfReward(config, RunDir(tmp_path)).run_stage("prompts", 1, policy)
    assert stats["prompts"] == 2 and writer_engines == []
    assert events == ["policy start"]  # kept for the samples stage of the same phase
    assert all("Come up with a series" in p for p in policy.engine.prompts)


def test_a_fixed_writer_writes_on_its_own_engine_then_the_policy_answers(tmp_path, writer_engines):
    config = _config(WRITER)
    run = RunDir(tmp_path)
    method = SelfReward(config, run)
    events: list[str] = []
    policy = Policy(events, reply=lambda p, k: f"answer {k}")
    policy()  # an earlier stage of the phase left M_t's engine running
    method.run_stage("prompts", 1, policy)

    [(model_dir, model, rollout, writer)] = writer_engines
    assert model_dir == "WRITER_DIR"
    assert model == config.method.prompt_writer and rollout == config.rollout
    assert writer.prompts and all("Come up with a series" in p for p in writer.prompts)
    # M_t's engine was handed back before the writer's started, and the writer's closed after.
    assert events == ["policy start", "policy release"]
    assert writer.closed and method.writer.engine is None
    assert [r["instruction"] for r in read_jsonl(run.iter_dir(1) / "prompts.jsonl")] == [
        "Explain how ocean tides follow the moon.",
        "Compare the rules of chess and checkers for a beginner.",
    ]

    method.run_stage("samples", 1, policy)  # M_t answers the writer's prompts
    assert events[-1] == "policy start"
    assert all("ocean tides" in p or "chess and checkers" in p for p in policy.engine.prompts)
    assert len(writer_engines) == 1


def test_the_writer_is_closed_when_it_writes_nothing_usable(tmp_path, monkeypatch):
    silent = FakeEngine(lambda p, k: "")
    monkeypatch.setattr("srlm.rewards.base.resolve_model_dir", lambda source, path: "WRITER_DIR")
    monkeypatch.setattr("srlm.rewards.base.make_engine", lambda *a: silent)
    method = SelfReward(_config(WRITER, "method.max_generation_rounds=1"), RunDir(tmp_path))
    with pytest.raises(SetupError, match="method.prompt_writer"):
        method.run_stage("prompts", 1, Policy([]))
    assert silent.closed and method.writer.engine is None


# ---------------------------------------------------------------- config and pre-flight
def test_a_missing_writer_is_refused_before_anything_loads_naming_the_key(tmp_path):
    config = _config(WRITER, "method.prompt_writer.path=/nowhere/llama-2-70b-chat")
    found = check_models(config)
    assert any(p.startswith("method.prompt_writer.path='/nowhere/llama-2-70b-chat'") for p in found)
    with pytest.raises(Problems, match=r"method\.prompt_writer\.path"):
        check(
            compose(
                [
                    "method=self_reward",
                    "rollout=hf",
                    "logger=none",
                    WRITER,
                    "method.prompt_writer.path=/nowhere/llama-2-70b-chat",
                    f"run_dir={tmp_path}",
                ]
            ),
            here=False,
        )


def test_an_unknown_embedded_writer_is_refused_naming_the_key():
    config = _config(WRITER, "method.prompt_writer.source=embedded:nope")
    assert any(
        p.startswith("method.prompt_writer.source='embedded:nope'") for p in check_models(config)
    )


def test_the_writer_cannot_be_the_policy():
    with pytest.raises(Problems, match=r"method\.prompt_writer\.source='policy'.*=null"):
        _config(WRITER, "method.prompt_writer.source=policy")


def test_a_writer_key_without_a_writer_gets_advice():
    with pytest.raises(Problems, match=r"\+model@method\.prompt_writer=NAME"):
        compose_or_explain(["method=self_reward", "method.prompt_writer.path=/data/chat"])


def test_the_prompt_budget_is_checked_against_the_writers_context():
    config = _config(WRITER, "method.prompt_writer.max_length=128")
    assert any(
        p.startswith(
            "method.prompt_sampling.max_tokens=200 with method.prompt_writer.max_length=128"
        )
        for p in check_lengths(config)
    )
    assert check_lengths(_config()) == []


def test_the_paper_setup_has_llama2_70b_chat_write_the_prompts():
    config = validate(compose(["experiment=self_reward_llama2_70b", "rollout=hf"]))
    writer = config.method.prompt_writer
    assert writer.source == "meta-llama/Llama-2-70b-chat-hf" and writer.prompt_format == "chat"
    # The policy is the base model, prompted in plain text; the writer keeps its chat template.
    assert config.model.source == "meta-llama/Llama-2-70b-hf"
    assert config.model.prompt_format == "plain"
