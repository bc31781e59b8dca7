"""The iterative regime's kept engine (rollout.keep_engine, srlm.runner.PolicyEngine with
keep=True): one engine for the run, a new model's weights loaded in place and checked when a
phase first samples, a random state that starts each phase as a new engine's would, and the
refusal of an engine that could not leave a GPU to the trainer. The engine itself is a fake
here: what is tested is the bookkeeping around it (the real engines' loads are tested in
tests/e2e/test_self_reward_e2e.py and by the hashes of scripts/artifact_hashes.py)."""

from __future__ import annotations

import pytest
import torch

from srlm import runner
from srlm.compose import compose, validate
from srlm.errors import SetupError
from tests.unit.test_rewards import FakeEngine


class Engine(FakeEngine):
    """Records what the runner asks of it."""

    sleeps = False

    def __init__(self, model_dir: str, events: list):
        super().__init__(lambda p, k: "")
        self.events = events
        events.append(("start", model_dir))

    def load(self, model_dir):
        self.events.append(("load", model_dir))

    def check_weights(self, model_dir, tolerance):
        self.events.append(("check", model_dir, tolerance))

    def wake(self):
        return 0.0

    def sleep(self):
        self.events.append(("sleep",))
        return 0.0

    def close(self):
        self.events.append(("close",))


@pytest.fixture
def events(monkeypatch):
    out: list = []
    monkeypatch.setattr(
        runner, "make_engine", lambda model_dir, model, rollout, sleep: Engine(model_dir, out)
    )
    return out


def _config(*extra):
    return validate(compose(["rollout=hf", "logger=none", "rollout.keep_engine=on", *extra]))


def test_a_kept_engine_starts_once_and_loads_each_new_model_in_place(events):
    config = _config("rollout.check_weights_tolerance=0.07")
    kept = runner.PolicyEngine("", config, keep=True)
    kept.serve("M0")
    assert events == []  # nothing starts until a stage samples
    kept()
    kept()
    assert events == [("start", "M0")]
    assert "engine_seconds" in kept.timing() and kept.timing() == {}

    kept.sleep()  # a train phase
    kept.serve("M1")
    assert events[-1] == ("sleep",)  # the load waits for the first sample of the phase
    kept()
    assert events[-2:] == [("load", "M1"), ("check", "M1", 0.07)]
    assert set(kept.timing()) == {"engine_load_seconds"}

    kept.serve("M1")  # the winrates phase of the same model: nothing to load
    kept()
    assert events[-1] == ("check", "M1", 0.07)

    kept.release()  # a judge with its own model needs the memory: the next call starts anew
    kept.serve("M2")
    kept()
    assert events[-2:] == [("close",), ("start", "M2")]


def test_no_weight_check_when_it_is_off(events):
    kept = runner.PolicyEngine("", _config("rollout.check_weights=false"), keep=True)
    kept.serve("M0")
    kept()
    kept.serve("M1")
    kept()
    assert events == [("start", "M0"), ("load", "M1")]


def test_each_phase_starts_from_the_random_state_of_a_new_engine(events):
    # The transformers engine seeds torch's generator with rollout.seed as it starts; a kept one
    # must draw at a phase's start what a new one would, and a stage's own seed still applies.
    config = _config("rollout.seed=5")
    kept = runner.PolicyEngine("", config, keep=True)
    kept.serve("M0")
    kept()
    torch.rand(7)  # the phase draws
    kept.serve("M1")
    kept()
    assert torch.equal(torch.rand(3), _draw(5))

    kept.serve("M1")
    kept.seed_stage(2, "samples")  # a rollout stage seeds itself before its first call
    kept()
    assert torch.equal(torch.rand(3), _draw(runner.stage_seed(5, 2, "samples")))


def _draw(seed: int) -> torch.Tensor:
    torch.manual_seed(seed)
    return torch.rand(3)


def test_on_a_gpu_an_engine_that_cannot_sleep_is_refused(events, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    kept = runner.PolicyEngine("", _config("rollout.sleep=off"), keep=True)
    kept.serve("M0")
    with pytest.raises(SetupError, match="rollout.keep_engine=on on a GPU") as e:
        kept()
    assert "rollout.sleep=off" in str(e.value)
    assert events[-1] == ("close",) and kept.engine is None


def test_the_time_breakdown_counts_an_in_place_load_as_model_load(tmp_path):
    from srlm.report.load import time_breakdown
    from srlm.rundir import write_json, write_jsonl

    at = "2026-01-01T00:00:00"
    write_json(
        tmp_path / "iter_01" / "stages.json",
        {
            "evaluate": {
                "started": at,
                "seconds": 30.0,
                "engine_load_seconds": 2.5,
                "finished": at,
                "stats": {},
            }
        },
    )
    phase = {"phase": "evaluate", "iteration": 1, "started": at, "seconds": 30.5}
    write_jsonl(tmp_path / "phases.jsonl", [phase | {"stages": [[1, "evaluate"]]}])
    (row,) = time_breakdown(tmp_path)
    assert (row["evaluation"], row["model_load"], row["engine_start"]) == (27.5, 2.5, 0)
    assert row["startup"] == pytest.approx(0.5)


def test_the_preflight_refuses_a_kept_vllm_engine_without_sleep_on_a_gpu():
    from srlm.config import RolloutConfig
    from srlm.preflight import _rollout_devices

    kept = RolloutConfig(engine="vllm", keep_engine="on", sleep="off")
    (problem,) = _rollout_devices("rollout", kept, gpus=1)
    assert problem.startswith("rollout.keep_engine=on on a GPU") and "rollout.sleep=off" in problem
    assert _rollout_devices("rollout", kept, gpus=0) == []  # on CPU the engine only waits
    auto = RolloutConfig(engine="vllm", keep_engine="on", sleep="auto")
    assert _rollout_devices("rollout", auto, gpus=1) == []
