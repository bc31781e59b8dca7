"""IRPO's pure parts: prompt building, reward assignment, pair formation, gold parsing, config."""

from __future__ import annotations

import json

import pytest

from srlm.compose import compose, validate
from srlm.data.arithmetic import FEW_SHOT
from srlm.errors import ConfigError
from srlm.methods.irpo import (
    INSTRUCTION,
    Irpo,
    build_messages,
    load_questions,
    majority_answer,
    make_pairs,
    parse_gold,
    score_sample,
)


class _Template:
    """A stand-in tokenizer whose chat template writes each turn as `<role>: content`."""

    def apply_chat_template(self, messages, tokenize=False, add_generation_prompt=True):
        text = "".join(f"<{m['role']}>: {m['content']}\n" for m in messages)
        return text + ("<assistant>: " if add_generation_prompt else "")


def _config(*overrides):
    return validate(
        compose(["method=irpo", "optimizer=dpo_nll", "rollout=hf", "logger=none", *overrides])
    )


def test_prompt_contains_the_instruction_the_worked_examples_and_the_question(tmp_path):
    method = Irpo(_config(f"run_dir={tmp_path}"), None)
    prompt = method.prompt(_Template(), "What is 31 + 12?")
    assert prompt.startswith(f"<system>: {INSTRUCTION}")
    assert "Final answer: N" in INSTRUCTION
    for shot in FEW_SHOT["add2"]:
        assert f"<user>: {shot['question']}" in prompt
        assert f"<assistant>: {shot['reasoning']}" in prompt
        assert shot["reasoning"].endswith(f"Final answer: {shot['answer']}")
    assert prompt.endswith("<user>: What is 31 + 12?\n<assistant>: ")
    # The examples come before the question, in order.
    assert prompt.index(FEW_SHOT["add2"][2]["question"]) < prompt.index("31 + 12")


def test_zero_shot_prompt_has_no_examples():
    messages = build_messages("What is 2 + 2?", [])
    assert [m["role"] for m in messages] == ["system", "user"]


def test_instruction_and_question_template():
    # The paper set-ups' own prompts: Lanchantin et al. 2025 put the instruction in the user
    # turn around the problem (with braces of its own), and no system turn.
    template = "Solve.\nProblem: {question}\nEnd with $\\boxed{[answer]}$."
    shot = {"question": "1 + 1?", "reasoning": "2. $\\boxed{2}$"}
    messages = build_messages("2 + 3?", [shot], instruction="", template=template)
    assert messages == [
        {"role": "user", "content": "Solve.\nProblem: 1 + 1?\nEnd with $\\boxed{[answer]}$."},
        {"role": "assistant", "content": "2. $\\boxed{2}$"},
        {"role": "user", "content": "Solve.\nProblem: 2 + 3?\nEnd with $\\boxed{[answer]}$."},
    ]
    assert build_messages("q", [], instruction="Think.")[0] == {
        "role": "system",
        "content": "Think.",
    }


def test_a_question_template_without_the_question_is_refused():
    with pytest.raises(ConfigError, match=r"method.question_template='Solve it.': must contain"):
        validate(compose(["method=irpo", "method.question_template=Solve it."]))


def test_real_chat_template_prompt(tmp_path):
    from srlm.models import resolve_model_dir
    from srlm.training.model import load_tokenizer

    cfg = _config(f"run_dir={tmp_path}")
    tok = load_tokenizer(resolve_model_dir(cfg.model.source))
    prompt = Irpo(cfg, None).prompt(tok, "What is 31 + 12?")
    assert prompt.count("Final answer:") == 3 + 1  # three worked examples and the instruction
    assert prompt.rstrip().endswith("assistant")


@pytest.mark.parametrize(
    "response,gold,pred,reward",
    [
        (
            "Tens: 30 + 10 = 40. Ones: 1 + 2 = 3. Together: 40 + 3 = 43.\nFinal answer: 43",
            "43",
            "43",
            1,
        ),
        ("Final answer: 42", "43", "42", 0),
        ("Final answer: 43.", "43", "43.", 1),  # a trailing period is still the number
        ("The sum is 43.", "43", None, 0),  # no "Final answer:": a format failure, 0
        ("Final answer: 40\nWait.\nFinal answer: 43", "43", "43", 1),  # the last one counts
        ("Final answer: 1,234", "1234", "1,234", 1),
    ],
)
def test_reward_is_exact_match_of_the_final_answer(response, gold, pred, reward):
    assert score_sample(response, gold) == {"pred": pred, "reward": reward}


def _rows(rewards, qid="q1", finish=None):
    """Sample rows of one question; `finish` gives each its finish_reason (none: not recorded)."""
    rows = [
        {
            "question_id": qid,
            "question": "What is 1 + 1?",
            "sample": i,
            "response": f"r{i}",
            "tokens": 10 + i,
            "reward": x,
        }
        for i, x in enumerate(rewards)
    ]
    for row, f in zip(rows, finish or [], strict=False):
        row["finish_reason"] = f
    return rows


