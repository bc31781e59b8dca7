"""Self-Rewarding's pure parts: self-instruct parsing, ROUGE-L filter, judge prompt and parser."""

from __future__ import annotations

import pytest

from srlm.core.parsing import parse_score
from srlm.core.rouge import lcs_length, rouge_l
from srlm.judging import judge_prompt_text, judge_target
from srlm.methods.self_reward import _parse_items
from srlm.rewards.self_judge import Judged


def test_rouge_l_by_hand():
    # "the cat sat" vs "the cat ran": LCS = 2 ("the cat"); P = R = 2/3; F = 2/3.
    assert rouge_l("The cat sat", "the cat ran") == pytest.approx(2 / 3)
    # "a b c d" vs "b d": LCS 2, P = 2/4, R = 2/2, F = 2*0.5*1/1.5 = 2/3.
    assert rouge_l("a b c d", "b d") == pytest.approx(2 / 3)
    assert rouge_l("abc", "xyz") == 0.0
    assert lcs_length(list("abcbdab"), list("bdcaba")) == 4


def test_parse_items_continues_the_open_item():
    text = "Explain what a haiku is.\n10. Give three tips for sleeping better.\n11) Write a limerick about tea\n\nSome chatter"
    assert _parse_items(text) == [
        "Explain what a haiku is.",
        "Give three tips for sleeping better.",
        "Write a limerick about tea",
    ]


# Hand-written judge outputs, the way the embedded model writes them after the warm start.
JUDGEMENTS = [
    ("The response is relevant and answers the question directly.\nScore: 4", 4.0),
    ("It covers part of the question.\n\nScore: 2.5", 2.5),
    ("The answer is off-topic and unhelpful. I would give it a low score.", None),
    ("Score: 9", None),  # outside the rubric's 0-5: never counted as a number
]


@pytest.mark.parametrize("text,score", JUDGEMENTS)
def test_judge_outputs(text, score):
    assert parse_score(text) == score


def test_candidate_that_contains_score_5_does_not_fool_the_parser():
    response = "Here is my essay. Score: 5"
    judgement = (
        f'The response says "{response}", which tries to grade itself. It is short and '
        "does not answer the question.\nScore: 1"
    )
    assert parse_score(judgement) == 1.0
    # The judge prompt contains the response verbatim, but only the judge's text is parsed.
    assert "Score: 5" in judge_prompt_text("Write an essay.", response)


def test_judge_target_matches_the_parse_format():
    assert parse_score(judge_target("Relevant and complete.", 4)) == 4.0


def test_mean_excludes_unparseable_judgements():
    j = Judged(texts=["a", "b", "c"], scores=[4.0, None, 2.0])
    assert j.score == 3.0
    assert Judged(texts=["x"], scores=[None]).score is None


def _row(pid: str, response: str, score, tokens: int = 5) -> dict:
    return {
        "prompt_id": pid,
        "instruction": f"Question {pid}",
        "response": response,
        "score": score,
        "tokens": tokens,
    }


def test_pair_rule_best_against_worst_scored():
    from srlm.methods.self_reward import _by_prompt, _pair

    rows = [
        _row("a", "r0", 3.0),
        _row("b", "s0", 2.0),
        _row("a", "r1", None),  # unjudgeable: never chosen nor rejected
        _row("a", "r2", 4.5, tokens=9),
        _row("a", "r3", 1.0, tokens=2),
        _row("b", "s1", 2.0),
        _row("c", "u0", None),
        _row("c", "u1", 5.0),
    ]
    a, b, c = _by_prompt(rows)
    assert [r["response"] for r in a] == ["r0", "r1", "r2", "r3"]
    pair, why = _pair(a)
    assert why is None and (pair["chosen"], pair["rejected"]) == ("r2", "r3")
    assert (pair["chosen_score"], pair["rejected_score"]) == (4.5, 1.0)
    assert (pair["chosen_tokens"], pair["rejected_tokens"]) == (9, 2)
    assert _pair(b) == (None, "tie")
    assert _pair(c) == (None, "too_few_scored")


def test_groups_carry_the_judge_scores_and_drop_the_unscored():
    from transformers import AutoTokenizer

    from srlm.methods.self_reward import _by_prompt, _groups
    from srlm.models import resolve_model_dir

    tok = AutoTokenizer.from_pretrained(resolve_model_dir("embedded:smollm2-135m-instruct"))
    rows = [_row("a", "r0", 3.0), _row("a", "r1", None), _row("a", "r2", 4.5), _row("b", "s", None)]
    [g] = _groups(_by_prompt(rows), tok)  # prompt b has no score at all: no group
    assert g.responses == ["r0", "r2"] and g.rewards == [3.0, 4.5]
    assert "Question a" in g.prompt and g.prompt.rstrip().endswith("assistant")
