"""Reading a run directory for the report: config.yaml, iter_NN/stages.json and the stage JSONL
files, turned into the plain numbers, texts and counts that the figures and the page show.

Every file is read with srlm.rundir's readers. A file that is absent is no error (a method
without that stage, an iteration still running): its figure is left out. So is a broken file of
a stage not recorded finished: the run writes it anew when that stage runs. A broken file of a
finished stage (bad JSON, a row that lacks a field the report reads), a broken stages.json or
config.yaml raises RunDirError naming the file, the line and the field, and what to do.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from srlm.core.stats import is_number
from srlm.errors import RunDirError
from srlm.rundir import (
    RunDir,
    line_of_row,
    read_error,
    read_jsonl,
    read_yaml_mapping,
    writer_stage,
)

ITER_DIR = re.compile(r"^iter_(\d+)$")
EXAMPLES_PER_ITERATION = 4


# ---------------------------------------------------------------- the run and its files
@dataclass
class Iteration:
    t: int
    path: Path
    stages: dict[str, dict]  # stage name -> its stats
    _files: dict[str, list[dict]] = field(default_factory=dict)

    def rows(self, name: str) -> list[dict]:
        """The rows of ``iter_NN/<name>``, [] when the file is absent or, unreadable, belongs to
        a stage not recorded finished (the run rewrites it)."""
        if name not in self._files:
            try:
                self._files[name] = read_rows(self.path / name)
            except RunDirError as err:
                self._files[name] = self._unfinished_or_raise(name, err)
        return self._files[name]

    def _unfinished_or_raise(self, name: str, err: RunDirError) -> list[dict]:
        stage = writer_stage(self.t, name)
        if stage not in self.stages:
            return []
        advice = RunDir(self.path.parent).rerun_advice(self.t, stage)
        raise RunDirError(f"{err}; {advice}") from None

    def require(
        self,
        name: str,
        keys: tuple[str, ...],
        purpose: str,
        applies: Callable[[dict], bool] = lambda row: True,
    ) -> list[dict]:
        """The rows of ``iter_NN/<name>``, checked to be whole: once one row (of those that
        ``applies`` to) has any of ``keys``, every such row must have all of them.

        A file in which no row has the keys is no error: the method (or the srlm version that
        wrote the run) does not record them, and the figure that needs them is left out. A file
        that has them in some rows only was cut or edited, and a figure drawn from the rest
        would silently show less than the run did.
        """
        rows = self.rows(name)
        if any(k in r for r in rows if applies(r) for k in keys):
            for i, r in enumerate(rows):
                missing = [k for k in keys if applies(r) and k not in r]
                if missing:
                    path = self.path / name
                    err = RunDirError(
                        f"{path}:{line_of_row(path, i)}: no field '{missing[0]}' "
                        f"(the report reads it for {purpose})"
                    )
                    self._files[name] = self._unfinished_or_raise(name, err)
                    return self._files[name]
        return rows


@dataclass
class Run:
    root: Path
    config: dict
    iterations: list[Iteration]

    @property
    def method(self) -> str:
        return str((self.config.get("method") or {}).get("name", "unknown method"))


def load_run(run_dir: str | Path) -> Run:
    root = Path(run_dir)
    if not root.is_dir():
        raise RunDirError(f"{root} is not a run directory: it does not exist or is not a directory")
    try:
        found = sorted(
            (int(m.group(1)), p)
            for p in root.iterdir()
            if p.is_dir() and (m := ITER_DIR.match(p.name))
        )
    except OSError as err:
        raise read_error(root, err, "fix its permissions") from None
    iterations = [
        Iteration(t, path, _stage_stats(RunDir(root), t))
        for t, path in found
        if (path / "stages.json").exists()  # an iteration that has not finished a stage yet
    ]
    config_file = root / "config.yaml"
    if not iterations and not config_file.exists():
        raise RunDirError(
            f"{root} is not a run directory: it holds neither config.yaml nor any "
            "iter_NN/stages.json (pass the run_dir a srlm run wrote)"
        )
    config = {}
    if config_file.exists():
        config = read_yaml_mapping(
            config_file,
            "it records the config the run was made with (the run cannot resume without it "
            "either): restore it",
        )
    return Run(root, config, iterations)


def _stage_stats(run_dir: RunDir, t: int) -> dict[str, dict]:
    """stage -> its stats, from one stages.json (RunDir.stages names a broken one)."""
    path = run_dir.root / f"iter_{t:02d}" / "stages.json"
    out = {}
    for stage, entry in run_dir.stages(t).items():
        if "stats" not in entry:
            raise RunDirError(
                f"{path}: stage '{stage}' has no field 'stats' (the report reads it for the "
                "summary table and the stage figures)"
            )
        out[stage] = entry["stats"] or {}
    return out


def read_rows(path: Path) -> list[dict]:
    """The rows of a JSONL file, [] when it is absent; RunDirError naming the file and line for
    a line that is not a JSON object (srlm.rundir.read_jsonl)."""
    return read_jsonl(path) if path.is_file() else []


# ---------------------------------------------------------------- stage statistics
def numeric_stats(stats: dict, prefix: str = "") -> dict[str, float]:
    """The finite numbers among one stage's stats; nested dicts (verdict counts) as ``a/b``."""
    out: dict[str, float] = {}
    for key, value in stats.items():
        if isinstance(value, bool):
            continue  # flags (train_judge) are settings, not measurements
        if isinstance(value, (int, float)) and math.isfinite(value):
            out[prefix + key] = float(value)
        elif isinstance(value, dict):
            out |= numeric_stats(value, f"{prefix}{key}/")
    return out


