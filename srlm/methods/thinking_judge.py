"""A thinking judge: EvalPlanner (Saha et al. 2025, arXiv 2501.18099) trained on
Self-Taught-Evaluator data (Wang et al. 2024, arXiv 2408.02666).

The model is trained as a pairwise judge that first writes an evaluation plan for the
question, then carries the plan out on both answers, then gives a verdict. Its training data
is made by the model itself, with a label known by construction. One iteration with M_t:

1. ``triples``     For each instruction x of this iteration's fresh slice of
                   ``data.seed_instructions``: y_w = M_t's answer to x. Then the "similar but
                   different" prompt (STE) shows x and y_w and asks for a modified instruction x'
                   that is close to x but asks for something else, and a high-quality answer to
                   x'. That answer becomes y_l for x: good, but for the wrong question, so y_w
                   is the better answer to x. The output must have the sections
                   ``[User Question Modified]`` and ``[The start of Assistant's answer to the
                   modified instruction]`` ... ``[The end of ...]``; x' and y_l are read between
                   the tags. An output without them is counted and the instruction dropped.
                   With ``method.triples`` (a file of ``{"instruction", "chosen", "rejected"}``
                   rows) nothing is generated: iteration t takes the file's next
                   ``instructions_per_iteration[t-1]`` rows, in file order, as its triples.
2. ``plans``       |P| evaluation plans per instruction, written from the instruction ALONE:
                   the plan prompt never sees y_w or y_l (a plan that sees the answers becomes
                   the evaluation itself). Read between ``[Start of Evaluation Plan]`` and
                   ``[End of Evaluation Plan]``.
3. ``executions``  For each plan, E executions, E/2 in each response order: order ``AB`` shows
                   y_w as Assistant A (correct verdict ``[[A]]``), order ``BA`` shows y_w as B
                   (correct ``[[B]]``). The execution prompt holds the question, both answers
                   and the plan, and asks for a verdict ``[[A]]`` or ``[[B]]``. Each execution is
                   kept raw, with its order, its parsed verdict (``parse_verdict`` under
                   ``reward.verdict_rule``: both tokens on the verdict line, none, or an
                   execution cut at max_tokens -> unparseable) and whether it is correct: the
                   reward source (``reward=verdict_label``) checks the verdict against the
                   order's label.
4. ``pairs``       For each plan and each order: every correct execution paired with every
                   incorrect one (wrong, tie or unparseable). Instructions without any correct
                   execution are dropped.
5. ``train``       DPO from M_t with M_t as the reference gives M_{t+1} (srlm.runner).

**The training sequence.** Plan and execution are sampled by two prompts, but the judge is
trained to write them in one pass. Prompt: the single MT-Bench-style pairwise prompt
(:func:`judge_messages`: question, Assistant A's answer, Assistant B's answer, in the pair's
order; no plan). Target (:func:`assemble_judgement`)::

    [Start of Evaluation Plan]
    <the plan, as extracted between its tags>
    [End of Evaluation Plan]
    [Start of Plan Execution]
    <the execution's text, verbatim>
    [End of Plan Execution]
    [Final Verdict]
    [[X]]                      <- the execution's parsed verdict (tie: [[C]])

An execution whose verdict could not be read gets no ``[Final Verdict]`` section: the rejected
sequence says exactly what that execution said. Chosen and rejected of one pair share the
prompt and the plan, so DPO compares only executions and verdicts. The verdict of a single-pass
output is read after its last ``[Final Verdict]`` (the whole text when there is none), so a
plan that quotes "[[A]]" does not decide it (:func:`parse_judge_output`).

**SFT then DPO (EvalPlanner's schedule).** With ``method.sft_warm_start`` the paper's M1^SFT is
made before the first DPO: supervised training from M_0 on one random correct judgement per
instruction of iteration 1. Those judgements come from iteration 1's rollout, so the method
declares ``warm_start_from = "first_rollout"``: the runner first runs the seed model's evaluation
(iteration 0) and iteration 1's rollout stages on M_0, then the warm start, then iteration 1's DPO from
M1^SFT on the pairs M_0 sampled (M1^DPO, reference M1^SFT), then iteration 2 samples fresh
instructions from M1^DPO (M2^DPO), as in the paper.

**Evaluation** (``evaluates``): labelled pairs (``eval.pairs``: prompt, chosen, rejected, as
RewardBench; the shipped srlm/data/eval_pairs.jsonl by default), the same at every iteration so
the numbers compare. Each pair is judged in both orders with the single-pass prompt at
temperature 0; reported: accuracy in each order, position-consistent
accuracy (correct in both orders; the EvalPlanner metric), flip rate (the preferred answer
changes when the order is swapped) and the parse failure rate (:func:`judge_metrics`). Pairs
with RewardBench's ``subset`` also get its per-subset and section scores (Chat, Chat Hard,
Safety, Reasoning and their mean: what EvalPlanner's Table 1 reports; for RewardBench itself set
``eval.pairs`` to its rows and ``eval.max_pairs=null``).

**Fixed triples (the paper's data).** EvalPlanner does not make triples with each M_t: it trains
on 17,588 WildChat triples reused from STE and 4,141 MATH triples (a correct vs an incorrect
solution sampled from Mixtral 8x22B Instruct), about 22K; iteration 1 takes 5K of them (2.5K of
each), iteration 2 fresh ones. ``method.triples`` reads such a file; scripts/math_triples.py makes
the MATH kind from sampled solutions and gold answers. The file is split in file order, not
shuffled, so that its order decides each iteration's mix (put 2.5K + 2.5K first for the paper's
iteration 1). A file shorter than the schedule is refused before any model loads; rows past it
are not used. Without ``method.triples``, M_t makes the triples every iteration as above.

Not reproduced: the paper's checkpoint selection on validation items.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from itertools import product

from srlm.config import Config, SamplingConfig, ThinkingJudgeConfig
from srlm.core.stats import mean
from srlm.data import DataError, load_rows
from srlm.errors import ConfigError, SetupError
from srlm.eval.data import load_eval_set
from srlm.eval.metrics import judge_pair_metrics, pair_credit, rewardbench_scores
from srlm.judging import (
    PLAN_END,
    PLAN_START,
    assemble_judgement,
    judge_messages,
    pair_text,
    parse_judge_output,
)
from srlm.methods.base import EngineFn, Method, Needs, group_by, register_method
from srlm.rewards.base import Item, get_reward
from srlm.rollout.base import chat_prompt, format_prompt
from srlm.training.data import Example, Group

# ---------------------------------------------------------------- prompts and formats
MODIFIED_Q = "[User Question Modified]"
MODIFIED_START = "[The start of Assistant's answer to the modified instruction]"
MODIFIED_END = "[The end of Assistant's answer to the modified instruction]"
ORDERS = ("AB", "BA")  # AB: y_w shown as Assistant A; BA: y_w shown as Assistant B
# The fields of a fixed triple (method.triples): the instruction, the better and the worse answer.
TRIPLE_FIELDS = ["instruction", "chosen", "rejected"]

# STE's "similar but different" instruction prompt, in srlm's words; the output sections are
# the paper's and are parsed strictly.
SIMILAR_BUT_DIFFERENT_TEMPLATE = f"""Below are a user's question to an AI assistant and the assistant's answer.

