"""Bradley-Terry fits checked against closed-form maximum-likelihood solutions."""

import math

import numpy as np
import pytest

from srlm.core.elo import battle_matrix, fit_elo


def test_two_players_without_prior():
    # A beat B 3 times, B beat A once. MLE: 3 (1 - s(d)) = s(d) -> s(d) = 3/4 -> d = log 3.
    eps = fit_elo(np.array([[0, 3], [1, 0]]), l2=0.0)
    assert eps[0] - eps[1] == pytest.approx(math.log(3), abs=1e-8)
    assert eps.sum() == pytest.approx(0.0, abs=1e-12)


def test_two_players_default_prior_is_close():
    # With l2 = 1e-3 on eps_A = d/2, eps_B = -d/2: 3 - 4 s(d) = l2 d / 2, so the gap
    # shrinks by about (l2 d / 2) / (4 s (1 - s)) = 0.0005 * 1.0986 / 0.75 = 0.00073.
    eps = fit_elo(np.array([[0, 3], [1, 0]]))
    d = eps[0] - eps[1]
    assert d == pytest.approx(math.log(3) - 0.00073, abs=1e-4)
    assert d < math.log(3)


def test_three_players_exact():
    # Counts that match BT probabilities for eps = (log 2, 0, -log 2):
    # A-B 2:1 (p = 2/3), B-C 2:1 (2/3), A-C 4:1 (s(log 4) = 4/5).
    # Check wins = expected wins: A 6 = 3*2/3 + 5*4/5; B 3 = 3*1/3 + 3*2/3; C 2 = 3*1/3 + 5*1/5.
    b = np.array([[0, 2, 4], [1, 0, 2], [1, 1, 0]])
    eps = fit_elo(b, l2=0.0)
    np.testing.assert_allclose(eps, [math.log(2), 0.0, -math.log(2)], atol=1e-8)


def test_undefeated_sample_gets_finite_rating():
    # One win, no loss: 1 - s(d) = l2 d / 2 = 0.0005 d, solved at d ~ 5.83
    # (e^-5.83 / (1 + e^-5.83) = 0.00293 ~ 0.0005 * 5.83).
    eps = fit_elo(np.array([[0, 1], [0, 0]]))
    assert np.isfinite(eps).all()
    assert eps[0] - eps[1] == pytest.approx(5.83, abs=0.02)


def test_ratings_are_centred_and_ignore_diagonal():
    rng = np.random.default_rng(0)
    b = rng.integers(0, 4, size=(6, 6)).astype(float)
    eps = fit_elo(b)
    assert eps.mean() == pytest.approx(0.0, abs=1e-12)
    b_diag = b.copy()
    np.fill_diagonal(b_diag, 100.0)
    np.testing.assert_allclose(fit_elo(b_diag), eps)


def test_no_battles_gives_zeros():
    np.testing.assert_array_equal(fit_elo(np.zeros((3, 3))), np.zeros(3))


def test_rejects_bad_matrices():
    with pytest.raises(ValueError):
        fit_elo(np.zeros((2, 3)))
    with pytest.raises(ValueError):
        fit_elo(np.array([[0, -1], [1, 0]]))


def test_battle_matrix_counts_both_orders_and_ties():
    outcomes = [
        (0, 1, "first"),  # 0 (shown first) beats 1
        (1, 0, "second"),  # 0 (shown second) beats 1
        (0, 2, "tie"),  # half a win each
        (2, 1, None),  # unparseable: nothing
    ]
    b = battle_matrix(outcomes, 3)
    expected = np.array([[0, 2, 0.5], [0, 0, 0], [0.5, 0, 0]])
    np.testing.assert_array_equal(b, expected)
    # Ties counted as nothing, as in the papers' indicator formula.
    b0 = battle_matrix(outcomes, 3, tie_weight=0.0)
    np.testing.assert_array_equal(b0, [[0, 2, 0], [0, 0, 0], [0, 0, 0]])


def test_battle_matrix_weights():
    # Meta-Rewarding style: first-position win weighted 0.25, second-position win 0.75.
    b = battle_matrix(
        [(0, 1, "first"), (1, 0, "second"), (1, 0, "first")], 2, weights=[0.25, 0.75, 0.25]
    )
    # B[0,1] = 0.25 + 0.75 = 1.0; B[1,0] = 0.25.
    np.testing.assert_array_equal(b, [[0, 1.0], [0.25, 0]])
    with pytest.raises(ValueError):
        battle_matrix([(0, 1, "first")], 2, weights=[1.0, 2.0])
    with pytest.raises(ValueError):
        battle_matrix([(0, 1, "A")], 2)


def test_fit_on_battle_matrix_orders_players():
    # 0 beats everyone in both orders, 2 loses to everyone: ratings must be ordered 0 > 1 > 2.
    outcomes = []
    for i, j in [(0, 1), (0, 2), (1, 2)]:
        outcomes += [(i, j, "first"), (j, i, "second")]
    eps = fit_elo(battle_matrix(outcomes, 3))
    assert eps[0] > eps[1] > eps[2]
    assert eps[1] == pytest.approx(0.0, abs=1e-9)  # symmetric around the middle player
