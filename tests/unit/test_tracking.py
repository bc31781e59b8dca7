"""The wandb logger: how runs are grouped, which mode it picks, what it logs (offline)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from srlm import tracking
from srlm.compose import compose, validate
from srlm.rundir import RunDir, write_json, write_jsonl
from srlm.tracking import SAMPLE_COLUMNS, choose_group, choose_mode, has_api_key, sample_rows


# ---------------------------------------------------------------- group
def test_group_set_by_the_user_wins():
    env = {"WANDB_SWEEP_ID": "abc", "WANDB_RUN_GROUP": "env"}
    assert choose_group("mine", env, "multirun/x", "beta") == "mine"
    assert choose_group(None, env, "multirun/x", "beta") == "env"


def test_agent_runs_are_grouped_by_sweep_id():
    assert choose_group(None, {"WANDB_SWEEP_ID": "k3x9"}) == "sweep-k3x9"
    assert choose_group("", {"WANDB_SWEEP_ID": "k3x9"}, "multirun/x") == "sweep-k3x9"


def test_multirun_jobs_are_grouped_by_sweep_dir_and_file():
    assert choose_group(None, {}, "multirun/self_reward-smollm2_135m") == "self_reward-smollm2_135m"
    assert (
        choose_group(None, {}, "/abs/multirun/tpo-smollm2_135m/", "tpo_optimizer")
        == "tpo-smollm2_135m-tpo_optimizer"
    )


def test_a_single_run_has_no_group():
    assert choose_group(None, {}) is None
    assert choose_group(None, {}, None, None) is None


# ---------------------------------------------------------------- mode
def test_mode(tmp_path: Path):
    assert choose_mode("offline", {"WANDB_API_KEY": "k"}, True) == "offline"
    assert choose_mode("auto", {}, False) == "offline"
    assert choose_mode("auto", {}, True) == "online"
    assert choose_mode("auto", {"WANDB_SWEEP_ID": "s"}, False) == "online"
    assert choose_mode("auto", {"WANDB_MODE": "offline"}, True) is None  # wandb reads it


def test_api_key_from_env_or_netrc(tmp_path: Path):
    missing = str(tmp_path / "none")
    assert has_api_key({"WANDB_API_KEY": "k", "NETRC": missing})
    assert not has_api_key({"NETRC": missing})
    netrc = tmp_path / "netrc"
    netrc.write_text("machine api.wandb.ai\n  login user\n  password abc\n")
    netrc.chmod(0o600)
    assert has_api_key({"NETRC": str(netrc)})
    assert not has_api_key({"NETRC": str(netrc), "WANDB_BASE_URL": "https://wandb.example.org"})


# ---------------------------------------------------------------- samples table
@pytest.mark.parametrize(
    "name,row,expected",
    [
        ("judgements.jsonl", {"instruction": "q", "response": "a", "score": 4}, ["q", "a", 4.0]),
        (
            "judgements.jsonl",
            {"instruction": "q", "output": "t a", "response": None, "score": None},
            ["q", "t a", None],
        ),
        ("rewards.jsonl", {"question": "1+1", "response": "2", "reward": 1}, ["1+1", "2", 1.0]),
        ("samples.jsonl", {"instruction": "q", "response": "a"}, ["q", "a", None]),
        (
            "executions.jsonl",
            {"triple_id": "1-0", "raw": "plan", "correct": True},
            ["1-0", "plan", 1.0],
        ),
    ],
)
def test_sample_rows_of_each_method(tmp_path: Path, name, row, expected):
    write_jsonl(tmp_path / name, [row])
    assert sample_rows(tmp_path) == [expected]


def test_sample_rows_prefer_scored_file_and_cap(tmp_path: Path):
    write_jsonl(tmp_path / "samples.jsonl", [{"instruction": "q", "response": "a"}] * 5)
    write_jsonl(
        tmp_path / "judgements.jsonl", [{"instruction": "q", "response": "a", "score": 2.5}] * 5
    )
    assert sample_rows(tmp_path, limit=3) == [["q", "a", 2.5]] * 3
    assert sample_rows(tmp_path / "missing") == []


# ---------------------------------------------------------------- offline run
@pytest.fixture
def offline_env(tmp_path: Path, monkeypatch):
    for key in ("WANDB_API_KEY", "WANDB_MODE", "WANDB_SWEEP_ID", "WANDB_RUN_GROUP", "WANDB_RUN_ID"):
        monkeypatch.delenv(key, raising=False)
    for key in ("WANDB_DIR", "WANDB_CACHE_DIR", "WANDB_CONFIG_DIR", "WANDB_DATA_DIR"):
        monkeypatch.setenv(key, str(tmp_path / "wandb_home"))
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("NETRC", str(tmp_path / "no_netrc"))


def _tiny_run(root: Path) -> tuple:
    """A run directory as a two-iteration Self-Rewarding run leaves it, without any model."""
    config = validate(compose([f"run_dir={root}", "rollout=hf", "logger=wandb"]))
    run = RunDir(root)
    run.bind(config)
    write_json(
        run.iter_dir(0) / "stages.json", {"warm_start": {"finished": "", "stats": {"loss": 2.0}}}
    )
    for t in (1, 2):
        d = run.iter_dir(t)
        write_jsonl(
            d / "samples.jsonl",
            [
                {"prompt_id": f"{t}-0", "instruction": f"q{t}", "response": r}
                for r in ("good", "bad")
            ],
        )
        write_jsonl(
            d / "judgements.jsonl",
            [
                {"prompt_id": f"{t}-0", "instruction": f"q{t}", "response": r, "score": s}
                for r, s in (("good", 5), ("bad", 1))
            ],
        )
        write_jsonl(
            d / "pairs.jsonl", [{"instruction": f"q{t}", "chosen": "good", "rejected": "bad"}]
        )
    return config, run


def test_offline_run_logs_metrics_and_tables(tmp_path: Path, offline_env, monkeypatch):
    monkeypatch.setattr(
        tracking, "hydra_multirun", lambda: (str(tmp_path / "multirun" / "beta_study"), None)
    )
    config, run = _tiny_run(tmp_path / "run")
    logger = tracking.make_logger(config, run)
    assert logger.run.settings.mode == "offline"
    assert logger.run.group == "beta_study"
    logged = [
        logger.log_iteration(t, run, {"iteration": t, "pairs": 1, "margin_after": 0.1 * t}, 3.0)
        for t in (1, 2)
    ]
    assert logged[1]["iter/margin_after"] == pytest.approx(0.2)
    assert logged[1]["iter/seconds"] == 3.0
    assert {"pairs", "samples"} <= set(logged[0])
    # Steps 0 (warm start) and 1 are complete once step 2 has begun.
    assert logger.run.summary["iter/loss"] == 2.0
    assert logger.run.summary["iter/margin_after"] == pytest.approx(0.1)
    from srlm.report import write_report

    report = write_report(run.root)
    figures = sorted(report.parent.glob("*.png"))
    assert figures
    logger.finish([], report)

    [offline] = (run.root / "wandb").glob("offline-run-*")
    assert list(offline.glob("run-*.wandb")), "nothing for `wandb sync` to upload"
    tables: dict[str, list[dict]] = {}
    for p in sorted((offline / "files" / "media" / "table").glob("*.table.json")):
        tables.setdefault(p.name.split("_")[0], []).append(json.loads(p.read_text()))
    assert len(tables["samples"]) == len(tables["pairs"]) == 2  # one of each per iteration
    assert all(t["columns"] == list(SAMPLE_COLUMNS) for t in tables["samples"])
    assert sorted(row for t in tables["samples"] for row in t["data"]) == sorted(
        [f"q{t}", r, s] for t in (1, 2) for r, s in (("good", 5.0), ("bad", 1.0))
    )
    assert all(t["columns"] == ["instruction", "chosen", "rejected"] for t in tables["pairs"])
    # The report's figures went to wandb as images, one per PNG.
    assert len(list((offline / "files" / "media" / "images").rglob("*.png"))) == len(figures)


def test_resumed_wandb_run_skips_the_steps_it_has(tmp_path: Path):
    class FakeRun:
        def __init__(self):
            self.steps = []

        def log(self, metrics, step):
            self.steps.append(step)

    logger = object.__new__(tracking.WandbLogger)
    logger.run, logger.first_step, logger.wandb = FakeRun(), 2, None
    run = RunDir(tmp_path)
    write_json(
        run.iter_dir(0) / "stages.json", {"evaluate": {"finished": "", "stats": {"accuracy": 0.5}}}
    )
    assert logger.log_iteration(1, run, {"iteration": 1, "pairs": 3}, 1.0) == {}
    assert logger.log_iteration(2, run, {"iteration": 2, "pairs": 3}, 1.0)["iter/pairs"] == 3
    assert logger.run.steps == [2]
