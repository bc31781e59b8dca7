"""A tiny Llama causal LM with a word-level tokenizer, saved to a directory: training tests run in
seconds on it, with nothing downloaded."""

from __future__ import annotations

import torch

WORDS = [
    "[PAD]",
    "[UNK]",
    "</s>",
    "what",
    "is",
    "two",
    "plus",
    "three",
    "four",
    "five",
    "six",
    "the",
    "answer",
    "?",
    ".",
    "probe",
    "text",
    "hello",
    "world",
    "a",
    "b",
    "c",
]


def save_tiny_lm(path, layers: int = 2, hidden: int = 64, seed: int = 0) -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate(WORDS)}
    raw = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    raw.pre_tokenizer = pre_tokenizers.Whitespace()
    tok = PreTrainedTokenizerFast(
        tokenizer_object=raw, unk_token="[UNK]", pad_token="[PAD]", eos_token="</s>"
    )
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(vocab),
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
        pad_token_id=0,
        eos_token_id=2,
        bos_token_id=2,
    )
    LlamaForCausalLM(config).save_pretrained(path)
    tok.save_pretrained(path)
