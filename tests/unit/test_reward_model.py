"""reward=reward_model on a tiny sequence-classification model built here from a small config
(no download): scores are the model's own outputs, multi-head outputs are reduced as configured."""

from __future__ import annotations

import pytest
import torch

from srlm.config import ModelConfig, RewardModelRewardConfig
from srlm.rewards.base import Item
from srlm.rewards.reward_model import RewardModelReward, reduce_heads, rm_text

WORDS = [
    "[PAD]",
    "[UNK]",
    "what",
    "is",
    "two",
    "plus",
    "two",
    "four",
    "five",
    "the",
    "answer",
    "?",
    ".",
]


def _tiny_rm(path, num_labels: int) -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForSequenceClassification, PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate(dict.fromkeys(WORDS))}
    raw = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    raw.pre_tokenizer = pre_tokenizers.Whitespace()
    tok = PreTrainedTokenizerFast(tokenizer_object=raw, unk_token="[UNK]", pad_token="[PAD]")
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(vocab),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=64,
        num_labels=num_labels,
        pad_token_id=0,
    )
    LlamaForSequenceClassification(config).eval().save_pretrained(path)
    tok.save_pretrained(path)


def _source(path, **kw) -> RewardModelReward:
    cfg = RewardModelRewardConfig(
        model=ModelConfig(name="tiny_rm", source=str(path), max_length=64), batch_size=2, **kw
    )
    return RewardModelReward(cfg)


def _direct(path, texts: list[str]) -> torch.Tensor:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tok, model = (
        AutoTokenizer.from_pretrained(path),
        AutoModelForSequenceClassification.from_pretrained(path),
    )
    with torch.inference_mode():
        return torch.stack([model(**tok(t, return_tensors="pt")).logits[0] for t in texts])


def test_reduce_heads_by_hand():
    assert reduce_heads([1.0, 2.0, 6.0], "mean") == 3.0
    assert reduce_heads([1.0, 2.0, 6.0], "index", index=2) == 6.0
    assert reduce_heads([1.0, 2.0, 6.0], "weights", weights=[0.5, 0.0, 1.0]) == 6.5
    assert reduce_heads([0.25], "auto") == 0.25
    with pytest.raises(ValueError, match="3 heads"):
        reduce_heads([1.0, 2.0, 6.0], "index", index=3)


def test_single_head_scores_are_the_models_logits(tmp_path):
    _tiny_rm(tmp_path, num_labels=1)
    items = [
        Item("what is two plus two ?", "four ."),
        Item("what is two plus two ?", "five ."),
        Item("what is two plus two ?", "the answer is four ."),
    ]
    src = _source(tmp_path)
    out = src.score([items[:2], items[2:]], lambda: None)
    # Batches of 2 with right padding give what each text gives alone.
    expected = _direct(
        tmp_path, [rm_text(src.tokenizer, it.instruction, it.response) for it in items]
    )[:, 0]
    got = [s.score for g in out.scored for s in g]
    assert got == pytest.approx(expected.tolist(), abs=1e-5)
    assert out.health["parse_failures"] == 0 and out.health["truncated_inputs"] == 0
    assert out.scored[0][0].record == {"rm_score": got[0]}


def test_multi_head_model_reduced_to_one_score(tmp_path):
    _tiny_rm(tmp_path, num_labels=3)
    item = Item("what is two plus two ?", "four .")
    heads = _direct(tmp_path, ["what is two plus two ?\n\nfour ."])[0]
    mean = _source(tmp_path).score([[item]], lambda: None).scored[0][0].score  # auto: the mean
    assert mean == pytest.approx(heads.mean().item(), abs=1e-5)
    second = (
        _source(tmp_path, head_reduce="index", head_index=1)
        .score([[item]], lambda: None)
        .scored[0][0]
        .score
    )
    assert second == pytest.approx(heads[1].item(), abs=1e-5)


def test_hf_engine_next_token_logprobs_ignore_padding(tmp_path):
    """reward.score_mode=expected reads next-token log-probs in padded batches: a prompt must get
    what it gets alone (positions count real tokens only)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from srlm.config import RolloutConfig
    from srlm.rollout.hf_engine import HfEngine

    _tiny_rm(tmp_path, num_labels=1)  # for its tokenizer; the causal LM replaces the weights
    torch.manual_seed(0)
    LlamaForCausalLM(
        LlamaConfig(
            vocab_size=len(set(WORDS)),
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            num_key_value_heads=2,
            max_position_embeddings=64,
            pad_token_id=0,
        )
    ).save_pretrained(tmp_path)
    engine = HfEngine(
        str(tmp_path),
        ModelConfig(name="t", source=str(tmp_path), max_length=64),
        RolloutConfig(engine="hf", batch_size=4),
    )
    prompts, ids = ["what is two plus two ? the answer is", "four ."], [7, 8]
    both = engine.next_token_logprobs(prompts, ids)
    alone = [engine.next_token_logprobs([p], ids)[0] for p in prompts]
    assert both == [pytest.approx(a, abs=1e-5) for a in alone]
