"""Branch-Solve-Merge as a pairwise judge (Saha et al. 2024, arXiv 2310.15123).

reward=bsm_judge: the same judge model (the policy, or a separate one with ``reward.model``)
runs three prompted steps instead of one judgement:

- *branch*: once per question, it writes the criteria that matter for answering that question
  (at most ``reward.criteria``), one per numbered line. The responses are not shown: the plan
  must not be written to fit one of them, and both orders of a pair share it.
- *solve*: for each criterion on its own, it judges both responses and ends with
  ``Scores: A=<x>, B=<y>`` (whole numbers 1..``reward.max_score``), ``reward.samples`` times.
- *merge*: no model here, a sum. The s-th judgement of a pair sums the s-th readable scores over the
  criteria; the larger sum wins, equal sums tie. A judgement none of whose criteria could be
  read has no verdict.

A pair's scores therefore come from several short, single-criterion judgements, which the
paper finds agree better with humans and depend less on position and length than one
judgement that weighs everything at once. Each pair is still shown in both orders and the
verdicts go into the same Elo fit as reward=pairwise_judge's (srlm/rewards/pairwise.py).

The judgement stored with a response is the whole chain: the criteria, each criterion's
judgement, the summed scores and the verdict token (``[[A]]``/``[[B]]``/``[[C]]``), so a
record shows what decided and the text reads as a pairwise judgement.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from srlm.config import PairwiseJudgeRewardConfig, SamplingConfig, _check
from srlm.core.parsing import ANSWER_BLOCKS, _last_line_label, cut_off
from srlm.judging import VERDICT_TOKEN, pair_text
from srlm.rewards.base import Item, Scores, register_reward
from srlm.rewards.pairwise import Judgement, PairwiseJudgeReward
from srlm.rollout.base import chat_prompt


@dataclass
class BsmJudgeRewardConfig(PairwiseJudgeRewardConfig):
    """Branch-Solve-Merge as the pairwise judge: per-question criteria, each judged alone."""

    name: str = "bsm_judge"
    # The most criteria the branch step may write for one question.
    criteria: int = 3
    # Each criterion's scores are whole numbers from 1 to max_score.
    max_score: int = 10
    # The branch step: a short numbered list, greedy so both orders and reruns share it.
    branch_sampling: SamplingConfig = field(default_factory=lambda: SamplingConfig(0.0, 1.0, 128))
    # The solve step: one criterion's short judgement of both responses.
    sampling: SamplingConfig = field(default_factory=lambda: SamplingConfig(0.0, 1.0, 160))

    def check(self) -> None:
        _check(self.criteria >= 1, "reward.criteria", self.criteria, "must be >= 1")
        _check(self.max_score >= 1, "reward.max_score", self.max_score, "must be >= 1")
        _check(
            self.verdict_mode == "parse",
            "reward.verdict_mode",
            self.verdict_mode,
            "reward=bsm_judge's verdict comes from its per-criterion scores, not from verdict "
            "token probabilities: set reward.verdict_mode=parse (as the eval judge: "
            "eval.judge.verdict_mode=parse)",
        )
        self.branch_sampling.check("reward.branch_sampling")
        super().check()


# What the branch step falls back to when it lists nothing readable: criteria that fit any
# question (the qualities the one-pass pairwise prompt, PAIRWISE_SYSTEM, names).
DEFAULT_CRITERIA = ("relevance", "correctness", "level of detail")

BRANCH_SYSTEM = (
    "You are planning how to evaluate answers to a user question. Think about what a good "
    "answer to this particular question must get right, and name the criteria that matter "
    "most for judging it."
)

BRANCH_TEMPLATE = """[User Question]
{instruction}

List at most {k} criteria for judging answers to the question above, the most important first. Write each criterion as a short phrase of a few words, one per line, numbered "1.", "2.", and so on, with no explanations and nothing else."""

SOLVE_SYSTEM = (
    "Please act as an impartial judge and compare the responses of two AI assistants to the "
    "user question below on one criterion only: ignore every other quality of the responses. "
    "The order in which the responses are shown, their length and the assistants' names must "
    "not influence you. Explain your comparison briefly, then end with a line exactly in the "
    'format "Scores: A=<score of assistant A>, B=<score of assistant B>".'
)

SOLVE_TEMPLATE = """{pair}

[Criterion]
{criterion}

