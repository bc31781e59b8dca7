"""transformers' generate: the fallback engine, no extra install."""

from __future__ import annotations

import copy
import time
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
        self.served = replace(model, dtype=rollout.dtype or model.dtype)
        self.model = load_causal_lm(model_dir, self.served).to(self.device).eval()
        self.batch_size = rollout.batch_size
        self.max_length = model.max_length
        # On a GPU the model leaves it while the trainer trains (a kept engine, sleep()).
        self.sleeps = self.device == "cuda"
        torch.manual_seed(rollout.seed)

    def generate(self, prompts, sampling: SamplingConfig, n=1, desc="generate"):
        encoded = [self.encode(p) for p in prompts]
        return generate_ids(
            self.model, self.tokenizer, encoded, sampling, n, self.batch_size, self.max_length, desc
        )

    def token_logprobs(self, text: str) -> list[float]:
        return token_logprobs(self.model, self.encode(text))

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

    @torch.no_grad()
    def sync_from(self, model) -> dict:
        # Its own copy, not the trainer's module: a semi-online run generates with the weights
        # of the last sync while the trainer steps on.
        started = time.perf_counter()
        self.model.load_state_dict(model.state_dict())
        nbytes = sum(t.numel() * t.element_size() for t in self.model.state_dict().values())
        return {"sync_seconds": time.perf_counter() - started, "sync_bytes": nbytes}

    @torch.no_grad()
    def load(self, model_dir: str) -> None:
        self.wake()
        self.model.load_state_dict(load_causal_lm(model_dir, self.served).state_dict())

    def _sleep(self) -> None:
        self.model.to("cpu")
        torch.cuda.empty_cache()

    def _wake(self) -> None:
        self.model.to(self.device)

    def close(self) -> None:
        del self.model


@torch.inference_mode()
def token_logprobs(model, ids: list[int]) -> list[float]:
    """Log-prob of each token of `ids` after the ones before it (the first is not scored)."""
    ids_t = torch.tensor([ids], device=model.device)
    logits = model(input_ids=ids_t).logits.float()
    logp = torch.log_softmax(logits[0, :-1], dim=-1)
    return logp.gather(-1, ids_t[0, 1:, None]).squeeze(-1).tolist()


@torch.inference_mode()
def generate_ids(
    model,
    tok,
    encoded: list[list[int]],
    sampling: SamplingConfig,
    n: int,
    batch_size: int,
    max_length: int,
    desc: str | None = "generate",
) -> list[list[Completion]]:
    """transformers' generate over token-id prompts, batched; `n` completions per prompt.

    The prompts' common beginning (the instruction and worked examples srlm's prompts share) is
    run once and its KV cache copied into every batch, as vLLM's prefix cache would: on the
    IRPO quickstart's 100 validation prompts (121 of their 134 tokens shared) this halves the
    time with identical greedy outputs. Also the trainer's own generation
    (srlm.training.selection), on the model it is training.
    """
    if not encoded:
        return []
    device = next(model.parameters()).device
    encoded = [ids[-(max_length - sampling.max_tokens) :] for ids in encoded]
    shared = _common_prefix(encoded)
    prefix = encoded[0][:shared]
    cache = None
    if shared >= _MIN_SHARED:
        cache = model(input_ids=torch.tensor([prefix], device=device), use_cache=True)
        cache = cache.past_key_values
    # Sorting by length keeps padding (wasted compute) small within a batch.
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
    results: list[list[Completion]] = [[] for _ in encoded]
    per_batch = max(1, batch_size // n)
    starts = range(0, len(order), per_batch)
    for start in tqdm(starts, desc=desc, dynamic_ncols=True) if desc else starts:
        idx = order[start : start + per_batch]
        # Each prompt's own part, left-padded, after the shared prefix: padding sits between the
        # two, masked out, and positions count real tokens only (generate derives them from
        # the mask), so every prompt is seen exactly as on its own.
        own = [encoded[i][len(prefix) if cache is not None else 0 :] for i in idx]
        head = prefix if cache is not None else []
        width = max(map(len, own))
        rows = [head + [tok.pad_token_id] * (width - len(b)) + b for b in own]
        mask = [[1] * len(head) + [0] * (width - len(b)) + [1] * len(b) for b in own]
        ids = torch.tensor(rows).repeat_interleave(n, 0)
        mask = torch.tensor(mask).repeat_interleave(n, 0)
        kwargs = {}
        if cache is not None:
            kwargs["past_key_values"] = copy.deepcopy(cache)
            kwargs["past_key_values"].batch_repeat_interleave(len(rows) * n)
        sample = sampling.temperature > 0
        out = model.generate(
            input_ids=ids.to(device),
            attention_mask=mask.to(device),
            do_sample=sample,
            temperature=sampling.temperature if sample else None,
            top_p=sampling.top_p if sample else None,
            top_k=None,
            max_new_tokens=sampling.max_tokens,
            pad_token_id=tok.pad_token_id,
            eos_token_id=tok.eos_token_id,
            **kwargs,
        )
        new = out[:, ids.shape[1] :].cpu()
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


# Below this many shared tokens a prefix cache is not worth its copying.
_MIN_SHARED = 16


def _common_prefix(encoded: list[list[int]]) -> int:
    """Length of the token prefix all prompts share, leaving each at least one token of its own
    (generation starts from the last prompt token's logits)."""
    first, limit = encoded[0], min(map(len, encoded)) - 1
    n = 0
    while n < limit and all(e[n] == first[n] for e in encoded):
        n += 1
    return n
