"""The thinking judge's pure parts: triple and plan parsing, order bookkeeping, pairs, metrics."""

from __future__ import annotations

import pytest

from srlm.compose import compose, validate
from srlm.errors import ConfigError
from srlm.judging import (
    PLAN_END,
    PLAN_START,
    assemble_judgement,
    judge_messages,
    parse_judge_output,
)
from srlm.methods.thinking_judge import (
    MODIFIED_END,
    MODIFIED_Q,
    MODIFIED_START,
    arrange,
    correct_verdict,
    execution_messages,
    extract_plan,
    is_correct,
    iteration_slices,
    judge_metrics,
    pair_executions,
    parse_triple,
    plan_messages,
    preferred,
)

# ---------------------------------------------------------------- triples
GOOD_TRIPLE = f"""{MODIFIED_Q}
How do I keep a cactus healthy indoors?

{MODIFIED_START}
Give it bright light, water it only when the soil is dry, and use a pot that drains.
{MODIFIED_END}"""


def test_triple_is_read_between_the_tags():
    assert parse_triple(GOOD_TRIPLE) == (
        "How do I keep a cactus healthy indoors?",
        "Give it bright light, water it only when the soil is dry, and use a pot that drains.",
    )
    # Text around the sections (chatter before, a sign-off after) is ignored.
    assert parse_triple("Sure! Here it is.\n" + GOOD_TRIPLE + "\nHope this helps.") == parse_triple(
        GOOD_TRIPLE
    )


@pytest.mark.parametrize(
    "text",
    [
        "",
        "How do I keep a cactus healthy indoors? Water it rarely.",  # no tags at all
        GOOD_TRIPLE.replace(MODIFIED_END, ""),  # truncated before the end tag
        GOOD_TRIPLE.replace(MODIFIED_Q, "[Modified Question]"),  # wrong first tag
        GOOD_TRIPLE.replace(MODIFIED_START, "[The start of the answer]"),  # wrong answer tag
        f"{MODIFIED_Q}\n\n{MODIFIED_START}\nAn answer.\n{MODIFIED_END}",  # empty question
        f"{MODIFIED_Q}\nA question?\n{MODIFIED_START}\n  \n{MODIFIED_END}",  # empty answer
        f"{MODIFIED_START}\nAn answer.\n{MODIFIED_END}\n{MODIFIED_Q}\nA question?",  # out of order
        GOOD_TRIPLE.lower(),  # tags are matched exactly
    ],
)
def test_malformed_triples_are_none(text):
    assert parse_triple(text) is None


# ---------------------------------------------------------------- plans
def test_plan_extraction():
    assert extract_plan(
        f"{PLAN_START}\n1. Check the facts.\n2. Check the tone.\n{PLAN_END}\nextra"
    ) == ("1. Check the facts.\n2. Check the tone.", True)
    # Unterminated (stopped or out of tokens): the plan runs to the end, flagged as not closed.
    assert extract_plan(f"{PLAN_START}\n1. Check the facts.") == ("1. Check the facts.", False)
    assert extract_plan("1. Check the facts.") == (None, False)  # no start tag
    assert extract_plan(f"{PLAN_START}\n   \n{PLAN_END}") == (None, False)  # empty


def test_plan_prompt_never_sees_the_responses():
    chosen, rejected = "Canberra is the capital.", "Sydney has an opera house."
    for shots in (0, 2):
        text = str(plan_messages("What is the capital of Australia?", shots=shots)[-1])
        assert "What is the capital of Australia?" in text
        assert chosen not in text and rejected not in text and "Assistant A" not in text


def test_execution_prompt_has_question_answers_and_plan_in_order():
    msgs = execution_messages("Q?", "first answer", "second answer", "the plan", shots=0)
    user = msgs[-1]["content"]
    assert msgs[0]["role"] == "system" and "[[A]]" in msgs[0]["content"]
    assert (
        user.index("Q?")
        < user.index("first answer")
        < user.index("second answer")
        < user.index("the plan")
    )
    assert len(execution_messages("Q?", "a", "b", "p", shots=2)) == 1 + 2 * 2 + 1


def test_judge_prompt_has_no_plan_and_no_worked_examples():
    msgs = judge_messages("Q?", "first answer", "second answer")
    assert [m["role"] for m in msgs] == ["system", "user"]
    assert PLAN_START in msgs[0]["content"] and "the plan" not in msgs[1]["content"]


