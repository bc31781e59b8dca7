"""Thought Preference Optimization, TPO (Wu et al. 2024, arXiv 2410.10630, "Thinking LLMs").

The model learns to think before it answers, with no thought data: it writes hidden thoughts and
then a response, a judge scores the response alone, and DPO prefers whole outputs (thoughts
included) whose responses scored well. One iteration with model M_t:

1. ``samples``     K outputs per instruction, sampled with a thought prompt in front of the
                   instruction (``method.thought_prompt``: generic or specific). Instructions
                   come from data.seed_instructions, shuffled once; every iteration takes the
                   next ``method.prompts_per_iteration`` of them, never one used before.
2. ``split``       each output is cut at the prompt's separator ("Here is my response:" or
                   "<R>") into thought and response; an output without it is a parse error.
3. ``judgements``  the reward source (``reward=``; default self_judge: the policy with the
                   additive 5-point rubric; pairwise judges compare the K responses of an
                   instruction, both orders, Elo) sees only the instruction and the response,
                   never the thought.
4. ``pairs``       per instruction, with the K samples' mean judge scores r and response
                   lengths l standardised over the group, s = r̄ - rho * l̄ (rho from
                   ``method.length_rho`` per iteration); chosen = argmax s, rejected = argmin s.
                   An output with a parse error, when the instruction has one, is the rejected
                   sample instead (paper: parse errors are added as rejected samples). Both
                   sides keep their thoughts, and the prompt keeps the thought prompt.
5. ``train``       DPO from M_t with M_t as reference gives M_{t+1} (srlm.runner); only this
                   iteration's pairs are used.
6. ``evaluate``    (srlm/eval, ``eval.*``): held-out instructions answered with the thought
                   prompt, resampled on a parse error (``method.eval_resamples``); only the
                   response, which is all a user would see, is judged against M_0's and
                   M_{t-1}'s; thought and response lengths are reported (eval_answers).

``method.thoughts=false`` is the paper's direct baseline: the same pipeline without a thought
prompt, where the whole output is the response.

Choices the paper leaves open:
- A group whose judged responses all have the same score is dropped (unless it has a parse
  error to reject): standardising equal scores gives zeros, so s would be length alone and the
  pair would teach brevity, not quality. The paper's ArmoRM scores practically never tie; the
  5-point judge often does.
- Among several parse errors the first sample is the rejected one; among equal s the lower
  sample index wins.
- Lengths are response tokens under the model's tokenizer.
- The paper's judges are ArmoRM (reward=reward_model) and the Self-Taught Evaluator (pairwise +
  Elo: reward=pairwise_judge / thinking_judge). srlm's default judge is the policy itself with
  Self-Rewarding's rubric, so an untrained small model needs the optional warm start to judge.
"""

from __future__ import annotations

from srlm.config import Config, SamplingConfig, TpoConfig
from srlm.core.parsing import split_thought
from srlm.core.selection import length_controlled_scores
from srlm.core.stats import mean
from srlm.data import fresh_instructions, load_rows
from srlm.judging import SEED_JUDGEMENT_FIELDS, judge_warm_start_examples, load_seed_ift
from srlm.methods.base import EngineFn, Method, Needs, group_by, register_method, sample_rows
from srlm.rewards.base import Item, get_reward
from srlm.rollout.base import chat_prompt, format_prompt
from srlm.training.data import Example

# The paper's two thought prompts, in srlm's own words. Each is put in front of the instruction
# in the user turn; the separator is where an output is split into thought and response.
GENERIC_PROMPT = (
    "Answer the user's query below as helpfully and completely as you can. Before answering, "
    'you may think it over: write your thought process after "Here is my thought process:", '
    'then write your answer after "Here is my response:". The user sees only what comes '
    'after "Here is my response:".\n\nUser query: '
)
SPECIFIC_PROMPT = (
    "Answer the user's query below in a thorough and detailed way. First write your internal "
    "thoughts: they must contain a draft response and an evaluation of that draft (what works, "
    "what is missing or wrong, how to improve it). Then write your final response after "
    '"<R>". The user sees only what comes after "<R>".\n\nUser query: '
)
THOUGHT_PROMPTS = {
    "generic": (GENERIC_PROMPT, "Here is my response:"),
    "specific": (SPECIFIC_PROMPT, "<R>"),
}
THOUGHT_HEADER = "Here is my thought process:"


