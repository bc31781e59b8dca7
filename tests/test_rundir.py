"""The run directory refuses another experiment's config and records finished stages."""

from __future__ import annotations

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
    with pytest.raises(RunDirError) as e:
        run.read_rows(1, "samples")
    assert f"{f}:3: no field 'finish_reason', 'tokens' (a samples row" in str(e.value)
