"""The decoders: `direct` and the System-2 ones (../shared/reference/system2.md, docs/system2.md).

Every step is one batched generation over all the queries, so a decoder costs a few engine
calls whatever the number of questions.
"""

from __future__ import annotations

from collections import Counter

from srlm.config import (
    BestOfNDecoderConfig,
    BsmDecoderConfig,
    CoveDecoderConfig,
    DirectDecoderConfig,
    S2aDecoderConfig,
    SelfConsistencyDecoderConfig,
)
from srlm.core.parsing import extract_final_answer, normalize_answer
from srlm.inference import prompts as P
from srlm.inference.base import (
    Decoded,
    Decoder,
    EngineFn,
    generate_chats,
    register_decoder,
    user,
)
from srlm.rollout.base import Completion


def _answered(c: Completion, spent: int = 0, calls: int = 0, **trace) -> Decoded:
    return Decoded(
        response=c.text.strip() or None,
        tokens=spent + c.num_tokens,
        calls=calls + 1,
        finish_reason=c.finish_reason,
        answer_tokens=c.num_tokens,
        trace=trace,
    )


@register_decoder("direct", schema=DirectDecoderConfig)
class Direct(Decoder):
    """The model's one answer: System 1, the baseline of every comparison."""

    def decode(self, queries, engine: EngineFn, temperature=None):
        eng = engine()
        outs = generate_chats(
            eng, [q.messages for q in queries], self.answer_sampling(temperature), desc="direct"
        )
        return [_answered(c) for [c] in outs]


# ---------------------------------------------------------------- N samples, one chosen
class Sampled(Decoder):
    """N answers to each query, sampled in one batched call; a subclass picks one."""

    def sample(self, queries, engine: EngineFn, temperature, label: str) -> list[list[Completion]]:
        n = self.config.n
        return generate_chats(
            engine(),
            [q.messages for q in queries],
            self.answer_sampling(temperature),
            n=n,
            desc=f"{label} (N={n})",
        )


def _chosen(samples: list[Completion], pick: int, **trace) -> Decoded:
    """Sample `pick` as the answer; every sample's tokens are its cost."""
    spent = sum(c.num_tokens for c in samples) - samples[pick].num_tokens
    return _answered(samples[pick], spent, len(samples) - 1, **trace)


def majority(answers: list[str | None]) -> tuple[str | None, int, bool]:
    """The most frequent readable answer (normalised, so "43" and "43." are one vote), its
    votes, and whether another answer had as many (the tie then goes to the answer seen
    first, the rule of IRPO's maj@k: srlm.eval.metrics.majority_vote)."""
    counts = Counter(normalize_answer(a) for a in answers if a is not None)
    if not counts:
        return None, 0, False
    ranked = counts.most_common()
    tied = len(ranked) > 1 and ranked[0][1] == ranked[1][1]
    return ranked[0][0], ranked[0][1], tied


def first_voting(answers: list[str | None], winner: str) -> int:
    """The index of the first answer that votes for `winner` (a normalised majority answer
    of these answers)."""
    return next(i for i, a in enumerate(answers) if a is not None and normalize_answer(a) == winner)


@register_decoder("self_consistency", schema=SelfConsistencyDecoderConfig)
class SelfConsistency(Sampled):
    """Wang et al. 2022: N answers sampled at T > 0, the majority final answer wins; the
    response returned is the first sample that gives it."""

    def decode(self, queries, engine: EngineFn, temperature=None):
        decoded = []
        for cs in self.sample(queries, engine, temperature, "self-consistency"):
            answers = [extract_final_answer(c.text) for c in cs]
            winner, votes, tied = majority(answers)
            pick = 0 if winner is None else first_voting(answers, winner)
            d = _chosen(
                cs,
                pick,
                answers=answers,
                majority=winner,
                votes=votes,
                tie=tied,
                chosen=pick,
            )
            if winner is None:
                d.failures.append("no_answer")
            decoded.append(d)
        return decoded


