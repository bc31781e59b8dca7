"""LoRA and gradient checkpointing through the same Lightning module, with every optimizer loss,
on a tiny Llama: training runs, the loss is finite, and the checkpoint holds plain (merged)
weights that differ from the start."""

from __future__ import annotations

import math

import pytest

from srlm.config import LoraConfig, ModelConfig, OptimizerConfig, TrainerConfig
from srlm.training.data import Example
from srlm.training.trainer import train, weights_fingerprint
from tests.unit.tiny_lm import save_tiny_lm

PAIRS = [
    ("what is two plus two ?", "four .", "five ."),
    ("what is two plus three ?", "five .", "six ."),
]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    path = tmp_path_factory.mktemp("tiny_lm")
    save_tiny_lm(path)
    return path


@pytest.mark.parametrize("loss", ["dpo", "ipo", "hinge", "dpo_nll", "simpo", "sft"])
def test_lora_with_gradient_checkpointing_trains_every_loss(tiny, tmp_path, loss):
    from transformers import AutoModelForCausalLM

    examples = [Example(p, c, None if loss == "sft" else r) for p, c, r in PAIRS]
    trainer = TrainerConfig(
        accelerator="cpu",
        precision="32-true",
        num_threads=1,
        gradient_checkpointing=True,
        lora=LoraConfig(enabled=True, r=4, alpha=8, dropout=0.0),
    )
    stats = train(
        examples,
        str(tiny),
        tmp_path / "out",
        ModelConfig(name="tiny", source=str(tiny), max_length=64),
        OptimizerConfig(loss=loss, lr=1e-2, epochs=2, batch_size=2),
        trainer,
    )
    assert stats["steps"] == 2 and math.isfinite(stats["loss"])
    saved = AutoModelForCausalLM.from_pretrained(tmp_path / "out")
    assert not any("lora" in name for name, _ in saved.named_parameters()), (
        "LoRA adapters were not merged"
    )
    start = AutoModelForCausalLM.from_pretrained(tiny)
    assert weights_fingerprint(saved) != weights_fingerprint(start)
