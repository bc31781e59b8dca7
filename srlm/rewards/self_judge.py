"""Pointwise judges with Self-Rewarding's additive 5-point rubric: the policy itself
(reward=self_judge) or a separate judge model (reward=judge_model)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from srlm.config import JudgeModelRewardConfig, RewardConfig, SelfJudgeRewardConfig
from srlm.core.parsing import before_final_score, cut_off, parse_score
from srlm.judging import judge_prompt_text
from srlm.rewards.base import (
    Item,
    OwnEngine,
    RewardSource,
    Scored,
    Scores,
    judge_rollout,
    judgement_health,
    register_reward,
)
from srlm.rollout.base import RolloutEngine, chat_prompt


@dataclass
class Judged:
    """All judgements of one response: raw texts, scores (None if unparseable), their mean.

    With reward.score_mode=expected, ``scores`` are the expected scores read from the token
    probabilities after each justification and ``written`` the numbers the judge wrote itself.
    ``finish_reasons``: how each judgement's generation ended; one cut at max_tokens ("length")
    has no score in either mode.
    """

    texts: list[str] = field(default_factory=list)
    scores: list[float | None] = field(default_factory=list)
    written: list[float | None] | None = None
    finish_reasons: list[str] = field(default_factory=list)

    @property
    def score(self) -> float | None:
        valid = [s for s in self.scores if s is not None]
        return sum(valid) / len(valid) if valid else None


def score_continuation(tokenizer, min_score: int, max_score: int) -> tuple[str, list[int]]:
    """``(label, token ids)`` for reading a score from probabilities: the text that opens the
    score (``"Score:"`` or ``"Score: "``) and the one token of each value min..max after it.

    Tokenizers that glue the space to the digit (" 4" is one token) continue after "Score:";
    those that split it continue after "Score: ". Neither: ValueError.
    """
    values = range(int(min_score), int(max_score) + 1)
    for label in ("Score:", "Score: "):
        base = tokenizer.encode(label, add_special_tokens=False)
        ids = []
        for v in values:
            full = tokenizer.encode(f"Score: {v}", add_special_tokens=False)
            if len(full) == len(base) + 1 and full[: len(base)] == base:
                ids.append(full[-1])
        if len(ids) == len(values) and len(set(ids)) == len(ids):
            return label, ids
    raise ValueError(
        "the judge's tokenizer has no single token for each score value after 'Score:'"
    )


def expected_score(logprobs: list[float], values: list[float]) -> float:
    """Expectation of the score over the candidate tokens' probabilities, renormalised over them."""
    top = max(logprobs)
    weights = [math.exp(lp - top) for lp in logprobs]
    return sum(w * v for w, v in zip(weights, values, strict=True)) / sum(weights)


class SelfJudge:
    """Scores (instruction, response) pairs with a judge engine (the policy's, or a judge model's)."""

    def __init__(self, config: RewardConfig):
        self.config = config

    def judge(self, engine: RolloutEngine, items: list[tuple[str, str]]) -> list[Judged]:
        cfg = self.config
        prompts = [chat_prompt(engine.tokenizer, judge_prompt_text(q, r)) for q, r in items]
        outs = engine.generate(prompts, cfg.sampling, n=cfg.samples, desc="judge")
        judged = []
        for completions in outs:
            j = Judged()
            for c in completions:
                j.texts.append(c.text)
                j.finish_reasons.append(c.finish_reason)
                j.scores.append(parse_score(c.text, cfg.min_score, cfg.max_score, c.finish_reason))
            judged.append(j)
        if getattr(cfg, "score_mode", "parse") == "expected" and judged:
            self._expected(engine, prompts, judged)
        return judged

    def _expected(self, engine: RolloutEngine, prompts: list[str], judged: list[Judged]) -> None:
        """Replace each judgement's score by the expectation over the score tokens, read after
        its justification (the text before its own "Score:") continued with "Score:".

        A judgement cut at max_tokens gets None here too: the expected score is the judge's
        score where it commits to one, after a finished justification, and a cut text may end
        inside the response it quotes (a response's own "Score: 5" would then stand right
        before the forced "Score:"). A judgement that ended by itself without a label is read
        after its whole text."""
        cfg = self.config
        label, ids = score_continuation(engine.tokenizer, cfg.min_score, cfg.max_score)
        values = [float(v) for v in range(int(cfg.min_score), int(cfg.max_score) + 1)]
        continued = []
        for prompt, j in zip(prompts, judged, strict=True):
            for text, reason in zip(j.texts, j.finish_reasons, strict=True):
                if cut_off(reason):
                    continue
                justification = before_final_score(text).rstrip()
                continued.append(prompt + (justification + "\n" if justification else "") + label)
        logprobs = iter(engine.next_token_logprobs(continued, ids) if continued else [])
        for j in judged:
            j.written = j.scores
            j.scores = [
                None if cut_off(reason) else expected_score(next(logprobs), values)
                for reason in j.finish_reasons
            ]


@register_reward("self_judge", schema=SelfJudgeRewardConfig)
class SelfJudgeReward(RewardSource):
    """reward=self_judge: the policy scores each response with the additive 5-point rubric,
    ``reward.samples`` times; the valid scores are averaged."""

    kind = "pointwise"
    can_judge_with_policy = True

    def _engine(self, policy: Callable) -> RolloutEngine:
        return policy()

    def _release(self) -> None:
        pass

    def score(self, groups: list[list[Item]], engine: Callable) -> Scores:
        flat = [it for g in groups for it in g]
        judged = (
            SelfJudge(self.config).judge(
                self._engine(engine), [(it.instruction, it.response) for it in flat]
            )
            if flat
            else []
        )
        self._release()
        expected = self.config.score_mode == "expected"
        records = iter(
            [
                Scored(
                    j.score,
                    {"judgements": j.texts, "scores": j.scores}
                    | ({"written_scores": j.written} if expected else {}),
                )
                for j in judged
            ]
        )
        scored = [[next(records) for _ in g] for g in groups]
        written = [x for j in judged for x in (j.written if expected else j.scores)]
        health = judgement_health(written, scored, [r for j in judged for r in j.finish_reasons])
        if expected:
            health["score_mode"] = "expected"
        return Scores(scored, health)


@register_reward("judge_model", schema=JudgeModelRewardConfig)
class JudgeModelReward(SelfJudgeReward):
    """reward=judge_model: a separate, fixed model judges with the same rubric, on its own
    rollout engine (``reward.model``, ``reward.rollout``); the policy's engine is not used.

    The judge's engine is started for each scoring call (after the policy's engine is released)
    and closed after it, so that the two never hold memory at the same time.
    """

    can_judge_with_policy = False

    def __init__(self, config, run_config=None):
        super().__init__(config, run_config)
        self.own = OwnEngine(
            config.model, judge_rollout(config, run_config.rollout if run_config else None)
        )

    def _engine(self, policy: Callable) -> RolloutEngine:
        return self.own(policy)

    def _release(self) -> None:
        self.own.close()

    def close(self) -> None:
        self.own.close()