@register_method("tpo", schema=TpoConfig)
class Tpo(Method):
    rollout_stages = ("samples", "split", "judgements", "pairs")
    needs = Needs(
        rewards=("pointwise", "pairwise"),
        why="TPO pairs a prompt's outputs by the length-controlled scores of their "
        "responses (its instructions have no gold answer)",
    )

    def __init__(self, config: Config, run):
        super().__init__(config, run)
        self.m = config.method
        self.reward = get_reward(config)
        self.kind = self.m.thought_prompt if self.m.thoughts else None
        self.separator = separator(self.kind)
        d = config.data
        self.instructions = fresh_instructions(
            d, self.m.iterations, self.m.prompts_per_iteration, self.m.data_seed, "TPO"
        )
        self.seed_judgements: list[dict] = []
        self.seed_ift: list[dict] | None = None
        if self.m.warm_start.enabled:
            self.seed_judgements = load_rows(
                d.seed_judgements, required=SEED_JUDGEMENT_FIELDS, field_map=d.field_map
            )
            self.seed_ift = load_seed_ift(d)

    # ------------------------------------------------------------ prompts
    def prompt(self, tokenizer, instruction: str) -> str:
        """The chat prompt of one instruction, the same for sampling and training."""
        return chat_prompt(tokenizer, user_turn(instruction, self.kind))

    def iteration_instructions(self, t: int) -> list[str]:
        n = self.m.prompts_per_iteration
        return self.instructions[(t - 1) * n : t * n]

    def rho(self, t: int) -> float:
        """Length-control weight of iteration t (1-based); the schedule's last value repeats."""
        return self.m.length_rho[min(t, len(self.m.length_rho)) - 1]

    # ------------------------------------------------------------ warm start (optional)
    def warm_start_examples(self, tokenizer) -> list[Example]:
        tokenizer = self.prompt_tokenizer(tokenizer)
        ws = self.m.warm_start
        out = judge_warm_start_examples(
            tokenizer, self.seed_judgements, ws.ift_min_score, self.seed_ift
        )
        if self.m.warm_start_thought_format and self.kind is not None:
            out += [
                Example(
                    self.prompt(tokenizer, r["instruction"]),
                    thought_format_demo(self.kind, r["response"], r["justification"]),
                )
                for r in self.seed_judgements
                if int(r["score"]) >= ws.ift_min_score
            ]
        return out

    # ------------------------------------------------------------ stages
    def run_stage(self, stage: str, t: int, engine: EngineFn) -> dict:
        return getattr(self, f"_stage_{stage}")(t, engine)

    def _stage_samples(self, t: int, engine: EngineFn) -> dict:
        eng = engine()
        instructions = self.iteration_instructions(t)
        s = self.m.sampling
        outs = eng.generate(
            [self.prompt(eng.tokenizer, x) for x in instructions],
            s,
            n=self.m.samples_per_prompt,
            desc=f"sample (T={s.temperature})",
        )
        rows = [
            {
                "prompt_id": f"{t}-{i}",
                "sample": j,
                "instruction": x,
                "output": c.text.strip(),
                "tokens": c.num_tokens,
                "finish_reason": c.finish_reason,
            }
            for i, (x, cs) in enumerate(zip(instructions, outs, strict=True))
            for j, c in enumerate(cs)
        ]
        self.run.write_rows(t, "samples", rows)
        return {
            "prompts": len(instructions),
            "samples": len(rows),
            "mean_output_tokens": mean(r["tokens"] for r in rows),
            "truncated": sum(r["finish_reason"] == "length" for r in rows),
        }

    def _stage_split(self, t: int, engine: EngineFn) -> dict:
        rows = self._split(self.run.read_rows(t, "samples"), engine())
        self.run.write_rows(t, "split", rows)
        errors = [r for r in rows if r["parse_error"]]
        return {
            "thought_parse_errors": len(errors),
            "thought_parse_error_rate": len(errors) / max(len(rows), 1),
            # A parse error that ran out of tokens may only need a larger method.sampling.max_tokens.
            "parse_errors_truncated": sum(r["finish_reason"] == "length" for r in errors),
            "mean_thought_tokens": mean(r["thought_tokens"] for r in rows),
            "mean_response_tokens": mean(r["response_tokens"] for r in rows),
        }

    def _split(self, samples: list[dict], eng) -> list[dict]:
        """Sample rows with their thought and response (None on a parse error) and their
        lengths in tokens of the engine's tokenizer."""

        def n_tokens(text: str | None) -> int | None:
            return None if text is None else len(eng.encode(text))

        rows = []
        for s in samples:
            parts = split_output(s["output"], self.separator)
            thought, response = parts if parts is not None else (None, None)
            rows.append(
                s
                | {
                    "parse_error": parts is None,
                    "thought": thought,
                    "response": response,
                    "thought_tokens": n_tokens(thought) if self.kind is not None else None,
                    "response_tokens": n_tokens(response),
                }
            )
        return rows

    def _stage_judgements(self, t: int, engine: EngineFn) -> dict:
        out, stats = self._judge(self.run.read_rows(t, "split"), engine)
        self.run.write_rows(t, "judgements", out)
        return stats

    def _judge(self, rows: list[dict], engine: EngineFn) -> tuple[list[dict], dict]:
        """Split rows with the reward source's record and "score" added (None for a parse
        error), and the source's health."""
        todo = [r for r in rows if not r["parse_error"]]
        # The reward source gets (instruction, response) only; the thought never reaches it.
        # One group per instruction, so that a pairwise judge compares the K responses of one
        # instruction with each other.
        groups = list(group_by(todo, "prompt_id").values())
        result = self.reward.score(
            [[Item(r["instruction"], r["response"]) for r in g] for g in groups], engine
        )
        judged = [x for g in result.scored for x in g]
        verdicts = {
            (r["prompt_id"], r["sample"]): j
            for r, j in zip([r for g in groups for r in g], judged, strict=True)
        }
        out = []
        for r in rows:
            j = verdicts.get((r["prompt_id"], r["sample"]))
            out.append(
                r
                | {"judged_response": r["response"] if j else None}
                | (j.record if j else {"judgements": [], "scores": []})
                | {"score": j.score if j else None}
            )
        return out, {"judged_responses": len(judged), **result.health}

    def _stage_pairs(self, t: int, engine: EngineFn) -> dict:
        rho = self.rho(t)
        pairs, dropped = self._pairs(self.run.read_rows(t, "judgements"), rho)
        self.run.write_rows(t, "pairs", pairs)
        # Lengths and scores of the judged pairs (both sides parsed): tune rho until chosen
        # responses are on average no longer than rejected ones.
        judged = [p for p in pairs if not p["rejected_parse_error"]]
        return {
            "pairs": len(pairs),
            "rho": rho,
            "pairs_rejecting_parse_error": len(pairs) - len(judged),
            **{f"dropped_{k}": v for k, v in dropped.items()},
            "chosen_tokens": mean(p["chosen_tokens"] for p in judged),
            "rejected_tokens": mean(p["rejected_tokens"] for p in judged),
            "chosen_thought_tokens": mean(p["chosen_thought_tokens"] for p in judged),
            "rejected_thought_tokens": mean(p["rejected_thought_tokens"] for p in judged),
            "chosen_score": mean(p["chosen_score"] for p in judged),
            "rejected_score": mean(p["rejected_score"] for p in judged),
        }

    def _pairs(self, rows: list[dict], rho: float) -> tuple[list[dict], dict]:
        """Each prompt's pair by TPO's rule (select_pair), and the counts of prompts left
        without one, by reason."""
        pairs, dropped = [], {"no_scored_output": 0, "too_few_scored": 0, "tied_scores": 0}
        for pid, group in group_by(rows, "prompt_id").items():
            pick, why = select_pair(
                [r["score"] for r in group],
                [r["response_tokens"] for r in group],
                [r["parse_error"] for r in group],
                rho,
            )
            if pick is None:
                dropped[why] += 1
                continue
            c, r = group[pick[0]], group[pick[1]]
            pairs.append(
                {
                    "prompt_id": pid,
                    "instruction": c["instruction"],
                    "rho": rho,
                    "chosen": c["output"],
                    "rejected": r["output"],
                    "chosen_response": c["response"],
                    "rejected_response": r["response"],
                    "chosen_sample": c["sample"],
                    "rejected_sample": r["sample"],
                    "rejected_parse_error": r["parse_error"],
                    "chosen_score": c["score"],
                    "rejected_score": r["score"],
                    "chosen_tokens": c["response_tokens"],
                    "rejected_tokens": r["response_tokens"],
                    "chosen_thought_tokens": c["thought_tokens"],
                    "rejected_thought_tokens": r["thought_tokens"],
                }
            )
        return pairs, dropped

    # ------------------------------------------------------------ online regimes
    # Online TPO: each step samples outputs (thought + response) to the run's instructions
    # (the iterative regime's, method.prompts_per_iteration per iteration from
    # data.seed_instructions) with the current policy, splits them, lets the reward source
    # judge the responses alone (never the thoughts) and trains on the pairs of TPO's rule,
    # thoughts included, with the first iteration's length-control rho throughout.
    trains_online = True

    def online_prompts(self) -> list[dict]:
        return [{"id": f"seed-{i}", "instruction": x} for i, x in enumerate(self.instructions)]

    def online_prompt(self, tokenizer, row: dict) -> str:
        return self.prompt(tokenizer, row["instruction"])

    def online_sampling(self) -> tuple[SamplingConfig, int]:
        return self.m.sampling, self.m.samples_per_prompt

    def online_examples(
        self, t: int, questions: list[dict], outs, engine: EngineFn, tokenizer, grouped: bool
    ) -> tuple[list, dict]:
        tokenizer = self.prompt_tokenizer(tokenizer)
        fields = lambda q: {"prompt_id": q["id"], "instruction": q["instruction"]}  # noqa: E731
        samples = [r for g in sample_rows(questions, outs, fields, text="output") for r in g]
        rows, health = self._judge(self._split(samples, engine()), engine)
        pairs, dropped = self._pairs(rows, self.rho(1))
        scores = [r["score"] for r in rows if r["score"] is not None]
        examples = [
            Example(self.prompt(tokenizer, p["instruction"]), p["chosen"], p["rejected"])
            for p in pairs
        ]
        return examples, {f"reward_{k}": v for k, v in health.items()} | {
            "pairs": len(pairs),
            "score_mean": mean(scores),
            "thought_parse_error_rate": sum(r["parse_error"] for r in rows) / max(len(rows), 1),
            **{f"dropped_{k}": v for k, v in dropped.items()},
        }

    # ------------------------------------------------------------ training data
    def training_examples(self, t: int, tokenizer) -> list[Example]:
        tokenizer = self.prompt_tokenizer(tokenizer)
        # Whole outputs, thoughts included, under the prompt that asked for them.
        return [
            Example(self.prompt(tokenizer, p["instruction"]), p["chosen"], p["rejected"])
            for p in self.run.read_rows(t, "pairs")
        ]

    # ------------------------------------------------------------ evaluation
    eval_decoders = False
    eval_decoders_why = (
        "TPO's model answers after a thought that the user never sees, and a decoder's steps "
        "would neither prompt for the thought nor hide it"
    )

    def eval_answers(
        self, conversations: list[list[dict]], engine: EngineFn, sampling
    ) -> list[dict]:
        """Held-out answers as a user would get them (srlm/eval): the last user turn carries
        the thought prompt; an output without the separator is resampled up to
        ``method.eval_resamples`` times (as the paper does at evaluation); only the response
        is returned to be judged, with the thought's length beside it."""
        eng = engine()

        def prompt(conv: list[dict]) -> str:
            *earlier, last = conv
            messages = [
                *earlier,
                {"role": "user", "content": user_turn(last["content"], self.kind)},
            ]
            return format_prompt(eng.tokenizer, messages)

        outputs, attempts = [""] * len(conversations), [0] * len(conversations)
        pending = list(range(len(conversations)))
        for attempt in range(1 + self.m.eval_resamples):
            outs = eng.generate(
                [prompt(conversations[i]) for i in pending],
                sampling,
                n=1,
                desc=f"evaluate: answers (try {attempt + 1})",
            )
            failed = []
            for i, [c] in zip(pending, outs, strict=True):
                outputs[i], attempts[i] = c.text.strip(), attempt + 1
                if split_output(outputs[i], self.separator) is None:
                    failed.append(i)
            pending = failed
            if not pending:
                break
        rows = []
        for output, n in zip(outputs, attempts, strict=True):
            parts = split_output(output, self.separator)
            thought, response = parts if parts is not None else (None, None)
            rows.append(
                {
                    "output": output,
                    "attempts": n,
                    "parse_error": parts is None,
                    "thought": thought,
                    "response": response,
                    "thought_tokens": len(eng.encode(thought))
                    if thought is not None and self.kind
                    else None,
                    "response_tokens": len(eng.encode(response)) if response is not None else None,
                }
            )
        return rows

    # ------------------------------------------------------------ helpers


