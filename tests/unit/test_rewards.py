"""Reward sources behind one interface, on fake engines and a tiny reward model: scores,
records and health statistics checked by hand."""

from __future__ import annotations

import math
import re

import pytest

from srlm.compose import compose, validate
from srlm.config import (
    JudgeModelRewardConfig,
    ModelConfig,
    PairwiseJudgeRewardConfig,
    RewardConfig,
    SamplingConfig,
    SelfJudgeRewardConfig,
    ThinkingJudgeRewardConfig,
    VerifiableRewardConfig,
)
from srlm.core.parsing import before_final_score
from srlm.errors import ConfigError
from srlm.rewards.base import (
    Item,
    RewardSource,
    Scores,
    fitting_rewards,
    get_reward,
    reward_class,
    reward_names,
    tie_rate,
)
from srlm.rewards.pairwise import (
    PairwiseJudgeReward,
    ThinkingJudgeReward,
    elo_scores,
    order_flip_rate,
    ordered_pairs,
    verdict_token_ids,
)
from srlm.rewards.self_judge import SelfJudgeReward, expected_score, score_continuation
from srlm.rewards.verifiable import VerifiableReward, check_answer
from srlm.rollout.base import Completion


# ---------------------------------------------------------------- fakes
class CharTokenizer:
    """One token per character; with glue_digits, " 4" is one token (as in GPT-2-style BPE)."""

    def __init__(self, glue_digits: bool = False):
        self.pattern = re.compile(r" \d|." if glue_digits else r".", re.DOTALL)
        self.vocab: dict[str, int] = {}

    def encode(self, text, add_special_tokens=False):
        return [self.vocab.setdefault(t, len(self.vocab)) for t in self.pattern.findall(text)]

    def apply_chat_template(self, messages, tokenize=False, add_generation_prompt=True):
        return (
            "".join(f"<{m['role']}>{m['content']}</{m['role']}>" for m in messages) + "<assistant>"
        )


class FakeEngine:
    """Answers each prompt with reply(prompt, k) for its k-th completion; next-token log-probs
    from logprobs(prompt)."""

    def __init__(self, reply, logprobs=None):
        self.tokenizer = CharTokenizer()
        self.reply, self.logprobs = reply, logprobs
        self.prompts: list[str] = []
        self.closed = False

    def generate(self, prompts, sampling, n=1, desc=""):
        self.prompts += prompts
        return [[Completion(self.reply(p, k), 5, "stop") for k in range(n)] for p in prompts]

    def next_token_logprobs(self, prompts, token_ids):
        return [self.logprobs(p) for p in prompts]

    def close(self):
        self.closed = True


# ---------------------------------------------------------------- pointwise: expected score
def test_score_continuation_split_and_glued_digits():
    label, ids = score_continuation(CharTokenizer(), 0, 5)
    assert label == "Score: " and len(set(ids)) == 6
    tok = CharTokenizer(glue_digits=True)
    label, ids = score_continuation(tok, 0, 5)
    assert label == "Score:" and ids == [tok.vocab[f" {v}"] for v in range(6)]


def test_expected_score_by_hand():
    # Probabilities 0.1, 0.2, 0.7 on scores 0, 1, 2: 0.2 + 1.4 = 1.6 (renormalised: the
    # same when they are given at half the mass).
    assert expected_score(
        [math.log(0.1), math.log(0.2), math.log(0.7)], [0, 1, 2]
    ) == pytest.approx(1.6)
    assert expected_score(
        [math.log(0.05), math.log(0.1), math.log(0.35)], [0, 1, 2]
    ) == pytest.approx(1.6)


def test_before_final_score_keeps_the_justification():
    assert before_final_score("Good answer.\nScore: 4") == "Good answer.\n"
    assert (
        before_final_score("Quoted Score: 5 then mine.\n**Score:** 2")
        == "Quoted Score: 5 then mine.\n"
    )
    assert before_final_score("no number at all") == "no number at all"


