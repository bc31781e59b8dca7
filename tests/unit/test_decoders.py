"""The System-2 decoders (srlm/inference): parsers worked by hand, each decoder's control flow
on a scripted engine, and the refusals at start."""

from __future__ import annotations

import pytest

from srlm.compose import compose_or_explain, validate
from srlm.config import (
    BestOfNDecoderConfig,
    BsmDecoderConfig,
    CoveDecoderConfig,
    S2aDecoderConfig,
    SelfConsistencyDecoderConfig,
)
from srlm.errors import Problems
from srlm.inference.base import Query, decoder_names, get_decoder
from srlm.inference.decoders import majority
from srlm.inference.prompts import parse_numbered, parse_qa_pairs, parse_rewrite
from srlm.inference.questions import decoded_stats, task_questions
from srlm.rollout.base import Completion


# ---------------------------------------------------------------- parsers
def test_parse_numbered_reads_numbers_bullets_and_question_labels_and_dedupes():
    text = "Sure:\n1. Is 12 a multiple of 4?\n2) Is 16 a multiple of 4?\n- is 12 a multiple of 4?\nQ3: What is 20 / 4?"
    assert parse_numbered(text, 5) == [
        "Is 12 a multiple of 4?",
        "Is 16 a multiple of 4?",
        "What is 20 / 4?",
    ]
    assert parse_numbered(text, 1) == ["Is 12 a multiple of 4?"]
    assert parse_numbered("no list here", 3) == []


def test_parse_qa_pairs_needs_an_answer_after_each_question():
    text = "Q1: What is 40 + 20?\nA1: 60\nQ2: What is 5 + 4?\nQ3: What is 9 + 0?\nA3: 9"
    assert parse_qa_pairs(text, 5) == [("What is 40 + 20?", "60"), ("What is 9 + 0?", "9")]
    assert parse_qa_pairs(text, 1) == [("What is 40 + 20?", "60")]


def test_parse_rewrite_takes_the_two_labelled_parts():
    text = "Context: Mia has a garden.\nIt is big.\nQuestion: What is 45 + 24?\n"
    assert parse_rewrite(text) == ("Mia has a garden.\nIt is big.", "What is 45 + 24?")
    # An empty context is a valid rewrite: nothing in the text was relevant.
    assert parse_rewrite("Context:\nQuestion: What is 2 + 3?") == ("", "What is 2 + 3?")
    assert parse_rewrite("Question: What is 2 + 3?") is None
    assert parse_rewrite("Context: x\nQuestion:   ") is None


def test_majority_normalises_and_breaks_ties_by_the_first_seen():
    assert majority(["43", "43.", "12", None]) == ("43", 2, False)
    assert majority(["12", "43", "43", "12"]) == ("12", 2, True)
    assert majority([None, None]) == (None, 0, False)


def test_decoded_stats_by_hand():
    rows = [
        {"correct": True, "score": 1.0, "pred": "5", "tokens": 10, "calls": 1, "failures": []},
        {
            "correct": False,
            "score": 0.5,
            "pred": None,
            "tokens": 30,
            "calls": 3,
            "failures": ["plan"],
        },
    ]
    f = decoded_stats(rows, 4.0)
    assert f == {
        "questions": 2,
        "accuracy": 0.5,
        "score": 0.75,
        "answered_rate": 0.5,
        "tokens": 20,
        "calls": 2,
        "failure_rate": 0.5,
        "seconds": 4.0,
    }


# ---------------------------------------------------------------- control flow, scripted engine
class Tokenizer:
    chat_template = "fake"

    def apply_chat_template(self, messages, tokenize=False, add_generation_prompt=True):
        return "".join(f"<{m['role']}>{m['content']}" for m in messages) + "<assistant>"


class Scripted:
    """Answers by the first rule whose key is in the prompt's last user turn; every reply is
    `tokens` tokens long. Records each call's prompts."""

    def __init__(self, rules: list[tuple[str, list[str]]], tokens: int = 5):
        self.tokenizer = Tokenizer()
        self.rules, self.tokens = rules, tokens
        self.calls: list[tuple[str, list[str], int, float]] = []

    def generate(self, prompts, sampling, n=1, desc=""):
        self.calls.append((desc, prompts, n, sampling.temperature))
        return [[self._reply(p, k) for k in range(n)] for p in prompts]

    def _reply(self, prompt: str, k: int) -> Completion:
        last = prompt.rsplit("<user>", 1)[-1]
        for key, replies in self.rules:
            if key in last:
                return Completion(replies[k % len(replies)], self.tokens, "stop")
        raise AssertionError(f"no rule for {last!r}")


def _query(q: str = "What is 45 + 24?", gold: str = "69") -> Query:
    return Query([{"role": "system", "content": "Answer."}, {"role": "user", "content": q}], gold)


