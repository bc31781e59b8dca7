"""The run report: one self-contained HTML page, and the same figures as PNG files, built from a
run directory's files alone, so it can be (re)built for any run, finished or not::

    python -m srlm.report RUN_DIR    ->  RUN_DIR/report/index.html and RUN_DIR/report/*.png

Figures are PNG images embedded as base64 ``data:`` URIs, so the page needs no network, no
script and no other file: it can be mailed or copied off a cluster as it is. Every figure is
drawn from whatever the run wrote (``iter_NN/stages.json`` and the stage JSONL files); a figure
whose data a method does not produce (IRPO has no judge scores) is left out and listed, with
the reason, at the end of the page.
"""

from __future__ import annotations

import argparse
import base64
import html
import io
import json
import math
import re
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from srlm.errors import RunDirError
from srlm.rundir import atomic_write_text
from srlm.summary import COLUMNS, format_cell, iteration_row

ITER_DIR = re.compile(r"^iter_(\d+)$")
# Rates in [0, 1] that say whether a judge (or an answer format) can be trusted.
HEALTH_KEY = re.compile(
    r"(parse_fail\w*rate|parse_error\w*rate|position_bias|flip_rate|order_consistency|format_rate)$"
)
EXAMPLES_PER_ITERATION = 4
SHOWN_CHARS = 500
COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"]


# ---------------------------------------------------------------- reading a run directory
@dataclass
class Iteration:
    t: int
    path: Path
    stages: dict[str, dict]  # stage name -> its stats
    _files: dict[str, list[dict]] = field(default_factory=dict)

    def rows(self, name: str) -> list[dict]:
        """The rows of ``iter_NN/<name>``, [] when the file is absent; unreadable lines are skipped
        (a report about a broken run is still worth having)."""
        if name not in self._files:
            self._files[name] = _read_rows(self.path / name)
        return self._files[name]


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
    found = sorted(
        (int(m.group(1)), p) for p in root.iterdir() if p.is_dir() and (m := ITER_DIR.match(p.name))
    )
    iterations = []
    for t, path in found:
        stages_file = path / "stages.json"
        if stages_file.exists():
            record = json.loads(stages_file.read_text())
            iterations.append(
                Iteration(t, path, {k: v.get("stats") or {} for k, v in record.items()})
            )
    config_file = root / "config.yaml"
    if not iterations and not config_file.exists():
        raise RunDirError(
            f"{root} is not a run directory: it holds neither config.yaml nor any "
            "iter_NN/stages.json (pass the run_dir a srlm run wrote)"
        )
    config = {}
    if config_file.exists():
        try:
            config = yaml.safe_load(config_file.read_text()) or {}
        except yaml.YAMLError:
            config = {}
    return Run(root, config, iterations)


