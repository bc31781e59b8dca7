"""reward=verifiable: 1 when the response's final answer matches the gold answer, else 0.

The answer is read by srlm.core.parsing.extract_final_answer (the last "Final answer: ...", or
the last ``\\boxed{}``) and compared by ``answers_match`` (numbers by value, options, normalised
text). When the rule says no and the math-verify package is installed (``reward.math_verify``:
auto/on), its symbolic check gets the last word ("1/2" vs "0.5", "\\frac{\\sqrt{2}}{2}" vs
"\\sqrt{2}/2"). A response without a readable answer scores 0 and counts as a parse failure.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable

from srlm.config import VerifiableRewardConfig
from srlm.core.parsing import answers_match, extract_final_answer
from srlm.rewards.base import Item, RewardSource, Scored, Scores, judgement_health, register_reward


def math_verify_match(pred: str, gold: str) -> bool:
    """math-verify's symbolic equivalence; False when it cannot parse either side."""
    try:
        from math_verify import parse, verify

        return bool(verify(parse(gold), parse(pred)))
    except Exception:  # a parser failure is a "no", never a crash of the run
        return False


def check_answer(response: str, gold: str, use_math_verify: bool = False) -> tuple[str | None, int]:
    """``(predicted answer or None, 1 if it matches gold else 0)``."""
    pred = extract_final_answer(response)
    if pred is None:
        return None, 0
    ok = answers_match(pred, gold) or (use_math_verify and math_verify_match(pred, gold))
    return pred, int(ok)


def math_verify_enabled(mode: str) -> bool:
    return mode == "on" or (mode == "auto" and importlib.util.find_spec("math_verify") is not None)


@register_reward("verifiable", schema=VerifiableRewardConfig)
class VerifiableReward(RewardSource):
    kind = "verifiable"

    def __init__(self, config, run_config=None):
        super().__init__(config, run_config)
        self.use_math_verify = math_verify_enabled(config.math_verify)

    def check(self, response: str, gold: str) -> tuple[str | None, int]:
        return check_answer(response, gold, self.use_math_verify)

    def score(self, groups: list[list[Item]], engine: Callable) -> Scores:
        scored, preds = [], []
        for g in groups:
            row = []
            for it in g:
                if it.gold is None:
                    raise ValueError("reward=verifiable needs a gold answer for every item")
                pred, ok = self.check(it.response, it.gold)
                preds.append(pred)
                row.append(Scored(float(ok), {"pred": pred, "reward": ok}))
            scored.append(row)
        # A missing answer is the parse failure; its score is still a real 0 (wrong).
        health = judgement_health([None if p is None else 1 for p in preds], scored)
        health["accuracy"] = health.pop("mean_score")
        health["math_verify"] = self.use_math_verify
        return Scores(scored, health)
