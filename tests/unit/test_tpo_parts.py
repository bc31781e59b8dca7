"""TPO's pure parts: thought prompts, thought/response split, length-controlled pairs, stages."""

from __future__ import annotations

import numpy as np
import pytest

from srlm.compose import compose, validate
from srlm.core.selection import length_controlled_scores
from srlm.data import DataError, instruction_order
from srlm.errors import ConfigError
from srlm.methods.tpo import (
    GENERIC_PROMPT,
    SPECIFIC_PROMPT,
    THOUGHT_HEADER,
    Tpo,
    select_pair,
    separator,
    split_output,
    thought_format_demo,
    user_turn,
)
from srlm.rollout.base import Completion
from srlm.rundir import RunDir, read_jsonl, write_jsonl


class _Template:
    """A stand-in tokenizer whose chat template writes each turn as `<role>: content`."""

    def apply_chat_template(self, messages, tokenize=False, add_generation_prompt=True):
        text = "".join(f"<{m['role']}>: {m['content']}\n" for m in messages)
        return text + ("<assistant>: " if add_generation_prompt else "")


class _Engine:
    """Counts whitespace tokens, answers every judge prompt with "Score: 4", keeps the prompts."""

    tokenizer = _Template()

    def __init__(self):
        self.prompts: list[str] = []

    def encode(self, text):
        return text.split()

    def generate(self, prompts, sampling, n=1, desc=""):
        self.prompts += prompts
        return [[Completion("Relevant and useful.\nScore: 4", 6, "stop")] * n for _ in prompts]


def _config(*overrides):
    return validate(compose(["method=tpo", "rollout=hf", "logger=none", *overrides]))


# ---------------------------------------------------------------- prompts
def test_generic_prompt_asks_for_thoughts_then_the_split_key():
    turn = user_turn("Name a red fruit.", "generic")
    assert turn == GENERIC_PROMPT + "Name a red fruit."
    assert '"Here is my thought process:"' in turn and '"Here is my response:"' in turn
    assert turn.index("thought process:") < turn.index("my response:")
    assert separator("generic") == "Here is my response:"


def test_specific_prompt_asks_for_a_draft_and_its_evaluation_then_R():
    turn = user_turn("Name a red fruit.", "specific")
    assert turn == SPECIFIC_PROMPT + "Name a red fruit."
    assert "draft response" in turn and "evaluation" in turn and '"<R>"' in turn
    assert separator("specific") == "<R>"


def test_direct_baseline_has_no_thought_prompt():
    assert user_turn("Name a red fruit.", None) == "Name a red fruit."
    assert separator(None) is None


def test_prompt_is_the_chat_template_around_thought_prompt_and_instruction(tmp_path):
    method = Tpo(_config(f"run_dir={tmp_path}", "method.thought_prompt=specific"), RunDir(tmp_path))
    assert method.prompt(_Template(), "Name a red fruit.") == (
        f"<user>: {SPECIFIC_PROMPT}Name a red fruit.\n<assistant>: "
    )
    direct = Tpo(_config(f"run_dir={tmp_path}", "method.thoughts=false"), RunDir(tmp_path))
    assert (
        direct.prompt(_Template(), "Name a red fruit.")
        == "<user>: Name a red fruit.\n<assistant>: "
    )


# ---------------------------------------------------------------- split
GENERIC_OUTPUTS = [
    (
        "Here is my thought process:\nThe user wants one fruit; keep it short.\n\nHere is my response:\nA strawberry.",
        ("The user wants one fruit; keep it short.", "A strawberry."),
    ),
    # No header before the thoughts: still thoughts, split at the response key.
    (
        "Red fruits: apple, cherry. Pick one.\nHere is my response: An apple.",
        ("Red fruits: apple, cherry. Pick one.", "An apple."),
    ),
    # The response may quote the key: the first occurrence splits.
    (
        'Thinking.\nHere is my response: I start with "Here is my response:" as asked.',
        ("Thinking.", 'I start with "Here is my response:" as asked.'),
    ),
    # No thoughts at all is allowed.
    ("Here is my response: A cherry.", ("", "A cherry.")),
    ("Here is my thought process:\nI think an apple is a good answer. An apple.", None),  # no key
    ("Here is my thought process: hmm\nHere is my response:\n   ", None),  # empty response
    ("here is my response: An apple.", None),  # the key is matched exactly
]
SPECIFIC_OUTPUTS = [
    (
        "Draft: Apple.\nEvaluation: correct but terse; name the colour.\n<R>\nA red apple.",
        ("Draft: Apple.\nEvaluation: correct but terse; name the colour.", "A red apple."),
    ),
    ("Draft: cherry. Good enough.<R>A cherry.</R>", ("Draft: cherry. Good enough.", "A cherry.")),
    ("Draft: cherry. Evaluation: fine.\nFinal response: A cherry.", None),
    ("Draft: cherry.\n<r> A cherry.", None),
]


