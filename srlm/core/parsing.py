"""Parsers for model outputs: judge scores, pairwise verdicts, thoughts, final answers.

Every parser returns ``None`` when the text does not say clearly what it means.
Callers count those as parse errors (Self-Rewarding/NeMo drop the sample, TPO
uses the output as a rejected sample); a parser never guesses a value.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from decimal import Decimal, InvalidOperation
from fractions import Fraction

from srlm.config import VERDICT_RULES

__all__ = [
    "ANSWER_BLOCKS",
    "JUDGEMENT_BLOCKS",
    "RESPONSE_BLOCK",
    "VERDICT_RULES",
    "answers_match",
    "cut_off",
    "final_verdict_start",
    "last_unquoted",
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


# ------------------------------------------------- judge verdicts: the rules every judge shares
#
# A judge's text may quote what it judges, and that is written by the model being judged: a
# response can contain "Score: 5", "[[A]]" or "Winner: Judgement A". Three rules keep such text
# from deciding a judgement:
#
# 1. A judgement whose generation was cut at max_tokens (``finish_reason == "length"``) is
#    unparseable. Its last label may be a quoted one that the judge would have followed with
#    its own, and the cut may fall right after a response's "Score: 5": nothing in a cut text
#    is known to be the judge's final word.
# 2. Text inside a quoted block never decides: the blocks the judge prompt wraps the judged
#    material in (``<response>...</response>``, the answers' start and end lines), when the
#    judge copies them into its judgement. Only closed blocks count: a judge that mentions a
#    tag once has quoted nothing.
# 3. Only the judge's own final verdict decides. For a label ("Score:", "Winner:") that is the
#    last one that opens a line; a label inside a sentence or in parentheses ("(a perfect
#    answer would get Score: 5)") talks about scores and is not the judge's score. For the
#    pairwise tokens it is the last line that holds one (see parse_verdict).
#
# Every scan is linear in the text: labels are matched at line starts only, and no pattern has
# two unbounded quantifiers that can take the same characters (``\s*\**\s*`` could, and took
# quadratic time on a long run of spaces).

LENGTH = "length"

# What may stand before a label on its line: indentation and markdown (bold, headings,
# bullets). A line that opens with ">" is a markdown quotation and never holds the judge's label.
_LINE_LEAD = " \t\r*#_-+"

# The quoted blocks of the judge prompts (srlm/judging.py, srlm/methods/meta_reward.py).
RESPONSE_BLOCK = ("<response>", "</response>")
ANSWER_BLOCKS = (
    ("[The Start of Assistant A's Answer]", "[The End of Assistant A's Answer]"),
    ("[The Start of Assistant B's Answer]", "[The End of Assistant B's Answer]"),
)
JUDGEMENT_BLOCKS = (
    ("<judgement A>", "</judgement A>"),
    ("<judgement B>", "</judgement B>"),
)


def cut_off(finish_reason: str | None) -> bool:
    """Whether a judgement's generation stopped at max_tokens instead of ending by itself."""
    return finish_reason == LENGTH


def _quoted_spans(text: str, blocks: tuple[tuple[str, str], ...]) -> list[tuple[int, int]]:
    """``(start, end)`` of every closed quoted block in ``text``, sorted and merged.

    ``blocks`` are (opening, closing) markers, matched in any case.
    """
    spans = []
    for opening, closing in blocks:
        open_re = re.compile(re.escape(opening), re.IGNORECASE)
        close_re = re.compile(re.escape(closing), re.IGNORECASE)
        pos = 0
        while (o := open_re.search(text, pos)) and (c := close_re.search(text, o.end())):
            spans.append((o.start(), c.end()))
            pos = c.end()
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def _quoted(pos: int, spans: list[tuple[int, int]]) -> bool:
    """Whether ``pos`` lies inside one of the sorted, disjoint ``spans``."""
    i = bisect_right(spans, (pos, float("inf"))) - 1
    return i >= 0 and spans[i][0] <= pos < spans[i][1]


def _last_line_label(
    text: str, label_re: re.Pattern, blocks: tuple[tuple[str, str], ...]
) -> tuple[int, int] | None:
    """``(line start, label end)`` of the last line that opens with ``label_re``, outside
    quoted blocks; None when no line does. Before the label a line may hold only
    :data:`_LINE_LEAD` characters."""
    spans = _quoted_spans(text, blocks)
    found, pos = None, 0
    for line in text.split("\n"):
        body = line.lstrip(_LINE_LEAD)
        m = label_re.match(body)
        if m is not None:
            start = pos + len(line) - len(body)
            if not _quoted(start, spans):
                found = (pos, start + m.end())
        pos += len(line) + 1
    return found