def test_self_consistency_returns_the_first_sample_of_the_majority_answer():
    eng = Scripted(
        [("45 + 24", ["Final answer: 59", "so 69\nFinal answer: 69", "Final answer: 69.", "x"])]
    )
    dec = get_decoder(None, SelfConsistencyDecoderConfig(n=4))
    [d] = dec.decode([_query()], lambda: eng)
    assert d.response == "so 69\nFinal answer: 69"
    assert d.trace["majority"] == "69" and d.trace["votes"] == 2 and d.trace["chosen"] == 1
    assert d.tokens == 20 and d.calls == 4 and d.failures == []
    assert eng.calls[0][2] == 4  # one batched call, n samples


def test_best_of_n_picks_the_best_score_of_the_run_reward():
    from srlm.compose import compose

    config = validate(compose(["method=irpo"]))  # reward=verifiable: checks the gold answer
    eng = Scripted([("45 + 24", ["Final answer: 59", "Final answer: 69", "Final answer: 69"])])
    dec = get_decoder(config, BestOfNDecoderConfig(n=3))
    [d] = dec.decode([_query()], lambda: eng)
    assert d.response == "Final answer: 69"
    assert d.trace["scores"] == [0.0, 1.0, 1.0] and d.trace["chosen"] == 1
    assert d.trace["tied_best"] == 2


def test_best_of_n_with_the_policy_as_judge_counts_the_judging_as_its_cost():
    from srlm.compose import compose

    config = validate(compose(["method=self_reward", "reward.samples=3"]))
    eng = Scripted(
        [
            ("Final answer: 69", ["Good.\nScore: 5"]),
            ("Final answer: 59", ["Wrong.\nScore: 1"]),
            ("45 + 24", ["Final answer: 59", "Final answer: 69"]),
        ]
    )
    [d] = get_decoder(config, BestOfNDecoderConfig(n=2)).decode([_query()], lambda: eng)
    assert d.response == "Final answer: 69" and d.trace["scores"] == [1.0, 5.0]
    # Two samples of 5 tokens, each judged 3 times (5 tokens per judgement).
    assert d.trace["judge_tokens"] == 30 and d.tokens == 10 + 30


def test_factored_cove_answers_each_check_without_the_draft_and_revises_from_them():
    eng = Scripted(
        [
            ("Write up to", ["1. What is 40 + 20?\n2. What is 5 + 4?"]),
            ("These checks", ["Final answer: 69"]),
            ("What is 40 + 20?", ["60"]),
            ("What is 5 + 4?", ["9"]),
            ("45 + 24", ["Final answer: 59"]),
        ]
    )
    dec = get_decoder(None, CoveDecoderConfig(variant="factored", questions=3))
    [d] = dec.decode([_query()], lambda: eng)
    assert d.response == "Final answer: 69"
    assert d.trace["draft"] == "Final answer: 59"
    assert d.trace["checks"] == [["What is 40 + 20?", "60"], ["What is 5 + 4?", "9"]]
    verify = next(c for c in eng.calls if c[0] == "CoVe: verify")
    assert len(verify[1]) == 2 and not any("59" in p for p in verify[1])
    final = next(c for c in eng.calls if c[0] == "CoVe: final answer")[1][0]
    assert "Q: What is 40 + 20?\nA: 60" in final and "<system>Answer." in final
    # draft, plan, two checks, final answer
    assert d.calls == 5 and d.tokens == 25


def test_cove_without_a_readable_plan_keeps_the_draft_and_counts_it():
    eng = Scripted([("Write up to", ["I cannot."]), ("45 + 24", ["Final answer: 59"])])
    [d] = get_decoder(None, CoveDecoderConfig()).decode([_query()], lambda: eng)
    assert d.response == "Final answer: 59" and d.failures == ["plan"]
    assert d.calls == 2 and d.tokens == 10  # the draft counted once, the plan once


def test_two_step_and_joint_cove():
    two = Scripted(
        [
            ("Answer each of these", ["1. 60\n2. 9"]),
            ("Write up to", ["1. What is 40 + 20?\n2. What is 5 + 4?"]),
            ("These checks", ["Final answer: 69"]),
            ("45 + 24", ["Final answer: 59"]),
        ]
    )
    [d] = get_decoder(None, CoveDecoderConfig(variant="two_step")).decode([_query()], lambda: two)
    assert d.trace["checks"] == [["What is 40 + 20?", "60"], ["What is 5 + 4?", "9"]]
    joint = Scripted(
        [
            ("and answer each", ["Q1: What is 40 + 20?\nA1: 60"]),
            ("These checks", ["Final answer: 69"]),
            ("45 + 24", ["Final answer: 59"]),
        ]
    )
    [d] = get_decoder(None, CoveDecoderConfig(variant="joint")).decode([_query()], lambda: joint)
    assert d.trace["checks"] == [["What is 40 + 20?", "60"]] and d.calls == 3


