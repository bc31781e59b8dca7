"""Data the project ships, and the loaders every stage uses to read rows.

A *source* names where rows come from (``load_rows``):

- a path to a ``.jsonl`` file (``~`` is expanded; a directory means ``DIR/<split>.jsonl``);
- ``builtin:NAME`` - a JSONL file shipped in this package (``builtin_names()`` lists them):
  ``seed_instructions`` (IFT-style prompts), ``seed_judgements`` (EFT examples for the
  additive 5-point judge), ``eval_prompts`` (held-out instructions);
- ``hf:ORG/NAME[:CONFIG]`` - a Hugging Face dataset through ``datasets.load_dataset``; these
  machines have no network, so it must already be in the local cache.

Every row is checked as it is read: a line that is not a JSON object, or a row without a
required field, raises ``DataError`` naming the file and the 1-based line (or, for a Hugging
Face dataset, the row index), the field, and what the row does have.  ``field_map`` renames
fields from the file's names to ours (``{"question": "problem"}`` reads the file's
``problem`` as our ``question``) before the check.

Verifiable arithmetic tasks for IRPO are generated, not shipped: see ``srlm.data.arithmetic``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from srlm.errors import SrlmError

__all__ = [
    "DataError",
    "builtin_names",
    "builtin_path",
    "load_rows",
    "read_jsonl",
]

_DATA_DIR = Path(__file__).resolve().parent
_SOURCE_FORMS = "a path to a .jsonl file, builtin:NAME, or hf:ORG/NAME[:CONFIG]"


class DataError(SrlmError, ValueError):
    """A data file or row that cannot be used; the message names the file and line."""


# ---------------------------------------------------------------------------------------------
# helpers


def _preview(value: Any, limit: int = 160) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _map_and_check(
    row: Any,
    where: str,
    required: Iterable[str] | None,
    field_map: Mapping[str, str] | None,
) -> dict:
    """Rename fields (file name -> our name) and check the required ones; ``where`` is the
    ``file:line`` (or dataset row) prefix of any error."""
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
    for name in required or ():
        if name not in row or row[name] is None:
            src = fmap.get(name, name)
            looked = f" (read from the file's field {src!r})" if src != name else ""
            state = "is null" if name in row else "is missing"
            raise DataError(
                f"{where}: required field {name!r}{looked} {state}; the row has fields "
                f"{sorted(row)}: {_preview(row)}"
            )
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
) -> list[dict]:
    """Read a JSONL file into a list of dicts, one per non-blank line.

    ``field_map`` maps our name -> the file's name; mapped fields are renamed, the others
    kept.  Raises ``DataError("PATH:LINE: ...")`` for a line that is not a JSON object or a
    row missing (or null in) a ``required`` field, and ``DataError`` naming the path when the
    file cannot be read.
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
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(
                    f"{p}:{lineno}: malformed JSON ({e.msg} at column {e.colno}): "
                    f"{_preview(line.strip())}"
                ) from e
            rows.append(_map_and_check(obj, f"{p}:{lineno}", required, field_map))
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
        rows.append(_map_and_check(dict(row), f"{source}[{split}] row {i}", required, field_map))
    return rows


def load_rows(
    source: str,
    split: str = "train",
    required: list[str] | None = None,
    field_map: dict[str, str] | None = None,
    limit: int | None = None,
) -> list[dict]:
    """Rows from ``source`` (a JSONL path, ``builtin:NAME`` or ``hf:ORG/NAME[:CONFIG]``).

    ``split`` selects the Hugging Face split (and ``DIR/<split>.jsonl`` when ``source`` is a
    directory); it is ignored for a single file.  ``required`` and ``field_map`` are checked
    as in ``read_jsonl``; ``limit`` keeps the first ``limit`` rows (every line of a local file
    is still checked).
    """
    if not isinstance(source, str | os.PathLike) or not str(source).strip():
        raise DataError(f"data source must be {_SOURCE_FORMS}, got {source!r}")
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 0):
        raise DataError(f"limit must be a non-negative integer or None, got {limit!r}")
    _check_field_map(field_map)
    src = str(source).strip()
    if src.startswith("builtin:"):
        rows = read_jsonl(builtin_path(src[len("builtin:") :]), required, field_map)
    elif src.startswith("hf:"):
        return _load_hf(src[len("hf:") :], split, required, field_map, limit)
    else:
        p = Path(src).expanduser()
        if p.is_dir():
            p = p / f"{split}.jsonl"
        elif not p.exists():
            raise DataError(f"{p}: data file not found (a data source is {_SOURCE_FORMS})")
        rows = read_jsonl(p, required, field_map)
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