# ---------------------------------------------------------------- pure parts (unit-tested)
def separator(kind: str | None) -> str | None:
    """Where an output of the thought prompt `kind` is split; None for the direct baseline."""
    return None if kind is None else THOUGHT_PROMPTS[kind][1]


def user_turn(instruction: str, kind: str | None) -> str:
    """The user turn: the thought prompt of `kind` followed by the instruction (None: as is)."""
    return instruction if kind is None else THOUGHT_PROMPTS[kind][0] + instruction


def split_output(text: str, sep: str | None) -> tuple[str, str] | None:
    """``(thought, response)`` of one output, or None for a parse error.

    With a separator, the text before its first occurrence is the thought (a leading
    "Here is my thought process:" removed) and the rest the response. Without one (the direct
    baseline) the whole output is the response. An empty response is a parse error either way.
    """
    if sep is None:
        response = text.strip()
        return ("", response) if response else None
    parts = split_thought(text, sep)
    if parts is None:
        return None
    thought, response = parts
    return thought.removeprefix(THOUGHT_HEADER).strip(), response


def thought_format_demo(kind: str, response: str, justification: str) -> str:
    """A warm-start target in the layout of thought prompt `kind` (not in the paper).

    The thought is the seed response as a draft and its seed justification as the draft's
    evaluation; the response follows the separator.
    """
    thought = f"Draft: {response.strip()}\nEvaluation: {justification.strip()}"
    if kind == "generic":
        return f"{THOUGHT_HEADER}\n{thought}\n\n{separator(kind)}\n{response.strip()}"
    return f"{thought}\n{separator(kind)}\n{response.strip()}"


