"""The rows of the stage files that more than one method writes, typed by the fields srlm's own
readers (training, the report, the logger) rely on. A method adds what else it wants to a row;
these fields it must write, and :meth:`srlm.rundir.RunDir.write_rows` refuses a row without them
(a method's bug, named at once), as :meth:`~srlm.rundir.RunDir.read_rows` refuses a file without
them (a run written by hand or by another program, named by file, line and field).

Files of one method only (IRPO's rewards, the thinking judge's triples, plans and executions,
TPO's split, Meta-Rewarding's meta-judgements) are read by that method alone and are not typed
here.
"""

# No `from __future__ import annotations` here: TypedDict reads which keys are required from
# the class bodies at run time.
from typing import TypedDict


class PromptRow(TypedDict):
    """prompts.jsonl: an instruction written or taken for this iteration."""

    id: str
    instruction: str


class SampleRow(TypedDict):
    """samples.jsonl: one sampled output of the policy."""

    sample: int  # index among its prompt's samples
    tokens: int
    finish_reason: str  # "stop" | "length"


class _JudgementDetails(TypedDict, total=False):
    judgements: list[str]  # a pointwise judge's raw texts
    scores: list  # each judgement's score, None where unreadable


class JudgementRow(_JudgementDetails):
    """judgements.jsonl: a response and its score."""

    score: float | None  # None: the source could not score it


class _PairLengths(TypedDict, total=False):
    chosen_tokens: int
    rejected_tokens: int


class PairRow(_PairLengths):
    """pairs.jsonl (and Meta-Rewarding's actor_pairs / judge_pairs): a training pair."""

    chosen: str
    rejected: str


STAGE_ROWS: dict[str, type] = {
    "prompts": PromptRow,
    "samples": SampleRow,
    "judgements": JudgementRow,
    "pairs": PairRow,
    "actor_pairs": PairRow,
    "judge_pairs": PairRow,
}


def missing_fields(stage: str, row: dict) -> list[str]:
    """The fields a row of this stage must have and lacks ([] for untyped stages)."""
    row_type = STAGE_ROWS.get(stage)
    if row_type is None:
        return []
    return sorted(k for k in row_type.__required_keys__ if k not in row)