def stage_series(run: Run) -> dict[str, dict[str, dict[int, float]]]:
    """stage -> metric -> {iteration: value}, stages in the order the run finished them."""
    out: dict[str, dict[str, dict[int, float]]] = {}
    for it in run.iterations:
        for stage, stats in it.stages.items():
            for key, value in numeric_stats(stats).items():
                out.setdefault(stage, {}).setdefault(key, {})[it.t] = value
    return {s: m for s, m in out.items() if m}


# ---------------------------------------------------------------- the figures' data
def judge_scores(run: Run) -> dict[str, dict[int, tuple[list[float], int]]]:
    """Judge scores from judgements.jsonl (training samples) and eval.jsonl (held-out answers):
    panel label -> iteration -> (parsed scores, unparsed count)."""
    sources = {
        "judgements.jsonl": "judge scores of the sampled answers",
        "eval.jsonl": "judge scores of the held-out answers",
    }
    panels = {}
    for fname, label in sources.items():
        per_iter = {}
        for it in run.iterations:
            valid, failed = [], 0
            for row in it.require(fname, ("scores",), "the judge-score histograms"):
                for s in row.get("scores") or []:
                    if isinstance(s, (int, float)) and not isinstance(s, bool):
                        valid.append(float(s))
                    else:
                        failed += 1
            if valid or failed:
                per_iter[it.t] = (valid, failed)
        if any(v for v, _ in per_iter.values()):
            panels[label] = per_iter
    return panels


def labelled_pair_scores(run: Run) -> dict[int, tuple[list[float], list[float]]]:
    """The policy's scores of the labelled pairs' chosen and rejected responses:
    iteration -> (chosen scores, rejected scores)."""
    per_iter = {}
    for it in run.iterations:
        rows = it.require(
            "eval_judge.jsonl", ("chosen", "rejected"), "the labelled-pair scores figure"
        )
        chosen = [float(r["chosen"]) for r in rows if is_number(r.get("chosen"))]
        rejected = [float(r["rejected"]) for r in rows if is_number(r.get("rejected"))]
        if chosen or rejected:
            per_iter[it.t] = (chosen, rejected)
    return per_iter


def verdict_counts(run: Run) -> dict[str, dict[int, Counter]]:
    """Pairwise verdicts (thinking-judge executions and evaluations, meta-judge winners):
    panel label -> iteration -> verdict -> count."""
    sources = [
        ("executions.jsonl", "verdict", "thinking-judge executions"),
        ("eval.jsonl", "verdict", "thinking judge on held-out pairs"),
        ("meta_judgements.jsonl", "winner", "meta-judge winners"),
    ]
    panels = {}
    for fname, key, label in sources:
        counts = {
            it.t: Counter(
                _verdict_label(r.get(key))
                for r in it.require(fname, (key,), "the verdict figure")
                if key in r
            )
            for it in run.iterations
        }
        counts = {t: c for t, c in counts.items() if c}
        if counts:
            panels[label] = counts
    return panels


def _verdict_label(v) -> str:
    return "unparsed" if v is None else str(v)


def _not_judge_pair(p: dict) -> bool:
    # A Meta-Rewarding judge pair's sides are two judgements of one response: they have no
    # token counts, and their scores are what the judgements said, not a margin between answers.
    return p.get("kind") != "judge"


PAIR_LENGTHS = {
    "chosen": "chosen_tokens",
    "rejected": "rejected_tokens",
    "chosen thought": "chosen_thought_tokens",
    "rejected thought": "rejected_thought_tokens",
}
PAIR_SIDES = ("chosen_tokens", "rejected_tokens")
PAIR_THOUGHTS = ("chosen_thought_tokens", "rejected_thought_tokens")  # TPO


