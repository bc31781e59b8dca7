"""The evaluate stage's flow on fake engines: answers stored per model, the policy's judging of
labelled pairs, win rates of M_t against M_0 and M_{t-1} judged in both orders by a fixed
judge, and `python -m srlm.evaluate`'s choice of models. Numbers worked by hand."""

from __future__ import annotations

import pytest

from srlm.compose import compose, validate
from srlm.eval.stage import ANSWERS, JUDGE, WINRATES, Evaluation, judged_instruction
from srlm.evaluate import _is_eval_override, trained_models
from srlm.methods import get_method
from srlm.rewards.base import reward_class
from srlm.rundir import RunDir, read_jsonl
from tests.unit.test_rewards import FakeEngine


def _evaluation(tmp_path, *overrides) -> Evaluation:
    cfg = validate(
        compose(
            [
                "method=self_reward",
                "rollout=hf",
                "logger=none",
                f"run_dir={tmp_path}",
                "eval.max_prompts=4",
                "eval.max_pairs=3",
                *overrides,
            ]
        )
    )
    run = RunDir(tmp_path)
    return Evaluation(cfg, run, get_method("self_reward")(cfg, run))


def _policy(answer: str, chosen_score: int = 4, rejected_score: int = 1):
    """Answers every held-out prompt with `answer`; as a judge, scores the labelled pairs'
    chosen responses chosen_score and the rejected ones rejected_score."""
    rejected = {"The capital of Japan is Kyoto.", "7 multiplied by 6 is 48."}

    def reply(prompt: str, k: int) -> str:
        if "Score:" in prompt or "points" in prompt:  # the judge's rubric prompt
            bad = any(r in prompt for r in rejected) or "Mars and Mercury" in prompt
            return f"Reasons.\nScore: {rejected_score if bad else chosen_score}"
        return answer

    return FakeEngine(reply)


def test_answers_and_judge_accuracy_of_one_model(tmp_path):
    ev = _evaluation(tmp_path)
    assert ev.win_rates and ev.judge_accuracy  # self_reward: answers are trained, the policy judges
    stats = ev.evaluate(0, lambda: _policy("plain answer"))
    rows = read_jsonl(tmp_path / "iter_00" / f"{ANSWERS}.jsonl")
    assert len(rows) == 4 and all(r["response"] == "plain answer" for r in rows)
    assert stats["eval_prompts"] == 4 and stats["response_tokens"] == 5  # FakeEngine: 5 tokens each
    # 3 labelled pairs, each chosen scored 4 and rejected 1: all right, no ties.
    assert stats["judge_accuracy"] == 1.0 and stats["judge_tie_rate"] == 0.0
    assert stats["judge_mean_chosen"] == 4.0 and stats["judge_mean_rejected"] == 1.0
    assert len(read_jsonl(tmp_path / "iter_00" / f"{JUDGE}.jsonl")) == 3
    # A judge that scores both sides alike is right on none and ties on all.
    stats = ev.evaluate(0, lambda: _policy("plain answer", 3, 3))
    assert stats["judge_accuracy"] == 0.0 and stats["judge_tie_rate"] == 1.0


def _prefers_better(prompt: str, k: int) -> str:
    """A judge that prefers the answer containing "better", wherever it is shown."""
    a = prompt.index("Assistant A's Answer")
    b = prompt.index("Assistant B's Answer")
    better = prompt.find("better", a)
    if better == -1:
        return "Same. [[C]]"
    return "[[A]]" if better < b else "[[B]]"


def _verdict_logprobs(context: str) -> list[float]:
    """Log-probs of A and B after "[[": the same preference as _prefers_better (equal: a tie)."""
    written = _prefers_better(context, 0)
    return [0.0 if f"[[{x}]]" in written else -5.0 for x in "AB"]