# ---------------------------------------------------------------- self_judge / judge_model
def _cfg(**kw) -> SelfJudgeRewardConfig:
    return SelfJudgeRewardConfig(samples=2, sampling=SamplingConfig(0.7, 0.9, 32), **kw)


def test_self_judge_records_scores_and_health():
    # Judge outputs per response: "good" 4 and 5, "bad" 1 and unparseable, "meh" 3 and 3.
    texts = {
        "good": ["Fine.\nScore: 4", "Great.\nScore: 5"],
        "bad": ["Poor.\nScore: 1", "no idea"],
        "meh": ["Ok.\nScore: 3", "Ok.\nScore: 3"],
        "same": ["Ok.\nScore: 3", "Ok.\nScore: 3"],
    }
    engine = FakeEngine(lambda p, k: texts[re.search(r"<response>(\w+)</response>", p).group(1)][k])
    src = SelfJudgeReward(_cfg())
    out = src.score(
        [[Item("q1", "good"), Item("q1", "bad")], [Item("q2", "meh"), Item("q2", "same")]],
        lambda: engine,
    )
    assert [[s.score for s in g] for g in out.scored] == [[4.5, 1.0], [3.0, 3.0]]
    assert out.scored[0][1].record == {"judgements": texts["bad"], "scores": [1.0, None]}
    h = out.health
    assert (h["judgements"], h["parse_failures"], h["parse_failure_rate"]) == (8, 1, 1 / 8)
    assert h["unscored_responses"] == 0
    assert h["mean_score"] == pytest.approx((4.5 + 1 + 3 + 3) / 4)
    assert h["tie_rate"] == 0.5  # group q2 is all 3s: no preference


def test_self_judge_expected_mode_reads_probabilities_after_the_justification():
    engine = FakeEngine(
        lambda p, k: "Relevant.\nScore: 4" if k == 0 else "rambling",
        # p(0..5) = 0, 0, 0, 0.5, 0.5, 0 -> 3.5 for every judgement
        logprobs=lambda p: [-1e9, -1e9, -1e9, math.log(0.5), math.log(0.5), -1e9],
    )
    calls = []
    engine.next_token_logprobs = lambda prompts, ids: (
        calls.extend(prompts)
        or [[-1e9, -1e9, -1e9, math.log(0.5), math.log(0.5), -1e9] for _ in prompts]
    )
    out = SelfJudgeReward(_cfg(score_mode="expected")).score([[Item("q", "r")]], lambda: engine)
    s = out.scored[0][0]
    assert s.score == pytest.approx(3.5)
    assert s.record["written_scores"] == [4.0, None] and s.record["scores"] == [3.5, 3.5]
    # Continued after the justification (its own "Score: 4" cut), and after the whole text
    # when there is no score label.
    assert calls[0].endswith("<assistant>Relevant.\nScore: ") and calls[1].endswith(
        "rambling\nScore: "
    )
    assert out.health["parse_failures"] == 1 and out.health["score_mode"] == "expected"


def test_judge_model_uses_its_own_engine_never_the_policy():
    cfg = JudgeModelRewardConfig(model=ModelConfig(name="j", source="/nowhere"), samples=1)
    src = reward_class("judge_model")(cfg)
    judge = FakeEngine(lambda p, k: "Score: 2")
    src.own.engine = judge  # as if started: OwnEngine loads nothing more

    class Policy:
        """The stage's EngineFn, holding the policy's engine from an earlier stage."""

        released = 0

        def __call__(self):
            raise AssertionError("the policy engine must not start for a separate judge")

        def release(self):
            self.released += 1

    policy = Policy()
    out = src.score([[Item("q", "a")]], policy)
    assert out.scored[0][0].score == 2.0 and judge.prompts
    # The policy's engine was handed back before the judge's ran, and the judge's closed after.
    assert policy.released == 1 and judge.closed and src.own.engine is None
    assert not reward_class("judge_model").judged_by_policy(cfg)


# ---------------------------------------------------------------- pairwise
def test_ordered_pairs_both_orders():
    assert ordered_pairs(3) == [(0, 1), (1, 0), (0, 2), (2, 0), (1, 2), (2, 1)]
    assert ordered_pairs(1) == []


