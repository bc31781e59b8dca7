"""The supervised warm start's optimizer (WarmStartConfig.optimizer, what srlm.runner trains the
warm start with) and its range checks; EvalPlanner's SFT settings reach it through the
thinking_judge method's sft_* keys."""

from __future__ import annotations

import pytest

from srlm.compose import compose, validate
from srlm.config import ThinkingJudgeConfig, WarmStartConfig
from srlm.errors import ConfigError


def test_default_warm_start_optimizer_is_cosine_sft_to_a_tenth():
    opt = WarmStartConfig(lr=5e-5, epochs=2, batch_size=8).optimizer()
    assert opt.loss == "sft"
    assert (opt.lr, opt.lr_end, opt.schedule) == (5e-5, pytest.approx(5e-6), "cosine")
    assert (opt.epochs, opt.batch_size) == (2, 8)
    assert (opt.warmup_steps, opt.adam_betas, opt.weight_decay) == (0, [0.9, 0.999], 0.0)
    opt.check()


def test_warm_start_optimizer_carries_every_setting():
    # Self-Rewarding's SFT: 5.5e-6 decaying to 1.1e-6 (lr / 5, not srlm's default lr / 10).
    ws = WarmStartConfig(
        lr=5.5e-6,
        lr_end=1.1e-6,
        schedule="linear",
        batch_size=16,
        epochs=3,
        warmup_steps=100,
        adam_betas=[0.9, 0.95],
        weight_decay=0.1,
    )
    ws.check()
    opt = ws.optimizer()
    assert (opt.lr, opt.lr_end, opt.schedule) == (5.5e-6, 1.1e-6, "linear")
    assert (opt.epochs, opt.batch_size) == (3, 16)
    assert (opt.warmup_steps, opt.adam_betas, opt.weight_decay) == (100, [0.9, 0.95], 0.1)


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"warmup_steps": -1}, "method.warm_start.warmup_steps=-1"),
        ({"adam_betas": [0.9]}, "method.warm_start.adam_betas=[0.9]"),
        ({"adam_betas": [0.9, 1.0]}, "method.warm_start.adam_betas=[0.9, 1.0]"),
        ({"weight_decay": -0.1}, "method.warm_start.weight_decay=-0.1"),
        ({"lr_end": 1e-3}, "method.warm_start.lr_end=0.001"),
        ({"schedule": "step"}, "method.warm_start.schedule='step'"),
    ],
)
def test_warm_start_checks_name_the_bad_key(change, key):
    with pytest.raises(ConfigError, match=key.replace("[", r"\[").replace("]", r"\]")):
        WarmStartConfig(lr=1e-4, **change).check()


def test_thinking_judge_sft_keys_reach_the_warm_start_optimizer():
    m = ThinkingJudgeConfig(
        sft_lr=1e-6,
        sft_epochs=2,
        sft_batch_size=2,
        sft_warmup_steps=100,
        sft_adam_betas=[0.9, 0.95],
        sft_weight_decay=0.1,
    )
    m.check()
    opt = m.warm_start.optimizer()
    assert (opt.loss, opt.lr, opt.epochs, opt.batch_size) == ("sft", 1e-6, 2, 2)
    assert (opt.warmup_steps, opt.adam_betas, opt.weight_decay) == (100, [0.9, 0.95], 0.1)


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"sft_warmup_steps": -5}, "method.sft_warmup_steps=-5"),
        ({"sft_adam_betas": [0.9, 0.95, 0.99]}, "method.sft_adam_betas"),
        ({"sft_weight_decay": -1.0}, "method.sft_weight_decay=-1.0"),
    ],
)
def test_thinking_judge_sft_checks_name_the_bad_key(change, key):
    with pytest.raises(ConfigError, match=key):
        ThinkingJudgeConfig(**change).check()


def test_evalplanner_experiment_sets_table_10_sft_settings():
    cfg = validate(compose(["experiment=evalplanner_llama31_70b"]))
    opt = cfg.method.warm_start.optimizer()
    assert (opt.lr, opt.epochs) == (1e-6, 2)
    assert (opt.warmup_steps, opt.adam_betas, opt.weight_decay) == (100, [0.9, 0.95], 0.1)
