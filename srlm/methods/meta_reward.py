"""Meta-Rewarding Language Models (Wu et al. 2024, arXiv 2407.19594, "LLM-as-a-Meta-Judge").

One model M_t plays three roles: the actor answers, the judge scores the answers with
Self-Rewarding's additive 5-point rubric, and the meta-judge compares the judge's judgements.
Actor pairs teach answering, judge pairs teach judging; both go into one DPO step. One iteration:

1. ``prompts``          fresh instructions: data.seed_instructions shuffled once
                        (``method.data_seed``); iteration t takes the next
                        ``method.prompts_per_iteration``, never one used before.
2. ``samples``          the actor answers each instruction K times (paper: K = 7, T 0.8, top_p 0.95).
3. ``judgements``       the judge scores each response N = ``reward.samples`` times (paper: 11);
                        unparseable judgements are counted and dropped, the score is the mean of
                        the valid ones (srlm.rewards.self_judge).
4. ``actor_pairs``      length control (rho per iteration, ``method.length_rho``): chosen = the
                        shortest response scoring >= (1-rho)*S_max + rho*S_min, rejected = the
                        longest scoring <= (1-rho)*S_min + rho*S_max
                        (srlm.core.selection.meta_reward_band_pair). Lengths in characters.
5. ``meta_judgements``  per instruction, the response whose valid judge scores vary most; every
                        pair of its valid judgements is shown to the meta-judge in both orders
                        (A = m, B = n and A = n, B = m), which ends with "Winner: Judgement A|B".
6. ``judge_pairs``      position-debiasing weights omega from the counts of first- and
                        second-position wins (srlm.core.selection.meta_judge_weights), the
                        weighted battle matrix B_mn = omega_1*1[m won in first position] +
                        omega_2*1[m won in second position], Elo by maximum likelihood
                        (srlm.core.elo); chosen = highest-Elo judgement, rejected = lowest. The
                        training prompt is the judge prompt of that (instruction, response).
7. ``pairs``            the training set: every actor pair, plus judge pairs when
                        ``method.train_judge`` is on for the iteration, capped so that at most
                        ``method.judge_pair_share`` of the pairs are judge pairs.
8. ``train``            DPO from M_t with M_t as reference gives M_{t+1} (srlm.runner).

Choices the paper leaves open:
- Prompts come from a fixed pool, not from M_t: the paper's 20,000 were written once by
  Llama-2-70B-Chat (8-shot) and 5,000 sampled per iteration, so slicing data.seed_instructions
  is the faithful reading; Self-Rewarding's self-instruct stage would let M_t write them.
- "Most varied" is the population variance of the valid scores; a response needs at least two
  valid judgements, and an instruction whose responses all have zero variance gets no
  meta-judging (all its judges agree, there is no disagreement to learn from). Ties go to the
  lower sample index.
- Two judgements with identical text are not compared (no preference can exist between them).
- A meta-judgement without a clear "Winner: Judgement A|B" of its own (the last ``Winner:``
  label opening a line, outside the quoted response and judgements), or one cut at
  max_tokens, counts as a parse failure and adds nothing to the battle matrix (the paper's
  r = 0); there are no ties.
- omega's win counts are taken per response by default (``method.position_weights``); a
  meta-judge that always names the same position then carries no information and gives no pair.
- A judge pair needs distinct highest and lowest Elo ratings and distinct texts.
- In iterations without judge training the meta-judge stages are skipped (they exist only to
  make judge pairs, and cost K*N^2 calls per instruction).
- The judge-pair cap keeps a seeded random subset of the judge pairs; with no actor pairs the
  cap allows no judge pairs.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from itertools import groupby

import numpy as np

from srlm.config import Config, MetaRewardConfig
from srlm.core.elo import battle_matrix, fit_elo
from srlm.core.parsing import parse_meta_winner
from srlm.core.selection import meta_judge_weights, meta_reward_band_pair
from srlm.core.stats import mean
from srlm.data import fresh_instructions, load_rows
from srlm.errors import ConfigError
from srlm.judging import (
    RUBRIC,
    SEED_JUDGEMENT_FIELDS,
    judge_prompt_text,
    judge_target,
    judge_warm_start_examples,
    load_seed_ift,
)
from srlm.methods.base import EngineFn, Method, Needs, group_by, register_method
from srlm.rewards.base import Item, get_reward
from srlm.rollout.base import chat_prompt
from srlm.training.data import Example

# The meta-judge prompt (paper Fig. 2, in srlm's own words): question, response, the rubric the
# judgements were asked to apply, two judgements labelled A and B; reason, then the verdict.
META_JUDGE_TEMPLATE = """You are checking the work of two judges. Each was shown the user's question and the response below and asked to score the response with this additive 5-point rubric:
{rubric}

