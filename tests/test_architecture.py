"""The shape the code keeps: the config schema is a leaf, and no srlm modules import each other
in a cycle (scripts/import_graph.py prints the figures)."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT, script_module


def test_the_schema_imports_no_other_part_of_srlm():
    code = "import sys, srlm.config; print(sorted(m for m in sys.modules if m.startswith('srlm')))"
    p = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "['srlm', 'srlm.config', 'srlm.errors']"


def _import_graph():
    return script_module("import_graph")


def test_no_import_cycles():
    graph = _import_graph()
    edges, _ = graph.graph()
    assert graph.cycles(edges) == []
    # The check can fail: a cycle added to the graph is found.
    edges["srlm.config"] = edges["srlm.config"] | {"srlm.runner"}
    assert any("srlm.config" in c for c in graph.cycles(edges))
