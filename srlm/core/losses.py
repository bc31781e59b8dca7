"""Preference and fine-tuning losses on per-sequence log-probabilities.

Every loss takes the same arguments, so a trainer can switch losses by name:

- ``policy_chosen``, ``policy_rejected``: log pi_theta(y|x) of each response,
  SUMMED over its tokens (prompt tokens masked out), shape (batch,);
- ``ref_chosen``, ``ref_rejected``: the same under the frozen reference M_t;
  ignored, and may be None, for losses that need no reference (simpo, sft);
- ``chosen_tokens``, ``rejected_tokens``: number of response tokens, shape (batch,);
- keyword-only hyperparameters.

Each returns ``(loss, metrics)``: a scalar to minimise and detached scalar
tensors for logging: ``rewards/chosen``, ``rewards/rejected``, ``rewards/margin``
(batch means of the implicit rewards and of their difference),
``rewards/accuracy`` (share of pairs whose chosen reward is higher),
``logps/chosen``, ``logps/rejected`` (mean summed policy log-probs; IRPO
watches the chosen one fall under plain DPO), and one ``loss/<part>`` per term.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from srlm.core.grpo import grpo_loss

__all__ = [
    "LOSSES",
    "LossSpec",
    "dpo_loss",
    "dpo_nll_loss",
    "get_loss",
    "hinge_loss",
    "ipo_loss",
    "loss_spec",
    "needs_reference",
    "register_loss",
    "simpo_loss",
    "sft_loss",
]

Metrics = dict[str, Tensor]
LossFn = Callable[..., tuple[Tensor, Metrics]]


# What a training batch holds for a loss; srlm.training.trainer builds one batch shape per kind.
#   pairs:  chosen and rejected sequences of each preference pair (the DPO family);
#   chosen: the chosen sequences only (supervised fine-tuning);
#   groups: each prompt's group of samples with their rewards (policy-gradient losses: grpo,
#           srlm.core.grpo), whose function takes per-token tensors instead of the pair
#           arguments above.
INPUTS = ("pairs", "chosen", "groups")


@dataclass(frozen=True)
class LossSpec:
    """A registered loss: its function, the batch it needs, whether it reads reference
    log-probs, and which optimizer.* keys are passed to it as keyword arguments."""

    name: str
    fn: LossFn
    inputs: str
    reference: bool
    options: tuple[str, ...]


LOSSES: dict[str, LossSpec] = {}


def register_loss(
    name: str, *, inputs: str = "pairs", reference: bool = True, options: tuple[str, ...] = ()
) -> Callable[[LossFn], LossFn]:
    """Function decorator: make ``fn`` the loss of ``optimizer.loss=<name>`` (its config is
    ``conf/optimizer/<name>.yaml``, starting from ``/schema/optimizer/base@_here_``)."""

    def wrap(fn: LossFn) -> LossFn:
        if inputs not in INPUTS:
            raise TypeError(
                f"register_loss({name!r}, inputs={inputs!r}): one of {', '.join(INPUTS)}"
            )
        LOSSES[name] = LossSpec(name, fn, inputs, reference, tuple(options))
        return fn

    return wrap


def loss_spec(name: str) -> LossSpec:
    """The loss registered under ``name``; ValueError naming the known ones otherwise."""
    try:
        return LOSSES[name]
    except KeyError:
        raise ValueError(
            f"unknown loss {name!r}; known losses: {', '.join(sorted(LOSSES))}"
        ) from None


def _as_counts(tokens: Tensor, like: Tensor) -> Tensor:
    """Token counts as floats for division; an empty response counts as one token, not a NaN."""
    return torch.as_tensor(tokens, device=like.device).to(like.dtype).clamp(min=1.0)


def _reward_metrics(
    reward_chosen: Tensor,
    reward_rejected: Tensor,
    policy_chosen: Tensor,
    policy_rejected: Tensor,
) -> Metrics:
    rc, rr = reward_chosen.detach(), reward_rejected.detach()
    return {
        "rewards/chosen": rc.mean(),
        "rewards/rejected": rr.mean(),
        "rewards/margin": (rc - rr).mean(),
        "rewards/accuracy": (rc > rr).float().mean(),
        "logps/chosen": policy_chosen.detach().mean(),
        "logps/rejected": policy_rejected.detach().mean(),
    }


def _dpo_terms(
    policy_chosen: Tensor,
    policy_rejected: Tensor,
    ref_chosen: Tensor,
    ref_rejected: Tensor,
    beta: float,
    label_smoothing: float,
) -> tuple[Tensor, Metrics]:
    """Per-pair DPO losses and the implicit-reward metrics r = beta * log(pi / pi_ref)."""
    if ref_chosen is None or ref_rejected is None:
        raise ValueError("this loss needs reference log-probs (ref_chosen, ref_rejected)")
    reward_chosen = beta * (policy_chosen - ref_chosen)
    reward_rejected = beta * (policy_rejected - ref_rejected)
    logits = reward_chosen - reward_rejected
    # Conservative DPO: with probability label_smoothing the label is assumed flipped.
    agree, flipped = F.logsigmoid(logits), F.logsigmoid(-logits)
    losses = -(1.0 - label_smoothing) * agree - label_smoothing * flipped
    metrics = _reward_metrics(reward_chosen, reward_rejected, policy_chosen, policy_rejected)
    return losses, metrics


@register_loss("dpo", options=("beta", "label_smoothing"))
def dpo_loss(
    policy_chosen: Tensor,
    policy_rejected: Tensor,
    ref_chosen: Tensor,
    ref_rejected: Tensor,
    chosen_tokens: Tensor,
    rejected_tokens: Tensor,
    *,
    beta: float = 0.1,
    label_smoothing: float = 0.0,
) -> tuple[Tensor, Metrics]:
    """DPO: ``-log sigmoid(beta * (logratio_chosen - logratio_rejected))``, batch mean.

    ``logratio = log pi_theta - log pi_ref`` of the summed sequence log-probs.
    beta = 0.1 in every paper srlm follows. ``label_smoothing`` > 0 gives
    conservative DPO (cDPO); token counts are unused.
    """
    losses, metrics = _dpo_terms(
        policy_chosen, policy_rejected, ref_chosen, ref_rejected, beta, label_smoothing
    )
    loss = losses.mean()
    metrics["loss/dpo"] = loss.detach()
    return loss, metrics


@register_loss("ipo", options=("beta",))
def ipo_loss(
    policy_chosen: Tensor,
    policy_rejected: Tensor,
    ref_chosen: Tensor,
    ref_rejected: Tensor,
    chosen_tokens: Tensor,
    rejected_tokens: Tensor,
    *,
    beta: float = 0.1,
) -> tuple[Tensor, Metrics]:
    """IPO: ``(logratio_c / |y_c| - logratio_r / |y_r| - 1 / (2 beta))^2``, batch mean.

    Log ratios are averaged per token, as in TRL's IPO, so the fixed target
    margin 1/(2 beta) does not depend on response length. The reward metrics
    are still the summed ``beta * logratio`` so they compare across losses.
    """
    if ref_chosen is None or ref_rejected is None:
        raise ValueError("ipo needs reference log-probs (ref_chosen, ref_rejected)")
    h = (policy_chosen - ref_chosen) / _as_counts(chosen_tokens, policy_chosen) - (
        policy_rejected - ref_rejected
    ) / _as_counts(rejected_tokens, policy_rejected)
    loss = ((h - 1.0 / (2.0 * beta)) ** 2).mean()
    metrics = _reward_metrics(
        beta * (policy_chosen - ref_chosen),
        beta * (policy_rejected - ref_rejected),
        policy_chosen,
        policy_rejected,
    )
    metrics["loss/ipo"] = loss.detach()
    return loss, metrics


@register_loss("hinge", options=("beta",))
def hinge_loss(
    policy_chosen: Tensor,
    policy_rejected: Tensor,
    ref_chosen: Tensor,
    ref_rejected: Tensor,
    chosen_tokens: Tensor,
    rejected_tokens: Tensor,
    *,
    beta: float = 0.1,
) -> tuple[Tensor, Metrics]:
    """Hinge (SLiC-HF, Zhao et al. 2023; RSO, Liu et al. 2024): ``max(0, 1 - beta * (logratio_c
    - logratio_r))``, batch mean. A pair stops contributing once its margin of implicit rewards
    reaches 1, where DPO's sigmoid keeps pushing; token counts are unused."""
    if ref_chosen is None or ref_rejected is None:
        raise ValueError("hinge needs reference log-probs (ref_chosen, ref_rejected)")
    reward_chosen = beta * (policy_chosen - ref_chosen)
    reward_rejected = beta * (policy_rejected - ref_rejected)
    loss = torch.relu(1.0 - (reward_chosen - reward_rejected)).mean()
    metrics = _reward_metrics(reward_chosen, reward_rejected, policy_chosen, policy_rejected)
    metrics["loss/hinge"] = loss.detach()
    return loss, metrics