def test_elo_scores_order_and_unjudged():
    # 0 beats 1 in both orders; 2's comparisons are unreadable: no score for 2.
    outcomes = [
        (0, 1, "first"),
        (1, 0, "second"),
        (0, 2, None),
        (2, 0, None),
        (1, 2, None),
        (2, 1, None),
    ]
    s = elo_scores(outcomes, 3)
    assert s[2] is None and s[0] > s[1]
    assert elo_scores([], 1) == [0.0]


def test_order_flip_rate_by_hand():
    results = [
        (0, 1, 0, "first"),
        (1, 0, 0, "second"),  # 0 preferred both times: no flip
        (0, 2, 0, "first"),
        (2, 0, 0, "first"),  # the first shown wins both times: a flip
        (1, 2, 0, "tie"),
        (2, 1, 0, None),  # unreadable in one order: left out
    ]
    assert order_flip_rate(results) == 0.5
    assert order_flip_rate([(0, 1, 0, None)]) is None


def _pairwise_engine(quality: dict[str, int], position_bias: bool = False):
    def reply(prompt, k):
        a = re.search(r"Assistant A's Answer\]\n(\w+)", prompt).group(1)
        b = re.search(r"Assistant B's Answer\]\n(\w+)", prompt).group(1)
        if position_bias:
            return "A is better. [[A]]"
        if quality[a] == quality[b]:
            return "Equal. [[C]]"
        return "[[A]]" if quality[a] > quality[b] else "[[B]]"

    return FakeEngine(reply)


def test_pairwise_judge_elo_ranks_and_health():
    engine = _pairwise_engine({"best": 3, "mid": 2, "worst": 1, "x": 1, "y": 1})
    src = PairwiseJudgeReward(PairwiseJudgeRewardConfig())
    assert src.judged_by_policy(src.config)
    out = src.score(
        [
            [Item("q", "mid"), Item("q", "best"), Item("q", "worst")],
            [Item("p", "x"), Item("p", "y")],
        ],
        lambda: engine,
    )
    mid, best, worst = (s.score for s in out.scored[0])
    assert best > mid > worst and abs(best + mid + worst) < 1e-9  # centred within the group
    assert len(engine.prompts) == 6 + 2  # K(K-1) per group
    assert out.scored[0][1].record["wins"] == 4  # best won all four of its comparisons
    h = out.health
    assert h["judgements"] == 8 and h["parse_failure_rate"] == 0
    assert h["verdict_tie_rate"] == 2 / 8 and h["order_flip_rate"] == 0.0
    assert h["tie_rate"] == 0.5  # group p: x and y tied
    assert "mean_score" not in h


def test_pairwise_judge_reports_position_bias_as_flips():
    out = PairwiseJudgeReward(PairwiseJudgeRewardConfig()).score(
        [[Item("q", "a"), Item("q", "b")]], lambda: _pairwise_engine({}, position_bias=True)
    )
    assert out.health["order_flip_rate"] == 1.0 and out.health["first_position_rate"] == 1.0
    # One win each: no preference survives both orders.
    assert out.scored[0][0].score == pytest.approx(out.scored[0][1].score)


def test_thinking_judge_reads_the_final_verdict_section():
    src = ThinkingJudgeReward(ThinkingJudgeRewardConfig())
    assert (
        src.parse(
            "[Start of Evaluation Plan]\nprefer [[B]]-style answers\n[End of Evaluation Plan]\n"
            "[Final Verdict]\n[[A]]"
        )
        == "A"
    )
    prompt = src.prompt(CharTokenizer(), "q", "ans1", "ans2")
    assert "[Start of Evaluation Plan]" in prompt and "ans1" in prompt  # the trained judge's prompt


def test_separate_pairwise_judge_is_not_the_policy():
    cfg = PairwiseJudgeRewardConfig(model=ModelConfig(name="j", source="org/judge"))
    assert not PairwiseJudgeReward.judged_by_policy(cfg)
    assert not PairwiseJudgeReward.judged_by_policy(
        PairwiseJudgeRewardConfig(model=ModelConfig(name="j", source="policy", path="/ckpt"))
    )