User: {instruction}
<response>{response}</response>

<judgement A>{judgement_a}</judgement A>

<judgement B>{judgement_b}</judgement B>

Decide which judgement evaluates the response more accurately. Consider whether it applies the rubric faithfully, whether what it says about the response is true, and whether its score follows from its own reasoning. Explain your reasoning briefly, then conclude with which judgement is better, in the format: "Winner: [Judgement A | Judgement B]"
"""


def meta_judge_prompt_text(
    instruction: str, response: str, judgement_a: str, judgement_b: str
) -> str:
    return META_JUDGE_TEMPLATE.format(
        rubric=RUBRIC,
        instruction=instruction.strip(),
        response=response.strip(),
        judgement_a=judgement_a.strip(),
        judgement_b=judgement_b.strip(),
    )


@register_method("meta_reward", schema=MetaRewardConfig)
class MetaReward(Method):
    rollout_stages = (
        "prompts",
        "samples",
        "judgements",
        "actor_pairs",
        "meta_judgements",
        "judge_pairs",
        "pairs",
    )
    needs = Needs(
        rewards=("pointwise",),
        self_judge=True,
        why="Meta-Rewarding's meta-judge compares the pointwise judgements (texts and "
        "scores) of the policy's own judge, which it trains",
    )

    @classmethod
    def check_config(cls, config: Config) -> None:
        if config.reward.samples < 2:
            raise ConfigError(
                f"method=meta_reward with reward.samples={config.reward.samples}: the meta-judge "
                "compares judgements of one response, so each response needs at least 2 (paper: 11)"
            )

    def __init__(self, config: Config, run):
        super().__init__(config, run)
        self.m = config.method
        # The policy's own pointwise judge (Needs: self_judge), through the reward interface.
        self.reward = get_reward(config)
        d = config.data
        self.instructions = fresh_instructions(
            d, self.m.iterations, self.m.prompts_per_iteration, self.m.data_seed, "Meta-Rewarding"
        )
        self.seed_judgements: list[dict] = []
        self.seed_ift: list[dict] | None = None
        if self.m.warm_start.enabled:
            self.seed_judgements = load_rows(
                d.seed_judgements, required=SEED_JUDGEMENT_FIELDS, field_map=d.field_map
            )
            self.seed_ift = load_seed_ift(d)

    # ------------------------------------------------------------ schedules
    def rho(self, t: int) -> float:
        return per_iteration(self.m.length_rho, t)

    def train_judge(self, t: int) -> bool:
        return bool(per_iteration(self.m.train_judge, t))

    # ------------------------------------------------------------ warm start (optional)
    def warm_start_examples(self, tokenizer) -> list[Example]:
        tokenizer = self.prompt_tokenizer(tokenizer)
        out = judge_warm_start_examples(
            tokenizer, self.seed_judgements, self.m.warm_start.ift_min_score, self.seed_ift
        )
        if self.m.warm_start_meta_format:
            out += [
                Example(chat_prompt(tokenizer, prompt), target)
                for prompt, target in meta_format_demos(self.seed_judgements)
            ]
        return out

    # ------------------------------------------------------------ stages
    def run_stage(self, stage: str, t: int, engine: EngineFn) -> dict:
        return getattr(self, f"_stage_{stage}")(t, engine)

    def _stage_prompts(self, t: int, engine: EngineFn) -> dict:
        n = self.m.prompts_per_iteration
        chosen = self.instructions[(t - 1) * n : t * n]
        self.run.write_rows(
            t,
            "prompts",
            [{"id": f"{t}-{i}", "instruction": x} for i, x in enumerate(chosen)],
        )
        return {"prompts": len(chosen)}

    def _stage_samples(self, t: int, engine: EngineFn) -> dict:
        eng = engine()
        prompts = self.run.read_rows(t, "prompts")
        s = self.m.response_sampling
        outs = eng.generate(
            [chat_prompt(eng.tokenizer, p["instruction"]) for p in prompts],
            s,
            n=self.m.samples_per_prompt,
            desc=f"actor (T={s.temperature})",
        )
        rows = [
            {
                "prompt_id": p["id"],
                "sample": j,
                "instruction": p["instruction"],
                "response": c.text.strip(),
                "tokens": c.num_tokens,
                "chars": len(c.text.strip()),
                "finish_reason": c.finish_reason,
            }
            for p, cs in zip(prompts, outs, strict=True)
            for j, c in enumerate(cs)
        ]
        self.run.write_rows(t, "samples", rows)
        return {
            "samples": len(rows),
            "mean_tokens": mean(r["tokens"] for r in rows),
            "truncated": sum(r["finish_reason"] == "length" for r in rows),
        }

    def _stage_judgements(self, t: int, engine: EngineFn) -> dict:
        samples = self.run.read_rows(t, "samples")
        # One group per instruction (consecutive rows), so the tie rate is over its responses.
        groups = [list(g) for _, g in groupby(samples, key=lambda s: s["prompt_id"])]
        result = self.reward.score(
            [[Item(s["instruction"], s["response"]) for s in g] for g in groups], engine
        )
        rows = [
            s
            | {
                "judgements": [x.strip() for x in j.record["judgements"]],
                "scores": j.record["scores"],
                "score": j.score,
                "score_variance": score_variance(j.record["scores"]),
            }
            for g, scored in zip(groups, result.scored, strict=True)
            for s, j in zip(g, scored, strict=True)
        ]
        self.run.write_rows(t, "judgements", rows)
        return result.health

    def _stage_actor_pairs(self, t: int, engine: EngineFn) -> dict:
        rho, limit = self.rho(t), per_iteration(self.m.max_chosen_chars, t)
        pairs, dropped = [], {"no_pair": 0, "chosen_too_long": 0}
        for pid, rows in group_by(self.run.read_rows(t, "judgements"), "prompt_id").items():
            pick = meta_reward_band_pair(
                [r["score"] for r in rows], [r["chars"] for r in rows], rho
            )
            if pick is None:
                dropped["no_pair"] += 1  # < 2 scored, all scores equal
                continue
            c, r = rows[pick[0]], rows[pick[1]]
            if limit is not None and c["chars"] > limit:
                dropped["chosen_too_long"] += 1
                continue
            pairs.append(
                {
                    "kind": "actor",
                    "prompt_id": pid,
                    "instruction": c["instruction"],
                    "rho": rho,
                    "chosen": c["response"],
                    "rejected": r["response"],
                    "chosen_sample": c["sample"],
                    "rejected_sample": r["sample"],
                    "chosen_score": c["score"],
                    "rejected_score": r["score"],
                    "chosen_tokens": c["tokens"],
                    "rejected_tokens": r["tokens"],
                    "chosen_chars": c["chars"],
                    "rejected_chars": r["chars"],
                }
            )
        self.run.write_rows(t, "actor_pairs", pairs)
        return {
            "actor_pairs": len(pairs),
            "rho": rho,
            **{f"actor_dropped_{k}": v for k, v in dropped.items()},
            "chosen_tokens": mean(p["chosen_tokens"] for p in pairs),
            "rejected_tokens": mean(p["rejected_tokens"] for p in pairs),
            "chosen_chars": mean(p["chosen_chars"] for p in pairs),
            "rejected_chars": mean(p["rejected_chars"] for p in pairs),
            "chosen_score": mean(p["chosen_score"] for p in pairs),
            "rejected_score": mean(p["rejected_score"] for p in pairs),
        }

    def _stage_meta_judgements(self, t: int, engine: EngineFn) -> dict:
        if not self.train_judge(t):
            self.run.write_rows(t, "meta_judgements", [])
            return {
                "meta_judgements": 0,
                "meta_skipped": f"method.train_judge is off in iteration {t}",
            }
        todo: list[dict] = []  # one row per meta-judge call
        no_varied = 0
        for pid, rows in group_by(self.run.read_rows(t, "judgements"), "prompt_id").items():
            pick = most_varied([r["scores"] for r in rows])
            if pick is None:
                no_varied += 1
                continue
            r = rows[pick]
            for m, n in judgement_battles(r["judgements"], r["scores"]):
                for first, second in ((m, n), (n, m)):
                    todo.append(
                        {
                            "prompt_id": pid,
                            "sample": r["sample"],
                            "pair": [m, n],
                            "order": "AB" if first == m else "BA",
                            "first": first,
                            "second": second,
                            "instruction": r["instruction"],
                            "response": r["response"],
                            "_a": r["judgements"][first],
                            "_b": r["judgements"][second],
                        }
                    )
        texts, reasons = [], []
        if todo:
            eng = engine()
            prompts = [
                chat_prompt(
                    eng.tokenizer,
                    meta_judge_prompt_text(x["instruction"], x["response"], x["_a"], x["_b"]),
                )
                for x in todo
            ]
            outs = eng.generate(prompts, self.m.meta_judge_sampling, n=1, desc="meta-judge")
            texts = [cs[0].text.strip() for cs in outs]
            reasons = [cs[0].finish_reason for cs in outs]
        out = []
        for x, text, reason in zip(todo, texts, reasons, strict=True):
            # A meta-judgement cut at max_tokens has no verdict (srlm.core.parsing).
            winner = parse_meta_winner(text, reason)
            out.append(
                {k: v for k, v in x.items() if not k.startswith("_")}
                | {
                    "text": text,
                    "finish_reason": reason,
                    "winner": winner,
                    "winner_judgement": {"A": x["first"], "B": x["second"], None: None}[winner],
                }
            )
        self.run.write_rows(t, "meta_judgements", out)
        decided = [r for r in out if r["winner"] is not None]
        first_wins = sum(r["winner"] == "A" for r in decided)
        return {
            "meta_judged_prompts": len({r["prompt_id"] for r in out}),
            "meta_no_varied_response": no_varied,
            "meta_judgements": len(out),
            "meta_parse_failures": len(out) - len(decided),
            "meta_parse_failure_rate": (len(out) - len(decided)) / len(out) if out else None,
            "meta_truncated": sum(r["finish_reason"] == "length" for r in out),
            "meta_first_wins": first_wins,
            "meta_second_wins": len(decided) - first_wins,
            # Share of decided verdicts that named the judgement shown first (0.5: no position bias).
            "meta_position_bias": first_wins / len(decided) if decided else None,
            # Share of compared pairs where both orders named the same judgement.
            "meta_order_consistency": order_consistency(out),
        }

    def _stage_judge_pairs(self, t: int, engine: EngineFn) -> dict:
        if not self.train_judge(t):
            self.run.write_rows(t, "judge_pairs", [])
            return {"judge_pairs": 0}
        meta = self.run.read_rows(t, "meta_judgements")
        judged = {(r["prompt_id"], r["sample"]): r for r in self.run.read_rows(t, "judgements")}
        by_response: dict[tuple, list[dict]] = {}
        for r in meta:
            by_response.setdefault((r["prompt_id"], r["sample"]), []).append(r)
        overall = position_counts([_outcome(r) for r in meta])
        limit = per_iteration(self.m.judge_max_chosen_chars, t)
        pairs, dropped = [], {"no_preference": 0, "chosen_too_long": 0}
        for key, rows in by_response.items():
            src = judged[key]
            outcomes = [_outcome(r) for r in rows]
            counts = position_counts(outcomes) if self.m.position_weights == "prompt" else overall
            omega = meta_judge_weights(*counts)
            players = sorted({i for r in rows for i in r["pair"]})
            pick, elo = judge_pair(outcomes, players, omega)
            if pick is None:
                dropped["no_preference"] += 1
                continue
            c, j = pick
            chosen, rejected = src["judgements"][c], src["judgements"][j]
            if limit is not None and len(chosen) > limit:
                dropped["chosen_too_long"] += 1
                continue
            pairs.append(
                {
                    "kind": "judge",
                    "prompt_id": key[0],
                    "sample": key[1],
                    "instruction": src["instruction"],
                    "response": src["response"],
                    "chosen": chosen,
                    "rejected": rejected,
                    "chosen_judgement": c,
                    "rejected_judgement": j,
                    "chosen_elo": elo[c],
                    "rejected_elo": elo[j],
                    "elo": {str(k): v for k, v in elo.items()},
                    "omega": list(omega),
                    "chosen_score": src["scores"][c],
                    "rejected_score": src["scores"][j],
                    "chosen_chars": len(chosen),
                    "rejected_chars": len(rejected),
                }
            )
        self.run.write_rows(t, "judge_pairs", pairs)
        higher = [
            p["chosen_score"] > p["rejected_score"]
            for p in pairs
            if p["chosen_score"] != p["rejected_score"]
        ]
        return {
            "judge_pairs": len(pairs),
            **{f"judge_dropped_{k}": v for k, v in dropped.items()},
            "judge_chosen_chars": mean(p["chosen_chars"] for p in pairs),
            "judge_rejected_chars": mean(p["rejected_chars"] for p in pairs),
            # The paper's score bias: how often the preferred judgement gave the higher score.
            "judge_chosen_higher_score": sum(higher) / len(higher) if higher else None,
        }

    def _stage_pairs(self, t: int, engine: EngineFn) -> dict:
        actor = self.run.read_rows(t, "actor_pairs")
        judge = self.run.read_rows(t, "judge_pairs") if self.train_judge(t) else []
        n_judge = judge_pairs_allowed(len(actor), len(judge), self.m.judge_pair_share)
        rng = random.Random(self.config.seed * 1000 + t)
        keep = sorted(rng.sample(range(len(judge)), n_judge))
        used = actor + [judge[i] for i in keep]
        self.run.write_rows(t, "pairs", used)
        return {
            "pairs": len(used),
            "actor_pairs_used": len(actor),
            "judge_pairs_used": n_judge,
            "judge_pairs_capped": len(judge) - n_judge,
            "train_judge": self.train_judge(t),
            "judge_pair_share": n_judge / len(used) if used else None,
        }

    # ------------------------------------------------------------ training data
    def training_examples(self, t: int, tokenizer) -> list[Example]:
        tokenizer = self.prompt_tokenizer(tokenizer)
        out = []
        for p in self.run.read_rows(t, "pairs"):
            if p["kind"] == "judge":
                # The judge learns under the prompt it judges with.
                prompt = chat_prompt(tokenizer, judge_prompt_text(p["instruction"], p["response"]))
            else:
                prompt = chat_prompt(tokenizer, p["instruction"])
            out.append(Example(prompt, p["chosen"], p["rejected"]))
        return out

    # ------------------------------------------------------------ helpers


# ---------------------------------------------------------------- pure parts (unit-tested)
def per_iteration(values: Sequence, t: int):
    """The value of a per-iteration schedule for iteration t (1-based); the last value repeats."""
    return values[min(t, len(values)) - 1]


def score_variance(scores: Sequence[float | None]) -> float | None:
    """Population variance of the valid scores; None with fewer than two."""
    valid = [s for s in scores if s is not None]
    return float(np.var(valid)) if len(valid) >= 2 else None


def most_varied(score_lists: Sequence[Sequence[float | None]]) -> int | None:
    """Index of the response whose valid judge scores have the highest variance.

    Responses with fewer than two valid scores are skipped; None when no response has a
    variance above zero (its judges all agree). Ties go to the lowest index.
    """
    best, best_var = None, 0.0
    for i, scores in enumerate(score_lists):
        v = score_variance(scores)
        if v is not None and v > best_var + 1e-12:
            best, best_var = i, v
    return best


def judgement_battles(
    texts: Sequence[str], scores: Sequence[float | None]
) -> list[tuple[int, int]]:
    """Pairs (m, n), m < n, of valid judgements to compare; identical texts are not compared."""
    valid = [i for i, s in enumerate(scores) if s is not None]
    return [
        (m, n)
        for k, m in enumerate(valid)
        for n in valid[k + 1 :]
        if texts[m].strip() != texts[n].strip()
    ]


def meta_format_demos(seed_judgements: Sequence[dict]) -> list[tuple[str, str]]:
    """(meta-judge prompt, target) demonstrations of the verdict format (not in the paper).

    For seed judgement row i the accurate judgement is the row's own justification and score.
    The inaccurate one is, for even i, another row's judgement (about a different response,
    scoring at least 2 points apart), for odd i, the row's own justification with a score its
    reasoning does not support (5 for scores 0-2, else 0). The accurate judgement is shown as A
    and as B equally often within each kind, so the demonstrations teach no position.
    """
    rows = list(seed_judgements)
    out = []
    for i, r in enumerate(rows):
        good_score = float(r["score"])
        good = judge_target(r["justification"], good_score)
        other = next(
            (
                o
                for k in range(1, len(rows))
                if abs(float((o := rows[(i + k) % len(rows)])["score"]) - good_score) >= 2
                and o["instruction"] != r["instruction"]
            ),
            None,
        )
        if i % 2 == 0 and other is not None:
            bad_score = float(other["score"])
            bad = judge_target(other["justification"], bad_score)
            says_good = "applies the rubric to the response that was actually given"
            says_bad = f"describes a different answer, so its score of {bad_score:g} does not fit this response"
        else:
            bad_score = 5.0 if good_score <= 2 else 0.0
            bad = judge_target(r["justification"], bad_score)
            says_good = f"gives a score of {good_score:g}, which its reasoning supports"
            says_bad = f"gives a score of {bad_score:g}, which contradicts its own reasoning"
        good_first = (i // 2) % 2 == 0
        g = "A" if good_first else "B"
        a_text, b_text = (good, bad) if good_first else (bad, good)
        says_a, says_b = (says_good, says_bad) if good_first else (says_bad, says_good)
        # A is always discussed before B, so the verdict cannot be copied from whichever
        # judgement the reasoning mentions first (a small model's easiest shortcut).
        target = f"Judgement A {says_a}. Judgement B {says_b}.\nWinner: Judgement {g}"
        out.append(
            (meta_judge_prompt_text(r["instruction"], r["response"], a_text, b_text), target)
        )
    return out


def _outcome(row: dict) -> tuple[int, int, str | None]:
    """One meta-judgement as a battle ``(first, second, "first" | "second" | None)``."""
    return row["first"], row["second"], {"A": "first", "B": "second", None: None}[row["winner"]]


def position_counts(outcomes: Sequence[tuple[int, int, str | None]]) -> tuple[int, int]:
    """(wins in first position, wins in second position) among decided battles."""
    return (sum(w == "first" for _, _, w in outcomes), sum(w == "second" for _, _, w in outcomes))


def weighted_battles(
    outcomes: Sequence[tuple[int, int, str | None]],
    players: Sequence[int],
    omega: tuple[float, float],
) -> np.ndarray:
    """Meta-Rewarding's battle matrix over ``players`` (judgement indices, in order):

    B[m, n] = omega_1 * #(m beat n shown first) + omega_2 * #(m beat n shown second).
    Undecided battles add nothing (the paper's r = 0).
    """
    where = {p: k for k, p in enumerate(players)}
    local = [(where[i], where[j], w) for i, j, w in outcomes]
    weights = [
        omega[0] if w == "first" else omega[1] if w == "second" else 0.0 for _, _, w in local
    ]
    return battle_matrix(local, len(players), weights=weights, tie_weight=0.0)


def judge_pair(
    outcomes: Sequence[tuple[int, int, str | None]],
    players: Sequence[int],
    omega: tuple[float, float],
) -> tuple[tuple[int, int] | None, dict[int, float]]:
    """((highest-Elo, lowest-Elo) judgement indices, or None; Elo per judgement index).

    None when the ratings carry no preference (no battle with weight, so all ratings equal).
    Ties go to the lower judgement index.
    """
    if len(players) < 2:
        return None, {}
    ratings = fit_elo(weighted_battles(outcomes, players, omega))
    elo = {p: float(r) for p, r in zip(players, ratings, strict=True)}
    if ratings.max() - ratings.min() < 1e-6:
        return None, elo
    best = max(range(len(players)), key=lambda k: (ratings[k], -k))
    worst = min(range(len(players)), key=lambda k: (ratings[k], k))
    return (players[best], players[worst]), elo


def judge_pairs_allowed(n_actor: int, n_judge: int, share: float) -> int:
    """How many of n_judge judge pairs may join n_actor actor pairs so that judge pairs are at
    most ``share`` of the training pairs: the largest j <= n_judge with j / (n_actor + j) <= share."""
    if share >= 1:
        return n_judge
    return min(n_judge, math.floor(share * n_actor / (1 - share) + 1e-9))


def order_consistency(meta_rows: Sequence[dict]) -> float | None:
    """Share of judgement pairs whose two orders, both decided, named the same judgement."""
    by_pair: dict[tuple, list] = {}
    for r in meta_rows:
        by_pair.setdefault((r["prompt_id"], r["sample"], *r["pair"]), []).append(
            r["winner_judgement"]
        )
    decided = [w for w in by_pair.values() if len(w) == 2 and None not in w]
    return sum(w[0] == w[1] for w in decided) / len(decided) if decided else None
