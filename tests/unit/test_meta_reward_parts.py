"""Meta-Rewarding's pure parts, and its stages on a scripted engine (no model)."""

from __future__ import annotations

import re

import numpy as np
import pytest

from srlm.compose import compose, validate
from srlm.config import Config, SamplingConfig
from srlm.core.parsing import parse_meta_winner, parse_score
from srlm.errors import ConfigError
from srlm.judging import judge_prompt_text
from srlm.methods import get_method
from srlm.methods.meta_reward import (
    MetaReward,
    judge_pair,
    judge_pairs_allowed,
    judgement_battles,
    meta_format_demos,
    meta_judge_prompt_text,
    most_varied,
    order_consistency,
    per_iteration,
    position_counts,
    weighted_battles,
)
from srlm.rollout.base import Completion, RolloutEngine
from srlm.rundir import RunDir, read_jsonl

# ---------------------------------------------------------------- most varied response


def test_most_varied_picks_the_highest_variance_of_valid_scores():
    scores = [
        [4, 4, 4],  # variance 0
        [1, 5, None],  # valid 1, 5: variance 4
        [3, 5, 4],  # variance 2/3
        [None, None, 2],  # one valid score: no variance
    ]
    assert most_varied(scores) == 1


def test_most_varied_needs_disagreement_and_breaks_ties_low():
    assert most_varied([[4, 4], [3, 3, None], [None, 5]]) is None
    assert most_varied([[]]) is None
    assert most_varied([[2, 4], [1, 3], [5, 5]]) == 0  # both variance 1: the lower index


def test_judgement_battles_skip_invalid_and_identical_judgements():
    texts = ["Good. Score: 4", "Bad. Score: 1", "???", "Good. Score: 4 ", "Fine. Score: 3"]
    scores = [4.0, 1.0, None, 4.0, 3.0]
    # 2 is unparseable; 0 and 3 are the same text.
    assert judgement_battles(texts, scores) == [(0, 1), (0, 4), (1, 3), (1, 4), (3, 4)]


# ---------------------------------------------------------------- battles, omega and Elo

# Three judgements of one response, each pair shown to the meta-judge in both orders.
# (first, second, winner-position):
OUTCOMES = [
    (0, 1, "first"),  # 0 shown first, wins
    (1, 0, "second"),  # 0 shown second, wins: 0 beats 1 in both orders
    (0, 2, "first"),  # 0 first wins ...
    (2, 0, "first"),  # ... and 2 first wins: only the position decided
    (1, 2, "first"),  # 1 first wins ...
    (2, 1, "first"),  # ... and 2 first wins: position again
    (1, 2, None),  # a meta-judgement that did not parse: no battle
]
# By hand: first-position wins 5, second-position wins 1, so
#   omega_1 = win_2nd / total = 1/6 (weight of a first-position win),
#   omega_2 = win_1st / total = 5/6 (weight of a second-position win).
#   B[0,1] = omega_1 + omega_2 = 1      B[1,0] = 0
#   B[0,2] = omega_1 = 1/6              B[2,0] = omega_1 = 1/6
#   B[1,2] = omega_1 = 1/6              B[2,1] = omega_1 = 1/6
# So 0 and 2 split their games, as do 1 and 2, and 0 beats 1 outright. Swapping 0 and 1
# and negating every rating leaves the likelihood unchanged, so the (unique, centred) maximum
# has elo_1 = -elo_0 and elo_2 = 0, with elo_0 > 0: highest = judgement 0, lowest = judgement 1.
OMEGA = (1 / 6, 5 / 6)
B_BY_HAND = np.array(
    [
        [0, 1, 1 / 6],
        [0, 0, 1 / 6],
        [1 / 6, 1 / 6, 0],
    ]
)


def test_position_counts_and_weights():
    from srlm.core.selection import meta_judge_weights

    assert position_counts(OUTCOMES) == (5, 1)
    assert meta_judge_weights(*position_counts(OUTCOMES)) == pytest.approx(OMEGA)


def test_battle_matrix_from_both_orders_with_omega():
    np.testing.assert_allclose(weighted_battles(OUTCOMES, [0, 1, 2], OMEGA), B_BY_HAND)


def test_battle_matrix_maps_judgement_indices_to_players():
    # Judgement 1 did not parse: players are judgements 0, 2, 3.
    outcomes = [(0, 3, "first"), (3, 0, "second"), (2, 3, None)]
    b = weighted_battles(outcomes, [0, 2, 3], (0.5, 0.5))
    np.testing.assert_allclose(b, [[0, 0, 1.0], [0, 0, 0], [0, 0, 0]])