@register_loss("dpo_nll", options=("beta", "alpha"))
def dpo_nll_loss(
    policy_chosen: Tensor,
    policy_rejected: Tensor,
    ref_chosen: Tensor,
    ref_rejected: Tensor,
    chosen_tokens: Tensor,
    rejected_tokens: Tensor,
    *,
    beta: float = 0.1,
    alpha: float = 1.0,
) -> tuple[Tensor, Metrics]:
    """IRPO (Eq. 1): DPO + ``alpha * (-log pi_theta(chosen)) / |chosen|``, batch mean.

    The NLL is normalised by each chosen response's own token count (v3 of the
    paper; |c_w| + |y_w| = all response tokens) and then averaged over pairs.
    IRPO uses alpha = 1, beta = 0.1; the STE release's ``nll_scale`` is alpha.
    """
    losses, metrics = _dpo_terms(
        policy_chosen, policy_rejected, ref_chosen, ref_rejected, beta, 0.0
    )
    dpo = losses.mean()
    nll = (-policy_chosen / _as_counts(chosen_tokens, policy_chosen)).mean()
    loss = dpo + alpha * nll
    metrics["loss/dpo"] = dpo.detach()
    metrics["loss/nll"] = nll.detach()
    return loss, metrics


@register_loss("simpo", reference=False, options=("beta", "gamma"))
def simpo_loss(
    policy_chosen: Tensor,
    policy_rejected: Tensor,
    ref_chosen: Tensor | None,
    ref_rejected: Tensor | None,
    chosen_tokens: Tensor,
    rejected_tokens: Tensor,
    *,
    beta: float = 2.0,
    gamma: float = 1.0,
) -> tuple[Tensor, Metrics]:
    """SimPO: ``-log sigmoid(beta/|y_w| log pi(y_w) - beta/|y_l| log pi(y_l) - gamma)``.

    Reference-free: ``ref_chosen``/``ref_rejected`` are accepted so all losses
    share one signature, but ignored (pass None to skip the reference forward).
    The rewards in the metrics are SimPO's ``beta * mean token log-prob``.
    Defaults follow SimPO's recommended ranges (beta 2-2.5, gamma/beta ~0.5);
    its beta is on a per-token scale and is not comparable to DPO's.
    """
    reward_chosen = beta * policy_chosen / _as_counts(chosen_tokens, policy_chosen)
    reward_rejected = beta * policy_rejected / _as_counts(rejected_tokens, policy_rejected)
    loss = -F.logsigmoid(reward_chosen - reward_rejected - gamma).mean()
    metrics = _reward_metrics(reward_chosen, reward_rejected, policy_chosen, policy_rejected)
    metrics["loss/simpo"] = loss.detach()
    return loss, metrics


