"""The report's HTML page: the summary table, the figures embedded as base64 PNGs, the example
pairs and the config, on one page with no script and no link; and write_report, which builds
it (with the PNG files next to it) for a run directory."""

from __future__ import annotations

import argparse
import base64
import html
import sys
import time
from pathlib import Path

import yaml

from srlm.errors import SrlmError
from srlm.report.figures import Figure, build_figures, matplotlib_missing
from srlm.report.load import (
    EXAMPLES_PER_ITERATION,
    OVERHEAD,
    WORK,
    Run,
    example_pairs,
    is_number,
    load_run,
    overhead_share,
    time_breakdown,
)
from srlm.rundir import atomic_write_text, write_error
from srlm.summary import COLUMNS, format_cell, iteration_row

SHOWN_CHARS = 500

CSS = """
body {
  font-family: system-ui, sans-serif; margin: 1.5em auto; max-width: 1400px; color: #222;
  padding: 0 1em;
}
h1 { margin-bottom: 0.2em; }
h2 { border-bottom: 1px solid #ddd; padding-bottom: 0.2em; margin-top: 1.6em; }
.meta { color: #555; } figure { margin: 1em 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { color: #555; font-size: 0.9em; margin-top: 0.3em; }
table { border-collapse: collapse; font-size: 0.85em; }
th, td { border: 1px solid #ddd; padding: 4px 6px; vertical-align: top; }
th { background: #f4f4f4; position: sticky; top: 0; }
table.summary td { text-align: right; font-variant-numeric: tabular-nums; }
table.pairs { width: 100%; table-layout: fixed; }
table.pairs td div.t {
  white-space: pre-wrap; word-wrap: break-word; max-height: 22em; overflow: auto;
}
td.chosen { background: #f3faf3; } td.rejected { background: #fdf3f3; }
.judge p { margin: 0 0 0.5em 0; } .judge b, .details b { font-weight: 600; }
td.judge > div { max-height: 30em; overflow: auto; }
td.details { font-size: 0.85em; overflow-wrap: anywhere; }
ul.skipped { color: #666; }
pre.config { background: #f7f7f7; padding: 0.8em; overflow: auto; font-size: 0.8em; }
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
    parts += _decoders_table(run)
    parts += _time_table(run)
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
    evals = sorted({k for r in rows for k in r if k.startswith("eval/") and is_number(r[k])})
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


DECODER_COLUMNS = (
    ("accuracy", "accuracy", "{:.3f}"),
    ("score", "score", "{:.3f}"),
    ("accuracy_gain", "gain vs direct", "{:+.3f}"),
    ("tokens", "tokens/answer", "{:.0f}"),
    ("calls", "sequences/answer", "{:.1f}"),
    ("seconds", "seconds", "{:.0f}"),
    ("failure_rate", "step failures", "{:.2f}"),
)


def _decoders_table(run: Run) -> list[str]:
    """Direct and the run's System-2 decoder on the same held-out questions, per model."""
    rows = []
    for it in run.iterations:
        stats = it.stages.get("evaluate") or {}
        names = sorted(
            {
                k[len("decode_") : -len("_accuracy")]
                for k in stats
                if k.startswith("decode_")
                and k.endswith("_accuracy")
                and not k.endswith("_accuracy_gain")
            },
            key=lambda d: (d != "direct", d),
        )
        for d in names:
            rows.append(
                [f"M_{it.t}", d]
                + [format_cell(stats.get(f"decode_{d}_{k}"), fmt) for k, _, fmt in DECODER_COLUMNS]
            )
    if not rows:
        return []
    out = [
        '<h2 id="decoders">Decoders on held-out questions</h2>',
        "<p>Each model answers the same questions (eval.questions) with direct and with the "
        "run's decoder; score is the mean per-answer score (precision for list answers); "
        "iter_NN/eval_decode_&lt;decoder&gt;.jsonl holds every answer and intermediate text.</p>",
        '<table class="summary"><thead><tr><th>model</th><th>decoder</th>',
    ]
    out += [f"<th>{_esc(h)}</th>" for _, h, _ in DECODER_COLUMNS]
    out.append("</tr></thead><tbody>")
    out += ["<tr>" + "".join(f"<td>{_esc(c)}</td>" for c in r) + "</tr>" for r in rows]
    out.append("</tbody></table>")
    return out