@pytest.mark.parametrize("text,expected", GENERIC_OUTPUTS)
def test_split_generic(text, expected):
    assert split_output(text, separator("generic")) == expected


@pytest.mark.parametrize("text,expected", SPECIFIC_OUTPUTS)
def test_split_specific(text, expected):
    assert split_output(text, separator("specific")) == expected


def test_split_direct_is_the_whole_output():
    assert split_output("  A strawberry. Here is my response: x ", None) == (
        "",
        "A strawberry. Here is my response: x",
    )
    assert split_output("  \n", None) is None


@pytest.mark.parametrize("kind", ["generic", "specific"])
def test_warm_start_demo_splits_back_into_its_parts(kind):
    demo = thought_format_demo(kind, "A red apple.", "Correct and direct.")
    thought, response = split_output(demo, separator(kind))
    assert response == "A red apple."
    assert thought == "Draft: A red apple.\nEvaluation: Correct and direct."
    assert demo.startswith(THOUGHT_HEADER) == (kind == "generic")


# ---------------------------------------------------------------- pair selection
def test_length_control_lets_a_shorter_answer_beat_a_long_better_scored_one():
    scores = [4.0, 3.0, 1.0, 0.0]
    lengths = [400, 100, 100, 200]
    # By hand. Scores: mean 2, deviations (2, 1, -1, -2), std sqrt(10/4) = 1.5811, so
    # z = (1.2649, 0.6325, -0.6325, -1.2649). Lengths: mean 200, deviations (200, -100, -100, 0),
    # std sqrt(60000/4) = 122.47, so z = (1.6330, -0.8165, -0.8165, 0).
    # rho = 0.5: s = (1.2649 - 0.8165, 0.6325 + 0.4082, -0.6325 + 0.4082, -1.2649)
    #             = (0.4484, 1.0407, -0.2242, -1.2649)
    # -> chosen = sample 1 (score 3, 100 tokens), not sample 0 (score 4, 400 tokens);
    #    rejected = sample 3.
    s = length_controlled_scores(scores, lengths, 0.5)
    assert np.allclose(s, [0.4484, 1.0407, -0.2242, -1.2649], atol=1e-4)
    no_errors = [False] * 4
    assert select_pair(scores, lengths, no_errors, 0.5) == ((1, 3), "judged")
    # Without length control the long, better-scored answer is chosen.
    assert select_pair(scores, lengths, no_errors, 0.0) == ((0, 3), "judged")


def test_parse_error_is_the_rejected_sample():
    scores = [None, 4.0, 2.0, None]
    lengths = [None, 50, 60, None]
    errors = [True, False, False, True]
    # The first parse error is rejected, even though sample 2 has the lowest score.
    assert select_pair(scores, lengths, errors, 0.5) == ((1, 0), "parse_error")
    # One parsed, scored output against a parse error is enough for a pair.
    assert select_pair([3.0, None], [40, None], [False, True], 0.0) == ((0, 1), "parse_error")


def test_groups_without_a_preference_are_dropped():
    # All outputs are parse errors: nothing to choose.
    assert select_pair([None, None], [None, None], [True, True], 0.0) == (None, "no_scored_output")
    # Parsed, but the judge gave no readable score (None) to all but one.
    assert select_pair([3.0, None], [10, 12], [False, False], 0.0) == (None, "too_few_scored")
    # Equal scores: only length would decide, which is not a quality preference.
    assert select_pair([3.0, 3.0, 3.0], [10, 50, 90], [False] * 3, 0.5) == (None, "tied_scores")
    # ... but a parse error among them still gives a pair; the shortest tied output is chosen.
    assert select_pair([3.0, 3.0, None], [50, 10, None], [False, False, True], 0.5) == (
        (1, 2),
        "parse_error",
    )


