"""Iterative Reasoning Preference Optimization, IRPO (Pang et al. 2024, arXiv 2404.19733).

One iteration with model M_t, on the same training questions every iteration:

1. ``samples``   M_t writes N chains of thought for every training question, prompted to reason
                 step by step and to end with a line ``Final answer: N``, sampled at the
                 iteration's temperature (``method.temperatures``; the paper raises it in
                 later iterations, when fewer incorrect samples are left to pair with).
2. ``rewards``   reward=verifiable (srlm.rewards.verifiable): reward 1 when the text after the
                 last ``Final answer:`` equals the gold answer (``answers_match``: numbers by
                 value; math-verify too when installed), else 0; a sample without a parseable
                 answer is a 0 and is counted as a format failure.
3. ``pairs``     per question, the winners (reward 1) against the losers (reward 0): K pairs
                 walking both lists in parallel (``srlm.core.selection.irpo_pairs``). A
                 sample cut at max_tokens is dropped, neither winner nor loser (the
                 paper drops over-long pairs). A question with no winner or no loser
                 gives no pair and is counted.
4. ``train``     DPO + the winner's length-normalised NLL (``optimizer=dpo_nll``) from M_t with
                 M_t as the reference gives M_{t+1} (run by srlm.runner). Only this
                 iteration's pairs are used; nothing from earlier iterations is reused.
5. ``evaluate``  held-out greedy (temperature 0) accuracy on the fixed test questions, and the
                 format rate (share of outputs with a parseable final answer); optionally
                 maj@k over sampled outputs. Run on M_0 as iteration 0 and after every train.

Questions come from the project's arithmetic generator (``srlm.data.arithmetic``: ``add2`` is
two-digit addition, where the embedded model gets about a quarter of its samples right and many
questions have both right and wrong samples) or, with ``method.task=file``, from GSM8K-style
rows ``{"question", "answer"}`` whose answer ends in ``#### N``.

The gold solution as a winner (``method.add_gold_to_winners``): the paper adds GSM8K's human
chain of thought to every question's winners, so no question is skipped for lack of a correct
sample. It is off by default for the arithmetic tasks: their gold solutions are the very
template the few-shot examples show, so adding them would turn much of the training into
supervised imitation of that template (every all-wrong question would contribute pairs
whose chosen side the model never wrote), and the run would no longer measure what IRPO
learns from its own correct reasoning. The paper also adds them for GSM8K only.
"""

from __future__ import annotations

import re
from functools import partial

from srlm.config import Config, IrpoConfig, SamplingConfig
from srlm.core.parsing import answers_match, extract_final_answer
from srlm.core.selection import irpo_pairs
from srlm.core.stats import mean
from srlm.data import DataError, load_rows
from srlm.data.arithmetic import FEW_SHOT, train_test_split
from srlm.eval.metrics import majority_vote as majority_answer
from srlm.methods.base import EngineFn, Method, Needs, group_by, register_method, sample_rows
from srlm.rewards.base import Item, get_reward
from srlm.rewards.verifiable import answer_score, check_answer
from srlm.rollout.base import format_prompt
from srlm.training.data import Example, Group
from srlm.training.selection import Validation

# The system turn of every prompt; worked examples follow as earlier user/assistant turns.
INSTRUCTION = 'Solve the problem step by step and end with a line "Final answer: N".'

# GSM8K's answers end in "#### 72"; its solutions carry calculator notes like <<48/2=24>>.
_GSM8K_FINAL = re.compile(r"####\s*(.+?)\s*$", re.DOTALL)
_CALCULATOR = re.compile(r"<<[^>]*>>")


