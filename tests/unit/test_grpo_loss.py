"""GRPO's advantages and loss checked against hand computations on one- to four-token batches."""

import math

import pytest
import torch

from srlm.core.grpo import group_advantages, grpo_loss, k3_kl


def t(*rows):
    return torch.tensor(rows, dtype=torch.float64)


# --- advantages -------------------------------------------------------------------------------


def test_advantages_of_a_group_use_the_sample_std():
    # mean 0.5, deviations ±0.5, sum of squares 1, sample var 1/3, std 0.5774:
    # A = ±0.5 / 0.5774 = ±sqrt(3)/2. (The population std, 0.5, would give ±1.)
    adv, m = group_advantages(t([1, 0, 0, 1]), eps=0.0)
    h = math.sqrt(3) / 2
    assert adv[0].tolist() == pytest.approx([h, -h, -h, h])
    assert m["grpo/zero_advantage_groups"].item() == 0.0
    assert m["grpo/reward_mean"].item() == pytest.approx(0.5)
    # TRL's eps: 0.5 / (0.57735 + 1e-4) = 0.86588.
    adv, _ = group_advantages(t([1, 0, 0, 1]))
    assert adv[0, 0].item() == pytest.approx(0.5 / (1 / math.sqrt(3) + 1e-4))


def test_dr_grpo_advantages_keep_the_reward_scale_and_tied_groups_are_counted():
    # Row 1: mean 0.5, so r - mean = ±0.5. Row 2: all 3, no signal: zeros.
    adv, m = group_advantages(t([1, 0, 0, 1], [3, 3, 3, 3]), scale="none")
    assert adv.tolist() == [[0.5, -0.5, -0.5, 0.5], [0.0, 0.0, 0.0, 0.0]]
    assert m["grpo/zero_advantage_groups"].item() == 0.5


def test_equal_rewards_give_exact_zeros_not_rounding_noise():
    # 0.1 * 3 / 3 is 0.10000000000000002 in floats; the deviations would be 1e-17, and over
    # eps=1e-4 they would be 1e-13, or NaN with eps=0.
    for scale in ("std", "none"):
        adv, m = group_advantages(t([0.1, 0.1, 0.1]), scale=scale, eps=0.0)
        assert adv.tolist() == [[0.0, 0.0, 0.0]]
        assert m["grpo/zero_advantage_groups"].item() == 1.0


def test_advantages_by_group_ids_with_ragged_groups():
    # Group 7: [2, 0, 1], mean 1, deviations [1, -1, 0], sample var 2/2 = 1: A = [1, -1, 0].
    # Group 3: [1, 3], mean 2, deviations [-1, 1], sample var 2/1, std sqrt(2): A = ∓1/sqrt(2).
    # Group 9: one sample, nothing to compare: 0, and a tied group (1 of 3).
    rewards = torch.tensor([2, 1, 0, 3, 1, 4])  # integers are read as floats
    adv, m = group_advantages(rewards, torch.tensor([7, 3, 7, 3, 7, 9]), eps=0.0)
    r = 1 / math.sqrt(2)
    assert adv.tolist() == pytest.approx([1.0, -r, -1.0, r, 0.0, 0.0])
    assert m["grpo/zero_advantage_groups"].item() == pytest.approx(1 / 3)


def test_advantages_refuse_bad_arguments():
    with pytest.raises(ValueError, match="scale"):
        group_advantages(t([1, 0]), scale="batch")
    with pytest.raises(ValueError, match="groups, G"):
        group_advantages(torch.tensor([1.0, 0.0]))
    with pytest.raises(ValueError, match="group_ids"):
        group_advantages(torch.tensor([1.0, 0.0]), torch.tensor([0, 0, 1]))


# --- the clipped surrogate on one token -------------------------------------------------------


def one_token(ratio, advantage, **kw):
    """Loss, metrics and d loss / d logp for one token with old logp -1 and the given ratio."""
    logps = t([-1.0 + math.log(ratio)]).requires_grad_(True)
    kw.setdefault("beta", 0.0)
    loss, m = grpo_loss(
        logps, t([-1.0]), None, t(advantage), torch.tensor([[True]]), aggregation="token", **kw
    )
    loss.backward()
    return loss.item(), m, logps.grad.item()