def _read_rows(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    rows = []
    with open(path, errors="replace") as f:
        for line in f:
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(row, dict):
                rows.append(row)
    return rows


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


# ---------------------------------------------------------------- figures
@dataclass
class Figure:
    name: str  # file stem, and the image's id in the page
    title: str
    caption: str
    png: bytes


def _new_figure(width: float, height: float):
    # The Figure class with an explicit Agg canvas, not pyplot: no global state, no display, and
    # the runner's process keeps whatever backend it had.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure as MplFigure

    fig = MplFigure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _iteration_axis(ax, iterations) -> None:
    ts = sorted(set(iterations))
    if 0 < len(ts) <= 20:
        ax.set_xticks(ts)  # whole iterations only, even with one point
        ax.set_xlim(ts[0] - 0.5, ts[-1] + 0.5)
    ax.set_xlabel("iteration", fontsize=8)
    ax.grid(alpha=0.3)
    ax.tick_params(labelsize=8)


def _label_points(ax, xs, ys) -> None:
    # With few iterations the exact numbers are what the reader wants.
    if len(xs) <= 6:
        for x, y in zip(xs, ys, strict=True):
            ax.annotate(
                f"{y:.3g}",
                (x, y),
                textcoords="offset points",
                xytext=(0, 5),
                ha="center",
                fontsize=7,
            )


def _grid(n: int, cols: int = 4) -> tuple[int, int]:
    cols = min(cols, n)
    return math.ceil(n / cols), cols


def fig_metric_curves(
    name: str, title: str, caption: str, metrics: dict[str, dict[int, float]]
) -> Figure:
    rows, cols = _grid(len(metrics))
    fig = _new_figure(3.2 * cols, 2.3 * rows + 0.4)
    for i, (key, points) in enumerate(metrics.items()):
        ax = fig.add_subplot(rows, cols, i + 1)
        xs = sorted(points)
        ys = [points[x] for x in xs]
        ax.plot(xs, ys, marker="o", color=COLORS[0])
        _label_points(ax, xs, ys)
        ax.margins(y=0.2)
        ax.set_title(key, fontsize=9)
        _iteration_axis(ax, xs)
    fig.suptitle(title)
    return Figure(name, title, caption, _png(fig))


ANSWER_KEYS = ("eval_prompts", "response_tokens", "thought_tokens", "unanswered_rate")
BASELINES = {"m0": "against M_0", "prev": "against M_{t-1}"}


def fig_win_rates(winrates: dict[str, dict[int, float]]) -> Figure | None:
    """Win, length-controlled win, tie and loss rates of M_t against each baseline."""
    panels = [(b, label) for b, label in BASELINES.items() if f"win_rate_vs_{b}" in winrates]
    if not panels:
        return None
    fig = _new_figure(4.6 * len(panels), 3.2)
    lines = [
        ("win_rate", "win"),
        ("soft_win_rate", "win, judge's probability"),
        ("lc_win_rate", "win, length-controlled"),
        ("tie_rate", "tie"),
        ("loss_rate", "loss"),
    ]
    for i, (b, label) in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), i + 1)
        xs_all = set()
        for c, (key, name) in enumerate(lines):
            points = winrates.get(f"{key}_vs_{b}", {})
            xs = sorted(points)
            xs_all |= set(xs)
            ax.plot(
                xs,
                [points[x] for x in xs],
                marker="o",
                color=COLORS[c],
                label=name,
                linestyle="--" if key == "lc_win_rate" else "-",
            )
        ax.axhline(0.5, color="#999", linewidth=0.8)
        ax.set_ylim(-0.05, 1.05)
        ax.set_title(f"M_t {label}", fontsize=9)
        _iteration_axis(ax, sorted(xs_all))
        ax.legend(fontsize=7)
    fig.suptitle("Win rates on held-out prompts")
    return Figure(
        "win_rates",
        "Win rates on held-out prompts",
        "Each held-out prompt judged in both orders by the evaluation judge (eval.judge): "
        "a win needs the judge to prefer M_t's answer in one order without preferring the "
        "other answer in the other; a verdict that flips with the order is a tie. With "
        "probability verdicts, the judge's probability of preferring M_t averaged over "
        "both orders (AlpacaEval's weighted win rate; the position cancels). The "
        "length-controlled rate is the win rate predicted at equal length (a logistic "
        "fit on the length difference, as AlpacaEval LC). 0.5: no better than the baseline.",
        _png(fig),
    )


def fig_health(series: dict[str, dict[str, dict[int, float]]]) -> Figure | None:
    lines = {
        f"{stage}/{key}": pts
        for stage, metrics in series.items()
        for key, pts in metrics.items()
        if HEALTH_KEY.search(key)
    }
    if not lines:
        return None
    fig = _new_figure(9, 4)
    ax = fig.add_subplot(1, 1, 1)
    for i, (label, pts) in enumerate(lines.items()):
        xs = sorted(pts)
        ax.plot(
            xs,
            [pts[x] for x in xs],
            marker="o",
            label=label,
            color=COLORS[i % len(COLORS)],
            linestyle="-" if i < len(COLORS) else "--",
        )
    ax.set_ylim(-0.05, 1.05)
    ax.set_ylabel("rate")
    _iteration_axis(ax, [t for pts in lines.values() for t in pts])
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    return Figure(
        "judge_health",
        "Judge and format health",
        "Parse-failure rates (judge verdicts or scores that could not be read, outputs "
        "without the expected format), format rates, and the position-bias, flip and "
        "order-consistency rates of pairwise judges, per iteration.",
        _png(fig),
    )


