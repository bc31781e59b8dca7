"""The full cross product method x reward x optimizer: every combination either validates or is
refused, before any model loads, with a ConfigError that names both keys it is about and lists
the options that would work.

Run with -s to see the table:  pytest -s tests/test_cross_product.py
"""

from __future__ import annotations

import json
import os

import pytest

from srlm.compose import CONF_DIR, compose, validate
from srlm.errors import ConfigError


def _options(group: str) -> list[str]:
    # Top-level files only: conf/reward/default/<method>.yaml are the per-method defaults.
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))


METHODS, REWARDS, OPTIMIZERS = _options("method"), _options("reward"), _options("optimizer")


def _outcome(method: str, reward: str, optimizer: str) -> str | None:
    """None when the combination validates, else the refusal message."""
    # rollout=hf: the table is about the three axes, not about whether vLLM is installed here.
    overrides = [f"method={method}", f"reward={reward}", f"optimizer={optimizer}", "rollout=hf"]
    try:
        validate(compose(overrides))
        return None
    except ConfigError as e:
        return str(e)


@pytest.fixture(scope="module")
def table() -> dict[tuple[str, str, str], str | None]:
    return {(m, r, o): _outcome(m, r, o) for m in METHODS for r in REWARDS for o in OPTIMIZERS}


def test_axes_are_complete():
    # Each registry and its config group list the same options: a registered method, reward
    # source or loss has its YAML, and every YAML names something registered.
    from srlm.core.losses import LOSSES
    from srlm.methods import method_names
    from srlm.rewards.base import reward_names

    assert set(METHODS) == set(method_names())
    assert set(REWARDS) == set(reward_names())
    assert set(OPTIMIZERS) == set(LOSSES)
    assert {"self_judge", "judge_model", "pairwise_judge", "reward_model", "verifiable"} <= set(
        REWARDS
    )
    assert {"dpo", "ipo", "dpo_nll", "simpo", "sft", "hinge"} <= set(OPTIMIZERS)


def test_every_combination_validates_or_is_refused_naming_both_keys(table):
    for (m, r, o), refusal in table.items():
        if refusal is None:
            continue
        named = {f"method={m}", f"reward={r}", f"optimizer={o}"}
        assert sum(key in refusal for key in named) >= 2, (m, r, o, refusal)
        assert " that fit " in refusal, (m, r, o, refusal)  # and what would work instead


# Only a best_of_n teacher reads the reward; every source that ranks answers fits.
DISTILL_REWARDS = [
    "bsm_judge",
    "judge_model",
    "pairwise_judge",
    "reward_model",
    "self_judge",
    "thinking_judge",
    "verifiable",
]


def test_counts(table):
    valid = sorted(k for k, v in table.items() if v is None)
    refused = len(table) - len(valid)
    by_method = {m: sorted({r for (mm, r, _) in valid if mm == m}) for m in METHODS}
    print(f"\ncross product: {len(table)} combinations, {len(valid)} valid, {refused} refused")
    for m, rewards in by_method.items():
        optimizers = sorted({o for (mm, _, o) in valid if mm == m})
        print(f"  method={m}: rewards {', '.join(rewards)} x optimizers {', '.join(optimizers)}")
    if os.environ.get("SRLM_CROSS_PRODUCT_OUT"):
        with open(os.environ["SRLM_CROSS_PRODUCT_OUT"], "w") as f:
            json.dump(
                {
                    "valid": len(valid),
                    "refused": refused,
                    "table": {"/".join(k): v or "valid" for k, v in table.items()},
                },
                f,
                indent=1,
            )
    # The composition rules as a contract (srlm.methods.*.needs): changing them changes this.
    assert by_method == {
        "irpo": ["verifiable"],
        "meta_reward": ["self_judge"],
        "self_reward": [
            "bsm_judge",
            "judge_model",
            "pairwise_judge",
            "reward_model",
            "self_judge",
            "thinking_judge",
        ],
        "system2_distill": DISTILL_REWARDS,
        "thinking_judge": ["verdict_label"],
        "tpo": [
            "bsm_judge",
            "judge_model",
            "pairwise_judge",
            "reward_model",
            "self_judge",
            "thinking_judge",
        ],
    }
    # Group losses (grpo) need a method that scores every sample on its own: IRPO against gold
    # answers, Self-Rewarding with any of its judges, the thinking judge by its verdicts.
    assert sorted((m, r) for (m, r, o) in valid if o == "grpo") == [
        ("irpo", "verifiable"),
        *[("self_reward", r) for r in by_method["self_reward"]],
        ("thinking_judge", "verdict_label"),
    ]
    assert (len(table), len(valid), refused) == (336, 105, 231)