@register_method("irpo", schema=IrpoConfig)
class Irpo(Method):
    rollout_stages = ("samples", "rewards", "pairs")
    needs = Needs(
        rewards=("verifiable",),
        why="IRPO pairs correct against incorrect chains of thought, by the final answer "
        "against the question's gold answer",
    )
    evaluates = True
    # Measured by accuracy against gold answers (evaluate), not by a judge.
    eval_win_rates = False
    eval_judge_accuracy = False
    has_eval_questions = True

    def __init__(self, config: Config, run):
        super().__init__(config, run)
        self.m = config.method
        self.reward = get_reward(config)  # reward=verifiable (srlm.methods.base.Needs)
        self.train_rows, self.test_rows, self.shots, self.validation_rows = load_questions(self.m)

    # ------------------------------------------------------------ prompts
    def prompt(self, tokenizer, question: str) -> str:
        return build_prompt(
            tokenizer, question, self.shots, self.m.instruction, self.m.question_template
        )

    def temperature(self, t: int) -> float:
        """Sampling temperature of iteration t (1-based); the schedule's last value repeats."""
        temps = self.m.temperatures
        return temps[min(t, len(temps)) - 1]

    # ------------------------------------------------------------ stages
    def run_stage(self, stage: str, t: int, engine: EngineFn) -> dict:
        return getattr(self, f"_stage_{stage}")(t, engine)

    def _stage_samples(self, t: int, engine: EngineFn) -> dict:
        eng = engine()
        temp = self.temperature(t)
        sampling = SamplingConfig(
            temperature=temp, top_p=self.m.top_p, max_tokens=self.m.max_tokens
        )
        outs = eng.generate(
            [self.prompt(eng.tokenizer, q["question"]) for q in self.train_rows],
            sampling,
            n=self.m.samples_per_question,
            desc=f"sample (T={temp})",
        )
        rows = [
            {
                "question_id": q["id"],
                "sample": j,
                "question": q["question"],
                "gold": q["answer"],
                "response": c.text.strip(),
                "tokens": c.num_tokens,
                "finish_reason": c.finish_reason,
            }
            for q, cs in zip(self.train_rows, outs, strict=True)
            for j, c in enumerate(cs)
        ]
        self.run.write_rows(t, "samples", rows)
        return {
            "questions": len(self.train_rows),
            "samples": len(rows),
            "temperature": temp,
            "mean_tokens": mean(r["tokens"] for r in rows),
            "truncated": sum(r["finish_reason"] == "length" for r in rows),
        }

    def _stage_rewards(self, t: int, engine: EngineFn) -> dict:
        rows, health = self._score(list(_group(self.run.read_rows(t, "samples")).values()), engine)
        self.run.write_rows(t, "rewards", rows)
        return _reward_stats(rows) | health

    def _score(self, groups: list[list[dict]], engine: EngineFn) -> tuple[list[dict], dict]:
        """Sample rows grouped by question, each with the verifiable source's record added
        ({"pred", "reward"}: the answer read and 1/0), and the source's health statistics."""
        result = self.reward.score(
            [[Item(r["question"], r["response"], r["gold"]) for r in g] for g in groups], engine
        )
        rows = [
            r | x.record
            for g, xs in zip(groups, result.scored, strict=True)
            for r, x in zip(g, xs, strict=True)
        ]
        # The reward source's health (format failures, questions all right or all wrong).
        return rows, {f"reward_{k}": v for k, v in result.health.items()}

    def _stage_pairs(self, t: int, engine: EngineFn) -> dict:
        gold_solutions = {q["id"]: q.get("solution") for q in self.train_rows}
        pairs, no_winner, no_loser, cut = [], 0, 0, 0
        for qid, rows in _group(self.run.read_rows(t, "rewards")).items():
            if self.m.add_gold_to_winners and gold_solutions.get(qid):
                rows = rows + [
                    {
                        "question_id": qid,
                        "question": rows[0]["question"],
                        "sample": "gold",
                        "response": gold_solutions[qid],
                        "tokens": None,
                        "reward": 1,
                    }
                ]
            cut += sum(map(is_cut, rows))
            made, why = make_pairs(rows, self.m.pairs_per_question)
            no_winner += why == "no_winner"
            no_loser += why == "no_loser"
            pairs += made
        self.run.write_rows(t, "pairs", pairs)
        return {
            "pairs": len(pairs),
            "questions_with_pairs": len({p["question_id"] for p in pairs}),
            "skipped_no_winner": no_winner,
            "skipped_no_loser": no_loser,
            "dropped_truncated": cut,
            "gold_chosen": sum(p["chosen_sample"] == "gold" for p in pairs),
            "chosen_tokens": mean(p["chosen_tokens"] for p in pairs),
            "rejected_tokens": mean(p["rejected_tokens"] for p in pairs),
        }

    # ------------------------------------------------------------ training data
    def training_examples(self, t: int, tokenizer) -> list[Example]:
        tokenizer = self.prompt_tokenizer(tokenizer)
        return [
            Example(self.prompt(tokenizer, p["question"]), p["chosen"], p["rejected"])
            for p in self.run.read_rows(t, "pairs")
        ]

    trains_groups = True

    def training_groups(self, t: int, tokenizer) -> list[Group]:
        """Each question's samples with their 1/0 rewards, for optimizer=grpo (R1-style
        training on verifiable rewards). As for pairs, a sample cut at max_tokens is left out
        (its missing answer says nothing of its reasoning); the gold solution is never added
        (method.add_gold_to_winners): it was not sampled from M_t, and the importance ratio
        needs the sampler's log-probs."""
        tokenizer = self.prompt_tokenizer(tokenizer)
        rows = self.run.read_rows(t, "rewards")
        return self._groups(_group(rows).values(), tokenizer)

    def _groups(self, by_question, tokenizer) -> list[Group]:
        groups = []
        for rows in by_question:
            kept = [r for r in rows if not is_cut(r)]
            if kept:
                groups.append(
                    Group(
                        self.prompt(tokenizer, kept[0]["question"]),
                        [r["response"] for r in kept],
                        [float(r["reward"]) for r in kept],
                    )
                )
        return groups

    # ------------------------------------------------------------ online regimes
    trains_online = True

    def online_prompts(self) -> list[dict]:
        return self.train_rows

    def online_prompt(self, tokenizer, row: dict) -> str:
        return self.prompt(tokenizer, row["question"])

    def online_sampling(self) -> tuple[SamplingConfig, int]:
        # The first iteration's temperature throughout: the online steps are one training.
        sampling = SamplingConfig(
            temperature=self.temperature(1), top_p=self.m.top_p, max_tokens=self.m.max_tokens
        )
        return sampling, self.m.samples_per_question

    def online_examples(
        self, t: int, questions: list[dict], outs, engine: EngineFn, tokenizer, grouped: bool
    ) -> tuple[list, dict]:
        """One online step's training data from fresh samples of `questions`: their groups
        (grpo) or pairs by IRPO's rule (the DPO family), and the step's reward statistics."""
        tokenizer = self.prompt_tokenizer(tokenizer)
        samples = sample_rows(
            questions,
            outs,
            lambda q: {"question_id": q["id"], "question": q["question"], "gold": q["answer"]},
        )
        rows, health = self._score(samples, engine)
        by_question = list(_group(rows).values())
        if grouped:
            examples = self._groups(by_question, tokenizer)
        else:
            examples = [
                Example(self.prompt(tokenizer, p["question"]), p["chosen"], p["rejected"])
                for g in by_question
                for p in make_pairs(g, self.m.pairs_per_question)[0]
            ]
        return examples, _reward_stats(rows) | health

    # ------------------------------------------------------------ checkpoint selection
    validates = True

    def validation(self, t: int, tokenizer) -> Validation:
        """Greedy accuracy on held-out training problems: the paper keeps the best step of
        each iteration by it (Pang et al. 2024, Sec. 3: 1k held-out GSM8K training problems)."""
        tokenizer = self.prompt_tokenizer(tokenizer)
        return Validation(
            prompts=[self.prompt(tokenizer, q["question"]) for q in self.validation_rows],
            references=[q["answer"] for q in self.validation_rows],
            score=partial(answer_reward, use_math_verify=self.reward.use_math_verify),
            max_tokens=self.m.max_tokens,
            name="validation_accuracy",
        )

    # ------------------------------------------------------------ evaluation
    def evaluate(self, t: int, engine: EngineFn) -> dict:
        eng = engine()
        prompts = [self.prompt(eng.tokenizer, q["question"]) for q in self.test_rows]
        greedy = SamplingConfig(temperature=0.0, top_p=1.0, max_tokens=self.m.max_tokens)
        outs = eng.generate(prompts, greedy, n=1, desc="evaluate (greedy)")
        rows = [
            {
                "question_id": q["id"],
                "question": q["question"],
                "gold": q["answer"],
                "response": c.text.strip(),
                "tokens": c.num_tokens,
                "finish_reason": c.finish_reason,
            }
            | score_sample(c.text, q["answer"], self.reward.use_math_verify)
            for q, [c] in zip(self.test_rows, outs, strict=True)
        ]
        stats = {
            "accuracy": mean(r["reward"] for r in rows),
            "format_rate": mean(r["pred"] is not None for r in rows),
            "mean_tokens": mean(r["tokens"] for r in rows),
        }
        if self.m.eval_maj_k > 0:
            k = self.m.eval_maj_k
            sampling = SamplingConfig(self.m.eval_maj_temperature, self.m.top_p, self.m.max_tokens)
            sampled = eng.generate(prompts, sampling, n=k, desc=f"evaluate (maj@{k})")
            for r, cs in zip(rows, sampled, strict=True):
                r["maj_pred"] = majority_answer([extract_final_answer(c.text) for c in cs])
                r["maj_reward"] = int(answers_match(r["maj_pred"], r["gold"]))
            stats["maj_accuracy"] = mean(r["maj_reward"] for r in rows)
        self.run.write_rows(t, "eval", rows)
        return stats

    def eval_questions(self):
        """The test questions, asked as the method asks them (for comparing decoders)."""
        from srlm.inference.base import QuestionSet

        return QuestionSet(
            f"method.task={self.m.task}",
            self.test_rows,
            lambda r: build_messages(
                r["question"], self.shots, self.m.instruction, self.m.question_template
            ),
            partial(answer_score, use_math_verify=self.reward.use_math_verify),
        )

    # ------------------------------------------------------------ helpers


