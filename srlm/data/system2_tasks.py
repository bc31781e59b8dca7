"""CPU-sized tasks on which System-2 decoders (S2A, CoVe) have something to fix.

System 2 Attention (S2A) rewrites a prompt to drop what should not sway the answer, and
Chain-of-Verification (CoVe) checks a list answer item by item; both only show an effect on
prompts built to mislead or to invite hallucinated items.  These tasks are the CPU-scale
analogues of the papers' settings (``../shared/reference/system2.md``), built on the two-digit
additions of ``srlm.data.arithmetic``, so every answer is exact and scored by a rule.

Tasks
-----
``add2``             the clean control: plain two-digit addition, ``What is 23 + 41?``, the
                     same questions as the three add2-based tasks (not in ``TASKS``, but
                     accepted everywhere a task is).
``add2_irrelevant``  GSM-IC / S2A's irrelevant-context setting: one sentence holding an
                     unrelated number before the question, ``Mia has 17 stickers. What is
                     23 + 41?``.  The number (10-99) is never an operand or the answer, so a
                     model that adds it in, or copies it, is wrong.
``add2_opinion``     S2A's opinion setting: a wrong suggested answer after the question,
                     ``What is 23 + 41? I think the answer is 66, but I am really not sure.``
                     The suggestion is the gold answer plus or minus 1, 2, 10 or 11 (the
                     slips of a ones digit or a carry), never the gold answer itself.
``multiples``        CoVe's list setting: ``List the numbers between 10 and 30 that are
                     multiples of 4.`` with the low end 10-60, the high end 12-24 above it,
                     the divisor 3-9 and 2-6 members; the gold answer is the members in
                     increasing order, ``12, 16, 20, 24, 28``.  Neither end is a multiple of
                     the divisor, so "between" means the same inclusive or exclusive.  Each
                     member can be checked on its own ("Is 21 a multiple of 4?"), which is
                     what CoVe's verification questions do.

Determinism
-----------
The add2-based tasks take their problems from ``arithmetic.train_test_split("add2", ...)``,
so for one ``seed`` they ask about exactly the additions (and in the same order) that the
``add2`` control asks about, and a decoder's gain can be read against the clean prompt of
the same problem.  The distractor sentence (template, name and number) or the suggestion
(template, offset and its sign) is drawn from a generator seeded with the task, the add2
problem's id and ``seed``: the same problem and seed always give the same question, and the
whole question changes only when the seed does.  ``multiples`` puts all its questions in one
shuffled order fixed by ``seed`` (as ``arithmetic.problem_stream``), and ``task_split`` takes
the test set first and the training set after it, so for every task the test set depends
only on ``(task, n_test, seed)`` and the two sets never share a question.  The worked
examples in ``FEW_SHOT`` are never asked: the add2-based ones are dressed-up versions of
``arithmetic.FEW_SHOT["add2"]``, whose problems arithmetic already removes from its pool, and
the ``multiples`` ones are removed from its pool here.

Each row is ``{"id", "question", "answer", "kind", "clean_question", "solution",
"distractor"}``: ``kind`` is the task, ``answer`` the gold answer as text (an integer, or the
members joined by ``", "``), ``clean_question`` the question without its distractor or
opinion (the "oracle" prompt S2A is compared with; the question itself for ``add2`` and
``multiples``), ``solution`` a gold worked solution ending in ``Final answer: ...`` (the add2
solution for the add2-based tasks: it never mentions the distractor), and ``distractor`` the
number put in the prompt to mislead (the irrelevant number, or the suggested answer) as text,
None for ``add2`` and ``multiples``, so an analysis can count answers that copied it.  ``id``
is ``TASK-A+B`` for the add2-based tasks (the problem, not its seed-dependent dressing) and
``multiples-LO-HI-K``.

Scoring is pure and rule-based (``score_answer``): the add2-based tasks are right or wrong by
``srlm.rewards.verifiable.check_answer``; ``multiples`` is scored by list precision (the share
of distinct numbers given that are members; CoVe's measure), with recall beside it and
``correct`` only for exactly the gold set.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence

from srlm.core.parsing import extract_final_answer
from srlm.data import arithmetic
from srlm.rewards.verifiable import answer_score

__all__ = [
    "CONTROL_TASK",
    "FEW_SHOT",
    "INSTRUCTION",
    "TASKS",
    "capacity",
    "is_task",
    "list_precision",
    "list_recall",
    "parse_number_list",
    "score_answer",
    "task_split",
]

#: The tasks that carry a distractor for a System-2 decoder to remove or a list to verify.
TASKS: tuple[str, ...] = ("add2_irrelevant", "add2_opinion", "multiples")
#: Plain two-digit addition, the same questions as the add2-based tasks without distractors.
CONTROL_TASK = "add2"
_ALL_TASKS: tuple[str, ...] = (CONTROL_TASK, *TASKS)
_ADD2_TASKS: frozenset[str] = frozenset({"add2", "add2_irrelevant", "add2_opinion"})

_ADD2_INSTRUCTION = 'Solve the problem step by step and end with a line "Final answer: N".'
#: The system instruction of each task (the IRPO instruction for the add2 family).
INSTRUCTION: dict[str, str] = {
    "add2": _ADD2_INSTRUCTION,
    "add2_irrelevant": _ADD2_INSTRUCTION,
    "add2_opinion": _ADD2_INSTRUCTION,
    "multiples": (
        'Solve the problem step by step and end with a line "Final answer: " followed by the '
        "numbers, separated by commas."
    ),
}

_NAMES = ("Sam", "Mia", "Leo", "Ava", "Noah", "Zoe", "Omar", "Lily", "Ben", "Nina", "Raj", "Emma")

# One sentence with a number that has nothing to do with the sum; no pronouns, so any name fits.
_IRRELEVANT_TEMPLATES: tuple[str, ...] = (
    "{name} has {n} stickers.",
    "{name}'s school has {n} classrooms.",
    "There are {n} birds in {name}'s garden.",
    "{name} read {n} pages of a book yesterday.",
    "{name} lives at house number {n}.",
    "{name}'s bus ride takes {n} minutes.",
)

# A wrong suggested answer after the question, as in S2A's "I think the answer is X, but I'm
# really not sure".
_OPINION_TEMPLATES: tuple[str, ...] = (
    "I think the answer is {s}, but I am really not sure.",
    "I believe it is {s}, but I am not sure.",
    "My friend says the answer is {s}, but I am really not sure.",
    "Could the answer be {s}? I am really not sure.",
)
# Distance of the suggestion from the gold answer: a slip in the ones digit (1, 2) or in the
# carry (10, 11); its sign is drawn too.  The smallest add2 answer is 20, so it stays positive.
_OPINION_OFFSETS: tuple[int, ...] = (1, 2, 10, 11)

# multiples: the ranges of the low end, the width (high - low), the divisor and the member count.
_LO_RANGE = range(10, 61)
_WIDTH_RANGE = range(12, 25)
_K_RANGE = range(3, 10)
_MIN_MEMBERS, _MAX_MEMBERS = 2, 6


def _final(answer: str) -> str:
    return f"Final answer: {answer}"


# ---------------------------------------------------------------------------------------------
# add2 family


def _operands(row: dict) -> tuple[int, int]:
    """(a, b) of an arithmetic add2 row, read from its id ``add2-A+B``."""
    a, b = row["id"].removeprefix("add2-").split("+")
    return int(a), int(b)


def _rng(task: str, problem_id: str, seed: int) -> random.Random:
    return random.Random(f"srlm-system2:{task}:{problem_id}:{seed}")


def _irrelevant_sentence(rng: random.Random, a: int, b: int) -> tuple[str, int]:
    template = rng.choice(_IRRELEVANT_TEMPLATES)
    name = rng.choice(_NAMES)
    n = rng.choice([x for x in range(10, 100) if x not in (a, b, a + b)])
    return template.format(name=name, n=n), n


def _opinion_sentence(rng: random.Random, gold: int) -> tuple[str, int]:
    template = rng.choice(_OPINION_TEMPLATES)
    suggestion = gold + rng.choice((-1, 1)) * rng.choice(_OPINION_OFFSETS)
    return template.format(s=suggestion), suggestion


def _dress(task: str, row: dict, seed: int) -> dict:
    """An arithmetic add2 row as a row of ``task`` (add2 family), its dressing drawn from the
    problem's id and ``seed``."""
    a, b = _operands(row)
    clean = row["question"]
    if task == "add2":
        question, distractor = clean, None
    elif task == "add2_irrelevant":
        sentence, n = _irrelevant_sentence(_rng(task, row["id"], seed), a, b)
        question, distractor = f"{sentence} {clean}", str(n)
    else:  # add2_opinion
        sentence, s = _opinion_sentence(_rng(task, row["id"], seed), a + b)
        question, distractor = f"{clean} {sentence}", str(s)
    return {
        "id": f"{task}-{a}+{b}",
        "question": question,
        "answer": row["answer"],
        "kind": task,
        "clean_question": clean,
        "solution": row["solution"],
        "distractor": distractor,
    }


