"""Judge prompts and verdict formats, shared by the methods that train judges, the reward
sources that judge, and the evaluation that measures judges.

- the additive 5-point rubric of Self-Rewarding (pointwise, ``Score: N``): ``reward=self_judge``
  and ``judge_model``, Meta-Rewarding's judge and meta-judge, the warm start's EFT data (and
  its IFT data, data.seed_ift);
- the pairwise comparison prompt (``[[A]]``/``[[B]]``/``[[C]]``): ``reward=pairwise_judge``;
- the single-pass thinking-judge format (plan, execution, ``[Final Verdict]``): what
  ``method=thinking_judge`` trains and ``reward=thinking_judge`` runs.

The regexes that read the formats are in srlm/core/parsing.py (pure, unit-tested).
"""

from __future__ import annotations

from srlm.core.parsing import cut_off, last_unquoted, parse_verdict
from srlm.data import load_rows
from srlm.rollout.base import chat_prompt
from srlm.training.data import Example

# ---------------------------------------------------------------- pointwise: additive rubric
# Self-Rewarding's judge prompt (Yuan et al. 2024, Fig. 2), in srlm's own words. The additive
# rubric is what keeps small judges from answering 5 every time.
RUBRIC = """- Add 1 point if the response is relevant to the question and gives some related information, even if incomplete or partly off-topic.
- Add a 2nd point if it covers a substantial part of what was asked, without fully resolving it.
- Add a 3rd point if it answers the basic elements of the question usefully, even if it is not perfect.
- Add a 4th point if it is clearly written from an AI assistant's point of view, addresses the question directly and comprehensively, and is well organised.
- Add a 5th point if it is impeccably tailored to the question, shows expert knowledge, and is engaging and insightful, with no unnecessary content."""
JUDGE_TEMPLATE = (
    """Review the user's question and the response below, and score the response with this additive 5-point system. Start at 0 and add points:
"""
    + RUBRIC
    + """

User: {instruction}
<response>{response}</response>

After reviewing the question and the response:
- Justify your total score briefly, in up to 100 words.
- End with the score in the format: "Score: <total points>"
"""
)


def judge_prompt_text(instruction: str, response: str) -> str:
    return JUDGE_TEMPLATE.format(instruction=instruction.strip(), response=response.strip())


def judge_target(justification: str, score: int | float) -> str:
    """What a judgement looks like: the format the warm start teaches (EFT data)."""
    return f"{justification.strip()}\nScore: {score:g}"


# The fields of a seed judgement row (data.seed_judgements): a judged example of the rubric.
SEED_JUDGEMENT_FIELDS = ["instruction", "response", "justification", "score"]
# The fields of an instruction-following row (data.seed_ift): an instruction and its answer.
SEED_IFT_FIELDS = ["instruction", "response"]


def load_seed_ift(data) -> list[dict] | None:
    """The rows of ``data.seed_ift``, checked (srlm.data.load_rows), or None when it is unset."""
    if data.seed_ift is None:
        return None
    return load_rows(data.seed_ift, required=SEED_IFT_FIELDS, field_map=data.field_map)


def judge_warm_start_examples(
    tokenizer,
    seed_judgements: list[dict],
    ift_min_score: int,
    seed_ift: list[dict] | None = None,
) -> list[Example]:
    """Self-Rewarding's M0 -> M1 data, SFT on IFT + EFT seed data, for any method that judges
    itself.

    Every seed judgement is an evaluation-fine-tuning (EFT) example: the judge prompt, answered
    by the row's justification and ``Score: N``. The instruction-following (IFT) examples
    (instruction -> response) are the rows of ``seed_ift`` (data.seed_ift; the paper: 3,200
    Open Assistant first turns) when given; without them, srlm's stand-in: the seed judgements
    whose response scored at least ``ift_min_score``.
    """
    out = []
    for r in seed_judgements:
        eft_prompt = chat_prompt(tokenizer, judge_prompt_text(r["instruction"], r["response"]))
        out.append(Example(eft_prompt, judge_target(r["justification"], r["score"])))
        if seed_ift is None and int(r["score"]) >= ift_min_score:
            out.append(Example(chat_prompt(tokenizer, r["instruction"]), r["response"]))
    for r in seed_ift or ():
        out.append(Example(chat_prompt(tokenizer, r["instruction"]), r["response"]))
    return out