# ---------------------------------------------------------------- orders and labels
def test_order_swapping_and_the_correct_verdict():
    assert arrange("good", "bad", "AB") == ("good", "bad")
    assert arrange("good", "bad", "BA") == ("bad", "good")
    assert correct_verdict("AB") == "A" and correct_verdict("BA") == "B"
    # The chosen answer is wherever the correct verdict points, in both orders.
    for order in ("AB", "BA"):
        a, b = arrange("good", "bad", order)
        assert {"A": a, "B": b}[correct_verdict(order)] == "good"
    assert is_correct("A", "AB") and not is_correct("B", "AB")
    assert is_correct("B", "BA") and not is_correct("A", "BA")
    assert not is_correct(None, "AB") and not is_correct("tie", "BA")
    with pytest.raises(ValueError):
        arrange("good", "bad", "BB")


def test_preferred_answer():
    assert preferred("A", "AB") == "chosen" and preferred("A", "BA") == "rejected"
    assert preferred("B", "BA") == "chosen" and preferred("tie", "AB") == "tie"
    assert preferred(None, "AB") is None


# ---------------------------------------------------------------- pairs
def _exec(plan, order, sample, verdict):
    return {
        "plan_id": plan,
        "order": order,
        "sample": sample,
        "verdict": verdict,
        "correct": is_correct(verdict, order),
    }


def test_pairs_are_correct_times_incorrect_per_plan_and_order():
    execs = [
        # plan 0, AB: 2 correct (A), 1 wrong (B), 1 unparseable -> 2 x 2 = 4 pairs
        _exec(0, "AB", 0, "A"),
        _exec(0, "AB", 1, "A"),
        _exec(0, "AB", 2, "B"),
        _exec(0, "AB", 3, None),
        # plan 0, BA: 1 correct (B), 3 wrong (A, A, tie) -> 1 x 3 = 3 pairs
        _exec(0, "BA", 0, "B"),
        _exec(0, "BA", 1, "A"),
        _exec(0, "BA", 2, "A"),
        _exec(0, "BA", 3, "tie"),
        # plan 1, AB: all correct -> 0 pairs; plan 1, BA: all wrong -> 0 pairs
        _exec(1, "AB", 0, "A"),
        _exec(1, "AB", 1, "A"),
        _exec(1, "BA", 0, "A"),
        _exec(1, "BA", 1, None),
    ]
    pairs = pair_executions(execs)
    assert len(pairs) == 4 + 3
    for c, r in pairs:
        assert c["correct"] and not r["correct"]
        assert (c["plan_id"], c["order"]) == (r["plan_id"], r["order"])  # never across plans/orders
    got = {(c["plan_id"], c["order"], c["sample"], r["sample"]) for c, r in pairs}
    assert got == {
        (0, "AB", 0, 2),
        (0, "AB", 0, 3),
        (0, "AB", 1, 2),
        (0, "AB", 1, 3),
        (0, "BA", 0, 1),
        (0, "BA", 0, 2),
        (0, "BA", 0, 3),
    }


def test_no_correct_execution_gives_no_pair():
    assert (
        pair_executions([_exec(0, "AB", 0, "B"), _exec(0, "BA", 0, "A"), _exec(0, "AB", 1, None)])
        == []
    )


# ---------------------------------------------------------------- training sequence
def test_assembled_judgement_format_and_verdict():
    text = assemble_judgement("1. Check the facts.", "A is right; B is wrong.\n[[A]]", "A")
    assert text == (
        "[Start of Evaluation Plan]\n1. Check the facts.\n[End of Evaluation Plan]\n"
        "[Start of Plan Execution]\nA is right; B is wrong.\n[[A]]\n[End of Plan Execution]\n"
        "[Final Verdict]\n[[A]]"
    )
    assert parse_judge_output(text) == "A"
    assert parse_judge_output(assemble_judgement("p", "looks even [[C]]", "tie")) == "tie"
    # An execution without a readable verdict gets no verdict section, and stays unreadable.
    bad = assemble_judgement("p", "Both [[A]] and [[B]] are fine.", None)
    assert "[Final Verdict]" not in bad and parse_judge_output(bad) is None


