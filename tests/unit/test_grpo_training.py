"""optimizer=grpo in the train stage: groups packed in one row each, advantages per group, and a
real training on a tiny Llama that raises the better samples against the worse ones."""

from __future__ import annotations

import pytest

from srlm.config import ModelConfig, OptimizerConfig, TrainerConfig
from srlm.errors import ConfigError
from srlm.training.data import Group, collate
from srlm.training.trainer import group_rows, train, weights_fingerprint
from tests.unit.tiny_lm import save_tiny_lm


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    path = tmp_path_factory.mktemp("tiny_lm")
    save_tiny_lm(path)
    return path


def _tok(path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path)


def test_group_rows_pack_a_group_and_give_each_sample_its_advantage(tiny):
    tok = _tok(tiny)
    groups = [
        Group("what is two plus two ?", ["four .", "five .", "six .", "four ."], [1, 0, 0, 1]),
        Group("what is two plus three ?", ["five .", "six ."], [1, 0]),
    ]
    rows = group_rows(tok, groups, 128, "std")
    # rewards [1, 0, 0, 1]: mean 1/2, sample std sqrt(1/3); (1 - 1/2) / sqrt(1/3) = sqrt(3)/2.
    assert rows[0]["advantages"] == pytest.approx([0.866, -0.866, -0.866, 0.866], abs=1e-3)
    # [1, 0]: mean 1/2, sample std sqrt(1/2); 0.5 / 0.7071 = 0.7071.
    assert rows[1]["advantages"] == pytest.approx([0.7071, -0.7071], abs=1e-3)
    unscaled = group_rows(tok, groups, 128, "none")
    assert unscaled[0]["advantages"] == pytest.approx([0.5, -0.5, -0.5, 0.5])
    # One row per group: the prompt once, every response a branch ("four ." + end token).
    assert len(rows[0]["branches"]) == 4 and rows[0]["branches"][0][-1] == tok.eos_token_id
    # Groups of different sizes share a batch; the smaller one's missing branches score nothing.
    batch = collate(rows, tok.pad_token_id)
    assert batch["targets"].shape[:2] == (2, 4)
    assert (batch["targets"][1, 2:] == -100).all()
    assert (batch["targets"][1, :2] != -100).any()


def test_grpo_raises_the_better_samples_against_the_worse(tiny, tmp_path):
    groups = [
        Group("what is two plus two ?", ["four .", "five .", "six .", "four ."], [1, 0, 0, 1]),
        Group("what is two plus three ?", ["five .", "six .", "four ."], [1, 0, 0]),
        Group("what is three plus three ?", ["six .", "five ."], [1, 0]),
        Group("what is the answer ?", ["a .", "b .", "c ."], [1, 0, 1]),
    ]
    stats = train(
        groups,
        str(tiny),
        tmp_path / "out",
        ModelConfig(name="tiny", source=str(tiny), max_length=128),
        OptimizerConfig(
            loss="grpo", beta=0.04, lr=1e-2, lr_end=1e-2, epochs=3, batch_size=2, shuffle=False
        ),
        TrainerConfig(accelerator="cpu", precision="32-true", num_threads=1),
    )
    assert stats["groups_trained"] == 4 and stats["samples_trained"] == 12
    assert stats["steps"] == 6
    # The samples better than their group gained log-prob against those worse than it.
    # (Some responses are better than their group in one group and worse in another, and all
    # end in " ." and the end token, so the worse ones need not fall in absolute terms.)
    assert stats["positive_logp_change"] > 0
    assert stats["advantage_logp_gap"] > 0.3
    assert stats["advantage_weighted_logp_change"] > 0
    history = _history(tmp_path / "out")
    # At the first step the policy is the sampler: ratio 1 and KL 0 exactly; later steps moved.
    assert history[0]["grpo/ratio_mean"] == pytest.approx(1.0, abs=1e-6)
    assert history[0]["grpo/kl"] == pytest.approx(0.0, abs=1e-6)
    assert history[-1]["grpo/kl"] > 0
    from transformers import AutoModelForCausalLM

    start = AutoModelForCausalLM.from_pretrained(tiny)
    trained = AutoModelForCausalLM.from_pretrained(tmp_path / "out")
    assert weights_fingerprint(start) != weights_fingerprint(trained)


def _history(out):
    import json

    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def test_grpo_without_a_reference_trains_on_the_policy_term_alone(tiny, tmp_path):
    stats = train(
        [Group("what is two plus two ?", ["four .", "five ."], [1, 0])] * 2,
        str(tiny),
        tmp_path / "out",
        ModelConfig(name="tiny", source=str(tiny), max_length=128),
        OptimizerConfig(
            loss="grpo", beta=0.0, lr=1e-2, lr_end=1e-2, batch_size=1, aggregation="dr_grpo"
        ),
        TrainerConfig(accelerator="cpu", precision="32-true", num_threads=1),
    )
    history = _history(tmp_path / "out")
    assert "loss/kl" not in history[0]
    assert history[0]["loss"] == pytest.approx(history[0]["loss/policy"])
    assert stats["positive_logp_change"] > stats["negative_logp_change"]


def test_grpo_settings_are_checked():
    with pytest.raises(ConfigError, match="optimizer.epsilon_high=0.1"):
        OptimizerConfig(loss="grpo", epsilon_low=0.2, epsilon_high=0.1).check()
    with pytest.raises(ConfigError, match="optimizer.aggregation='mean'"):
        OptimizerConfig(loss="grpo", aggregation="mean").check()
    # beta 0 drops the KL term for grpo; for the DPO family it is an error.
    OptimizerConfig(loss="grpo", beta=0.0).check()
    with pytest.raises(ConfigError, match="optimizer.beta=0.0: must be > 0"):
        OptimizerConfig(loss="dpo", beta=0.0).check()
