"""The evaluate stage: every model of a run measured the same way, on held-out data.

For each M_t (t = 0 is the starting model) the runner runs two phases, each in its own
process (srlm.runner), so that no two engines ever share the accelerator:

``evaluate`` (the policy's engine, M_t)
    - the method's own metrics (IRPO: greedy and majority-vote accuracy; Method.evaluate);
    - answers to the held-out prompts (``eval.prompts``), greedy, stored in
      iter_NN/eval_answers.jsonl, with their lengths (TPO: the response after the thought,
      and the thought's length; Method.eval_answers);
    - if the policy is the run's judge, its judging of labelled pairs (``eval.pairs``):
      accuracy in both orders, position consistency, score distribution, and RewardBench's
      per-subset and section scores when the pairs carry a ``subset``
      (iter_NN/eval_judge.jsonl).

``winrates`` (the judge's engine only; t >= 1)
    M_t's stored answers against M_0's and against M_{t-1}'s, each prompt judged in both
    orders by ``eval.judge`` (a fixed judge: by default M_0 itself), ties apart, and the
    length-controlled win rate (srlm.eval.metrics), in iter_NN/eval_winrates.jsonl.

Answers are generated once per model and reused: M_{t-1}'s answers are those stored at its
own evaluation, never regenerated.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

from srlm.config import INITIAL, Config, DirectDecoderConfig, SamplingConfig
from srlm.core.stats import mean
from srlm.eval.data import EvalPrompt, LabelledPair, load_eval_set
from srlm.eval.metrics import (
    judge_pair_metrics,
    judge_score_metrics,
    pair_credit,
    rewardbench_scores,
    score_credit,
    win_rates,
)
from srlm.inference.base import Query, get_decoder
from srlm.inference.questions import decode_questions, load_questions
from srlm.rewards.base import Item, get_reward, reward_class
from srlm.rundir import RunDir

ANSWERS, JUDGE, WINRATES = "eval_answers", "eval_judge", "eval_winrates"


class Evaluation:
    """What the evaluate stage of one run does; the constructor reads and checks the data
    files (cheap, in the parent process, so a bad row fails before any model loads)."""

    def __init__(self, config: Config, run: RunDir, method):
        self.config, self.run, self.method = config, run, method
        e = config.eval
        self.enabled = e.enabled
        reward = get_reward(config)
        self.reward = reward
        auto_wr = method.eval_win_rates
        auto_ja = (
            method.eval_judge_accuracy
            and reward.judged_by_policy(config.reward)
            and reward.kind != "verifiable"
        )
        self.win_rates = e.enabled and (auto_wr if e.win_rates is None else e.win_rates)
        self.judge_accuracy = e.enabled and (
            auto_ja if e.judge_accuracy is None else e.judge_accuracy
        )
        self.prompts: list[EvalPrompt] = (
            load_eval_set(e.prompts, "prompts", e.prompt_fields or None, e.max_prompts)
            if self.win_rates
            else []
        )
        self.pairs: list[LabelledPair] = (
            load_eval_set(e.pairs, "pairs", e.pair_fields or None, e.max_pairs)
            if self.judge_accuracy
            else []
        )
        # The run's decoder against direct on held-out questions (srlm/inference); with
        # inference=direct, a distilling method's teacher.
        self.decoder = config.inference
        teacher = getattr(config.method, "teacher", None)
        if self.decoder.name == "direct" and teacher is not None:
            self.decoder = teacher
        compare = (
            e.decoders
            if e.decoders is not None
            else (self.decoder.name != "direct" or method.distils)
        )
        self.questions = load_questions(e, method) if e.enabled and compare else None
        self.decoders = (
            [] if self.questions is None else list(dict.fromkeys(["direct", self.decoder.name]))
        )

    def complete(self, t: int) -> bool:
        """Whether iteration t's evaluate stage wrote every part this config asks for."""
        return (
            (not self.win_rates or self.run.stage_file(t, ANSWERS).exists())
            and (not self.judge_accuracy or self.run.stage_file(t, JUDGE).exists())
            and all(self.run.stage_file(t, decoded_file(d)).exists() for d in self.decoders)
        )

    # ------------------------------------------------------------ phase "evaluate" (M_t)
    def evaluate(self, t: int, engine) -> dict:
        stats: dict = {}
        if self.win_rates:
            stats |= self._answers(t, engine)
        if self.judge_accuracy:
            stats |= self._judge_accuracy(t, engine)
        if self.decoders:
            stats |= self._decoded(t, engine)
        return stats

    def _decoder(self, name: str):
        """The run's decoder, or `direct` answering with the same token budget."""
        inference = self.decoder
        if name != inference.name:
            budget = inference.sampling.max_tokens
            inference = DirectDecoderConfig(sampling=SamplingConfig(0.0, 1.0, budget))
        return get_decoder(self.config, inference)

    def _decoded(self, t: int, engine) -> dict:
        """Each decoder's answers to the held-out questions: accuracy (and the mean score,
        which differs for list answers: precision), tokens spent per answer, wall time."""
        qs = self.questions
        queries = [Query(qs.ask(r), r["answer"]) for r in qs.rows]
        engine()  # started outside the timing: an engine start is not the decoder's cost
        stats: dict = {"decode_questions": len(queries)}
        for name in self.decoders:
            rows, figures = decode_questions(self._decoder(name), qs, queries, engine)
            self.run.write_rows(t, decoded_file(name), rows)
            stats |= {f"decode_{name}_{k}": v for k, v in figures.items()}
        if len(self.decoders) > 1:
            other = self.decoders[1]
            for k in ("accuracy", "score"):
                a, b = stats[f"decode_{other}_{k}"], stats[f"decode_direct_{k}"]
                stats[f"decode_{other}_{k}_gain"] = None if a is None or b is None else a - b
        return stats

    def _answers(self, t: int, engine) -> dict:
        """M_t's answers to the held-out prompts, turn by turn (a later turn sees the model's
        own earlier answers, as in MT-Bench)."""
        convs = [[] for _ in self.prompts]
        rows = [{"prompt_id": p.id, "turns": p.turns, "answers": []} for p in self.prompts]
        for k in range(max((len(p.turns) for p in self.prompts), default=0)):
            live = [i for i, p in enumerate(self.prompts) if len(p.turns) > k]
            for i in live:
                convs[i].append({"role": "user", "content": self.prompts[i].turns[k]})
            answers = self._answer([convs[i] for i in live], engine)
            for i, a in zip(live, answers, strict=True):
                rows[i]["answers"].append(a)
                # The user sees the response only (TPO's thought is hidden), so later turns do too.
                convs[i].append({"role": "assistant", "content": a.get("response") or ""})
        for r in rows:
            last = r["answers"][-1]
            r |= {"response": last.get("response"), "response_tokens": last.get("response_tokens")}
        self.run.write_rows(t, ANSWERS, rows)
        finals = [r["answers"][-1] for r in rows]
        out = {
            "eval_prompts": len(rows),
            "response_tokens": mean(a.get("response_tokens") for a in finals),
            "unanswered_rate": sum(a.get("response") is None for a in finals) / max(len(finals), 1),
        }
        if any("thought_tokens" in a for a in finals):
            out["thought_tokens"] = mean(a.get("thought_tokens") for a in finals)
        return out

    def _answer(self, conversations: list[list[dict]], engine) -> list[dict]:
        """Answers as the method gives them, or written by the run's System-2 decoder."""
        if self.config.inference.name == "direct":
            return self.method.eval_answers(conversations, engine, self.config.eval.sampling)
        decoder = get_decoder(self.config)
        try:
            out = decoder.decode([Query(c) for c in conversations], engine)
        finally:
            decoder.close()
        return [
            {
                "response": d.response,
                "response_tokens": d.answer_tokens,
                "decode_tokens": d.tokens,
                "finish_reason": d.finish_reason,
                "decode_failures": d.failures,
                "decode_trace": d.trace,
            }
            for d in out
        ]

    def _judge_accuracy(self, t: int, engine) -> dict:
        """The run's judge, when it is the policy M_t, on labelled pairs."""
        if self.reward.kind == "pairwise":
            triples = [(p.prompt, p.chosen, p.rejected) for p in self.pairs]
            triples += [(p.prompt, p.rejected, p.chosen) for p in self.pairs]
            judged = self.reward.compare(triples, engine, desc="evaluate: judge on labelled pairs")
            n = len(self.pairs)
            verdicts = [_vote([j.verdict for j in outs]) for outs in judged]
            rows = [
                {
                    "pair_id": p.id,
                    "subset": p.subset,
                    "ab": verdicts[i],
                    "ba": verdicts[n + i],
                    "judgement_ab": judged[i][0].text,
                    "judgement_ba": judged[n + i][0].text,
                }
                for i, p in enumerate(self.pairs)
            ]
            metrics = judge_pair_metrics(rows)
            credits = [pair_credit(r["ab"], r["ba"]) for r in rows]
        else:
            groups = [[Item(p.prompt, p.chosen), Item(p.prompt, p.rejected)] for p in self.pairs]
            result = self.reward.score(groups, engine)
            rows = [
                {
                    "pair_id": p.id,
                    "subset": p.subset,
                    "chosen": c.score,
                    "rejected": r.score,
                    "record_chosen": c.record,
                    "record_rejected": r.record,
                }
                for p, (c, r) in zip(self.pairs, result.scored, strict=True)
            ]
            metrics = judge_score_metrics(rows)
            credits = [score_credit(r["chosen"], r["rejected"]) for r in rows]
        metrics |= rewardbench_scores(
            (p.subset, c) for p, c in zip(self.pairs, credits, strict=True)
        )
        self.run.write_rows(t, JUDGE, rows)
        return {f"judge_{k}": v for k, v in metrics.items()}

    # ------------------------------------------------------------ phase "winrates" (judge)
    def compare(self, t: int, engine, initial_model: str) -> dict:
        """M_t's answers against M_0's and M_{t-1}'s, judged by eval.judge (``engine`` serves
        M_t, used only by a judge with source=policy)."""
        judge = self._judge(initial_model)
        mine = self._stored_answers(t)
        baselines = {"m0": 0} | ({"prev": t - 1} if t - 1 > 0 else {})
        jobs: list[tuple[str, str]] = []  # (baseline, prompt id): triples 2k and 2k+1
        triples = []
        theirs = {name: self._stored_answers(b) for name, b in baselines.items()}
        for name in baselines:
            for pid, row in mine.items():
                other = theirs[name].get(pid)
                if other is None:
                    continue
                instruction = judged_instruction(row["turns"])
                a, b = row.get("response") or "", other.get("response") or ""
                jobs.append((name, pid))
                # Candidate shown first, then second: position cannot decide alone.
                triples += [(instruction, a, b), (instruction, b, a)]
        try:
            judged = judge.compare(triples, engine, desc="evaluate: win rates")
        finally:
            judge.close()
        rows, stats = [], {}
        for k, (name, pid) in enumerate(jobs):
            ab, ba = judged[2 * k], judged[2 * k + 1]
            rows.append(
                {
                    "baseline": name,
                    "prompt_id": pid,
                    "ab": _vote([j.verdict for j in ab]),
                    "ba": _vote([j.verdict for j in ba]),
                    "pref": preference(ab, ba),
                    "len_candidate": _length(mine[pid]),
                    "len_baseline": _length(theirs[name][pid]),
                    "judgement_ab": ab[0].text,
                    "judgement_ba": ba[0].text,
                }
            )
        self.run.write_rows(t, WINRATES, rows)
        for name in baselines:
            m = win_rates([r for r in rows if r["baseline"] == name])
            stats |= {f"{key}_vs_{name}": v for key, v in m.items()}
        return stats

    def _judge(self, initial_model: str):
        cfg = self.config.eval.judge
        if cfg.model.source == INITIAL:
            # M_0 as a fixed judge on its own engine (a path makes it "not the policy").
            model = replace(self.config.model, name="initial", path=initial_model)
            cfg = replace(cfg, model=model)
        return reward_class(cfg.name)(cfg, self.config)

    def _stored_answers(self, t: int) -> dict[str, dict]:
        path = self.run.stage_file(t, ANSWERS)
        if not path.exists():
            raise FileNotFoundError(
                f"{path} is missing: the answers of iteration {t} are written by its evaluate stage; "
                f"run python -m srlm.evaluate {self.run.root} to make them"
            )
        return {r["prompt_id"]: r for r in self.run.read_rows(t, ANSWERS)}