def test_s2a_answers_the_rewrite_and_falls_back_to_the_original():
    q_op = "What is 45 + 24? I think the answer is 59."
    eng = Scripted(
        [
            ("user:\nWhat is 45 + 24? I think", ["Context:\nQuestion: What is 45 + 24?"]),
            ("user:\nWhat is 3 + 4? I think", ["no labels"]),
            ("I think", ["Final answer: 59"]),
            ("What is", ["Final answer: 69"]),
        ]
    )
    dec = get_decoder(None, S2aDecoderConfig())
    d1, d2 = dec.decode([_query(q_op), _query("What is 3 + 4? I think it is 8.", "7")], lambda: eng)
    assert d1.trace["answered"] == "What is 45 + 24?" and d1.response == "Final answer: 69"
    assert d1.failures == [] and d1.calls == 2
    assert d2.failures == ["rewrite"] and d2.trace["answered"].startswith("What is 3 + 4? I think")
    keep = get_decoder(None, S2aDecoderConfig(keep_original=True))
    [d] = keep.decode([_query(q_op)], lambda: eng)
    assert d.trace["answered"].startswith(q_op) and "relevant part" in d.trace["answered"]


def test_bsm_solves_each_branch_alone_and_merges():
    eng = Scripted(
        [
            ("Break this task", ["1. Add the tens\n2. Add the ones"]),
            ("Solve only this part", ["done"]),
            ("Parts of this task", ["Final answer: 69"]),
        ]
    )
    [d] = get_decoder(None, BsmDecoderConfig(branches=3)).decode([_query()], lambda: eng)
    assert d.response == "Final answer: 69"
    assert d.trace["solutions"] == [["Add the tens", "done"], ["Add the ones", "done"]]
    assert d.calls == 4 and d.tokens == 20
    one = Scripted([("Break this task", ["1. Add them"]), ("45 + 24", ["Final answer: 69"])])
    [d] = get_decoder(None, BsmDecoderConfig()).decode([_query()], lambda: one)
    assert d.failures == ["branch"] and d.response == "Final answer: 69"


def test_a_teacher_temperature_replaces_the_answer_steps_only():
    eng = Scripted([("Write up to", ["nothing"]), ("45 + 24", ["Final answer: 69"])])
    get_decoder(None, CoveDecoderConfig()).decode([_query()], lambda: eng, temperature=0.7)
    temps = {desc: t for desc, _, _, t in eng.calls}
    assert temps == {"CoVe: draft": 0.7, "CoVe: plan": 0.0}


def test_task_questions_ask_with_the_task_instruction_and_examples():
    qs = task_questions("add2_opinion", 3)
    messages = qs.ask(qs.rows[0])
    assert messages[0]["role"] == "system" and messages[-1]["content"] == qs.rows[0]["question"]
    assert len(messages) == 1 + 2 * 3 + 1
    assert qs.score("Final answer: " + qs.rows[0]["answer"], qs.rows[0]["answer"])["correct"]
    assert qs.score(None, qs.rows[0]["answer"])["score"] == 0.0


def test_eval_max_questions_caps_the_methods_own_questions_too():
    from srlm.config import EvalConfig
    from srlm.inference.questions import load_questions

    class Method:  # a method whose held-out questions are its own (IRPO, system2_distill)
        def eval_questions(self):
            return task_questions("add2", 5)

    assert len(load_questions(EvalConfig(max_questions=2), Method()).rows) == 2
    assert len(load_questions(EvalConfig(max_questions=None), Method()).rows) == 5
    assert len(load_questions(EvalConfig(questions="task:add2", max_questions=3), None).rows) == 3


# ---------------------------------------------------------------- refusals, before any model
def _problems(overrides: list[str]) -> str:
    with pytest.raises(Problems) as e:
        validate(compose_or_explain(overrides))
    return str(e.value)


def test_every_decoder_composes_and_validates():
    for name in decoder_names():
        config = validate(compose_or_explain(["method=irpo", f"inference={name}"]))
        assert config.inference.name == name


def test_an_unknown_decoder_is_one_line_naming_the_options():
    msg = _problems(["inference=beam"])
    assert "inference/beam" in msg and "self_consistency" in msg and "\n" not in msg.strip()


def test_a_voting_decoder_needs_two_samples():
    assert "inference.n=1" in _problems(["inference=self_consistency", "inference.n=1"])
    assert "inference.n=1" in _problems(["method=irpo", "inference=best_of_n", "inference.n=1"])


def test_best_of_n_refuses_a_reward_that_cannot_rank_answers():
    msg = _problems(["method=irpo", "inference=best_of_n", "reward@inference.reward=verdict_label"])
    assert "inference.reward=verdict_label" in msg
    # The win-rate prompts have no gold answer for reward=verifiable to check.
    msg = _problems(["inference=best_of_n", "reward@inference.reward=verifiable"])
    assert "no gold answer" in msg


def test_a_decoder_cannot_write_tpos_hidden_thought_answers():
    assert "method=tpo" in _problems(["method=tpo", "inference=s2a"])
    validate(
        compose_or_explain(
            ["method=tpo", "inference=s2a", "eval.win_rates=false", "eval.questions=task:add2"]
        )
    )


def test_a_decoder_with_nothing_to_answer_is_refused():
    msg = _problems(["eval.win_rates=false", "inference=cove"])
    assert "eval.questions" in msg
