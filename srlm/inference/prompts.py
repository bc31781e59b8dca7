"""The decoders' prompts and the parsers of what the model writes back (pure; unit-tested).

Prompts are srlm's own words for the steps the papers describe (../shared/reference/system2.md):
Chain-of-Verification's plan, verification and revision (Dhuliawala et al. 2023), System 2
Attention's rewrite (Weston & Sukhbaatar 2023) and Branch-Solve-Merge's branch, solve and
merge (Saha et al. 2024).

Parse formats (an unreadable step is counted by the decoder and the step falls back, never
a crash):

- a list of questions or sub-tasks: one per line, numbered ("1." "2)" "Q1:") or bulleted
  ("-" "*"); ``parse_numbered`` keeps the first ``k`` distinct ones;
- CoVe's joint plan and two-step answers: ``parse_qa_pairs`` reads "Q1: ... / A1: ..." and
  ``parse_numbered`` the numbered answers;
- S2A's rewrite: a line starting "Context:" and a later line starting "Question:"
  (``parse_rewrite``); the context may be empty (nothing in the text was relevant).
"""

from __future__ import annotations

import re

# ---------------------------------------------------------------- parsers

_ITEM = re.compile(r"^\s*(?:(?:q(?:uestion)?\s*)?\d{1,2}\s*[.):\-]|[-*\u2022])\s*(.+?)\s*$", re.I)


def parse_numbered(text: str, k: int) -> list[str]:
    """The first `k` distinct items of a numbered or bulleted list in `text` (case and
    surrounding spaces ignored when comparing); [] when there is none."""
    out: list[str] = []
    seen: set[str] = set()
    for line in text.splitlines():
        m = _ITEM.match(line)
        if m is None:
            continue
        item = m.group(1).strip()
        key = item.lower()
        if item and key not in seen:
            seen.add(key)
            out.append(item)
        if len(out) == k:
            break
    return out


_QA = re.compile(r"^\s*([QA])\s*(\d{1,2})?\s*[:.)]\s*(.*?)\s*$", re.I)


def parse_qa_pairs(text: str, k: int) -> list[tuple[str, str]]:
    """(question, answer) pairs written as "Q1: ..." then "A1: ..." lines, at most `k`; a
    question without an answer line is left out."""
    pairs: list[tuple[str, str]] = []
    question: str | None = None
    for line in text.splitlines():
        m = _QA.match(line)
        if m is None:
            continue
        kind, body = m.group(1).upper(), m.group(3)
        if kind == "Q":
            question = body or None
        elif question is not None and body:
            pairs.append((question, body))
            question = None
            if len(pairs) == k:
                break
    return pairs


_CONTEXT = re.compile(r"^\s*\**context\**\s*:\s*(.*)$", re.I)
_QUESTION = re.compile(r"^\s*\**question\**\s*:\s*(.*)$", re.I)


def parse_rewrite(text: str) -> tuple[str, str] | None:
    """S2A's two labelled parts, ``(context, question)``: the text after "Context:" up to the
    "Question:" line, and the question (to the end of the text); None without both labels or
    with an empty question."""
    lines = text.splitlines()
    start = next((i for i, x in enumerate(lines) if _CONTEXT.match(x)), None)
    if start is None:
        return None
    qline = next((i for i in range(start + 1, len(lines)) if _QUESTION.match(lines[i])), None)
    if qline is None:
        return None
    context = "\n".join([_CONTEXT.match(lines[start]).group(1), *lines[start + 1 : qline]])
    question = "\n".join([_QUESTION.match(lines[qline]).group(1), *lines[qline + 1 :]]).strip()
    if not question:
        return None
    return context.strip(), question


# ---------------------------------------------------------------- Chain-of-Verification
def cove_plan(question: str, draft: str, k: int) -> str:
    return (
        f"Question: {question}\n\nDraft answer: {draft}\n\n"
        f"Write up to {k} short questions that check the facts this draft answer states, one "
        "per numbered line (1., 2., ...). Each question must stand on its own and be answerable "
        "without seeing the draft. Write only the questions."
    )


def cove_joint(question: str, draft: str, k: int) -> str:
    return (
        f"Question: {question}\n\nDraft answer: {draft}\n\n"
        f"Write up to {k} short questions that check the facts this draft answer states, and "
        'answer each one, as lines "Q1: ..." then "A1: ...", "Q2: ..." then "A2: ...".'
    )


def cove_two_step(questions: list[str]) -> str:
    listed = "\n".join(f"{i + 1}. {q}" for i, q in enumerate(questions))
    return (
        "Answer each of these questions briefly and correctly, one numbered line per question "
        f"(1., 2., ...):\n{listed}"
    )


def cove_revision(question: str, draft: str, checks: list[tuple[str, str]]) -> str:
    shown = "\n".join(f"Q: {q}\nA: {a}" for q, a in checks)
    return (
        f"{question}\n\n(A draft answer to this was: {draft.strip()}\n"
        f"These checks were answered independently of the draft:\n{shown}\n"
        "Write the final answer: keep what the checks confirm and correct what they "
        "contradict.)"
    )


# ---------------------------------------------------------------- System 2 Attention
def s2a_rewrite(text: str) -> str:
    return (
        "Below is a text written by a user. Extract from it the part that is relevant to the "
        "question it asks, leaving out anything irrelevant and any opinion or suggested "
        "answer of the user, so that this part alone is good context for answering. Write "
        'two labelled parts: "Context:" with the relevant text (it may be empty), then '
        '"Question:" with the question alone.\n\n'
        f"Text by the user:\n{text}"
    )


def s2a_answer(context: str, question: str, original: str | None = None) -> str:
    body = f"{context}\n{question}".strip() if context else question
    if original is None:
        return body
    return f"{original}\n\n(The relevant part of this text: {body})"


# ---------------------------------------------------------------- Branch-Solve-Merge
def bsm_branch(question: str, k: int) -> str:
    return (
        f"Task: {question}\n\n"
        f"Break this task into 2 to {k} smaller sub-tasks that can be solved independently "
        "and together solve it, one per numbered line (1., 2., ...). Write only the sub-tasks."
    )


def bsm_solve(question: str, sub_task: str) -> str:
    return f"The whole task: {question}\n\nSolve only this part of it, briefly: {sub_task}"


def bsm_merge(question: str, solved: list[tuple[str, str]]) -> str:
    shown = "\n".join(f"- {s}: {a.strip()}" for s, a in solved)
    return (
        f"{question}\n\n(Parts of this task were solved separately:\n{shown}\n"
        "Combine them into one answer to the whole task.)"
    )
