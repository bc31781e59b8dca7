"""What the iteration engine does when a phase's process exits with an error (srlm.runner)."""

from __future__ import annotations

import pytest

from srlm.compose import compose, validate
from srlm.errors import SrlmError
from srlm.methods import get_method
from srlm.rundir import RunDir
from srlm.runner import check_phase_exit


@pytest.fixture
def cfg(tmp_path):
    return validate(compose([f"run_dir={tmp_path}/run", "method=irpo", "rollout=hf"]))


def test_a_crash_after_every_stage_was_recorded_is_passed_over(cfg, capsys):
    run = RunDir(cfg.run_dir)
    for stage in get_method("irpo").rollout_stages:
        run.mark_finished(1, stage, {})
    check_phase_exit(cfg, "rollout", 1, -6)  # SIGABRT at exit
    assert "ended with exit code -6 after all its stages were recorded" in capsys.readouterr().err


def test_a_crash_before_the_last_stage_fails_the_run(cfg):
    run = RunDir(cfg.run_dir)
    first, *_ = get_method("irpo").rollout_stages
    run.mark_finished(1, first, {})
    with pytest.raises(SrlmError, match="the rollout phase of iteration 1 failed .exit code -6"):
        check_phase_exit(cfg, "rollout", 1, -6)
    with pytest.raises(SrlmError, match="the train phase of iteration 1 failed"):
        check_phase_exit(cfg, "train", 1, 1)


def test_srlm_errors_are_never_passed_over(cfg):
    RunDir(cfg.run_dir).mark_finished(1, "train", {})
    with pytest.raises(SrlmError):
        check_phase_exit(cfg, "train", 1, 2)
    check_phase_exit(cfg, "train", 1, 0)