def fig_score_histograms(run: Run) -> Figure | None:
    """Judge scores from judgements.jsonl (training samples) and eval.jsonl (held-out answers)."""
    sources = {
        "judgements.jsonl": "judge scores of the sampled answers",
        "eval.jsonl": "judge scores of the held-out answers",
    }
    panels = {}
    for fname, label in sources.items():
        per_iter = {}
        for it in run.iterations:
            valid, failed = [], 0
            for row in it.rows(fname):
                for s in row.get("scores") or []:
                    if isinstance(s, (int, float)) and not isinstance(s, bool):
                        valid.append(float(s))
                    else:
                        failed += 1
            if valid or failed:
                per_iter[it.t] = (valid, failed)
        if any(v for v, _ in per_iter.values()):
            panels[label] = per_iter
    if not panels:
        return None
    fig = _new_figure(6 * len(panels), 3.6)
    for i, (label, per_iter) in enumerate(panels.items()):
        ax = fig.add_subplot(1, len(panels), i + 1)
        bins = _bins([x for v, _ in per_iter.values() for x in v])
        for k, (t, (valid, failed)) in enumerate(sorted(per_iter.items())):
            ax.hist(
                valid,
                bins=bins,
                histtype="step",
                linewidth=2,
                color=COLORS[k % len(COLORS)],
                label=f"iter {t}: n={len(valid)}, {failed} unparsed",
            )
        ax.set_title(label, fontsize=10)
        ax.set_xlabel("score", fontsize=8)
        ax.set_ylabel("count", fontsize=8)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return Figure(
        "judge_scores",
        "Judge-score histograms",
        "Distribution of every parsed judge score, per iteration; unparsed judgements "
        "are counted in the legend, never drawn as a score.",
        _png(fig),
    )


def fig_labelled_pair_scores(run: Run) -> Figure | None:
    """The policy's scores of the labelled pairs' chosen and rejected responses, per model."""
    per_iter = {}
    for it in run.iterations:
        rows = it.rows("eval_judge.jsonl")
        chosen = [float(r["chosen"]) for r in rows if _is_number(r.get("chosen"))]
        rejected = [float(r["rejected"]) for r in rows if _is_number(r.get("rejected"))]
        if chosen or rejected:
            per_iter[it.t] = (chosen, rejected)
    if not per_iter:
        return None
    fig = _new_figure(3.4 * len(per_iter), 3.2)
    bins = _bins([x for c, r in per_iter.values() for x in c + r])
    for i, (t, (chosen, rejected)) in enumerate(sorted(per_iter.items())):
        ax = fig.add_subplot(1, len(per_iter), i + 1)
        ax.hist(
            chosen,
            bins=bins,
            histtype="step",
            linewidth=2,
            color=COLORS[2],
            label=f"chosen (n={len(chosen)})",
        )
        ax.hist(
            rejected,
            bins=bins,
            histtype="step",
            linewidth=2,
            color=COLORS[3],
            linestyle="--",
            label=f"rejected (n={len(rejected)})",
        )
        ax.set_title(f"M_{t}", fontsize=9)
        ax.set_xlabel("score", fontsize=8)
        ax.legend(fontsize=7)
    fig.suptitle("The policy's scores of labelled pairs")
    return Figure(
        "labelled_pair_scores",
        "The policy's scores of labelled pairs",
        "Scores the run's judge (M_t) gave the better (chosen) and the worse (rejected) "
        "response of each labelled pair (eval.pairs): a judge that can be trusted puts "
        "the chosen curve to the right.",
        _png(fig),
    )