def test_final_verdict_section_decides():
    # The plan quotes both tokens; the final section is what counts.
    text = 'Plan: answer "[[A]]" or "[[B]]".\n[Final Verdict]\n[[B]]'
    assert parse_judge_output(text) == "B"
    assert parse_judge_output("I prefer [[A]].") == "A"  # no section: the whole text
    assert parse_judge_output("[Final Verdict]\nunsure") is None


# ---------------------------------------------------------------- metrics
def test_position_consistent_accuracy_and_flip_rate_by_hand():
    rows = [
        # t1: correct in both orders (A, then B)           -> consistent, correct, no flip
        {"triple_id": "t1", "order": "AB", "verdict": "A"},
        {"triple_id": "t1", "order": "BA", "verdict": "B"},
        # t2: "[[A]]" both times: right first, wrong second -> flip
        {"triple_id": "t2", "order": "AB", "verdict": "A"},
        {"triple_id": "t2", "order": "BA", "verdict": "A"},
        # t3: wrong in both orders (prefers the rejected)   -> consistent but wrong, no flip
        {"triple_id": "t3", "order": "AB", "verdict": "B"},
        {"triple_id": "t3", "order": "BA", "verdict": "A"},
        # t4: unparseable first, right second               -> not in the flip denominator
        {"triple_id": "t4", "order": "AB", "verdict": None},
        {"triple_id": "t4", "order": "BA", "verdict": "B"},
    ]
    m = judge_metrics(rows)
    assert m["triples"] == 4
    assert m["acc_first"] == pytest.approx(2 / 4)  # t1, t2
    assert m["acc_second"] == pytest.approx(2 / 4)  # t1, t4
    assert m["pos_consistent_acc"] == pytest.approx(1 / 4)  # t1 only
    assert m["flip_rate"] == pytest.approx(1 / 3)  # t2 of t1, t2, t3
    assert m["parse_fail_rate"] == pytest.approx(1 / 8)


def test_metrics_without_judgements():
    m = judge_metrics([])
    assert m["triples"] == 0 and m["pos_consistent_acc"] is None
    # A triple judged in one order only is not counted.
    assert judge_metrics([{"triple_id": "t", "order": "AB", "verdict": "A"}])["triples"] == 0


# ---------------------------------------------------------------- data slices and config
def test_fresh_slice_per_iteration():
    assert iteration_slices(100, [5, 17], 3) == [(0, 5), (5, 22), (22, 39)]


@pytest.mark.parametrize(
    "override,needle",
    [
        ("method.executions_per_plan=3", "method.executions_per_plan=3: must be an even number"),
        ("method.plans_per_instruction=0", "method.plans_per_instruction=0"),
        ("method.instructions_per_iteration=[]", "method.instructions_per_iteration=[]"),
        ("method.generation_shots=3", "method.generation_shots=3"),
        ("method.plan_sampling.top_p=0", "method.plan_sampling.top_p=0"),
        ("method.max_pairs_per_instruction=0", "method.max_pairs_per_instruction=0"),
    ],
)
def test_bad_values_name_the_key(override, needle):
    with pytest.raises(ConfigError) as e:
        validate(compose(["method=thinking_judge", "rollout=hf", override]))
    assert needle in str(e.value)


def test_warm_start_reads_the_sft_keys():
    cfg = validate(
        compose(
            ["method=thinking_judge", "rollout=hf", "method.sft_lr=3e-6", "method.sft_epochs=1"]
        )
    )
    ws = cfg.method.warm_start  # what srlm.runner reads
    assert ws.enabled and ws.lr == 3e-6 and ws.epochs == 1
    assert not validate(
        compose(["method=thinking_judge", "rollout=hf", "method.sft_warm_start=false"])
    ).method.warm_start.enabled


def test_too_few_seed_instructions_is_a_clear_error(tmp_path):
    from srlm.methods.thinking_judge import ThinkingJudge
    from srlm.rundir import RunDir

    cfg = validate(
        compose(
            [
                "method=thinking_judge",
                "rollout=hf",
                "method.instructions_per_iteration=[40]",
                "method.iterations=2",
                f"run_dir={tmp_path}",
            ]
        )
    )
    with pytest.raises(ConfigError, match="needs 80 distinct instructions"):
        ThinkingJudge(cfg, RunDir(tmp_path))
