"""Pairwise judges: every pair of a prompt's responses judged in both orders, scores by Elo.

reward=pairwise_judge: a judge (the policy, or a separate model with ``reward.model``) sees the
instruction and two responses, A and B, and ends with ``[[A]]``, ``[[B]]`` or ``[[C]]`` (tie).
reward=thinking_judge: a trained thinking judge (srlm/methods/thinking_judge.py: plan, then its
execution, then ``[Final Verdict]``) does the same with its own single-pass prompt.

Each unordered pair {m, n} of a group's K responses is judged with m first and with n first
(``reward.samples`` times each), so that a judge that prefers a position cannot decide alone.
The battles go into a Bradley-Terry fit (srlm.core.elo, as TPO's App. B and Meta-Rewarding do);
a response's score is its rating, centred to 0 within its group. A response none of whose
comparisons could be read gets no score (None), never a rating of 0 by default; a response
alone in its group (nothing to compare with) gets 0.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import NamedTuple

from srlm.config import PairwiseJudgeRewardConfig, ThinkingJudgeRewardConfig
from srlm.core.elo import battle_matrix, fit_elo
from srlm.core.parsing import cut_off, final_verdict_start, last_unquoted, parse_verdict
from srlm.judging import (
    FINAL_VERDICT,
    PAIRWISE_SYSTEM,
    judge_messages,
    pair_text,
    parse_judge_output,
)
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
from srlm.rollout.base import chat_prompt, format_prompt


# ---------------------------------------------------------------- pure parts (unit-tested)
def ordered_pairs(k: int) -> list[tuple[int, int]]:
    """(first, second) for every pair of k samples in both orders: (0,1), (1,0), (0,2), (2,0) ..."""
    return [p for i in range(k) for j in range(i + 1, k) for p in ((i, j), (j, i))]


def outcome(verdict: str | None) -> str | None:
    """A verdict as a battle result: A -> "first", B -> "second", tie -> "tie", None -> None."""
    return {"A": "first", "B": "second", "tie": "tie", None: None}[verdict]


def elo_scores(
    outcomes: Sequence[tuple[int, int, str | None]], k: int, tie_weight: float = 0.5
) -> list[float | None]:
    """Each sample's Elo rating from its battles; None for a sample with no readable battle.

    A group of one has nothing to compare with: its sample gets 0.
    """
    if k == 1:
        return [0.0]
    ratings = fit_elo(battle_matrix(outcomes, k, tie_weight=tie_weight))
    judged = {x for i, j, w in outcomes if w is not None for x in (i, j)}
    return [float(r) if m in judged else None for m, r in enumerate(ratings)]


def order_flip_rate(results: Sequence[tuple[int, int, int, str | None]]) -> float | None:
    """Share of compared pairs whose verdict changes when the order is swapped.

    ``results`` holds ``(first, second, sample, outcome)``; the judgement ``sample`` of (m, n)
    is matched with the judgement ``sample`` of (n, m). A flip: the preferred response (or
    tie) differs between the two orders. Pairs with an unreadable verdict in either order are
    left out; None when none is left.
    """

    def preferred(first: int, second: int, w: str) -> int | str:
        return {"first": first, "second": second, "tie": "tie"}[w]

    seen: dict[tuple, int | str] = {}
    flips = total = 0
    for first, second, s, w in results:
        if w is None:
            continue
        key, mirror = (first, second, s), (second, first, s)
        if mirror in seen:
            total += 1
            flips += seen.pop(mirror) != preferred(first, second, w)
        else:
            seen[key] = preferred(first, second, w)
    return flips / total if total else None


# ---------------------------------------------------------------- the sources
class Judgement(NamedTuple):
    """One pairwise judgement: the judge's text, its verdict, with verdict_mode=probability
    the probability that it prefers the answer shown first, P(A) / (P(A) + P(B)), and how its
    generation ended ("stop" | "length")."""

    text: str
    verdict: str | None
    p_first: float | None = None
    finish_reason: str | None = None


def verdict_token_ids(tokenizer, opening: str) -> list[int]:
    """The one token of each of A, B, C right after ``opening`` ("[["), for reading a verdict
    from probabilities; ValueError when the tokenizer merges them with the opening."""
    base = tokenizer.encode(opening, add_special_tokens=False)
    ids = []
    for letter in "ABC":
        full = tokenizer.encode(opening + letter, add_special_tokens=False)
        if len(full) != len(base) + 1 or full[: len(base)] != base:
            raise ValueError(
                f"the judge's tokenizer has no single token for {letter!r} after {opening!r}"
            )
        ids.append(full[-1])
    return ids


@register_reward("pairwise_judge", schema=PairwiseJudgeRewardConfig)
class PairwiseJudgeReward(RewardSource):
    """reward=pairwise_judge: see the module docstring."""

    kind = "pairwise"
    can_judge_with_policy = True

    def __init__(self, config, run_config=None):
        super().__init__(config, run_config)
        rollout = judge_rollout(config, run_config.rollout if run_config else None)
        self.own = None if config.model.is_policy else OwnEngine(config.model, rollout)

    @classmethod
    def judged_by_policy(cls, config) -> bool:
        return config.model.is_policy

    # The prompt and the parser are what a subclass (the thinking judge) changes.
    def prompt(self, tokenizer, instruction: str, answer_a: str, answer_b: str) -> str:
        return chat_prompt(tokenizer, pair_text(instruction, answer_a, answer_b), PAIRWISE_SYSTEM)

    def parse(self, text: str, finish_reason: str | None = None) -> str | None:
        return parse_verdict(text, self.config.verdict_rule, finish_reason)

    # Where a judgement's verdict begins, for verdict_mode=probability: the text up to it
    # (without a verdict the judge may have written) and the label that opens the verdict.
    VERDICT_OPEN = "[["

    def verdict_context(self, text: str, finish_reason: str | None = None) -> str:
        """The judge's reasoning, up to its own final verdict token (a quoted token is not
        one), continued with "[[". A judgement cut at max_tokens is kept whole: no token in
        it is known to be its final verdict."""
        cut = -1 if cut_off(finish_reason) else final_verdict_start(text)
        kept = (text[:cut] if cut >= 0 else text).rstrip()
        return (kept + "\n" if kept else "") + self.VERDICT_OPEN

    def compare(
        self, triples: list[tuple[str, str, str]], engine: Callable, desc: str = "pairwise judge"
    ) -> list[list[Judgement]]:
        """The ``reward.samples`` judgements of each (instruction, answer A, answer B) triple,
        in the order given: callers show each pair in both orders themselves. Verdicts are
        "A", "B", "tie" or None (unreadable or cut at max_tokens; never with
        verdict_mode=probability, which reads a cut judgement after its whole text)."""
        if not triples:
            return []
        eng = self.own(engine) if self.own is not None else engine()
        prompts = [self.prompt(eng.tokenizer, q, a, b) for q, a, b in triples]
        outs = eng.generate(prompts, self.config.sampling, n=self.config.samples, desc=desc)
        texts = [[(c.text, c.finish_reason) for c in cs] for cs in outs]
        if self.config.verdict_mode == "probability":
            judged = self._read_probabilities(eng, prompts, texts)
        else:
            judged = [
                [Judgement(x, self.parse(x, reason), None, reason) for x, reason in row]
                for row in texts
            ]
        if self.own is not None:
            self.own.close()
        return judged

    def _read_probabilities(
        self, eng, prompts: list[str], texts: list[list[tuple[str, str | None]]]
    ) -> list[list[Judgement]]:
        """The verdict as the likelier of A and B after the judge's own reasoning, continued
        with "[[" (as AlpacaEval reads a preference from the two options' log-probabilities):
        a small judge that reasons but never closes with a verdict still gives one, and the
        written verdicts stay in the texts. Tie ("C") is left out: a small judge's mass on it
        says little, and a preference that only the order decides already shows as a tie once
        both orders are combined; exactly equal probabilities give "tie".

        A judgement cut at max_tokens is read too, after its whole text: this mode exists for
        judges that do not close with a verdict, and each pair is judged in both orders, so
        quoted text that pulls the reading towards a position helps a response in one order
        and costs it in the other."""
        ids = verdict_token_ids(eng.tokenizer, self.VERDICT_OPEN)[:2]
        contexts = [
            prompt + self.verdict_context(x, reason)
            for prompt, outs in zip(prompts, texts, strict=True)
            for x, reason in outs
        ]
        logprobs = iter(eng.next_token_logprobs(contexts, ids))
        out = []
        for outs in texts:
            row = []
            for text, reason in outs:
                a, b = next(logprobs)
                verdict = "A" if a > b else "B" if b > a else "tie"
                row.append(Judgement(text, verdict, 1.0 / (1.0 + math.exp(b - a)), reason))
            out.append(row)
        return out

    def score(self, groups: list[list[Item]], engine: Callable) -> Scores:
        cfg = self.config
        jobs = [(g, i, j) for g, items in enumerate(groups) for i, j in ordered_pairs(len(items))]
        judged = self.compare(
            [
                (groups[g][i].instruction, groups[g][i].response, groups[g][j].response)
                for g, i, j in jobs
            ],
            engine,
        )
        per_group: list[list[tuple[int, int, int, str | None, str]]] = [[] for _ in groups]
        for (g, i, j), outs in zip(jobs, judged, strict=True):
            for s, jd in enumerate(outs):
                per_group[g].append((i, j, s, jd.verdict, jd.text))
        reasons = [jd.finish_reason for outs in judged for jd in outs]
        scored, verdicts = [], []
        for items, results in zip(groups, per_group, strict=True):
            battles = [(i, j, outcome(v)) for i, j, _, v, _ in results]
            ratings = elo_scores(battles, len(items), cfg.tie_weight) if items else []
            verdicts += [v for *_, v, _ in results]
            scored.append(
                [
                    Scored(
                        r,
                        {
                            # The comparisons in which this response was shown first (each comparison is
                            # stored once, with the response shown as A).
                            "judgements": [t for i, _, _, _, t in results if i == m],
                            "opponents": [j for i, j, *_ in results if i == m],
                            "verdicts": [v for i, _, _, v, _ in results if i == m],
                            "wins": sum(
                                (i == m and v == "A") or (j == m and v == "B")
                                for i, j, _, v, _ in results
                            ),
                            "elo": r,
                        },
                    )
                    for m, r in enumerate(ratings)
                ]
            )
        health = judgement_health(verdicts, scored, reasons)
        health.pop("mean_score")  # ratings are centred within each group: their mean is 0
        decided = [v for v in verdicts if v is not None]
        named = [v for v in decided if v != "tie"]
        health |= {
            "verdict_tie_rate": sum(v == "tie" for v in decided) / len(decided)
            if decided
            else None,
            # Share of A-or-B verdicts that named the response shown first (0.5: no position bias).
            "first_position_rate": sum(v == "A" for v in named) / len(named) if named else None,
            "order_flip_rate": order_flip_rate(
                [(i, j, s, outcome(v)) for results in per_group for i, j, s, v, _ in results]
            ),
        }
        return Scores(scored, health)

    def close(self) -> None:
        if self.own is not None:
            self.own.close()


@register_reward("thinking_judge", schema=ThinkingJudgeRewardConfig)
class ThinkingJudgeReward(PairwiseJudgeReward):
    """reward=thinking_judge: a trained thinking judge as the pairwise judge.

    Its prompt is the single-pass judge prompt that method=thinking_judge trains (plan, plan
    execution, ``[Final Verdict]``); the verdict is read after the last ``[Final Verdict]``.
    Point ``reward.model`` at the trained checkpoint (``model.path``: a run's
    iter_NN/checkpoint); with ``reward.model.source=policy`` the policy is the thinking judge.
    """

    def prompt(self, tokenizer, instruction: str, answer_a: str, answer_b: str) -> str:
        return format_prompt(tokenizer, judge_messages(instruction, answer_a, answer_b))

    def parse(self, text: str, finish_reason: str | None = None) -> str | None:
        return parse_judge_output(text, self.config.verdict_rule, finish_reason)

    def verdict_context(self, text: str, finish_reason: str | None = None) -> str:
        cut = -1 if cut_off(finish_reason) else last_unquoted(text, FINAL_VERDICT)
        kept = (text[:cut] if cut >= 0 else text).rstrip()
        return (kept + "\n" if kept else "") + FINAL_VERDICT + "\n" + self.VERDICT_OPEN