def test_pairs_walk_winners_and_losers_in_parallel():
    # winners 0, 2; losers 1, 3, 4: K = 4 pairs, each winner against a different loser in turn.
    pairs, why = make_pairs(_rows([1, 0, 1, 0, 0]), k=4)
    assert why is None
    assert [(p["chosen_sample"], p["rejected_sample"]) for p in pairs] == [
        (0, 1),
        (2, 3),
        (0, 4),
        (2, 1),
    ]
    assert all(
        p["chosen"] == f"r{p['chosen_sample']}" and p["rejected"] == f"r{p['rejected_sample']}"
        for p in pairs
    )
    assert pairs[0]["chosen_tokens"] == 10 and pairs[0]["rejected_tokens"] == 11


def test_pairs_never_exceed_the_distinct_combinations():
    pairs, _ = make_pairs(_rows([1, 0]), k=10)
    assert len(pairs) == 1


@pytest.mark.parametrize("rewards,why", [([1, 1, 1], "no_loser"), ([0, 0, 0], "no_winner")])
def test_question_without_a_winner_or_a_loser_is_skipped(rewards, why):
    assert make_pairs(_rows(rewards), k=4) == ([], why)


def test_pairs_stage_counts_on_a_hand_made_sample_set(tmp_path):
    from srlm.rundir import RunDir, read_jsonl, write_jsonl

    cfg = _config(f"run_dir={tmp_path}", "method.pairs_per_question=2")
    method = Irpo(cfg, RunDir(tmp_path))
    rows = (
        _rows([1, 0, 0, 0], "a")
        + _rows([1, 1, 1, 1], "b")
        + _rows([0, 0, 0, 0], "c")
        + _rows([0, 1, 0, 1], "d")
    )
    write_jsonl(method.run.stage_file(1, "rewards"), rows)
    stats = method.run_stage("pairs", 1, engine=None)
    assert stats["pairs"] == 4 and stats["questions_with_pairs"] == 2
    assert stats["skipped_no_winner"] == 1 and stats["skipped_no_loser"] == 1
    assert stats["gold_chosen"] == 0
    pairs = read_jsonl(method.run.stage_file(1, "pairs"))
    assert {p["question_id"] for p in pairs} == {"a", "d"}

    # Training examples use this iteration's pairs, with the same prompt as the samples.
    examples = method.training_examples(1, _Template())
    assert len(examples) == 4
    assert examples[0].prompt == method.prompt(_Template(), "What is 1 + 1?")
    assert (examples[0].chosen, examples[0].rejected) == (pairs[0]["chosen"], pairs[0]["rejected"])


def test_gold_solution_joins_the_winners_when_asked(tmp_path):
    from srlm.rundir import RunDir, read_jsonl, write_jsonl

    cfg = _config(
        f"run_dir={tmp_path}", "method.add_gold_to_winners=true", "method.pairs_per_question=3"
    )
    method = Irpo(cfg, RunDir(tmp_path))
    q = method.train_rows[0]
    rows = [
        {
            "question_id": q["id"],
            "question": q["question"],
            "sample": i,
            "response": "Final answer: 0",
            "tokens": 5,
            "reward": 0,
        }
        for i in range(3)
    ]
    write_jsonl(method.run.stage_file(1, "rewards"), rows)
    stats = method.run_stage("pairs", 1, engine=None)
    assert stats["pairs"] == 3 and stats["skipped_no_winner"] == 0 and stats["gold_chosen"] == 3
    assert all(p["chosen"] == q["solution"] for p in read_jsonl(method.run.stage_file(1, "pairs")))


def test_gsm8k_gold_parsing():
    answer = (
        "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\n"
        "Natalia sold 48+24 = <<48+24=72>>72 clips altogether in April and May.\n#### 72"
    )
    gold, solution = parse_gold(answer)
    assert gold == "72"
    assert "<<" not in solution and "24 clips in May" in solution
    assert solution.endswith("\nFinal answer: 72")
    assert score_sample(solution, gold)["reward"] == 1
    assert parse_gold("The total is 5.\n#### 1,200")[0] == "1200"
    assert parse_gold("17") == ("17", None)


