"""The run report: one self-contained HTML page, and the same figures as PNG files, built from a
run directory's files alone, so it can be (re)built for any run, finished or not::

    python -m srlm.report RUN_DIR    ->  RUN_DIR/report/index.html and RUN_DIR/report/*.png

Figures are PNG images embedded as base64 ``data:`` URIs, so the page needs no network, no
script and no other file: it can be mailed or copied off a cluster as it is. Every figure is
drawn from whatever the run wrote (``iter_NN/stages.json`` and the stage JSONL files); a figure
whose data a method does not produce (IRPO has no judge scores) is left out and listed, with
the reason, at the end of the page.

Three parts: ``load`` reads the run directory into plain data (a present but broken file is a
RunDirError naming it), ``figures`` draws the figures from that data, ``page`` assembles the
HTML and writes the report.
"""

from __future__ import annotations

from srlm.report.figures import Figure, build_figures
from srlm.report.load import Iteration, Run, example_pairs, load_run, numeric_stats, stage_series
from srlm.report.page import main, render_html, write_report

__all__ = [
    "Figure",
    "Iteration",
    "Run",
    "build_figures",
    "example_pairs",
    "load_run",
    "main",
    "numeric_stats",
    "render_html",
    "stage_series",
    "write_report",
]
