"""Evaluation sets: prompts to answer, labelled pairs to judge, questions with gold answers.

``load_eval_set(source, shape, fields, limit)`` reads one set. ``source`` is

- a path to a ``.jsonl`` file (``~`` is expanded);
- the name of a file shipped in ``srlm/data`` (``eval_prompts``, ``eval_mt``, ``eval_pairs``;
  ``builtin:NAME`` works too). A bare name without ``/`` or ``.jsonl`` always means the
  shipped file, whatever the working directory holds, so a config means the same everywhere;
  write ``./NAME`` for a local file of that name;
- ``hf:ORG/NAME[:CONFIG]:SPLIT``, a Hugging Face dataset read by ``srlm.data``'s loader; it
  must already be in the local cache (these machines have no network).

The rows may come in these shapes (``shape="auto"`` decides from the first row's fields):

=========  ===========================================================  =================
shape      row                                                          gives
=========  ===========================================================  =================
prompts    ``{"turns": [t1, t2, ...]}`` (MT-Bench),                     ``EvalPrompt``
           ``{"instruction", "input"?}`` (AlpacaEval), ``{"prompt"}``;
           optional ``"reference"`` or ``"output"``
pairs      ``{"prompt", "chosen", "rejected"}`` (RewardBench),          ``LabelledPair``
           optional ``"subset"``
qa         ``{"question", "answer"}`` (GSM8K)                           ``QA``
=========  ===========================================================  =================

An AlpacaEval-style ``input`` is appended to the instruction after a blank line (AlpacaEval
merged AlpacaFarm's instruction and input fields the same way); AlpacaEval's ``output`` is the
reference answer. A GSM8K answer is kept as written, worked solution and ``#### N`` included:
IRPO reads the gold number from it itself (a bare number is kept as text). MT-Bench gives a list
of references, one per turn, with an empty string for a turn that has none (its question 133
has a reference for turn 2 only): ``EvalPrompt.references`` holds one per turn, None where
there is none. The real files load as they are: MT-Bench's ``question.jsonl``, AlpacaEval's
``alpaca_eval.json`` rows written one per line, RewardBench's and GSM8K's rows.

``fields`` renames the file's fields to ours (``{"instruction": "query"}`` reads the file's
``query`` as our ``instruction``). A row's id is its ``id`` or ``question_id`` when it has one,
else its line number (its row index for a Hugging Face dataset).

Every row is checked before anything is returned, because the sets are read by the parent
process at start: a line that is not JSON, a missing or null field, a field of the wrong type,
empty text or a repeated id raise ``DataError("PATH:LINE: ...")`` naming the field.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from srlm.data import (
    ID,
    TEXT,
    TEXT_OR_NUMBER,
    DataError,
    _check_field_map,
    _map_and_check,
    _preview,
    builtin_names,
    builtin_path,
    check_kind,
    load_rows,
    looked_in,
    read_jsonl,
)

__all__ = [
    "QA",
    "SHAPES",
    "EvalPrompt",
    "LabelledPair",
    "load_eval_set",
]

SHAPES = ("prompts", "pairs", "qa")

# The field names `fields` may map; a key outside these is a typo that would otherwise only
# surface later as a confusing "missing field".
_OUR_FIELDS = (
    "id",
    "question_id",
    "turns",
    "instruction",
    "input",
    "prompt",
    "reference",
    "output",
    "chosen",
    "rejected",
    "subset",
    "question",
    "answer",
)
_PROMPT_FIELDS = ("turns", "instruction", "prompt")


@dataclass
class EvalPrompt:
    """A prompt to answer: one turn (AlpacaEval-style) or several (MT-Bench), with a reference
    answer per turn (None for a turn without one; all None when not given)."""

    id: str
    turns: list[str]
    references: list[str | None] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not isinstance(self.references, list):
            raise TypeError(f"references must be a list, one per turn; got {self.references!r}")
        if not self.references:
            self.references = [None] * len(self.turns)
        elif len(self.references) != len(self.turns):
            raise ValueError(
                f"{len(self.references)} references for {len(self.turns)} turns; give one per "
                "turn (None where a turn has none)"
            )

    @property
    def instruction(self) -> str:
        return self.turns[0]

    @property
    def reference(self) -> str | None:
        """The first turn's reference answer."""
        return self.references[0]


@dataclass
class LabelledPair:
    """A prompt with a response known to be better (``chosen``) than the other (``rejected``);
    ``subset`` is RewardBench's subset of the pair (``alpacaeval-easy``, ``math-prm``, ...),
    which decides its section in the scores (srlm.eval.metrics.rewardbench_scores)."""

    id: str
    prompt: str
    chosen: str
    rejected: str
    subset: str | None = None


@dataclass
class QA:
    """A question with its gold answer as the data set writes it."""

    id: str
    question: str
    answer: str


