"""Self-Rewarding's and TPO's judgement stages score through reward=..., on a fake engine:
reward=self_judge writes the same rows and statistics as before the reward axis existed, and a
pairwise judge's Elo scores make pairs the same way."""

from __future__ import annotations

import re

import pytest

from srlm.compose import compose, validate
from srlm.judging import judge_prompt_text
from srlm.methods.self_reward import SelfReward
from srlm.methods.tpo import Tpo
from srlm.rundir import RunDir, read_jsonl, write_jsonl
from tests.unit.test_rewards import FakeEngine

QUALITY = {"great": 5, "fine": 3, "poor": 1}


def _judge(prompt: str, k: int) -> str:
    """A pointwise judge that scores by the response word; a pairwise one that prefers the better."""
    if "Assistant A's Answer" in prompt:
        a = re.search(r"Assistant A's Answer\]\n(\w+)", prompt).group(1)
        b = re.search(r"Assistant B's Answer\]\n(\w+)", prompt).group(1)
        return "[[A]]" if QUALITY[a] >= QUALITY[b] else "[[B]]"
    word = re.search(r"<response>(\w+)</response>", prompt).group(1)
    return f"Looks {word}.\nScore: {QUALITY[word]}"


def _config(method: str, *extra: str):
    return validate(
        compose(
            [
                f"method={method}",
                "rollout=hf",
                "logger=none",
                "method.warm_start.enabled=false",
                "reward.samples=1",
                *extra,
            ]
        )
    )


def _samples(t: int, responses: list[list[str]]) -> list[dict]:
    return [
        {
            "prompt_id": f"{t}-{i}",
            "sample": j,
            "instruction": f"question {i}",
            "response": r,
            "tokens": 3,
            "finish_reason": "stop",
        }
        for i, rs in enumerate(responses)
        for j, r in enumerate(rs)
    ]


def test_self_reward_self_judge_rows_and_stats(tmp_path):
    run = RunDir(tmp_path)
    method = SelfReward(_config("self_reward"), run)
    write_jsonl(
        run.iter_dir(1) / "samples.jsonl",
        _samples(1, [["fine", "great", "poor"], ["fine", "fine"]]),
    )
    engine = FakeEngine(_judge)
    stats = method.run_stage("judgements", 1, lambda: engine)
    # The judge prompts are Self-Rewarding's, in sample order.
    assert [
        judge_prompt_text(f"question {i}", r) in p
        for p, (i, r) in zip(
            engine.prompts,
            [(0, "fine"), (0, "great"), (0, "poor"), (1, "fine"), (1, "fine")],
            strict=True,
        )
    ] == [True] * 5
    rows = read_jsonl(run.iter_dir(1) / "judgements.jsonl")
    assert list(rows[0]) == [
        "prompt_id",
        "sample",
        "instruction",
        "response",
        "tokens",
        "finish_reason",
        "judgements",
        "scores",
        "score",
    ]
    assert [r["score"] for r in rows] == [3.0, 5.0, 1.0, 3.0, 3.0]
    assert stats == {
        "judgements": 5,
        "parse_failures": 0,
        "parse_failure_rate": 0.0,
        "truncated_judgements": 0,
        "unscored_responses": 0,
        "mean_score": 3.0,
        "tie_rate": 0.5,
    }
    pairs = method.run_stage("pairs", 1, lambda: engine)
    assert pairs["pairs"] == 1 and pairs["ties_dropped"] == 1


def test_self_reward_with_a_pairwise_judge(tmp_path):
    run = RunDir(tmp_path)
    method = SelfReward(_config("self_reward", "reward=pairwise_judge"), run)
    write_jsonl(run.iter_dir(1) / "samples.jsonl", _samples(1, [["fine", "great", "poor"]]))
    stats = method.run_stage("judgements", 1, lambda: FakeEngine(_judge))
    assert stats["judgements"] == 6 and stats["order_flip_rate"] == 0.0
    method.run_stage("pairs", 1, lambda: None)
    [pair] = read_jsonl(run.iter_dir(1) / "pairs.jsonl")
    assert (pair["chosen"], pair["rejected"]) == ("great", "poor")


@pytest.mark.parametrize("reward", ["self_judge", "pairwise_judge"])
def test_tpo_judges_responses_only_through_the_reward(tmp_path, reward):
    run = RunDir(tmp_path)
    method = Tpo(_config("tpo", f"reward={reward}"), run)
    rows = []
    for r in _samples(1, [["great", "poor", "fine"], ["fine", "poor"]]):
        rows.append(
            r
            | {
                "output": f"secret thought\nHere is my response: {r['response']}",
                "parse_error": False,
                "thought": "secret thought",
                "thought_tokens": 2,
                "response_tokens": 1,
            }
        )
    rows[-1] |= {"parse_error": True, "response": None, "response_tokens": None}
    write_jsonl(run.iter_dir(1) / "split.jsonl", rows)
    engine = FakeEngine(_judge)
    stats = method.run_stage("judgements", 1, lambda: engine)
    assert not any("secret thought" in p for p in engine.prompts)
    assert stats["judged_responses"] == 4
    out = read_jsonl(run.iter_dir(1) / "judgements.jsonl")
    assert out[-1]["judgements"] == [] and out[-1]["score"] is None  # the parse error
    assert out[3]["score"] is not None  # alone in its group, still scored (against the parse error)
    method.run_stage("pairs", 1, lambda: engine)
    pairs = {p["prompt_id"]: p for p in read_jsonl(run.iter_dir(1) / "pairs.jsonl")}
    assert (pairs["1-0"]["chosen_response"], pairs["1-0"]["rejected_response"]) == ("great", "poor")
    assert pairs["1-1"]["rejected_parse_error"]