def pair_lengths(run: Run) -> dict[str, dict[int, list[float]]]:
    """Token lengths of the pairs' sides: side label -> iteration -> lengths."""
    data: dict[str, dict[int, list[float]]] = {}
    for it in run.iterations:
        for keys in (PAIR_SIDES, PAIR_THOUGHTS):
            it.require("pairs.jsonl", keys, "the length figure", _not_judge_pair)
        for label, key in PAIR_LENGTHS.items():
            xs = [float(p[key]) for p in it.rows("pairs.jsonl") if is_number(p.get(key))]
            if xs:
                data.setdefault(label, {})[it.t] = xs
    return data


def score_margins(run: Run) -> dict[int, list[float]]:
    """Chosen score minus rejected score of each answer pair: iteration -> margins."""
    per_iter = {}
    for it in run.iterations:
        rows = it.require(
            "pairs.jsonl",
            ("chosen_score", "rejected_score"),
            "the score-margin figure",
            _not_judge_pair,
        )
        margins = [
            float(p["chosen_score"]) - float(p["rejected_score"])
            for p in rows
            if _not_judge_pair(p)
            and is_number(p.get("chosen_score"))
            and is_number(p.get("rejected_score"))
        ]
        if margins:
            per_iter[it.t] = margins
    return per_iter


TRAINING_KEYS = ("loss", "rewards/margin", "rewards/chosen", "rewards/rejected", "rewards/accuracy")


def training_steps(run: Run) -> tuple[list[tuple[int, dict]], set[int]]:
    """Per-step rows of each iteration's checkpoint/metrics.jsonl, in training order, as
    (iteration, row); and the iterations whose training was the (supervised) warm start."""
    steps: list[tuple[int, dict]] = []
    for it in run.iterations:
        for key in TRAINING_KEYS:
            it.require("checkpoint/metrics.jsonl", (key,), "the training curves")
        steps += [(it.t, r) for r in it.rows("checkpoint/metrics.jsonl")]
    warm = {it.t for it in run.iterations if "warm_start" in it.stages}
    return steps, warm


# ---------------------------------------------------------------- example pairs
def example_pairs(run: Run, per_iteration: int = EXAMPLES_PER_ITERATION) -> list[dict]:
    """A few pairs of every iteration, spread over its pairs.jsonl, with the judge's words."""
    out = []
    for it in run.iterations:
        pairs = it.require("pairs.jsonl", ("chosen", "rejected"), "the example pairs")
        if not pairs:
            continue
        n = min(per_iteration, len(pairs))
        picks = sorted({round(k * (len(pairs) - 1) / max(n - 1, 1)) for k in range(n)})
        for i in picks:
            p = pairs[i]
            out.append(
                {
                    "iteration": it.t,
                    "prompt": _prompt_text(p),
                    "chosen": str(p.get("chosen", "")),
                    "rejected": str(p.get("rejected", "")),
                    "judge": _judge_words(it, p),
                    "details": _details(p),
                }
            )
    return out


def _prompt_text(p: dict) -> str:
    text = str(p.get("instruction") or p.get("question") or p.get("prompt") or "")
    if "answer_a" in p:  # a thinking-judge pair: the judge compares these two answers
        text += f"\n\n[Assistant A]\n{p['answer_a']}\n\n[Assistant B]\n{p.get('answer_b', '')}"
    if p.get("kind") == "judge" and p.get("response"):  # a meta-judge pair judges this response
        text += f"\n\n[Response being judged]\n{p['response']}"
    return text


def _judge_words(it: Iteration, p: dict) -> list[tuple[str, str, bool]]:
    """(label, text, folded) of what the judge (or the rule) said about the pair's two sides;
    folded marks a further sample of the judge on a side already shown."""
    pid = p.get("prompt_id")
    if p.get("kind") == "judge":
        found = [
            m
            for m in it.rows("meta_judgements.jsonl")
            if m.get("prompt_id") == pid and m.get("sample") == p.get("sample")
        ]
        return [
            (
                f"meta-judge, judgements {m.get('pair')}, order {m.get('order')}, "
                f"winner {m.get('winner')}",
                str(m.get("text", "")),
                k > 0,
            )
            for k, m in enumerate(found)
        ]
    out = []
    judged = it.rows("judgements.jsonl")
    for side in ("chosen", "rejected"):
        row = _find_judged(
            judged, pid, p.get(f"{side}_sample"), p.get(side), p.get(f"{side}_response")
        )
        if row is not None:
            texts, scores = row.get("judgements") or [], row.get("scores") or []
            for k, text in enumerate(texts):
                score = scores[k] if k < len(scores) else None
                out.append(
                    (
                        f"on {side}, judgement {k + 1} of {len(texts)} (score {fmt_value(score)})",
                        str(text),
                        k > 0,
                    )
                )
        for r in it.rows("rewards.jsonl"):  # IRPO: the rule's verdict
            if r.get("question_id") == p.get("question_id") and r.get("sample") == p.get(
                f"{side}_sample"
            ):
                out.append(
                    (
                        f"on {side}",
                        f"final answer {r.get('pred')!s}, gold {r.get('gold')!s}: "
                        f"reward {r.get('reward')}",
                        False,
                    )
                )
                break
    if "chosen_verdict" in p:  # thinking judge: chosen and rejected are the judge's own words
        out.append(
            (
                "verdicts",
                f"chosen {p.get('chosen_verdict')}, rejected {p.get('rejected_verdict')} "
                f"(correct: {'A' if p.get('order') == 'AB' else 'B'})",
                False,
            )
        )
    return out