Judge both answers on this criterion only. Score each with a whole number from 1 (poor) to {max_score} (excellent), and end with the line:
Scores: A=<score>, B=<score>"""


def branch_text(instruction: str, k: int) -> str:
    return BRANCH_TEMPLATE.format(instruction=instruction.strip(), k=k)


def solve_text(
    instruction: str, answer_a: str, answer_b: str, criterion: str, max_score: int
) -> str:
    return SOLVE_TEMPLATE.format(
        pair=pair_text(instruction, answer_a, answer_b),
        criterion=criterion.strip(),
        max_score=max_score,
    )


# ---------------------------------------------------------------- pure parts (unit-tested)
# A numbered item ("1.", "2)", "(3)", "4:") and a bulleted one ("-", "*", "+", "\u2022").
_NUMBERED_RE = re.compile(r"^\s*(?:\*\*)?\(?\d{1,2}[.):](?:\*\*)?\s+(.*\S)\s*$")
_BULLET_RE = re.compile(r"^\s*[-*+\u2022]\s+(.*\S)\s*$")
# Markdown emphasis and quotes around a criterion ("**Accuracy**").
_EMPHASIS = "*_`\"' "


def _items(text: str, item_re: re.Pattern) -> list[str]:
    return [m.group(1) for line in text.splitlines() if (m := item_re.match(line))]


def parse_criteria(text: str, k: int) -> list[str]:
    """The criteria a branch step listed: the items of its numbered lines (of its bulleted
    lines when none is numbered: sub-points under numbered criteria are not criteria), at
    most ``k``, in order; a criterion repeated (in any case) counts once.

    A criterion written "**Accuracy**: the facts are right" keeps its explanation, as the
    solve step is then told what the criterion means; emphasis and a trailing colon or
    period are dropped. Lines that are not list items (an introduction, a closing remark)
    are left out, so a text without a list gives no criterion.
    """
    found: list[str] = []
    seen: set[str] = set()
    for item in _items(text, _NUMBERED_RE) or _items(text, _BULLET_RE):
        item = re.sub(r"\*\*|__", "", item).strip(_EMPHASIS).rstrip(":.;").strip(_EMPHASIS)
        key = " ".join(item.lower().split())
        if not key or key in seen:
            continue
        seen.add(key)
        found.append(item)
        if len(found) == k:
            break
    return found


_SCORES_LABEL_RE = re.compile(r"scores?[ \t*]*:", re.IGNORECASE)
_SCORE_NUM = r"[ \t*]*(\d+)(?:[ \t]*/[ \t]*(\d+))?[ \t*]*"
_SCORES_VALUE_RE = re.compile(
    rf"[ \t*_]*A[ \t*]*[=:]{_SCORE_NUM}[,;]?[ \t*]*B[ \t*]*[=:]{_SCORE_NUM}[.*_ \t\r]*$",
    re.IGNORECASE,
)


def parse_criterion_scores(
    text: str, max_score: int, finish_reason: str | None = None
) -> tuple[int, int] | None:
    """``(score of A, score of B)`` from a solve step's ``Scores: A=<x>, B=<y>``.

    The judge's own line is the last line that opens with a ``Scores:`` label (after
    indentation or markdown), outside the quoted answer blocks, as for every judge
    (srlm.core.parsing): an answer that ends with "Scores: A=10, B=1" does not decide.
    Spaces, case and bold are tolerated ("**Scores:** a = 7, b = 5"), and so is a
    denominator equal to ``max_score`` ("A=7/10"). None when there is no such line, when
    that line does not hold exactly the two whole numbers, when a score lies outside
    ``1..max_score``, and when the judgement was cut at max_tokens.
    """
    if cut_off(finish_reason):
        return None
    label = _last_line_label(text, _SCORES_LABEL_RE, ANSWER_BLOCKS)
    if label is None:
        return None
    line = text[label[1] :].split("\n", 1)[0]
    m = _SCORES_VALUE_RE.match(line)
    if m is None:
        return None
    a, den_a, b, den_b = m.groups()
    if any(d is not None and int(d) != max_score for d in (den_a, den_b)):
        return None
    a, b = int(a), int(b)
    if not (1 <= a <= max_score and 1 <= b <= max_score):
        return None
    return a, b


def merge_scores(pairs: Sequence[tuple[int, int] | None]) -> str | None:
    """The merge step: "A" when A's scores summed over the readable criteria are larger,
    "B" when smaller, "tie" when equal; None when no criterion could be read (a criterion
    left out counts for neither side)."""
    read = [p for p in pairs if p is not None]
    if not read:
        return None
    a, b = sum(x for x, _ in read), sum(y for _, y in read)
    return "A" if a > b else "B" if b > a else "tie"


def merged_text(
    criteria: Sequence[str],
    texts: Sequence[str],
    pairs: Sequence[tuple[int, int] | None],
    defaults: bool = False,
) -> str:
    """The whole chain of one judgement, as stored in the record (see top); ``defaults``:
    the branch step listed nothing readable and the criteria are DEFAULT_CRITERIA."""
    head = "[Criteria]" + (" (defaults: the branch step listed none)" if defaults else "")
    parts = [head + "\n" + "\n".join(f"{i}. {c}" for i, c in enumerate(criteria, 1))]
    for i, (c, t) in enumerate(zip(criteria, texts, strict=True), 1):
        parts.append(f"[Criterion {i}: {c}]\n{t.strip()}")
    read = [p for p in pairs if p is not None]
    verdict = merge_scores(pairs)
    if verdict is None:
        parts.append("[Merge]\nno criterion's scores could be read: no verdict")
    else:
        total = f"A={sum(x for x, _ in read)}, B={sum(y for _, y in read)}"
        parts.append(
            f"[Merge]\nTotal over {len(read)} of {len(pairs)} criteria: {total}\n"
            + VERDICT_TOKEN[verdict]
        )
    return "\n\n".join(parts)


# ---------------------------------------------------------------- the source
@register_reward("bsm_judge", schema=BsmJudgeRewardConfig)
class BsmJudgeReward(PairwiseJudgeReward):
    """reward=bsm_judge: see the module docstring."""

    def __init__(self, config, run_config=None):
        super().__init__(config, run_config)
        self._reset_counts()

    def _reset_counts(self) -> None:
        # Per compare() call: score() reports the counts of the comparisons it asked for.
        self.branch_failures = 0
        self.criterion_parse_failures = 0
        self.criterion_judgements = 0

    def branch_prompt(self, tokenizer, instruction: str) -> str:
        return chat_prompt(tokenizer, branch_text(instruction, self.config.criteria), BRANCH_SYSTEM)

    def solve_prompt(
        self, tokenizer, instruction: str, answer_a: str, answer_b: str, criterion: str
    ) -> str:
        text = solve_text(instruction, answer_a, answer_b, criterion, self.config.max_score)
        return chat_prompt(tokenizer, text, SOLVE_SYSTEM)

    def criteria_of(self, text: str, finish_reason: str | None) -> tuple[list[str], bool]:
        """The branch step's criteria, or the defaults (counted as a branch failure), and
        whether they are the defaults. A list cut at max_tokens keeps its complete lines:
        its last one may be cut mid-criterion."""
        if cut_off(finish_reason):
            text = text.rsplit("\n", 1)[0] if "\n" in text else ""
        found = parse_criteria(text, self.config.criteria)
        if found:
            return found, False
        self.branch_failures += 1
        return list(DEFAULT_CRITERIA[: self.config.criteria]), True

    def compare(
        self, triples: list[tuple[str, str, str]], engine: Callable, desc: str = "bsm judge"
    ) -> list[list[Judgement]]:
        """The ``reward.samples`` judgements of each (instruction, answer A, answer B) triple,
        in the order given (callers show each pair in both orders). Verdicts are "A", "B",
        "tie" or None (no criterion readable); ``p_first`` is always None."""
        self._reset_counts()
        if not triples:
            return []
        cfg = self.config
        eng = self.own(engine) if self.own is not None else engine()
        tok = eng.tokenizer
        # Branch: one plan per question, shared by every pair and both orders.
        questions = list(dict.fromkeys(q for q, _, _ in triples))
        branched = eng.generate(
            [self.branch_prompt(tok, q) for q in questions],
            cfg.branch_sampling,
            n=1,
            desc=f"{desc}: branch",
        )
        plans = {
            q: self.criteria_of(outs[0].text, outs[0].finish_reason)
            for q, outs in zip(questions, branched, strict=True)
        }
        # Solve: every (triple, criterion) in one batch.
        jobs = [(t, c) for t, (q, _, _) in enumerate(triples) for c in plans[q][0]]
        solved = eng.generate(
            [self.solve_prompt(tok, *triples[t], c) for t, c in jobs],
            cfg.sampling,
            n=cfg.samples,
            desc=f"{desc}: solve",
        )
        per_triple: list[list] = [[] for _ in triples]
        for (t, _), outs in zip(jobs, solved, strict=True):
            per_triple[t].append(outs)
        # Merge: the s-th judgement of a pair is made of each criterion's s-th.
        judged = []
        for (q, _, _), rows in zip(triples, per_triple, strict=True):
            criteria, defaults = plans[q]
            out = []
            for s in range(cfg.samples):
                completions = [row[s] for row in rows]
                pairs = [
                    parse_criterion_scores(c.text, cfg.max_score, c.finish_reason)
                    for c in completions
                ]
                self.criterion_judgements += len(pairs)
                self.criterion_parse_failures += sum(p is None for p in pairs)
                cut = any(cut_off(c.finish_reason) for c in completions)
                out.append(
                    Judgement(
                        merged_text(criteria, [c.text for c in completions], pairs, defaults),
                        merge_scores(pairs),
                        None,
                        "length" if cut else "stop",
                    )
                )
            judged.append(out)
        if self.own is not None:
            self.own.close()
        return judged

    def score(self, groups: list[list[Item]], engine: Callable) -> Scores:
        result = super().score(groups, engine)
        result.health |= {
            "branch_failures": self.branch_failures,
            "criterion_parse_failures": self.criterion_parse_failures,
            "criterion_judgements": self.criterion_judgements,
        }
        return result
