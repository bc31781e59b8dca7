"""Parsers for model outputs: judge scores, pairwise verdicts, thoughts, final answers.

Every parser returns ``None`` when the text does not say clearly what it means.
Callers count those as parse errors (Self-Rewarding/NeMo drop the sample, TPO
uses the output as a rejected sample); a parser never guesses a value.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from fractions import Fraction

__all__ = [
    "answers_match",
    "extract_final_answer",
    "normalize_answer",
    "parse_meta_winner",
    "parse_score",
    "before_final_score",
    "parse_verdict",
    "split_thought",
]


def _first_line_after(text: str, pos: int) -> str:
    """The first non-blank line of ``text[pos:]`` ("Label:\\n value" puts the value on the next line)."""
    return text[pos:].lstrip().split("\n", 1)[0]


def _braced_contents(text: str, command: str) -> list[tuple[int, int, str]]:
    """``(start, end, content)`` of every ``\\command{...}`` in ``text``, braces balanced.

    ``start:end`` spans the whole command. An unclosed command is skipped: its
    content is unknown.
    """
    found = []
    for m in re.finditer(rf"\\{command}\s*\{{", text):
        depth = 1
        for i in range(m.end(), len(text)):
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            if depth == 0:
                found.append((m.start(), i + 1, text[m.end() : i]))
                break
    return found


# ---------------------------------------------------------------- judge scores

_NUM = r"\d+(?:\.\d+)?"

# Matches every score label, with or without a number after it, so that the
# last label in the text decides: a judge whose own final "Score:" carries no
# number must give None, not the score of some response it quoted earlier.
# Markdown bold may wrap the label ("**Score:** 3") or the number ("Score: **3**").
_SCORE_RE = re.compile(
    r"\b(?:score|points)\s*\**\s*:\s*\**\s*"
    rf"(?:(?P<num>{_NUM})(?:\s*(?:/|out\s+of)\s*(?P<den>{_NUM}))?)?",
    re.IGNORECASE,
)


def parse_score(text: str, min_score: float = 0.0, max_score: float = 5.0) -> float | None:
    """Return the judge's own final score from an additive-rubric judgement.

    The Self-Rewarding judge ends with ``Score: <total points>``; the last
    ``Score:``/``Points:`` label in the text is the judge's own (earlier ones may
    come from a quoted candidate response). Also accepted: ``Total score: 3``,
    ``**Score:** 3``, ``Score: 4.5`` (Meta-Rewarding judges give non-integer
    scores) and ``Score: 4/5`` / ``Score: 4 out of 5``.

    Returns None when the last label has no number, when a denominator is given
    that is not ``max_score`` ("8/10" is on a different scale and rescaling
    would be a guess), or when the score lies outside ``[min_score, max_score]``.
    """
    matches = list(_SCORE_RE.finditer(text))
    if not matches or matches[-1].group("num") is None:
        return None
    last = matches[-1]
    score = float(last.group("num"))
    den = last.group("den")
    if den is not None and float(den) != max_score:
        return None
    if not min_score <= score <= max_score:
        return None
    return score


def before_final_score(text: str) -> str:
    """The judgement up to its last ``Score:``/``Points:`` label (the whole text without one).

    What a judge wrote before committing to a number: its justification, to be continued with
    a forced ``Score:`` when the score is read from token probabilities.
    """
    matches = list(_SCORE_RE.finditer(text))
    # Markdown bold around the label ("**Score:**") belongs to the label, not the justification.
    return text[: matches[-1].start()].rstrip("*") if matches else text


# ------------------------------------------------------------ pairwise verdicts


def parse_verdict(text: str) -> str | None:
    """Return "A", "B" or "tie" from a pairwise judgement's ``[[A]]``/``[[B]]``/``[[C]]``.

    Follows the Self-Taught Evaluator's ``parse_judgement``: a text with both
    ``[[A]]`` and ``[[B]]`` is invalid (None); otherwise the first of A, B, C
    (in that order of precedence) that appears wins; none of them gives None.
    Tokens are matched exactly (case-sensitive), as in that code.
    """
    if "[[A]]" in text and "[[B]]" in text:
        return None
    for token, label in (("[[A]]", "A"), ("[[B]]", "B"), ("[[C]]", "tie")):
        if token in text:
            return label
    return None


_WINNER_RE = re.compile(r"\bwinner\s*\**\s*:", re.IGNORECASE)
_JUDGEMENT_RE = re.compile(r"\bjudge?ment\s*\**\s*([AB])\b", re.IGNORECASE)


def parse_meta_winner(text: str) -> str | None:
    """Return "A" or "B" from a Meta-Rewarding meta-judge's ``Winner: Judgement X``.

    Both spellings (Judgement/Judgment), any case and markdown bold are accepted.
    The last ``Winner:`` label decides, read up to the end of the first
    non-blank line after it. If that line names both judgements (e.g. the
    template ``Winner: [Judgement A | Judgement B]`` copied verbatim) or
    neither, the result is None.
    """
    labels = list(_WINNER_RE.finditer(text))
    if not labels:
        return None
    line = _first_line_after(text, labels[-1].end())
    named = {m.group(1).upper() for m in _JUDGEMENT_RE.finditer(line)}
    if len(named) != 1:
        return None
    return named.pop()


# ------------------------------------------------------------------ TPO thoughts

_OPEN_TAG_RE = re.compile(r"<([A-Za-z][\w -]*)>")


def split_thought(text: str, separator: str) -> tuple[str, str] | None:
    """Split a TPO output into ``(thought, response)`` at the first ``separator``.

    The first occurrence is used because the thought comes before the response
    and the final response may itself quote the separator. Both parts are
    stripped; the thought may be empty. If the separator is an opening tag
    such as ``<response>`` or ``<R>``, a trailing matching closing tag is
    removed from the response. The match is exact (case-sensitive).

    Returns None when the separator is missing or the response is empty; TPO
    counts these as parse errors.
    """
    head, found, tail = text.partition(separator)
    if not found:
        return None
    response = tail.strip()
    tag = _OPEN_TAG_RE.fullmatch(separator.strip())
    if tag is not None:
        closing = f"</{tag.group(1)}>"
        if response.endswith(closing):
            response = response[: -len(closing)].rstrip()
    if not response:
        return None
    return head.strip(), response


# --------------------------------------------------------------- final answers

_FINAL_ANSWER_RE = re.compile(r"final\s+answer\s*\**\s*:", re.IGNORECASE)


def extract_final_answer(text: str) -> str | None:
    """Return the answer a reasoning output commits to (IRPO's "Final answer: ...").

    Takes the text after the last ``Final answer:`` (any case), from its first
    non-blank character to the end of that line, so "Final answer:\\n42" still
    gives "42". If that line opens a ``\\boxed{}``, the box's content is the
    answer. Without any "Final answer:", the last ``\\boxed{}`` content in the
    text is used (MATH-style outputs). Returns None when neither is found or
    the answer is empty.
    """
    markers = list(_FINAL_ANSWER_RE.finditer(text))
    if markers:
        line = _first_line_after(text, markers[-1].end())
        if "\\boxed" in line:
            # The box may close on a later line, so balance braces over the rest.
            rest = text[markers[-1].end() :]
            boxes = _braced_contents(rest, "boxed")
            answer = boxes[0][2] if boxes else ""
        else:
            answer = line
        answer = answer.strip().strip("*").strip()
        return answer or None
    boxes = _braced_contents(text, "boxed")
    if boxes and boxes[-1][2].strip():
        return boxes[-1][2].strip()
    return None


_NUMBER = r"-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:/\d+)?|-?\.\d+"
# The answer is numeric when the only number in it has at most words around
# it: words before ("The answer is"), an assignment ("x ="), and "%" or unit
# words after a space ("18 dollars"). Thousands separators must come in groups
# of three, so "1, 2" is not one number. Anything else (^, \sqrt, +, a letter
# glued on as in "2x") means the number is part of an expression, and the
# answer is compared as text.
_NUMERIC_ANSWER_RE = re.compile(
    r"(?:[A-Za-z][A-Za-z ,:']*?\s)?(?:[A-Za-z]\w*\s*=\s*)?"
    rf"(?P<num>{_NUMBER})"
    r"(?:\s*%|\s+[A-Za-z][A-Za-z .]*)?"
)
_OPTION_RE = re.compile(r"\(([A-Ea-e])\).*|([A-Ea-e])(?:[).:]\s.*|[).:]?)", re.DOTALL)
_WRAPPERS = ("boxed", "text", "textbf", "mathrm", "mbox")


def _strip_latex(ans: str) -> str:
    """Remove the LaTeX that only dresses an answer up: wrappers, math delimiters, spacing."""
    for command in _WRAPPERS:
        while boxes := _braced_contents(ans, command):
            start, end, content = boxes[0]
            ans = ans[:start] + content + ans[end:]
    ans = re.sub(r"\\[dt]frac", r"\\frac", ans)
    ans = ans.replace("\\%", "%")
    for token in ("\\left", "\\right", "\\!", "\\,", "\\;", "\\:", "\\(", "\\)", "\\[", "\\]", "$"):
        ans = ans.replace(token, "")
    return ans.replace("\u2212", "-").strip()


def _canonical_number(num: str) -> str:
    """Canonical text of a number: no separators, no trailing zeros, fractions reduced."""
    num = num.replace(",", "")
    if "/" in num:
        numerator, denominator = num.split("/")
        if int(denominator) == 0:
            return num
        value = Fraction(Decimal(numerator)) / int(denominator)
        if value.denominator == 1:
            return str(value.numerator)
        return f"{value.numerator}/{value.denominator}"
    text = format(Decimal(num).normalize(), "f")
    return "0" if text == "-0" else text


def normalize_answer(ans: str) -> str:
    """Normalise an answer so that equal answers compare equal as strings.

    LaTeX dressing is removed first (``\\boxed{}``, ``\\text{}``, ``$``, ...). Then:
    1. A multiple-choice option ("(B)", "B", "b)", "(b) the sun") gives its
       upper-case letter. A bare letter A-E counts as an option.
    2. A single number with at most words around it ("1,234", "x = 12.0",
       "18 dollars.", "3/4 cup", "\\frac{3}{4}") gives the canonical number:
       "1234", "12", "18", "3/4", "3/4".
    3. Anything else gives the text without spaces or a trailing period,
       lower-cased.
    """
    stripped = _strip_latex(ans)
    option = _OPTION_RE.fullmatch(stripped)
    if option is not None:
        return (option.group(1) or option.group(2)).upper()
    stripped = re.sub(r"\\frac\{(-?\d+)\}\{(\d+)\}", r"\1/\2", stripped)
    numeric = _NUMERIC_ANSWER_RE.fullmatch(stripped.rstrip(".").strip())
    if numeric is not None:
        return _canonical_number(numeric.group("num"))
    return re.sub(r"\s+", "", stripped).rstrip(".").lower()


def _as_number(normalized: str) -> Fraction | None:
    """The value of a canonical number from :func:`normalize_answer`, or None."""
    try:
        if "/" in normalized:
            numerator, denominator = normalized.split("/")
            return Fraction(int(numerator), int(denominator))
        return Fraction(Decimal(normalized))
    except (ValueError, ZeroDivisionError, InvalidOperation, OverflowError):
        return None


def answers_match(pred: str | None, gold: str) -> bool:
    """True when a predicted answer equals the gold answer after normalisation.

    Numbers are compared by value with tolerance 1e-6 (relative once
    ``|gold| > 1``), so "0.75" matches "3/4"; everything else as normalised
    text. A missing prediction (parse error) never matches.
    """
    if pred is None:
        return False
    p, g = normalize_answer(pred), normalize_answer(gold)
    if p == g:
        return True
    pv, gv = _as_number(p), _as_number(g)
    if pv is None or gv is None:
        return False
    return abs(float(pv) - float(gv)) <= 1e-6 * max(1.0, abs(float(gv)))
