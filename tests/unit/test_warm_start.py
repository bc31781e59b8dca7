"""The supervised warm start: its IFT + EFT data (data.seed_ift, or srlm's stand-in from the
seed judgements) and its optimizer (WarmStartConfig.optimizer, what srlm.runner trains the
warm start with) and its range checks; EvalPlanner's SFT settings reach it through the
thinking_judge method's sft_* keys."""

from __future__ import annotations

import json

import pytest

from srlm.compose import compose, validate
from srlm.config import ThinkingJudgeConfig, WarmStartConfig
from srlm.errors import ConfigError
from srlm.judging import judge_warm_start_examples
from srlm.methods import get_method
from srlm.rundir import RunDir


def test_default_warm_start_optimizer_is_cosine_sft_to_a_tenth():
    opt = WarmStartConfig(lr=5e-5, epochs=2, batch_size=8).optimizer()
    assert opt.loss == "sft"
    assert (opt.lr, opt.lr_end, opt.schedule) == (5e-5, pytest.approx(5e-6), "cosine")
    assert (opt.epochs, opt.batch_size) == (2, 8)
    assert (opt.warmup_steps, opt.adam_betas, opt.weight_decay) == (0, [0.9, 0.999], 0.0)
    opt.check()


def test_warm_start_optimizer_carries_every_setting():
    # Self-Rewarding's SFT: 5.5e-6 decaying to 1.1e-6 (lr / 5, not srlm's default lr / 10).
    ws = WarmStartConfig(
        lr=5.5e-6,
        lr_end=1.1e-6,
        schedule="linear",
        batch_size=16,
        epochs=3,
        warmup_steps=100,
        adam_betas=[0.9, 0.95],
        weight_decay=0.1,
    )
    ws.check()
    opt = ws.optimizer()
    assert (opt.lr, opt.lr_end, opt.schedule) == (5.5e-6, 1.1e-6, "linear")
    assert (opt.epochs, opt.batch_size) == (3, 16)
    assert (opt.warmup_steps, opt.adam_betas, opt.weight_decay) == (100, [0.9, 0.95], 0.1)


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"warmup_steps": -1}, "method.warm_start.warmup_steps=-1"),
        ({"adam_betas": [0.9]}, "method.warm_start.adam_betas=[0.9]"),
        ({"adam_betas": [0.9, 1.0]}, "method.warm_start.adam_betas=[0.9, 1.0]"),
        ({"weight_decay": -0.1}, "method.warm_start.weight_decay=-0.1"),
        ({"lr_end": 1e-3}, "method.warm_start.lr_end=0.001"),
        ({"schedule": "step"}, "method.warm_start.schedule='step'"),
    ],
)
def test_warm_start_checks_name_the_bad_key(change, key):
    with pytest.raises(ConfigError, match=key.replace("[", r"\[").replace("]", r"\]")):
        WarmStartConfig(lr=1e-4, **change).check()


def test_thinking_judge_sft_keys_reach_the_warm_start_optimizer():
    m = ThinkingJudgeConfig(
        sft_lr=1e-6,
        sft_epochs=2,
        sft_batch_size=2,
        sft_warmup_steps=100,
        sft_adam_betas=[0.9, 0.95],
        sft_weight_decay=0.1,
    )
    m.check()
    opt = m.warm_start.optimizer()
    assert (opt.loss, opt.lr, opt.epochs, opt.batch_size) == ("sft", 1e-6, 2, 2)
    assert (opt.warmup_steps, opt.adam_betas, opt.weight_decay) == (100, [0.9, 0.95], 0.1)


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"sft_warmup_steps": -5}, "method.sft_warmup_steps=-5"),
        ({"sft_adam_betas": [0.9, 0.95, 0.99]}, "method.sft_adam_betas"),
        ({"sft_weight_decay": -1.0}, "method.sft_weight_decay=-1.0"),
    ],
)
def test_thinking_judge_sft_checks_name_the_bad_key(change, key):
    with pytest.raises(ConfigError, match=key):
        ThinkingJudgeConfig(**change).check()


def test_evalplanner_experiment_sets_table_10_sft_settings():
    cfg = validate(compose(["experiment=evalplanner_llama31_70b"]))
    opt = cfg.method.warm_start.optimizer()
    assert (opt.lr, opt.epochs) == (1e-6, 2)
    assert (opt.warmup_steps, opt.adam_betas, opt.weight_decay) == (100, [0.9, 0.95], 0.1)