def test_highest_and_lowest_elo_judgement_by_hand():
    pick, elo = judge_pair(OUTCOMES, [0, 1, 2], OMEGA)
    assert pick == (0, 1)
    assert elo[0] > 0 > elo[1]
    assert elo[1] == pytest.approx(-elo[0], abs=1e-6)
    assert elo[2] == pytest.approx(0.0, abs=1e-6)


def test_pure_position_bias_gives_no_judge_pair():
    # A meta-judge that always names the judgement shown first: omega_1 = 0, nothing counts.
    from srlm.core.selection import meta_judge_weights

    outcomes = [(0, 1, "first"), (1, 0, "first"), (0, 2, "first"), (2, 0, "first")]
    omega = meta_judge_weights(*position_counts(outcomes))
    assert omega == (0.0, 1.0)
    pick, _ = judge_pair(outcomes, [0, 1, 2], omega)
    assert pick is None
    assert judge_pair([(0, 1, None), (1, 0, None)], [0, 1], (0.5, 0.5))[0] is None


def test_order_consistency():
    rows = [
        {"prompt_id": "p", "sample": 0, "pair": [0, 1], "winner_judgement": 0},
        {"prompt_id": "p", "sample": 0, "pair": [0, 1], "winner_judgement": 0},
        {"prompt_id": "p", "sample": 0, "pair": [0, 2], "winner_judgement": 0},
        {"prompt_id": "p", "sample": 0, "pair": [0, 2], "winner_judgement": 2},
        {"prompt_id": "p", "sample": 0, "pair": [1, 2], "winner_judgement": None},
        {"prompt_id": "p", "sample": 0, "pair": [1, 2], "winner_judgement": 1},
    ]
    assert order_consistency(rows) == 0.5


# ---------------------------------------------------------------- schedules and the cap


def test_judge_pair_share_cap():
    # j / (actor + j) <= share: 0.15 of 10 actor pairs allows 1 (1/11 = 9%; 2/12 = 17%).
    assert judge_pairs_allowed(10, 5, 0.15) == 1
    assert judge_pairs_allowed(3, 5, 0.5) == 3
    assert judge_pairs_allowed(4, 5, 0.2) == 1  # 1/5 = 0.2 exactly, despite rounding
    assert judge_pairs_allowed(3, 2, 0.5) == 2  # fewer formed than allowed
    assert judge_pairs_allowed(0, 5, 0.5) == 0  # no actor pairs: no judge pairs
    assert judge_pairs_allowed(3, 5, 1.0) == 5  # 1: no cap
    assert judge_pairs_allowed(3, 5, 0.0) == 0
    for a in range(0, 30):
        for share in (0.1, 0.15, 0.25, 0.5, 0.9):
            j = judge_pairs_allowed(a, 100, share)
            assert j == 0 or j / (a + j) <= share + 1e-12
            assert j == 100 or (j + 1) / (a + j + 1) > share  # the most allowed


def test_train_judge_schedule_last_value_repeats():
    paper = [True, True, False]
    assert [per_iteration(paper, t) for t in range(1, 6)] == [True, True, False, False, False]
    assert [per_iteration([True], t) for t in (1, 2, 7)] == [True, True, True]
    assert [per_iteration([0.0, 0.32, 0.32, 0.4], t) for t in (1, 4, 5)] == [0.0, 0.4, 0.4]


# ---------------------------------------------------------------- prompt and config


def test_meta_judge_prompt_and_parse_format():
    text = meta_judge_prompt_text("Name a fruit.", "Apple.", "Relevant. Score: 4", "Off. Score: 1")
    assert "<judgement A>Relevant. Score: 4</judgement A>" in text
    assert "<judgement B>Off. Score: 1</judgement B>" in text
    assert "Add a 5th point" in text  # the judge's rubric is shown to the meta-judge
    # The format line names both judgements: echoed back, it is no verdict for either.
    assert text.rstrip().endswith('"Winner: [Judgement A | Judgement B]"')
    assert parse_meta_winner(text) is None
    assert parse_meta_winner("A is closer to the rubric.\nWinner: Judgement A") == "A"
    assert parse_meta_winner("Winner: Judgment B") == "B"


