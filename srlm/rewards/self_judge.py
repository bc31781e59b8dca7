"""The policy as its own pointwise judge, with Self-Rewarding's additive 5-point rubric."""

from __future__ import annotations

from dataclasses import dataclass, field

from srlm.config import RewardConfig
from srlm.core.parsing import parse_score
from srlm.rollout.base import RolloutEngine, chat_prompt
from srlm.training.data import Example

# Self-Rewarding's judge prompt (Yuan et al. 2024, Fig. 2), in srlm's own words. The additive
# rubric is what keeps small judges from answering 5 every time.
JUDGE_TEMPLATE = """Review the user's question and the response below, and score the response with this additive 5-point system. Start at 0 and add points:
- Add 1 point if the response is relevant to the question and gives some related information, even if incomplete or partly off-topic.
- Add a 2nd point if it covers a substantial part of what was asked, without fully resolving it.
- Add a 3rd point if it answers the basic elements of the question usefully, even if it is not perfect.
- Add a 4th point if it is clearly written from an AI assistant's point of view, addresses the question directly and comprehensively, and is well organised.
- Add a 5th point if it is impeccably tailored to the question, shows expert knowledge, and is engaging and insightful, with no unnecessary content.

User: {instruction}
<response>{response}</response>

After reviewing the question and the response:
- Justify your total score briefly, in up to 100 words.
- End with the score in the format: "Score: <total points>"
"""


def judge_prompt_text(instruction: str, response: str) -> str:
    return JUDGE_TEMPLATE.format(instruction=instruction.strip(), response=response.strip())


def judge_target(justification: str, score: int | float) -> str:
    """What a judgement looks like: the format the warm start teaches (EFT data)."""
    return f"{justification.strip()}\nScore: {score:g}"


# The fields of a seed judgement row (data.seed_judgements): a judged example of the rubric.
SEED_JUDGEMENT_FIELDS = ["instruction", "response", "justification", "score"]


def judge_warm_start_examples(tokenizer, seed_judgements: list[dict], ift_min_score: int) -> list[Example]:
    """Self-Rewarding's M0 -> M1 data from seed judgements, for any method that judges itself.

    Every row is an evaluation-fine-tuning (EFT) example: the judge prompt, answered by the
    row's justification and ``Score: N``. A row whose response scored at least
    ``ift_min_score`` is also an instruction-following (IFT) example: instruction -> response.
    """
    out = []
    for r in seed_judgements:
        eft_prompt = chat_prompt(tokenizer, judge_prompt_text(r["instruction"], r["response"]))
        out.append(Example(eft_prompt, judge_target(r["justification"], r["score"])))
        if int(r["score"]) >= ift_min_score:
            out.append(Example(chat_prompt(tokenizer, r["instruction"]), r["response"]))
    return out


@dataclass
class Judged:
    """All judgements of one response: raw texts, parsed scores (None if unparseable), mean."""

    texts: list[str] = field(default_factory=list)
    scores: list[float | None] = field(default_factory=list)

    @property
    def score(self) -> float | None:
        valid = [s for s in self.scores if s is not None]
        return sum(valid) / len(valid) if valid else None


class SelfJudge:
    """Scores (instruction, response) pairs with the policy's own engine."""

    def __init__(self, config: RewardConfig):
        self.config = config

    def judge(self, engine: RolloutEngine, items: list[tuple[str, str]]) -> list[Judged]:
        prompts = [chat_prompt(engine.tokenizer, judge_prompt_text(q, r)) for q, r in items]
        outs = engine.generate(prompts, self.config.sampling, n=self.config.samples, desc="judge")
        judged = []
        for completions in outs:
            j = Judged()
            for c in completions:
                j.texts.append(c.text)
                j.scores.append(parse_score(c.text, self.config.min_score, self.config.max_score))
            judged.append(j)
        return judged
