"""Which phases the iterative regime starts, and what each records (srlm.runner.iterate): the
evaluate phase of M_t also runs iteration t+1's rollout, which samples from the same model, so
that one process and one engine start serve both; a resumed run does only what is missing."""

from __future__ import annotations

import json

import pytest

from srlm import runner
from srlm.compose import compose, validate
from srlm.rundir import RunDir


class _Logger:
    def log_iteration(self, *args):
        return {}


@pytest.fixture
def phases(tmp_path, monkeypatch):
    """Phases run by recording their stages finished, as a phase process does, and listed."""
    calls: list[tuple[str, int]] = []

    def fake_run(config, phase, t, model_dir, initial=""):
        calls.append((phase, t))
        run_dir = RunDir(config.run_dir)
        for i, stage in runner.phase_stages(config, phase, t):
            run_dir.mark_finished(i, stage, {}, started=0.0)

    monkeypatch.setattr(runner, "_run_phase_process", fake_run)
    return calls


def _config(tmp_path, *extra):
    cfg = validate(compose(["logger=none", f"run_dir={tmp_path}", *extra]))
    RunDir(cfg.run_dir).bind(cfg)
    return cfg


def test_evaluate_of_m_t_and_rollout_of_t_plus_1_share_one_phase(tmp_path, phases):
    cfg = _config(tmp_path, "experiment=irpo_quickstart", "method.iterations=2")
    runner.iterate(cfg, RunDir(cfg.run_dir), "/m0", _Logger())
    assert phases == [
        ("evaluate+rollout", 0),  # M_0: measured, then iteration 1's samples
        ("train", 1),
        ("evaluate+rollout", 1),
        ("train", 2),
        ("evaluate", 2),  # the last model: no rollout follows
    ]
    # Every phase is logged with its whole time, start-up included.
    logged = [json.loads(x) for x in (tmp_path / "phases.jsonl").read_text().splitlines()]
    assert [(r["phase"], r["iteration"]) for r in logged] == phases
    assert all(r["seconds"] >= 0 for r in logged)


def test_a_resumed_run_runs_the_rollout_alone_when_its_evaluate_is_done(tmp_path, phases):
    cfg = _config(tmp_path, "experiment=irpo_quickstart", "method.iterations=2")
    run_dir = RunDir(cfg.run_dir)
    run_dir.mark_finished(0, "evaluate", {})
    runner.iterate(cfg, run_dir, "/m0", _Logger())
    assert phases[:2] == [("rollout", 1), ("train", 1)]


def test_without_evaluation_each_rollout_is_its_own_phase(tmp_path, phases):
    cfg = _config(
        tmp_path,
        "method=tpo",
        "method.iterations=2",
        "method.warm_start.enabled=false",
        "eval.enabled=false",
    )
    runner.iterate(cfg, RunDir(cfg.run_dir), "/m0", _Logger())
    assert phases == [("rollout", 1), ("train", 1), ("rollout", 2), ("train", 2)]


def test_stage_records_carry_their_start_and_seconds(tmp_path):
    run_dir = RunDir(tmp_path)
    run_dir.mark_finished(1, "samples", {"n": 3}, started=0.0, engine_seconds=1.234)
    record = run_dir.stages(1)["samples"]
    assert record["stats"] == {"n": 3}
    assert record["engine_seconds"] == 1.23
    assert record["seconds"] > 0 and record["started"] and record["finished"]


