"""Turning (prompt, chosen, rejected) texts into token tensors, and the log-probabilities of the
responses under a causal LM.

A pair is packed into one row: the prompt once, then the chosen response, then the rejected
one, with an attention mask under which each response sees the prompt and itself but not the
other response, and position ids that start both responses where the prompt ends. Every token
then gets exactly the log-probability it has in its own (prompt + response) sequence, while the
prompt, most of a pair's tokens in most methods, is computed once instead of twice
(benchmarks/train_stage.py measures the gain). The mask is a custom 4-D one, which transformers'
"sdpa" (its default) and "eager" attention take and "flash_attention_2" does not.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

import torch

IGNORE = -100


@dataclass
class Example:
    """One training example; `rejected` is None for supervised (SFT) data."""

    prompt: str
    chosen: str
    rejected: str | None = None


@dataclass
class Group:
    """A prompt's group of sampled responses and their rewards (group losses: grpo)."""

    prompt: str
    responses: list[str]
    rewards: list[float]

    def __post_init__(self) -> None:
        if not self.responses or len(self.responses) != len(self.rewards):
            raise ValueError(
                f"a group needs one reward per response; got {len(self.responses)} responses "
                f"and {len(self.rewards)} rewards"
            )


def _response_ids(tok, text: str) -> list[int]:
    # The end-of-turn token is part of the response: the model must learn to stop.
    return tok(text, add_special_tokens=False).input_ids + [tok.eos_token_id]


def encode_example(tok, ex: Example, max_length: int) -> dict:
    """{"prefix": prompt ids, "branches": [chosen ids] or [chosen ids, rejected ids]}."""
    prompt = tok(ex.prompt, add_special_tokens=False).input_ids
    texts = [ex.chosen] + ([ex.rejected] if ex.rejected is not None else [])
    return fit(prompt, [_response_ids(tok, t) for t in texts], max_length)


def encode_group(tok, group: Group, max_length: int) -> dict:
    """{"prefix": prompt ids, "branches": one per response, "rewards": [...]}: the whole group
    packed in one row, its prompt computed once."""
    prompt = tok(group.prompt, add_special_tokens=False).input_ids
    row = fit(prompt, [_response_ids(tok, t) for t in group.responses], max_length)
    return row | {"rewards": [float(r) for r in group.rewards]}


def fit(prompt: list[int], branches: list[list[int]], max_length: int) -> dict:
    """Cut so that the prompt with each response fits max_length: over-long pairs lose the start
    of the prompt, never the response being scored (a response alone over max_length keeps its
    last max_length tokens, and its first token, with nothing before it, is not scored)."""
    branches = [b[-max_length:] for b in branches]
    room = max_length - max(len(b) for b in branches)
    return {"prefix": prompt[max(0, len(prompt) - room) :] if room else [], "branches": branches}


def collate(rows: list[dict], pad_id: int) -> dict[str, torch.Tensor]:
    """Pack each row's prefix and branches into one right-padded sequence (module docstring).

    Returns input_ids, position_ids and a boolean attention_mask (batch, 1, L, L) for the model,
    and for each row and branch the scored tokens (`targets`, IGNORE-padded) with the position
    whose logits predict each of them (`sources`): (batch, branches, T) each. Rows may have
    different numbers of branches (groups); a row's missing branches score no token."""
    n_branches = max(len(r["branches"]) for r in rows)
    width = max(len(r["prefix"]) + sum(map(len, r["branches"])) for r in rows)
    longest = max(len(b) for r in rows for b in r["branches"])
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    position_ids = torch.zeros((len(rows), width), dtype=torch.long)
    # Segment of each position: 0 the prompt, k the k-th branch, -1 padding (position 0: its
    # outputs are never read).
    segment = torch.full((len(rows), width), -1, dtype=torch.long)
    targets = torch.full((len(rows), n_branches, longest), IGNORE, dtype=torch.long)
    sources = torch.zeros((len(rows), n_branches, longest), dtype=torch.long)
    for i, r in enumerate(rows):
        prefix, n = r["prefix"], len(r["prefix"])
        input_ids[i, :n] = torch.tensor(prefix, dtype=torch.long)
        position_ids[i, :n] = torch.arange(n)
        segment[i, :n] = 0
        start = n
        for k, branch in enumerate(r["branches"]):
            m = len(branch)
            input_ids[i, start : start + m] = torch.tensor(branch, dtype=torch.long)
            position_ids[i, start : start + m] = torch.arange(n, n + m)
            segment[i, start : start + m] = k + 1
            # Token j of the branch is predicted by the position before it in its own sequence:
            # the prompt's last token for j = 0, the branch's token j - 1 after that.
            targets[i, k, :m] = torch.tensor(branch, dtype=torch.long)
            sources[i, k, 1:m] = torch.arange(start, start + m - 1)
            sources[i, k, 0] = n - 1
            if n == 0:
                targets[i, k, 0] = IGNORE  # nothing precedes it
                sources[i, k, 0] = start
            start += m
    q, kv = segment.unsqueeze(2), segment.unsqueeze(1)
    causal = torch.ones(width, width, dtype=torch.bool).tril()
    # A query sees the prompt and its own segment, causally; padding sees earlier padding (never
    # an empty row, which would make the attention NaN).
    attention_mask = (causal & ((kv == 0) | (kv == q))).unsqueeze(1)
    return {
        "input_ids": input_ids,
        "position_ids": position_ids,
        "attention_mask": attention_mask,
        "targets": targets,
        "sources": sources,
    }


def sequence_logps(model, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed log-probability of each branch's tokens, and their count: every row's first
    branch (chosen), then every row's second (rejected)."""
    token_logp, valid = token_logps(model, batch)
    return token_logp.sum(-1), valid.sum(-1)


def token_logps(model, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-probability of each scored token (0 at padding) and the mask of scored tokens,
    (branches * batch, T), in sequence_logps' order.

    Logits are computed only from the first position any token is predicted from: the
    vocabulary projection and the float32 log-softmax over the prompt's positions would be a
    large share of a small model's step and are never read."""
    targets, sources = batch["targets"], batch["sources"]
    valid = targets != IGNORE
    first = int(sources[valid].min()) if valid.any() else 0
    keep = batch["input_ids"].shape[1] - first
    kwargs = {"logits_to_keep": keep} if _keeps_logits(model) else {}
    out = model(
        input_ids=batch["input_ids"],
        attention_mask=batch["attention_mask"],
        position_ids=batch["position_ids"],
        **kwargs,
    )
    logits = out.logits[:, -keep:]
    b, k, t = targets.shape
    index = (sources - first).clamp(min=0).view(b, k * t, 1).expand(-1, -1, logits.size(-1))
    picked = logits.gather(1, index).float()
    token_logp = -torch.nn.functional.cross_entropy(
        picked.reshape(-1, picked.size(-1)),
        targets.reshape(-1),
        ignore_index=IGNORE,
        reduction="none",
    ).view(b, k, t)
    token_logp = token_logp * valid
    # (batch, branch, T) -> (branch, batch, T): the chosen sequences first, then the rejected.
    return token_logp.transpose(0, 1).reshape(k * b, t), valid.transpose(0, 1).reshape(k * b, t)


def _keeps_logits(model) -> bool:
    """Whether the causal LM under `model` (DDP/FSDP wrappers and PEFT unwrapped) takes
    transformers' `logits_to_keep`, which the model families srlm ships configs for do."""
    while hasattr(model, "module"):
        model = model.module
    if hasattr(model, "get_base_model"):
        model = model.get_base_model()
    return "logits_to_keep" in inspect.signature(model.forward).parameters