def fig_verdicts(run: Run) -> Figure | None:
    """Pairwise verdicts: thinking-judge executions and evaluations, meta-judge winners."""
    sources = [
        ("executions.jsonl", "verdict", "thinking-judge executions"),
        ("eval.jsonl", "verdict", "thinking judge on held-out pairs"),
        ("meta_judgements.jsonl", "winner", "meta-judge winners"),
    ]
    panels = {}
    for fname, key, label in sources:
        counts = {
            it.t: Counter(_verdict_label(r.get(key)) for r in it.rows(fname) if key in r)
            for it in run.iterations
        }
        counts = {t: c for t, c in counts.items() if c}
        if counts:
            panels[label] = counts
    if not panels:
        return None
    fig = _new_figure(5 * len(panels), 3.6)
    for i, (label, counts) in enumerate(panels.items()):
        ax = fig.add_subplot(1, len(panels), i + 1)
        cats = sorted(
            {c for cnt in counts.values() for c in cnt}, key=lambda c: (c == "unparsed", c)
        )
        ts = sorted(counts)
        bottom = [0.0] * len(ts)
        for k, cat in enumerate(cats):
            share = [counts[t][cat] / sum(counts[t].values()) for t in ts]
            color = "#bbbbbb" if cat == "unparsed" else COLORS[k % len(COLORS)]
            ax.bar([str(t) for t in ts], share, bottom=bottom, label=cat, color=color)
            bottom = [b + s for b, s in zip(bottom, share, strict=True)]
        ax.set_title(label, fontsize=10)
        ax.set_xlabel("iteration", fontsize=8)
        ax.set_ylabel("share", fontsize=8)
        ax.legend(fontsize=7)
    return Figure(
        "verdicts",
        "Pairwise verdicts",
        "Share of each verdict per iteration; 'unparsed' is a judgement whose verdict "
        "could not be read.",
        _png(fig),
    )


def _bins(values: list[float]):
    """One bar per value when all are whole numbers (5-point judges), else 20 equal bins; the
    same edges for every iteration so that their histograms compare."""
    import numpy as np

    lo, hi = min(values), max(values)
    if all(x == round(x) for x in values) and hi - lo <= 40:
        return np.arange(lo - 0.5, hi + 1.5)
    return np.linspace(lo, hi if hi > lo else lo + 1, 21)


def _verdict_label(v) -> str:
    return "unparsed" if v is None else str(v)


def fig_pair_lengths(run: Run) -> Figure | None:
    sides = {
        "chosen": "chosen_tokens",
        "rejected": "rejected_tokens",
        "chosen thought": "chosen_thought_tokens",
        "rejected thought": "rejected_thought_tokens",
    }
    data: dict[str, dict[int, list[float]]] = {}
    for it in run.iterations:
        for label, key in sides.items():
            xs = [float(p[key]) for p in it.rows("pairs.jsonl") if _is_number(p.get(key))]
            if xs:
                data.setdefault(label, {})[it.t] = xs
    if not data:
        return None
    fig = _new_figure(12, 3.8)
    ax = fig.add_subplot(1, 2, 1)
    for i, (label, per_iter) in enumerate(data.items()):
        ts = sorted(per_iter)
        ax.plot(
            ts,
            [sum(per_iter[t]) / len(per_iter[t]) for t in ts],
            marker="o",
            label=label,
            color=COLORS[i],
            linestyle="--" if "thought" in label else "-",
        )
    ax.set_title("mean length of the pairs' sides (tokens)", fontsize=10)
    _iteration_axis(ax, [t for per_iter in data.values() for t in per_iter])
    ax.legend(fontsize=8)
    ax = fig.add_subplot(1, 2, 2)
    ts = sorted({t for label in ("chosen", "rejected") for t in data.get(label, {})})
    positions, boxes, colors = [], [], []
    for j, t in enumerate(ts):
        for k, label in enumerate(("chosen", "rejected")):
            if t in data.get(label, {}):
                positions.append(3 * j + k)
                boxes.append(data[label][t])
                colors.append(COLORS[k])
    if boxes:
        parts = ax.boxplot(boxes, positions=positions, widths=0.8, patch_artist=True)
        for patch, c in zip(parts["boxes"], colors, strict=True):
            patch.set_facecolor(c)
            patch.set_alpha(0.5)
        ax.set_xticks([3 * j + 0.5 for j in range(len(ts))], [str(t) for t in ts])
    ax.set_title("chosen (blue) vs rejected (orange) lengths", fontsize=10)
    ax.set_xlabel("iteration", fontsize=8)
    ax.grid(alpha=0.3)
    return Figure(
        "pair_lengths",
        "Chosen and rejected lengths",
        "Response lengths in tokens of the preference pairs, per iteration (from "
        "pairs.jsonl). A chosen side that grows longer than the rejected one is the "
        "length bias that length control is meant to hold off.",
        _png(fig),
    )


