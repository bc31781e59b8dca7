"""Data the project ships, and the loaders every stage uses to read rows.

A *source* names where rows come from (``load_rows``):

- a path to a ``.jsonl`` file (``~`` is expanded; a directory means ``DIR/<split>.jsonl``);
- ``builtin:NAME`` - a JSONL file shipped in this package (``builtin_names()`` lists them):
  ``seed_instructions`` (IFT-style prompts), ``seed_judgements`` (EFT examples for the
  additive 5-point judge), ``eval_prompts`` (held-out instructions);
- ``hf:ORG/NAME[:CONFIG]`` - a Hugging Face dataset through ``datasets.load_dataset``; these
  machines have no network, so it must already be in the local cache.

Every row is checked as it is read: a line that is not a JSON object, a row without a required
field, or a field of the wrong type (``FIELD_KINDS``: an ``instruction`` must be non-empty text,
a seed judgement's ``score`` a number, an IRPO ``answer`` text or a number) raises ``DataError``
naming the file and the 1-based line (or, for a Hugging Face dataset, the row index), the
field, and what was found.  A source with no rows at all is a ``DataError`` naming it.
``field_map`` renames fields from the file's names to ours (``{"question": "problem"}`` reads
the file's ``problem`` as our ``question``) before the check.

Verifiable arithmetic tasks for IRPO are generated, not shipped: see ``srlm.data.arithmetic``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from srlm.core.stats import is_number
from srlm.errors import SrlmError

__all__ = [
    "FIELD_KINDS",
    "ID",
    "NUMBER",
    "TEXT",
    "TEXT_OR_NUMBER",
    "DataError",
    "builtin_names",
    "builtin_path",
    "check_kind",
    "kind_problem",
    "load_rows",
    "looked_in",
    "read_jsonl",
]

_DATA_DIR = Path(__file__).resolve().parent
_SOURCE_FORMS = "a path to a .jsonl file, builtin:NAME, or hf:ORG/NAME[:CONFIG]"


class DataError(SrlmError, ValueError):
    """A data file or row that cannot be used; the message names the file and line."""


# What each field a method reads must hold, decided by how the readers use it: text is
# tokenised, stripped and compared, so a list or a number there fails far from the file (or
# turns into its repr in a prompt); a seed judgement's score is written as ``Score: {score:g}``
# and compared with ``ift_min_score``; an IRPO answer is a GSM8K worked solution (``... #### 72``)
# or a bare gold value, which files often store as a number.
TEXT, NUMBER, TEXT_OR_NUMBER, ID = "text", "number", "text or number", "id"
FIELD_KINDS: dict[str, str] = {
    "instruction": TEXT,
    "response": TEXT,
    "justification": TEXT,
    "score": NUMBER,
    "question": TEXT,
    "problem": TEXT,  # MATH's name for the question (scripts/math_triples.py)
    "answer": TEXT_OR_NUMBER,
    "solution": TEXT,
    "prompt": TEXT,
    "chosen": TEXT,
    "rejected": TEXT,
    # RewardBench's fine-grained subset of a labelled pair (srlm.eval.metrics.rewardbench_scores)
    "subset": TEXT,
    "id": ID,
}


# ---------------------------------------------------------------------------------------------
# helpers


def _preview(value: Any, limit: int = 160) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def kind_problem(kind: str, value: Any) -> str | None:
    """Why ``value`` is not a ``kind`` value (the end of a sentence starting with the field's
    name), or None when it is."""
    got = f"{type(value).__name__}: {_preview(value)}"
    if kind in (TEXT, TEXT_OR_NUMBER, ID) and isinstance(value, str):
        return None if value.strip() else f"is empty text: {_preview(value)}"
    if kind == TEXT:
        return f"must be text, got {got}"
    if kind in (NUMBER, TEXT_OR_NUMBER) and is_number(value):
        return None
    if kind == NUMBER:
        return f"must be a number, got {got}"
    if kind == TEXT_OR_NUMBER:
        return f"must be text or a number, got {got}"
    if kind == ID:
        ok = isinstance(value, int) and not isinstance(value, bool)
        return None if ok else f"must be text or an integer, got {got}"
    raise ValueError(f"unknown field kind {kind!r}")


def looked_in(name: str, field_map: Mapping[str, str] | None) -> str:
    """`` (read from the file's field 'x')`` when ``field_map`` renames ``name``, else ``""``."""
    src = (field_map or {}).get(name, name)
    return f" (read from the file's field {src!r})" if src != name else ""


def check_kind(
    row: Mapping, name: str, kind: str, where: str, field_map: Mapping[str, str] | None = None
) -> None:
    """Raise ``DataError("WHERE: field 'NAME' must be ...")`` unless ``row[name]`` is a ``kind``
    value."""
    problem = kind_problem(kind, row[name])
    if problem:
        raise DataError(f"{where}: field {name!r}{looked_in(name, field_map)} {problem}")


def _map_and_check(
    row: Any,
    where: str,
    required: Iterable[str] | None,
    field_map: Mapping[str, str] | None,
    optional: Iterable[str] | None = None,
) -> dict:
    """Rename fields (file name -> our name), check the required ones are present, and check
    the type (``FIELD_KINDS``) of each required field and of each ``optional`` one the row has;
    ``where`` is the ``file:line`` (or dataset row) prefix of any error."""
    if not isinstance(row, dict):
        raise DataError(
            f"{where}: expected a JSON object (one row per line), got "
            f"{type(row).__name__}: {_preview(row)}"
        )
    fmap = dict(field_map or {})
    if fmap:
        out = dict(row)
        for ours, theirs in fmap.items():
            if theirs in row:
                if ours != theirs:
                    out.pop(theirs, None)
                out[ours] = row[theirs]
        row = out
    required = list(required or ())
    for name in required:
        if name not in row or row[name] is None:
            state = "is null" if name in row else "is missing"
            raise DataError(
                f"{where}: required field {name!r}{looked_in(name, fmap)} {state}; the row has "
                f"fields {sorted(row)}: {_preview(row)}"
            )
    for name in required + [n for n in optional or () if row.get(n) is not None]:
        if name in FIELD_KINDS:
            check_kind(row, name, FIELD_KINDS[name], where, fmap)
    return row


def _check_field_map(field_map: Mapping[str, str] | None) -> None:
    if field_map is None:
        return
    if not isinstance(field_map, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in field_map.items()
    ):
        raise DataError(
            f"field_map must map our field name to the name in the file (str -> str), "
            f"got {field_map!r}"
        )
    theirs = list(field_map.values())
    dup = sorted({v for v in theirs if theirs.count(v) > 1})
    if dup:
        raise DataError(f"field_map reads the file's field(s) {dup} into more than one field")


# ---------------------------------------------------------------------------------------------
# public API


def read_jsonl(
    path: str | os.PathLike,
    required: list[str] | None = None,
    field_map: dict[str, str] | None = None,
    optional: list[str] | None = None,
) -> list[dict]:
    """Read a JSONL file into a list of dicts, one per non-blank line.

    ``field_map`` maps our name -> the file's name; mapped fields are renamed, the others
    kept.  Raises ``DataError("PATH:LINE: ...")`` for a line that is not a JSON object, a
    row missing (or null in) a ``required`` field, or a required field (or an ``optional`` one
    the row has) of the wrong type (``FIELD_KINDS``); and ``DataError`` naming the path when
    the file cannot be read or has no rows.
    """
    _check_field_map(field_map)
    p = Path(path).expanduser()
    if not p.exists():
        raise DataError(f"{p}: data file not found")
    if not p.is_file():
        raise DataError(f"{p}: not a file (expected a JSONL file, one JSON object per line)")
    rows: list[dict] = []
    try:
        fh = p.open("r", encoding="utf-8")
    except OSError as e:
        raise DataError(f"{p}: cannot open data file: {e}") from e
    with fh:
        lineno = 0
        while True:
            lineno += 1
            try:
                line = fh.readline()
            except UnicodeDecodeError as e:
                raise DataError(f"{p}:{lineno}: not valid UTF-8 ({e.reason})") from e
            if not line:
                break
            if not line.strip():
                continue
            # AlpacaEval ships alpaca_eval.json, one JSON array: say how to make it JSON Lines.
            array = (
                f"; {p.name} looks like one JSON array, but a data file is JSON Lines (one "
                f"object per line): convert it with jq -c '.[]' {p.name} > {p.stem}.jsonl"
                if not rows and line.lstrip().startswith("[")
                else ""
            )
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(
                    f"{p}:{lineno}: malformed JSON ({e.msg} at column {e.colno}): "
                    f"{_preview(line.strip())}{array}"
                ) from e
            try:
                rows.append(_map_and_check(obj, f"{p}:{lineno}", required, field_map, optional))
            except DataError as e:
                if not array:
                    raise
                raise DataError(f"{e}{array}") from None
    if not rows:
        raise DataError(f"{p}: the file has no rows (it is empty or holds only blank lines)")
    return rows


def builtin_names() -> list[str]:
    """Names accepted by ``builtin:NAME`` (the JSONL files shipped in ``srlm/data``)."""
    return sorted(f.stem for f in _DATA_DIR.glob("*.jsonl"))


def builtin_path(name: str) -> Path:
    """Path of the shipped file ``srlm/data/NAME.jsonl`` (``NAME`` may carry ``.jsonl``)."""
    stem = name[: -len(".jsonl")] if name.endswith(".jsonl") else name
    if not stem or "/" in stem or "\\" in stem or stem.startswith("."):
        raise DataError(f"builtin:{name}: not a builtin data name; choose one of {builtin_names()}")
    p = _DATA_DIR / f"{stem}.jsonl"
    if not p.is_file():
        raise DataError(
            f"builtin:{name}: no such builtin data file; choose one of {builtin_names()}"
        )
    return p


def _load_hf(
    spec: str,
    split: str,
    required: list[str] | None,
    field_map: dict[str, str] | None,
    limit: int | None,
    optional: list[str] | None = None,
) -> list[dict]:
    source = f"hf:{spec}"
    name, _, config = spec.partition(":")
    if not name or any(c.isspace() for c in spec):
        raise DataError(f"{source}: expected hf:ORG/NAME[:CONFIG], e.g. hf:openai/gsm8k:main")
    call = f"datasets.load_dataset({name!r}{', ' + repr(config) if config else ''})"
    hint = (
        f"download it on a machine with network access ({call} fills the Hugging Face "
        f"cache; copy the cache here and set HF_DATASETS_CACHE), or export the rows to a "
        f"local JSONL file and use its path as the source"
    )
    try:
        import datasets  # optional dependency, imported only when used
    except ImportError as e:
        raise DataError(
            f"{source}: the 'datasets' package is not installed; install it "
            f"(pip install datasets) and {hint}"
        ) from e
    try:
        ds = datasets.load_dataset(name, config or None, split=split)
    except Exception as e:  # any failure here means: not available offline
        raise DataError(
            f"{source} (split {split!r}): cannot load the dataset "
            f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); {hint}"
        ) from e
    rows: list[dict] = []
    for i, row in enumerate(ds):
        if limit is not None and i >= limit:
            break
        where = f"{source}[{split}] row {i}"
        rows.append(_map_and_check(dict(row), where, required, field_map, optional))
    if not rows and limit != 0:
        raise DataError(f"{source}[{split}]: the dataset split has no rows")
    return rows


