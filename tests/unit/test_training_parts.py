"""Training's pure parts: prompt cutting, packing a pair into one row, the log-probs of each
response, margin bookkeeping."""

from __future__ import annotations

import pytest
import torch

from srlm.training.data import IGNORE, collate, fit, sequence_logps
from srlm.training.trainer import _margin_stats
from tests.unit.tiny_lm import save_tiny_lm


def test_fit_keeps_short_pairs_whole():
    assert fit([1, 2, 3], [[7, 8], [9]], max_length=10) == {
        "prefix": [1, 2, 3],
        "branches": [[7, 8], [9]],
    }


def test_fit_cuts_the_prompt_start_never_the_response():
    # The longer response (3 tokens) leaves room for 2 prompt tokens in max_length 5.
    assert fit([1, 2, 3, 4], [[7, 8, 9], [6]], max_length=5) == {
        "prefix": [3, 4],
        "branches": [[7, 8, 9], [6]],
    }
    # A response alone over max_length keeps its end, and no prompt.
    assert fit([1, 2], [[5, 6, 7, 8]], max_length=3) == {"prefix": [], "branches": [[6, 7, 8]]}


def test_collate_packs_prompt_then_each_response_with_its_own_positions():
    b = collate(
        [
            {"prefix": [1, 2], "branches": [[5, 6], [7]]},
            {"prefix": [3], "branches": [[8], [9, 9]]},
        ],
        pad_id=0,
    )
    assert b["input_ids"].tolist() == [[1, 2, 5, 6, 7], [3, 8, 9, 9, 0]]
    # Both responses start where the prompt ends.
    assert b["position_ids"].tolist() == [[0, 1, 2, 3, 2], [0, 1, 1, 2, 0]]
    # Row 1: the rejected token (index 4) sees the prompt (0, 1) and itself, not the chosen.
    assert b["attention_mask"][0, 0, 4].tolist() == [True, True, False, False, True]
    assert b["attention_mask"][0, 0, 3].tolist() == [True, True, True, True, False]
    # Each response token is predicted from the position before it in its own sequence: the
    # first ones from the prompt's last token.
    assert b["targets"][0].tolist() == [[5, 6], [7, IGNORE]]
    assert b["sources"][0].tolist()[0] == [1, 2]
    assert b["sources"][0].tolist()[1][0] == 1
    assert b["targets"][1].tolist() == [[8, IGNORE], [9, 9]]
    assert b["sources"][1].tolist()[1] == [0, 2]


class _Uniform(torch.nn.Module):
    """Logits that make every next token equally likely over a vocabulary of 4."""

    def forward(self, input_ids, attention_mask, position_ids):
        return type("Out", (), {"logits": torch.zeros(*input_ids.shape, 4)})()


def test_sequence_logps_sums_response_tokens_only_chosen_then_rejected():
    b = collate([{"prefix": [1], "branches": [[2, 3], [3]]}], pad_id=0)
    logps, counts = sequence_logps(_Uniform(), b)
    # Uniform over 4 tokens: each scored token has log(1/4); 2 and 1 scored tokens.
    assert counts.tolist() == [2, 1]
    quarter = torch.log(torch.tensor(0.25)).item()
    assert logps.tolist() == pytest.approx([2 * quarter, quarter])


def test_packed_logps_equal_each_sequence_scored_alone(tmp_path):
    """On a real (tiny) Llama: the packed row gives every response the log-probs it has in its
    own prompt + response sequence, in float32 to rounding."""
    from transformers import AutoModelForCausalLM

    save_tiny_lm(tmp_path)
    model = AutoModelForCausalLM.from_pretrained(tmp_path, dtype=torch.float32).eval()
    rows = [
        {"prefix": [3, 4, 5, 6, 7], "branches": [[8, 14, 2], [9, 10, 14, 2]]},
        {"prefix": [11, 12, 4], "branches": [[5, 2], [6, 6, 6, 2]]},
    ]
    with torch.no_grad():
        packed, counts = sequence_logps(model, collate(rows, pad_id=0))
        alone = []
        for k in range(2):
            for r in rows:
                ids = r["prefix"] + r["branches"][k]
                lp = torch.log_softmax(model(input_ids=torch.tensor([ids])).logits[0], -1)
                n = len(r["prefix"])
                alone.append(sum(lp[n + j - 1, t].item() for j, t in enumerate(r["branches"][k])))
    assert counts.tolist() == [3, 2, 4, 4]
    assert packed.tolist() == pytest.approx(alone, abs=1e-5)


def test_margin_stats_by_hand():
    before = [(-10.0, -12.0), (-5.0, -5.0)]
    after = [(-9.0, -14.0), (-5.5, -4.5)]
    s = _margin_stats(before, after, beta=0.1, pairwise=True)
    # Pair 1: chosen +1, rejected -2 -> margin 0.1 * 3 = 0.3; pair 2: -0.5, +0.5 -> -0.1.
    assert s["margin_after"] == pytest.approx(0.1)
    assert s["pair_accuracy_after"] == 0.5
    assert s["chosen_logp_change"] == pytest.approx(0.25)
    assert s["rejected_logp_change"] == pytest.approx(-0.75)
