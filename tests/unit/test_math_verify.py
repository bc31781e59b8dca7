"""reward=verifiable with math-verify (a dependency): LaTeX, fractions, units, \\boxed{}, its
signal time-outs in a spawned phase process, and the rule alone in other threads."""

from __future__ import annotations

import importlib.util
import multiprocessing as mp
import threading
import time

import pytest

from srlm.config import VerifiableRewardConfig
from srlm.errors import ConfigError
from srlm.rewards import verifiable
from srlm.rewards.base import Item
from srlm.rewards.verifiable import VerifiableReward, check_answer, math_verify_enabled

# (response, gold, with math-verify, rule alone), worked by hand: the rule compares numbers by
# value and normalised text; math-verify reads both sides as LaTeX and compares symbolically.
CASES = [
    # LaTeX fractions against decimals: the rule already reads \frac{a}{b} as a/b.
    (r"Final answer: \frac{1}{2}", "0.5", 1, 1),
    (r"Final answer: \dfrac{3}{4}", "0.75", 1, 1),
    # Fractions written two ways, and surds: only symbolic equivalence sees these.
    ("Final answer: 3/4", r"\frac34", 1, 0),
    (r"Final answer: \frac{\sqrt{2}}{2}", r"\sqrt{2}/2", 1, 0),
    (r"Final answer: \frac{1}{\sqrt{2}}", r"\frac{\sqrt{2}}{2}", 1, 0),
    # Different values stay different.
    ("Final answer: 1/3", "0.5", 0, 0),
    (r"Final answer: \sqrt{2}", "1.414", 0, 0),
    # An expression is its value, not its first number.
    ("Final answer: 2^{3}", "8", 1, 0),
    ("Final answer: 2^{3}", "2", 0, 0),
    # Units and currency are dropped.
    ("Final answer: 5 cm", "5", 1, 1),
    (r"Final answer: 6\text{ cm}^2", "6", 1, 0),
    (r"Final answer: \$12", "12", 1, 0),
    # \boxed{} is where the answer is read from when there is no "Final answer:".
    (r"Halving gives $\boxed{\frac{\sqrt{2}}{2}}$.", r"\sqrt{2}/2", 1, 0),
    # The last \boxed{} is the answer; the rule does not read the brace-less \frac13.
    (r"So \boxed{0.5} and then \boxed{\frac{1}{3}}", r"\frac13", 1, 0),
]


@pytest.mark.parametrize(("response", "gold", "with_mv", "rule"), CASES)
def test_answers(response, gold, with_mv, rule):
    assert check_answer(response, gold, use_math_verify=True)[1] == with_mv
    assert check_answer(response, gold, use_math_verify=False)[1] == rule


def test_boxed_answer_is_extracted():
    pred, ok = check_answer(r"Halving gives $\boxed{\frac{\sqrt{2}}{2}}$.", r"\sqrt{2}/2", True)
    assert (pred, ok) == (r"\frac{\sqrt{2}}{2}", 1)
    assert check_answer("no answer here", "2", True) == (None, 0)


def test_math_verify_is_on_by_default():
    assert importlib.util.find_spec("math_verify") is not None  # a dependency
    assert VerifiableRewardConfig().math_verify == "auto"
    assert math_verify_enabled("auto") and math_verify_enabled("on")
    assert not math_verify_enabled("off")
    assert VerifiableReward(VerifiableRewardConfig()).use_math_verify


def test_without_the_package_the_rule_decides_and_on_is_an_error(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "math_verify" else real(name)
    )
    assert not math_verify_enabled("auto")
    src = VerifiableReward(VerifiableRewardConfig())
    out = src.score([[Item("q", "Final answer: 3/4", r"\frac34")]], lambda: None)
    assert out.scored[0][0].score == 0.0 and out.health["math_verify"] is False
    with pytest.raises(ConfigError, match=r"reward.math_verify='on': math-verify.*not installed"):
        VerifiableRewardConfig(math_verify="on").check()


# A comparison sympy never finishes (2^(2^100) against 2) is stopped by the time-out.
HANGING = Item("q", r"thus $\boxed{2^{2^{100}}}$", "2")
GROUPS = [
    [
        Item("q", r"Final answer: \frac{\sqrt{2}}{2}", r"\sqrt{2}/2"),
        Item("q", "Final answer: 1/3", "0.5"),
        HANGING,
    ]
]


def test_time_out_in_the_main_thread(monkeypatch):
    monkeypatch.setattr(verifiable, "MATH_VERIFY_TIMEOUT_S", 1)
    start = time.monotonic()
    assert check_answer(HANGING.response, HANGING.gold, True) == ("2^{2^{100}}", 0)
    assert time.monotonic() - start < 10


def _score_in_phase_child(queue) -> None:
    # As srlm's phase processes start (srlm.runner._run_phase: a spawn child, child_setup);
    # stages score in the child's main thread.
    from srlm.procs import child_setup

    child_setup()
    verifiable.MATH_VERIFY_TIMEOUT_S = 1
    out = VerifiableReward(VerifiableRewardConfig()).score(GROUPS, lambda: None)
    queue.put(([s.score for s in out.scored[0]], out.health["math_verify"]))


def test_scoring_in_a_phase_process_uses_math_verify_and_its_time_out():
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_score_in_phase_child, args=(queue,))
    proc.start()
    try:
        scores, used = queue.get(timeout=120)
    finally:
        proc.join(30)
        if proc.is_alive():
            proc.kill()
    assert proc.exitcode == 0
    assert scores == [1.0, 0.0, 0.0] and used is True


def test_scoring_in_another_thread_falls_back_to_the_rule():
    result = {}

    def work():
        out = VerifiableReward(VerifiableRewardConfig()).score(GROUPS, lambda: None)
        result["scores"] = [s.score for s in out.scored[0]]
        result["math_verify"] = out.health["math_verify"]

    worker = threading.Thread(target=work)
    start = time.monotonic()
    worker.start()
    worker.join(60)
    assert not worker.is_alive()
    # No signal is set from the thread (that raises); the rule alone answers, at once.
    assert result == {"scores": [0.0, 0.0, 0.0], "math_verify": False}
    assert time.monotonic() - start < 10
