"""Distilling System 2 into System 1 (Yu, Xu, Weston, Kulikov 2024, arXiv 2407.06023).

One iteration with model M_t, on the task's training questions (srlm.data.system2_tasks; no
gold answer is read to make the training data):

1. ``teacher``  a System-2 decoder (``inference@method.teacher=s2a``, ``cove``, ``bsm``,
                ``self_consistency``, ``best_of_n``; srlm/inference) answers every training
                question ``method.teacher_samples`` times, its answer step sampled at
                ``method.teacher_temperature``; every intermediate text is kept in
                iter_NN/teacher.jsonl.
2. ``filter``   the paper's unsupervised consistency filter: a question is kept when at least
                ``method.min_agreement`` of its runs give the majority final answer; its target
                is the first run's final response that gives it (``method.target=answer``: the
                bare "Final answer: ..." line). The gold answers are read only to report how
                often the kept majority is right (``kept_accuracy``), never to choose.
3. ``train``    supervised fine-tuning (``optimizer=sft``) of M_t on question -> target, the
                question asked as ``direct`` asks it (the task's instruction and worked examples,
                no decoder step): the model learns to answer at once what the decoder reached
                in several steps.
4. ``evaluate`` direct and the teacher (or ``inference=...``) on the task's held-out questions (srlm/eval:
                accuracy, tokens per answer, wall time), on M_0 and after every iteration.
"""

from __future__ import annotations

from srlm.config import Config, System2DistillConfig
from srlm.core.parsing import extract_final_answer
from srlm.core.stats import mean
from srlm.data.system2_tasks import CONTROL_TASK, TASKS, is_task, task_split
from srlm.errors import ConfigError
from srlm.inference.base import Query, QuestionSet, get_decoder
from srlm.inference.decoders import first_voting, majority
from srlm.inference.questions import (
    file_messages,
    task_messages,
    task_score,
)
from srlm.methods.base import EngineFn, Method, Needs, group_by, register_method
from srlm.rewards.verifiable import answer_score
from srlm.rollout.base import format_prompt
from srlm.training.data import Example


@register_method("system2_distill", schema=System2DistillConfig)
class System2Distill(Method):
    rollout_stages = ("teacher", "filter")
    needs = Needs(
        rewards=("verifiable", "pointwise", "pairwise"),
        why="only a best_of_n teacher reads a reward source (to pick its answer); the "
        "consistency filter needs none",
        losses=("sft",),
        loss_why="System-2 distillation fine-tunes on the kept answers alone (optimizer=sft)",
    )
    # Measured by accuracy on the task's held-out questions, direct against the teacher.
    eval_win_rates = False
    eval_judge_accuracy = False
    has_eval_questions = True
    distils = True

    @classmethod
    def check_config(cls, config: Config) -> None:
        task = config.method.task
        if task != "file" and not is_task(task):
            raise ConfigError(
                f"method.task={task!r}: tasks srlm builds are {', '.join((CONTROL_TASK, *TASKS))}; "
                "or file (method.train_file, method.test_file)"
            )

    def __init__(self, config: Config, run):
        super().__init__(config, run)
        self.m = m = config.method
        if m.task == "file":
            from srlm.methods.irpo import _file_rows

            self.train_rows = _file_rows(m.train_file, "train", m.field_map)[: m.train_questions]
            self.test_rows = _file_rows(m.test_file, "test", m.field_map)[: m.test_questions]
            self.score = answer_score
        else:
            self.train_rows, self.test_rows = task_split(
                m.task, m.train_questions, m.test_questions, m.data_seed
            )
            self.score = task_score(m.task)

    def messages(self, question: str) -> list[dict]:
        if self.m.task == "file":
            return file_messages(question)
        return task_messages(self.m.task, question)

    # ------------------------------------------------------------ stages
    def run_stage(self, stage: str, t: int, engine: EngineFn) -> dict:
        return getattr(self, f"_stage_{stage}")(t, engine)

    def _stage_teacher(self, t: int, engine: EngineFn) -> dict:
        k = self.m.teacher_samples
        asked = [(q, j) for q in self.train_rows for j in range(k)]
        decoder = get_decoder(self.config, self.m.teacher)
        try:
            out = decoder.decode(
                [Query(self.messages(q["question"]), q["answer"]) for q, _ in asked],
                engine,
                temperature=self.m.teacher_temperature,
            )
        finally:
            decoder.close()
        rows = [
            {
                "question_id": q["id"],
                "sample": j,
                "question": q["question"],
                "gold": q["answer"],
                "response": d.response,
                "answer": extract_final_answer(d.response or ""),
                "tokens": d.tokens,
                "failures": d.failures,
                "trace": d.trace,
            }
            for (q, j), d in zip(asked, out, strict=True)
        ]
        self.run.write_rows(t, "teacher", rows)
        return {
            "teacher": decoder.name,
            "teacher_tokens": mean(r["tokens"] for r in rows),
            "teacher_failure_rate": mean(bool(r["failures"]) for r in rows),
            "teacher_answered_rate": mean(r["answer"] is not None for r in rows),
            # Reported only: the gold answers never decide what is kept.
            "teacher_accuracy": mean(self.score(r["response"], r["gold"])["correct"] for r in rows),
        }

    def _stage_filter(self, t: int, engine: EngineFn) -> dict:
        kept = []
        by_question = group_by(self.run.read_rows(t, "teacher"), "question_id")
        for qid, runs in by_question.items():
            winner, votes, _ = majority([r["answer"] for r in runs])
            agreement = votes / len(runs)
            if winner is None or agreement < self.m.min_agreement:
                continue
            first = runs[first_voting([r["answer"] for r in runs], winner)]
            target = first["response"]
            if self.m.target == "answer":
                target = f"Final answer: {first['answer']}"
            kept.append(
                {
                    "question_id": qid,
                    "question": first["question"],
                    "gold": first["gold"],
                    "target": target,
                    "majority": winner,
                    "agreement": agreement,
                    "correct": self.score(target, first["gold"])["correct"],
                }
            )
        self.run.write_rows(t, "distill", kept)
        return {
            "questions": len(by_question),
            "kept": len(kept),
            "kept_rate": len(kept) / max(len(by_question), 1),
            "kept_accuracy": mean(r["correct"] for r in kept),
            "mean_agreement": mean(r["agreement"] for r in kept),
        }

    def training_examples(self, t: int, tokenizer) -> list[Example]:
        tokenizer = self.prompt_tokenizer(tokenizer)
        return [
            Example(format_prompt(tokenizer, self.messages(r["question"])), r["target"])
            for r in self.run.read_rows(t, "distill")
        ]

    # ------------------------------------------------------------ evaluation
    def eval_questions(self) -> QuestionSet:
        return QuestionSet(
            f"method.task={self.m.task}",
            self.test_rows,
            lambda r: self.messages(r["question"]),
            self.score,
        )
