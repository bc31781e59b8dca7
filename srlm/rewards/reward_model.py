"""reward=reward_model: a scalar reward model, a Hugging Face sequence-classification model.

Each (instruction, response) is written as a two-turn chat in the reward model's own chat
template (plain "instruction\\n\\nresponse" when it has none) and scored in one forward pass.
Multi-objective models (ArmoRM: 19 heads plus a gated preference score) are reduced to one
number by ``reward.head_reduce`` (:func:`reduce_heads`). A reward model always gives a number:
its parse-failure rate is 0 by construction; it reports how many inputs were cut to fit
``reward.model.max_length`` instead.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from srlm.config import RewardModelRewardConfig
from srlm.rewards.base import (
    Item,
    RewardSource,
    Scored,
    Scores,
    judgement_health,
    register_reward,
    release_policy,
)


def reduce_heads(
    heads: Sequence[float], mode: str, index: int = 0, weights: Sequence[float] = ()
) -> float:
    """One score from a model's head outputs.

    ``mean``: their mean; ``index``: head ``index``; ``weights``: the weighted sum (one weight per
    head); ``auto``: the single head of a one-head model, else the mean.
    """
    if mode == "index":
        if index >= len(heads):
            raise ValueError(f"reward.head_index={index}: the model has {len(heads)} heads")
        return float(heads[index])
    if mode == "weights":
        if len(weights) != len(heads):
            raise ValueError(
                f"reward.head_weights has {len(weights)} weights for {len(heads)} heads"
            )
        return float(sum(w * h for w, h in zip(weights, heads, strict=True)))
    return float(sum(heads) / len(heads))


def rm_text(tokenizer, instruction: str, response: str) -> str:
    """The text a reward model scores: the conversation in its chat template, if it has one."""
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(
            [{"role": "user", "content": instruction}, {"role": "assistant", "content": response}],
            tokenize=False,
        )
    return f"{instruction.strip()}\n\n{response.strip()}"


@register_reward("reward_model", schema=RewardModelRewardConfig)
class RewardModelReward(RewardSource):
    kind = "pointwise"

    def __init__(self, config, run_config=None):
        super().__init__(config, run_config)
        self.model = self.tokenizer = None

    def _load(self) -> None:
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        from srlm.models import resolve_model_dir
        from srlm.training.model import DTYPES

        m = self.config.model
        path = resolve_model_dir(m.source, m.path)
        self.tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=m.trust_remote_code)
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self.model = (
            AutoModelForSequenceClassification.from_pretrained(
                path, dtype=DTYPES[m.dtype], trust_remote_code=m.trust_remote_code
            )
            .to(self.device)
            .eval()
        )
        if self.model.config.pad_token_id is None:
            # Sequence classifiers find each row's last token through the pad id.
            self.model.config.pad_token_id = self.tokenizer.pad_token_id

    def score_texts(self, items: list[Item]) -> tuple[list[float], int]:
        """Scores of the items, and how many inputs were truncated to the model's max length."""
        import torch

        if self.model is None:
            self._load()
        cfg, tok = self.config, self.tokenizer
        scores, truncated = [], 0
        texts = [rm_text(tok, it.instruction, it.response) for it in items]
        for start in range(0, len(texts), cfg.batch_size):
            chunk = texts[start : start + cfg.batch_size]
            full = tok(chunk, add_special_tokens=False)["input_ids"]
            truncated += sum(len(ids) > cfg.model.max_length for ids in full)
            # Right padding, truncated from the left: the end of the response is what is judged.
            tok.padding_side, tok.truncation_side = "right", "left"
            batch = tok(
                chunk,
                add_special_tokens=False,
                padding=True,
                truncation=True,
                max_length=cfg.model.max_length,
                return_tensors="pt",
            ).to(self.device)
            with torch.inference_mode():
                out = self.model(**batch)
            own = getattr(out, "score", None)  # ArmoRM's gated preference score
            if cfg.head_reduce == "auto" and own is not None:
                scores += [float(x) for x in own.float().reshape(len(chunk), -1)[:, 0].tolist()]
                continue
            for heads in out.logits.float().tolist():
                scores.append(
                    reduce_heads(heads, cfg.head_reduce, cfg.head_index, cfg.head_weights)
                )
        return scores, truncated

    def score(self, groups: list[list[Item]], engine: Callable) -> Scores:
        release_policy(engine)  # the classifier and the policy's engine never share the device
        flat = [it for g in groups for it in g]
        values, truncated = self.score_texts(flat) if flat else ([], 0)
        it = iter(values)
        scored = [[Scored(v, {"rm_score": v}) for v in (next(it) for _ in g)] for g in groups]
        health = judgement_health(values, scored)
        health["truncated_inputs"] = truncated
        return Scores(scored, health)

    def close(self) -> None:
        self.model = None
