"""Pair selection checked on small groups worked out by hand."""

import itertools
import math

import numpy as np
import pytest

from srlm.core.selection import (
    best_worst,
    irpo_pairs,
    length_controlled_scores,
    meta_judge_weights,
    meta_reward_band_pair,
    standardize,
)

R = math.sqrt(1.5)  # 1 / sqrt(2/3): the z-score of 3 in [1, 2, 3] (population std sqrt(2/3))


def test_standardize():
    np.testing.assert_allclose(standardize([1, 2, 3]), [-R, 0, R])
    np.testing.assert_array_equal(standardize([0.1, 0.1, 0.1]), [0, 0, 0])
    np.testing.assert_array_equal(standardize([4.0]), [0.0])


def test_length_controlled_scores():
    # scores [1,2,3] -> [-R, 0, R]; lengths [30,10,20]: mean 20, std sqrt(200/3) -> [R, -R, 0].
    # rho = 0.5: [-R - R/2, 0 + R/2, R - 0] = [-1.837117, 0.612372, 1.224745].
    s = length_controlled_scores([1, 2, 3], [30, 10, 20], 0.5)
    np.testing.assert_allclose(s, [-1.5 * R, 0.5 * R, R])
    assert best_worst(s) == (2, 0)
    # rho = 2 makes the short middle sample best: [-3R, 2R, R].
    assert best_worst(length_controlled_scores([1, 2, 3], [30, 10, 20], 2.0)) == (1, 0)


def test_best_worst():
    assert best_worst([1, 3, 3, 0, 0]) == (1, 3)  # first index among tied max and min
    assert best_worst([2, 2, 2]) is None
    assert best_worst([None, 1, 2]) == (2, 1)
    assert best_worst([None, 4]) is None
    assert best_worst([float("nan"), 1.0, 0.5]) == (1, 2)


def test_band_pair_rho_zero_is_best_worst():
    # S_max 5, S_min 1: top band {0}, bottom band {3}.
    assert meta_reward_band_pair([5, 4.5, 3, 1], [100, 50, 70, 80], 0.0) == (0, 3)


def test_band_pair_prefers_short_chosen_and_long_rejected():
    # rho = 0.3: top >= 0.7*5 + 0.3*1 = 3.8 -> {0 (len 100), 1 (len 50)}: shortest is 1.
    # bottom <= 0.7*1 + 0.3*5 = 2.2 -> {3}; None is skipped.
    assert meta_reward_band_pair([5, 4.5, 3, 1, None], [100, 50, 70, 80, 10], 0.3) == (1, 3)
    # rho = 0.2: top >= 0.8*4 + 0.2*1 = 3.4 -> {0 (300), 3 (100)} -> 3;
    # bottom <= 0.8*1 + 0.2*4 = 1.6 -> {1 (50), 2 (200)} -> longest 2.
    assert meta_reward_band_pair([4, 1, 1.5, 4], [300, 50, 200, 100], 0.2) == (3, 2)


def test_band_pair_rejects_non_preferences():
    assert meta_reward_band_pair([3, 3, 3], [1, 2, 3], 0.3) is None
    assert meta_reward_band_pair([3, None], [1, 2], 0.0) is None
    # rho = 1 swaps the bands: top >= S_min takes everything (shortest: score 1),
    # bottom <= S_max takes everything (longest: score 5) -> chosen worse than rejected.
    assert meta_reward_band_pair([1, 5], [10, 20], 1.0) is None


def test_band_pair_threshold_rounding():
    # Top threshold 0.8 * 4.7 + 0.2 * 1.1 = 3.98 on paper, but 3.9800000000000004 in
    # floating point; the score 3.98 must still count as in the band (and, being
    # shorter, be chosen). Bottom <= 0.8 * 1.1 + 0.2 * 4.7 = 1.82 -> {2}.
    assert meta_reward_band_pair([4.7, 3.98, 1.1], [30, 10, 20], 0.2) == (1, 2)


def test_irpo_pairs_parallel_walk():
    # Paper's walk with |w| = 3, |l| = 2 (coprime): (0,3) (1,4) (2,3) (0,4) (1,3) (2,4)
    # then (0,3) again, so stop at 3 * 2 = 6 pairs even for k = 10.
    expected = [(0, 3), (1, 4), (2, 3), (0, 4), (1, 3), (2, 4)]
    assert irpo_pairs([0, 1, 2], [3, 4], 4) == expected[:4]
    assert irpo_pairs([0, 1, 2], [3, 4], 10) == expected


def test_irpo_pairs_shift_after_cycle():
    # |w| = 2, |l| = 4: the plain walk (0,2) (1,3) (0,4) (1,5) would repeat (0,2) at t = 4
    # (lcm 4); the second round shifts the losers by one: (0,3) (1,4) (0,5) (1,2).
    assert irpo_pairs([0, 1], [2, 3, 4, 5], 8) == [
        (0, 2),
        (1, 3),
        (0, 4),
        (1, 5),
        (0, 3),
        (1, 4),
        (0, 5),
        (1, 2),
    ]


@pytest.mark.parametrize("nw,nl", [(1, 1), (1, 5), (2, 2), (4, 6), (6, 4), (3, 9), (5, 7)])
def test_irpo_pairs_never_repeat(nw, nl):
    w, l_ = list(range(nw)), list(range(100, 100 + nl))
    pairs = irpo_pairs(w, l_, 1000)
    assert len(pairs) == nw * nl
    assert set(pairs) == set(itertools.product(w, l_))
    assert len(irpo_pairs(w, l_, 3)) == min(3, nw * nl)


def test_irpo_pairs_empty():
    assert irpo_pairs([], [1, 2], 5) == []
    assert irpo_pairs([1], [], 5) == []
    assert irpo_pairs([1], [2], 0) == []


def test_meta_judge_weights():
    # 3 first-position wins, 1 second-position win: the judge favours position 1, so
    # omega_1 = 1 / 4 for first-position wins and omega_2 = 3 / 4 for second-position wins.
    assert meta_judge_weights(3, 1) == (0.25, 0.75)
    assert meta_judge_weights(2, 2) == (0.5, 0.5)
    assert meta_judge_weights(0, 0) == (0.5, 0.5)
    with pytest.raises(ValueError):
        meta_judge_weights(-1, 2)
