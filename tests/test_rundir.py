"""The run directory refuses another experiment's config and records finished stages."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from srlm.compose import compose, validate
from srlm.errors import RunDirError
from srlm.rundir import RunDir, read_jsonl, write_jsonl


def _cfg(tmp_path, *extra):
    return validate(compose([f"run_dir={tmp_path}/run", "rollout=hf", *extra]))


def test_same_config_binds_twice(tmp_path):
    run = RunDir(tmp_path / "run")
    run.bind(_cfg(tmp_path))
    run.mark_finished(1, "prompts", {"prompts": 3})
    run.bind(_cfg(tmp_path))
    assert run.finished(1, "prompts") and run.stats(1, "prompts") == {"prompts": 3}


def test_more_iterations_or_another_logger_may_resume(tmp_path):
    RunDir(tmp_path / "run").bind(_cfg(tmp_path))
    RunDir(tmp_path / "run").bind(_cfg(tmp_path, "method.iterations=5", "logger=none"))


def test_evaluation_settings_may_change_on_resume(tmp_path):
    run = RunDir(tmp_path / "run")
    run.bind(_cfg(tmp_path, "method=irpo"))
    run.mark_finished(1, "samples")
    run.bind(_cfg(tmp_path, "method=irpo", "method.eval_maj_k=8", "eval.max_prompts=2"))
    assert run.finished(1, "samples")
    with pytest.raises(RunDirError, match="method.max_tokens"):
        run.bind(_cfg(tmp_path, "method=irpo", "method.max_tokens=64"))


def test_every_method_evaluation_key_stays_out_of_run_directory_names():
    # rundir._semantic passes over every method.eval_* key on resume; the directory name must
    # leave the same keys out, or changing one would start a new run elsewhere.
    from omegaconf import OmegaConf

    from srlm.compose import CONF_DIR
    from srlm.methods import method_names

    excluded = set(
        OmegaConf.load(CONF_DIR / "config.yaml").hydra.job.config.override_dirname.exclude_keys
    )
    for name in method_names():
        keys = [f"method.{k}" for k in compose([f"method={name}"]).method if k.startswith("eval_")]
        assert set(keys) <= excluded, (name, set(keys) - excluded)


def test_different_config_is_refused_with_the_changed_keys(tmp_path):
    run = RunDir(tmp_path / "run")
    run.bind(_cfg(tmp_path))
    run.mark_finished(1, "prompts")
    with pytest.raises(RunDirError) as e:
        run.bind(_cfg(tmp_path, "optimizer.beta=0.5"))
    msg = str(e.value)
    assert "optimizer.beta: 0.1 -> 0.5" in msg
    assert "run_dir=" in msg and "overwrite=true" in msg
    assert run.finished(1, "prompts")  # nothing was touched


def test_overwrite_starts_fresh(tmp_path):
    run = RunDir(tmp_path / "run")
    run.bind(_cfg(tmp_path))
    run.mark_finished(1, "prompts")
    run.bind(_cfg(tmp_path, "optimizer.beta=0.5", "overwrite=true"))
    assert not run.finished(1, "prompts")


def test_jsonl_roundtrip_leaves_no_temp_files(tmp_path):
    rows = [{"a": 1, "text": "ünïcode"}, {"a": 2}]
    write_jsonl(tmp_path / "x.jsonl", rows)
    assert read_jsonl(tmp_path / "x.jsonl") == rows
    assert [p.name for p in tmp_path.iterdir()] == ["x.jsonl"]


def test_typed_stage_rows_are_checked_on_write_and_on_read(tmp_path):
    from srlm.errors import RunDirError

    run = RunDir(tmp_path / "run")
    pairs = [{"chosen": "a", "rejected": "b", "chosen_tokens": 1}, {"chosen": "c", "rejected": "d"}]
    run.write_rows(1, "pairs", pairs)
    assert run.read_rows(1, "pairs") == pairs
    assert run.read_rows(2, "pairs") == []  # not written yet
    # A method that forgets a field is stopped before anything is written.
    with pytest.raises(ValueError, match="pairs row 1 of iteration 1 lacks rejected"):
        run.write_rows(1, "pairs", [{"chosen": "a", "rejected": "b"}, {"chosen": "c"}])
    assert run.read_rows(1, "pairs") == pairs
    # Untyped stages (one method's own files) take any row.
    run.write_rows(1, "triples", [{"anything": 1}])
    # A file edited by hand: the file, the line (blank lines counted) and the field are named.
    f = run.stage_file(1, "samples")
    f.write_text('{"sample": 0, "tokens": 3, "finish_reason": "stop"}\n\n{"sample": 1}\n')
    run.mark_finished(1, "samples")
    with pytest.raises(RunDirError) as e:
        run.read_rows(1, "samples")
    assert f"{f}:3: no field 'finish_reason', 'tokens' (a samples row" in str(e.value)


# ---------------------------------------------------------------- files that cannot be read
def _tree(root) -> dict[str, bytes]:
    """Every file under root and its bytes: to show that a refused command changed nothing."""
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def _tmp_files(root) -> list[str]:
    return [p.name for p in root.rglob("*.tmp*")]


def test_truncated_stages_json_is_named_with_what_to_do(tmp_path):
    run = RunDir(tmp_path / "run")
    run.mark_finished(1, "prompts", {"prompts": 3})
    stages = tmp_path / "run" / "iter_01" / "stages.json"
    stages.write_text(stages.read_text()[:30])
    with pytest.raises(RunDirError) as e:
        run.finished(1, "samples")
    assert str(e.value).startswith(f"{stages}:3: not valid JSON (")
    assert str(e.value).endswith(
        f"it records which stages of iteration 1 finished: restore it, or delete "
        f"{tmp_path / 'run' / 'iter_01'}/ and every later iter_NN/ to run them again, "
        "or start fresh with overwrite=true"
    )
    stages.write_text('["prompts"]\n')  # valid JSON, not a record of stages
    with pytest.raises(RunDirError, match=r"stages.json: not a JSON object of stage records; it"):
        run.stages(1)
    stages.unlink()
    stages.mkdir()  # an OSError from open(): named too, not a traceback
    with pytest.raises(RunDirError, match=r"cannot read .*stages.json \(Is a directory\); it"):
        run.stages(1)


def test_reading_does_not_make_directories(tmp_path):
    run = RunDir(tmp_path / "run")
    (tmp_path / "run").mkdir()
    assert run.stages(3) == {} and not run.finished(3, "train") and run.read_rows(3, "pairs") == []
    assert run.trained_model(3) is None
    assert list((tmp_path / "run").iterdir()) == []


def test_broken_stage_file_of_a_finished_stage_says_how_to_run_it_again(tmp_path):
    run = RunDir(tmp_path / "run")
    run.write_rows(1, "pairs", [{"chosen": "a", "rejected": "b"}])
    f = run.stage_file(1, "pairs")
    f.write_text('{"chosen": "a", "rejected": "b"}\n{"chosen": "cut off\n')
    # Not recorded finished: the stage writes it anew when it runs, so it counts as not written.
    assert run.read_rows(1, "pairs") == []
    run.mark_finished(1, "pairs")
    run.mark_finished(1, "train")
    with pytest.raises(RunDirError) as e:
        run.read_rows(1, "pairs")
    assert str(e.value) == (
        f"{f}:2: not valid JSON (Invalid control character at, column 20); stage 'pairs' of "
        "iteration 1 is recorded finished with it: restore it, or run it again: delete the "
        f"entries from 'pairs' on in {tmp_path / 'run' / 'iter_01' / 'stages.json'} and every "
        "later iter_NN/, then rerun the same command"
    )
    # The evaluate stage's files are vouched for by its record, and evaluated again with --redo.
    run.stage_file(2, "eval_answers").parent.mkdir()
    run.stage_file(2, "eval_answers").write_bytes(b'{"prompt_id": "\xff"}\n')
    assert run.read_rows(2, "eval_answers") == []
    run.mark_finished(2, "evaluate")
    with pytest.raises(RunDirError) as e:
        run.read_rows(2, "eval_answers")
    assert str(e.value).startswith(f"{run.stage_file(2, 'eval_answers')}: not UTF-8 text (")
    assert str(e.value).endswith(
        "stage 'evaluate' of iteration 2 is recorded finished with it: restore it, or evaluate "
        f"again: python -m srlm.evaluate {tmp_path / 'run'} --redo"
    )


def test_a_trained_checkpoint_that_is_gone_is_named(tmp_path):
    run = RunDir(tmp_path / "run")
    run.mark_finished(1, "train", {"skipped": "no training examples"})
    assert run.trained_model(1) is None  # no pairs: the model carried over, nothing to find
    run.mark_finished(2, "train", {"loss": 0.5})
    with pytest.raises(RunDirError) as e:
        run.trained_model(2)
    assert str(e.value).startswith(
        f"{tmp_path / 'run' / 'iter_02' / 'checkpoint'} is missing; stage 'train' of iteration "
        "2 is recorded finished with it: restore the checkpoint, or run it again: delete the "
        "entries from 'train' on in"
    )
    run.checkpoint(2).mkdir()
    assert run.trained_model(2) == run.checkpoint(2)


def test_corrupt_config_yaml_is_refused_and_nothing_changes(tmp_path):
    run = RunDir(tmp_path / "run")
    run.bind(_cfg(tmp_path))
    run.mark_finished(1, "prompts")
    saved = tmp_path / "run" / "config.yaml"
    saved.write_text(saved.read_text().replace("seed: 0", "seed: [0"))
    before = _tree(tmp_path / "run")
    with pytest.raises(RunDirError) as e:
        run.bind(_cfg(tmp_path))
    msg = str(e.value)
    assert msg.startswith(f"{saved}:") and ": not valid YAML (" in msg
    assert "restore it, or start fresh with overwrite=true" in msg and "\n" not in msg
    assert _tree(tmp_path / "run") == before
    # Valid YAML but no mapping (a file cut to its first word) is refused the same way.
    saved.write_text("method\n")
    with pytest.raises(RunDirError, match=r"config.yaml: not a mapping of settings but str; it"):
        run.bind(_cfg(tmp_path))


def test_corrupt_config_yaml_of_a_directory_without_finished_stages_is_claimed(tmp_path, capsys):
    run = RunDir(tmp_path / "run")
    (tmp_path / "run").mkdir()
    saved = tmp_path / "run" / "config.yaml"
    saved.write_text("seed: [0\n")
    run.bind(_cfg(tmp_path))  # nothing is recorded finished: there is nothing to lose
    assert capsys.readouterr().err == (
        f"[srlm] note: {saved}:2: not valid YAML (expected ',' or ']', but got '<stream end>'); "
        f"nothing in {tmp_path / 'run'} is recorded finished, so this run claims it\n"
    )
    run.bind(_cfg(tmp_path))  # and it is this run's now
    assert "seed: 0" in saved.read_text()


def test_finished_stages_without_config_yaml_are_not_claimed(tmp_path):
    run = RunDir(tmp_path / "run")
    run.mark_finished(1, "prompts")
    with pytest.raises(RunDirError, match="holds finished stages but no config.yaml"):
        run.bind(_cfg(tmp_path))
    assert not (tmp_path / "run" / "config.yaml").exists()
    run.bind(_cfg(tmp_path, "overwrite=true"))
    assert not run.finished(1, "prompts")
    assert (tmp_path / "run" / ".replaced" / "iter_01" / "stages.json").exists()


# ---------------------------------------------------------------- directories that cannot be used
def test_run_dir_that_is_a_file_is_refused(tmp_path):
    f = tmp_path / "run"
    f.write_text("notes\n")
    with pytest.raises(RunDirError) as e:
        RunDir(f).bind(_cfg(tmp_path))
    assert str(e.value) == (
        f"run_dir={f} is a file, not a directory: pass the path of a directory (a new one is made)"
    )
    assert f.read_text() == "notes\n" and [p.name for p in tmp_path.iterdir()] == ["run"]


def test_run_dir_under_a_file_is_refused(tmp_path):
    (tmp_path / "notes").write_text("x")
    root = tmp_path / "notes" / "run"
    with pytest.raises(RunDirError) as e:
        RunDir(root).bind(validate(compose([f"run_dir={root}", "rollout=hf"])))
    assert str(e.value) == (
        f"cannot create {root} (Not a directory): a part of the path is a file, not a "
        "directory: pass another run_dir=..."
    )


def _failing(monkeypatch, code: int, where: str = "fsync") -> None:
    """The system call `where` of srlm.rundir's writes fails with errno `code`, as it does on a
    full disk (ENOSPC comes from write or fsync, after the file was made) or a read-only one
    (EROFS from open, before)."""
    from srlm import rundir

    def fail(*args, **kwargs):
        raise OSError(code, os.strerror(code))

    if where == "open":
        real_open = open

        def open_for_reading_only(path, mode="r", *args, **kwargs):
            if "w" in mode:
                fail()
            return real_open(path, mode, *args, **kwargs)

        monkeypatch.setattr(rundir, "open", open_for_reading_only, raising=False)
    else:
        monkeypatch.setattr(rundir.os, where, fail)


def test_full_disk_is_one_line_and_leaves_no_temporary_file(tmp_path, monkeypatch):
    import errno

    run = RunDir(tmp_path / "run")
    run.bind(_cfg(tmp_path))
    run.write_rows(1, "pairs", [{"chosen": "a", "rejected": "b"}])
    before = _tree(tmp_path / "run")
    _failing(monkeypatch, errno.ENOSPC)
    f = run.stage_file(1, "pairs")
    with pytest.raises(RunDirError) as e:
        run.write_rows(1, "pairs", [{"chosen": "c", "rejected": "d"}])
    assert str(e.value) == (
        f"cannot write {f} (No space left on device): the disk is full: free space, then rerun "
        "the same command"
    )
    with pytest.raises(RunDirError, match="stages.json \\(No space left on device\\)"):
        run.mark_finished(1, "pairs")
    with pytest.raises(RunDirError, match="config.yaml \\(No space left on device\\)"):
        run.bind(_cfg(tmp_path))
    assert _tree(tmp_path / "run") == before and _tmp_files(tmp_path) == []


def test_read_only_disk_is_one_line_before_anything_is_written(tmp_path, monkeypatch):
    import errno

    root = tmp_path / "run"
    RunDir(root).bind(_cfg(tmp_path))
    before = _tree(root)
    _failing(monkeypatch, errno.EROFS, "open")
    with pytest.raises(RunDirError) as e:
        RunDir(root).bind(_cfg(tmp_path))
    assert str(e.value) == (
        f"cannot write {root / 'config.yaml'} (Read-only file system): the file system is "
        "read-only: pass a run_dir=... on a writable one"
    )
    assert _tree(root) == before and _tmp_files(tmp_path) == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_read_only_directory_is_one_line(tmp_path):
    root = tmp_path / "run"
    RunDir(root).bind(_cfg(tmp_path))
    root.chmod(0o555)
    try:
        with pytest.raises(RunDirError, match=r"config.yaml \(Permission denied\): no permission"):
            RunDir(root).bind(_cfg(tmp_path))
        assert _tmp_files(tmp_path) == []
    finally:
        root.chmod(0o755)


# ---------------------------------------------------------------- overwrite=true loses nothing
def _old_run(tmp_path) -> RunDir:
    run = RunDir(tmp_path / "run")
    run.bind(_cfg(tmp_path))
    run.write_rows(1, "pairs", [{"chosen": "a", "rejected": "b"}])
    run.mark_finished(1, "pairs", {"pairs": 1})
    return run


def test_overwrite_moves_the_old_run_aside_until_the_new_one_finishes_a_stage(tmp_path):
    run = _old_run(tmp_path)
    root = tmp_path / "run"
    old = _tree(root)
    # Hydra's record and log of the launches stay: the current launch is writing to them.
    (root / ".hydra").mkdir()
    (root / ".hydra" / "overrides.yaml").write_text("- overwrite=true\n")
    (root / "__main__.log").write_text("launch 1\nlaunch 2\n")
    run.bind(_cfg(tmp_path, "optimizer.beta=0.5", "overwrite=true"))
    assert not run.finished(1, "pairs") and "beta: 0.5" in (root / "config.yaml").read_text()
    aside = root / ".replaced"
    assert {k: v for k, v in _tree(aside).items() if k != "MOVED"} == old
    assert (root / "__main__.log").exists() and (root / ".hydra" / "overrides.yaml").exists()
    assert "Replaced with overwrite=true" in (aside / "MOVED").read_text()
    assert run.resume_hint().startswith(
        f"This run has recorded no finished stage; the run that overwrite=true replaced is kept "
        f"in {aside}/"
    )
    run.mark_finished(1, "prompts")  # the replacement has started: the old run goes
    assert sorted(p.name for p in root.iterdir()) == [
        ".hydra",
        "__main__.log",
        "config.yaml",
        "iter_01",
    ]
    assert run.resume_hint().startswith("Finished stages are kept")


def test_a_replacement_that_never_finished_a_stage_gives_the_old_run_back(tmp_path, capsys):
    run = _old_run(tmp_path)
    root = tmp_path / "run"
    old = _tree(root)
    run.bind(_cfg(tmp_path, "optimizer.beta=0.5", "overwrite=true"))
    # It wrote a stage file, then failed before recording the stage.
    run.write_rows(1, "prompts", [{"id": "1-0", "instruction": "unfinished work"}])
    # The next start, without overwrite=true: the old run is back, and refuses the other config.
    with pytest.raises(RunDirError, match="optimizer.beta: 0.1 -> 0.5"):
        run.bind(_cfg(tmp_path, "optimizer.beta=0.5"))
    assert "was put back: its replacement recorded no finished stage" in capsys.readouterr().err
    assert _tree(root) == old
    run.bind(_cfg(tmp_path))  # and resumes with its own
    assert run.stats(1, "pairs") == {"pairs": 1}


def test_overwrite_that_cannot_write_the_new_config_puts_the_old_run_back(tmp_path, monkeypatch):
    import errno

    run = _old_run(tmp_path)
    root = tmp_path / "run"
    old = _tree(root)
    _failing(monkeypatch, errno.ENOSPC)
    with pytest.raises(RunDirError, match="config.yaml \\(No space left on device\\)"):
        run.bind(_cfg(tmp_path, "optimizer.beta=0.5", "overwrite=true"))
    assert _tree(root) == old and not (root / ".replaced").exists() and _tmp_files(root) == []


def test_a_move_aside_cut_short_is_undone(tmp_path, capsys):
    """Killed half-way through the move: no MOVED mark, and what stands in the directory is
    still the old run's, so everything goes back and nothing is deleted."""
    run = _old_run(tmp_path)
    root = tmp_path / "run"
    old = _tree(root)
    (root / ".replaced").mkdir()
    (root / "iter_01").rename(root / ".replaced" / "iter_01")
    run.bind(_cfg(tmp_path))
    assert _tree(root) == old and run.finished(1, "pairs")
    assert "was put back" in capsys.readouterr().err


