"""The Lightning module feeds each loss what it needs: sft sees the chosen sequences only, simpo
and sft never read reference log-probs, dpo/ipo do. Hand-worked values as in test_losses.py."""

from __future__ import annotations

import pytest
import torch

import srlm.training.trainer as trainer_mod
from srlm.config import OptimizerConfig
from srlm.training.data import IGNORE
from srlm.training.trainer import PreferenceModule


def _row(chosen_len: int, rejected_len: int, ref=(0.0, 0.0)) -> dict:
    return {
        "prefix": [1, 2],
        "branches": [[5] * chosen_len, [6] * rejected_len],
        "ref_chosen": ref[0],
        "ref_rejected": ref[1],
    }


@pytest.fixture
def fixed_logps(monkeypatch):
    """Replace the model's log-probs by given values; record the batches the loss was built from."""
    seen: list[dict] = []

    def install(values: list[float]):
        def fake(model, batch):
            seen.append(batch)
            # (row, branch) -> every row's chosen, then every row's rejected
            counts = (batch["targets"] != IGNORE).sum(-1).T.reshape(-1)
            assert len(values) == len(counts), "the batch holds other sequences than expected"
            return torch.tensor(values, dtype=torch.float64), counts

        monkeypatch.setattr(trainer_mod, "sequence_logps", fake)
        return seen

    return install


def _module(loss: str, **kw) -> PreferenceModule:
    return PreferenceModule(
        torch.nn.Linear(1, 1), OptimizerConfig(loss=loss, **kw), total_steps=1, pad_id=0
    )


def test_sft_trains_on_chosen_only(fixed_logps):
    m = _module("sft")
    batch = m.collate([_row(5, 9), _row(1, 9)])
    assert batch["targets"].shape[1] == 1  # the rejected responses are not even in the batch
    fixed_logps([-10.0, -6.0])
    loss, metrics = m.compute(batch)
    # Token mean over the batch: (10 + 6) / (5 + 1) = 2.666667.
    assert loss.item() == pytest.approx(16 / 6)
    assert "rewards/rejected" not in metrics and "rewards/accuracy" not in metrics


def test_simpo_is_length_normalised_and_reference_free(fixed_logps):
    m = _module("simpo", beta=2.0, gamma=1.0)
    # Reference values that would change the loss if they were read.
    batch = m.collate([_row(5, 10, ref=(123.0, -456.0))])
    assert batch["targets"].shape[1] == 2
    fixed_logps([-10.0, -15.0])
    loss, metrics = m.compute(batch)
    # 2 * (-10 / 5) = -4 vs 2 * (-15 / 10) = -3; -log sigmoid(-4 + 3 - 1) = log(1 + e^2) = 2.126928.
    assert loss.item() == pytest.approx(2.126928, abs=1e-6)
    assert metrics["rewards/chosen"].item() == pytest.approx(-4.0)


def test_dpo_reads_the_reference(fixed_logps):
    m = _module("dpo", beta=0.1)
    batch = m.collate([_row(5, 10, ref=(-12.0, -14.0))])
    fixed_logps([-10.0, -15.0])
    loss, _ = m.compute(batch)
    # 0.1 * ((-10 + 12) - (-15 + 14)) = 0.3; -log sigmoid(0.3) = 0.554355.
    assert loss.item() == pytest.approx(0.554355, abs=1e-6)


def test_ipo_per_token_ratios(fixed_logps):
    m = _module("ipo", beta=0.1)
    batch = m.collate([_row(4, 2, ref=(-12.0, -14.0))])
    fixed_logps([-10.0, -15.0])
    loss, _ = m.compute(batch)
    # 2 / 4 - (-1) / 2 = 1; (1 - 1 / 0.2)^2 = 16.
    assert loss.item() == pytest.approx(16.0)