# ---------------------------------------------------------------------------------------------
# field checks; `where` is the "PATH:LINE" (or dataset row) prefix of every message


def _text(row: dict, name: str, where: str, fields: Mapping[str, str]) -> str:
    check_kind(row, name, TEXT, where, fields)
    return row[name]


def _turns(row: dict, where: str, fields: Mapping[str, str]) -> list[str]:
    value = row["turns"]
    looked = looked_in("turns", fields)
    if not isinstance(value, list) or not value:
        raise DataError(
            f"{where}: field 'turns'{looked} must be a non-empty list of texts, got "
            f"{_preview(value)}"
        )
    for i, turn in enumerate(value):
        if not isinstance(turn, str) or not turn.strip():
            raise DataError(
                f"{where}: field 'turns'{looked}: turn {i + 1} must be non-empty text, got "
                f"{_preview(turn)}"
            )
    return list(value)


def _references(row: dict, where: str, fields: Mapping[str, str], n: int) -> list[str | None]:
    """One reference per turn: ``reference`` (MT-Bench's per-turn list, or text for the first
    turn), else AlpacaEval's ``output``; None for a turn without one."""
    name = "reference" if row.get("reference") is not None else "output"
    value = row.get(name)
    if value is None:
        return [None] * n
    if not isinstance(value, list):
        return [_text(row, name, where, fields)] + [None] * (n - 1)
    refs: list[str | None] = []
    for i, ref in enumerate(value):
        if ref is not None and not isinstance(ref, str):
            raise DataError(
                f"{where}: field {name!r}{looked_in(name, fields)}: the reference of turn {i + 1} "
                f"must be text, got {type(ref).__name__}: {_preview(ref)}"
            )
        # MT-Bench writes "" for a turn without a reference (question 133: turn 2 only).
        refs.append(ref if ref and ref.strip() else None)
    # A reference past the last turn belongs to no answer.
    return refs[:n] + [None] * (n - len(refs))


def _row_id(row: dict, where: str, fallback: str, fields: Mapping[str, str]) -> str:
    for name in ("id", "question_id"):
        if row.get(name) is not None:
            check_kind(row, name, ID, where, fields)
            return str(row[name])
    return fallback


# ---------------------------------------------------------------------------------------------
# one row of each shape


def _prompt_row(row: Any, where: str, fields: Mapping[str, str], fallback: str) -> EvalPrompt:
    row = _map_and_check(row, where, None, fields)
    present = [f for f in _PROMPT_FIELDS if row.get(f) is not None]
    if not present:
        names = ", ".join(repr(f) for f in _PROMPT_FIELDS)
        raise DataError(
            f"{where}: a prompt row needs one of the fields {names} (none is present or all are "
            f"null); the row has fields {sorted(row)}: {_preview(row)}"
        )
    if present[0] == "turns":
        turns = _turns(row, where, fields)
    elif present[0] == "instruction":
        text = _text(row, "instruction", where, fields)
        extra = row.get("input")
        if extra is not None and not isinstance(extra, str):
            raise DataError(
                f"{where}: field 'input'{looked_in('input', fields)} must be text, got "
                f"{type(extra).__name__}: {_preview(extra)}"
            )
        # AlpacaFarm rows carry an empty input when the instruction stands alone.
        turns = [f"{text}\n\n{extra}" if extra and extra.strip() else text]
    else:
        turns = [_text(row, "prompt", where, fields)]
    refs = _references(row, where, fields, len(turns))
    return EvalPrompt(_row_id(row, where, fallback, fields), turns, refs)


def _pair_row(row: Any, where: str, fields: Mapping[str, str], fallback: str) -> LabelledPair:
    row = _map_and_check(row, where, ["prompt", "chosen", "rejected"], fields, ["subset"])
    prompt, chosen, rejected = (
        _text(row, f, where, fields) for f in ("prompt", "chosen", "rejected")
    )
    pair_id = _row_id(row, where, fallback, fields)
    return LabelledPair(pair_id, prompt, chosen, rejected, row.get("subset"))


def _qa_row(row: Any, where: str, fields: Mapping[str, str], fallback: str) -> QA:
    row = _map_and_check(row, where, ["question", "answer"], fields)
    question = _text(row, "question", where, fields)
    # Numeric gold answers are common outside GSM8K; QA keeps every answer as text.
    check_kind(row, "answer", TEXT_OR_NUMBER, where, fields)
    return QA(_row_id(row, where, fallback, fields), question, str(row["answer"]))


_READERS: dict[str, Callable[..., Any]] = {
    "prompts": _prompt_row,
    "pairs": _pair_row,
    "qa": _qa_row,
}