def test_a_deletion_cut_short_is_finished_not_put_back(tmp_path):
    run = _old_run(tmp_path)
    root = tmp_path / "run"
    run.bind(_cfg(tmp_path, "optimizer.beta=0.5", "overwrite=true"))
    # Killed between recording the first stage and deleting the replaced run.
    run.write_rows(1, "prompts", [{"id": "1-0", "instruction": "new"}])
    (root / "iter_01" / "stages.json").write_text('{"prompts": {"finished": "", "stats": {}}}')
    (root / ".replaced").rename(root / ".replaced.deleting")  # and half-way through deleting
    run.bind(_cfg(tmp_path, "optimizer.beta=0.5"))
    assert sorted(p.name for p in root.iterdir()) == ["config.yaml", "iter_01"]
    assert run.finished(1, "prompts") and not run.finished(1, "pairs")


# ---------------------------------------------------------------- the commands that read runs
def _evaluated_irpo_run(tmp_path) -> Path:
    """An IRPO run evaluated at iterations 0 and 1 whose iteration 1 trained nothing (no
    pairs): python -m srlm.evaluate finds every evaluation finished and loads no model."""
    root = tmp_path / "run"
    run = RunDir(root)
    run.bind(_cfg(tmp_path, "method=irpo", "logger=none"))
    run.mark_finished(0, "evaluate", {"accuracy": 0.5})
    run.write_rows(1, "pairs", [{"question_id": "q1", "chosen": "5", "rejected": "6"}])
    for stage in ("samples", "rewards", "pairs"):
        run.mark_finished(1, stage)
    run.mark_finished(1, "train", {"skipped": "no training examples"})
    run.mark_finished(1, "evaluate", {"accuracy": 0.75})
    return root