@pytest.mark.parametrize("mode", ["parse", "probability"])
def test_win_rates_against_m0_and_the_previous_model(tmp_path, monkeypatch, mode):
    ev = _evaluation(tmp_path, "eval.judge_accuracy=false", f"eval.judge.verdict_mode={mode}")
    ev.evaluate(0, lambda: _policy("plain answer"))
    ev.evaluate(1, lambda: _policy("a better answer"))
    ev.evaluate(2, lambda: _policy("a better answer"))
    judge_engine = FakeEngine(_prefers_better, _verdict_logprobs)
    built = []

    def judge(self, initial_model):
        src = reward_class(self.config.eval.judge.name)(self.config.eval.judge, self.config)
        src.own.engine = judge_engine  # the fixed judge's engine, as if started
        built.append(initial_model)
        return src

    monkeypatch.setattr(Evaluation, "_judge", judge)

    def no_policy():
        raise AssertionError("the fixed judge must not use the policy's engine")

    s1 = ev.compare(1, no_policy, "/runs/x/iter_00/checkpoint")
    # M_1 "better" vs M_0 "plain": judge prefers M_1 in both orders on all 4 prompts.
    assert s1["win_rate_vs_m0"] == 1.0 and s1["order_flip_rate_vs_m0"] == 0.0
    assert "win_rate_vs_prev" not in s1  # M_{t-1} is M_0: not compared twice
    s2 = ev.compare(2, no_policy, "/runs/x/iter_00/checkpoint")
    # M_2 vs M_1: the same answers, no "better" to tell apart: [[C]] in both orders, all ties.
    assert s2["win_rate_vs_m0"] == 1.0
    assert s2["win_rate_vs_prev"] == 0.0 and s2["tie_rate_vs_prev"] == 1.0
    rows = read_jsonl(tmp_path / "iter_02" / f"{WINRATES}.jsonl")
    assert sorted(r["baseline"] for r in rows) == ["m0"] * 4 + ["prev"] * 4
    # Every comparison was shown in both orders.
    assert len(judge_engine.prompts) == 2 * (4 + 8)
    assert all(r["judgement_ab"] and r["judgement_ba"] for r in rows)
    if mode == "probability":
        # P(A) = 1 / (1 + e^-5) = 0.99331 with M_2 first, P(B) the same with it second.
        assert s2["soft_win_rate_vs_m0"] == pytest.approx(0.99331, abs=1e-5)
        assert s2["soft_win_rate_vs_prev"] == pytest.approx(0.5)  # equal log-probs: no lean
    else:
        assert s2["soft_win_rate_vs_m0"] is None and all(r["pref"] is None for r in rows)
    assert built == ["/runs/x/iter_00/checkpoint"] * 2


def test_win_rates_need_the_baselines_answers(tmp_path):
    ev = _evaluation(tmp_path, "eval.judge_accuracy=false")
    ev.evaluate(1, lambda: _policy("a better answer"))
    with pytest.raises(FileNotFoundError, match="srlm.evaluate"):
        ev.compare(1, lambda: None, "/m0")


def test_methods_choose_what_is_measured(tmp_path):
    def flags(*o):
        cfg = validate(compose(["rollout=hf", "logger=none", f"run_dir={tmp_path}", *o]))
        run = RunDir(tmp_path)
        ev = Evaluation(cfg, run, get_method(cfg.method.name)(cfg, run))
        return ev.win_rates, ev.judge_accuracy

    assert flags("method=irpo") == (False, False)  # accuracy against gold answers instead
    assert flags("method=thinking_judge") == (False, False)  # its own labelled-pair evaluation
    assert flags("method=tpo") == (True, True)
    assert flags("method=meta_reward") == (True, True)
    # A separate judge model is not the policy: nothing of the policy's judging to measure.
    assert flags("method=self_reward", "reward=judge_model", "reward.model.source=/j") == (
        True,
        False,
    )
    assert flags("method=self_reward", "eval.enabled=false") == (False, False)
    assert flags("method=irpo", "eval.win_rates=true") == (True, False)