def fig_score_margins(run: Run) -> Figure | None:
    per_iter = {}
    for it in run.iterations:
        # A Meta-Rewarding judge pair's scores are what its two judgements said about one
        # response, not a margin between two answers: left out.
        margins = [
            float(p["chosen_score"]) - float(p["rejected_score"])
            for p in it.rows("pairs.jsonl")
            if p.get("kind") != "judge"
            and _is_number(p.get("chosen_score"))
            and _is_number(p.get("rejected_score"))
        ]
        if margins:
            per_iter[it.t] = margins
    if not per_iter:
        return None
    fig = _new_figure(6, 3.6)
    ax = fig.add_subplot(1, 1, 1)
    bins = _bins([m for ms in per_iter.values() for m in ms])
    for k, (t, ms) in enumerate(sorted(per_iter.items())):
        ax.hist(
            ms,
            bins=bins,
            histtype="step",
            linewidth=2,
            color=COLORS[k % len(COLORS)],
            label=f"iter {t}: {len(ms)} pairs, mean {sum(ms) / len(ms):.2f}",
        )
    ax.set_xlabel("chosen score - rejected score", fontsize=8)
    ax.set_ylabel("pairs", fontsize=8)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return Figure(
        "score_margins",
        "Chosen-vs-rejected judge-score margins",
        "How far the judge put the chosen answer above the rejected one, per pair (pairs.jsonl).",
        _png(fig),
    )