def test_meta_format_demos_are_balanced_and_parse():
    from srlm.data import load_rows

    rows = load_rows(
        "builtin:seed_judgements", required=["instruction", "response", "justification", "score"]
    )
    demos = meta_format_demos(rows)
    assert len(demos) == len(rows)
    verdicts = [parse_meta_winner(target) for _, target in demos]
    assert verdicts.count("A") == verdicts.count("B") == len(rows) // 2
    for (prompt, _), row, v in zip(demos, rows, verdicts, strict=True):
        # The winner is the row's own judgement, wherever it is shown.
        good = re.search(rf"<judgement {v}>(.*?)</judgement {v}>", prompt, re.S).group(1)
        assert good.startswith(row["justification"].strip()) and parse_score(good) == row["score"]


def test_config_rules():
    cfg = validate(compose(["method=meta_reward", "rollout=hf"]))
    assert cfg.method.name == "meta_reward" and cfg.method.train_judge == [True, True, False]
    assert get_method("meta_reward") is MetaReward
    with pytest.raises(ConfigError, match=r"reward\.samples=1"):
        validate(compose(["method=meta_reward", "rollout=hf", "reward.samples=1"]))
    with pytest.raises(ConfigError, match=r"method\.length_rho"):
        validate(compose(["method=meta_reward", "rollout=hf", "method.length_rho=[0.7]"]))
    with pytest.raises(ConfigError, match=r"method\.judge_pair_share=1\.5"):
        validate(compose(["method=meta_reward", "rollout=hf", "method.judge_pair_share=1.5"]))
    with pytest.raises(ConfigError, match=r"method\.warm_start_meta_format"):
        validate(
            compose(
                [
                    "method=meta_reward",
                    "rollout=hf",
                    "method.warm_start.enabled=false",
                    "method.warm_start_meta_format=true",
                ]
            )
        )
    with pytest.raises(ConfigError, match=r"method\.position_weights"):
        validate(compose(["method=meta_reward", "rollout=hf", "method.position_weights=global"]))


def test_experiments_compose():
    q = validate(compose(["experiment=meta_reward_quickstart", "rollout=hf"]))
    assert q.method.name == "meta_reward" and q.method.warm_start.enabled
    p = validate(compose(["experiment=meta_reward_llama3_8b", "rollout=hf"]))
    assert (p.method.prompts_per_iteration, p.method.samples_per_prompt, p.reward.samples) == (
        5000,
        7,
        11,
    )
    assert p.method.iterations == 4 and p.method.train_judge[:3] == [True, True, False]
    assert (p.optimizer.beta, p.optimizer.lr, p.optimizer.batch_size, p.optimizer.epochs) == (
        0.1,
        5e-6,
        32,
        10,
    )


# ---------------------------------------------------------------- stages on a scripted engine


class _Tok:
    def apply_chat_template(self, messages, tokenize=False, add_generation_prompt=True):
        return (
            "".join(f"<{m['role']}>{m['content']}</{m['role']}>" for m in messages) + "<assistant>"
        )

    def __call__(self, text, add_special_tokens=False):
        class _E:
            input_ids = text.split()

        return _E()


class ScriptedEngine(RolloutEngine):
    """Answers by prompt kind: actor responses of different lengths, judgements whose score
    depends on the response length and the judgement's index, and a meta-judge that prefers the
    judgement with the higher score (so the verdict follows content, not position)."""

    def __init__(self):
        self.tokenizer = _Tok()
        self.calls: list[str] = []

    def generate(self, prompts, sampling: SamplingConfig, n=1, desc=""):
        out = []
        for p in prompts:
            self.calls.append(desc)
            if "<judgement A>" in p:
                a = parse_score(re.search(r"<judgement A>(.*?)</judgement A>", p, re.S).group(1))
                b = parse_score(re.search(r"<judgement B>(.*?)</judgement B>", p, re.S).group(1))
                out.append(
                    [
                        Completion(
                            f"Reasoning.\nWinner: Judgement {'A' if a >= b else 'B'}", 5, "stop"
                        )
                    ]
                )
            elif "additive 5-point" in p:
                words = len(re.search(r"<response>(.*?)</response>", p, re.S).group(1).split())
                out.append(
                    [
                        Completion(
                            "unparseable"
                            if k == n - 1
                            else f"Because.\nScore: {min(5, words + k)}",
                            3,
                            "stop",
                        )
                        for k in range(n)
                    ]
                )
            else:
                out.append(
                    [Completion(" ".join(["word"] * (k + 1)), k + 1, "stop") for k in range(n)]
                )
        return out

    def token_logprobs(self, text):
        return []