# ---------------------------------------------------------------- stages without a model
def _samples(t: int) -> list[dict]:
    outputs = {
        # prompt 0: two parsed answers of different quality, one parse error
        0: [
            "Here is my thought process:\nSECRET-A\nHere is my response:\nA strawberry is red.",
            "SECRET-B\nHere is my response:\nFruit.",
            "I forgot the layout entirely.",
        ],
        # prompt 1: all parsed
        1: [
            "SECRET-C\nHere is my response:\nA ripe red cherry.",
            "SECRET-D\nHere is my response:\nCherries.",
        ],
    }
    return [
        {
            "prompt_id": f"{t}-{i}",
            "sample": j,
            "instruction": f"Question {i}?",
            "output": o,
            "tokens": len(o.split()),
            "finish_reason": "stop",
        }
        for i, outs in outputs.items()
        for j, o in enumerate(outs)
    ]


def test_split_and_judge_stages_never_show_the_judge_a_thought(tmp_path):
    method = Tpo(_config(f"run_dir={tmp_path}", "reward.samples=1"), RunDir(tmp_path))
    write_jsonl(method.run.stage_file(1, "samples"), _samples(1))
    engine = _Engine()
    split = method.run_stage("split", 1, lambda: engine)
    assert split["thought_parse_errors"] == 1 and split[
        "thought_parse_error_rate"
    ] == pytest.approx(0.2)
    judged = method.run_stage("judgements", 1, lambda: engine)
    assert judged["judged_responses"] == 4 and judged["mean_score"] == 4.0
    assert len(engine.prompts) == 4  # the parse error is not judged
    for prompt in engine.prompts:
        assert "SECRET" not in prompt and "Here is my response:" not in prompt
    rows = read_jsonl(method.run.stage_file(1, "judgements"))
    assert [r["judged_response"] for r in rows] == [
        "A strawberry is red.",
        "Fruit.",
        None,
        "A ripe red cherry.",
        "Cherries.",
    ]
    assert rows[2]["parse_error"] and rows[2]["score"] is None


def test_pairs_stage_and_training_examples_keep_thoughts_and_thought_prompt(tmp_path):
    method = Tpo(_config(f"run_dir={tmp_path}", "method.length_rho=[0.0]"), RunDir(tmp_path))
    rows = []
    for r in _samples(1):
        parts = split_output(r["output"], method.separator)
        thought, response = parts if parts else (None, None)
        score = {
            "A strawberry is red.": 4.0,
            "Fruit.": 1.0,
            "A ripe red cherry.": 5.0,
            "Cherries.": 2.0,
        }.get(response)
        rows.append(
            r
            | {
                "parse_error": parts is None,
                "thought": thought,
                "response": response,
                "thought_tokens": 1 if parts else None,
                "response_tokens": len(response.split()) if parts else None,
                "score": score,
            }
        )
    write_jsonl(method.run.stage_file(1, "judgements"), rows)
    stats = method.run_stage("pairs", 1, engine=None)
    assert stats["pairs"] == 2 and stats["pairs_rejecting_parse_error"] == 1
    # The judged pair (prompt 1): chosen "A ripe red cherry." (4 tokens) vs "Cherries." (1).
    assert (stats["chosen_tokens"], stats["rejected_tokens"]) == (4, 1)
    pairs = read_jsonl(method.run.stage_file(1, "pairs"))
    assert pairs[0]["chosen"].startswith("Here is my thought process:\nSECRET-A")
    assert (
        pairs[0]["rejected"] == "I forgot the layout entirely." and pairs[0]["rejected_parse_error"]
    )
    assert pairs[1]["chosen"] == "SECRET-C\nHere is my response:\nA ripe red cherry."
    examples = method.training_examples(1, _Template())
    assert examples[1].prompt == f"<user>: {GENERIC_PROMPT}Question 1?\n<assistant>: "
    assert (examples[1].chosen, examples[1].rejected) == (pairs[1]["chosen"], pairs[1]["rejected"])


