"""Distributed training for real: a DPO stage in 2 CPU processes (DDP over gloo) on a tiny Llama.

train() starts the two ranks itself (spawn), so this runs from pytest as it does from srlm's
phase child.
"""

from __future__ import annotations

import json
import time

from srlm.config import ModelConfig, OptimizerConfig, TrainerConfig
from srlm.training.data import Example
from srlm.training.selection import Validation
from srlm.training.trainer import train, weights_fingerprint
from tests.unit.tiny_lm import save_tiny_lm

PAIRS = [
    ("what is two plus two ?", "four .", "five ."),
    ("what is two plus three ?", "five .", "six ."),
    ("what is three plus three ?", "six .", "four ."),
    ("what is the answer ?", "hello world .", "a b c ."),
    ("what is two plus two ? the answer", "is four .", "is six ."),
    ("what is a plus b ?", "c .", "a ."),
]


def always_one(reply: str, reference: str) -> float:
    return 1.0


def _fingerprint(path) -> str:
    from transformers import AutoModelForCausalLM

    return weights_fingerprint(AutoModelForCausalLM.from_pretrained(path, dtype="float32"))


def test_dpo_on_two_cpu_ddp_ranks(tmp_path):
    init, out = tmp_path / "m0", tmp_path / "m1"
    save_tiny_lm(init)
    examples = [Example(*p) for p in PAIRS]
    started = time.time()
    stats = train(
        examples,
        str(init),
        out,
        ModelConfig(name="tiny", source=str(init), max_length=64),
        OptimizerConfig(
            loss="dpo", beta=0.1, lr=5e-3, lr_end=5e-3, schedule="constant", epochs=3, batch_size=2
        ),
        TrainerConfig(
            accelerator="cpu", devices=2, strategy="ddp", precision="32-true", num_threads=1
        ),
        seed=0,
        # Checkpoint selection with the ranks sharing the validation prompts: 2 on rank 0, 1 on
        # rank 1; the score is 1.0 only if the ranks' sums are added up.
        selection=(
            Validation(["what is", "two plus", "a b"], ["", "", ""], always_one, 3),
            1,
            False,
        ),
    )
    print(f"2-rank DDP train(): {time.time() - started:.1f} s")

    assert stats["world_size"] == 2
    # 6 pairs, 2 per batch, 2 ranks: 2 steps an epoch (the sampler splits the pairs).
    assert stats["steps"] == 6
    ranks = stats["rank_weights_sha256"]
    assert len(ranks) == 2 and ranks[0] == ranks[1], "the ranks ended with different weights"
    assert _fingerprint(out) == ranks[0], "the checkpoint is not what the ranks trained"
    assert _fingerprint(init) != ranks[0], "training did not change the weights"
    assert stats["margin_before"] == 0.0
    assert stats["selection"] == [{"step": 6, "validation": 1.0}] and stats["selected_step"] == 6
    assert stats["margin_after"] > 0 and stats["pair_accuracy_after"] > 0.5
    # Rank 0 alone wrote the directory: one history, averaged over the ranks, no temp leftovers.
    assert json.loads((out / "train_stats.json").read_text())["world_size"] == 2
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 6
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m0", "m1"]
