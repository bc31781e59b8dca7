"""`python -m srlm.inference`: decoders side by side on the same held-out questions.

    python -m srlm.inference                                   # every decoder, every task
    python -m srlm.inference --tasks add2_opinion --decoders direct,s2a --questions 20
    python -m srlm.inference --out DIR model=... rollout=hf reward@inference.reward=self_judge

An inference key (inference.n=8, reward@inference.reward=NAME, inference.reward.samples=1)
applies to the decoders that have it.

One engine serves the model (model=..., rollout=..., as for `python -m srlm`) for every
decoder and task, so the wall times compare. For each task (srlm.data.system2_tasks, the test
split every run's evaluation uses) it prints a table: accuracy (and the mean score, precision
for list answers), the gain over direct, tokens and sequences generated per answer, seconds
per answer, the share of answers with a step that could not be read. The answers, with every
intermediate text, and the table go to --out (default runs/system2/<model>).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from srlm.errors import SrlmError, error_lines

DECODERS = ("direct", "self_consistency", "s2a", "cove", "bsm", "best_of_n")


def compare(tasks: list[str], decoders: list[str], n: int, overrides: list[str], out: Path | None):
    from srlm.compose import compose_or_explain, validate
    from srlm.inference.base import Query, get_decoder
    from srlm.inference.questions import decode_questions, task_questions
    from srlm.models import resolve_model_dir
    from srlm.rollout.engines import make_engine
    from srlm.rundir import write_json, write_jsonl

    # Every decoder's config first: a bad one fails before the model loads.
    configs = {
        d: validate(compose_or_explain([f"inference={d}", *_for_decoder(d, overrides)]))
        for d in decoders
    }
    first = configs[decoders[0]]
    out = out or Path("runs") / "system2" / first.model.name
    engine = make_engine(
        resolve_model_dir(first.model.source, first.model.path), first.model, first.rollout
    )
    table: dict[str, dict[str, dict]] = {}
    try:
        for task in tasks:
            qs = task_questions(task, n)
            queries = [Query(qs.ask(r), r["answer"]) for r in qs.rows]
            for d in decoders:
                cfg = configs[d]
                rows, figures = decode_questions(get_decoder(cfg), qs, queries, lambda: engine)
                table.setdefault(task, {})[d] = figures
                write_jsonl(out / task / f"{d}.jsonl", rows)
                print(f"[srlm] {task} {d}: {_line(figures)}", flush=True)
    finally:
        engine.close()
    write_json(out / "table.json", table)
    text = format_table(table)
    (out / "table.md").write_text(text)
    print("\n" + text)
    print(f"answers and their intermediate texts: {out}")
    return table


def _for_decoder(decoder: str, overrides: list[str]) -> list[str]:
    """The overrides that apply to `decoder`: one of an inference key (inference.n=8,
    reward@inference.reward=self_judge) only if the decoder has that key, so that one command
    can set best_of_n's reward beside decoders that have none."""
    from dataclasses import fields

    from srlm.inference.base import decoder_class

    keys = {f.name for f in fields(decoder_class(decoder).schema)}
    out = []
    for o in overrides:
        target = o.split("=", 1)[0].removeprefix("reward@")
        if target.startswith("inference.") and target.split(".")[1] not in keys:
            continue
        out.append(o)
    return out


def _line(f: dict) -> str:
    return (
        f"accuracy {f['accuracy']:.3f}, {f['tokens']:.0f} tokens/answer, "
        f"{f['seconds']:.0f} s, failures {f['failure_rate']:.2f}"
    )


def format_table(table: dict[str, dict[str, dict]]) -> str:
    """Markdown, one table per task; the gain is against direct on the same questions."""
    parts = []
    for task, rows in table.items():
        base = rows.get("direct", {})
        lines = [
            f"### {task}",
            "",
            "| decoder | accuracy | score | gain vs direct | tokens/answer | sequences/answer "
            "| s/answer | step failures |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for d, f in rows.items():
            n = max(f.get("questions", 0), 1)
            gain = (
                f"{f['accuracy'] - base['accuracy']:+.3f}"
                if d != "direct" and base.get("accuracy") is not None
                else ""
            )
            lines.append(
                f"| {d} | {f['accuracy']:.3f} | {f['score']:.3f} | {gain} | {f['tokens']:.0f} "
                f"| {f['calls']:.1f} | {f['seconds'] / n:.2f} | {f['failure_rate']:.2f} |"
            )
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"


def main(argv: list[str] | None = None) -> int:
    from srlm.data.system2_tasks import CONTROL_TASK, TASKS

    ap = argparse.ArgumentParser(
        prog="python -m srlm.inference", description=__doc__.split("\n\n")[0]
    )
    ap.add_argument("--tasks", default=",".join((CONTROL_TASK, *TASKS)))
    ap.add_argument("--decoders", default=",".join(DECODERS))
    ap.add_argument("--questions", type=int, default=40)
    ap.add_argument("--out", type=Path)
    ap.add_argument("overrides", nargs="*", help="KEY=VALUE as for python -m srlm")
    args = ap.parse_intermixed_args(argv)
    tasks = [t for t in args.tasks.split(",") if t]
    decoders = [d for d in args.decoders.split(",") if d]
    try:
        from srlm.data import system2_tasks
        from srlm.errors import ConfigError

        bad = [t for t in tasks if not system2_tasks.is_task(t)]
        if bad:
            raise ConfigError(
                f"--tasks: no task {', '.join(bad)}; tasks: {', '.join((CONTROL_TASK, *TASKS))}"
            )
        if args.questions < 1:
            raise ConfigError(f"--questions={args.questions}: must be >= 1")
        compare(tasks, decoders, args.questions, args.overrides, args.out)
    except SrlmError as e:
        print("\n".join(error_lines(e)), file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