# ---------------------------------------------------------------- judge scores

_SCORE_LABEL_RE = re.compile(
    r"(?:(?:total|final|overall)[ \t]+)?(?:score|points)[ \t*]*:", re.IGNORECASE
)
_NUM = r"\d+(?:\.\d+)?"
_SCORE_VALUE_RE = re.compile(
    rf"(?P<num>{_NUM})(?:[ \t]*(?:/|out[ \t]+of)[ \t]*(?P<den>{_NUM}))?", re.IGNORECASE
)
# What after the number shows that it is not a plain score: letters or digits glued to it
# ("1e1", "4th"), a decimal comma or another number part ("4,5", "4.5.1", "4/5/5"), or a range
# ("3-4", "3 - 4", "3 to 4", "3 or 4"). Such a score is out of format: unparseable, not read
# as its first digits.
_OUT_OF_FORMAT_RE = re.compile(
    r"\w|[.,/]\d|[ \t]*(?:[-~\u2013\u2014]|to\b|or\b|and\b)[ \t]*\d", re.IGNORECASE
)


def _final_score_label(text: str) -> tuple[int, int] | None:
    return _last_line_label(text, _SCORE_LABEL_RE, (RESPONSE_BLOCK,))


def parse_score(
    text: str,
    min_score: float = 0.0,
    max_score: float = 5.0,
    finish_reason: str | None = None,
) -> float | None:
    """Return the judge's own final score from an additive-rubric judgement.

    The Self-Rewarding judge ends with ``Score: <total points>``. The judge's own score is the
    last score label that opens a line (after indentation or markdown: ``**Score:** 3``,
    ``- Score: 3``), outside quoted ``<response>`` blocks; ``Total score:``, ``Final score:``,
    ``Overall score:`` and ``Points:`` count as labels. A label inside a sentence or in
    parentheses is not the judge's score, so "Score: 2 (a perfect answer would get Score: 5)"
    gives 2, and a quoted response's "Score: 5" followed by the judge's own "Score: 3" gives
    3. The number follows the label on its line, or on the next non-blank line when the label
    ends its line. Accepted: ``Score: 4.5`` (Meta-Rewarding judges give non-integer scores),
    ``Score: **3**``, ``Score: 4/5`` and ``Score: 4 out of 5``.

    Returns None when ``finish_reason`` is "length" (the judgement was cut, see the rules
    above), when no line opens with a label or the last such label has no number, when the
    number is out of format ("1e1", "4,5", "3-4", "3 to 4"), when a denominator is given that
    is not ``max_score`` ("8/10" is on a different scale and rescaling would be a guess), or
    when the score lies outside ``[min_score, max_score]``.
    """
    if cut_off(finish_reason):
        return None
    label = _final_score_label(text)
    if label is None:
        return None
    value = _first_line_after(text, label[1]).lstrip(" \t*_")
    m = _SCORE_VALUE_RE.match(value)
    if m is None or _OUT_OF_FORMAT_RE.match(value, m.end()):
        return None
    score = float(m.group("num"))
    den = m.group("den")
    if den is not None and float(den) != max_score:
        return None
    if not min_score <= score <= max_score:
        return None
    return score


def before_final_score(text: str) -> str:
    """The judgement up to the line of its own final score label (the whole text without one).

    What a judge wrote before committing to a number: its justification, to be continued with
    a forced ``Score:`` when the score is read from token probabilities. The label is found
    as :func:`parse_score` finds it, so a quoted or parenthetical "Score: 5" does not shorten
    the justification.
    """
    label = _final_score_label(text)
    return text[: label[0]] if label is not None else text


# ------------------------------------------------------------ pairwise verdicts

_VERDICT_TOKEN_RE = re.compile(r"\[\[([ABC])\]\]")


def _ste_verdict(letters: set[str]) -> str | None:
    """The Self-Taught Evaluator's reading of the tokens present: both A and B -> None, else
    the first of A, B, C (in that order of precedence); none -> None."""
    if {"A", "B"} <= letters:
        return None
    for letter, label in (("A", "A"), ("B", "B"), ("C", "tie")):
        if letter in letters:
            return label
    return None


def _own_verdict_tokens(text: str) -> list[tuple[int, str]]:
    """``(position, letter)`` of every verdict token outside quoted answer blocks."""
    spans = _quoted_spans(text, ANSWER_BLOCKS)
    return [
        (m.start(), m.group(1))
        for m in _VERDICT_TOKEN_RE.finditer(text)
        if not _quoted(m.start(), spans)
    ]