def decoded_file(decoder: str) -> str:
    return f"eval_decode_{decoder}"


def judged_instruction(turns: list[str]) -> str:
    """What the judge sees as the instruction: the user's last turn, after the earlier ones."""
    if len(turns) == 1:
        return turns[0]
    earlier = "\n".join(f"(earlier turn {i + 1}) {x}" for i, x in enumerate(turns[:-1]))
    return f"{earlier}\n(the turn to answer now) {turns[-1]}"


def preference(ab: list, ba: list) -> float | None:
    """The judge's probability of preferring the candidate, averaged over its judgements in
    both orders (candidate first: P(A); second: P(B)); None without probabilities."""
    probs = [j.p_first for j in ab] + [None if j.p_first is None else 1.0 - j.p_first for j in ba]
    if not probs or any(x is None for x in probs):
        return None
    return sum(probs) / len(probs)


def _length(row: dict) -> int:
    n = row.get("response_tokens")
    return int(n) if n is not None else len((row.get("response") or "").split())


def _vote(verdicts: list[str | None]) -> str | None:
    """The most common readable verdict of a comparison's judge samples; a tie between two
    verdicts counts as "tie" (the judge did not decide)."""
    counts = Counter(v for v in verdicts if v is not None).most_common()
    if not counts:
        return None
    if len(counts) > 1 and counts[0][1] == counts[1][1]:
        return "tie"
    return counts[0][0]