def fig_training(run: Run) -> Figure | None:
    """Per-step training curves from each iteration's checkpoint/metrics.jsonl."""
    steps: list[tuple[int, dict]] = []  # (iteration, metrics row), in training order
    for it in run.iterations:
        steps += [(it.t, r) for r in it.rows("checkpoint/metrics.jsonl")]
    if not steps:
        return None
    panels = [
        ("loss", ["loss"], False),
        ("DPO implicit reward margin (chosen - rejected)", ["rewards/margin"], True),
        ("DPO implicit rewards", ["rewards/chosen", "rewards/rejected"], True),
        ("pair accuracy (batch)", ["rewards/accuracy"], True),
    ]
    warm = {it.t for it in run.iterations if "warm_start" in it.stages}
    shown = []
    for title, keys, preference_only in panels:
        # The warm start is supervised: its "rewards" have no rejected side and mean nothing.
        rows = [(i, t, r) for i, (t, r) in enumerate(steps) if not (preference_only and t in warm)]
        if any(_is_number(r.get(k)) for _, _, r in rows for k in keys):
            shown.append((title, keys, rows))
    fig = _new_figure(6 * min(2, len(shown)), 3.2 * math.ceil(len(shown) / 2))
    starts = {}
    for i, (t, _) in enumerate(steps):
        starts.setdefault(t, i)
    rows_n, cols = _grid(len(shown), 2)
    for p, (title, keys, rows) in enumerate(shown):
        ax = fig.add_subplot(rows_n, cols, p + 1)
        for k, key in enumerate(keys):
            pts = [(i, float(r[key])) for i, _, r in rows if _is_number(r.get(key))]
            ax.plot(
                [x for x, _ in pts], [y for _, y in pts], marker=".", label=key, color=COLORS[k]
            )
        for t, i in starts.items():
            ax.axvline(i, color="#999999", linestyle=":", linewidth=1)
            ax.annotate(
                f"iter {t}" + (" (warm start)" if t in warm else ""),
                (i, 1),
                xycoords=("data", "axes fraction"),
                fontsize=7,
                va="top",
                ha="left",
                rotation=90,
                color="#666666",
            )
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("training step (all iterations)", fontsize=8)
        ax.grid(alpha=0.3)
        if len(keys) > 1:
            ax.legend(fontsize=7)
    return Figure(
        "training",
        "Training: loss and chosen-vs-rejected margins",
        "Per optimiser step, iterations one after another (dotted lines); margins and "
        "rewards are the DPO implicit rewards beta * log(pi/pi_ref) of the batch.",
        _png(fig),
    )


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def build_figures(run: Run) -> tuple[list[Figure], list[str]]:
    """The figures this run's files allow, and a note for each one left out."""
    series = stage_series(run)
    figures, skipped = [], []

    def add(fig: Figure | None, why_not: str) -> None:
        if fig is None:
            skipped.append(why_not)
        else:
            figures.append(fig)

    evaluation = series.get("evaluate", {})
    judge = {k: v for k, v in evaluation.items() if k.startswith("judge_") and "/" not in k}
    answers = {k: v for k, v in evaluation.items() if k in ANSWER_KEYS}
    own = {
        k: v for k, v in evaluation.items() if not k.startswith("judge_") and k not in ANSWER_KEYS
    }
    add(
        fig_win_rates(series.get("winrates", {})),
        "win rates: no winrates stage (eval.win_rates off, or no iteration after M_0)",
    )
    add(
        fig_metric_curves(
            "eval",
            "Evaluation per iteration",
            "The method's held-out metrics of the model after each iteration; "
            "iteration 0 is the starting model.",
            own,
        )
        if own
        else None,
        "evaluation curves: no method-specific metrics in the evaluate stage",
    )
    add(
        fig_metric_curves(
            "eval_judge",
            "The policy as judge, on labelled pairs",
            "Accuracy of the run's own judge (M_t) on labelled pairs (eval.pairs): "
            "in each order, position-consistent (right in both orders), the rate "
            "at which swapping the order flips the verdict, parse failures.",
            judge,
        )
        if judge
        else None,
        "judge accuracy: the run's judge is not the policy (or eval.judge_accuracy=false)",
    )
    add(
        fig_labelled_pair_scores(run),
        "labelled-pair scores: no eval_judge.jsonl with pointwise scores",
    )
    add(
        fig_metric_curves(
            "eval_answers",
            "Held-out answers",
            "Length of M_t's held-out answers in tokens (TPO: the response after "
            "the thought, and the thought), and the share with no usable answer.",
            answers,
        )
        if answers
        else None,
        "held-out answers: eval.win_rates off",
    )
    add(fig_health(series), "judge health: no parse-failure or format rates in the stage stats")
    add(
        fig_score_histograms(run),
        "judge-score histograms: no judgements.jsonl / eval.jsonl with scores",
    )
    add(
        fig_verdicts(run),
        "pairwise verdicts: no executions.jsonl, eval.jsonl verdicts or meta_judgements.jsonl",
    )
    add(
        fig_score_margins(run),
        "judge-score margins: pairs.jsonl has no chosen_score/rejected_score",
    )
    add(
        fig_pair_lengths(run),
        "chosen/rejected lengths: pairs.jsonl has no chosen_tokens/rejected_tokens",
    )
    add(fig_training(run), "training curves: no checkpoint/metrics.jsonl")
    for stage, metrics in series.items():
        if stage not in ("evaluate", "winrates"):
            figures.append(
                fig_metric_curves(
                    f"stage_{_slug(stage)}",
                    f"Stage '{stage}'",
                    f"Every numeric statistic of the {stage} stage (stages.json), per iteration.",
                    metrics,
                )
            )
    return figures, skipped


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "_", text)


# ---------------------------------------------------------------- example pairs
def example_pairs(run: Run, per_iteration: int = EXAMPLES_PER_ITERATION) -> list[dict]:
    """A few pairs of every iteration, spread over its pairs.jsonl, with the judge's words."""
    out = []
    for it in run.iterations:
        pairs = it.rows("pairs.jsonl")
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
                f"meta-judge, judgements {m.get('pair')}, order {m.get('order')}, winner {m.get('winner')}",
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
                        f"on {side}, judgement {k + 1} of {len(texts)} (score {_fmt_value(score)})",
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


def _find_judged(rows: list[dict], pid, sample, text, response) -> dict | None:
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
        out.append((k, _fmt_value(v)))
    return out


def _fmt_value(v) -> str:
    if isinstance(v, float):
        return f"{v:.3g}"
    return "-" if v is None else str(v)