def final_verdict_start(text: str) -> int:
    """Where the judge's own final verdict token starts in ``text`` (see :func:`parse_verdict`,
    rule "final"), or -1 when there is none."""
    tokens = _own_verdict_tokens(text)
    return tokens[-1][0] if tokens else -1


def last_unquoted(text: str, marker: str) -> int:
    """Position of the last ``marker`` (exact) outside quoted answer blocks, or -1."""
    spans = _quoted_spans(text, ANSWER_BLOCKS)
    found = [
        m.start() for m in re.finditer(re.escape(marker), text) if not _quoted(m.start(), spans)
    ]
    return found[-1] if found else -1


def parse_verdict(text: str, rule: str = "final", finish_reason: str | None = None) -> str | None:
    """Return "A", "B" or "tie" from a pairwise judgement's ``[[A]]``/``[[B]]``/``[[C]]``.

    Tokens are matched exactly (case-sensitive), as in the Self-Taught Evaluator's
    ``parse_judgement``. ``rule`` says which tokens count:

    - ``final`` (default): the judge's own final verdict. Tokens inside quoted answer blocks
      are left out; the last line that still holds a token is the verdict line, and STE's
      reading applies to that line alone: both ``[[A]]`` and ``[[B]]`` on it -> None,
      otherwise the first of A, B, C (in that order of precedence) on it. So a response that
      contains "[[A]]", quoted by the judge on an earlier line, neither decides nor voids the
      judge's own verdict, while "I considered [[A]] but the answer is [[B]]" stays invalid.
    - ``strict``: STE's rule on the whole text: both ``[[A]]`` and ``[[B]]`` anywhere -> None,
      otherwise the first of A, B, C that appears anywhere. A quoted token counts too.

    Either way no token gives None, and so does ``finish_reason`` "length" (a cut judgement).
    """
    if rule not in VERDICT_RULES:
        raise ValueError(f"verdict rule {rule!r}: allowed values are {', '.join(VERDICT_RULES)}")
    if cut_off(finish_reason):
        return None
    if rule == "strict":
        return _ste_verdict({m.group(1) for m in _VERDICT_TOKEN_RE.finditer(text)})
    tokens = _own_verdict_tokens(text)
    if not tokens:
        return None
    line_start = text.rfind("\n", 0, tokens[-1][0]) + 1
    return _ste_verdict({letter for pos, letter in tokens if pos >= line_start})


_WINNER_LABEL_RE = re.compile(r"(?:final[ \t]+)?winner[ \t*]*:", re.IGNORECASE)
_JUDGEMENT_RE = re.compile(r"\bjudge?ment[\s*]*([AB])\b", re.IGNORECASE)


def parse_meta_winner(text: str, finish_reason: str | None = None) -> str | None:
    """Return "A" or "B" from a Meta-Rewarding meta-judge's ``Winner: Judgement X``.

    Both spellings (Judgement/Judgment), any case and markdown bold are accepted. The
    meta-judge's own verdict is the last ``Winner:`` label that opens a line (after
    indentation or markdown), outside the quoted ``<response>`` and ``<judgement A|B>``
    blocks; it is read up to the end of the first non-blank line after the label. If that
    line names both judgements (e.g. the template ``Winner: [Judgement A | Judgement B]``
    copied verbatim) or neither, the result is None; so it is for a meta-judgement cut at
    max_tokens (``finish_reason`` "length").
    """
    if cut_off(finish_reason):
        return None
    label = _last_line_label(text, _WINNER_LABEL_RE, (RESPONSE_BLOCK, *JUDGEMENT_BLOCKS))
    if label is None:
        return None
    line = _first_line_after(text, label[1])
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

_FINAL_ANSWER_RE = re.compile(r"final\s+answer[\s*]*:", re.IGNORECASE)
_ANSWER_TAG_RE = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)


def extract_final_answer(text: str) -> str | None:
    """Return the answer a reasoning output commits to (IRPO's "Final answer: ...").

    Takes the text after the last ``Final answer:`` (any case), from its first
    non-blank character to the end of that line, so "Final answer:\\n42" still
    gives "42". If that line opens a ``\\boxed{}``, the box's content is the
    answer. Without any "Final answer:", the last ``\\boxed{}`` content in the
    text is used (MATH-style outputs). Returns None when neither is found or
    the answer is empty. Without either, the last ``<answer>...</answer>`` (DeepSeek-R1-Zero's
    template) gives it.
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
    tags = _ANSWER_TAG_RE.findall(text)
    if tags and tags[-1].strip():
        return tags[-1].strip()
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
