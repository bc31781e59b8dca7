"""Turning (prompt, chosen, rejected) texts into token tensors with masked prompts."""

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


def encode_example(tok, ex: Example, max_length: int) -> dict:
    prompt = tok(ex.prompt, add_special_tokens=False).input_ids

    def response(text: str) -> list[int]:
        # The end-of-turn token is part of the response: the model must learn to stop.
        return tok(text, add_special_tokens=False).input_ids + [tok.eos_token_id]

    out = {"chosen": _join(prompt, response(ex.chosen), max_length)}
    if ex.rejected is not None:
        out["rejected"] = _join(prompt, response(ex.rejected), max_length)
    return out


def _join(prompt: list[int], response: list[int], max_length: int) -> tuple[list[int], list[int]]:
    # Over-long pairs lose the start of the prompt, never the response being scored.
    ids = (prompt + response)[-max_length:]
    n_resp = min(len(response), max_length)
    labels = [IGNORE] * (len(ids) - n_resp) + ids[len(ids) - n_resp :]
    return ids, labels


def collate(seqs: list[tuple[list[int], list[int]]], pad_id: int) -> dict[str, torch.Tensor]:
    width = max(len(ids) for ids, _ in seqs)
    input_ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    labels = torch.full((len(seqs), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, (ids, lab) in enumerate(seqs):
        input_ids[i, : len(ids)] = torch.tensor(ids)
        labels[i, : len(lab)] = torch.tensor(lab)
        mask[i, : len(ids)] = 1
    return {"input_ids": input_ids, "attention_mask": mask, "labels": labels}


def sequence_logps(model, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed log-probability of the response tokens of each sequence, and their count."""
    token_logp, valid = token_logps(model, batch)
    return token_logp.sum(-1), valid.sum(-1)


def token_logps(model, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-probability of each next token (0 where the label is IGNORE), and the label mask,
    from the first scored position of the batch onwards.

    Logits are computed only from there: on preference pairs most of a sequence is the prompt,
    and the vocabulary projection and the float32 log-softmax over it are a large share of a
    small model's step (benchmarks/train_stage.py)."""
    labels = batch["labels"][:, 1:]
    scored = (labels != IGNORE).any(0).nonzero()
    first = int(scored[0]) if len(scored) else labels.shape[1]
    labels = labels[:, first:]
    # Logits at positions first..L-1; the last one predicts past the end and is dropped.
    keep = labels.shape[1] + 1
    kwargs = {"logits_to_keep": keep} if _keeps_logits(model) else {}
    out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], **kwargs)
    logits = out.logits[:, -keep:-1].float()
    token_logp = -torch.nn.functional.cross_entropy(
        logits.reshape(-1, logits.size(-1)),
        labels.reshape(-1),
        ignore_index=IGNORE,
        reduction="none",
    ).view(labels.shape)
    valid = labels != IGNORE
    return token_logp * valid, valid


def _keeps_logits(model) -> bool:
    """Whether the causal LM under `model` (DDP/FSDP wrappers and PEFT unwrapped) takes
    transformers' `logits_to_keep`, which the model families srlm ships configs for do."""
    while hasattr(model, "module"):
        model = model.module
    if hasattr(model, "get_base_model"):
        model = model.get_base_model()
    return "logits_to_keep" in inspect.signature(model.forward).parameters