# ---------------------------------------------------------------- pure parts (unit-tested)
def build_messages(
    question: str,
    shots: list[dict],
    instruction: str | None = None,
    template: str = "{question}",
) -> list[dict]:
    """The chat of one prompt: the instruction as the system turn (None: srlm's INSTRUCTION;
    "": no system turn), the worked examples as earlier turns, the question; every question,
    the examples' too, written into `template` (method.question_template)."""
    instruction = INSTRUCTION if instruction is None else instruction
    messages = [{"role": "system", "content": instruction}] if instruction else []
    for s in shots:
        messages += [
            {"role": "user", "content": template.replace("{question}", s["question"])},
            {"role": "assistant", "content": s["reasoning"]},
        ]
    return messages + [{"role": "user", "content": template.replace("{question}", question)}]


def build_prompt(
    tokenizer,
    question: str,
    shots: list[dict],
    instruction: str | None = None,
    template: str = "{question}",
) -> str:
    """The prompt text the model continues, in its prompt format (the same for rollout and
    training)."""
    return format_prompt(tokenizer, build_messages(question, shots, instruction, template))


def score_sample(response: str, gold: str, use_math_verify: bool = False) -> dict:
    """IRPO's reward: 1 when the final answer equals the gold answer, else 0 (no answer: 0).

    The rule of reward=verifiable (srlm.rewards.verifiable.check_answer).
    """
    pred, ok = check_answer(response, gold, use_math_verify)
    return {"pred": pred, "reward": ok}