def _time_table(run: Run) -> list[str]:
    """Each phase's seconds, split into the work and what surrounds it (time_breakdown)."""
    rows = time_breakdown(run.root)
    if not rows:
        return []
    cols = ["phase", "iteration", "seconds", *WORK, *OVERHEAD]
    total = {"phase": "all", "iteration": ""} | {k: sum(r[k] for r in rows) for k in cols[2:]}
    share = overhead_share(rows)
    out = [
        '<h2 id="time">Where the time went</h2>',
        f"<p>Seconds per phase process (RUN_DIR/phases.jsonl, stages.json); outside the work "
        f"(start-up, engine start, model load, save): {share:.0%}.</p>",
        '<table class="summary"><thead><tr>',
    ]
    out += [f"<th>{_esc(c.replace('_', ' '))}</th>" for c in cols]
    out.append("</tr></thead><tbody>")
    for r in [*rows, total]:
        cells = [r[c] if isinstance(r[c], str) else f"{r[c]:.0f}" for c in cols[2:]]
        out.append(
            "<tr>"
            + "".join(f"<td>{_esc(v)}</td>" for v in [r["phase"], r["iteration"], *cells])
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
        '<col style="width:21%"><col style="width:21%"><col style="width:22%">'
        '<col style="width:12%">'
        "</colgroup><thead><tr><th>iter</th><th>prompt</th><th>chosen</th><th>rejected</th>"
        "<th>judge's words</th><th>details</th></tr></thead><tbody>"
    )
    for p in pairs:
        shown = "".join(_said(lbl, txt) for lbl, txt, folded in p["judge"] if not folded)
        more = [_said(lbl, txt) for lbl, txt, folded in p["judge"] if folded]
        judge = shown or "-"
        if more:
            judge += (
                f"<details><summary>{len(more)} more judgement(s)</summary>"
                f"{''.join(more)}</details>"
            )
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
def write_report(run_dir: str | Path, out_dir: str | Path | None = None) -> Path:
    """Build RUN_DIR/report/index.html and one PNG per figure; return the HTML file's path."""
    run = load_run(run_dir)
    missing = matplotlib_missing()
    figures, skipped = ([], [missing]) if missing else build_figures(run)
    # Everything is read before anything is written: a run file that turns out broken leaves
    # the previous report as it was.
    page = render_html(run, figures, skipped, example_pairs(run))
    out = Path(out_dir) if out_dir is not None else run.root / "report"
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise write_error(out, err, "create") from None
    # Every figure is written to a temporary file first: a disk that fills up half-way leaves
    # the previous report whole and no temporary file.
    written: list[Path] = []
    for f in figures:
        tmp = out / f".{f.name}.png.tmp"
        written.append(tmp)
        try:
            tmp.write_bytes(f.png)
        except OSError as err:
            for t in written:
                t.unlink(missing_ok=True)
            raise write_error(out / f"{f.name}.png", err) from None
    try:
        for old in out.glob("*.png"):  # a figure the run no longer has must not linger
            old.unlink()
        for f, tmp in zip(figures, written, strict=True):
            tmp.replace(out / f"{f.name}.png")
    except OSError as err:
        raise write_error(out, err) from None
    index = out / "index.html"
    atomic_write_text(index, page)
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
    except SrlmError as err:  # a broken or foreign run directory: its message says which file
        print(f"srlm: error: {err}", file=sys.stderr)
        return 2
    print(f"report: {path}")
    return 0