# ---------------------------------------------------------------- the page
CSS = """
body { font-family: system-ui, sans-serif; margin: 1.5em auto; max-width: 1400px; color: #222; padding: 0 1em; }
h1 { margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ddd; padding-bottom: 0.2em; margin-top: 1.6em; }
.meta { color: #555; } figure { margin: 1em 0; } figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { color: #555; font-size: 0.9em; margin-top: 0.3em; }
table { border-collapse: collapse; font-size: 0.85em; }
th, td { border: 1px solid #ddd; padding: 4px 6px; vertical-align: top; }
th { background: #f4f4f4; position: sticky; top: 0; }
table.summary td { text-align: right; font-variant-numeric: tabular-nums; }
table.pairs { width: 100%; table-layout: fixed; }
table.pairs td div.t { white-space: pre-wrap; word-wrap: break-word; max-height: 22em; overflow: auto; }
td.chosen { background: #f3faf3; } td.rejected { background: #fdf3f3; }
.judge p { margin: 0 0 0.5em 0; } .judge b, .details b { font-weight: 600; }
td.judge > div { max-height: 30em; overflow: auto; } td.details { font-size: 0.85em; overflow-wrap: anywhere; }
ul.skipped { color: #666; } pre.config { background: #f7f7f7; padding: 0.8em; overflow: auto; font-size: 0.8em; }
"""


def render_html(run: Run, figures: list[Figure], skipped: list[str], pairs: list[dict]) -> str:
    e = _esc
    model = run.config.get("model") or {}
    model_name = model.get("path") or model.get("source") or "?"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>srlm report: {e(run.method)} - {e(run.root.name)}</title>",
        f"<style>{CSS}</style></head><body>",
        f"<h1>srlm report: {e(run.method)}</h1>",
        f'<p class="meta">run directory <code>{e(str(run.root.resolve()))}</code> &middot; '
        f"model <code>{e(str(model_name))}</code> &middot; "
        f"{len([it for it in run.iterations if it.t > 0])} iteration(s) &middot; "
        f"built {e(time.strftime('%Y-%m-%d %H:%M:%S'))}</p>",
        f'<p class="meta">Rebuild with <code>python -m srlm.report {e(str(run.root))}</code>.</p>',
    ]
    parts += _summary_table(run)
    parts.append('<h2 id="figures">Figures</h2>')
    if not figures:
        parts.append("<p>No figure could be drawn from this run's files.</p>")
    for f in figures:
        data = base64.b64encode(f.png).decode("ascii")
        parts += [
            f'<figure id="fig-{e(f.name)}">',
            f"<h3>{e(f.title)}</h3>",
            f'<img id="img-{e(f.name)}" alt="{e(f.title)}" src="data:image/png;base64,{data}">',
            f"<figcaption>{e(f.caption)} <code>report/{e(f.name)}.png</code></figcaption>",
            "</figure>",
        ]
    parts += _pairs_table(pairs)
    if skipped:
        parts.append('<h2 id="skipped">Left out</h2><ul class="skipped">')
        parts += [f"<li>{e(s)}</li>" for s in skipped]
        parts.append("</ul>")
    if run.config:
        parts += [
            '<h2 id="config">Config</h2>',
            "<details><summary>resolved config (config.yaml)</summary>",
            f'<pre class="config">{e(yaml.safe_dump(run.config, sort_keys=False))}</pre></details>',
        ]
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _summary_table(run: Run) -> list[str]:
    rows = [
        iteration_row(it.t, {s: {"stats": st} for s, st in it.stages.items()})
        for it in run.iterations
    ]
    if not rows:
        return [
            '<h2 id="summary">Per iteration</h2>',
            "<p>No iteration has finished a stage yet.</p>",
        ]
    cols = [c for c in COLUMNS if any(r.get(c[1]) is not None for r in rows)]
    evals = sorted({k for r in rows for k in r if k.startswith("eval/") and _is_number(r[k])})
    cols += [(k, k, "{:.3f}") for k in evals]
    out = ['<h2 id="summary">Per iteration</h2>', '<table class="summary"><thead><tr>']
    out += [f"<th>{_esc(h)}</th>" for h, _, _ in cols]
    out.append("</tr></thead><tbody>")
    for r in rows:
        out.append(
            "<tr>"
            + "".join(f"<td>{_esc(format_cell(r.get(k), fmt))}</td>" for _, k, fmt in cols)
            + "</tr>"
        )
    out.append("</tbody></table>")
    return out


