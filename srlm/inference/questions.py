"""Held-out questions with gold answers, on which decoders are compared (eval.questions).

A :class:`QuestionSet` is what the comparison needs: the rows, the conversation that asks
each one (the task's instruction and worked examples, then the question) and the rule that
scores an answer. It comes from

- ``task:NAME``: a task srlm builds (srlm.data.system2_tasks: ``add2``, ``add2_irrelevant``,
  ``add2_opinion``, ``multiples``), its test split of ``eval.max_questions`` rows (data seed
  0, so every run and seed is measured on the same questions);
- a file of ``{"question", "answer"}`` rows (a path, a shipped name, ``hf:...``: read like
  every evaluation set, srlm.eval.data), asked with IRPO's instruction and scored by its rule
  (a GSM8K answer's ``#### N`` is the gold number);
- the method's own held-out questions when eval.questions is null (``Method.eval_questions``:
  IRPO's test questions with its prompts; system2_distill's task).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

from srlm.core.stats import mean
from srlm.data import system2_tasks as tasks
from srlm.inference.base import QuestionSet
from srlm.rewards.verifiable import answer_score

TASK_PREFIX = "task:"
# Every run measures a task on the same held-out questions, whatever its seed.
TASK_SEED = 0


def task_messages(task: str, question: str) -> list[dict]:
    """A task's question as asked: its instruction, its worked examples, the question."""
    messages = [{"role": "system", "content": tasks.INSTRUCTION[task]}]
    for s in tasks.FEW_SHOT[task]:
        messages += [
            {"role": "user", "content": s["question"]},
            {"role": "assistant", "content": s["reasoning"]},
        ]
    return messages + [{"role": "user", "content": question}]


def task_score(task: str) -> Callable[[str | None, str], dict]:
    def score(response: str | None, gold: str) -> dict:
        if response is None:
            return {"pred": None, "score": 0.0, "correct": False}
        return tasks.score_answer(task, response, gold)

    return score


def task_questions(task: str, n: int, seed: int = TASK_SEED, n_train: int = 0) -> QuestionSet:
    _, test = tasks.task_split(task, n_train, n, seed)
    return QuestionSet(
        f"{TASK_PREFIX}{task}", test, lambda r: task_messages(task, r["question"]), task_score(task)
    )


def file_messages(question: str) -> list[dict]:
    """A question of a file, asked zero-shot with IRPO's instruction (end with "Final
    answer: ...")."""
    from srlm.methods.irpo import INSTRUCTION

    return [{"role": "system", "content": INSTRUCTION}, {"role": "user", "content": question}]


def file_questions(source: str, fields: dict, limit: int | None) -> QuestionSet:
    from srlm.eval.data import load_eval_set
    from srlm.methods.irpo import parse_gold

    rows = [
        {"id": q.id, "question": q.question, "answer": parse_gold(q.answer)[0]}
        for q in load_eval_set(source, "qa", fields or None, limit)
    ]
    return QuestionSet(source, rows, lambda r: file_messages(r["question"]), answer_score)


def load_questions(eval_config, method) -> QuestionSet | None:
    """The questions the decoders are compared on: eval.questions, else the method's own."""
    source = eval_config.questions
    if source is None:
        # The pre-flight passes the method's class (srlm.preflight.check_data): its questions
        # are its own data, checked there on their own.
        if isinstance(method, type):
            return None
        qs = method.eval_questions()
        if qs is not None and eval_config.max_questions:
            qs = dataclasses.replace(qs, rows=qs.rows[: eval_config.max_questions])
        return qs
    if source.startswith(TASK_PREFIX):
        name = source[len(TASK_PREFIX) :]
        if not tasks.is_task(name):
            from srlm.data import DataError

            raise DataError(
                f"eval.questions={source}: no such task; tasks srlm builds: "
                f"{', '.join(tasks.TASKS)}"
            )
        return task_questions(name, eval_config.max_questions or 40)
    return file_questions(source, eval_config.question_fields, eval_config.max_questions)


def decode_questions(decoder, qs: QuestionSet, queries: list, engine) -> tuple[list[dict], dict]:
    """One decoder's answers to a question set, scored: a row per question (with the
    decoder's intermediate texts) and the figures over them. The engine should already be
    started: its start is not the decoder's cost."""
    started = time.time()
    try:
        out = decoder.decode(queries, engine)
    finally:
        decoder.close()
    seconds = time.time() - started
    rows = [
        {
            "question_id": r["id"],
            "question": r["question"],
            "gold": q.gold,
            "response": d.response,
            **qs.score(d.response, q.gold),
            "tokens": d.tokens,
            "answer_tokens": d.answer_tokens,
            "calls": d.calls,
            "finish_reason": d.finish_reason,
            "failures": d.failures,
            "trace": d.trace,
        }
        for r, q, d in zip(qs.rows, queries, out, strict=True)
    ]
    return rows, decoded_stats(rows, seconds)


def decoded_stats(rows: list[dict], seconds: float) -> dict:
    """One decoder's figures over its answered questions: accuracy (exact answers), score
    (the same for numbers; precision for list answers), tokens and sequences generated per
    answer, the share with a step that could not be read, wall time."""
    n = max(len(rows), 1)
    return {
        "questions": len(rows),
        "accuracy": mean(float(r["correct"]) for r in rows),
        "score": mean(r["score"] for r in rows),
        "answered_rate": sum(r["pred"] is not None for r in rows) / n,
        "tokens": mean(r["tokens"] for r in rows),
        "calls": mean(r["calls"] for r in rows),
        "failure_rate": sum(bool(r["failures"]) for r in rows) / n,
        "seconds": seconds,
    }
