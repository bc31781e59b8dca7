"""The run directory: every stage's files, written atomically, and the record of what finished.

Layout::

    RUN_DIR/config.yaml             resolved config the directory was made with
    RUN_DIR/iter_01/prompts.jsonl   one file (or directory) per stage output
    RUN_DIR/iter_01/stages.json     {stage: {"started", "seconds", "finished", "stats": {...}}}

A stage counts as finished only once its outputs are renamed into place and it is recorded in
``stages.json``; a process killed half-way leaves at most a ``*.tmp*`` file that the rerun
overwrites, so rerunning the same command continues at the first unfinished stage.

Every file srlm reads here goes through the readers below: a file that cannot be read (bad
JSON or YAML, not UTF-8, no permission) is a one-line RunDirError naming the file, the line where
known, and what to do; a file that cannot be written (disk full, read-only, no permission) is one
too, and leaves no temporary file. docs/runs.md lists what each file's error says.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import sys
import time
from collections.abc import Iterable
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from srlm.config import NON_SEMANTIC_KEYS, Config, to_plain
from srlm.errors import RunDirError
from srlm.rows import STAGE_ROWS, missing_fields

# What to do about a file that cannot be written, by the reason the system gives.
_WRITE_ADVICE = {
    errno.ENOSPC: "the disk is full: free space, then rerun the same command",
    errno.EDQUOT: "the disk quota is used up: free space, then rerun the same command",
    errno.EROFS: "the file system is read-only: pass a run_dir=... on a writable one",
    errno.EACCES: "no permission: fix the permissions or pass another run_dir=...",
    errno.EPERM: "no permission: fix the permissions or pass another run_dir=...",
    errno.ENOTDIR: "a part of the path is a file, not a directory: pass another run_dir=...",
    errno.EISDIR: "a directory stands where the file should be: move it away",
    errno.EEXIST: "a file stands where a directory should be: move it away or pass another path",
}


def write_error(path: Path, err: OSError, doing: str = "write") -> RunDirError:
    """One line for a file or directory that cannot be written: which, why, what to do."""
    advice = _WRITE_ADVICE.get(err.errno, "check the disk and the path, then rerun the command")
    return RunDirError(f"cannot {doing} {path} ({err.strerror or err}): {advice}")


def read_error(path: Path, err: OSError, remedy: str) -> RunDirError:
    return RunDirError(f"cannot read {path} ({err.strerror or err}){_then(remedy)}")


@contextmanager
def _reading(path: Path, remedy: str):
    """What every reader of a run file turns into one RunDirError: text that is not UTF-8, a
    file that cannot be opened."""
    try:
        yield
    except UnicodeDecodeError as err:
        raise RunDirError(
            f"{path}: not UTF-8 text ({err.reason} at byte {err.start}){_then(remedy)}"
        ) from None
    except OSError as err:
        raise read_error(path, err, remedy) from None


def _then(remedy: str) -> str:
    return f"; {remedy}" if remedy else ""


def atomic_write_text(path: Path, text: str) -> None:
    """Write `path` whole or not at all. A failure (disk full, read-only, no permission) leaves
    the old file as it was and no temporary file, and is a RunDirError naming the file."""
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as err:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass  # the directory itself refuses changes: then the file was never made either
        raise write_error(path, err) from None


def write_jsonl(path: Path, rows: Iterable[dict]) -> None:
    atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def read_jsonl(path: Path, remedy: str = "") -> list[dict]:
    """The rows of a JSONL file, blank lines skipped: the one reader of stage files. A line that
    is not a JSON object (a file cut off by a crash, edited by hand), a file that is not UTF-8 or
    cannot be opened is a RunDirError naming the file and line, followed by `remedy` (what to
    do), not a traceback."""
    rows = []
    with _reading(path, remedy), open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise RunDirError(
                    f"{path}:{n}: not valid JSON ({err.msg}, column {err.colno}){_then(remedy)}"
                ) from None
            if not isinstance(row, dict):
                raise RunDirError(
                    f"{path}:{n}: not a JSON object but {type(row).__name__}{_then(remedy)}"
                )
            rows.append(row)
    return rows


def line_of_row(path: Path, index: int) -> int:
    """The 1-based line of the index-th row read_jsonl returns (it skips blank lines)."""
    with open(path, encoding="utf-8") as f:
        return [n for n, line in enumerate(f, 1) if line.strip()][index]


def write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


def read_json(path: Path, remedy: str = "") -> Any:
    """A JSON file (stages.json, summary.json); RunDirError naming the file and line, followed
    by `remedy`, when it cannot be read as JSON."""
    with _reading(path, remedy), open(path, encoding="utf-8") as f:
        try:
            return json.load(f)
        except json.JSONDecodeError as err:
            raise RunDirError(
                f"{path}:{err.lineno}: not valid JSON ({err.msg}, column {err.colno})"
                f"{_then(remedy)}"
            ) from None


def read_yaml_mapping(path: Path, remedy: str = "") -> dict:
    """A YAML file of settings (config.yaml); RunDirError naming the file and line, followed by
    `remedy`, when it cannot be read as a mapping."""
    with _reading(path, remedy), open(path, encoding="utf-8") as f:
        try:
            data = yaml.safe_load(f)
        except yaml.YAMLError as err:
            mark = getattr(err, "problem_mark", None)
            where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
            problem = getattr(err, "problem", None) or type(err).__name__
            raise RunDirError(f"{where}: not valid YAML ({problem}){_then(remedy)}") from None
    if not isinstance(data, dict):
        raise RunDirError(
            f"{path}: not a mapping of settings but {type(data).__name__}{_then(remedy)}"
        )
    return data


def writer_stage(iteration: int, name: str) -> str:
    """The stage whose record in stages.json vouches for the file `name` of an iteration: a
    stage's own ``<stage>.jsonl``, the evaluate stage's ``eval*.jsonl``, the training stage's
    ``checkpoint/``."""
    if name.startswith("checkpoint"):
        return "warm_start" if iteration == 0 else "train"
    stem = name.split("/")[0].removesuffix(".jsonl")
    if stem == "eval_winrates":
        return "winrates"
    if stem == "eval" or stem.startswith("eval_"):
        return "evaluate"
    return stem


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


# Where overwrite=true puts the run it replaces, and the mark that the move is complete.
REPLACED = ".replaced"
MOVED = "MOVED"


def _kept(name: str) -> bool:
    """Entries of the run directory that belong to no one run: Hydra's record and log of the
    launches (the current launch writes to them), and the replaced run itself."""
    return name in (".hydra", REPLACED) or name.endswith(".log")


class RunDir:
    def __init__(self, root: str | Path):
        self.root = Path(root)

    # ------------------------------------------------------------ config binding
    def bind(self, config: Config) -> None:
        """Claim the directory for this config, or refuse if it holds another experiment.

        Nothing is written until every check here passed. With overwrite=true and another
        config, the old run is moved aside into RUN_DIR/.replaced/, deleted only once this run
        records its first finished stage (mark_finished), and put back by the next bind if it
        never does: no run is lost to a replacement that did not start.
        """
        if self.root.is_dir():
            self._settle_replaced()
        replace = self.check_claim(config, announce=True)
        plain = to_plain(config)
        saved = self.root / "config.yaml"
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise write_error(self.root, err, "create") from None
        if replace:
            self._move_aside()
        try:
            atomic_write_text(saved, yaml.safe_dump(plain, sort_keys=False))
        except RunDirError as err:
            if replace:
                try:
                    self._put_back()
                except OSError:
                    raise RunDirError(
                        f"{err}; the run it was to replace is in {self.root / REPLACED}/, and "
                        "the next start in this directory puts it back"
                    ) from None
            raise

    def check_claim(self, config: Config, announce: bool = False) -> bool:
        """Raise RunDirError unless `config` may claim this directory (the same experiment, a
        new directory, or overwrite=true); whether claiming it replaces another run. Writes
        nothing: the pre-flight asks this before anything is written."""
        plain = to_plain(config)
        if self.root.exists() and not self.root.is_dir():
            raise RunDirError(
                f"run_dir={self.root} is a file, not a directory: pass the path of a directory "
                "(a new one is made)"
            )
        saved = self.root / "config.yaml"
        replace = False
        if saved.exists():
            try:
                old = read_yaml_mapping(saved)
            except RunDirError as err:
                if self.recorded_any():
                    if not config.overwrite:
                        raise RunDirError(
                            f"{err}; it records the config this run was made with: restore it, "
                            f"or start fresh with overwrite=true (the old run is kept in "
                            f"{self.root / REPLACED}/ until the new one finishes a stage)"
                        ) from None
                    replace = True
                elif announce:  # No stage finished: nothing a new claim could lose.
                    print(
                        f"[srlm] note: {err}; nothing in {self.root} is recorded finished, so "
                        "this run claims it",
                        file=sys.stderr,
                    )
            else:
                changes = _diff(_semantic(old), _semantic(plain))
                if changes and not config.overwrite:
                    shown = "; ".join(changes[:10]) + ("; ..." if len(changes) > 10 else "")
                    raise RunDirError(
                        f"{self.root} was made with a different config ({shown}): resume it "
                        "with the same settings, start fresh with run_dir=<new directory>, or "
                        "replace it with overwrite=true"
                    )
                replace = bool(changes)
        elif self.recorded_any():
            if not config.overwrite:
                raise RunDirError(
                    f"{self.root} holds finished stages but no config.yaml, so it cannot be "
                    "checked to belong to this config: restore config.yaml, pass another "
                    "run_dir=..., or replace it with overwrite=true"
                )
            replace = True
        return replace

    def recorded_any(self) -> bool:
        """Whether any stage of the run in this directory is recorded finished."""
        return any(self.root.glob("iter_*/stages.json"))

    def _move_aside(self) -> None:
        """Move the run this one replaces into RUN_DIR/.replaced/: renames only, nothing is
        deleted; the MOVED mark is written once every entry is there."""
        aside = self.root / REPLACED
        try:
            aside.mkdir()
            for child in sorted(self.root.iterdir()):
                if not _kept(child.name):
                    child.rename(aside / child.name)
            (aside / MOVED).write_text(
                f"Replaced with overwrite=true on {time.strftime('%Y-%m-%dT%H:%M:%S')}. This is "
                "deleted once the new run records a finished stage; until then srlm puts it back "
                "the next time it starts in this directory.\n"
            )
        except OSError as err:
            try:
                self._put_back()
            except OSError:
                pass  # what did move stays in .replaced/, and the next start puts it back
            raise write_error(aside, err, "move the replaced run into") from None

    def _put_back(self) -> None:
        """Move the replaced run back from RUN_DIR/.replaced/. Once the move aside was complete
        (MOVED), what stands in the directory is the replacement's unfinished work, which goes."""
        aside = self.root / REPLACED
        if not aside.is_dir():
            return
        if (aside / MOVED).exists():
            for child in self.root.iterdir():
                if not _kept(child.name):
                    shutil.rmtree(child) if child.is_dir() else child.unlink()
        for child in aside.iterdir():
            if child.name != MOVED:
                child.rename(self.root / child.name)
        (aside / MOVED).unlink(missing_ok=True)
        aside.rmdir()

    def _settle_replaced(self) -> None:
        """What a previous overwrite=true left: deleted if its run recorded a finished stage,
        else put back (the replacement never started)."""
        aside = self.root / REPLACED
        doomed = self.root / f"{REPLACED}.deleting"
        try:
            if doomed.exists():
                shutil.rmtree(doomed)
            if not aside.is_dir():
                return
            if (aside / MOVED).exists() and self.recorded_any():
                self.drop_replaced()
                return
            self._put_back()
        except OSError as err:
            raise write_error(aside, err, "settle") from None
        print(
            f"[srlm] note: the run that overwrite=true replaced in {self.root} was put back: its "
            "replacement recorded no finished stage",
            file=sys.stderr,
        )

    def drop_replaced(self) -> None:
        """Delete the run that overwrite=true replaced, now that this one has started. Renamed
        first, so that a deletion cut short is never mistaken for a run to put back."""
        aside = self.root / REPLACED
        if not aside.is_dir():
            return
        doomed = self.root / f"{REPLACED}.deleting"
        os.replace(aside, doomed)
        shutil.rmtree(doomed, ignore_errors=True)

    def resume_hint(self) -> str:
        """What a run that failed keeps, and how to go on: the end of its error message."""
        if (self.root / REPLACED / MOVED).exists():
            return (
                "This run has recorded no finished stage; the run that overwrite=true replaced "
                f"is kept in {self.root / REPLACED}/ and is put back when srlm next starts in "
                "this directory (with overwrite=true, it is set aside again)."
            )
        return (
            "Finished stages are kept: once the cause above is fixed, rerun the same command to "
            "resume."
        )

    # ------------------------------------------------------------ stages
    def iter_dir(self, iteration: int) -> Path:
        d = self.root / f"iter_{iteration:02d}"
        d.mkdir(parents=True, exist_ok=True)
        return d

    def _iter_path(self, iteration: int) -> Path:
        # For reading: looking does not make the directory (a refused command writes nothing).
        return self.root / f"iter_{iteration:02d}"

    def _stages_file(self, iteration: int) -> Path:
        return self._iter_path(iteration) / "stages.json"

    def stages(self, iteration: int) -> dict[str, dict]:
        """stage -> {"finished": time, "stats": {...}} of an iteration ({} before its first)."""
        f = self._stages_file(iteration)
        if not f.exists():
            return {}
        later = "" if iteration == 0 else " and every later iter_NN/"
        remedy = (
            f"it records which stages of iteration {iteration} finished: restore it, or delete "
            f"{self._iter_path(iteration)}/{later} to run them again, or start fresh with "
            "overwrite=true"
        )
        record = read_json(f, remedy)
        if not isinstance(record, dict) or not all(isinstance(v, dict) for v in record.values()):
            raise RunDirError(f"{f}: not a JSON object of stage records; {remedy}")
        return record

    def rerun_advice(self, iteration: int, stage: str) -> str:
        """What to do about a broken file of a stage recorded finished: the stage must run
        again, and so must everything made from its files after it."""
        said = f"stage '{stage}' of iteration {iteration} is recorded finished with it: restore it"
        if stage in ("evaluate", "winrates"):
            return f"{said}, or evaluate again: python -m srlm.evaluate {self.root} --redo"
        return (
            f"{said}, or run it again: delete the entries from '{stage}' on in "
            f"{self._stages_file(iteration)} and every later iter_NN/, then rerun the same command"
        )

    def finished(self, iteration: int, stage: str) -> bool:
        return stage in self.stages(iteration)

    def stats(self, iteration: int, stage: str) -> dict:
        return self.stages(iteration).get(stage, {}).get("stats", {})

    def mark_finished(
        self,
        iteration: int,
        stage: str,
        stats: dict | None = None,
        started: float | None = None,
        **timing: float,
    ) -> None:
        """Record a stage finished, with its statistics; `started` (time.time() when the stage
        began) adds its start and length in seconds, and `timing` other seconds of its own
        (engine_seconds: the part spent starting an engine)."""
        record = self.stages(iteration)
        entry: dict = {}
        if started is not None:
            entry["started"] = _clock(started)
            entry["seconds"] = round(time.time() - started, 2)
        entry |= {k: round(v, 2) for k, v in timing.items()}
        record[stage] = entry | {"finished": _clock(time.time()), "stats": stats or {}}
        write_json(self._stages_file(iteration), record)
        self.drop_replaced()  # this run has started: the run it replaced is no longer needed

    def log_phase(
        self, phase: str, iteration: int, started: float, stages: list[tuple[int, str]]
    ) -> None:
        """Add a finished phase to RUN_DIR/phases.jsonl: its process's whole time, start-up
        included, and the (iteration, stage) records it made, whose own seconds it contains
        (srlm.report.load.time_breakdown)."""
        path = self.root / "phases.jsonl"
        rows = read_jsonl(path) if path.exists() else []
        rows.append(
            {
                "phase": phase,
                "iteration": iteration,
                "started": _clock(started),
                "seconds": round(time.time() - started, 2),
                "stages": [list(s) for s in stages],
            }
        )
        write_jsonl(path, rows)

    def forget(self, iteration: int, stages: tuple[str, ...]) -> None:
        """Mark stages of an iteration unfinished, so that they run again."""
        record = self.stages(iteration)
        if any(s in record for s in stages):
            write_json(
                self._stages_file(iteration), {k: v for k, v in record.items() if k not in stages}
            )

    # ------------------------------------------------------------ stage rows
    def stage_file(self, iteration: int, stage: str) -> Path:
        return self._iter_path(iteration) / f"{stage}.jsonl"

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
        line and field for a row without a field its type requires (srlm.rows), and what to do.

        A file that cannot be read whose stage is not recorded finished is taken as not written
        yet, which it is as far as the run is concerned: the stage writes it anew when it runs.
        """
        path = self.stage_file(iteration, stage)
        if not path.exists():
            return []
        try:
            rows = read_jsonl(path)
            for i, row in enumerate(rows):
                missing = missing_fields(stage, row)
                if missing:
                    raise RunDirError(
                        f"{path}:{line_of_row(path, i)}: no field "
                        f"{', '.join(repr(m) for m in missing)} "
                        f"(a {stage} row: srlm.rows.{STAGE_ROWS[stage].__name__})"
                    )
        except RunDirError as err:
            writer = writer_stage(iteration, path.name)
            if not self.finished(iteration, writer):
                return []
            raise RunDirError(f"{err}; {self.rerun_advice(iteration, writer)}") from None
        return rows

    def checkpoint(self, iteration: int) -> Path:
        """The model trained in this iteration (M_{t+1}); iteration 0 is the warm start."""
        return self.iter_dir(iteration) / "checkpoint"

    def trained_model(self, iteration: int) -> Path | None:
        """The checkpoint iteration `iteration` trained (0: the warm start), or None when its
        training stage is not recorded finished or was skipped (no pairs: the model carried over).
        RunDirError when the record says it trained but the checkpoint is gone, which would
        otherwise silently stand in the previous model."""
        stage = writer_stage(iteration, "checkpoint")
        record = self.stages(iteration).get(stage)
        if record is None or (record.get("stats") or {}).get("skipped"):
            return None
        path = self._iter_path(iteration) / "checkpoint"
        if not path.is_dir():
            raise RunDirError(
                f"{path} is missing; {self.rerun_advice(iteration, stage)}".replace(
                    "restore it", "restore the checkpoint", 1
                )
            )
        return path


def _clock(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(t))
