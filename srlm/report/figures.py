"""The report's figures: matplotlib drawings of what srlm.report.load read, each returned as PNG
bytes with its title and caption, and a note for each figure the run has no data for."""

from __future__ import annotations

import io
import math
import re
from collections import Counter
from dataclasses import dataclass

from srlm.report import load
from srlm.report.load import Run, is_number

# Rates in [0, 1] that say whether a judge (or an answer format) can be trusted.
HEALTH_KEY = re.compile(
    r"(parse_fail\w*rate|parse_error\w*rate|position_bias|flip_rate|order_consistency|format_rate)$"
)
COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"]


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


def fig_score_histograms(panels: dict[str, dict[int, tuple[list[float], int]]]) -> Figure | None:
    """Judge scores per panel (load.judge_scores): label -> iteration -> (scores, unparsed)."""
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


def fig_labelled_pair_scores(
    per_iter: dict[int, tuple[list[float], list[float]]],
) -> Figure | None:
    """The policy's scores of the labelled pairs' chosen and rejected responses, per model."""
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


def fig_verdicts(panels: dict[str, dict[int, Counter]]) -> Figure | None:
    """Pairwise verdicts: thinking-judge executions and evaluations, meta-judge winners."""
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


def fig_pair_lengths(data: dict[str, dict[int, list[float]]]) -> Figure | None:
    """Token lengths of the pairs' sides (load.pair_lengths): label -> iteration -> lengths."""
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


def fig_score_margins(per_iter: dict[int, list[float]]) -> Figure | None:
    """Chosen-minus-rejected judge scores of the answer pairs, per iteration."""
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


def fig_training(steps: list[tuple[int, dict]], warm: set[int]) -> Figure | None:
    """Per-step training curves from each iteration's checkpoint/metrics.jsonl: ``steps`` as
    (iteration, metrics row) in training order, ``warm`` the warm-start iterations."""
    if not steps:
        return None
    panels = [
        ("loss", ["loss"], False),
        ("DPO implicit reward margin (chosen - rejected)", ["rewards/margin"], True),
        ("DPO implicit rewards", ["rewards/chosen", "rewards/rejected"], True),
        ("pair accuracy (batch)", ["rewards/accuracy"], True),
        # The online regimes' steps (srlm.training.online): shown when the rows have them.
        ("mean reward of the step's samples", ["sample_accuracy", "score_mean"], False),
        ("GRPO: KL to the reference, clipped share", ["grpo/kl", "grpo/clip_fraction"], False),
        ("sampler's -log-prob per token (entropy estimate)", ["grpo/sampled_nll"], False),
        ("response length (tokens)", ["response_tokens"], False),
        ("judge health", ["reward_parse_failure_rate", "reward_tie_rate"], False),
        (
            "seconds per step",
            ["generation_seconds", "train_seconds", "sync_seconds", "step_seconds"],
            False,
        ),
    ]
    shown = []
    for title, keys, preference_only in panels:
        # The warm start is supervised: its "rewards" have no rejected side and mean nothing.
        rows = [(i, t, r) for i, (t, r) in enumerate(steps) if not (preference_only and t in warm)]
        keys = [k for k in keys if any(is_number(r.get(k)) for _, _, r in rows)]
        if keys:
            shown.append((title, keys, rows))
    fig = _new_figure(6 * min(2, len(shown)), 3.2 * math.ceil(len(shown) / 2))
    starts = {}
    for i, (t, _) in enumerate(steps):
        starts.setdefault(t, i)
    rows_n, cols = _grid(len(shown), 2)
    for p, (title, keys, rows) in enumerate(shown):
        ax = fig.add_subplot(rows_n, cols, p + 1)
        for k, key in enumerate(keys):
            pts = [(i, float(r[key])) for i, _, r in rows if is_number(r.get(key))]
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
        "rewards are the DPO implicit rewards beta * log(pi/pi_ref) of the batch. Online "
        "runs add each step's reward, KL, response length, judge health and time.",
        _png(fig),
    )


def build_figures(run: Run) -> tuple[list[Figure], list[str]]:
    """The figures this run's files allow, and a note for each one left out."""
    series = load.stage_series(run)
    figures, skipped = [], []

    def add(fig: Figure | None, why_not: str) -> None:
        if fig is None:
            skipped.append(why_not)
        else:
            figures.append(fig)

    evaluation = series.get("evaluate", {})
    judge = {k: v for k, v in evaluation.items() if k.startswith("judge_") and "/" not in k}
    answers = {k: v for k, v in evaluation.items() if k in ANSWER_KEYS}
    # Nested stats (RewardBench's per-subset accuracies, up to 23 of them) would crowd the
    # curves; they stay in stages.json.
    decoded = {k: v for k, v in evaluation.items() if k.startswith("decode_")}
    own = {
        k: v
        for k, v in evaluation.items()
        if not k.startswith(("judge_", "decode_")) and k not in ANSWER_KEYS and "/" not in k
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
    for what, caption in (
        ("accuracy", "accuracy on the held-out questions (eval.questions)"),
        ("tokens", "tokens generated per answer, intermediate steps included"),
    ):
        chosen = {k: v for k, v in decoded.items() if k.endswith(f"_{what}")}
        add(
            fig_metric_curves(
                f"decoders_{what}",
                f"Decoders: {what}",
                f"Direct against the run's System-2 decoder (inference=...): {caption}, "
                "per iteration.",
                chosen,
            )
            if chosen
            else None,
            f"decoders ({what}): no decoder comparison in the evaluate stage",
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
        fig_labelled_pair_scores(load.labelled_pair_scores(run)),
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
        fig_score_histograms(load.judge_scores(run)),
        "judge-score histograms: no judgements.jsonl / eval.jsonl with scores",
    )
    add(
        fig_verdicts(load.verdict_counts(run)),
        "pairwise verdicts: no executions.jsonl, eval.jsonl verdicts or meta_judgements.jsonl",
    )
    add(
        fig_score_margins(load.score_margins(run)),
        "judge-score margins: pairs.jsonl has no chosen_score/rejected_score",
    )
    add(
        fig_pair_lengths(load.pair_lengths(run)),
        "chosen/rejected lengths: pairs.jsonl has no chosen_tokens/rejected_tokens",
    )
    add(fig_training(*load.training_steps(run)), "training curves: no checkpoint/metrics.jsonl")
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


def matplotlib_missing() -> str | None:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return "all figures: matplotlib is not installed (pip install 'srlm[report]')"
    return None