def select_pair(
    scores: list[float | None],
    lengths: list[int | None],
    parse_errors: list[bool],
    rho: float,
) -> tuple[tuple[int, int] | None, str]:
    """TPO's ``(chosen, rejected)`` among one instruction's K outputs, and how it was made.

    Candidates are the outputs that parsed and got a judge score. chosen = argmax of the
    length-controlled score s = std(score) - rho * std(length) over the candidates; rejected =
    the first output with a parse error if there is one, else argmin s. Returns
    ``(pair, "parse_error" | "judged")``, or ``(None, reason)`` with reason
    ``no_scored_output`` (nothing to choose), ``too_few_scored`` (one candidate and no parse
    error) or ``tied_scores`` (all candidates scored the same: no preference but length).
    """
    candidates = [
        i
        for i, (s, e) in enumerate(zip(scores, parse_errors, strict=True))
        if not e and s is not None
    ]
    errors = [i for i, e in enumerate(parse_errors) if e]
    if not candidates:
        return None, "no_scored_output"
    adjusted = length_controlled_scores(
        [scores[i] for i in candidates], [lengths[i] for i in candidates], rho
    )
    order = sorted(range(len(candidates)), key=lambda k: (-adjusted[k], candidates[k]))
    chosen = candidates[order[0]]
    if errors:
        return (chosen, errors[0]), "parse_error"
    if len(candidates) < 2:
        return None, "too_few_scored"
    if len({scores[i] for i in candidates}) == 1:
        return None, "tied_scores"
    worst = min(range(len(candidates)), key=lambda k: (adjusted[k], candidates[k]))
    if adjusted[worst] == adjusted[order[0]]:
        return None, "tied_scores"
    return (chosen, candidates[worst]), "judged"
