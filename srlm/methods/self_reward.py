"""Self-Rewarding Language Models (Yuan et al. 2024, arXiv 2401.10020).

One iteration with model M_t:

1. ``prompts``     M_t writes new instructions, few-shot from seed (and earlier generated)
                   instructions (self-instruct), filtered for near-duplicates by ROUGE-L.
                   With method.prompt_writer set, a fixed model writes them instead, as in
                   the paper (Llama-2-70B-Chat, 8-shot from the seed IFT prompts).
2. ``samples``     M_t answers each instruction N times.
3. ``judgements``  each answer is scored by the reward source (``reward=``; default
                   self_judge: M_t judges it k times with the additive 5-point rubric, the valid
                   scores are averaged, unparseable judgements are counted and left out).
4. ``pairs``       per instruction, highest vs lowest mean score; ties give no pair.
5. ``train``       DPO from M_t with M_t as reference gives M_{t+1} (run by srlm.runner).

Before iteration 1 an optional warm start (the paper's M1) fine-tunes on seed instruction
following (IFT) rows (data.seed_ift; without it, the seed judgements that scored at least
method.warm_start.ift_min_score) and seed judgements (EFT), which teaches the judge format.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from contextlib import contextmanager

from srlm.config import Config, SamplingConfig, SelfRewardConfig
from srlm.core.rouge import rouge_l
from srlm.core.selection import best_worst
from srlm.core.stats import mean
from srlm.data import load_rows
from srlm.errors import ConfigError, SetupError
from srlm.judging import SEED_JUDGEMENT_FIELDS, judge_warm_start_examples, load_seed_ift
from srlm.methods.base import EngineFn, Method, Needs, group_by, register_method, sample_rows
from srlm.rewards.base import Item, OwnEngine, get_reward
from srlm.rollout.base import RolloutEngine, chat_prompt
from srlm.training.data import Example, Group

SELF_INSTRUCT_TEMPLATE = """Come up with a series of new tasks and questions that a person might ask an AI assistant. Each one is a single self-contained request, different in topic and form from the others. Here are examples:

{examples}

