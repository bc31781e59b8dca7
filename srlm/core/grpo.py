"""Group-relative policy optimisation: advantages over each prompt's group of samples, and the
clipped policy-gradient loss over per-token log-probabilities.

GRPO (Shao et al. 2024, "DeepSeekMath", Sec. 4.1) samples G responses per prompt, scores them,
and uses each response's reward relative to its group as the advantage of all its tokens, so no
value model is trained. The loss is PPO's clipped surrogate plus a KL penalty to a reference.
The options cover the variants that change its bias:

- Dr. GRPO (Liu et al. 2025, "Understanding R1-Zero-Like Training: A Critical Perspective"):
  no division by the group's std (``scale="none"``) and a constant normaliser instead of each
  response's length (``aggregation="dr_grpo"``), which remove a question-difficulty bias and a
  bias towards long wrong answers;
- DAPO (Yu et al. 2025): a higher upper clip (``epsilon_high`` > ``epsilon_low``, "clip-higher")
  and a token-level mean over the batch (``aggregation="token"``), so a long response's tokens
  count as much as a short one's.

These are pure functions. ``optimizer=grpo`` (conf/optimizer/grpo.yaml) trains with
``grpo_loss`` on batches of groups (``srlm.core.losses.INPUTS``), built by the trainer from a
method's ``Method.training_groups``: one prompt and its scored samples per row.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["AGGREGATIONS", "SCALES", "group_advantages", "grpo_loss", "k3_kl"]

Metrics = dict[str, Tensor]

SCALES = ("std", "none")
AGGREGATIONS = ("token", "sequence", "dr_grpo")


def group_advantages(
    rewards: Tensor,
    group_ids: Tensor | None = None,
    *,
    scale: str = "std",
    eps: float = 1e-4,
) -> tuple[Tensor, Metrics]:
    """GRPO's outcome advantages: ``A_i = (r_i - mean(group)) / (std(group) + eps)``.

    ``rewards`` is either (groups, G), one row per prompt, or 1-D with ``group_ids`` naming
    each sample's prompt (groups may then differ in size). The advantages have the shape of
    ``rewards``.

    ``scale="std"`` is DeepSeekMath's normalisation; ``scale="none"`` keeps ``r_i - mean``, as
    Dr. GRPO does, because dividing by the std up-weights prompts that are nearly always
    solved or nearly always failed. The std is the sample std (N - 1 in the denominator),
    ``torch.std``'s default and what TRL's GRPOTrainer uses, so that advantages match that
    implementation; DeepSeekMath does not say which. For rewards [1, 0, 0, 1] it gives
    ±sqrt(3)/2 rather than the population std's ±1. ``eps`` (TRL's 1e-4) bounds the scale of a
    group whose rewards barely differ.

    A group whose rewards are all equal (a single sample included) has nothing to compare:
    its advantages are exactly 0 rather than rounding noise over ``eps``, and its samples
    then train only through the KL term. The metrics report the share of such groups
    (``grpo/zero_advantage_groups``: high means the reward cannot tell the samples apart and
    most of the batch is wasted) and ``grpo/reward_mean``.
    """
    if scale not in SCALES:
        raise ValueError(f"scale={scale!r}: one of {', '.join(SCALES)}")
    rewards = torch.as_tensor(rewards)
    if not rewards.is_floating_point():
        rewards = rewards.float()
    if group_ids is None:
        if rewards.ndim != 2:
            raise ValueError("rewards must be (groups, G), or 1-D with group_ids")
        groups, size = rewards.shape
        ids = torch.arange(groups, device=rewards.device).repeat_interleave(size)
    else:
        group_ids = torch.as_tensor(group_ids, device=rewards.device)
        if rewards.ndim != 1 or group_ids.shape != rewards.shape:
            raise ValueError("with group_ids, rewards and group_ids must be 1-D of one length")
        _, ids = torch.unique(group_ids, return_inverse=True)
    flat = rewards.reshape(-1)
    if flat.numel() == 0:
        raise ValueError("no rewards")

    n = int(ids.max()) + 1
    zeros = flat.new_zeros(n)
    count = zeros.index_add(0, ids, torch.ones_like(flat))
    mean = zeros.index_add(0, ids, flat) / count
    centred = flat - mean[ids]
    # max == min, not std == 0: a mean of equal floats can differ from them in the last bit.
    high = zeros.scatter_reduce(0, ids, flat, "amax", include_self=False)
    low = zeros.scatter_reduce(0, ids, flat, "amin", include_self=False)
    tied = high == low
    if scale == "std":
        std = (zeros.index_add(0, ids, centred**2) / (count - 1).clamp(min=1)).sqrt()
        centred = centred / (std[ids] + eps)
    advantages = torch.where(tied[ids], torch.zeros_like(centred), centred)
    metrics = {
        "grpo/zero_advantage_groups": tied.float().mean(),
        "grpo/reward_mean": flat.mean(),
    }
    return advantages.reshape(rewards.shape), metrics


def k3_kl(logps: Tensor, ref_logps: Tensor) -> Tensor:
    """Per-token estimate of KL(pi_theta || pi_ref) from samples of pi_theta:
    ``exp(ref - logp) - (ref - logp) - 1`` (Schulman 2020, "Approximating KL Divergence", k3).

    Unbiased when the tokens are sampled from pi_theta, and never negative (``e^x >= 1 + x``)
    unlike ``logp - ref``; DeepSeekMath's Eq. 4 uses it for GRPO's penalty."""
    delta = ref_logps - logps
    return torch.exp(delta) - delta - 1.0


def grpo_loss(
    logps: Tensor,
    old_logps: Tensor | None,
    ref_logps: Tensor | None,
    advantages: Tensor,
    mask: Tensor,
    *,
    epsilon_low: float = 0.2,
    epsilon_high: float | None = None,
    beta: float = 0.04,
    aggregation: str = "sequence",
    max_length: int | None = None,
) -> tuple[Tensor, Metrics]:
    """GRPO's clipped surrogate with a k3 KL penalty (DeepSeekMath, Eq. 3), minimised.

    Per response token t of sample i, with ``ratio = exp(logps - old_logps)`` and ``A_i`` the
    sample's advantage (``group_advantages``)::

        loss_it = -min(ratio * A_i, clip(ratio, 1 - epsilon_low, 1 + epsilon_high) * A_i)
                  + beta * k3_kl(logps, ref_logps)

    Shapes: ``logps``, ``old_logps``, ``ref_logps`` and ``mask`` (batch, T), response tokens
    where ``mask`` is true (padding may hold anything, -inf included); ``advantages`` (batch,).

    - ``old_logps``: the policy that sampled the batch, as the trainer scores it (an inference
      engine's log-probs differ from the trainer's by kernels and precision, which would read as
      an off-policy ratio). None means on-policy, one update per batch: the ratio is 1 in value
      but still carries the gradient, which is then plain policy gradient ``-A_i * grad logp``.
    - ``ref_logps``: the reference (the run's initial model or M_t); may be None when beta = 0.
    - ``epsilon_high``: DAPO's clip-higher when above ``epsilon_low`` (DAPO: 0.2 and 0.28);
      None means ``epsilon_low``.
    - ``beta``: DeepSeekMath's 0.04; 0 drops the reference.
    - ``aggregation``: ``"sequence"`` (GRPO: each response's token mean, then the batch mean),
      ``"token"`` (DAPO: every response token of the batch weighs the same), ``"dr_grpo"`` (the
      token sum over ``batch * max_length``, a constant such as the generation budget, so a
      response's length does not scale its tokens' weight).

    Only ``logps`` carries gradient; the old and reference log-probs and the advantages are
    constants. Metrics (token means over the mask, whatever the aggregation): ``grpo/kl``
    (when a reference is given), ``grpo/ratio_mean``, ``grpo/clip_fraction`` (tokens whose clip
    is active, i.e. whose gradient it cuts: ratio above 1 + epsilon_high with A > 0, or below
    1 - epsilon_low with A < 0), ``grpo/clip_low``, ``grpo/clip_high``, ``grpo/advantage_mean``
    (over samples), ``grpo/sampled_nll`` (the sampler's mean -log-prob of its own tokens: for
    samples drawn at temperature 1 an estimate of its per-token entropy, whose collapse the
    online papers watch), and ``loss/policy``, ``loss/kl`` (the two terms, aggregated like the
    loss).
    """
    if aggregation not in AGGREGATIONS:
        raise ValueError(f"aggregation={aggregation!r}: one of {', '.join(AGGREGATIONS)}")
    if aggregation == "dr_grpo" and not max_length:
        raise ValueError("aggregation='dr_grpo' needs max_length, the constant token normaliser")
    if beta and ref_logps is None:
        raise ValueError(f"beta={beta} needs reference log-probs (ref_logps)")
    if logps.ndim != 2 or mask.shape != logps.shape or advantages.shape != logps.shape[:1]:
        raise ValueError(
            f"logps and mask must be (batch, T) and advantages (batch,); got "
            f"{tuple(logps.shape)}, {tuple(mask.shape)}, {tuple(advantages.shape)}"
        )
    epsilon_high = epsilon_low if epsilon_high is None else epsilon_high
    mask = mask.bool()
    # Padding is zeroed before any exp: an inf there would turn into NaN through the mask
    # product and through the backward pass.
    logps = logps.masked_fill(~mask, 0.0)
    old = logps.detach() if old_logps is None else old_logps.detach().masked_fill(~mask, 0.0)
    adv = advantages.detach().to(logps.dtype)[:, None]

    ratio = torch.exp(logps - old)
    clipped = ratio.clamp(1.0 - epsilon_low, 1.0 + epsilon_high)
    policy = -torch.minimum(ratio * adv, clipped * adv)
    kl = None
    if ref_logps is not None:
        kl = k3_kl(logps, ref_logps.detach().masked_fill(~mask, 0.0))

    policy_loss = _aggregate(policy, mask, aggregation, max_length)
    loss = policy_loss
    if beta:
        kl_loss = beta * _aggregate(kl, mask, aggregation, max_length)
        loss = loss + kl_loss

    clip_low = (ratio < 1.0 - epsilon_low) & (adv < 0)
    clip_high = (ratio > 1.0 + epsilon_high) & (adv > 0)
    metrics = {
        "loss/policy": policy_loss.detach(),
        "grpo/ratio_mean": _token_mean(ratio, mask),
        "grpo/clip_fraction": _token_mean(clip_low | clip_high, mask),
        "grpo/clip_low": _token_mean(clip_low, mask),
        "grpo/clip_high": _token_mean(clip_high, mask),
        "grpo/advantage_mean": advantages.detach().mean(),
        "grpo/sampled_nll": _token_mean(-old, mask),
    }
    if kl is not None:
        metrics["grpo/kl"] = _token_mean(kl, mask)
    if beta:
        metrics["loss/kl"] = kl_loss.detach()
    return loss, metrics


def _aggregate(per_token: Tensor, mask: Tensor, aggregation: str, max_length: int | None) -> Tensor:
    m = mask.to(per_token.dtype)
    sums = (per_token * m).sum(dim=-1)
    lengths = m.sum(dim=-1)
    if aggregation == "token":
        return sums.sum() / lengths.sum().clamp(min=1.0)
    if aggregation == "sequence":
        # An empty response adds 0 rather than 0/0.
        return (sums / lengths.clamp(min=1.0)).mean()
    return sums.sum() / (per_token.shape[0] * max_length)


def _token_mean(values: Tensor, mask: Tensor) -> Tensor:
    values = values.detach()
    if not values.is_floating_point():
        values = values.float()
    m = mask.to(values.dtype)
    return (values * m).sum() / m.sum().clamp(min=1.0)
