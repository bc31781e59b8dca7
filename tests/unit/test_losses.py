"""Loss values checked against hand computations on one or two pairs."""

import math

import pytest
import torch

from srlm.core.losses import (
    LOSSES,
    dpo_loss,
    dpo_nll_loss,
    get_loss,
    hinge_loss,
    ipo_loss,
    needs_reference,
    sft_loss,
    simpo_loss,
)


def t(*xs):
    return torch.tensor(xs, dtype=torch.float64)


# One pair: log ratio chosen = -10 - (-12) = 2, rejected = -15 - (-14) = -1.
PC, PR, RC, RR = t(-10.0), t(-15.0), t(-12.0), t(-14.0)
CT, RT = t(5), t(10)


def test_hinge_single_pair_and_saturation():
    # margin = 0.1 * (2 - (-1)) = 0.3 < 1: loss = 1 - 0.3 = 0.7
    loss, m = hinge_loss(PC, PR, RC, RR, CT, RT, beta=0.1)
    assert loss.item() == pytest.approx(0.7)
    assert m["rewards/margin"].item() == pytest.approx(0.3)
    assert m["loss/hinge"].item() == pytest.approx(0.7)
    # beta = 0.5: margin = 1.5 >= 1, the pair contributes nothing (and no gradient).
    pc = PC.clone().requires_grad_(True)
    loss, _ = hinge_loss(pc, PR, RC, RR, CT, RT, beta=0.5)
    assert loss.item() == 0.0
    loss.backward()
    assert pc.grad.item() == 0.0
    # Two pairs: margins 0.3 and -0.3 -> losses 0.7 and 1.3, mean 1.0.
    loss, _ = hinge_loss(
        t(-10.0, -15.0),
        t(-15.0, -10.0),
        t(-12.0, -14.0),
        t(-14.0, -12.0),
        t(5, 10),
        t(10, 5),
        beta=0.1,
    )
    assert loss.item() == pytest.approx(1.0)


def test_dpo_single_pair():
    loss, m = dpo_loss(PC, PR, RC, RR, CT, RT, beta=0.1)
    # logits = 0.1 * (2 - (-1)) = 0.3; -log sigmoid(0.3) = log(1 + e^-0.3)
    #        = log(1 + 0.740818) = log(1.740818) = 0.554355
    assert loss.item() == pytest.approx(0.554355, abs=1e-6)
    # rewards: 0.1 * 2 = 0.2 and 0.1 * -1 = -0.1
    assert m["rewards/chosen"].item() == pytest.approx(0.2)
    assert m["rewards/rejected"].item() == pytest.approx(-0.1)
    assert m["rewards/margin"].item() == pytest.approx(0.3)
    assert m["rewards/accuracy"].item() == 1.0
    assert m["loss/dpo"].item() == pytest.approx(0.554355, abs=1e-6)
    assert m["logps/chosen"].item() == -10.0


def test_dpo_batch_mean_and_accuracy():
    # Pair 2: log ratio chosen = -1, rejected = 1 -> logits = 0.1 * (-2) = -0.2,
    # -log sigmoid(-0.2) = log(1 + e^0.2) = log(2.221403) = 0.798139.
    # Mean = (0.554355 + 0.798139) / 2 = 0.676247; accuracy = 1/2;
    # margin = (0.3 + -0.2) / 2 = 0.05.
    loss, m = dpo_loss(t(-10, -5), t(-15, -5), t(-12, -4), t(-14, -6), t(5, 5), t(10, 5), beta=0.1)
    assert loss.item() == pytest.approx(0.676247, abs=1e-6)
    assert m["rewards/accuracy"].item() == 0.5
    assert m["rewards/margin"].item() == pytest.approx(0.05)


def test_dpo_label_smoothing():
    # cDPO: 0.9 * -log s(0.3) + 0.1 * -log s(-0.3); -log s(-x) = -log s(x) + x,
    # so 0.9 * 0.554355 + 0.1 * 0.854355 = 0.554355 + 0.1 * 0.3 = 0.584355.
    loss, _ = dpo_loss(PC, PR, RC, RR, CT, RT, beta=0.1, label_smoothing=0.1)
    assert loss.item() == pytest.approx(0.584355, abs=1e-6)


def test_dpo_gradient_pushes_chosen_up():
    pc = PC.clone().requires_grad_(True)
    loss, _ = dpo_loss(pc, PR, RC, RR, CT, RT, beta=0.1)
    loss.backward()
    # d/dx -log s(0.1 (x - ...)) = -0.1 * (1 - s(0.3)) = -0.1 * (1 - 0.574443) = -0.0425557
    assert pc.grad.item() == pytest.approx(-0.0425557, abs=1e-6)


def test_metrics_are_detached():
    pc = PC.clone().requires_grad_(True)
    _, m = dpo_nll_loss(pc, PR, RC, RR, CT, RT)
    assert all(not v.requires_grad for v in m.values())