def _method(tmp_path, *overrides) -> MetaReward:
    cfg: Config = validate(
        compose(
            [
                "method=meta_reward",
                "rollout=hf",
                f"run_dir={tmp_path}",
                "method.prompts_per_iteration=2",
                "method.samples_per_prompt=3",
                "reward.samples=4",
                "method.warm_start.enabled=false",
                "method.warm_start_meta_format=false",
                *overrides,
            ]
        )
    )
    return MetaReward(cfg, RunDir(tmp_path))


def _run_stages(m: MetaReward, t: int, engine: ScriptedEngine) -> dict:
    return {s: m.run_stage(s, t, lambda: engine) for s in m.rollout_stages}


def test_stages_on_a_scripted_engine(tmp_path):
    m = _method(tmp_path, "method.judge_pair_share=0.5", "method.length_rho=[0.0]")
    eng = ScriptedEngine()
    stats = _run_stages(m, 1, eng)
    assert stats["prompts"]["prompts"] == 2 and stats["samples"]["samples"] == 6
    # Response k has k+1 words; judgement i of it scores min(5, k+1+i), the last one fails.
    assert stats["judgements"]["parse_failures"] == 6
    assert stats["actor_pairs"]["actor_pairs"] == 2
    meta = read_jsonl(m.run.stage_file(1, "meta_judgements"))
    # Per prompt: 3 valid judgements, all different: 3 pairs x 2 orders.
    assert stats["meta_judgements"]["meta_judgements"] == 12 and len(meta) == 12
    assert {r["order"] for r in meta} == {"AB", "BA"}
    for r in meta:
        twin = [
            x
            for x in meta
            if x["pair"] == r["pair"] and x["prompt_id"] == r["prompt_id"] and x is not r
        ]
        assert len(twin) == 1 and (twin[0]["first"], twin[0]["second"]) == (r["second"], r["first"])
    # The scripted meta-judge follows the score, never the position: half its wins are second.
    assert stats["meta_judgements"]["meta_position_bias"] == 0.5
    assert stats["meta_judgements"]["meta_order_consistency"] == 1.0
    jp = read_jsonl(m.run.stage_file(1, "judge_pairs"))
    assert len(jp) == 2 and all(
        p["chosen_judgement"] == 2 and p["rejected_judgement"] == 0 for p in jp
    )
    assert stats["judge_pairs"]["judge_chosen_higher_score"] == 1.0
    assert (stats["pairs"]["actor_pairs_used"], stats["pairs"]["judge_pairs_used"]) == (2, 2)

    examples = m.training_examples(1, eng.tokenizer)
    assert len(examples) == 4
    judge_ex = [e for e in examples if "additive 5-point" in e.prompt]
    assert len(judge_ex) == 2
    p = jp[0]
    assert judge_prompt_text(p["instruction"], p["response"]) in judge_ex[0].prompt
    assert judge_ex[0].chosen == p["chosen"] and parse_score(judge_ex[0].chosen) is not None


def test_judge_training_off_skips_the_meta_judge(tmp_path):
    m = _method(tmp_path, "method.train_judge=[false]")
    eng = ScriptedEngine()
    stats = _run_stages(m, 1, eng)
    assert "meta-judge" not in eng.calls
    assert stats["judge_pairs"]["judge_pairs"] == 0
    assert stats["pairs"]["judge_pairs_used"] == 0 and stats["pairs"]["pairs"] == 2


def test_share_cap_and_length_filter_in_stages(tmp_path):
    m = _method(tmp_path, "method.judge_pair_share=0.34")
    stats = _run_stages(m, 1, ScriptedEngine())
    # 2 actor pairs, 2 judge pairs formed; 0.34 allows 1 (1/3 <= 0.34 < 2/4).
    assert stats["pairs"]["judge_pairs_used"] == 1 and stats["pairs"]["judge_pairs_capped"] == 1
    kinds = [p["kind"] for p in read_jsonl(m.run.stage_file(1, "pairs"))]
    assert kinds.count("actor") == 2 and kinds.count("judge") == 1

    m = _method(
        tmp_path / "short", "method.judge_max_chosen_chars=[5]", "method.judge_pair_share=1"
    )
    stats = _run_stages(m, 1, ScriptedEngine())
    assert (
        stats["judge_pairs"]["judge_pairs"] == 0
        and stats["judge_pairs"]["judge_dropped_chosen_too_long"] == 2
    )