@register_loss("sft", inputs="chosen", reference=False)
def sft_loss(
    policy_chosen: Tensor,
    policy_rejected: Tensor | None,
    ref_chosen: Tensor | None,
    ref_rejected: Tensor | None,
    chosen_tokens: Tensor,
    rejected_tokens: Tensor | None,
) -> tuple[Tensor, Metrics]:
    """Rejection-sampling fine-tuning: ``-sum log pi(chosen) / sum |chosen|`` over the batch.

    A token mean over the whole batch, like ordinary SFT, so long responses
    weigh in proportion to their tokens. Rejected and reference inputs are
    ignored (may be None). The rewards in the metrics are mean token log-probs
    (beta = 1, no reference); the rejected ones are reported only when given.
    """
    counts = _as_counts(chosen_tokens, policy_chosen)
    loss = -policy_chosen.sum() / counts.sum()
    reward_chosen = (policy_chosen / counts).detach()
    if policy_rejected is not None and rejected_tokens is not None:
        reward_rejected = policy_rejected / _as_counts(rejected_tokens, policy_rejected)
        metrics = _reward_metrics(reward_chosen, reward_rejected, policy_chosen, policy_rejected)
    else:
        metrics = {
            "rewards/chosen": reward_chosen.mean(),
            "logps/chosen": policy_chosen.detach().mean(),
        }
    metrics["loss/nll"] = loss.detach()
    return loss, metrics


def get_loss(name: str) -> LossFn:
    """The loss function registered under ``name``; ValueError naming the known ones otherwise."""
    return loss_spec(name).fn


def needs_reference(name: str) -> bool:
    """Whether loss ``name`` uses reference-model log-probs (False for simpo and sft)."""
    return loss_spec(name).reference


# The group loss lives in its own module (srlm.core.grpo), registered here.
register_loss(
    "grpo", inputs="groups", options=("beta", "epsilon_low", "epsilon_high", "aggregation")
)(grpo_loss)
