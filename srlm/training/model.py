"""Loading tokenizers and causal LMs the same way for the trainer and the HF rollout engine."""

from __future__ import annotations

import torch

from srlm.config import ModelConfig, TrainerConfig

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def load_tokenizer(model_dir: str):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    return tok


def load_causal_lm(model_dir: str, model: ModelConfig, trainer: TrainerConfig | None = None):
    from transformers import AutoModelForCausalLM

    dtype = DTYPES[model.dtype]
    # Mixed precision keeps float32 master weights; autocast does the bf16 compute.
    if trainer is not None and trainer.precision.endswith("-mixed"):
        dtype = torch.float32
    lm = AutoModelForCausalLM.from_pretrained(
        model_dir, dtype=dtype, trust_remote_code=model.trust_remote_code
    )
    if trainer is not None:
        if trainer.gradient_checkpointing:
            # Non-reentrant checkpointing: the reentrant variant breaks DDP (parameters marked
            # ready twice) and needs inputs that require grad under LoRA.
            lm.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
            lm.config.use_cache = False
        if trainer.lora.enabled:
            from peft import LoraConfig, get_peft_model

            lm = get_peft_model(
                lm,
                LoraConfig(
                    r=trainer.lora.r,
                    lora_alpha=trainer.lora.alpha,
                    lora_dropout=trainer.lora.dropout,
                    target_modules=list(trainer.lora.target_modules),
                    task_type="CAUSAL_LM",
                ),
            )
    return lm