def _find_judged(rows: Iterable[dict], pid, sample, text, response) -> dict | None:
    if pid is None:
        return None
    for r in rows:
        if r.get("prompt_id") != pid:
            continue
        if sample is not None and r.get("sample") == sample:
            return r
        if sample is None and text is not None and text in (r.get("response"), r.get("output")):
            return r
        if sample is None and response is not None and response == r.get("response"):
            return r
    return None


LONG_FIELDS = {
    "instruction",
    "question",
    "prompt",
    "chosen",
    "rejected",
    "response",
    "answer_a",
    "answer_b",
    "chosen_response",
    "rejected_response",
}


def _details(p: dict) -> list[tuple[str, str]]:
    """The pair's short fields (scores, lengths, ids, verdicts) as (key, value)."""
    out = []
    for k, v in p.items():
        if k in LONG_FIELDS or isinstance(v, (dict, list)):
            continue
        if isinstance(v, str) and len(v) > 40:
            continue
        out.append((k, fmt_value(v)))
    return out


def fmt_value(v) -> str:
    if isinstance(v, float):
        return f"{v:.3g}"
    return "-" if v is None else str(v)


# ---------------------------------------------------------------- where the time went
TRAIN_STAGES = ("train", "warm_start")
EVAL_STAGES = ("evaluate", "winrates")
# The work of a phase, by kind, and what surrounds it; the columns of time_breakdown's rows.
WORK = ("generation", "training", "evaluation")
OVERHEAD = ("startup", "engine_start", "model_load", "save", "sync")


def time_breakdown(run_dir: str | Path) -> list[dict]:
    """One row per finished phase (RUN_DIR/phases.jsonl): its whole seconds split into work
    (generation and scoring in rollout stages, training steps with their reference and
    after-training passes, evaluation) and overhead (process start and imports, engine start,
    the trainer's model load and checkpoint save), from the stage records' own timings.

    An online train stage (srlm.training.online) is split by its steps' own timings:
    generation and scoring, training (forward, backward, optimizer step), and "sync": the rest
    of the stage (weight syncs with their probe checks, the checkpoint save, the loop).

    A stage recorded before the phase began (finished by an earlier, interrupted attempt) is
    not the phase's: its time is left out."""
    run = RunDir(run_dir)
    path = run.root / "phases.jsonl"
    if not path.exists():
        return []
    rows = []
    for p in read_jsonl(path):
        row = {"phase": p["phase"], "iteration": p["iteration"], "seconds": p["seconds"]}
        row |= dict.fromkeys(WORK + OVERHEAD, 0.0)
        in_stages = 0.0
        for i, stage in p.get("stages", []):
            rec = run.stages(i).get(stage, {})
            if "seconds" not in rec or rec.get("started", "") < p["started"]:
                continue
            secs, stats = rec["seconds"], rec.get("stats") or {}
            in_stages += secs
            engine = rec.get("engine_seconds", 0.0)
            # The trainer's model load, or a kept engine's in-place load of a new checkpoint.
            load = stats.get("load_seconds", 0.0) + rec.get("engine_load_seconds", 0.0)
            save = stats.get("save_seconds", 0.0)
            row["engine_start"] += engine
            row["model_load"] += load
            row["save"] += save
            if "step_seconds" in stats:  # an online iteration: generation inside training
                generation = stats.get("generation_seconds", 0.0) + stats.get(
                    "scoring_seconds", 0.0
                )
                row["generation"] += generation
                row["training"] += stats.get("train_seconds", 0.0)
                row["sync"] += secs - engine - generation - stats.get("train_seconds", 0.0)
                continue
            kind = (
                "training"
                if stage in TRAIN_STAGES
                else "evaluation"
                if stage in EVAL_STAGES
                else "generation"
            )
            row[kind] += secs - engine - load - save
        row["startup"] = max(0.0, p["seconds"] - in_stages)
        rows.append(row)
    return rows


def overhead_share(rows: list[dict]) -> float | None:
    """The share of the phases' time spent outside the work (time_breakdown's OVERHEAD)."""
    total = sum(r["seconds"] for r in rows)
    return sum(r[k] for r in rows for k in OVERHEAD) / total if total else None
