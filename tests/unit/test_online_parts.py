"""The online regimes' pure parts (srlm.training.online): the prompt order, its share per rank,
and how a step's figures from several ranks are merged."""

from __future__ import annotations

import random

import pytest

from srlm.training.online import merge_rank_rows, prompt_indices


def test_prompt_order_walks_seeded_permutations_one_pass_after_another():
    # 5 prompts, 2 per step: steps 0-1 take the first pass's positions 0-3, step 2 takes its
    # last prompt and the second pass's first.
    first = random.Random(7 * 1_000_003 + 0).sample(range(5), 5)
    second = random.Random(7 * 1_000_003 + 1).sample(range(5), 5)
    steps = [prompt_indices(5, 7, d, 2) for d in range(3)]
    assert steps == [first[0:2], first[2:4], [first[4], second[0]]]
    assert sorted(steps[0] + steps[1] + [steps[2][0]]) == [0, 1, 2, 3, 4]
    # The order depends on the seed and the draw count alone, not on the process.
    assert prompt_indices(5, 7, 2, 2) == steps[2]


def test_two_ranks_share_a_step_without_overlap():
    step = prompt_indices(10, 0, 3, 4)
    shares = [step[r * 2 : (r + 1) * 2] for r in range(2)]  # OnlineModule's slice per rank
    assert shares[0] + shares[1] == step and not set(shares[0]) & set(shares[1])


def test_merge_rank_rows_by_hand():
    rank0 = {
        "step": 3,
        "draws": 1,
        "lr": 1e-5,
        "loss": 0.5,
        "examples": 2,
        "reward_judgements": 12,
        "reward_parse_failure_rate": 0.25,
        "reward_math_verify": True,
        "train_seconds": 4.0,
        "sync_probe_diff": 0.01,
    }
    rank1 = {
        "step": 3,
        "draws": 1,
        "lr": 1e-5,
        "loss": None,  # a rank without data this step took the zero loss
        "examples": 0,
        "reward_judgements": 12,
        "reward_parse_failure_rate": 0.75,
        "reward_math_verify": True,
        "train_seconds": 5.5,
        "sync_probe_diff": 0.03,
    }
    merged = merge_rank_rows([rank0, rank1])
    assert merged == {
        "step": 3,
        "draws": 1,
        "lr": 1e-5,
        "loss": 0.5,  # the mean of the ranks that trained
        "examples": 2,  # counts are summed
        "reward_judgements": 24,
        "reward_parse_failure_rate": pytest.approx(0.5),  # rates averaged
        "reward_math_verify": True,
        "train_seconds": 5.5,  # the slowest rank
        "sync_probe_diff": 0.03,  # the worst rank
    }
