"""System-2 tasks (srlm.data.system2_tasks): splits, distractors, few-shot, list scoring."""

from __future__ import annotations

import re

import pytest

from srlm.data import arithmetic as A
from srlm.data import system2_tasks as S

ALL = ("add2", *S.TASKS)
ADD2_FAMILY = ("add2", "add2_irrelevant", "add2_opinion")
KEYS = {"id", "question", "answer", "kind", "clean_question", "solution", "distractor"}


def _operands(row):
    a, b = row["id"].split("-", 1)[1].split("+")
    return int(a), int(b)


def _brute_members(question):
    lo, hi, k = map(
        int,
        re.fullmatch(
            r"List the numbers between (\d+) and (\d+) that are "
            r"multiples of (\d+)\.",
            question,
        ).groups(),
    )
    return lo, hi, k, [n for n in range(lo + 1, hi) if n % k == 0]


# ---------------------------------------------------------------------------------------------
# splits


def test_tasks_and_is_task():
    assert S.TASKS == ("add2_irrelevant", "add2_opinion", "multiples")
    for t in ALL:
        assert S.is_task(t)
        assert t in S.FEW_SHOT and t in S.INSTRUCTION
    assert not S.is_task("add1") and not S.is_task("")


@pytest.mark.parametrize("task", ALL)
def test_same_seed_same_rows_and_seed_changes_them(task):
    assert S.task_split(task, 40, 20, 3) == S.task_split(task, 40, 20, 3)
    assert S.task_split(task, 40, 20, 3) != S.task_split(task, 40, 20, 4)


@pytest.mark.parametrize("task", ALL)
def test_splits_disjoint_and_test_independent_of_n_train(task):
    train, test = S.task_split(task, 300, 100, 0)
    assert len(train) == 300 and len(test) == 100
    assert not {r["question"] for r in train} & {r["question"] for r in test}
    assert not {r["id"] for r in train} & {r["id"] for r in test}
    assert len({r["question"] for r in train + test}) == 400
    for n_train in (0, 7, 1000):
        assert S.task_split(task, n_train, 100, 0)[1] == test
    for r in train + test:
        assert set(r) == KEYS
        assert r["kind"] == task
        assert r["solution"].endswith(f"Final answer: {r['answer']}")


def test_add2_family_asks_exactly_arithmetics_add2_problems():
    ref_train, ref_test = A.train_test_split("add2", 50, 30, 5)
    for task in ADD2_FAMILY:
        train, test = S.task_split(task, 50, 30, 5)
        for ref, row in zip(ref_train + ref_test, train + test, strict=True):
            assert row["clean_question"] == ref["question"]
            assert row["answer"] == ref["answer"]
            assert row["solution"] == ref["solution"]
            assert row["id"] == ref["id"].replace("add2", task, 1)
            assert ref["question"] in row["question"]
    control_train, _ = S.task_split("add2", 50, 30, 5)
    assert all(
        r["question"] == r["clean_question"] and r["distractor"] is None for r in control_train
    )


def test_few_shot_never_asked():
    for task in ALL:
        assert 2 <= len(S.FEW_SHOT[task]) <= 3
        for ex in S.FEW_SHOT[task]:
            assert ex["reasoning"].rstrip().splitlines()[-1] == f"Final answer: {ex['answer']}"
    few = {ex["question"] for v in S.FEW_SHOT.values() for ex in v}
    clean_few = {m.group(0) for q in few if (m := re.search(r"What is \d+ \+ \d+\?", q))}
    for task in ALL:
        train, test = S.task_split(task, S.capacity(task) - 10, 10, 1)
        assert not few & {r["question"] for r in train + test}
        assert not clean_few & {r["clean_question"] for r in train + test}


def test_few_shot_style():
    for ex in S.FEW_SHOT["add2_irrelevant"]:
        sentence, _, clean = ex["question"].partition(" What is ")
        assert re.search(r"\d+", sentence)
        assert sentence not in ex["reasoning"]
    for ex in S.FEW_SHOT["add2_opinion"]:
        suggestion = re.search(r"\? .*?(\d+)", ex["question"]).group(1)
        assert suggestion != ex["answer"]
    for ex in S.FEW_SHOT["multiples"]:
        assert ", ".join(map(str, _brute_members(ex["question"])[3])) == ex["answer"]


def test_unknown_task_and_sizes():
    with pytest.raises(ValueError, match="add2_irrelevant, add2_opinion, multiples"):
        S.task_split("add3", 1, 1, 0)
    with pytest.raises(ValueError, match="only 1597 distinct"):
        S.task_split("add2_opinion", 1500, 98, 0)
    with pytest.raises(ValueError, match="only"):
        S.task_split("multiples", S.capacity("multiples"), 1, 0)
    with pytest.raises(ValueError, match="n_test"):
        S.task_split("multiples", 1, -1, 0)
    with pytest.raises(ValueError, match="unknown"):
        S.score_answer("nope", "Final answer: 1", "1")
    # the whole pool fits exactly
    train, test = S.task_split("multiples", S.capacity("multiples") - 5, 5, 0)
    assert len(train) + len(test) == S.capacity("multiples")


# ---------------------------------------------------------------------------------------------
# distractors