def _pairs_table(pairs: list[dict]) -> list[str]:
    out = ['<h2 id="pairs">Example pairs</h2>']
    if not pairs:
        return out + ["<p>This run has no pairs.jsonl with pairs.</p>"]
    out.append(
        f"<p>Up to {EXAMPLES_PER_ITERATION} pairs per iteration, spread over its pairs.jsonl; "
        "long texts are cut, with the whole text one click away.</p>"
    )
    out.append(
        '<table class="pairs"><colgroup><col style="width:4%"><col style="width:20%">'
        '<col style="width:21%"><col style="width:21%"><col style="width:22%"><col style="width:12%">'
        "</colgroup><thead><tr><th>iter</th><th>prompt</th><th>chosen</th><th>rejected</th>"
        "<th>judge's words</th><th>details</th></tr></thead><tbody>"
    )
    for p in pairs:
        shown = "".join(_said(lbl, txt) for lbl, txt, folded in p["judge"] if not folded)
        more = [_said(lbl, txt) for lbl, txt, folded in p["judge"] if folded]
        judge = shown or "-"
        if more:
            judge += f"<details><summary>{len(more)} more judgement(s)</summary>{''.join(more)}</details>"
        details = "<br>".join(f"<b>{_esc(k)}</b> {_esc(v)}" for k, v in p["details"])
        out.append(
            f'<tr class="pair"><td>{p["iteration"]}</td><td>{_text_cell(p["prompt"])}</td>'
            f'<td class="chosen">{_text_cell(p["chosen"])}</td>'
            f'<td class="rejected">{_text_cell(p["rejected"])}</td>'
            f'<td class="judge"><div>{judge}</div></td><td class="details">{details}</td></tr>'
        )
    out.append("</tbody></table>")
    return out


def _said(label: str, text: str) -> str:
    return f"<p><b>{_esc(label)}:</b> {_text_cell(text)}</p>"


def _text_cell(text: str) -> str:
    if len(text) <= SHOWN_CHARS:
        return f'<div class="t">{_esc(text)}</div>'
    return (
        f'<div class="t">{_esc(text[:SHOWN_CHARS])}&hellip;</div>'
        f"<details><summary>all {len(text)} characters</summary>"
        f'<div class="t">{_esc(text)}</div></details>'
    )


def _esc(text) -> str:
    return html.escape(str(text), quote=True)


# ---------------------------------------------------------------- entry points
def _matplotlib_missing() -> str | None:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return "all figures: matplotlib is not installed (pip install 'srlm[report]')"
    return None


def write_report(run_dir: str | Path, out_dir: str | Path | None = None) -> Path:
    """Build RUN_DIR/report/index.html and one PNG per figure; return the HTML file's path."""
    run = load_run(run_dir)
    missing = _matplotlib_missing()
    figures, skipped = ([], [missing]) if missing else build_figures(run)
    out = Path(out_dir) if out_dir is not None else run.root / "report"
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.png"):  # a figure the run no longer has must not linger
        old.unlink()
    for f in figures:
        tmp = out / f".{f.name}.png.tmp"
        tmp.write_bytes(f.png)
        tmp.replace(out / f"{f.name}.png")
    index = out / "index.html"
    atomic_write_text(index, render_html(run, figures, skipped, example_pairs(run)))
    return index


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m srlm.report",
        description="Build the HTML report (and PNG figures) of a srlm run directory.",
    )
    parser.add_argument("run_dir", help="the run directory (holds config.yaml and iter_NN/)")
    parser.add_argument("--out", help="where to write the report (default: RUN_DIR/report)")
    args = parser.parse_args(argv)
    try:
        path = write_report(args.run_dir, args.out)
    except RunDirError as err:
        print(f"srlm.report: error: {err}", file=sys.stderr)
        return 2
    print(f"report: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
