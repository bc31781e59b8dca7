"""reward=verifiable: 1 when the response's final answer matches the gold answer, else 0.

The answer is read by srlm.core.parsing.extract_final_answer (the last "Final answer: ...", or
the last ``\\boxed{}``) and compared by ``answers_match`` (numbers by value, options, normalised
text). When the rule says no, math-verify (a dependency; ``reward.math_verify``: auto = when it
is installed, on = required, off = the rule alone) gets the last word: symbolic equivalence of
LaTeX and plain expressions ("\\frac{1}{2}" vs "0.5", "\\frac{\\sqrt{2}}{2}" vs "\\sqrt{2}/2"),
units dropped ("5 cm" vs "5"). A response without a readable answer scores 0 and counts as a
parse failure.

math-verify bounds each parse and comparison with SIGALRM, which only works in a process's main
thread: srlm's phase processes score there, with its time-outs. Elsewhere (a caller's worker
thread) there is no way to interrupt a comparison that never ends (``2^{2^{100}}``), so the rule
alone decides and the stage statistics say ``math_verify: false``.
"""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Callable

from srlm.config import VerifiableRewardConfig
from srlm.core.parsing import answers_match, extract_final_answer
from srlm.rewards.base import Item, RewardSource, Scored, Scores, judgement_health, register_reward

# Seconds math-verify may spend on one parse or one comparison before the answer counts as
# no match (its own default is 5).
MATH_VERIFY_TIMEOUT_S = 5


def in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def math_verify_match(pred: str, gold: str) -> bool:
    """math-verify's symbolic equivalence of the answer to the gold answer; False when it cannot
    parse either side or runs out of time. Main thread only (see the module docstring)."""
    from math_verify import parse, verify

    def parsed(text: str) -> list:
        # As LaTeX in math mode, which reads a bare "\frac{\sqrt{2}}{2}"; its plain-text reader
        # would take the first number of "2^{3}" for the answer. Text answers ("12 dollars")
        # are the rule's.
        return parse(f"${text}$", parsing_timeout=MATH_VERIFY_TIMEOUT_S)

    try:
        gold_parsed, pred_parsed = parsed(gold), parsed(pred)
        if not gold_parsed or not pred_parsed:
            return False
        return bool(verify(gold_parsed, pred_parsed, timeout_seconds=MATH_VERIFY_TIMEOUT_S))
    except Exception:  # a parser failure is a "no", never a crash of the run
        return False


def check_answer(response: str, gold: str, use_math_verify: bool = False) -> tuple[str | None, int]:
    """``(predicted answer or None, 1 if it matches gold else 0)``. math-verify is asked only in
    the main thread (its time-outs are signals); elsewhere the rule alone decides."""
    pred = extract_final_answer(response)
    if pred is None:
        return None, 0
    ok = answers_match(pred, gold) or (
        use_math_verify and in_main_thread() and math_verify_match(pred, gold)
    )
    return pred, int(ok)


def answer_score(response: str | None, gold: str, use_math_verify: bool = False) -> dict:
    """An answer to a held-out question scored by this rule: ``{"pred", "score", "correct"}``,
    score 1.0 or 0.0; no response or no final answer is wrong."""
    pred, ok = check_answer(response or "", gold, use_math_verify)
    return {"pred": pred, "score": float(ok), "correct": bool(ok)}


def math_verify_enabled(mode: str) -> bool:
    """Whether reward.math_verify asks math-verify: on, or auto with the package installed."""
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
        # Whether math-verify was asked: enabled, and scoring in the main thread.
        health["math_verify"] = self.use_math_verify and in_main_thread()
        return Scores(scored, health)
