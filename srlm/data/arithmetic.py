"""Verifiable arithmetic tasks: the project's CPU-sized stand-in for GSM8K in IRPO.

Every problem has an exact, non-negative integer answer, so the reward is a rule (the text after the last
``Final answer:`` equals the gold answer) and no judge model is needed.

Kinds
-----
``add1``   single-digit addition, ``What is 3 + 4?`` (1-9 + 1-9; 78 questions after the
           few-shot exclusions).
``add2``   two-digit addition of numbers 10-49, ``What is 23 + 41?`` (1,597 questions).
           With three worked examples the embedded SmolLM2-135M gets about a quarter of its
           samples right, the regime where IRPO finds both correct and incorrect samples.
``word2``  two-step word problems with small numbers, eight templates taken in turn.
``mixed``  the three kinds interleaved in turn (add1, add2, word2, add1, ...).

Determinism
-----------
For one ``kind`` and ``seed``, every question of the kind is put in one fixed shuffled
order (``problem_stream``); ``make_problems(kind, n, seed)`` is its first ``n`` rows, and
``train_test_split(kind, n_train, n_test, seed)`` takes the test set first and the training
set after it.  The test set therefore depends only on ``(kind, n_test, seed)`` - never on
``n_train`` - and the two sets cannot share a question.  The worked examples in
``FEW_SHOT`` are removed from every pool, so a prompt's demonstrations never contain the
question being asked.

Each row is ``{"question", "answer", "id", "kind", "solution"}``: ``answer`` is the integer
as a string, ``id`` is derived from the question (the same question has the same id in every
split and seed), ``solution`` is a gold step-by-step solution ending in ``Final answer: N``
(IRPO adds the gold chain of thought to the winners on GSM8K; here it is available the same
way).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass

__all__ = [
    "FEW_SHOT",
    "KINDS",
    "capacity",
    "make_problems",
    "problem_stream",
    "train_test_split",
]

KINDS: tuple[str, ...] = ("add1", "add2", "word2", "mixed")

_NAMES = ("Sam", "Mia", "Leo", "Ava", "Noah", "Zoe", "Omar", "Lily", "Ben", "Nina", "Raj", "Emma")


def _final(n: int) -> str:
    return f"Final answer: {n}"


# ---------------------------------------------------------------------------------------------
# add1 / add2


def _add_question(a: int, b: int) -> str:
    return f"What is {a} + {b}?"


def _add1_solution(a: int, b: int) -> str:
    return f"We add the two numbers: {a} + {b} = {a + b}.\n{_final(a + b)}"


def _add2_solution(a: int, b: int) -> str:
    ta, oa = divmod(a, 10)
    tb, ob = divmod(b, 10)
    tens = (ta + tb) * 10
    ones = oa + ob
    return (
        f"Split each number into tens and ones. Tens: {ta * 10} + {tb * 10} = {tens}. "
        f"Ones: {oa} + {ob} = {ones}. Together: {tens} + {ones} = {a + b}.\n{_final(a + b)}"
    )


# ---------------------------------------------------------------------------------------------
# word2: two-step word problems


@dataclass(frozen=True)
class _Template:
    key: str
    params: Callable[[], Iterator[tuple[int, ...]]]
    question: Callable[[str, tuple[int, ...]], str]
    solve: Callable[[str, tuple[int, ...]], tuple[int, str]]  # -> (answer, reasoning body)


def _name(key: str, p: tuple[int, ...]) -> str:
    # The name is a function of the numbers, so a (template, numbers) pair is one question.
    return _NAMES[(sum(p) * 7 + len(key) + p[0]) % len(_NAMES)]


def _buy_give_params() -> Iterator[tuple[int, ...]]:
    for a in range(5, 21):
        for b in range(2, 11):
            for c in range(1, min(10, a + b)):
                yield (a, b, c)


def _buy_give_q(n: str, p: tuple[int, ...]) -> str:
    a, b, c = p
    return (
        f"{n} has {a} apples and buys {b} more, then gives away {c}. "
        f"How many apples does {n} have now?"
    )


def _buy_give_s(n: str, p: tuple[int, ...]) -> tuple[int, str]:
    a, b, c = p
    return a + b - c, (
        f"{n} starts with {a} apples. After buying {b} more: {a} + {b} = {a + b}. "
        f"After giving away {c}: {a + b} - {c} = {a + b - c}."
    )


def _boxes_params() -> Iterator[tuple[int, ...]]:
    for a in range(2, 7):
        for b in range(2, 6):
            for c in range(1, min(6, a * b)):
                yield (a, b, c)


def _boxes_q(n: str, p: tuple[int, ...]) -> str:
    a, b, c = p
    return (
        f"A box holds {a} cookies. {n} fills {b} boxes and then eats {c} of the cookies. "
        f"How many cookies are left?"
    )


def _boxes_s(n: str, p: tuple[int, ...]) -> tuple[int, str]:
    a, b, c = p
    return a * b - c, (
        f"{b} boxes with {a} cookies each hold {b} x {a} = {a * b} cookies. "
        f"After eating {c}: {a * b} - {c} = {a * b - c}."
    )


def _pages_params() -> Iterator[tuple[int, ...]]:
    for a in range(5, 21):
        for b in range(5, 21):
            for t in (40, 50, 60, 70, 80):
                yield (a, b, t)


def _pages_q(n: str, p: tuple[int, ...]) -> str:
    a, b, t = p
    return (
        f"A book has {t} pages. {n} reads {a} pages on Monday and {b} pages on Tuesday. "
        f"How many pages are left to read?"
    )


def _pages_s(n: str, p: tuple[int, ...]) -> tuple[int, str]:
    a, b, t = p
    return t - a - b, (
        f"{n} reads {a} + {b} = {a + b} pages in the two days. "
        f"Pages left: {t} - {a + b} = {t - a - b}."
    )


def _bus_params() -> Iterator[tuple[int, ...]]:
    for a in range(10, 31):
        for b in range(2, 10):
            for c in range(2, 10):
                yield (a, b, c)


def _bus_q(n: str, p: tuple[int, ...]) -> str:
    a, b, c = p
    return (
        f"There are {a} children on a bus. At the first stop {b} children get off, "
        f"and at the second stop {c} children get on. How many children are on the bus now?"
    )


def _bus_s(n: str, p: tuple[int, ...]) -> tuple[int, str]:
    a, b, c = p
    return a - b + c, (
        f"After the first stop: {a} - {b} = {a - b}. "
        f"After the second stop: {a - b} + {c} = {a - b + c}."
    )


def _stickers_params() -> Iterator[tuple[int, ...]]:
    for a in range(2, 7):
        for b in range(2, 7):
            for c in range(1, 16):
                yield (a, b, c)


def _stickers_q(n: str, p: tuple[int, ...]) -> str:
    a, b, c = p
    return (
        f"{n} already has {c} stickers and buys {a} packs with {b} stickers in each pack. "
        f"How many stickers does {n} have now?"
    )


def _stickers_s(n: str, p: tuple[int, ...]) -> tuple[int, str]:
    a, b, c = p
    return a * b + c, (
        f"The packs hold {a} x {b} = {a * b} stickers. "
        f"Adding the {c} {n} already had: {a * b} + {c} = {a * b + c}."
    )


def _money_params() -> Iterator[tuple[int, ...]]:
    for a in range(10, 31):
        for b in range(2, 10):
            for c in range(2, 13):
                yield (a, b, c)


def _money_q(n: str, p: tuple[int, ...]) -> str:
    a, b, c = p
    return (
        f"{n} had {a} dollars, spent {b} dollars on lunch and then earned {c} dollars. "
        f"How many dollars does {n} have now?"
    )


def _money_s(n: str, p: tuple[int, ...]) -> tuple[int, str]:
    a, b, c = p
    return a - b + c, (
        f"After lunch: {a} - {b} = {a - b} dollars. After earning {c}: {a - b} + {c} = {a - b + c}."
    )


def _share_params() -> Iterator[tuple[int, ...]]:
    for each in range(2, 9):
        for kids in range(2, 7):
            for more in range(1, 6):
                yield (each, kids, more)


def _share_q(n: str, p: tuple[int, ...]) -> str:
    each, kids, more = p
    return (
        f"{n} shares {each * kids} crayons equally among {kids} friends. Then each friend "
        f"gets {more} more crayons. How many crayons does each friend have now?"
    )


def _share_s(n: str, p: tuple[int, ...]) -> tuple[int, str]:
    each, kids, more = p
    return each + more, (
        f"Shared equally: {each * kids} / {kids} = {each} crayons each. "
        f"With {more} more: {each} + {more} = {each + more}."
    )


def _bake_params() -> Iterator[tuple[int, ...]]:
    for a in range(6, 25, 2):
        for b in range(4, 17, 2):
            for c in range(3, min(19, a + b)):
                yield (a, b, c)


def _bake_q(n: str, p: tuple[int, ...]) -> str:
    a, b, c = p
    return (
        f"A baker makes {a} muffins in the morning and {b} muffins in the afternoon, "
        f"then sells {c} of them. How many muffins are left?"
    )


def _bake_s(n: str, p: tuple[int, ...]) -> tuple[int, str]:
    a, b, c = p
    return a + b - c, (
        f"Muffins made: {a} + {b} = {a + b}. After selling {c}: {a + b} - {c} = {a + b - c}."
    )


_WORD_TEMPLATES: tuple[_Template, ...] = (
    _Template("buy", _buy_give_params, _buy_give_q, _buy_give_s),
    _Template("box", _boxes_params, _boxes_q, _boxes_s),
    _Template("pages", _pages_params, _pages_q, _pages_s),
    _Template("bus", _bus_params, _bus_q, _bus_s),
    _Template("stick", _stickers_params, _stickers_q, _stickers_s),
    _Template("money", _money_params, _money_q, _money_s),
    _Template("share", _share_params, _share_q, _share_s),
    _Template("bake", _bake_params, _bake_q, _bake_s),
)
_TEMPLATES_BY_KEY = {t.key: t for t in _WORD_TEMPLATES}


# ---------------------------------------------------------------------------------------------
# rows


def _add_row(kind: str, a: int, b: int) -> dict:
    solve = _add1_solution if kind == "add1" else _add2_solution
    return {
        "question": _add_question(a, b),
        "answer": str(a + b),
        "id": f"{kind}-{a}+{b}",
        "kind": kind,
        "solution": solve(a, b),
    }


def _word_row(t: _Template, p: tuple[int, ...]) -> dict:
    name = _name(t.key, p)
    answer, body = t.solve(name, p)
    return {
        "question": t.question(name, p),
        "answer": str(answer),
        "id": "word2-" + t.key + "-" + "-".join(str(x) for x in p),
        "kind": "word2",
        "solution": f"{body}\n{_final(answer)}",
    }


def _few_shot(row: dict) -> dict:
    return {"question": row["question"], "reasoning": row["solution"], "answer": row["answer"]}


_FEW_SHOT_ROWS: dict[str, list[dict]] = {
    "add1": [_add_row("add1", 3, 4), _add_row("add1", 8, 6), _add_row("add1", 5, 9)],
    "add2": [_add_row("add2", 23, 14), _add_row("add2", 38, 25), _add_row("add2", 46, 47)],
    "word2": [
        _word_row(_TEMPLATES_BY_KEY["buy"], (12, 7, 5)),
        _word_row(_TEMPLATES_BY_KEY["box"], (4, 3, 2)),
        _word_row(_TEMPLATES_BY_KEY["bus"], (18, 6, 4)),
    ],
}
_FEW_SHOT_ROWS["mixed"] = [
    _FEW_SHOT_ROWS["add1"][1],
    _FEW_SHOT_ROWS["add2"][1],
    _FEW_SHOT_ROWS["word2"][0],
]

#: Three worked examples per kind: ``{"question", "reasoning", "answer"}``; ``reasoning`` is
#: step-by-step and ends with the line ``Final answer: N``.  None of these questions is ever
#: generated by ``make_problems`` / ``train_test_split``.
FEW_SHOT: dict[str, list[dict]] = {k: [_few_shot(r) for r in v] for k, v in _FEW_SHOT_ROWS.items()}

_EXCLUDED: frozenset[str] = frozenset(r["question"] for v in FEW_SHOT.values() for r in v)


def _groups(kind: str) -> list[list[dict]]:
    """Every question of a base kind in a fixed canonical order, few-shot ones removed, as
    groups (one per word-problem template) that the stream takes from in turn."""
    if kind == "add1":
        groups = [[_add_row(kind, a, b) for a in range(1, 10) for b in range(1, 10)]]
    elif kind == "add2":
        groups = [[_add_row(kind, a, b) for a in range(10, 50) for b in range(10, 50)]]
    elif kind == "word2":
        groups = [[_word_row(t, p) for p in t.params()] for t in _WORD_TEMPLATES]
    else:  # pragma: no cover - guarded by _check_kind
        raise ValueError(kind)
    seen: set[str] = set()
    out = []
    for rows in groups:
        kept = []
        for r in rows:
            q = r["question"]
            if q in _EXCLUDED or q in seen:
                continue
            seen.add(q)
            kept.append(r)
        out.append(kept)
    return out


_GROUP_CACHE: dict[str, list[list[dict]]] = {}


def _cached_groups(kind: str) -> list[list[dict]]:
    if kind not in _GROUP_CACHE:
        _GROUP_CACHE[kind] = _groups(kind)
    return _GROUP_CACHE[kind]


def _round_robin(parts: list[list[dict]]) -> list[dict]:
    out: list[dict] = []
    for i in range(max((len(p) for p in parts), default=0)):
        for p in parts:
            if i < len(p):
                out.append(p[i])
    return out


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"unknown arithmetic kind {kind!r}; choose one of {', '.join(KINDS)}")


def capacity(kind: str) -> int:
    """How many distinct questions of ``kind`` exist (few-shot examples excluded)."""
    _check_kind(kind)
    if kind == "mixed":
        return sum(capacity(k) for k in ("add1", "add2", "word2"))
    return sum(len(g) for g in _cached_groups(kind))


def _ordered(kind: str, seed: int) -> list[dict]:
    if kind == "mixed":
        return _round_robin([_ordered(k, seed) for k in ("add1", "add2", "word2")])
    parts = []
    for i, group in enumerate(_cached_groups(kind)):
        order = list(group)
        random.Random(f"srlm-arith:{kind}:{i}:{seed}").shuffle(order)
        parts.append(order)
    return _round_robin(parts)


def problem_stream(kind: str, seed: int) -> list[dict]:
    """All questions of ``kind`` in the fixed order that ``seed`` gives (copies of the rows).

    Word problems take each template in turn and ``mixed`` takes add1, add2, word2 in turn,
    so a short prefix is balanced across templates and kinds.
    """
    _check_kind(kind)
    return [dict(r) for r in _ordered(kind, seed)]


def _check_n(kind: str, name: str, n: int) -> None:
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {n!r}")


def make_problems(kind: str, n: int, seed: int) -> list[dict]:
    """``n`` distinct problems of ``kind``: the first ``n`` of ``problem_stream(kind, seed)``."""
    _check_kind(kind)
    _check_n(kind, "n", n)
    cap = capacity(kind)
    if n > cap:
        raise ValueError(f"asked for {n} {kind} problems but only {cap} distinct ones exist")
    return problem_stream(kind, seed)[:n]


def train_test_split(
    kind: str, n_train: int, n_test: int, seed: int
) -> tuple[list[dict], list[dict]]:
    """Disjoint ``(train, test)``; the test set is fixed by ``(kind, n_test, seed)`` alone."""
    _check_kind(kind)
    _check_n(kind, "n_train", n_train)
    _check_n(kind, "n_test", n_test)
    cap = capacity(kind)
    if n_train + n_test > cap:
        raise ValueError(
            f"asked for {n_train} train + {n_test} test {kind} problems but only {cap} "
            f"distinct ones exist"
        )
    stream = problem_stream(kind, seed)
    return stream[n_test : n_test + n_train], stream[:n_test]