def test_bad_eval_settings_name_the_key():
    from srlm.errors import ConfigError

    with pytest.raises(ConfigError, match="eval.max_prompts"):
        validate(compose(["eval.max_prompts=0"]))


def test_judged_instruction_of_several_turns():
    assert judged_instruction(["Only turn."]) == "Only turn."
    text = judged_instruction(["First.", "Second."])
    assert (
        text.index("First.") < text.index("Second.") and "(the turn to answer now) Second." in text
    )


def test_trained_models_follow_the_runner(tmp_path):
    run = RunDir(tmp_path)
    run.mark_finished(0, "warm_start")
    run.checkpoint(0).mkdir()
    run.mark_finished(1, "train", {"skipped": "no training examples"})  # M_2 = M_1
    run.mark_finished(2, "train")
    run.checkpoint(2).mkdir()
    assert trained_models(run, "/base") == [
        (0, str(run.checkpoint(0))),
        (1, str(run.checkpoint(0))),
        (2, str(run.checkpoint(2))),
    ]
    run.mark_finished(2, "evaluate")
    run.forget(2, ("evaluate", "winrates"))
    assert not run.finished(2, "evaluate") and run.finished(2, "train")


def test_only_evaluation_settings_may_change():
    assert _is_eval_override("eval.max_prompts=4") and _is_eval_override(
        "reward@eval.judge=thinking_judge"
    )
    assert _is_eval_override("method.eval_maj_k=8")
    assert not _is_eval_override("optimizer.beta=0.5")


def test_run_config_of_an_older_run_loads_with_evaluation_overrides(tmp_path, capsys):
    import yaml

    from srlm.errors import ConfigError
    from srlm.evaluate import load_run_config

    cfg = validate(
        compose(
            [
                "method=tpo",
                "rollout=hf",
                "logger=none",
                f"run_dir={tmp_path}",
                "optimizer.beta=0.3",
                "+data.field_map={instruction: query}",
            ]
        )
    )
    RunDir(tmp_path).bind(cfg)
    saved = yaml.safe_load((tmp_path / "config.yaml").read_text())
    saved["method"]["eval_prompts"] = 0  # a key an older srlm wrote
    del saved["eval"]  # made before the evaluate stage existed
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(saved))
    moved = tmp_path  # the run directory is wherever it is now
    got = load_run_config(moved, ["eval.max_prompts=5"])
    assert got.method.name == "tpo" and got.optimizer.beta == 0.3 and got.eval.max_prompts == 5
    assert got.data.field_map == {"instruction": "query"} and got.run_dir == str(moved)
    assert "method.eval_prompts" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="eval.max_promts"):
        load_run_config(moved, ["eval.max_promts=5"])
    with pytest.raises(ConfigError, match="config.yaml is missing"):
        load_run_config(tmp_path / "nowhere", [])


def test_several_turns_are_answered_turn_by_turn(tmp_path):
    ev = _evaluation(
        tmp_path, "eval.judge_accuracy=false", "eval.prompts=eval_mt", "eval.max_prompts=2"
    )
    engine = _policy("my answer")
    ev.evaluate(0, lambda: engine)
    rows = read_jsonl(tmp_path / "iter_00" / f"{ANSWERS}.jsonl")
    assert [len(r["answers"]) for r in rows] == [2, 2]
    # Turn 2 is asked after the model's own answer to turn 1.
    second = [p for p in engine.prompts if rows[0]["turns"][1] in p]
    assert len(second) == 1 and second[0].index(rows[0]["turns"][0]) < second[0].index(
        "my answer"
    ) < second[0].index(rows[0]["turns"][1])


def test_an_evaluation_without_its_files_is_not_complete(tmp_path):
    ev = _evaluation(tmp_path)
    ev.run.mark_finished(1, "evaluate", {"skipped": "an older evaluation"})
    assert not ev.complete(1)  # the runner measures it again
    ev.evaluate(1, lambda: _policy("an answer"))
    assert ev.complete(1)