def test_ipo_length_averaged():
    # Chosen: log ratio 2 over 4 tokens = 0.5; rejected: -1 over 2 tokens = -0.5.
    # h = 0.5 - (-0.5) = 1; target 1/(2 * 0.1) = 5; loss = (1 - 5)^2 = 16.
    loss, m = ipo_loss(PC, PR, RC, RR, t(4), t(2), beta=0.1)
    assert loss.item() == pytest.approx(16.0)
    assert m["loss/ipo"].item() == pytest.approx(16.0)
    # Summed-ratio rewards as in DPO: 0.2 vs -0.1.
    assert m["rewards/margin"].item() == pytest.approx(0.3)


def test_dpo_nll_irpo_eq1():
    # DPO part 0.554355 (as above); NLL = -(-10) / 5 chosen tokens = 2.
    # alpha = 1: 2.554355; alpha = 0.5: 0.554355 + 1 = 1.554355.
    loss, m = dpo_nll_loss(PC, PR, RC, RR, CT, RT, beta=0.1, alpha=1.0)
    assert loss.item() == pytest.approx(2.554355, abs=1e-6)
    assert m["loss/dpo"].item() == pytest.approx(0.554355, abs=1e-6)
    assert m["loss/nll"].item() == pytest.approx(2.0)
    loss_half, _ = dpo_nll_loss(PC, PR, RC, RR, CT, RT, beta=0.1, alpha=0.5)
    assert loss_half.item() == pytest.approx(1.554355, abs=1e-6)


def test_dpo_nll_normalises_per_sequence_then_averages():
    # NLL per pair: 10/5 = 2 and 6/1 = 6 -> mean 4 (a batch token mean would give 16/6).
    _, m = dpo_nll_loss(t(-10, -6), t(-15, -6), t(-12, -6), t(-14, -6), t(5, 1), t(10, 1))
    assert m["loss/nll"].item() == pytest.approx(4.0)


def test_simpo_ignores_reference():
    # beta = 2, gamma = 1. Chosen: 2 * (-10 / 5) = -4; rejected: 2 * (-15 / 10) = -3.
    # logits = -4 - (-3) - 1 = -2; loss = log(1 + e^2) = log(8.389056) = 2.126928.
    loss, m = simpo_loss(PC, PR, None, None, CT, RT, beta=2.0, gamma=1.0)
    assert loss.item() == pytest.approx(2.126928, abs=1e-6)
    assert m["rewards/chosen"].item() == pytest.approx(-4.0)
    assert m["rewards/accuracy"].item() == 0.0
    loss_ref, _ = simpo_loss(PC, PR, t(123.0), t(-456.0), CT, RT, beta=2.0, gamma=1.0)
    assert loss_ref.item() == loss.item()


def test_sft_token_mean_over_batch():
    # -(-10 + -6) / (5 + 1) = 16 / 6 = 2.666667 (a per-sequence mean would give (2 + 6) / 2 = 4).
    loss, m = sft_loss(t(-10, -6), None, None, None, t(5, 1), None)
    assert loss.item() == pytest.approx(16 / 6)
    assert m["loss/nll"].item() == pytest.approx(16 / 6)
    assert "rewards/rejected" not in m


def test_sft_ignores_rejected_but_reports_it():
    loss, m = sft_loss(PC, PR, RC, RR, CT, RT)
    assert loss.item() == pytest.approx(2.0)  # 10 / 5
    # Mean token log-probs: -10/5 = -2 vs -15/10 = -1.5.
    assert m["rewards/margin"].item() == pytest.approx(-0.5)


def test_reference_losses_refuse_missing_reference():
    with pytest.raises(ValueError, match="reference"):
        dpo_loss(PC, PR, None, None, CT, RT)
    with pytest.raises(ValueError, match="reference"):
        ipo_loss(PC, PR, None, None, CT, RT)


def test_registry():
    assert set(LOSSES) == {"dpo", "ipo", "hinge", "dpo_nll", "simpo", "sft", "grpo"}
    assert get_loss("dpo_nll") is dpo_nll_loss
    with pytest.raises(ValueError, match="dpo, dpo_nll, grpo, hinge, ipo, sft, simpo"):
        get_loss("ppo")
    assert needs_reference("dpo") and needs_reference("ipo") and needs_reference("dpo_nll")
    assert not needs_reference("simpo") and not needs_reference("sft")
    with pytest.raises(ValueError):
        needs_reference("ppo")


PAIR_LOSSES = sorted(n for n, spec in LOSSES.items() if spec.inputs != "groups")


@pytest.mark.parametrize("name", PAIR_LOSSES)
def test_every_loss_shares_the_signature(name):
    # The group loss (grpo) has its own signature, tested in tests/unit/test_grpo_training.py.
    loss, m = get_loss(name)(PC, PR, RC, RR, CT, RT)
    assert loss.ndim == 0 and math.isfinite(loss.item())
    assert {"rewards/chosen", "rewards/rejected", "rewards/margin", "rewards/accuracy"} <= set(m)