Continue the numbered list with new, different requests. Write only the request text, one per line."""

# Self-Instruct's filter: requests a text-only assistant cannot fulfil.
UNSUITABLE = re.compile(
    r"\b(image|images|picture|pictures|photo|graph|graphs|diagram|flowchart|draw|plot|"
    r"video|audio|music|file|files|map|maps|go to|url|link)\b",
    re.IGNORECASE,
)
ITEM = re.compile(r"^\s*(\d+)\s*[.)]\s*(.+?)\s*$")


@register_method("self_reward", schema=SelfRewardConfig)
class SelfReward(Method):
    rollout_stages = ("prompts", "samples", "judgements", "pairs")
    needs = Needs(
        rewards=("pointwise", "pairwise"),
        why="Self-Rewarding pairs the highest- against the lowest-scored response of each "
        "model-written prompt (which has no gold answer)",
    )

    @classmethod
    def check_config(cls, config: Config) -> None:
        s = config.trainer.sync_every
        if s and config.method.prompt_writer is not None:
            raise ConfigError(
                f"method.prompt_writer with trainer.sync_every={s}: online Self-Rewarding answers "
                "a fixed prompt set (data.seed_instructions) and writes no prompts; use "
                "method.prompt_writer=null or trainer.sync_every=0"
            )

    def __init__(self, config: Config, run):
        super().__init__(config, run)
        self.m = config.method
        self.reward = get_reward(config)
        # A fixed writer takes the run's rollout settings (tensor parallelism and all).
        self.writer = (
            OwnEngine(self.m.prompt_writer, config.rollout) if self.m.prompt_writer else None
        )
        d = config.data
        self.seed_instructions = [
            r["instruction"]
            for r in load_rows(
                d.seed_instructions, required=["instruction"], field_map=d.field_map, limit=d.limit
            )
        ]
        self.held_out = [
            r["instruction"]
            for r in load_rows(d.eval_prompts, required=["instruction"], field_map=d.field_map)
        ]
        self.seed_judgements = None
        self.seed_ift = None
        if self.m.warm_start.enabled:
            self.seed_judgements = load_rows(
                d.seed_judgements, required=SEED_JUDGEMENT_FIELDS, field_map=d.field_map
            )
            self.seed_ift = load_seed_ift(d)

    # ------------------------------------------------------------ warm start (M0 -> M1)
    def warm_start_examples(self, tokenizer) -> list[Example]:
        tokenizer = self.prompt_tokenizer(tokenizer)
        return judge_warm_start_examples(
            tokenizer,
            self.seed_judgements or [],
            self.m.warm_start.ift_min_score,
            self.seed_ift,
        )

    # ------------------------------------------------------------ stages
    def run_stage(self, stage: str, t: int, engine: EngineFn) -> dict:
        return getattr(self, f"_stage_{stage}")(t, engine)

    @contextmanager
    def _prompt_writer(self, engine: EngineFn) -> Iterator[RolloutEngine]:
        """The engine that writes the prompts: M_t's, or the fixed writer's. The writer's
        engine starts only after M_t's is released and is closed when the stage ends, so the
        two never hold the accelerator's memory at once (vLLM reserves most of it); the samples
        stage then starts M_t's engine afresh."""
        if self.writer is None:
            yield engine()
            return
        try:
            yield self.writer(engine)
        finally:
            self.writer.close()

    def _stage_prompts(self, t: int, engine: EngineFn) -> dict:
        with self._prompt_writer(engine) as eng:
            return self._write_prompts(t, eng)

    def _write_prompts(self, t: int, eng: RolloutEngine) -> dict:
        rng = random.Random(self.config.seed * 1000 + t)
        earlier = [r["instruction"] for s in range(1, t) for r in self.run.read_rows(s, "prompts")]
        known = self.seed_instructions + self.held_out + earlier
        kept: list[str] = []
        counts = {"generated": 0, "unsuitable": 0, "similar": 0, "bad_length": 0}
        need = self.m.prompts_per_iteration
        rounds = 0
        while len(kept) < need and rounds < self.m.max_generation_rounds:
            rounds += 1
            calls = max(2, (need - len(kept)) // 2)
            prompts = [
                chat_prompt(
                    eng.tokenizer,
                    self._self_instruct(rng, earlier + kept),
                    assistant_prefix=f"{self._n_shots(earlier + kept) + 1}. ",
                )
                for _ in range(calls)
            ]
            for [c] in eng.generate(
                prompts, self.m.prompt_sampling, n=1, desc=f"write prompts (round {rounds})"
            ):
                for cand in _parse_items(c.text):
                    counts["generated"] += 1
                    reason = self._reject(cand, known + kept)
                    if reason:
                        counts[reason] += 1
                    elif len(kept) < need:
                        kept.append(cand)
        if not kept:
            raise SetupError(
                f"iteration {t}: the model wrote no usable prompt in {rounds} rounds "
                f"({counts}); raise method.max_generation_rounds or use a stronger model "
                "(method.prompt_writer)"
            )
        self.run.write_rows(
            t,
            "prompts",
            [{"id": f"{t}-{i}", "instruction": p} for i, p in enumerate(kept)],
        )
        return {"prompts": len(kept), "rounds": rounds, **counts}

    def _n_shots(self, generated: list[str]) -> int:
        return self.m.shots_from_seed + min(self.m.shots_from_generated, len(generated))

    def _self_instruct(self, rng: random.Random, generated: list[str]) -> str:
        # The paper mixes 6 seed and 2 model-written demonstrations.
        k_gen = min(self.m.shots_from_generated, len(generated))
        shots = rng.sample(
            self.seed_instructions, min(self.m.shots_from_seed, len(self.seed_instructions))
        )
        shots += rng.sample(generated, k_gen)
        rng.shuffle(shots)
        return SELF_INSTRUCT_TEMPLATE.format(
            examples="\n".join(f"{i + 1}. {s}" for i, s in enumerate(shots))
        )

    def _reject(self, cand: str, known: list[str]) -> str | None:
        words = len(cand.split())
        if not (self.m.min_prompt_words <= words <= self.m.max_prompt_words):
            return "bad_length"
        if UNSUITABLE.search(cand) or not cand[0].isalnum():
            return "unsuitable"
        if any(rouge_l(cand, k) > self.m.max_similarity for k in known):
            return "similar"
        return None

    def _stage_samples(self, t: int, engine: EngineFn) -> dict:
        eng = engine()
        prompts = self.run.read_rows(t, "prompts")
        outs = eng.generate(
            [chat_prompt(eng.tokenizer, p["instruction"]) for p in prompts],
            self.m.response_sampling,
            n=self.m.samples_per_prompt,
            desc="answer",
        )
        rows = [
            {
                "prompt_id": p["id"],
                "sample": j,
                "instruction": p["instruction"],
                "response": c.text.strip(),
                "tokens": c.num_tokens,
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
        rows, health = self._judge(_by_prompt(self.run.read_rows(t, "samples")), engine)
        self.run.write_rows(t, "judgements", rows)
        return health

    def _judge(self, groups: list[list[dict]], engine: EngineFn) -> tuple[list[dict], dict]:
        """Sample rows grouped by prompt, each with the reward source's record and "score"
        added, and the source's health. A pairwise judge compares within a prompt's group."""
        result = self.reward.score(
            [[Item(s["instruction"], s["response"]) for s in g] for g in groups], engine
        )
        rows = [
            s | x.record | {"score": x.score}
            for g, xs in zip(groups, result.scored, strict=True)
            for s, x in zip(g, xs, strict=True)
        ]
        return rows, result.health

    def _stage_pairs(self, t: int, engine: EngineFn) -> dict:
        pairs, ties, too_few = [], 0, 0
        for rows in _by_prompt(self.run.read_rows(t, "judgements")):
            pair, why = _pair(rows)
            ties += why == "tie"
            too_few += why == "too_few_scored"
            pairs += [pair] if pair else []
        self.run.write_rows(t, "pairs", pairs)
        return {
            "pairs": len(pairs),
            "ties_dropped": ties,
            "too_few_scored": too_few,
            "chosen_tokens": mean(p["chosen_tokens"] for p in pairs),
            "rejected_tokens": mean(p["rejected_tokens"] for p in pairs),
            "chosen_score": mean(p["chosen_score"] for p in pairs),
            "rejected_score": mean(p["rejected_score"] for p in pairs),
        }

    # ------------------------------------------------------------ training data
    def training_examples(self, t: int, tokenizer) -> list[Example]:
        tokenizer = self.prompt_tokenizer(tokenizer)
        return [
            Example(chat_prompt(tokenizer, p["instruction"]), p["chosen"], p["rejected"])
            for p in self.run.read_rows(t, "pairs")
        ]

    trains_groups = True

    def training_groups(self, t: int, tokenizer) -> list[Group]:
        """Each prompt's responses with their scores (optimizer=grpo); responses the judge
        could not score are left out."""
        tokenizer = self.prompt_tokenizer(tokenizer)
        return _groups(_by_prompt(self.run.read_rows(t, "judgements")), tokenizer)

    # ------------------------------------------------------------ online regimes
    # Online Self-Rewarding: each step answers prompts of a fixed set (data.seed_instructions;
    # the model-written prompts of the iterative regime are not made online) with the current
    # policy, and the reward source scores the answers; with reward=self_judge the judge is the
    # policy as of the last sync, so it improves with it.
    trains_online = True

    def online_prompts(self) -> list[dict]:
        return [{"id": f"seed-{i}", "instruction": x} for i, x in enumerate(self.seed_instructions)]

    def online_prompt(self, tokenizer, row: dict) -> str:
        return chat_prompt(tokenizer, row["instruction"])

    def online_sampling(self) -> tuple[SamplingConfig, int]:
        return self.m.response_sampling, self.m.samples_per_prompt

    def online_examples(
        self, t: int, questions: list[dict], outs, engine: EngineFn, tokenizer, grouped: bool
    ) -> tuple[list, dict]:
        tokenizer = self.prompt_tokenizer(tokenizer)
        samples = sample_rows(
            questions, outs, lambda q: {"prompt_id": q["id"], "instruction": q["instruction"]}
        )
        rows, health = self._judge(samples, engine)
        by_prompt = _by_prompt(rows)
        scores = [r["score"] for r in rows if r["score"] is not None]
        stats = {f"reward_{k}": v for k, v in health.items()} | {
            "score_mean": mean(scores),
            "scored": len(scores),
        }
        if grouped:
            return _groups(by_prompt, tokenizer), stats
        pairs = [p for p, _ in map(_pair, by_prompt) if p]
        examples = [
            Example(chat_prompt(tokenizer, p["instruction"]), p["chosen"], p["rejected"])
            for p in pairs
        ]
        return examples, stats | {"pairs": len(pairs)}

    # ------------------------------------------------------------ helpers


def _by_prompt(rows: list[dict]) -> list[list[dict]]:
    return list(group_by(rows, "prompt_id").values())


def _pair(rows: list[dict]) -> tuple[dict | None, str | None]:
    """The paper's pair of one prompt: its highest- against its lowest-scored response; no
    pair ("tie") when they score the same, or ("too_few_scored") with fewer than two scores."""
    scored = [r for r in rows if r["score"] is not None]
    if len(scored) < 2:
        return None, "too_few_scored"
    pick = best_worst([r["score"] for r in scored])
    if pick is None:
        return None, "tie"
    c, r = scored[pick[0]], scored[pick[1]]
    return {
        "prompt_id": c["prompt_id"],
        "instruction": c["instruction"],
        "chosen": c["response"],
        "rejected": r["response"],
        "chosen_score": c["score"],
        "rejected_score": r["score"],
        "chosen_tokens": c["tokens"],
        "rejected_tokens": r["tokens"],
    }, None


def _groups(by_prompt: list[list[dict]], tokenizer) -> list[Group]:
    groups = []
    for rows in by_prompt:
        scored = [r for r in rows if r["score"] is not None]
        if scored:
            groups.append(
                Group(
                    chat_prompt(tokenizer, scored[0]["instruction"]),
                    [r["response"] for r in scored],
                    [float(r["score"]) for r in scored],
                )
            )
    return groups


def _parse_items(text: str) -> list[str]:
    """Requests from a numbered-list continuation; the first line continues the open item."""
    items = []
    for i, line in enumerate(text.splitlines()):
        m = ITEM.match(line)
        item = m.group(2) if m else (line.strip() if i == 0 else None)
        if item:
            items.append(item.strip().strip('"'))
    return items