def test_time_breakdown_splits_each_phase_into_work_and_overhead(tmp_path):
    from srlm.report.load import overhead_share, time_breakdown
    from srlm.rundir import write_json, write_jsonl

    at = "2026-01-01T00:00:00"
    rec = lambda s, **kw: {"started": at, "seconds": s, "finished": at, **kw}  # noqa: E731
    write_json(
        tmp_path / "iter_00" / "stages.json",
        {"evaluate": rec(30.0, engine_seconds=10.0, stats={})},
    )
    write_json(
        tmp_path / "iter_01" / "stages.json",
        {
            "samples": rec(40.0, stats={}),
            "rewards": rec(5.0, stats={}),
            "train": rec(50.0, stats={"load_seconds": 3.0, "save_seconds": 2.0}),
        },
    )
    write_jsonl(
        tmp_path / "phases.jsonl",
        [
            {
                "phase": "evaluate+rollout",
                "iteration": 0,
                "started": at,
                "seconds": 100.0,
                "stages": [[0, "evaluate"], [1, "samples"], [1, "rewards"]],
            },
            {
                "phase": "train",
                "iteration": 1,
                "started": at,
                "seconds": 60.0,
                "stages": [[1, "train"]],
            },
        ],
    )
    first, train = time_breakdown(tmp_path)
    # 100 s = evaluation 30 - 10 engine + generation 40 + 5, engine 10, start-up 100 - 75.
    assert (first["evaluation"], first["generation"], first["engine_start"]) == (20, 45, 10)
    assert first["startup"] == 25
    # 60 s = training 50 - 3 load - 2 save, load 3, save 2, start-up 10.
    assert (train["training"], train["model_load"], train["save"], train["startup"]) == (
        45,
        3,
        2,
        10,
    )
    assert overhead_share([first, train]) == pytest.approx((25 + 10 + 10 + 3 + 2) / 160)


def test_time_breakdown_splits_an_online_iteration_by_its_steps(tmp_path):
    from srlm.report.load import overhead_share, time_breakdown
    from srlm.rundir import write_json, write_jsonl

    at = "2026-01-01T00:00:00"
    write_json(
        tmp_path / "iter_01" / "stages.json",
        {
            "train": {
                "started": at,
                "seconds": 100.0,
                "engine_seconds": 20.0,
                "stats": {
                    "generation_seconds": 30.0,
                    "scoring_seconds": 2.0,
                    "train_seconds": 40.0,
                    "step_seconds": 75.0,
                },
            }
        },
    )
    write_jsonl(
        tmp_path / "phases.jsonl",
        [
            {
                "phase": "online",
                "iteration": 1,
                "started": at,
                "seconds": 110.0,
                "stages": [[1, "train"]],
            }
        ],
    )
    [row] = time_breakdown(tmp_path)
    # 110 s = generation 30 + 2, training 40, engine 20, sync and the rest 100 - 20 - 32 - 40
    # = 8, start-up 110 - 100 = 10.
    assert (row["generation"], row["training"], row["engine_start"]) == (32, 40, 20)
    assert (row["sync"], row["startup"]) == (8, 10)
    assert overhead_share([row]) == pytest.approx((20 + 8 + 10) / 110)


def test_a_kept_engine_serves_the_sampling_phases_in_the_driver(tmp_path, phases, monkeypatch):
    """rollout.keep_engine (on by default on CPU): evaluate and rollout phases run in the
    driver on its one engine; only the train phases start processes."""
    in_driver: list[tuple[str, int, bool]] = []

    def fake_phase(config, phase, t, model_dir, initial="", engine=None):
        in_driver.append((phase, t, engine is runner._kept is not None))
        run_dir = RunDir(config.run_dir)
        for i, stage in runner.phase_stages(config, phase, t):
            run_dir.mark_finished(i, stage, {}, started=0.0)

    monkeypatch.setattr(runner, "run_phase", fake_phase)
    cfg = _config(tmp_path, "experiment=irpo_quickstart", "method.iterations=2")
    assert runner.keeps_engine(cfg)
    with runner.kept_engine(cfg):
        runner.iterate(cfg, RunDir(cfg.run_dir), "/m0", _Logger())
    assert runner._kept is None  # closed with the run
    assert phases == [("train", 1), ("train", 2)]
    assert in_driver == [
        ("evaluate+rollout", 0, True),
        ("evaluate+rollout", 1, True),
        ("evaluate", 2, True),
    ]
