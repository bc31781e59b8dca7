"""reward=verdict_label: 1 when a judge's verdict names the answer known to be better, else 0.

For training a judge on labelled comparisons (method=thinking_judge): the item's response is a
judgement of two answers, its ``gold`` the label ("A" or "B") of the one that is better by
construction. The verdict is read with srlm.core.parsing.parse_verdict under
``reward.verdict_rule`` (``[[A]]`` -> A, ``[[B]]`` -> B, ``[[C]]`` -> tie; ``final``: read on the
judgement's last verdict line, ``strict``: both A and B anywhere -> unreadable; no token ->
unreadable). A judgement cut at max_tokens (``Item.finish_reason`` "length") is unreadable. A tie
or an unreadable verdict scores 0: it never names the better answer. An unreadable verdict also
counts as a parse failure.
"""

from __future__ import annotations

from collections.abc import Callable

from srlm.config import VerdictLabelRewardConfig
from srlm.core.parsing import parse_verdict
from srlm.rewards.base import Item, RewardSource, Scored, Scores, judgement_health, register_reward


@register_reward("verdict_label", schema=VerdictLabelRewardConfig)
class VerdictLabelReward(RewardSource):
    kind = "verdict"

    def score(self, groups: list[list[Item]], engine: Callable) -> Scores:
        scored, verdicts = [], []
        for g in groups:
            row = []
            for it in g:
                if it.gold not in ("A", "B"):
                    raise ValueError(f"reward=verdict_label needs a label A or B (got {it.gold!r})")
                verdict = parse_verdict(it.response, self.config.verdict_rule, it.finish_reason)
                verdicts.append(verdict)
                row.append(Scored(float(verdict == it.gold), {"verdict": verdict}))
            scored.append(row)
        health = judgement_health(
            [None if v is None else 1 for v in verdicts],
            scored,
            [it.finish_reason for g in groups for it in g],
        )
        health["accuracy"] = health.pop("mean_score")
        return Scores(scored, health)
