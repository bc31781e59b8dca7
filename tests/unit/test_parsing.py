"""Parsers: each case is an output a model could write, with the value it must give."""

import pytest

from srlm.core.parsing import (
    answers_match,
    extract_final_answer,
    normalize_answer,
    parse_meta_winner,
    parse_score,
    parse_verdict,
    split_thought,
)

# ---------------------------------------------------------------- parse_score


def test_score_takes_judges_own_final_score_not_quoted_one():
    judgement = (
        "The response reads:\n"
        "<response>I rate my own answer. Score: 5</response>\n"
        "It is relevant but misses most of the question.\n"
        "Score: 2"
    )
    assert parse_score(judgement) == 2.0


@pytest.mark.parametrize(
    "text,expected",
    [
        ("Good answer.\nScore: 4", 4.0),
        ("Score: 4.75", 4.75),
        ("Score: 4.5.", 4.5),
        ("Score: 4/5", 4.0),
        ("Score: 3 out of 5", 3.0),
        ("**Score:** 3", 3.0),
        ("**Score**: 3", 3.0),
        ("Score: **3**", 3.0),
        ("Total score: 3", 3.0),
        ("SCORE:5", 5.0),
        ("Points: 1", 1.0),
        ("Score: 0", 0.0),
    ],
)
def test_score_formats(text, expected):
    assert parse_score(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "A fine answer, I would give it four points.",  # no label -> never guess
        "Score: 7",  # out of range
        "Score: -1",
        "Score: 8/10",  # another scale
        "Score: 5\nMy final verdict.\nScore: N/A",  # the last label decides
        "",
    ],
)
def test_score_none(text):
    assert parse_score(text) is None


def test_score_custom_range():
    assert parse_score("Score: 7", max_score=10) == 7.0
    assert parse_score("Score: 0", min_score=1) is None


# -------------------------------------------------------------- parse_verdict


@pytest.mark.parametrize(
    "text,expected",
    [
        ("Assistant A is more accurate. [[A]]", "A"),
        ("[Final Verdict] [[B]]", "B"),
        ("Equally good: [[C]]", "tie"),
        ("I considered [[A]] but the answer is [[B]]", None),  # invalid, as in STE
        ("Assistant A is better.", None),
        ("[[a]]", None),  # exact tokens only
        ("[[A]] (not a tie, [[C]])", "A"),  # STE's precedence: A, then B, then C
    ],
)
def test_verdict(text, expected):
    assert parse_verdict(text) == expected


# ---------------------------------------------------------- parse_meta_winner


@pytest.mark.parametrize(
    "text,expected",
    [
        ("Judgement A follows the rubric.\nWinner: Judgement A", "A"),
        ("Winner: Judgment B", "B"),
        ("**Winner:** Judgement B", "B"),
        ("winner:   judgement   a", "A"),
        ("Winner: [Judgement B]", "B"),
        ("Winner:\nJudgement A", "A"),  # verdict on the next line
        ("Winner: Judgement A\n...on reflection...\nWinner: Judgement B", "B"),  # last wins
        ("Winner: [Judgement A | Judgement B]", None),  # template copied: ambiguous
        ("Winner: neither", None),
        ("Judgement A is better.", None),
    ],
)
def test_meta_winner(text, expected):
    assert parse_meta_winner(text) == expected


# --------------------------------------------------------------- split_thought


def test_split_generic_separator():
    out = "Here is my thought process: think.\nHere is my response: Paris."
    assert split_thought(out, "Here is my response:") == (
        "Here is my thought process: think.",
        "Paris.",
    )


def test_split_first_occurrence():
    # The response itself quotes the separator; the split must happen at the first one.
    out = "draft <R> The tag <R> marks responses."
    assert split_thought(out, "<R>") == ("draft", "The tag <R> marks responses.")


def test_split_strips_closing_tag():
    out = "<internal thought> plan </internal thought>\n<response>\nHello!\n</response>\n"
    assert split_thought(out, "<response>") == (
        "<internal thought> plan </internal thought>",
        "Hello!",
    )
    assert split_thought("t <R> answer </R>", "<R>") == ("t", "answer")


def test_split_failures():
    assert split_thought("no separator at all", "<R>") is None
    assert split_thought("thought <response> </response>", "<response>") is None
    assert split_thought("thought Here is my response:   ", "Here is my response:") is None


def test_split_empty_thought_is_allowed():
    assert split_thought("<R>answer", "<R>") == ("", "answer")


# -------------------------------------------------------- extract_final_answer


@pytest.mark.parametrize(
    "text,expected",
    [
        ("3 + 4 = 7.\nFinal answer: 7", "7"),
        ("Final answer: 5\nWait, I was wrong.\nFINAL ANSWER: 6\nDone.", "6"),  # last marker
        ("Final answer:\n 42 apples", "42 apples"),  # answer on the next line
        ("**Final answer:** (B)", "(B)"),
        ("Final answer: $\\boxed{\\frac{1}{2}}$.", "\\frac{1}{2}"),  # nested braces
        ("so \\boxed{3} or better \\boxed{\\sqrt{2}}", "\\sqrt{2}"),  # last box
        ("I am not sure.", None),
        ("Final answer:", None),
        ("\\boxed{}", None),
        ("\\boxed{unclosed", None),
    ],
)
def test_extract_final_answer(text, expected):
    assert extract_final_answer(text) == expected


# ------------------------------------------------------------ normalize_answer


@pytest.mark.parametrize(
    "ans,expected",
    [
        ("12.0", "12"),
        ("1,234", "1234"),
        ("$1,234.50", "1234.5"),
        ("-5", "-5"),
        ("\u22125", "-5"),  # Unicode minus
        ("18 dollars.", "18"),
        ("x = 7", "7"),
        ("The answer is 42.", "42"),
        ("12%", "12"),
        ("6/8", "3/4"),
        ("8/4", "2"),
        ("\\frac{3}{4}", "3/4"),
        ("\\dfrac{3}{4}", "3/4"),
        ("\\boxed{\\text{5}}", "5"),
        (".5", "0.5"),
        ("(B)", "B"),
        ("b)", "B"),
        ("B", "B"),
        ("(c) the sun", "C"),
        # A number inside an expression is not the answer on its own:
        ("\\sqrt{2}", "\\sqrt{2}"),
        ("x^2", "x^2"),
        ("2x", "2x"),
        ("\\frac{\\pi}{2}", "\\frac{\\pi}{2}"),
        ("1, 2", "1,2"),
        ("Paris.", "paris"),
        ("$ \\left( 1, 2 \\right) $", "(1,2)"),
    ],
)
def test_normalize_answer(ans, expected):
    assert normalize_answer(ans) == expected


# --------------------------------------------------------------- answers_match


@pytest.mark.parametrize(
    "pred,gold,expected",
    [
        ("$1,234", "1234", True),
        ("0.75", "3/4", True),  # 3/4 = 0.75 exactly
        ("0.3333333", "1/3", True),  # |0.3333333 - 1/3| = 3.3e-8 <= 1e-6
        ("0.33", "1/3", False),  # 0.0033 off
        ("18.000", "18", True),
        ("19", "18", False),
        ("(B)", "B", True),
        ("C", "B", False),
        ("\\frac{\\pi}{2}", "\\frac{\\pi}{2}", True),
        (None, "18", False),
        ("nan", "nan", True),  # equal text; never compared as numbers
        ("inf", "5", False),
    ],
)
def test_answers_match(pred, gold, expected):
    assert answers_match(pred, gold) is expected
