"""MATH triples for the thinking judge (method.triples): a correct vs an incorrect solution.

EvalPlanner (Saha et al. 2025, arXiv 2501.18099) trains its judge on 17,588 WildChat triples
reused from the Self-Taught Evaluator plus 4,141 MATH triples whose chosen and rejected answers
are a correct and an incorrect solution sampled from Mixtral 8x22B Instruct. This script makes
triples of the second kind from sampled solutions:

    python scripts/math_triples.py SAMPLES.jsonl OUT.jsonl [--math-verify auto|on|off]

SAMPLES.jsonl holds one sampled solution per line, ``{"problem", "answer", "response"}``: the
problem, its gold final answer (text or a number; for MATH, the content of the reference
solution's last ``\\boxed{}``) and one sampled solution. Lines with the same problem text are
samples of one problem. A solution is correct when its final answer (the last
"Final answer: ..." or else the last ``\\boxed{}``) matches the gold answer under
reward=verifiable's check (srlm.rewards.verifiable.check_answer: srlm's rule, then math-verify).
For each problem, in file order:

- chosen = its first correct solution;
- rejected = its first solution whose answer is readable and wrong. A solution without a
  readable answer is never used: it is wrong by its format alone, and the paper's rejected
  answers are wrong solutions;
- no triple when it has no correct or no wrong solution.

OUT.jsonl gets one ``{"instruction", "chosen", "rejected"}`` row per problem that has both (the
problem is the instruction), in the order the problems first appear; the counts go to stderr.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from collections import Counter
from pathlib import Path

from srlm.data import DataError, read_jsonl
from srlm.rewards.verifiable import check_answer, math_verify_enabled

SAMPLE_FIELDS = ["problem", "answer", "response"]


def math_triples(samples: list[dict], use_math_verify: bool) -> tuple[list[dict], dict]:
    """``(triples, counts)`` from sampled solutions (rows of SAMPLES.jsonl), by the rule above.

    Raises DataError when two samples of one problem give different gold answers: the
    labels would depend on which line was read first.
    """
    by_problem: dict[str, list[dict]] = {}
    for s in samples:
        by_problem.setdefault(s["problem"], []).append(s)
    triples, counts = [], Counter(problems=len(by_problem), samples=len(samples))
    for problem, rows in by_problem.items():
        golds = list(dict.fromkeys(str(r["answer"]).strip() for r in rows))
        if len(golds) > 1:
            raise DataError(
                f"the samples of problem {problem[:80]!r} give different gold answers "
                f"{golds}: every sample of one problem must carry the same answer"
            )
        chosen = rejected = None
        for r in rows:
            pred, ok = check_answer(r["response"], golds[0], use_math_verify)
            if pred is None:
                counts["unreadable_answers"] += 1
            elif ok:
                counts["correct"] += 1
                chosen = chosen or r["response"]
            else:
                counts["wrong"] += 1
                rejected = rejected or r["response"]
        if chosen is None:
            counts["problems_without_correct"] += 1
        elif rejected is None:
            counts["problems_without_wrong"] += 1
        else:
            triples.append({"instruction": problem, "chosen": chosen, "rejected": rejected})
    counts["triples"] = len(triples)
    return triples, dict(counts)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("samples", type=Path, help="JSONL of {problem, answer, response}, one a line")
    ap.add_argument(
        "out", type=Path, help="where to write the {instruction, chosen, rejected} rows"
    )
    ap.add_argument(
        "--math-verify",
        choices=["auto", "on", "off"],
        default="auto",
        help="as reward.math_verify: auto = when installed (default), on = required, off = rule",
    )
    args = ap.parse_args(argv)
    use_math_verify = math_verify_enabled(args.math_verify)
    if args.math_verify == "on" and importlib.util.find_spec("math_verify") is None:
        print(
            "math_triples: error: --math-verify on, but math-verify is not installed "
            "(pip install math-verify), or use --math-verify auto",
            file=sys.stderr,
        )
        return 2
    try:
        samples = read_jsonl(args.samples, required=SAMPLE_FIELDS)
        triples, counts = math_triples(samples, use_math_verify)
    except DataError as e:
        print(f"math_triples: error: {e}", file=sys.stderr)
        return 2
    if not triples:
        print(
            f"math_triples: error: no problem of {args.samples} has both a correct and a wrong "
            f"solution, so there is no triple to write ({counts}); sample more solutions per "
            "problem",
            file=sys.stderr,
        )
        return 1
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("w", encoding="utf-8") as f:
        for t in triples:
            f.write(json.dumps(t, ensure_ascii=False) + "\n")
    print(f"math_triples: {counts} -> {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