def _detect(row: Any, where: str, fields: Mapping[str, str]) -> str:
    row = _map_and_check(row, where, None, fields)
    has = {k for k, v in row.items() if v is not None}
    if {"chosen", "rejected"} <= has:
        return "pairs"
    if {"question", "answer"} <= has:
        return "qa"
    if has & set(_PROMPT_FIELDS):
        return "prompts"
    raise DataError(
        f"{where}: cannot tell the shape of this set from its first row, whose fields are "
        f"{sorted(row)}: expected 'turns', 'instruction' or 'prompt' (shape 'prompts'), "
        f"'prompt' + 'chosen' + 'rejected' (shape 'pairs') or 'question' + 'answer' (shape "
        f"'qa'). Map the file's names to these with `fields` or pass the shape."
    )


# ---------------------------------------------------------------------------------------------
# sources


def _line_numbers(path: Path) -> list[int]:
    """1-based numbers of the non-blank lines: the lines ``read_jsonl`` turns into rows."""
    with path.open("r", encoding="utf-8") as fh:
        return [i for i, line in enumerate(fh, 1) if line.strip()]


def _source_forms() -> str:
    return (
        f"a path to a .jsonl file, the name of a shipped file ({', '.join(builtin_names())}), "
        f"or hf:ORG/NAME[:CONFIG]:SPLIT"
    )


def _is_builtin_name(source: str) -> bool:
    return (
        "/" not in source
        and "\\" not in source
        and not source.endswith(".jsonl")
        and (not source.startswith((".", "~")))
    )


def _read_source(source: str, limit: int | None) -> tuple[list[dict], list[str], list[str]]:
    """``(rows, where of each row, fallback id of each row)``."""
    if source.startswith("hf:"):
        spec = source[len("hf:") :]
        parts = spec.split(":")
        if len(parts) not in (2, 3) or not all(p.strip() for p in parts):
            raise DataError(
                f"{source}: expected hf:ORG/NAME[:CONFIG]:SPLIT, e.g. hf:openai/gsm8k:main:test"
            )
        dataset, split = ":".join(parts[:-1]), parts[-1]
        rows = load_rows(f"hf:{dataset}", split=split, limit=limit)
        return (
            rows,
            [f"hf:{dataset}[{split}] row {i}" for i in range(len(rows))],
            [str(i) for i in range(len(rows))],
        )
    if source.startswith("builtin:"):
        path = builtin_path(source[len("builtin:") :])
    elif _is_builtin_name(source):
        if source not in builtin_names():
            raise DataError(
                f"{source!r}: no such shipped data file and not a path; a data source is "
                f"{_source_forms()}"
            )
        path = builtin_path(source)
    else:
        path = Path(source).expanduser()
        if not path.exists():
            raise DataError(f"{path}: data file not found (a data source is {_source_forms()})")
    rows = read_jsonl(path)
    lines = _line_numbers(path)
    return rows, [f"{path}:{n}" for n in lines], [str(n) for n in lines]


def load_eval_set(
    source: str,
    shape: str = "auto",
    fields: dict[str, str] | None = None,
    limit: int | None = None,
) -> list[EvalPrompt] | list[LabelledPair] | list[QA]:
    """The rows of ``source`` as ``EvalPrompt`` (shape ``prompts``), ``LabelledPair``
    (``pairs``) or ``QA`` (``qa``); ``shape="auto"`` decides from the first row.

    ``limit`` keeps the first ``limit`` rows; every row of a local file is still checked.
    Raises ``DataError`` naming the file, line and field of the first malformed row.
    """
    if not isinstance(source, str | os.PathLike) or not str(source).strip():
        raise DataError(f"evaluation data source must be {_source_forms()}, got {source!r}")
    if shape != "auto" and shape not in SHAPES:
        raise DataError(f"shape must be 'auto' or one of {', '.join(SHAPES)}, got {shape!r}")
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 0):
        raise DataError(f"limit must be a non-negative integer or None, got {limit!r}")
    _check_field_map(fields)
    fields = dict(fields or {})
    unknown = sorted(set(fields) - set(_OUR_FIELDS))
    if unknown:
        raise DataError(
            f"fields maps our field name to the file's; {unknown} is not one of ours "
            f"({', '.join(_OUR_FIELDS)})"
        )
    src = str(source).strip()
    rows, wheres, fallbacks = _read_source(src, limit)
    if not rows:
        raise DataError(f"{src}: the evaluation set has no rows")
    if shape == "auto":
        shape = _detect(rows[0], wheres[0], fields)
    read = _READERS[shape]
    items = []
    first_seen: dict[str, str] = {}
    for row, where, fallback in zip(rows, wheres, fallbacks, strict=True):
        item = read(row, where, fields, fallback)
        if item.id in first_seen:
            raise DataError(
                f"{where}: duplicate id {item.id!r} (also at {first_seen[item.id]}); ids must "
                f"be unique because answers and judgements are joined on them"
            )
        first_seen[item.id] = where
        items.append(item)
    return items if limit is None else items[:limit]