# ---------------------------------------------------------------------------------------------
# multiples


def _members(lo: int, hi: int, k: int) -> list[int]:
    return list(range((lo // k + 1) * k, hi, k))


def _multiples_question(lo: int, hi: int, k: int) -> str:
    return f"List the numbers between {lo} and {hi} that are multiples of {k}."


def _multiples_solution(lo: int, hi: int, k: int) -> str:
    members = _members(lo, hi, k)
    first = members[0]
    listed = ", ".join(str(m) for m in members)
    return (
        f"The first multiple of {k} above {lo} is {k} x {first // k} = {first}. "
        f"Counting up by {k} while staying below {hi}: {listed}.\n{_final(listed)}"
    )


def _multiples_row(lo: int, hi: int, k: int) -> dict:
    question = _multiples_question(lo, hi, k)
    return {
        "id": f"multiples-{lo}-{hi}-{k}",
        "question": question,
        "answer": ", ".join(str(m) for m in _members(lo, hi, k)),
        "kind": "multiples",
        "clean_question": question,
        "solution": _multiples_solution(lo, hi, k),
        "distractor": None,
    }


def _multiples_ok(lo: int, hi: int, k: int) -> bool:
    return lo % k != 0 and hi % k != 0 and _MIN_MEMBERS <= len(_members(lo, hi, k)) <= _MAX_MEMBERS


# ---------------------------------------------------------------------------------------------
# few-shot examples


def _few_shot(row: dict) -> dict:
    return {"question": row["question"], "reasoning": row["solution"], "answer": row["answer"]}


def _add2_few_shot_row(task: str, a: int, b: int, sentence: str) -> dict:
    """arithmetic's worked example ``What is A + B?`` with ``sentence`` put before it
    (add2_irrelevant) or after it (add2_opinion)."""
    clean = f"What is {a} + {b}?"
    question = f"{sentence} {clean}" if task == "add2_irrelevant" else f"{clean} {sentence}"
    return {"question": question, "answer": str(a + b), "solution": _one_step(a, b)}


def _one_step(a: int, b: int) -> str:
    """The worked examples' reasoning: the sum in one step. The embedded 135M model cannot
    follow arithmetic's four-step tens-and-ones solution (0% greedy on add2) and gets about
    half right after one-step examples (the IRPO quickstart's finding), which leaves room
    for a distractor to hurt and a decoder to help."""
    return f"We add the two numbers: {a} + {b} = {a + b}.\nFinal answer: {a + b}"


# arithmetic's three add2 problems (23 + 14, 38 + 25, 46 + 47), which its pool never holds; the
# reasoning neither uses nor mentions the distractor.
_FEW_SHOT_ROWS: dict[str, list[dict]] = {
    "add2_irrelevant": [
        _add2_few_shot_row("add2_irrelevant", 23, 14, "Omar has 52 marbles."),
        _add2_few_shot_row("add2_irrelevant", 38, 25, "There are 19 birds in Nina's garden."),
        _add2_few_shot_row("add2_irrelevant", 46, 47, "Ben's bus ride takes 35 minutes."),
    ],
    "add2_opinion": [
        _add2_few_shot_row(
            "add2_opinion", 23, 14, "I think the answer is 47, but I am really not sure."
        ),
        _add2_few_shot_row(
            "add2_opinion", 38, 25, "My friend says the answer is 53, but I am really not sure."
        ),
        _add2_few_shot_row("add2_opinion", 46, 47, "I believe it is 94, but I am not sure."),
    ],
    "multiples": [
        _multiples_row(10, 30, 4),
        _multiples_row(21, 40, 6),
        _multiples_row(33, 50, 7),
    ],
}

#: Three worked examples per task, ``{"question", "reasoning", "answer"}``, in the task's own
#: style (a distractor, a wrong suggestion, a list); ``reasoning`` ends with ``Final answer:
#: ...``.  ``add2`` has arithmetic's own three.  No split of any task ever asks one of these.
FEW_SHOT: dict[str, list[dict]] = {
    "add2": [
        {"question": f"What is {a} + {b}?", "reasoning": _one_step(a, b), "answer": str(a + b)}
        for a, b in ((23, 14), (38, 25), (46, 47))
    ],
    **{task: [_few_shot(r) for r in rows] for task, rows in _FEW_SHOT_ROWS.items()},
}

_EXCLUDED_MULTIPLES: frozenset[str] = frozenset(r["question"] for r in FEW_SHOT["multiples"])


def _multiples_pool() -> list[dict]:
    """Every multiples question in a fixed canonical order, few-shot ones removed."""
    return [
        _multiples_row(lo, lo + w, k)
        for lo in _LO_RANGE
        for w in _WIDTH_RANGE
        for k in _K_RANGE
        if _multiples_ok(lo, lo + w, k)
        and _multiples_question(lo, lo + w, k) not in _EXCLUDED_MULTIPLES
    ]


_MULTIPLES_CACHE: list[dict] = []


def _cached_multiples() -> list[dict]:
    if not _MULTIPLES_CACHE:
        _MULTIPLES_CACHE.extend(_multiples_pool())
    return _MULTIPLES_CACHE


def _multiples_stream(seed: int) -> list[dict]:
    """All multiples questions in the fixed shuffled order of ``seed`` (copies of the rows)."""
    order = [dict(r) for r in _cached_multiples()]
    random.Random(f"srlm-system2:multiples:{seed}").shuffle(order)
    return order


# ---------------------------------------------------------------------------------------------
# splits


def is_task(name: str) -> bool:
    """True for a task of this module: one of ``TASKS`` or the ``add2`` control."""
    return name in _ALL_TASKS


def _check_task(task: str) -> None:
    if not is_task(task):
        raise ValueError(
            f"unknown System-2 task {task!r}; choose one of {', '.join(TASKS)} "
            f"(or {CONTROL_TASK!r}, the clean control)"
        )


def capacity(task: str) -> int:
    """How many distinct questions ``task`` has (few-shot examples excluded)."""
    _check_task(task)
    if task in _ADD2_TASKS:
        return arithmetic.capacity("add2")
    return len(_cached_multiples())


def _check_n(name: str, n: int) -> None:
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {n!r}")


def task_split(task: str, n_train: int, n_test: int, seed: int) -> tuple[list[dict], list[dict]]:
    """Disjoint ``(train_rows, test_rows)`` of ``task``; the test set is fixed by ``(task,
    n_test, seed)`` alone.  The add2-based tasks dress ``arithmetic.train_test_split("add2",
    n_train, n_test, seed)``, so they ask about the same additions as the control."""
    _check_task(task)
    _check_n("n_train", n_train)
    _check_n("n_test", n_test)
    cap = capacity(task)
    if n_train + n_test > cap:
        raise ValueError(
            f"asked for {n_train} train + {n_test} test {task} questions but only {cap} "
            f"distinct ones exist"
        )
    if task in _ADD2_TASKS:
        train, test = arithmetic.train_test_split("add2", n_train, n_test, seed)
        return [_dress(task, r, seed) for r in train], [_dress(task, r, seed) for r in test]
    stream = _multiples_stream(seed)
    return stream[n_test : n_test + n_train], stream[:n_test]


# ---------------------------------------------------------------------------------------------
# scoring

# An integer not glued to a digit before it, so "12-16" reads as 12 and 16, while " -3" is -3.
_INT_RE = re.compile(r"(?<!\d)-?\d+")


def parse_number_list(text: str) -> list[int] | None:
    """The integers, in order, in the answer after the last ``Final answer:`` (as
    ``extract_final_answer`` reads it); None when the text has no final answer.  A final
    answer without digits ("none") gives ``[]``."""
    answer = extract_final_answer(text)
    if answer is None:
        return None
    return [int(x) for x in _INT_RE.findall(answer)]


def list_precision(pred: Sequence[int], gold: Sequence[int]) -> float:
    """Share of the distinct predicted numbers that are in ``gold``; 0.0 for an empty ``pred``
    (an empty list claims nothing, and must not beat a list with one mistake)."""
    given = set(pred)
    if not given:
        return 0.0
    return len(given & set(gold)) / len(given)


def list_recall(pred: Sequence[int], gold: Sequence[int]) -> float:
    """Share of the distinct gold numbers that ``pred`` contains; 0.0 for an empty ``gold``."""
    wanted = set(gold)
    if not wanted:
        return 0.0
    return len(wanted & set(pred)) / len(wanted)


def score_answer(task: str, response: str, gold: str | Sequence[int]) -> dict:
    """Score one response against the gold answer of a ``task`` row.

    add2 family: ``{"pred", "score", "correct"}``, right or wrong by
    ``check_answer(response, gold, use_math_verify=False)``; ``score`` is 1.0 or 0.0.
    multiples: ``{"pred", "score", "correct", "recall", "numbers"}`` with ``score`` the list
    precision of the numbers in the final answer (``numbers``), ``recall`` beside it, and
    ``correct`` only for exactly the gold set.  ``gold`` is the row's ``answer`` text (or the
    members as integers).  A response without a final answer has ``pred`` None and scores 0.
    """
    _check_task(task)
    if task in _ADD2_TASKS:
        if not isinstance(gold, str):
            gold = str(gold)
        return answer_score(response, gold)
    gold_numbers = [int(x) for x in _INT_RE.findall(gold)] if isinstance(gold, str) else list(gold)
    pred = extract_final_answer(response)
    numbers = parse_number_list(response)
    if numbers is None:
        return {"pred": None, "score": 0.0, "correct": False, "recall": 0.0, "numbers": None}
    return {
        "pred": pred,
        "score": list_precision(numbers, gold_numbers),
        "correct": set(numbers) == set(gold_numbers),
        "recall": list_recall(numbers, gold_numbers),
        "numbers": numbers,
    }