# ---------------------------------------------------------------- IFT + EFT data (data.seed_ift)
class _Template:
    """A stand-in tokenizer whose chat template writes each turn as `<role>: content`."""

    chat_template = "<role>: content"

    def apply_chat_template(self, messages, tokenize=False, add_generation_prompt=True):
        text = "".join(f"<{m['role']}>: {m['content']}\n" for m in messages)
        return text + ("<assistant>: " if add_generation_prompt else "")


JUDGED = [
    {
        "instruction": "Name a red fruit.",
        "response": "A strawberry.",
        "justification": "Apt.",
        "score": 5,
    },
    {"instruction": "Add 2 and 2.", "response": "5", "justification": "Wrong sum.", "score": 1},
    {"instruction": "Say hi.", "response": "Hello!", "justification": "Fine.", "score": 4},
]
IFT = [
    {"instruction": "Name a planet.", "response": "Mars."},
    {"instruction": "Give a synonym of big.", "response": "Large."},
]


def _user(text: str) -> str:
    return f"<user>: {text}\n<assistant>: "


def test_without_an_ift_file_judgements_scoring_at_least_the_threshold_are_ift():
    ex = judge_warm_start_examples(_Template(), JUDGED, ift_min_score=4)
    # 3 EFT examples, and IFT from the rows scored 5 and 4 (not the 1).
    eft = [e for e in ex if "additive 5-point" in e.prompt]
    ift = [(e.prompt, e.chosen) for e in ex if "additive 5-point" not in e.prompt]
    assert [e.chosen for e in eft] == ["Apt.\nScore: 5", "Wrong sum.\nScore: 1", "Fine.\nScore: 4"]
    assert ift == [(_user("Name a red fruit."), "A strawberry."), (_user("Say hi."), "Hello!")]


def test_an_ift_file_replaces_the_stand_in_and_every_judgement_stays_eft():
    ex = judge_warm_start_examples(_Template(), JUDGED, ift_min_score=4, seed_ift=IFT)
    eft = [e for e in ex if "additive 5-point" in e.prompt]
    ift = [(e.prompt, e.chosen) for e in ex if "additive 5-point" not in e.prompt]
    assert len(eft) == 3
    assert ift == [(_user("Name a planet."), "Mars."), (_user("Give a synonym of big."), "Large.")]


def _jsonl(path, rows) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return str(path)


@pytest.mark.parametrize("method", ["self_reward", "tpo", "meta_reward"])
def test_methods_train_their_warm_start_on_the_ift_file(tmp_path, method):
    ift = _jsonl(tmp_path / "ift.jsonl", IFT)
    judged = _jsonl(tmp_path / "judged.jsonl", JUDGED)
    overrides = [f"method={method}", f"run_dir={tmp_path}/run", f"data.seed_judgements={judged}"]
    if method == "tpo":
        overrides.append("method.warm_start_thought_format=false")
    if method == "meta_reward":
        overrides.append("method.warm_start_meta_format=false")
    m = get_method(method)(
        validate(compose([*overrides, f"data.seed_ift={ift}"])), RunDir(tmp_path / "run")
    )
    prompts = [e.prompt for e in m.warm_start_examples(_Template())]
    # 3 EFT examples and the 2 IFT rows, in the method's prompt (TPO: its thought prompt).
    assert len(prompts) == 5
    assert sum("Name a planet." in p for p in prompts) == 1
    assert not any(p.endswith("Say hi.\n<assistant>: ") for p in prompts)
    stand_in = get_method(method)(validate(compose(overrides)), RunDir(tmp_path / "run"))
    assert len(stand_in.warm_start_examples(_Template())) == 5  # 3 EFT + IFT of scores 5, 4


def test_preflight_refuses_an_ift_row_without_a_response(tmp_path):
    from srlm.errors import Problems
    from srlm.preflight import check

    bad = _jsonl(tmp_path / "ift.jsonl", [IFT[0], {"instruction": "Say bye."}])
    with pytest.raises(Problems) as ei:
        check(compose([f"run_dir={tmp_path}/run", f"data.seed_ift={bad}"]))
    [problem] = ei.value.problems
    assert problem.startswith(f"{bad}:2: required field 'response' is missing")
