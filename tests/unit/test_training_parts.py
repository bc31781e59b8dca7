"""Training's pure parts: prompt masking, truncation, sequence log-probs, margin bookkeeping."""

from __future__ import annotations

import pytest
import torch

from srlm.training.data import IGNORE, _join, collate, sequence_logps
from srlm.training.trainer import _margin_stats


def test_join_masks_the_prompt_and_keeps_the_response():
    ids, labels = _join([1, 2, 3], [7, 8, 9], max_length=10)
    assert ids == [1, 2, 3, 7, 8, 9]
    assert labels == [IGNORE, IGNORE, IGNORE, 7, 8, 9]


def test_join_truncates_the_prompt_start_never_the_response():
    ids, labels = _join([1, 2, 3, 4], [7, 8], max_length=4)
    assert ids == [3, 4, 7, 8]
    assert labels == [IGNORE, IGNORE, 7, 8]


def test_collate_pads_right_and_masks_padding():
    b = collate([([5, 6, 7], [IGNORE, 6, 7]), ([5, 6], [IGNORE, 6])], pad_id=0)
    assert b["input_ids"].tolist() == [[5, 6, 7], [5, 6, 0]]
    assert b["attention_mask"].tolist() == [[1, 1, 1], [1, 1, 0]]
    assert b["labels"].tolist() == [[IGNORE, 6, 7], [IGNORE, 6, IGNORE]]


class _Uniform(torch.nn.Module):
    """Logits that make every next token equally likely over a vocabulary of 4."""

    def forward(self, input_ids, attention_mask):
        return type("Out", (), {"logits": torch.zeros(*input_ids.shape, 4)})()


def test_sequence_logps_sums_response_tokens_only():
    b = collate([([1, 2, 3], [IGNORE, 2, 3]), ([1, 2], [IGNORE, 2])], pad_id=0)
    logps, counts = sequence_logps(_Uniform(), b)
    # Uniform over 4 tokens: each scored token has log(1/4); 2 and 1 scored tokens.
    assert counts.tolist() == [2, 1]
    assert logps.tolist() == pytest.approx(
        [2 * torch.log(torch.tensor(0.25)).item(), torch.log(torch.tensor(0.25)).item()]
    )


def test_margin_stats_by_hand():
    before = [(-10.0, -12.0), (-5.0, -5.0)]
    after = [(-9.0, -14.0), (-5.5, -4.5)]
    s = _margin_stats(before, after, beta=0.1, pairwise=True)
    # Pair 1: chosen +1, rejected -2 -> margin 0.1 * 3 = 0.3; pair 2: -0.5, +0.5 -> -0.1.
    assert s["margin_after"] == pytest.approx(0.1)
    assert s["pair_accuracy_after"] == 0.5
    assert s["chosen_logp_change"] == pytest.approx(0.25)
    assert s["rejected_logp_change"] == pytest.approx(-0.75)


class _Positional(torch.nn.Module):
    """Next-token logits that depend on the position and the token there, computed only for
    the last `logits_to_keep` positions when asked, as transformers' causal LMs do."""

    def forward(self, input_ids, attention_mask, logits_to_keep=0):
        b, n = input_ids.shape
        pos = torch.arange(n, dtype=torch.float32).view(1, n, 1)
        logits = torch.sin(pos * torch.arange(1.0, 6.0) + input_ids.unsqueeze(-1)).expand(b, n, 5)
        return type("Out", (), {"logits": logits[:, -logits_to_keep:]})()


class _PositionalFull(torch.nn.Module):
    def forward(self, input_ids, attention_mask):
        return _Positional()(input_ids, attention_mask)


def test_logits_only_from_the_first_scored_position_give_the_same_logps():
    # Rows whose responses start at different positions; the first scored label is at 2.
    b = collate(
        [([1, 2, 3, 4, 0], [IGNORE, IGNORE, 3, 4, 0]), ([4, 3, 2, 1], [IGNORE, IGNORE, IGNORE, 1])],
        pad_id=0,
    )
    kept, n_kept = sequence_logps(_Positional(), b)
    full, n_full = sequence_logps(_PositionalFull(), b)
    assert n_kept.tolist() == n_full.tolist() == [3, 1]
    assert kept.tolist() == pytest.approx(full.tolist(), abs=1e-6)
    # By hand for row 2: one scored token, label 1 predicted from position 2 (token 2).
    logits = torch.sin(2 * torch.arange(1.0, 6.0) + 2)
    assert full[1].item() == pytest.approx(torch.log_softmax(logits, -1)[1].item(), abs=1e-6)
