"""The run directory: every stage's files, written atomically, and the record of what finished.

Layout::

    RUN_DIR/config.yaml             resolved config the directory was made with
    RUN_DIR/iter_01/prompts.jsonl   one file (or directory) per stage output
    RUN_DIR/iter_01/stages.json     {stage: {"finished": time, "stats": {...}}}

A stage counts as finished only once its outputs are renamed into place and it is recorded in
``stages.json``; a process killed half-way leaves at most a ``*.tmp*`` file that the rerun
overwrites, so rerunning the same command continues at the first unfinished stage.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from srlm.config import NON_SEMANTIC_KEYS, Config, to_plain
from srlm.errors import RunDirError
from srlm.rows import STAGE_ROWS, missing_fields


def atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_jsonl(path: Path, rows: Iterable[dict]) -> None:
    atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def read_jsonl(path: Path) -> list[dict]:
    """The rows of a JSONL file, blank lines skipped: the one reader of stage files. A line that
    is not a JSON object (a file cut off by a crash, edited by hand) is a RunDirError naming the
    file and line, not a traceback."""
    rows = []
    try:
        with open(path, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as err:
                    raise RunDirError(
                        f"{path}:{n}: not valid JSON ({err.msg}, column {err.colno})"
                    ) from None
                if not isinstance(row, dict):
                    raise RunDirError(f"{path}:{n}: not a JSON object but {type(row).__name__}")
                rows.append(row)
    except UnicodeDecodeError as err:
        raise RunDirError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from None
    return rows


def line_of_row(path: Path, index: int) -> int:
    """The 1-based line of the index-th row read_jsonl returns (it skips blank lines)."""
    with open(path, encoding="utf-8") as f:
        return [n for n, line in enumerate(f, 1) if line.strip()][index]


def write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


def read_json(path: Path) -> Any:
    """A JSON file (stages.json, summary.json); RunDirError naming the file and line when it
    cannot be read as JSON."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as err:
        raise RunDirError(
            f"{path}:{err.lineno}: not valid JSON ({err.msg}, column {err.colno})"
        ) from None
    except UnicodeDecodeError as err:
        raise RunDirError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from None


def _semantic(plain: dict) -> dict:
    """The config without the keys that may change between resumes."""
    out = json.loads(json.dumps(plain))
    for key in NON_SEMANTIC_KEYS:
        *parents, last = key.split(".")
        node = out
        for p in parents:
            node = node.get(p, {})
        node.pop(last, None)
    # A method's own evaluation settings (method.eval_*: IRPO's maj@k, TPO's resamples) do not
    # change what the run trains either.
    method = out.get("method")
    if isinstance(method, dict):
        for k in [k for k in method if k.startswith("eval_")]:
            method.pop(k)
    return out


def _diff(a: Any, b: Any, prefix: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b)):
            out += _diff(a.get(k), b.get(k), f"{prefix}{k}.")
        return out
    return [] if a == b else [f"{prefix[:-1]}: {a!r} -> {b!r}"]


class RunDir:
    def __init__(self, root: str | Path):
        self.root = Path(root)

    # ------------------------------------------------------------ config binding
    def bind(self, config: Config) -> None:
        """Claim the directory for this config, or refuse if it holds another experiment."""
        plain = to_plain(config)
        saved = self.root / "config.yaml"
        if saved.exists():
            old = yaml.safe_load(saved.read_text())
            changes = _diff(_semantic(old), _semantic(plain))
            if changes and not config.overwrite:
                shown = "\n  ".join(changes[:10]) + ("\n  ..." if len(changes) > 10 else "")
                raise RunDirError(
                    f"{self.root} was made with a different config:\n  {shown}\n"
                    f"Resume it with the same settings, start fresh with run_dir=<new directory>, "
                    f"or delete what it holds with overwrite=true."
                )
            if changes:
                self.clear()
        self.root.mkdir(parents=True, exist_ok=True)
        atomic_write_text(saved, yaml.safe_dump(plain, sort_keys=False))

    def clear(self) -> None:
        for child in self.root.iterdir():
            if child.name == ".hydra":  # Hydra's own record of this launch
                continue
            shutil.rmtree(child) if child.is_dir() else child.unlink()

    # ------------------------------------------------------------ stages
    def iter_dir(self, iteration: int) -> Path:
        d = self.root / f"iter_{iteration:02d}"
        d.mkdir(parents=True, exist_ok=True)
        return d

    def _stages_file(self, iteration: int) -> Path:
        return self.iter_dir(iteration) / "stages.json"

    def stages(self, iteration: int) -> dict[str, dict]:
        f = self._stages_file(iteration)
        return read_json(f) if f.exists() else {}

    def finished(self, iteration: int, stage: str) -> bool:
        return stage in self.stages(iteration)

    def stats(self, iteration: int, stage: str) -> dict:
        return self.stages(iteration).get(stage, {}).get("stats", {})

    def mark_finished(self, iteration: int, stage: str, stats: dict | None = None) -> None:
        record = self.stages(iteration)
        record[stage] = {"finished": time.strftime("%Y-%m-%dT%H:%M:%S"), "stats": stats or {}}
        write_json(self._stages_file(iteration), record)

    def forget(self, iteration: int, stages: tuple[str, ...]) -> None:
        """Mark stages of an iteration unfinished, so that they run again."""
        record = self.stages(iteration)
        if any(s in record for s in stages):
            write_json(
                self._stages_file(iteration), {k: v for k, v in record.items() if k not in stages}
            )

    # ------------------------------------------------------------ stage rows
    def stage_file(self, iteration: int, stage: str) -> Path:
        return self.iter_dir(iteration) / f"{stage}.jsonl"

    def write_rows(self, iteration: int, stage: str, rows: list[dict]) -> None:
        """Write a stage's rows (atomically); a row without a field its type requires
        (srlm.rows) is a bug of the method that made it, refused before anything is written."""
        for i, row in enumerate(rows):
            missing = missing_fields(stage, row)
            if missing:
                raise ValueError(
                    f"{stage} row {i} of iteration {iteration} lacks {', '.join(missing)} "
                    f"(srlm.rows.{STAGE_ROWS[stage].__name__})"
                )
        write_jsonl(self.stage_file(iteration, stage), rows)

    def read_rows(self, iteration: int, stage: str) -> list[dict]:
        """A stage's rows ([] when the file does not exist yet); RunDirError naming the file,
        line and field for a row without a field its type requires (srlm.rows)."""
        path = self.stage_file(iteration, stage)
        if not path.exists():
            return []
        rows = read_jsonl(path)
        for i, row in enumerate(rows):
            missing = missing_fields(stage, row)
            if missing:
                raise RunDirError(
                    f"{path}:{line_of_row(path, i)}: no field {', '.join(repr(m) for m in missing)} "
                    f"(a {stage} row: srlm.rows.{STAGE_ROWS[stage].__name__})"
                )
        return rows

    def checkpoint(self, iteration: int) -> Path:
        """The model trained in this iteration (M_{t+1}); iteration 0 is the warm start."""
        return self.iter_dir(iteration) / "checkpoint"