def _command(module: str, root: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", module, str(root)],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
        timeout=300,
    )


BROKEN = {
    # name: (file under the run, how it breaks, what the error says to do)
    "config.yaml": (
        "config.yaml",
        lambda f: f.write_text("method:\n  name: [irpo\n"),
        "restore it",
    ),
    "no config.yaml": ("config.yaml", lambda f: f.unlink(), "restore it"),
    "stages.json": (
        "iter_01/stages.json",
        lambda f: f.write_text(f.read_text()[:40]),
        "or start fresh with overwrite=true",
    ),
    "stage file": (
        "iter_01/pairs.jsonl",
        lambda f: f.write_text(f.read_text() + '{"chosen": \n'),
        "delete the entries from 'pairs' on in",
    ),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_evaluate_command_on_a_broken_run_prints_one_error_line(tmp_path, case):
    name, breaks, todo = BROKEN[case]
    from srlm.report import write_report

    root = _evaluated_irpo_run(tmp_path)
    report = write_report(root).read_text()
    breaks(root / name)
    out = _command("srlm.evaluate", root)
    errors = [line for line in out.stderr.splitlines() if not line.startswith("[srlm] note")]
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr
    assert len(errors) == 1 and errors[0].startswith(f"srlm: error: {root / name}")
    assert todo in errors[0]
    assert (root / "report" / "index.html").read_text() == report  # the report of before stays
    assert _tmp_files(root) == []


def test_evaluate_command_on_a_whole_run_has_nothing_to_do_and_rebuilds_the_report(tmp_path):
    root = _evaluated_irpo_run(tmp_path)
    out = _command("srlm.evaluate", root)
    assert out.returncode == 0, out.stderr
    assert f"report: {root / 'report' / 'index.html'}" in out.stdout
    assert (root / "summary.json").exists()


def test_report_is_built_without_config_yaml(tmp_path):
    """The report is a view of the run's iter_NN/ files; config.yaml only adds the method's
    name and the config's listing, so a run without it still has its report."""
    from srlm.report import load_run, write_report

    root = _evaluated_irpo_run(tmp_path)
    (root / "config.yaml").unlink()
    assert load_run(root).method == "unknown method"
    assert write_report(root).exists()


@pytest.mark.parametrize("case", ["config.yaml", "stages.json", "stage file"])
def test_report_command_on_a_broken_run_prints_one_error_line(tmp_path, case):
    name, breaks, todo = BROKEN[case]
    root = _evaluated_irpo_run(tmp_path)
    breaks(root / name)
    before = _tree(root)
    out = _command("srlm.report", root)
    assert out.returncode == 2 and out.stdout == "" and "Traceback" not in out.stderr
    assert out.stderr.startswith(f"srlm: error: {root / name}") and todo in out.stderr
    assert len(out.stderr.splitlines()) == 1 and _tree(root) == before


def test_a_broken_weight_check_record_is_named(tmp_path):
    import json

    from srlm.rollout.base import PROBE_FILE, RolloutEngine

    class Served(RolloutEngine):
        """An engine whose served weights give these log-probs to the probe text."""

        def generate(self, prompts, sampling, n=1, desc="generate"):
            return [[] for _ in prompts]

        def token_logprobs(self, text):
            return [-1.0, -2.0]

    probe = tmp_path / PROBE_FILE
    probe.write_text(json.dumps({"logprobs": [-1.0, -2.01]}))
    Served().check_weights(str(tmp_path), 0.1)  # the same weights, to rounding
    probe.write_text('{"logprobs": [-1.0, ')  # cut off
    with pytest.raises(RunDirError) as e:
        Served().check_weights(str(tmp_path), 0.1)
    assert str(e.value) == (
        f"{probe}:1: not valid JSON (Expecting value, column 21); it is the trainer's record for "
        "the stale-weight check: restore it, delete it to skip the check for this checkpoint, or "
        "set rollout.check_weights=false"
    )
    probe.write_text('{"text": "x"}')
    with pytest.raises(RunDirError, match="probe_logprobs.json: no list 'logprobs'; it is"):
        Served().check_weights(str(tmp_path), 0.1)