@pytest.mark.parametrize(
    "ratio, advantage, loss, clipped, grad",
    [
        # A > 0, ratio 1.5: min(1.5, clip to 1.2) = 1.2; the clip is active and cuts the gradient.
        (1.5, 1.0, -1.2, 1.0, 0.0),
        # A > 0, ratio 0.5: min(0.5, 0.8) = 0.5, unclipped: d(-ratio * A)/dlogp = -ratio * A.
        (0.5, 1.0, -0.5, 0.0, -0.5),
        # A < 0, ratio 0.5: min(-0.5, -0.8) = -0.8; the clip is active.
        (0.5, -1.0, 0.8, 1.0, 0.0),
        # A < 0, ratio 1.5: min(-1.5, -1.2) = -1.5, unclipped: gradient -ratio * A = 1.5.
        (1.5, -1.0, 1.5, 0.0, 1.5),
    ],
)
def test_clipped_surrogate(ratio, advantage, loss, clipped, grad):
    value, m, g = one_token(ratio, advantage, epsilon_low=0.2)
    assert value == pytest.approx(loss)
    assert g == pytest.approx(grad)
    assert m["grpo/clip_fraction"].item() == clipped
    assert m["grpo/ratio_mean"].item() == pytest.approx(ratio)
    assert m["grpo/sampled_nll"].item() == pytest.approx(1.0)  # the old log-prob is -1


def test_clip_higher_lets_a_positive_advantage_rise_further():
    # Ratio 1.25, A = 1: a symmetric clip at 1.2 holds it at 1.2 (no gradient); DAPO's
    # epsilon_high = 0.28 bounds it at 1.28 only, so the token keeps its gradient -1.25.
    loss, m, grad = one_token(1.25, 1.0, epsilon_low=0.2)
    assert (loss, grad, m["grpo/clip_high"].item()) == (pytest.approx(-1.2), 0.0, 1.0)
    loss, m, grad = one_token(1.25, 1.0, epsilon_low=0.2, epsilon_high=0.28)
    assert (loss, grad) == (pytest.approx(-1.25), pytest.approx(-1.25))
    assert m["grpo/clip_fraction"].item() == 0.0
    # The lower bound is unchanged: ratio 0.7 with A = -1 is still clipped at 0.8.
    loss, m, _ = one_token(0.7, -1.0, epsilon_low=0.2, epsilon_high=0.28)
    assert loss == pytest.approx(0.8) and m["grpo/clip_low"].item() == 1.0


# --- the KL penalty ---------------------------------------------------------------------------


def test_k3_estimator_by_hand():
    # ref - logp = ln 2: e^{ln 2} - ln 2 - 1 = 1 - ln 2 = 0.30685.
    assert k3_kl(t(-2.0), t(-2.0 + math.log(2))).item() == pytest.approx(1 - math.log(2))
    # ref - logp = -ln 2: 1/2 + ln 2 - 1 = 0.19315; positive both ways, 0 when equal.
    assert k3_kl(t(-2.0), t(-2.0 - math.log(2))).item() == pytest.approx(math.log(2) - 0.5)
    assert k3_kl(t(-2.0), t(-2.0)).item() == 0.0


def test_kl_term_in_the_loss():
    # A = 0 leaves only beta * k3 = 0.1 * (1 - ln 2) = 0.030685. Its gradient in logp is
    # beta * (1 - e^{ref - logp}) = 0.1 * (1 - 2) = -0.1: the penalty raises a token the
    # reference finds likelier.
    logps = t([-2.0]).requires_grad_(True)
    loss, m = grpo_loss(
        logps, None, t([-2.0 + math.log(2)]), t(0.0), torch.tensor([[True]]), beta=0.1
    )
    loss.backward()
    assert loss.item() == pytest.approx(0.1 * (1 - math.log(2)))
    assert logps.grad.item() == pytest.approx(-0.1)
    assert m["grpo/kl"].item() == pytest.approx(1 - math.log(2))
    assert m["loss/kl"].item() == pytest.approx(0.1 * (1 - math.log(2)))
    assert m["loss/policy"].item() == 0.0


# --- aggregation ------------------------------------------------------------------------------

# Two responses of 1 and 3 tokens, advantages 2 and -1, at ratio 1 (old = None) and beta = 0.
# Every token's loss is -A_i: -2 for the first response, +1 for each of the second's three.
MASK = torch.tensor([[True, False, False], [True, True, True]])
ADV = t(2.0, -1.0)