def answer_reward(response: str, gold: str, use_math_verify: bool = False) -> float:
    """1.0 when the response's final answer equals the gold one, else 0.0."""
    return float(score_sample(response, gold, use_math_verify)["reward"])


def _reward_stats(rows: list[dict]) -> dict:
    by_q = _group(rows)
    return {
        "sample_accuracy": mean(r["reward"] for r in rows),
        "sample_format_rate": mean(r["pred"] is not None for r in rows),
        "questions_all_correct": sum(all(r["reward"] for r in g) for g in by_q.values()),
        "questions_all_wrong": sum(not any(r["reward"] for r in g) for g in by_q.values()),
    }


def make_pairs(rows: list[dict], k: int) -> tuple[list[dict], str | None]:
    """Up to K (winner, loser) pairs of one question's scored samples, and why there are none.

    A sample cut at max_tokens (``finish_reason`` "length") is in neither list: the paper
    drops pairs that overflow the context instead of training on a cut chain, and a cut
    chain's missing final answer says nothing about its reasoning, so it is no loser either.
    Returns ``(pairs, None)``, or ``([], "no_winner")`` / ``([], "no_loser")`` when one side
    is empty (the paper skips that question).
    """
    whole = [i for i, r in enumerate(rows) if not is_cut(r)]
    winners = [i for i in whole if rows[i]["reward"] == 1]
    losers = [i for i in whole if rows[i]["reward"] == 0]
    if not winners:
        return [], "no_winner"
    if not losers:
        return [], "no_loser"
    out = []
    for w, l_ in irpo_pairs(winners, losers, k):
        c, r = rows[w], rows[l_]
        out.append(
            {
                "question_id": c["question_id"],
                "question": c["question"],
                "chosen": c["response"],
                "rejected": r["response"],
                "chosen_sample": c["sample"],
                "rejected_sample": r["sample"],
                "chosen_tokens": c["tokens"],
                "rejected_tokens": r["tokens"],
            }
        )
    return out, None