@register_decoder("best_of_n", schema=BestOfNDecoderConfig)
class BestOfN(Sampled):
    """N answers sampled at T > 0, each scored by a reward source (inference.reward, or the
    run's own), the best returned; a tie goes to the earliest sample."""

    uses_reward = True

    def __init__(self, config, run_config=None):
        super().__init__(config, run_config)
        from srlm.rewards.base import get_reward, reward_class

        if config.reward is not None:
            self.reward = reward_class(config.reward.name)(config.reward, run_config)
        else:
            self.reward = get_reward(run_config)

    def decode(self, queries, engine: EngineFn, temperature=None):
        from srlm.rewards.base import Item

        outs = self.sample(queries, engine, temperature, "best-of-N")
        groups = [
            [Item(q.question, c.text.strip(), q.gold, c.finish_reason) for c in cs]
            for q, cs in zip(queries, outs, strict=True)
        ]
        counted = CountingEngineFn(engine)
        result = self.reward.score(groups, counted)
        self.health = result.health
        # The policy's judging is part of this decoder's cost; shared evenly, since the
        # source batches every group's judgements together.
        judging = counted.tokens / max(len(queries), 1)
        decoded = []
        for cs, scored in zip(outs, result.scored, strict=True):
            scores = [s.score for s in scored]
            known = [(s, i) for i, s in enumerate(scores) if s is not None]
            best = max(s for s, _ in known) if known else None
            pick = next(i for s, i in known if s == best) if known else 0
            d = _chosen(
                cs,
                pick,
                scores=scores,
                chosen=pick,
                tied_best=sum(s == best for s, _ in known) if known else 0,
            )
            d.tokens += round(judging)
            d.trace["judge_tokens"] = judging
            if not known:
                d.failures.append("unscored")
            decoded.append(d)
        return decoded

    def close(self) -> None:
        self.reward.close()


class CountingEngineFn:
    """An EngineFn that counts the tokens generated through it (a policy judge's); a judge
    with its own model releases the policy's engine through it as through the stage's."""

    def __init__(self, engine: EngineFn):
        self.engine, self.tokens = engine, 0

    def __call__(self):
        return _Counted(self.engine(), self)

    def release(self) -> None:
        from srlm.rewards.base import release_policy

        release_policy(self.engine)


class _Counted:
    def __init__(self, engine, counter: CountingEngineFn):
        self._engine, self._counter = engine, counter

    def generate(self, *args, **kwargs):
        out = self._engine.generate(*args, **kwargs)
        self._counter.tokens += sum(c.num_tokens for cs in out for c in cs)
        return out

    def __getattr__(self, name):
        return getattr(self._engine, name)


# ---------------------------------------------------------------- chains of prompted steps
@register_decoder("cove", schema=CoveDecoderConfig)
class Cove(Decoder):
    """Chain-of-Verification (Dhuliawala et al. 2023): a draft answer; verification
    questions planned from it; their answers (inference.variant: joint, two_step, factored);
    a final answer written from the draft and the checks. No readable question: the draft
    stands, counted as a `plan` failure."""

    def decode(self, queries, engine: EngineFn, temperature=None):
        eng, c = engine(), self.config
        step = self.step_sampling()
        # The draft is what `direct` would answer (the baseline response of the paper).
        drafts = [
            d[0]
            for d in generate_chats(
                eng,
                [q.messages for q in queries],
                self.answer_sampling(temperature),
                desc="CoVe: draft",
            )
        ]
        spent = [d.num_tokens for d in drafts]
        calls = [1] * len(queries)
        plan_prompt = P.cove_joint if c.variant == "joint" else P.cove_plan
        plans = generate_chats(
            eng,
            [
                user(plan_prompt(q.question, d.text.strip(), c.questions))
                for q, d in zip(queries, drafts, strict=True)
            ],
            step,
            desc="CoVe: plan",
        )
        checks: list[list[tuple[str, str]]] = []
        for i, [p] in enumerate(plans):
            spent[i] += p.num_tokens
            calls[i] += 1
            if c.variant == "joint":
                checks.append(P.parse_qa_pairs(p.text, c.questions))
            else:
                checks.append([(q, "") for q in P.parse_numbered(p.text, c.questions)])
        if c.variant == "factored":
            jobs = [(i, k) for i, qa in enumerate(checks) for k in range(len(qa))]
            outs = generate_chats(
                eng, [user(checks[i][k][0]) for i, k in jobs], step, desc="CoVe: verify"
            )
            for (i, k), [o] in zip(jobs, outs, strict=True):
                checks[i][k] = (checks[i][k][0], o.text.strip())
                spent[i] += o.num_tokens
                calls[i] += 1
        elif c.variant == "two_step":
            asked = [i for i, qa in enumerate(checks) if qa]
            outs = generate_chats(
                eng,
                [user(P.cove_two_step([q for q, _ in checks[i]])) for i in asked],
                step,
                desc="CoVe: verify",
            )
            for i, [o] in zip(asked, outs, strict=True):
                spent[i] += o.num_tokens
                calls[i] += 1
                answers = P.parse_numbered(o.text, len(checks[i]))
                # A question left without an answer line is dropped from the checks.
                checks[i] = [(q, a) for (q, _), a in zip(checks[i], answers, strict=False)]
        revised = [i for i, qa in enumerate(checks) if qa]
        finals = generate_chats(
            eng,
            [
                queries[i].asking(P.cove_revision(queries[i].question, drafts[i].text, checks[i]))
                for i in revised
            ],
            self.answer_sampling(temperature),
            desc="CoVe: final answer",
        )
        final_of = dict(zip(revised, (f for [f] in finals), strict=True))
        decoded = []
        for i, draft in enumerate(drafts):
            trace = {"draft": draft.text.strip(), "checks": [list(qa) for qa in checks[i]]}
            if i in final_of:
                decoded.append(_answered(final_of[i], spent[i], calls[i], **trace))
            else:
                # The draft is the answer; its tokens are already counted once.
                d = _answered(draft, spent[i] - draft.num_tokens, calls[i] - 1, **trace)
                d.failures.append("plan")
                decoded.append(d)
        return decoded