# ---------------------------------------------------------------- verifiable
@pytest.mark.parametrize(
    "response,gold,expected",
    [
        ("So 12 + 30 = 42.\nFinal answer: 42", "42", ("42", 1)),
        ("Final answer: 41", "42", ("41", 0)),
        ("The result is \\boxed{0.75}", "3/4", ("0.75", 1)),
        ("I think it is 42", "42", (None, 0)),  # no committed answer: 0, and a parse failure
    ],
)
def test_check_answer(response, gold, expected):
    assert check_answer(response, gold) == expected


def test_verdict_label_scores_the_verdict_against_the_label():
    from srlm.config import VerdictLabelRewardConfig
    from srlm.rewards.verdict_label import VerdictLabelReward

    texts = ["B is off-topic. [[A]]", "[[B]]", "Both fine. [[C]]", "no verdict", "[[A]] or [[B]]"]
    out = VerdictLabelReward(VerdictLabelRewardConfig()).score(
        [[Item("q", x, "A") for x in texts], [Item("q", "[[B]]", "B")]], None
    )
    assert [s.score for s in out.scored[0]] == [1.0, 0.0, 0.0, 0.0, 0.0]
    assert [s.record["verdict"] for s in out.scored[0]] == ["A", "B", "tie", None, None]
    assert out.scored[1][0].score == 1.0
    # 6 verdicts, 2 unreadable; 2 of 6 name the labelled answer.
    assert out.health["parse_failures"] == 2 and out.health["judgements"] == 6
    assert out.health["accuracy"] == pytest.approx(2 / 6)
    with pytest.raises(ValueError, match="label A or B"):
        VerdictLabelReward(VerdictLabelRewardConfig()).score([[Item("q", "[[A]]", "tie")]], None)


def test_verifiable_health():
    src = VerifiableReward(VerifiableRewardConfig(math_verify="off"))
    out = src.score(
        [
            [Item("q", "Final answer: 3", "3"), Item("q", "no answer", "3")],
            [Item("p", "Final answer: 1", "2"), Item("p", "Final answer: 5", "2")],
        ],
        lambda: None,
    )
    assert [[s.score for s in g] for g in out.scored] == [[1.0, 0.0], [0.0, 0.0]]
    assert out.scored[0][0].record == {"pred": "3", "reward": 1}
    h = out.health
    assert h["parse_failures"] == 1 and h["accuracy"] == 0.25 and h["tie_rate"] == 0.5


# ---------------------------------------------------------------- registry and rules
def test_tie_rate_by_hand():
    assert tie_rate([[1, 1], [1, 2], [None, 3], [2, 2, None]]) == 2 / 3
    assert tie_rate([[1], [None]]) is None


def test_every_registered_source_has_a_kind_and_a_config():
    from srlm.compose import CONF_DIR

    for name in (
        "self_judge",
        "judge_model",
        "pairwise_judge",
        "reward_model",
        "verifiable",
        "thinking_judge",
        "verdict_label",
    ):
        cls = reward_class(name)
        assert cls.kind in ("pointwise", "pairwise", "verifiable", "verdict")
        assert name in reward_names()
        assert issubclass(cls.schema, RewardConfig) and cls.schema is not RewardConfig
        assert (CONF_DIR / "reward" / f"{name}.yaml").exists()


def test_get_reward_from_a_composed_config():
    cfg = validate(compose(["method=tpo", "reward=pairwise_judge", "rollout=hf"]))
    assert isinstance(get_reward(cfg), PairwiseJudgeReward)
    cfg = validate(compose(["method=irpo", "rollout=hf"]))  # irpo's default reward: its rule
    assert isinstance(get_reward(cfg), VerifiableReward)