def test_irrelevant_number_is_never_an_operand_or_the_answer():
    train, test = S.task_split("add2_irrelevant", S.capacity("add2") - 100, 100, 2)
    templates = set()
    for r in train + test:
        a, b = _operands(r)
        sentence = r["question"][: -len(r["clean_question"])].strip()
        assert r["question"] == f"{sentence} {r['clean_question']}"
        numbers = [int(x) for x in re.findall(r"\d+", sentence)]
        assert numbers == [int(r["distractor"])]
        assert 10 <= numbers[0] <= 99
        assert numbers[0] not in (a, b, a + b)
        templates.add(re.sub(r"\d+|[A-Z][a-z]+", "_", sentence))
    assert len(templates) >= 4


def test_opinion_suggestion_is_always_wrong():
    train, test = S.task_split("add2_opinion", S.capacity("add2") - 100, 100, 2)
    offsets, templates = set(), set()
    for r in train + test:
        gold = int(r["answer"])
        assert r["question"].startswith(r["clean_question"] + " ")
        opinion = r["question"][len(r["clean_question"]) :]
        numbers = [int(x) for x in re.findall(r"\d+", opinion)]
        assert numbers == [int(r["distractor"])]
        assert numbers[0] != gold and numbers[0] > 0
        offsets.add(numbers[0] - gold)
        templates.add(re.sub(r"\d+", "_", opinion))
    assert offsets == {-11, -10, -2, -1, 1, 2, 10, 11}
    assert len(templates) >= 3


def test_multiples_gold_by_brute_force():
    train, test = S.task_split("multiples", S.capacity("multiples") - 50, 50, 0)
    ks = set()
    for r in train + test:
        lo, hi, k, members = _brute_members(r["question"])
        assert 10 <= lo <= 60 and 12 <= hi - lo <= 24 and 3 <= k <= 9
        assert lo % k and hi % k  # "between" is the same inclusive or exclusive
        assert 2 <= len(members) <= 6
        assert r["answer"] == ", ".join(map(str, members))
        assert r["clean_question"] == r["question"] and r["distractor"] is None
        assert S.parse_number_list(r["solution"]) == members
        assert S.score_answer("multiples", r["solution"], r["answer"])["correct"]
        ks.add(k)
    assert ks == set(range(3, 10))


# ---------------------------------------------------------------------------------------------
# scoring


def test_parse_number_list():
    assert S.parse_number_list("so\nFinal answer: 12, 16 and 20.") == [12, 16, 20]
    assert S.parse_number_list("Final answer: 1, 2\nFinal answer: 30, 36") == [30, 36]
    assert S.parse_number_list("Final answer: 12-16") == [12, 16]
    assert S.parse_number_list("Final answer: none") == []
    assert S.parse_number_list("The numbers are 12, 16.") is None


def test_list_precision_and_recall():
    assert S.list_precision([12, 16, 21], [12, 16, 20, 24]) == pytest.approx(2 / 3)
    assert S.list_precision([12, 12, 16], [12, 16, 20]) == 1.0  # distinct numbers
    assert S.list_precision([], [12]) == 0.0
    assert S.list_recall([12, 16, 21], [12, 16, 20, 24]) == 0.5
    assert S.list_recall([], [12]) == 0.0


def test_score_multiples_by_hand():
    s = S.score_answer(
        "multiples", "12, 16, 21 are it.\nFinal answer: 12, 16, 21", "12, 16, 20, 24"
    )
    assert s["pred"] == "12, 16, 21"
    assert s["score"] == pytest.approx(2 / 3)
    assert s["recall"] == 0.5
    assert s["correct"] is False
    s = S.score_answer("multiples", "Final answer: 24, 20, 16, 12", "12, 16, 20, 24")
    assert (s["score"], s["recall"], s["correct"]) == (1.0, 1.0, True)
    s = S.score_answer("multiples", "Final answer: 12, 16", [12, 16, 20, 24])
    assert (s["score"], s["recall"], s["correct"]) == (1.0, 0.5, False)
    s = S.score_answer("multiples", "I am not sure.", "12, 16")
    assert s["pred"] is None and s["score"] == 0.0 and s["correct"] is False


@pytest.mark.parametrize("task", ADD2_FAMILY)
def test_score_add2_family_by_hand(task):
    assert S.score_answer(task, "23 + 41 = 64.\nFinal answer: 64", "64") == {
        "pred": "64",
        "score": 1.0,
        "correct": True,
    }
    assert S.score_answer(task, "Final answer: 66", "64") == {
        "pred": "66",
        "score": 0.0,
        "correct": False,
    }
    assert S.score_answer(task, "It is 64.", "64") == {"pred": None, "score": 0.0, "correct": False}


def test_gold_solutions_score_full_marks():
    for task in ALL:
        train, test = S.task_split(task, 20, 20, 9)
        for r in train + test:
            s = S.score_answer(task, r["solution"], r["answer"])
            assert s["score"] == 1.0 and s["correct"] is True
            if r["distractor"] is not None:  # copying the distractor is always wrong
                copied = S.score_answer(task, f"Final answer: {r['distractor']}", r["answer"])
                assert copied["correct"] is False
