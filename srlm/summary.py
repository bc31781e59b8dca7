"""The per-iteration summary table printed at the end of a run."""

from __future__ import annotations

from pathlib import Path

COLUMNS = [
    # (header, key, format)
    ("iter", "iteration", "{:d}"),
    ("prompts", "prompts", "{:d}"),
    ("samples", "samples", "{:d}"),
    ("judge fail", "parse_failures", "{:d}"),
    ("fail %", "parse_failure_rate", "{:.0%}"),
    ("pairs", "pairs", "{:d}"),
    ("mean score", "mean_score", "{:.2f}"),
    ("chosen tok", "chosen_tokens", "{:.0f}"),
    ("rejected tok", "rejected_tokens", "{:.0f}"),
    ("loss", "loss", "{:.4f}"),
    ("margin", "margin_after", "{:+.4f}"),
    ("pair acc", "pair_accuracy_after", "{:.0%}"),
    # Checkpoint selection (method.select_checkpoints): the training step kept, 0 = M_t itself.
    ("kept step", "selected_step", "{:d}"),
]


EVAL_STAGES = ("evaluate", "winrates")


def iteration_row(t: int, stages: dict[str, dict]) -> dict:
    """Flatten the stage statistics of one iteration into one row."""
    row: dict = {"iteration": t}
    for name, record in stages.items():
        stats = record.get("stats", {})
        # Evaluation metrics keep their own prefix so they never shadow a training number.
        row |= {f"eval/{k}": v for k, v in stats.items()} if name in EVAL_STAGES else stats
    return row


# The shared evaluation (srlm/eval) reports many numbers; the table shows these, the report
# and stages.json have the rest. A method's own evaluation metrics are all shown.
SHARED_EVAL_SHOWN = (
    "win_rate_vs_m0",
    "tie_rate_vs_m0",
    "soft_win_rate_vs_m0",
    "lc_win_rate_vs_m0",
    "win_rate_vs_prev",
    "soft_win_rate_vs_prev",
    "lc_win_rate_vs_prev",
    "judge_accuracy",
    "judge_position_consistent_accuracy",
    "judge_rewardbench",
    "response_tokens",
    "thought_tokens",
)
SHARED_EVAL_HIDDEN = ("eval_prompts", "unanswered_rate")


def _shown_eval(key: str) -> bool:
    name = key.removeprefix("eval/")
    if name in SHARED_EVAL_SHOWN:
        return True
    if name.startswith("decode_"):
        # Each decoder's accuracy and tokens per answer; the report's decoder table has the rest.
        return name.endswith(("_accuracy", "_tokens"))
    # RewardBench's four section scores would widen the table by four columns; its overall
    # score (rewardbench) stays, and the report shows the sections.
    return not (
        "_vs_" in name or name.startswith(("judge_", "rewardbench_")) or name in SHARED_EVAL_HIDDEN
    )


def format_summary(rows: list[dict]) -> str:
    evals = sorted(
        {
            k
            for r in rows
            for k in r
            if k.startswith("eval/")
            and isinstance(r[k], (int, float))
            and not isinstance(r[k], bool)
            and _shown_eval(k)
        },
        key=lambda k: (SHARED_EVAL_SHOWN.index(k[5:]) if k[5:] in SHARED_EVAL_SHOWN else -1, k),
    )
    cols = [c for c in COLUMNS if any(r.get(c[1]) is not None for r in rows)]
    cols += [(k.removeprefix("eval/"), k, "{:.3f}") for k in evals]
    cells = [[c[0] for c in cols]]
    for r in rows:
        cells.append([format_cell(r.get(key), fmt) for _, key, fmt in cols])
    widths = [max(len(row[i]) for row in cells) for i in range(len(cols))]
    lines = ["  ".join(v.rjust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def format_cell(value, fmt: str) -> str:
    if value is None:
        return "-"
    try:
        return fmt.format(value)
    except (ValueError, TypeError):
        return str(value)


def report_line(report: Path | None, run_dir: str | Path) -> str:
    """The summary's last line: where the run can be read at a glance."""
    if report is None:
        return f"report: not written (see the warning above); build it with python -m srlm.report {run_dir}"
    return f"report: {report}  (open in a browser)"