def test_method_defaults_pick_a_fitting_reward():
    for method, reward in [
        ("self_reward", "self_judge"),
        ("tpo", "self_judge"),
        ("meta_reward", "self_judge"),
        ("irpo", "verifiable"),
        ("thinking_judge", "verdict_label"),
    ]:
        assert validate(compose([f"method={method}", "rollout=hf"])).reward.name == reward


def test_refusal_names_both_keys_and_what_fits():
    with pytest.raises(ConfigError) as e:
        validate(compose(["method=irpo", "reward=pairwise_judge", "rollout=hf"]))
    msg = str(e.value)
    assert msg.startswith("method=irpo with reward=pairwise_judge:") and msg.endswith(
        "fit method=irpo: verifiable"
    )
    with pytest.raises(
        ConfigError,
        match="method=meta_reward with reward=judge_model: .*fit method=meta_reward: self_judge",
    ):
        validate(compose(["method=meta_reward", "reward=judge_model", "rollout=hf"]))
    # A pairwise judge that is the policy is still not what Meta-Rewarding's meta-judge reads.
    with pytest.raises(ConfigError, match="gives pairwise scores"):
        validate(compose(["method=meta_reward", "reward=pairwise_judge", "rollout=hf"]))


def test_fitting_rewards_by_kind():
    from srlm.methods import get_method

    assert fitting_rewards(get_method("irpo").needs) == ["verifiable"]
    assert fitting_rewards(get_method("meta_reward").needs) == ["self_judge"]
    assert "verifiable" not in fitting_rewards(get_method("tpo").needs)


def test_a_new_source_needs_no_method_change():
    from srlm.rewards import base

    @base.register_reward("length_test", schema=RewardConfig)
    class Length(RewardSource):
        kind = "pointwise"

        def score(self, groups, engine):
            scored = [[base.Scored(float(len(it.response)), {}) for it in g] for g in groups]
            return Scores(scored, base.judgement_health([], scored))

    try:
        out = reward_class("length_test")(None).score(
            [[Item("q", "abc"), Item("q", "a")]], lambda: None
        )
        assert [s.score for s in out.scored[0]] == [3.0, 1.0]
        assert "length_test" in fitting_rewards(
            type("N", (), {"rewards": ("pointwise",), "self_judge": False})()
        )
    finally:
        base._SOURCES.pop("length_test")


def test_probability_verdicts_continue_after_the_reasoning():
    cfg = PairwiseJudgeRewardConfig(samples=1, verdict_mode="probability")
    src = PairwiseJudgeReward(cfg)
    tok = CharTokenizer()
    assert len(set(verdict_token_ids(tok, "[["))) == 3
    # A judge that reasons but never writes a verdict: the verdict is the likeliest letter
    # after its reasoning and "[["; a written verdict is replaced by the opening, not kept.
    assert src.verdict_context("A is more accurate.") == "A is more accurate.\n[["
    assert src.verdict_context("A is better. [[B]]") == "A is better.\n[["
    assert (
        ThinkingJudgeReward(cfg).verdict_context("plan\n[Final Verdict]\n[[A]]")
        == "plan\n[Final Verdict]\n[["
    )
    contexts = []

    def logprobs(context):
        contexts.append(context)
        return [-0.1, -3.0] if context.endswith("first answer\n[[") else [-3.0, -0.2]  # A, B

    engine = FakeEngine(
        lambda p, k: "first answer" if "ALPHA" in p.split("Assistant B")[0] else "second", logprobs
    )
    engine.tokenizer = tok
    out = src.compare([("q", "ALPHA", "BETA"), ("q", "BETA", "ALPHA")], lambda: engine)
    assert [j.verdict for [j] in out] == ["A", "B"] and len(contexts) == 2
    assert [j.text for [j] in out] == ["first answer", "second"]  # the judge's own words are kept
    # P(A) / (P(A) + P(B)) = 1 / (1 + e^(-3.0 + 0.1)) for the first, 1 / (1 + e^(-0.2 + 3.0)) for the second
    assert out[0][0].p_first == pytest.approx(0.94784, abs=1e-5)
    assert out[1][0].p_first == pytest.approx(0.05732, abs=1e-5)