def is_cut(row: dict) -> bool:
    """Whether a sample was cut at max_tokens (the gold solution has no finish_reason)."""
    return row.get("finish_reason") == "length"


def parse_gold(answer: str) -> tuple[str, str | None]:
    """``(gold answer, worked solution or None)`` of a data row's ``answer`` field.

    A GSM8K answer is a worked solution ending in ``#### N``: the gold answer is N (thousands
    separators removed) and the solution is the text before it, calculator notes
    (``<<48/2=24>>``) removed, ending in ``Final answer: N``. Any other answer is the gold
    answer itself, with no solution.
    """
    text = str(answer).strip()
    m = _GSM8K_FINAL.search(text)
    if m is None:
        return text, None
    gold = m.group(1).strip().replace(",", "")
    steps = _CALCULATOR.sub("", text[: m.start()]).strip()
    return gold, (f"{steps}\nFinal answer: {gold}" if steps else f"Final answer: {gold}")


def load_questions(m) -> tuple[list[dict], list[dict], list[dict], list[dict]]:
    """``(train rows, test rows, worked examples, validation rows)``; each row has id,
    question, answer, solution.

    The worked examples are the first ``m.shots`` of ``m.examples`` when given, else the
    task's own. No question that is a worked example is ever asked (train or test). The
    validation rows (``m.validation_questions``, checkpoint selection) are training-set
    problems that are never trained on: the ones right after the training questions, so that
    holding some out leaves the training questions as they were.
    """
    n_val = m.validation_questions
    given = [{"question": e["question"], "reasoning": e["reasoning"]} for e in m.examples][
        : m.shots
    ]
    if m.task != "file":
        train, test = train_test_split(
            m.task, m.train_questions + n_val, m.test_questions, m.data_seed
        )
        shots = given or [
            {"question": s["question"], "reasoning": s["reasoning"]}
            for s in FEW_SHOT[m.task][: m.shots]
        ]
    else:
        train = _file_rows(m.train_file, "train", m.field_map)
        test = _file_rows(m.test_file, "test", m.field_map)
        shots = given
        if not given:
            # 0-shot in the paper (GSM8K); with shots > 0 the first training rows become the
            # examples and are not trained on.
            shots = [
                {
                    "question": r["question"],
                    "reasoning": r["solution"] or f"Final answer: {r['answer']}",
                }
                for r in train[: m.shots]
            ]
            train = train[m.shots :]
        if m.train_questions is not None:
            train = train[: m.train_questions + n_val]
        test = test[: m.test_questions]
    asked_in_shots = {s["question"].strip() for s in shots}
    train = [r for r in train if r["question"].strip() not in asked_in_shots]
    test = [r for r in test if r["question"].strip() not in asked_in_shots]
    train, validation = (train[:-n_val], train[-n_val:]) if n_val else (train, [])
    if not train:
        raise DataError(
            f"method.task={m.task}: no training questions left after removing the "
            f"{len(shots)} worked examples and the {n_val} validation questions"
        )
    if len(validation) < n_val:
        raise DataError(
            f"method.validation_questions={n_val}: only {len(validation)} training questions "
            "are left to hold out"
        )
    return train, test, shots, validation


def _file_rows(source: str, split: str, field_map: dict) -> list[dict]:
    out: list[dict] = []
    seen: dict[str, int] = {}
    for i, r in enumerate(
        load_rows(
            source,
            split=split,
            required=["question", "answer"],
            field_map=field_map,
            optional=["id", "solution"],
        )
    ):
        gold, solution = parse_gold(r["answer"])
        qid = str(r["id"]) if r.get("id") is not None else f"{split}-{i}"
        if qid in seen:
            # Samples are grouped by question id: two questions under one id would be paired
            # against each other's gold answer.
            raise DataError(
                f"method.{split}_file={source}: rows {seen[qid] + 1} and {i + 1} have the same "
                f"id {qid!r}; ids must be unique"
            )
        seen[qid] = i
        out.append(
            {
                "id": qid,
                "question": str(r["question"]),
                "answer": gold,
                "solution": r.get("solution") or solution,
            }
        )
    return out


def _group(rows: list[dict]) -> dict[str, list[dict]]:
    return group_by(rows, "question_id")
