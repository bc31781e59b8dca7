"""transformers' generate: the fallback engine, no extra install."""

from __future__ import annotations

from dataclasses import replace

import torch
from tqdm import tqdm

from srlm.config import ModelConfig, RolloutConfig, SamplingConfig
from srlm.rollout.base import Completion, RolloutEngine
from srlm.training.model import load_causal_lm, load_tokenizer


class HfEngine(RolloutEngine):
    def __init__(self, model_dir: str, model: ModelConfig, rollout: RolloutConfig):
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self.tokenizer = load_tokenizer(model_dir)
        served = replace(model, dtype=rollout.dtype or model.dtype)
        self.model = load_causal_lm(model_dir, served).to(self.device).eval()
        self.batch_size = rollout.batch_size
        self.max_length = model.max_length
        self.generator = torch.Generator(device="cpu").manual_seed(rollout.seed)
        torch.manual_seed(rollout.seed)

    @torch.inference_mode()
    def generate(self, prompts, sampling: SamplingConfig, n=1, desc="generate"):
        if not prompts:
            return []
        tok = self.tokenizer
        encoded = [self.encode(p)[-(self.max_length - sampling.max_tokens) :] for p in prompts]
        # Sorting by length keeps padding (wasted compute) small within a batch.
        order = sorted(range(len(prompts)), key=lambda i: len(encoded[i]))
        results: list[list[Completion]] = [[] for _ in prompts]
        per_batch = max(1, self.batch_size // n)
        for start in tqdm(range(0, len(order), per_batch), desc=desc, dynamic_ncols=True):
            idx = order[start : start + per_batch]
            batch = [encoded[i] for i in idx]
            width = max(map(len, batch))
            # Left padding so that every prompt ends where generation starts.
            ids = torch.tensor([[tok.pad_token_id] * (width - len(b)) + b for b in batch])
            mask = torch.tensor([[0] * (width - len(b)) + [1] * len(b) for b in batch])
            sample = sampling.temperature > 0
            out = self.model.generate(
                input_ids=ids.to(self.device),
                attention_mask=mask.to(self.device),
                do_sample=sample,
                temperature=sampling.temperature if sample else None,
                top_p=sampling.top_p if sample else None,
                top_k=None,
                max_new_tokens=sampling.max_tokens,
                num_return_sequences=n,
                pad_token_id=tok.pad_token_id,
                eos_token_id=tok.eos_token_id,
            )
            new = out[:, width:].cpu()
            for j, row in enumerate(new):
                tokens = row.tolist()
                stopped = tok.eos_token_id in tokens
                if stopped:
                    tokens = tokens[: tokens.index(tok.eos_token_id)]
                while tokens and tokens[-1] == tok.pad_token_id:
                    tokens.pop()
                text = tok.decode(tokens, skip_special_tokens=True)
                results[idx[j // n]].append(
                    Completion(text, len(tokens), "stop" if stopped else "length")
                )
        return results

    @torch.inference_mode()
    def token_logprobs(self, text: str) -> list[float]:
        ids = torch.tensor([self.encode(text)], device=self.device)
        logits = self.model(input_ids=ids).logits.float()
        logp = torch.log_softmax(logits[0, :-1], dim=-1)
        return logp.gather(-1, ids[0, 1:, None]).squeeze(-1).tolist()

    @torch.inference_mode()
    def next_token_logprobs(self, prompts, token_ids):
        out: list[list[float]] = []
        tok = self.tokenizer
        for start in range(0, len(prompts), self.batch_size):
            batch = [
                self.encode(p)[-self.max_length :] for p in prompts[start : start + self.batch_size]
            ]
            width = max(map(len, batch))
            # Left padding: the last position of every row is the prompt's own last token.
            ids = torch.tensor([[tok.pad_token_id] * (width - len(b)) + b for b in batch])
            mask = torch.tensor([[0] * (width - len(b)) + [1] * len(b) for b in batch])
            # Positions count real tokens only, as generate() does, so padding does not shift them.
            positions = (mask.cumsum(-1) - 1).clamp(min=0)
            logits = self.model(
                input_ids=ids.to(self.device),
                attention_mask=mask.to(self.device),
                position_ids=positions.to(self.device),
            ).logits
            logp = torch.log_softmax(logits[:, -1].float(), dim=-1)
            out += logp[:, token_ids].cpu().tolist()
        return out

    def close(self) -> None:
        del self.model