@pytest.mark.parametrize(
    "aggregation, loss, weights",
    [
        # Token mean over the batch: (-2 + 3) / 4 = 0.25; every token weighs 1/4.
        ("token", 0.25, (1 / 4, 1 / 4)),
        # Per-response means -2 and +1, then their mean: -0.5; a token of response i weighs
        # 1 / (2 * |y_i|): 1/2 for the short one, 1/6 for the long one.
        ("sequence", -0.5, (1 / 2, 1 / 6)),
        # Token sum over batch * max_length = 2 * 3: (-2 + 3) / 6 = 1/6; every token 1/6.
        ("dr_grpo", 1 / 6, (1 / 6, 1 / 6)),
    ],
)
def test_aggregations_at_ratio_one(aggregation, loss, weights):
    # At ratio 1 the clip is inactive and the loss is -sum_i A_i sum_t w_it, the advantages
    # averaged with the aggregation's token weights w_it; its gradient in logp_it is
    # -A_i * w_it, REINFORCE with the group mean as baseline.
    logps = torch.zeros(2, 3, dtype=torch.float64, requires_grad=True)
    value, m = grpo_loss(
        logps, None, None, ADV, MASK, beta=0.0, aggregation=aggregation, max_length=3
    )
    value.backward()
    assert value.item() == pytest.approx(loss)
    w_short, w_long = weights
    expected = [[-2 * w_short, 0.0, 0.0], [w_long, w_long, w_long]]
    assert logps.grad.tolist() == [pytest.approx(row) for row in expected]
    assert m["grpo/ratio_mean"].item() == 1.0 and m["grpo/clip_fraction"].item() == 0.0
    assert m["grpo/advantage_mean"].item() == pytest.approx(0.5)


def test_dr_grpo_needs_its_constant():
    with pytest.raises(ValueError, match="max_length"):
        grpo_loss(torch.zeros(2, 3), None, None, ADV, MASK, beta=0.0, aggregation="dr_grpo")


# --- gradients --------------------------------------------------------------------------------


def test_only_the_policy_log_probs_carry_gradient():
    logps = t([-1.0, -2.0], [-0.5, -3.0]).requires_grad_(True)
    old = t([-1.2, -1.9], [-0.4, -3.1]).requires_grad_(True)
    ref = t([-1.1, -2.2], [-0.6, -2.9]).requires_grad_(True)
    adv = t(1.0, -1.0).requires_grad_(True)
    loss, m = grpo_loss(logps, old, ref, adv, torch.ones(2, 2, dtype=torch.bool), beta=0.1)
    loss.backward()
    assert old.grad is None and ref.grad is None and adv.grad is None
    assert logps.grad is not None and logps.grad.abs().sum() > 0
    assert all(not v.requires_grad for v in m.values())


def test_raising_a_positive_advantage_token_lowers_the_loss():
    mask = torch.tensor([[True]])
    logps = t([-1.0]).requires_grad_(True)
    loss, _ = grpo_loss(logps, None, None, t(1.0), mask, beta=0.0)
    loss.backward()
    assert logps.grad.item() < 0
    higher, _ = grpo_loss(t([-0.99]), t([-1.0]), None, t(1.0), mask, beta=0.0)
    assert higher.item() < loss.item()


def test_old_none_is_the_detached_policy():
    logps = t([-1.0, -2.0]).requires_grad_(True)
    mask = torch.ones(1, 2, dtype=torch.bool)
    a, _ = grpo_loss(logps, None, t([-1.5, -1.5]), t(1.0), mask)
    (ga,) = torch.autograd.grad(a, logps)
    b, _ = grpo_loss(logps, logps.detach().clone(), t([-1.5, -1.5]), t(1.0), mask)
    (gb,) = torch.autograd.grad(b, logps)
    assert a.item() == pytest.approx(b.item())
    assert ga[0].tolist() == pytest.approx(gb[0].tolist())


def test_padding_may_hold_minus_infinity():
    # Padding logits are often masked to -inf; exp(ref - logp) there would be inf, and inf * 0
    # a NaN in the loss or in the backward pass.
    inf = float("inf")
    logps = t([-1.0, -inf], [-1.0, -1.0]).requires_grad_(True)
    ref = t([-1.0, -inf], [-1.0, -1.0])
    old = t([-1.0, -inf], [-1.0, -1.0])
    mask = torch.tensor([[True, False], [True, True]])
    loss, m = grpo_loss(logps, old, ref, t(1.0, 1.0), mask, beta=0.1)
    loss.backward()
    assert loss.item() == pytest.approx(-1.0)
    assert torch.isfinite(logps.grad).all() and logps.grad[0, 1].item() == 0.0
    assert m["grpo/kl"].item() == 0.0


def test_loss_refuses_bad_arguments():
    mask = torch.tensor([[True]])
    with pytest.raises(ValueError, match="ref_logps"):
        grpo_loss(t([-1.0]), None, None, t(1.0), mask, beta=0.04)
    with pytest.raises(ValueError, match="aggregation"):
        grpo_loss(t([-1.0]), None, None, t(1.0), mask, beta=0.0, aggregation="mean")
    with pytest.raises(ValueError, match="batch"):
        grpo_loss(t([-1.0]), None, None, t(1.0, 2.0), mask, beta=0.0)
