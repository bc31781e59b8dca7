"""Checkpoint selection (srlm.training.selection): which steps are candidates, the trainer's
generation with a shared prefix cache, and a training whose best point is where it started."""

from __future__ import annotations

import pytest

import srlm.rollout.hf_engine as hf_engine
from srlm.config import ModelConfig, OptimizerConfig, SamplingConfig, TrainerConfig
from srlm.rollout.hf_engine import _common_prefix, generate_ids
from srlm.training.data import Example
from srlm.training.selection import Validation, candidate_steps
from srlm.training.trainer import train, weights_fingerprint
from tests.unit.tiny_lm import save_tiny_lm


def test_candidate_steps_are_evenly_spaced_and_end_at_the_last():
    assert candidate_steps(10, 2, False) == [5, 10]
    assert candidate_steps(10, 3, True) == [0, 4, 7, 10]  # ceil(10/3)=4, ceil(20/3)=7
    assert candidate_steps(10, 1, True) == [0, 10]
    # Fewer steps than candidates: every step, once.
    assert candidate_steps(2, 4, False) == [1, 2]
    assert candidate_steps(0, 2, True) == [0]


def test_common_prefix_leaves_every_prompt_a_token_of_its_own():
    assert _common_prefix([[1, 2, 3, 4], [1, 2, 5]]) == 2
    assert _common_prefix([[1, 2, 3], [1, 2, 3, 4]]) == 2
    assert _common_prefix([[7, 8]]) == 1


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    path = tmp_path_factory.mktemp("tiny_lm")
    save_tiny_lm(path)
    return path


def _load(path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(path).eval(), AutoTokenizer.from_pretrained(path)


HEAD = "what is the answer ? " * 6  # a shared beginning longer than _MIN_SHARED tokens
QUESTIONS = ["two plus two ?", "two plus three ?", "three plus three ?", "a b c ?", "hello ?"]


def test_shared_prefix_generation_equals_plain_generation(tiny, monkeypatch):
    model, tok = _load(tiny)
    encoded = [tok(HEAD + q, add_special_tokens=False).input_ids for q in QUESTIONS]
    assert _common_prefix(encoded) >= hf_engine._MIN_SHARED
    greedy = SamplingConfig(temperature=0.0, top_p=1.0, max_tokens=8)
    shared = generate_ids(model, tok, encoded, greedy, 1, 2, 256, None)
    monkeypatch.setattr(hf_engine, "_MIN_SHARED", 10**9)
    plain = generate_ids(model, tok, encoded, greedy, 1, 2, 256, None)
    assert [[c.text for c in cs] for cs in shared] == [[c.text for c in cs] for cs in plain]
    assert any(cs[0].text for cs in plain)
    # n samples per prompt come back grouped by prompt, n of each.
    sampled = generate_ids(model, tok, encoded, SamplingConfig(1.0, 1.0, 4), 3, 4, 256, None)
    assert [len(cs) for cs in sampled] == [3] * len(QUESTIONS)


def same_text(reply: str, reference: str) -> float:
    return float(reply == reference)


def test_selection_keeps_the_start_when_every_trained_point_is_worse(tiny, tmp_path):
    """The validation score is agreement with the start model's own greedy replies, which any
    update can only lower: the selected point must be step 0 and the saved weights the start's."""
    model, tok = _load(tiny)
    prompts = [HEAD + q for q in QUESTIONS]
    encoded = [tok(p, add_special_tokens=False).input_ids for p in prompts]
    greedy = SamplingConfig(temperature=0.0, top_p=1.0, max_tokens=6)
    references = [cs[0].text for cs in generate_ids(model, tok, encoded, greedy, 1, 8, 256, None)]
    validation = Validation(prompts, references, same_text, max_tokens=6, name="agreement")

    pairs = [
        Example("what is two plus two ?", "four .", "five ."),
        Example("what is two plus three ?", "five .", "six ."),
        Example("what is three plus three ?", "six .", "four ."),
        Example("what is the answer ?", "a .", "b ."),
    ]
    stats = train(
        pairs,
        str(tiny),
        tmp_path / "out",
        ModelConfig(name="tiny", source=str(tiny), max_length=128),
        OptimizerConfig(loss="dpo", lr=5e-2, lr_end=5e-2, epochs=2, batch_size=2),
        TrainerConfig(accelerator="cpu", precision="32-true", num_threads=1),
        selection=(validation, 2, True),
    )
    scores = {s["step"]: s["agreement"] for s in stats["selection"]}
    assert sorted(scores) == [0, 2, 4]
    assert scores[0] == 1.0
    assert scores[2] < 1.0 and scores[4] < 1.0, "training did not change the replies"
    assert stats["selected_step"] == 0
    saved, _ = _load(tmp_path / "out")
    assert weights_fingerprint(saved) == weights_fingerprint(model)
    # The statistics are of the selected point: at step 0 the margin on the pairs is zero.
    assert stats["margin_after"] == pytest.approx(0.0, abs=1e-6)
    assert stats["steps"] == 4


def prefers_step(reply: str, reference: str) -> float:
    return 1.0


def _train_one_pair(tiny, tmp_path, copies: int, selection: tuple) -> dict:
    """One pair repeated, batches of 2, selection on a validation set every reply scores 1 on."""
    validation = Validation([HEAD + QUESTIONS[0]], ["x"], prefers_step, max_tokens=2)
    return train(
        [Example("what is two plus two ?", "four .", "five .")] * copies,
        str(tiny),
        tmp_path / "out",
        ModelConfig(name="tiny", source=str(tiny), max_length=128),
        OptimizerConfig(loss="dpo", lr=5e-2, lr_end=5e-2, epochs=1, batch_size=2),
        TrainerConfig(accelerator="cpu", precision="32-true", num_threads=1),
        selection=(validation, *selection),
    )


def test_a_tie_goes_to_the_earlier_point(tiny, tmp_path):
    model, tok = _load(tiny)
    stats = _train_one_pair(tiny, tmp_path, copies=4, selection=(2, True))
    assert [s["step"] for s in stats["selection"]] == [0, 1, 2]
    assert stats["selected_step"] == 0
    saved, _ = _load(tmp_path / "out")
    assert weights_fingerprint(saved) == weights_fingerprint(model)


def test_the_start_score_is_the_one_the_last_iteration_kept():
    from srlm.training.selection import kept_score

    record = {
        "stats": {
            "selection": [
                {"step": 0, "validation_accuracy": 0.6},
                {"step": 9, "validation_accuracy": 0.7},
            ],
            "selected_step": 9,
            "selected_score": 0.7,
        }
    }
    assert kept_score(record, "validation_accuracy") == 0.7
    assert kept_score(record, "agreement") is None  # scored on something else
    assert kept_score({"stats": {"skipped": "no training examples"}}, "validation_accuracy") is None
    assert kept_score(None, "validation_accuracy") is None


def test_a_known_start_score_is_not_generated_again(tiny, tmp_path):
    model, tok = _load(tiny)
    # M_t's score given as 0.5, lower than every reply scores.
    stats = _train_one_pair(tiny, tmp_path, copies=2, selection=(1, True, 0.5))
    assert stats["selection"] == [
        {"step": 0, "validation": 0.5},
        {"step": 1, "validation": 1.0},
    ]
    assert stats["selected_step"] == 1
    saved, _ = _load(tmp_path / "out")
    assert weights_fingerprint(saved) != weights_fingerprint(model)