def load_rows(
    source: str,
    split: str = "train",
    required: list[str] | None = None,
    field_map: dict[str, str] | None = None,
    limit: int | None = None,
    optional: list[str] | None = None,
) -> list[dict]:
    """Rows from ``source`` (a JSONL path, ``builtin:NAME`` or ``hf:ORG/NAME[:CONFIG]``).

    ``split`` selects the Hugging Face split (and ``DIR/<split>.jsonl`` when ``source`` is a
    directory); it is ignored for a single file.  ``required``, ``optional`` and ``field_map``
    are checked as in ``read_jsonl``, Hugging Face rows too; ``limit`` keeps the first
    ``limit`` rows (every line of a local file is still checked).  A source without rows is a
    ``DataError``.
    """
    if not isinstance(source, str | os.PathLike) or not str(source).strip():
        raise DataError(f"data source must be {_SOURCE_FORMS}, got {source!r}")
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 0):
        raise DataError(f"limit must be a non-negative integer or None, got {limit!r}")
    _check_field_map(field_map)
    src = str(source).strip()
    if src.startswith("builtin:"):
        rows = read_jsonl(builtin_path(src[len("builtin:") :]), required, field_map, optional)
    elif src.startswith("hf:"):
        return _load_hf(src[len("hf:") :], split, required, field_map, limit, optional)
    else:
        p = Path(src).expanduser()
        if p.is_dir():
            p = p / f"{split}.jsonl"
        elif not p.exists():
            raise DataError(f"{p}: data file not found (a data source is {_SOURCE_FORMS})")
        rows = read_jsonl(p, required, field_map, optional)
    return rows if limit is None else rows[:limit]


def instruction_order(instructions: Iterable[str], seed: int) -> list[str]:
    """Distinct instructions in a fixed shuffled order; iteration t takes the t-th slice."""
    import random

    unique = list(dict.fromkeys(x.strip() for x in instructions if x.strip()))
    random.Random(seed).shuffle(unique)
    return unique


def fresh_instructions(
    data, iterations: int, per_iteration: int, seed: int, method: str
) -> list[str]:
    """``data.seed_instructions`` in ``instruction_order``, checked to hold enough for every
    iteration to take ``per_iteration`` instructions never used before (TPO, Meta-Rewarding)."""
    rows = load_rows(
        data.seed_instructions, required=["instruction"], field_map=data.field_map, limit=data.limit
    )
    order = instruction_order((r["instruction"] for r in rows), seed)
    need = iterations * per_iteration
    if len(order) < need:
        raise DataError(
            f"data.seed_instructions={data.seed_instructions!r} has {len(order)} distinct "
            f"instructions, but method.iterations={iterations} x method.prompts_per_iteration="
            f"{per_iteration} needs {need}: {method} uses instructions not used before in every "
            "iteration. Use more instructions, fewer per iteration, or fewer iterations."
        )
    return order
