"""Tiny randomly initialised models that load, sample, judge and train as a real one does, in
a fraction of the time: for the tests that check plumbing (a set-up starts, a killed run
resumes), not what a model learns.

    tiny_model(dest, family="llama", chat=True) -> dest

Every tiny model uses the embedded SmolLM2 tokenizer (no Llama or Qwen tokenizer is available
offline); a base model (``chat=False``) gets it without its chat template, as a base model's
tokenizer has none. What this does not cover: the real tokenizers' special tokens and chat
templates (Llama-3's header tokens, Qwen's system prompt), and anything that depends on the real
sizes (memory, tensor-parallel splits, RoPE scaling of long contexts).

A random model almost never samples its end-of-sequence token, so every sample and judgement
would be cut at max_tokens and no pair would form. The weights are nudged so that each step ends
the text with probability about ``P_END``: one hidden dimension is a constant 1 in every token's
embedding and nothing writes to it, so after the final norm it is positive at every position,
and only the end token's output row reads it.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path

P_END = 0.1
# The architecture family of each model config in conf/model (what a paper's model is built as).
FAMILY_OF_MODEL = {
    "smollm2_135m": "llama",
    "llama2_70b": "llama",
    "llama2_70b_chat": "llama",
    "llama3_8b_instruct": "llama",
    "llama31_70b_instruct": "llama",
    "qwen25_7b_instruct": "qwen2",
}
SIZES = dict(
    hidden_size=32,
    intermediate_size=64,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=4096,
    tie_word_embeddings=False,
)


def embedded_dir() -> Path:
    from srlm.models import embedded_checkpoint

    return Path(embedded_checkpoint("smollm2-135m-instruct"))


def tiny_model(dest: Path, family: str = "llama", chat: bool = True, seed: int = 0) -> Path:
    """Write a tiny random model of `family` (llama | qwen2) with the embedded tokenizer to
    `dest` (kept when it is already there) and return `dest`."""
    dest = Path(dest)
    if (dest / "model.safetensors").exists():
        return dest
    import torch
    import transformers
    from transformers import AutoTokenizer

    source = embedded_dir()
    tokenizer = AutoTokenizer.from_pretrained(source)
    if not chat:
        tokenizer.chat_template = None
    config_class = {"llama": transformers.LlamaConfig, "qwen2": transformers.Qwen2Config}[family]
    config = _config(config_class, tokenizer)
    torch.manual_seed(seed)
    model = transformers.AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    _end_often(model, tokenizer)
    _save(model, tokenizer, dest, chat)
    return dest


def _end_often(model, tokenizer) -> None:
    import torch

    eos = tokenizer.eos_token_id
    with torch.no_grad():
        inner = model.model
        inner.embed_tokens.weight[:, 0] = 1.0
        for layer in inner.layers:
            layer.self_attn.o_proj.weight[0, :] = 0.0
            layer.mlp.down_proj.weight[0, :] = 0.0
        head = model.lm_head.weight
        head[:, 0] = 0.0
        # Dimension 0 after the final norm, measured on a sentence: the end token's logit is
        # set from it to log(P_END / (1 - P_END) * vocabulary size), which ends the text with
        # probability about P_END among otherwise near-uniform logits.
        ids = tokenizer(
            "A short sentence to measure the final hidden state on.", return_tensors="pt"
        )
        h0 = model(**ids, output_hidden_states=True).hidden_states[-1][0, :, 0].mean().item()
        head[eos, 0] = math.log(P_END / (1 - P_END) * len(tokenizer)) / h0


def tiny_reward_model(dest: Path, seed: int = 0) -> Path:
    """A tiny random scalar reward model (Llama sequence classification, one head) with the
    embedded tokenizer, for reward=reward_model."""
    dest = Path(dest)
    if (dest / "model.safetensors").exists():
        return dest
    import torch
    import transformers
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(embedded_dir())
    config = _config(transformers.LlamaConfig, tokenizer, num_labels=1)
    torch.manual_seed(seed)
    model = transformers.LlamaForSequenceClassification(config)
    _save(model, tokenizer, dest, chat=True)
    return dest


def _config(config_class, tokenizer, **extra):
    """A config of SIZES whose vocabulary and special tokens are the tokenizer's."""
    return config_class(
        vocab_size=len(tokenizer),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **SIZES,
        **extra,
    )


def _save(model, tokenizer, dest: Path, chat: bool) -> None:
    tmp = dest.with_name(dest.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    if not chat:
        (tmp / "chat_template.jinja").unlink(missing_ok=True)
    tmp.rename(dest)