@register_decoder("s2a", schema=S2aDecoderConfig)
class S2a(Decoder):
    """System 2 Attention (Weston & Sukhbaatar 2023): the model rewrites the user's text,
    keeping what is relevant and dropping opinions and suggested answers, then answers from
    the rewrite. An unreadable rewrite: the original text is answered, counted as a
    `rewrite` failure."""

    def decode(self, queries, engine: EngineFn, temperature=None):
        eng = engine()
        rewrites = generate_chats(
            eng,
            [user(P.s2a_rewrite(q.question)) for q in queries],
            self.step_sampling(),
            desc="S2A: rewrite",
        )
        asked, failed = [], []
        for q, [r] in zip(queries, rewrites, strict=True):
            parsed = P.parse_rewrite(r.text)
            failed.append(parsed is None)
            if parsed is None:
                asked.append(q.messages)
            else:
                original = q.question if self.config.keep_original else None
                asked.append(q.asking(P.s2a_answer(*parsed, original)))
        finals = generate_chats(eng, asked, self.answer_sampling(temperature), desc="S2A: answer")
        decoded = []
        for chat, [r], [f], bad in zip(asked, rewrites, finals, failed, strict=True):
            d = _answered(f, r.num_tokens, 1, rewrite=r.text.strip(), answered=chat[-1]["content"])
            if bad:
                d.failures.append("rewrite")
            decoded.append(d)
        return decoded


@register_decoder("bsm", schema=BsmDecoderConfig)
class Bsm(Decoder):
    """Branch-Solve-Merge (Saha et al. 2024) for answering: the model splits the task into
    independent sub-tasks, solves each on its own, then merges the partial solutions into
    the answer. Fewer than two readable sub-tasks: the task is answered directly, counted as
    a `branch` failure."""

    def decode(self, queries, engine: EngineFn, temperature=None):
        eng, k = engine(), self.config.branches
        step = self.step_sampling()
        branched = generate_chats(
            eng, [user(P.bsm_branch(q.question, k)) for q in queries], step, desc="BSM: branch"
        )
        subs = [P.parse_numbered(b.text, k) for [b] in branched]
        subs = [s if len(s) >= 2 else [] for s in subs]
        jobs = [(i, j) for i, s in enumerate(subs) for j in range(len(s))]
        solved = generate_chats(
            eng,
            [user(P.bsm_solve(queries[i].question, subs[i][j])) for i, j in jobs],
            step,
            desc="BSM: solve",
        )
        parts: list[list[tuple[str, str]]] = [[] for _ in queries]
        spent = [b.num_tokens for [b] in branched]
        for (i, j), [o] in zip(jobs, solved, strict=True):
            parts[i].append((subs[i][j], o.text.strip()))
            spent[i] += o.num_tokens
        asked = [
            q.asking(P.bsm_merge(q.question, parts[i])) if parts[i] else q.messages
            for i, q in enumerate(queries)
        ]
        finals = generate_chats(eng, asked, self.answer_sampling(temperature), desc="BSM: merge")
        decoded = []
        for i, [f] in enumerate(finals):
            d = _answered(
                f,
                spent[i],
                1 + len(parts[i]),
                branches=branched[i][0].text.strip(),
                solutions=[list(p) for p in parts[i]],
            )
            if not parts[i]:
                d.failures.append("branch")
            decoded.append(d)
        return decoded