def test_gsm8k_file_rows(tmp_path):
    def write(name, n, prefix):
        path = tmp_path / name
        path.write_text(
            "".join(
                json.dumps({"question": f"{prefix}{i}?", "answer": f"Step {i}.\n#### {i}"}) + "\n"
                for i in range(n)
            )
        )
        return path

    train, test = write("train.jsonl", 5, "Q"), write("test.jsonl", 4, "T")
    cfg = _config(
        f"run_dir={tmp_path}/run",
        "method.task=file",
        f"method.train_file={train}",
        f"method.test_file={test}",
        "method.shots=1",
        "method.train_questions=null",
        "method.test_questions=2",
    )
    train_rows, test_rows, shots, _ = load_questions(cfg.method)
    assert [r["question"] for r in train_rows] == [
        "Q1?",
        "Q2?",
        "Q3?",
        "Q4?",
    ]  # Q0 became the example
    assert [r["answer"] for r in test_rows] == ["0", "1"]
    assert shots == [{"question": "Q0?", "reasoning": "Step 0.\nFinal answer: 0"}]


def test_malformed_data_row_names_file_and_line(tmp_path):
    from srlm.data import DataError

    bad = tmp_path / "train.jsonl"
    bad.write_text('{"question": "Q?", "answer": "#### 1"}\n{"question": "no answer"}\n')
    cfg = _config(
        f"run_dir={tmp_path}/run",
        "method.task=file",
        f"method.train_file={bad}",
        f"method.test_file={bad}",
        "method.shots=0",
    )
    with pytest.raises(DataError, match=r"train.jsonl:2: required field 'answer'"):
        load_questions(cfg.method)


def test_temperature_schedule(tmp_path):
    method = Irpo(_config(f"run_dir={tmp_path}", "method.temperatures=[0.8,0.8,1.3]"), None)
    assert [method.temperature(t) for t in (1, 2, 3, 4, 5)] == [0.8, 0.8, 1.3, 1.3, 1.3]


def test_same_questions_every_iteration_and_disjoint_test_set(tmp_path):
    a = Irpo(_config(f"run_dir={tmp_path}"), None)
    b = Irpo(_config(f"run_dir={tmp_path}", "seed=1"), None)
    assert [r["id"] for r in a.train_rows] == [r["id"] for r in b.train_rows]
    assert [r["id"] for r in a.test_rows] == [
        r["id"] for r in b.test_rows
    ]  # the run seed keeps the test set
    assert not {r["id"] for r in a.train_rows} & {r["id"] for r in a.test_rows}
    assert len(a.train_rows) == 200 and len(a.test_rows) == 100


def test_majority_answer():
    assert majority_answer(["43", "42", "43.", None]) == "43"
    assert majority_answer([None, None]) is None


@pytest.mark.parametrize(
    "override,key",
    [
        ("method.task=add3", "method.task"),
        ("method.samples_per_question=1", "method.samples_per_question"),
        ("method.pairs_per_question=0", "method.pairs_per_question"),
        ("method.temperatures=[]", "method.temperatures"),
        ("method.temperatures=[0.8,-1]", "method.temperatures"),
        ("method.task=file", "method.train_file"),
        ("method.train_file=/x.jsonl", "method.train_file"),
        ("method.shots=4", "method.shots"),
        ("method.train_questions=0", "method.train_questions"),
        ("method.eval_maj_k=-1", "method.eval_maj_k"),
    ],
)
def test_bad_config_names_the_key(override, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        _config(override)


def test_irpo_composes_with_its_loss():
    cfg = _config()
    assert cfg.method.name == "irpo" and cfg.optimizer.loss == "dpo_nll"
    assert cfg.optimizer.beta == 0.1 and cfg.optimizer.alpha == 1.0


def test_worked_examples_from_the_config_replace_the_tasks_and_are_never_asked(tmp_path):
    default = Irpo(_config(f"run_dir={tmp_path}"), None)
    asked = default.train_rows[0]["question"]  # e.g. "What is 31 + 12?"
    a, b = (int(x) for x in asked.removeprefix("What is ").rstrip("?").split(" + "))
    example = (
        f"{{question:'{asked}',reasoning:'We add: {a} + {b} = {a + b}. Final answer: {a + b}'}}"
    )
    cfg = _config(f"run_dir={tmp_path}", f"method.examples=[{example}]", "method.shots=1")
    method = Irpo(cfg, None)
    assert method.shots == [
        {"question": asked, "reasoning": f"We add: {a} + {b} = {a + b}. Final answer: {a + b}"}
    ]
    prompt = method.prompt(_Template(), "What is 40 + 2?")
    assert f"<assistant>: We add: {a} + {b}" in prompt and "Split each number" not in prompt
    assert asked not in {r["question"] for r in method.train_rows + method.test_rows}
    assert len(method.train_rows) == len(default.train_rows) - 1


@pytest.mark.parametrize(
    "examples,key",
    [
        ("[{question:'What is 1 + 2?',reasoning:'It is 3.'}]", r"method\.examples\[0\]\.reasoning"),
        ("[{question:'What is 1 + 2?'}]", r"method\.examples\[0\]"),
    ],
)
def test_bad_worked_example_names_the_key(examples, key):
    with pytest.raises(ConfigError, match=key):
        _config(f"method.examples={examples}", "method.shots=1")