# ---------------------------------------------------------------- pairwise
PAIRWISE_SYSTEM = (
    "Please act as an impartial judge and compare the quality of the responses of two AI "
    "assistants to the user question below. Choose the one that follows the user's instructions "
    "and answers the question better: consider helpfulness, relevance, accuracy and level of "
    "detail. The order in which the responses are shown, their length and the assistants' names "
    "must not influence you. Explain your comparison briefly, then give your final verdict "
    'strictly as "[[A]]" if assistant A is better, "[[B]]" if assistant B is better, or '
    '"[[C]]" for a tie.'
)

PAIR_TEMPLATE = """[User Question]
{instruction}

[The Start of Assistant A's Answer]
{answer_a}
[The End of Assistant A's Answer]

[The Start of Assistant B's Answer]
{answer_b}
[The End of Assistant B's Answer]"""


def pair_text(instruction: str, answer_a: str, answer_b: str) -> str:
    return PAIR_TEMPLATE.format(
        instruction=instruction.strip(), answer_a=answer_a.strip(), answer_b=answer_b.strip()
    )


# ---------------------------------------------------------------- thinking judge (single pass)
PLAN_START, PLAN_END = "[Start of Evaluation Plan]", "[End of Evaluation Plan]"
EXEC_START, EXEC_END = "[Start of Plan Execution]", "[End of Plan Execution]"
FINAL_VERDICT = "[Final Verdict]"
VERDICT_TOKEN = {"A": "[[A]]", "B": "[[B]]", "tie": "[[C]]"}

# The single-pass thinking-judge prompt (EvalPlanner Fig. 5; MT-Bench pairwise): the training
# prompt and the evaluation prompt.
JUDGE_SYSTEM = (
    "Please act as an impartial judge and evaluate the quality of the responses provided by two "
    "AI assistants to the user question displayed below. Choose the assistant that follows the "
    "user's instructions and answers the user's question better. First write an evaluation plan "
    f"for this question between {PLAN_START} and {PLAN_END}. Then carry out the plan on both "
    f"responses between {EXEC_START} and {EXEC_END}. Finally write {FINAL_VERDICT} followed by "
    'your verdict strictly as "[[A]]" if assistant A is better or "[[B]]" if assistant B is '
    "better. Avoid any position bias: the order of the responses must not influence your "
    "decision. Do not let the length of the responses or the names of the assistants influence "
    "you. Be as objective as possible."
)


def judge_messages(instruction: str, answer_a: str, answer_b: str) -> list[dict]:
    """The single-pass thinking-judge prompt (training and evaluation); always zero-shot."""
    return [
        {"role": "system", "content": JUDGE_SYSTEM},
        {"role": "user", "content": pair_text(instruction, answer_a, answer_b)},
    ]


def parse_judge_output(
    text: str, rule: str = "final", finish_reason: str | None = None
) -> str | None:
    """Verdict of a single-pass judgement: read after its last ``[Final Verdict]``, if any.

    ``parse_verdict`` reads that section under ``rule`` (``final``: the last line there that
    holds a verdict token; ``strict``: STE's rule, both A and B -> None). Reading the final
    section keeps a plan that quotes the tokens from deciding the verdict; a ``[Final
    Verdict]`` inside a quoted answer block is not the judge's. Execution-stage outputs have
    no such section and are parsed whole. A judgement cut at max_tokens (``finish_reason``
    "length") has no verdict, even if the cut falls after one.
    """
    if cut_off(finish_reason):
        return None
    cut = last_unquoted(text, FINAL_VERDICT)
    return parse_verdict(text[cut + len(FINAL_VERDICT) :] if cut >= 0 else text, rule)


def assemble_judgement(plan: str, execution: str, verdict: str | None) -> str:
    """The single-pass judge output that a (plan, execution) pair is trained as (see top)."""
    text = (
        f"{PLAN_START}\n{plan.strip()}\n{PLAN_END}\n{EXEC_START}\n{execution.strip()}\n{EXEC_END}"
    )
    if verdict is not None:
        text += f"\n{FINAL_VERDICT}\n{VERDICT_TOKEN[verdict]}"
    return text