# ---------------------------------------------------------------- instructions and config
def test_every_iteration_gets_fresh_instructions(tmp_path):
    method = Tpo(
        _config(f"run_dir={tmp_path}", "method.prompts_per_iteration=10", "method.iterations=3"),
        RunDir(tmp_path),
    )
    slices = [method.iteration_instructions(t) for t in (1, 2, 3)]
    assert all(len(s) == 10 for s in slices)
    assert len({x for s in slices for x in s}) == 30
    assert instruction_order(["a", "b", " a ", "c"], 0) == instruction_order(["a", "b", "c"], 0)


def test_too_few_instructions_is_reported_before_any_model_loads(tmp_path):
    cfg = _config(f"run_dir={tmp_path}", "method.prompts_per_iteration=40", "method.iterations=2")
    with pytest.raises(DataError, match=r"method\.prompts_per_iteration=40 needs 80"):
        Tpo(cfg, RunDir(tmp_path))


def test_rho_schedule_last_value_repeats(tmp_path):
    method = Tpo(_config(f"run_dir={tmp_path}", "method.length_rho=[0.0,0.25]"), RunDir(tmp_path))
    assert [method.rho(t) for t in (1, 2, 3, 4)] == [0.0, 0.25, 0.25, 0.25]


@pytest.mark.parametrize(
    "override,needle",
    [
        (
            "method.thought_prompt=fancy",
            "method.thought_prompt='fancy': allowed values are generic, specific",
        ),
        ("method.samples_per_prompt=1", "method.samples_per_prompt=1"),
        ("method.length_rho=[]", "method.length_rho=[]"),
        ("method.length_rho=[0.1,-0.2]", "method.length_rho=[0.1, -0.2]"),
        ("method.sampling.top_p=0", "method.sampling.top_p=0.0"),
        ("method.eval_resamples=-1", "method.eval_resamples=-1"),
    ],
)
def test_bad_config_names_key_and_value(override, needle):
    with pytest.raises(ConfigError) as e:
        _config(override)
    assert needle in str(e.value)


def test_direct_baseline_warm_start_has_no_thought_layout(tmp_path):
    direct = Tpo(_config(f"run_dir={tmp_path}", "method.thoughts=false"), RunDir(tmp_path))
    thinking = Tpo(_config(f"run_dir={tmp_path}"), RunDir(tmp_path))
    assert thinking.m.warm_start_thought_format and thinking.m.warm_start.enabled
    plain = direct.warm_start_examples(_Template())
    demos = thinking.warm_start_examples(_Template())[len(plain) :]
    assert plain and demos and all(GENERIC_PROMPT not in ex.prompt for ex in plain)
    assert all(ex.prompt.startswith(f"<user>: {GENERIC_PROMPT}") for ex in demos)
    assert all(split_output(ex.chosen, "Here is my response:") for ex in demos)


class _EvalEngine(_Engine):
    """First answer of every held-out prompt lacks the separator; resampled answers have it."""

    def __init__(self):
        super().__init__()
        self.answer_calls = 0

    def generate(self, prompts, sampling, n=1, desc=""):
        if "additive 5-point" in prompts[0]:
            return super().generate(prompts, sampling, n, desc)
        self.answer_calls += 1
        text = (
            "no layout here"
            if self.answer_calls == 1
            else "SECRET thoughts\nHere is my response:\nThe answer."
        )
        return [[Completion(text, 5, "stop")] for _ in prompts]


def test_eval_answers_resample_parse_errors_and_return_the_response_only(tmp_path):
    method = Tpo(_config(f"run_dir={tmp_path}"), RunDir(tmp_path))
    engine = _EvalEngine()
    conversations = [[{"role": "user", "content": f"question {i}"}] for i in range(3)]
    rows = method.eval_answers(conversations, lambda: engine, method.m.sampling)
    assert engine.answer_calls == 2  # one resampling round fixed every parse error
    assert [r["response"] for r in rows] == ["The answer."] * 3
    assert all(r["attempts"] == 2 and not r["parse_error"] for r in rows)
    assert all(r["thought"] == "SECRET thoughts" and r["thought_tokens"] == 2 for r in rows)
    # The last user turn carries the thought prompt, as in training.
    assert all("Here is my response:" in p for p in engine.prompts)