[User Question]
{{instruction}}

[The start of Assistant's Answer]
{{response}}
[The end of Assistant's Answer]

First write a modified question that is closely related to the user's question but not the same: it asks for something different, so that an answer to it would not answer the original question well. Then write a high-quality answer to the modified question. Follow this format exactly:
{MODIFIED_Q}
<the modified question>

{MODIFIED_START}
<a high-quality answer to the modified question>
{MODIFIED_END}"""

# EvalPlanner's plan prompt (Fig. 3): the instruction only, never the answers.
PLAN_TEMPLATE = f"""We need to evaluate how well an AI assistant answers the user question below. Do not answer the question yourself and do not judge any answer. Write an evaluation plan instead: what a good answer to this particular question must contain, the criteria to check, and how to check each one. Where it helps, include a short step-by-step reference answer to compare against.

[User Question]
{{instruction}}

Write the plan between {PLAN_START} and {PLAN_END}."""

# EvalPlanner's execution prompt (Fig. 4): question, both answers and the plan.
EXECUTION_SYSTEM = (
    "Please act as an impartial judge and evaluate the quality of the responses provided by two "
    "AI assistants to the user question displayed below. You are also given an evaluation plan. "
    "Follow the plan step by step and carry out each step on both responses; do not copy the "
    "plan, apply it. Avoid any position bias: the order in which the responses are presented "
    "must not influence your decision. Do not let the length of the responses or the names of "
    "the assistants influence you. After the evaluation, output your final verdict strictly as "
    '"[[A]]" if assistant A is better or "[[B]]" if assistant B is better.'
)

# Closes the execution prompt's user turn: small models follow the last line far more than the
# system turn (the embedded model's verdict rate went from 0 of 8 to 4 of 32 with it).
EXECUTION_REMINDER = (
    "\n\nNow follow the plan step by step on both answers, then end with your "
    "verdict: [[A]] or [[B]]."
)


# Worked examples for the three data-generation prompts (method.generation_shots; the papers'
# prompts are zero-shot). A small seed model writes none of the formats without them: the
# embedded 135M model gave 0 of 32 parseable triples and 0 of 64 verdicts zero-shot. They are
# never put into the judge's own (training and evaluation) prompt.
SHOT_TRIPLES = [
    {
        "instruction": "What is a good name for a pet goldfish?",
        "response": 'How about "Bubbles"? It is playful and suits a fish that lives in water.',
        "modified": "What is a good name for a pet parrot?",
        "answer": 'How about "Kiwi"? It is short and bright, and a parrot can learn to say it.',
    },
    {
        "instruction": "How many legs does a spider have?",
        "response": "A spider has eight legs.",
        "modified": "How many legs does an insect have?",
        "answer": "An insect has six legs, in three pairs attached to its thorax.",
    },
]
SHOT_JUDGEMENTS = [
    {
        "instruction": "What is the capital of Australia?",
        "answer_a": "The capital of Australia is Canberra.",
        "answer_b": "Sydney is the largest city in Australia and is famous for its opera house.",
        "plan": "1. The answer must name one city as the capital.\n2. The capital is Canberra, "
        "not Sydney or Melbourne.\n3. Prefer a direct answer.",
        "execution": "Assistant A names Canberra, which is correct. Assistant B describes Sydney "
        "but names no capital.\nVerdict: [[A]]",
    },
    {
        "instruction": "Give me a word that rhymes with 'cat'.",
        "answer_a": "Here is a word that rhymes with 'dog': log.",
        "answer_b": "'Hat' rhymes with 'cat'.",
        "plan": "1. The answer must give a word.\n2. The word must rhyme with 'cat'.",
        "execution": "Both assistants give a word. 'log' rhymes with 'dog', not with 'cat'; 'hat' "
        "rhymes with 'cat'.\nVerdict: [[B]]",
    },
]


def _with_shots(shots: list[tuple[str, str]], user: str) -> list[dict]:
    """Worked examples as earlier user/assistant turns, then the real user turn."""
    messages = []
    for u, a in shots:
        messages += [{"role": "user", "content": u}, {"role": "assistant", "content": a}]
    return messages + [{"role": "user", "content": user}]


def triple_messages(instruction: str, response: str, shots: int = 0) -> list[dict]:
    """The "similar but different" prompt; the assistant turn is then opened with its first tag."""

    def user(x: str, y: str) -> str:
        return SIMILAR_BUT_DIFFERENT_TEMPLATE.format(instruction=x.strip(), response=y.strip())

    demos = [
        (
            user(d["instruction"], d["response"]),
            f"{MODIFIED_Q}\n{d['modified']}\n\n{MODIFIED_START}\n{d['answer']}\n{MODIFIED_END}",
        )
        for d in SHOT_TRIPLES[:shots]
    ]
    return _with_shots(demos, user(instruction, response))


def plan_messages(instruction: str, shots: int = 0) -> list[dict]:
    """The plan prompt: the instruction alone, never the answers."""
    demos = [
        (
            PLAN_TEMPLATE.format(instruction=d["instruction"]),
            f"{PLAN_START}\n{d['plan']}\n{PLAN_END}",
        )
        for d in SHOT_JUDGEMENTS[:shots]
    ]
    return _with_shots(demos, PLAN_TEMPLATE.format(instruction=instruction.strip()))


def execution_messages(
    instruction: str, answer_a: str, answer_b: str, plan: str, shots: int = 0
) -> list[dict]:
    """The execution prompt: question, both answers (in the pair's order) and the plan."""

    def user(x: str, a: str, b: str, p: str) -> str:
        return (
            pair_text(x, a, b) + f"\n\n{PLAN_START}\n{p.strip()}\n{PLAN_END}" + EXECUTION_REMINDER
        )

    demos = [
        (user(d["instruction"], d["answer_a"], d["answer_b"], d["plan"]), d["execution"])
        for d in SHOT_JUDGEMENTS[:shots]
    ]
    return [
        {"role": "system", "content": EXECUTION_SYSTEM},
        *_with_shots(demos, user(instruction, answer_a, answer_b, plan)),
    ]


def _chat(tokenizer, messages: list[dict], assistant_prefix: str = "") -> str:
    return format_prompt(tokenizer, messages, assistant_prefix)


# ---------------------------------------------------------------- pure parts (unit-tested)
def parse_triple(text: str) -> tuple[str, str] | None:
    """``(modified instruction, answer to it)`` from a "similar but different" output, or None.

    Strict, as STE parses it: the modified instruction lies between ``[User Question
    Modified]`` and the answer's start tag, the answer between its start and end tags, in
    that order; a missing tag or an empty section gives None.
    """
    q = text.find(MODIFIED_Q)
    s = text.find(MODIFIED_START, q + len(MODIFIED_Q)) if q >= 0 else -1
    e = text.find(MODIFIED_END, s + len(MODIFIED_START)) if s >= 0 else -1
    if e < 0:
        return None
    question = text[q + len(MODIFIED_Q) : s].strip()
    answer = text[s + len(MODIFIED_START) : e].strip()
    if not question or not answer:
        return None
    return question, answer


def extract_plan(text: str) -> tuple[str | None, bool]:
    """``(plan, closed)``: the text between the plan tags, and whether the end tag was there.

    The plan prompt's output starts with ``[Start of Evaluation Plan]`` (srlm writes it as the
    start of the assistant turn). Without the end tag (the model stopped or ran out of tokens)
    the plan runs to the end of the text and ``closed`` is False; no start tag, or an empty
    plan, gives ``(None, False)``.
    """
    start = text.find(PLAN_START)
    if start < 0:
        return None, False
    body = text[start + len(PLAN_START) :]
    end = body.find(PLAN_END)
    closed = end >= 0
    plan = (body[:end] if closed else body).strip()
    return (plan, closed) if plan else (None, False)


def arrange(chosen: str, rejected: str, order: str) -> tuple[str, str]:
    """``(answer A, answer B)`` of a triple shown in ``order`` ("AB": chosen first)."""
    if order == "AB":
        return chosen, rejected
    if order == "BA":
        return rejected, chosen
    raise ValueError(f"order must be AB or BA, not {order!r}")


def correct_verdict(order: str) -> str:
    """The verdict that names the chosen answer when the pair is shown in ``order``."""
    return {"AB": "A", "BA": "B"}[order]


def is_correct(verdict: str | None, order: str) -> bool:
    """A verdict is correct when it names the chosen answer; tie and unparseable never are."""
    return verdict is not None and verdict == correct_verdict(order)


def pair_executions(executions: list[dict]) -> list[tuple[dict, dict]]:
    """EvalPlanner's pairs: within each (plan, order), every correct x every incorrect execution.

    Rows need ``plan_id``, ``order`` and ``correct``; rows of several triples must not be
    mixed (group by triple first). Returns ``(chosen, rejected)`` rows in a stable order.
    """
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for e in executions:
        groups[(e["plan_id"], e["order"])].append(e)
    out = []
    for key in sorted(groups):
        rows = groups[key]
        good = [e for e in rows if e["correct"]]
        bad = [e for e in rows if not e["correct"]]
        out += list(product(good, bad))
    return out


def preferred(verdict: str | None, order: str) -> str | None:
    """Which answer a verdict prefers: "chosen", "rejected", "tie", or None if unparseable."""
    if verdict is None:
        return None
    if verdict == "tie":
        return "tie"
    return "chosen" if verdict == correct_verdict(order) else "rejected"


def judge_metrics(rows: list[dict]) -> dict:
    """Judge accuracy over triples judged in both orders (srlm.eval.metrics.judge_pair_metrics,
    the measure of every judge on labelled pairs, under this method's historical keys).

    ``rows`` has one row per (triple_id, order) with its ``verdict`` (None: unparseable).
    - ``acc_first`` / ``acc_second``: accuracy with the chosen answer shown first (AB) /
      second (BA); unparseable counts as wrong.
    - ``pos_consistent_acc``: share of triples judged correctly in BOTH orders.
    - ``flip_rate``: among triples with a readable verdict in both orders, the share whose
      preferred answer changes when the order is swapped (e.g. "[[A]]" both times).
    - ``parse_fail_rate``: share of all judgements without a readable verdict.
    - with a ``subset`` on the rows: RewardBench's scores (srlm.eval.metrics.rewardbench_scores).
    """
    by_triple: dict[str, dict[str, str | None]] = defaultdict(dict)
    subset: dict[str, str | None] = {}
    for r in rows:
        by_triple[r["triple_id"]][r["order"]] = r["verdict"]
        subset[r["triple_id"]] = r.get("subset")
    both = {tid: v for tid, v in by_triple.items() if set(v) == set(ORDERS)}
    pairs = [{"ab": v["AB"], "ba": v["BA"]} for v in both.values()]
    m = judge_pair_metrics(pairs)
    rewardbench = rewardbench_scores(
        (subset[tid], pair_credit(v["AB"], v["BA"])) for tid, v in both.items()
    )
    return {
        "triples": m["n"],
        "acc_first": m["accuracy_ab"],
        "acc_second": m["accuracy_ba"],
        "pos_consistent_acc": m["position_consistent_accuracy"],
        "flip_rate": m["order_flip_rate"],
        "parse_fail_rate": m["parse_failure_rate"],
    } | rewardbench


def iteration_slices(total: int, counts: list[int], iterations: int) -> list[tuple[int, int]]:
    """``[start, end)`` of each iteration's fresh slice; ``counts[t-1]`` (last value repeats)."""
    out, start = [], 0
    for t in range(1, iterations + 1):
        n = counts[min(t, len(counts)) - 1]
        out.append((start, min(start + n, total)))
        start += n
    return out


def load_triples(source: str, field_map: dict[str, str] | None = None) -> list[dict]:
    """The rows of ``method.triples``, each checked as it is read (srlm.data.load_rows): a bad
    row is a DataError naming the key, the file and the line."""
    try:
        return load_rows(source, required=TRIPLE_FIELDS, field_map=field_map)
    except DataError as e:
        raise DataError(f"method.triples: {e}") from None


def file_triples(rows: list[dict], first_row: int, prefix: str) -> list[dict]:
    """The triples stage's rows for ``rows`` of the triples file, in the shape of generated ones.

    ``rows[0]`` is row ``first_row`` (1-based, blank lines not counted) of the file, kept as
    ``file_row`` so a row can be traced back. Nothing was generated, so the fields that describe
    a generation (raw output, token counts, finish reason) are None.
    """
    return [
        {
            "id": f"{prefix}-{i}",
            "instruction": r["instruction"],
            "ok": True,
            "chosen": r["chosen"],
            "modified_instruction": None,
            "rejected": r["rejected"],
            "raw": None,
            "chosen_tokens": None,
            "raw_tokens": None,
            "finish_reason": None,
            "file_row": first_row + i,
        }
        for i, r in enumerate(rows)
    ]


# ---------------------------------------------------------------- the method
@register_method("thinking_judge", schema=ThinkingJudgeConfig)
class ThinkingJudge(Method):
    rollout_stages = ("triples", "plans", "executions", "pairs")
    # It trains a judge, not answers: measured on labelled pairs by its own evaluate().
    eval_win_rates = False
    eval_judge_accuracy = False
    # The verdicts it trains on are checked by rule against a label known by construction (y_w
    # answers the instruction, y_l a modified one): a verifiable reward, in this module.
    # EvalPlanner's M1^SFT trains on judgements M_0 made in iteration 1's rollout.
    warm_start_from = "first_rollout"
    needs = Needs(
        rewards=("verdict",),
        why="the thinking judge trains on verdicts checked against a label known by "
        "construction (which answer fits the instruction), not on judge scores",
    )
    evaluates = True

    def __init__(self, config: Config, run):
        super().__init__(config, run)
        self.m = config.method
        # Checks each execution's verdict against the pair's label (reward=verdict_label).
        self.reward = get_reward(config)
        # The evaluation reads its verdicts under the same rule as the reward source.
        self.verdict_rule = getattr(config.reward, "verdict_rule", "final")
        d = config.data
        counts = list(self.m.instructions_per_iteration)
        need = sum(counts[min(t, len(counts)) - 1] for t in range(1, self.m.iterations + 1))
        # Fixed triples (method.triples) replace the seed instructions: the file's rows are the
        # triples, so there is nothing to answer and nothing to shuffle.
        self.fixed_triples = None
        if self.m.triples is not None:
            self.fixed_triples = pool = load_triples(self.m.triples, d.field_map)
            what, source = "triples", f"method.triples={self.m.triples!r}"
            remedy = "add rows to the file"
        else:
            seed_rows = load_rows(
                d.seed_instructions, required=["instruction"], field_map=d.field_map, limit=d.limit
            )
            # One fixed shuffle of the seed instructions; iteration t takes the next fresh slice.
            self.instructions = pool = [str(r["instruction"]) for r in seed_rows]
            random.Random(self.m.data_seed).shuffle(self.instructions)
            what, source = (
                "distinct instructions",
                f"data.seed_instructions={d.seed_instructions!r}",
            )
            remedy = "point data.seed_instructions at a larger JSONL file"
        if need > len(pool):
            raise ConfigError(
                f"method.instructions_per_iteration={counts} over method.iterations="
                f"{self.m.iterations} needs {need} {what} (a fresh slice each iteration), but "
                f"{source} has {len(pool)}; lower the counts or {remedy}"
            )
        self.slices = iteration_slices(len(pool), counts, self.m.iterations)
        e = config.eval
        self.held_out = [
            {
                "id": f"eval-{p.id}",
                "instruction": p.prompt,
                "chosen": p.chosen,
                "rejected": p.rejected,
                "subset": p.subset,
            }
            for p in load_eval_set(e.pairs, "pairs", e.pair_fields or None, e.max_pairs)
        ]

    # ------------------------------------------------------------ stages
    def run_stage(self, stage: str, t: int, engine: EngineFn) -> dict:
        return getattr(self, f"_stage_{stage}")(t, engine)

    def _stage_triples(self, t: int, engine: EngineFn) -> dict:
        start, end = self.slices[t - 1]
        if self.fixed_triples is not None:
            rows = file_triples(self.fixed_triples[start:end], start + 1, prefix=f"{t}")
            self.run.write_rows(t, "triples", rows)
            return {
                "prompts": len(rows),
                "triples": len(rows),
                "triples_unparseable": 0,
                "triples_file": self.m.triples,
                "triples_file_rows": [start + 1, end],
            }
        rows = self._make_triples(engine(), self.instructions[start:end], prefix=f"{t}")
        self.run.write_rows(t, "triples", rows)
        kept = [r for r in rows if r["ok"]]
        return {
            "prompts": len(rows),
            "triples": len(kept),
            "triples_unparseable": len(rows) - len(kept),
            "response_tokens": mean(r["chosen_tokens"] for r in rows),
        }

    def _make_triples(self, eng, instructions: list[str], prefix: str) -> list[dict]:
        """y_w = M_t's answer to x; the "similar but different" output gives x' and y_l."""
        m = self.m
        answers = eng.generate(
            [chat_prompt(eng.tokenizer, x) for x in instructions],
            m.response_sampling,
            n=1,
            desc="answer instructions",
        )
        prompts = [
            _chat(
                eng.tokenizer,
                triple_messages(x, c.text, m.generation_shots),
                assistant_prefix=MODIFIED_Q + "\n",
            )
            for x, [c] in zip(instructions, answers, strict=True)
        ]
        outs = eng.generate(prompts, m.triple_sampling, n=1, desc="similar but different")
        rows = []
        for i, (x, [a], [g]) in enumerate(zip(instructions, answers, outs, strict=True)):
            raw = MODIFIED_Q + "\n" + g.text
            parsed = parse_triple(raw)
            rows.append(
                {
                    "id": f"{prefix}-{i}",
                    "instruction": x,
                    "ok": parsed is not None,
                    "chosen": a.text.strip(),
                    "modified_instruction": parsed[0] if parsed else None,
                    "rejected": parsed[1] if parsed else None,
                    "raw": raw,
                    "chosen_tokens": a.num_tokens,
                    "raw_tokens": g.num_tokens,
                    "finish_reason": g.finish_reason,
                }
            )
        return rows

    def _stage_plans(self, t: int, engine: EngineFn) -> dict:
        eng = engine()
        triples = [r for r in self.run.read_rows(t, "triples") if r["ok"]]
        prompts = [
            _chat(
                eng.tokenizer,
                plan_messages(r["instruction"], self.m.generation_shots),
                assistant_prefix=PLAN_START + "\n",
            )
            for r in triples
        ]
        outs = eng.generate(
            prompts, self.m.plan_sampling, n=self.m.plans_per_instruction, desc="plans"
        )
        rows = []
        for r, cs in zip(triples, outs, strict=True):
            for k, c in enumerate(cs):
                raw = PLAN_START + "\n" + c.text
                plan, closed = extract_plan(raw)
                rows.append(
                    {
                        "triple_id": r["id"],
                        "plan_id": k,
                        "plan": plan,
                        "closed": closed,
                        "raw": raw,
                        "tokens": c.num_tokens,
                        "finish_reason": c.finish_reason,
                    }
                )
        self.run.write_rows(t, "plans", rows)
        return {
            "plans": sum(r["plan"] is not None for r in rows),
            "plans_empty": sum(r["plan"] is None for r in rows),
            "plans_unclosed": sum(r["plan"] is not None and not r["closed"] for r in rows),
            "plan_tokens": mean(r["tokens"] for r in rows),
        }

    def _stage_executions(self, t: int, engine: EngineFn) -> dict:
        eng = engine()
        triples = {r["id"]: r for r in self.run.read_rows(t, "triples") if r["ok"]}
        plans = [p for p in self.run.read_rows(t, "plans") if p["plan"] is not None]
        per_order = self.m.executions_per_plan // 2
        jobs = [(p, o) for p in plans for o in ORDERS]
        prompts = []
        for p, order in jobs:
            tr = triples[p["triple_id"]]
            a, b = arrange(tr["chosen"], tr["rejected"], order)
            prompts.append(
                _chat(
                    eng.tokenizer,
                    execution_messages(tr["instruction"], a, b, p["plan"], self.m.generation_shots),
                )
            )
        outs = eng.generate(prompts, self.m.execution_sampling, n=per_order, desc="execute plans")
        # Each (plan, order)'s executions, checked against the label of that order.
        checked = self.reward.score(
            [
                [
                    Item(
                        triples[p["triple_id"]]["instruction"],
                        c.text,
                        correct_verdict(o),
                        finish_reason=c.finish_reason,
                    )
                    for c in cs
                ]
                for (p, o), cs in zip(jobs, outs, strict=True)
            ],
            engine,
        )
        rows = []
        for (p, order), cs, scored in zip(jobs, outs, checked.scored, strict=True):
            for j, (c, s) in enumerate(zip(cs, scored, strict=True)):
                rows.append(
                    {
                        "triple_id": p["triple_id"],
                        "plan_id": p["plan_id"],
                        "order": order,
                        "sample": j,
                        "raw": c.text,
                        "verdict": s.record["verdict"],
                        "correct": s.score == 1.0,
                        "tokens": c.num_tokens,
                        "finish_reason": c.finish_reason,
                    }
                )
        self.run.write_rows(t, "executions", rows)
        fails = sum(r["verdict"] is None for r in rows)
        return {
            "samples": len(rows),
            "parse_failures": fails,
            "parse_failure_rate": fails / max(len(rows), 1),
            "execution_accuracy": mean(r["correct"] for r in rows),
            **{
                f"execution_accuracy_{o}": mean(r["correct"] for r in rows if r["order"] == o)
                for o in ORDERS
            },
            "verdicts": dict(Counter(str(r["verdict"]) for r in rows)),
        }

    def _stage_pairs(self, t: int, engine: EngineFn) -> dict:
        triples = {r["id"]: r for r in self.run.read_rows(t, "triples") if r["ok"]}
        plans = {(p["triple_id"], p["plan_id"]): p for p in self.run.read_rows(t, "plans")}
        by_triple = group_by(self.run.read_rows(t, "executions"), "triple_id")
        rng = random.Random(self.config.seed * 1000 + t)
        pairs, no_correct, all_correct = [], 0, 0
        for tid, execs in by_triple.items():
            if not any(e["correct"] for e in execs):
                no_correct += 1  # EvalPlanner drops the instruction
                continue
            all_correct += all(e["correct"] for e in execs)
            made = pair_executions(execs)
            cap = self.m.max_pairs_per_instruction
            if cap is not None and len(made) > cap:
                made = rng.sample(made, cap)
            tr = triples[tid]
            for c, r in made:
                plan = plans[(tid, c["plan_id"])]
                a, b = arrange(tr["chosen"], tr["rejected"], c["order"])
                pairs.append(
                    {
                        "triple_id": tid,
                        "plan_id": c["plan_id"],
                        "order": c["order"],
                        "instruction": tr["instruction"],
                        "answer_a": a,
                        "answer_b": b,
                        "chosen": assemble_judgement(plan["plan"], c["raw"], c["verdict"]),
                        "rejected": assemble_judgement(plan["plan"], r["raw"], r["verdict"]),
                        "chosen_sample": c["sample"],
                        "rejected_sample": r["sample"],
                        "chosen_verdict": c["verdict"],
                        "rejected_verdict": r["verdict"],
                        "chosen_tokens": plan["tokens"] + c["tokens"],
                        "rejected_tokens": plan["tokens"] + r["tokens"],
                    }
                )
        self.run.write_rows(t, "pairs", pairs)
        return {
            "pairs": len(pairs),
            "instructions_with_pairs": len({p["triple_id"] for p in pairs}),
            "dropped_no_correct": no_correct,
            "all_correct": all_correct,
            "pairs_by_order": {o: sum(p["order"] == o for p in pairs) for o in ORDERS},
            "chosen_tokens": mean(p["chosen_tokens"] for p in pairs),
            "rejected_tokens": mean(p["rejected_tokens"] for p in pairs),
        }

    # ------------------------------------------------------------ training data
    def training_examples(self, t: int, tokenizer) -> list[Example]:
        tokenizer = self.prompt_tokenizer(tokenizer)
        return [
            Example(
                _chat(tokenizer, judge_messages(p["instruction"], p["answer_a"], p["answer_b"])),
                p["chosen"],
                p["rejected"],
            )
            for p in self.run.read_rows(t, "pairs")
        ]

    # optimizer=grpo: each (triple, order)'s executions are a group, rewarded 1 for the
    # correct verdict and 0 otherwise (a wrong, tied or unreadable one), trained as the
    # single-pass judgement each (plan, execution) is assembled into.
    trains_groups = True

    def training_groups(self, t: int, tokenizer) -> list[Group]:
        tokenizer = self.prompt_tokenizer(tokenizer)
        triples = {r["id"]: r for r in self.run.read_rows(t, "triples") if r["ok"]}
        plans = {(p["triple_id"], p["plan_id"]): p for p in self.run.read_rows(t, "plans")}
        by_prompt: dict = {}
        for e in self.run.read_rows(t, "executions"):
            by_prompt.setdefault((e["triple_id"], e["order"]), []).append(e)
        groups = []
        for (tid, order), execs in by_prompt.items():
            tr = triples[tid]
            groups.append(
                Group(
                    self._judge_prompt(tokenizer, tr, order),
                    [
                        assemble_judgement(
                            plans[(tid, e["plan_id"])]["plan"], e["raw"], e["verdict"]
                        )
                        for e in execs
                    ],
                    [float(e["correct"]) for e in execs],
                )
            )
        return groups

    # ------------------------------------------------------------ online regimes
    # A J1-style judge (Whitehouse et al. 2025, "J1: Incentivizing Thinking in LLM-as-a-Judge
    # via Reinforcement Learning"): each step the current judge writes whole single-pass
    # judgements (plan, execution, verdict) of fixed triples, in both orders, and is rewarded
    # for the correct verdict; there is no separate plan or execution sampling.
    trains_online = True

    @classmethod
    def check_config(cls, config: Config) -> None:
        s = config.trainer.sync_every
        if not s:
            return
        if config.method.triples is None:
            raise ConfigError(
                f"method.triples=null with trainer.sync_every={s}: the online judge trains on "
                "fixed triples (a file of instruction, chosen, rejected rows); making triples "
                "from the model's answers is an iterative rollout stage; set method.triples or "
                "trainer.sync_every=0"
            )
        if config.method.sft_warm_start:
            raise ConfigError(
                f"method.sft_warm_start=true with trainer.sync_every={s}: EvalPlanner's SFT "
                "trains on judgements of the first iterative rollout, which the online regime "
                "does not run; set method.sft_warm_start=false"
            )

    def online_prompts(self) -> list[dict]:
        # Every triple the iterations would take, each in both orders.
        end = self.slices[-1][1]
        return [
            {"id": f"{tr['id']}-{order}", "triple": tr, "order": order}
            for tr in file_triples(self.fixed_triples[:end], 1, prefix="online")
            for order in ORDERS
        ]

    def online_prompt(self, tokenizer, row: dict) -> str:
        return self._judge_prompt(self.prompt_tokenizer(tokenizer), row["triple"], row["order"])

    def online_sampling(self) -> tuple[SamplingConfig, int]:
        return self.m.execution_sampling, self.m.executions_per_plan

    def online_examples(
        self, t: int, questions: list[dict], outs, engine: EngineFn, tokenizer, grouped: bool
    ) -> tuple[list, dict]:
        tokenizer = self.prompt_tokenizer(tokenizer)
        groups, pairs, verdicts = [], [], []
        for q, cs in zip(questions, outs, strict=True):
            prompt = self._judge_prompt(tokenizer, q["triple"], q["order"])
            rows = [
                {
                    "raw": c.text.strip(),
                    "verdict": (
                        v := parse_judge_output(c.text, self.verdict_rule, c.finish_reason)
                    ),
                    "correct": is_correct(v, q["order"]),
                }
                for c in cs
            ]
            verdicts += [r["verdict"] for r in rows]
            groups.append(
                Group(prompt, [r["raw"] for r in rows], [float(r["correct"]) for r in rows])
            )
            good = [r for r in rows if r["correct"]]
            bad = [r for r in rows if not r["correct"]]
            # EvalPlanner's rule within one prompt: correct against incorrect, one pair per
            # correct judgement (each with a different incorrect one while they last).
            pairs += [Example(prompt, c["raw"], r["raw"]) for c, r in zip(good, bad, strict=False)]
        correct = [v for g in groups for v in g.rewards]
        stats = {
            "sample_accuracy": mean(correct),
            "reward_judgements": len(verdicts),
            "reward_parse_failure_rate": mean(v is None for v in verdicts),
            "reward_tie_rate": mean(v == "tie" for v in verdicts),
        }
        if grouped:
            return groups, stats
        return pairs, stats | {"pairs": len(pairs)}

    def _judge_prompt(self, tokenizer, triple: dict, order: str) -> str:
        a, b = arrange(triple["chosen"], triple["rejected"], order)
        return _chat(tokenizer, judge_messages(triple["instruction"], a, b))

    def warm_start_examples(self, tokenizer) -> list[Example]:
        """M1^SFT's data: one random correct judgement per instruction of iteration 1.

        ``warm_start_from = "first_rollout"``: the runner has evaluated M_0 and run iteration 1's
        rollout stages on it before calling this, so those judgements exist.
        """
        tokenizer = self.prompt_tokenizer(tokenizer)
        triples = {r["id"]: r for r in self.run.read_rows(1, "triples") if r["ok"]}
        plans = {(p["triple_id"], p["plan_id"]): p for p in self.run.read_rows(1, "plans")}
        rng = random.Random(self.config.seed)
        out = []
        for tid, execs in group_by(self.run.read_rows(1, "executions"), "triple_id").items():
            good = [e for e in execs if e["correct"]]
            if not good:
                continue
            e = rng.choice(good)
            tr = triples[tid]
            a, b = arrange(tr["chosen"], tr["rejected"], e["order"])
            out.append(
                Example(
                    _chat(tokenizer, judge_messages(tr["instruction"], a, b)),
                    assemble_judgement(plans[(tid, e["plan_id"])]["plan"], e["raw"], e["verdict"]),
                )
            )
        if not out:
            raise SetupError(
                "method.sft_warm_start=true: no execution of iteration 1 reached the correct "
                "verdict, so there is no judgement to fine-tune on; sample more "
                "(method.plans_per_instruction, method.executions_per_plan) or set "
                "method.sft_warm_start=false"
            )
        return out

    # ------------------------------------------------------------ evaluation
    def evaluate(self, t: int, engine: EngineFn) -> dict:
        eng = engine()
        triples = self.held_out
        jobs = [(tr, o) for tr in triples for o in ORDERS]
        prompts = [
            _chat(
                eng.tokenizer,
                judge_messages(tr["instruction"], *arrange(tr["chosen"], tr["rejected"], o)),
            )
            for tr, o in jobs
        ]
        greedy = SamplingConfig(temperature=0.0, top_p=1.0, max_tokens=self.m.eval_max_tokens)
        outs = eng.generate(prompts, greedy, n=1, desc="evaluate judge (T=0)")
        rows = []
        for (tr, order), [c] in zip(jobs, outs, strict=True):
            verdict = parse_judge_output(c.text, self.verdict_rule, c.finish_reason)
            rows.append(
                {
                    "triple_id": tr["id"],
                    "subset": tr["subset"],
                    "order": order,
                    "raw": c.text,
                    "verdict": verdict,
                    "correct": is_correct(verdict, order),
                    "tokens": c.num_tokens,
                    "finish_reason": c.finish_reason,
                }
            )
        self.run.write_rows(t, "eval", rows)
        return judge_metrics(rows) | {"eval_tokens": mean(r["tokens"] for r in rows)}

    # ------------------------------------------------------------ helpers
