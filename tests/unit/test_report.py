"""The run report (srlm.report), built from hand-written run directories in the shapes the
methods write (stages.json, pairs.jsonl, judgements.jsonl, eval.jsonl, checkpoint/metrics.jsonl)."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from srlm import report
from srlm.errors import RunDirError
from srlm.report import load, main, write_report
from srlm.summary import report_line

pytest.importorskip("matplotlib")

NASTY = '<script>alert("x")</script> & <b>bold</b>'
CHROMIUM = "/usr/bin/chromium"


def _write(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in obj))
    else:
        path.write_text(json.dumps(obj))


def _stages(**stats) -> dict:
    return {name: {"finished": "2026-01-01T00:00:00", "stats": s} for name, s in stats.items()}


def _train_stats(margin: float) -> dict:
    return {
        "chosen_logp_change": 1.0,
        "rejected_logp_change": -2.0,
        "margin_before": 0.0,
        "margin_after": margin,
        "pair_accuracy_after": 0.75,
        "precision": "bf16-mixed",
        "examples": 4,
        "steps": 2,
        "loss": 0.6,
        "loss_first": 0.69,
        "loss_last": 0.5,
    }


def _metrics(n: int) -> list[dict]:
    return [
        {
            "loss": 0.7 - 0.1 * i,
            "rewards/chosen": 0.1 * i,
            "rewards/rejected": -0.1 * i,
            "rewards/margin": 0.2 * i,
            "rewards/accuracy": 0.5,
            "step": i,
            "epoch": 0,
            "lr": 1e-5,
        }
        for i in range(n)
    ]


def judged_run(root: Path) -> Path:
    """A Self-Rewarding run of two iterations, its texts full of HTML."""
    (root).mkdir(parents=True)
    (root / "config.yaml").write_text(
        "method:\n  name: self_reward\nmodel:\n  path: embedded:tiny\n"
    )
    for t in (1, 2):
        d = root / f"iter_{t:02d}"
        responses = ["answer 0 " + "long text " * 100, f"answer 1 {NASTY}"]
        judgements = [
            {
                "prompt_id": f"{t}-0",
                "sample": j,
                "instruction": f"Explain {NASTY}",
                "response": responses[j],
                "tokens": 10 + 5 * j,
                "judgements": [f"The answer is fine {NASTY}.\nScore: {3 + j}", "no score here"],
                "scores": [3.0 + j, None],
                "score": 3.0 + j,
            }
            for j in range(2)
        ]
        _write(d / "judgements.jsonl", judgements)
        _write(
            d / "pairs.jsonl",
            [
                {
                    "prompt_id": f"{t}-0",
                    "instruction": f"Explain {NASTY}",
                    "chosen": responses[1],
                    "rejected": responses[0],
                    "chosen_score": 4.0,
                    "rejected_score": 3.0,
                    "chosen_tokens": 15,
                    "rejected_tokens": 10,
                }
            ],
        )
        _write(d / "checkpoint" / "metrics.jsonl", _metrics(3))
        _write(
            d / "stages.json",
            _stages(
                prompts={
                    "prompts": 1,
                    "rounds": 1,
                    "generated": 3,
                    "unsuitable": 0,
                    "similar": 2,
                    "bad_length": 0,
                },
                samples={"samples": 2, "mean_tokens": 12.5, "truncated": 0},
                judgements={
                    "judgements": 4,
                    "parse_failures": 2,
                    "parse_failure_rate": 0.5,
                    "unscored_responses": 0,
                    "mean_score": 3.5,
                },
                pairs={
                    "pairs": 1,
                    "ties_dropped": 0,
                    "too_few_scored": 0,
                    "chosen_tokens": 15.0,
                    "rejected_tokens": 10.0,
                    "chosen_score": 4.0,
                    "rejected_score": 3.0,
                },
                train=_train_stats(0.5 * t),
            ),
        )
    return root


def irpo_run(root: Path) -> Path:
    """An IRPO run: evaluate at iterations 0-1, a rule instead of a judge."""
    root.mkdir(parents=True)
    (root / "config.yaml").write_text("method:\n  name: irpo\n")
    _write(
        root / "iter_00" / "stages.json",
        _stages(evaluate={"accuracy": 0.5, "format_rate": 1.0, "mean_tokens": 26.0}),
    )
    d = root / "iter_01"
    _write(
        d / "rewards.jsonl",
        [
            {
                "question_id": "q1",
                "sample": 0,
                "question": "What is 2 + 3?",
                "gold": "5",
                "response": "Final answer: 5",
                "tokens": 5,
                "pred": "5",
                "reward": 1,
            },
            {
                "question_id": "q1",
                "sample": 1,
                "question": "What is 2 + 3?",
                "gold": "5",
                "response": "Final answer: 6",
                "tokens": 6,
                "pred": "6",
                "reward": 0,
            },
        ],
    )
    _write(
        d / "pairs.jsonl",
        [
            {
                "question_id": "q1",
                "question": "What is 2 + 3?",
                "chosen": "Final answer: 5",
                "rejected": "Final answer: 6",
                "chosen_sample": 0,
                "rejected_sample": 1,
                "chosen_tokens": 5,
                "rejected_tokens": 6,
            }
        ],
    )
    _write(
        d / "stages.json",
        _stages(
            samples={
                "questions": 1,
                "samples": 2,
                "temperature": 0.8,
                "mean_tokens": 5.5,
                "truncated": 0,
            },
            rewards={
                "sample_accuracy": 0.5,
                "sample_format_rate": 1.0,
                "questions_all_correct": 0,
                "questions_all_wrong": 0,
            },
            pairs={
                "pairs": 1,
                "questions_with_pairs": 1,
                "skipped_no_winner": 0,
                "skipped_no_loser": 0,
                "gold_chosen": 0,
                "chosen_tokens": 5.0,
                "rejected_tokens": 6.0,
            },
            train=_train_stats(1.2) | {"nll": 0.1},
            evaluate={"accuracy": 0.8, "format_rate": 1.0, "mean_tokens": 25.0},
        ),
    )
    return root


def thinking_judge_run(root: Path) -> Path:
    root.mkdir(parents=True)
    (root / "config.yaml").write_text("method:\n  name: thinking_judge\n")
    judge_eval = {
        "triples": 2,
        "acc_first": 0.5,
        "acc_second": 0.0,
        "pos_consistent_acc": 0.0,
        "flip_rate": None,
        "parse_fail_rate": 0.5,
        "eval_tokens": 64.0,
    }
    _write(root / "iter_00" / "stages.json", _stages(evaluate=judge_eval))
    _write(
        root / "iter_00" / "eval.jsonl",
        [
            {"triple_id": "eval-0", "order": o, "raw": "x", "verdict": v, "correct": v == "A"}
            for o, v in (("AB", "A"), ("BA", None))
        ],
    )
    d = root / "iter_01"
    _write(
        d / "executions.jsonl",
        [
            {
                "triple_id": "1-0",
                "plan_id": 0,
                "order": "AB",
                "sample": k,
                "raw": "r",
                "verdict": v,
                "correct": v == "A",
            }
            for k, v in enumerate(["A", "B", None, "tie"])
        ],
    )
    _write(
        d / "pairs.jsonl",
        [
            {
                "triple_id": "1-0",
                "plan_id": 0,
                "order": "AB",
                "instruction": "Which is right?",
                "answer_a": "yes",
                "answer_b": "no",
                "chosen": "[Start of Evaluation Plan]...[[A]]",
                "rejected": "[Start of Evaluation Plan]...[[B]]",
                "chosen_verdict": "A",
                "rejected_verdict": "B",
                "chosen_tokens": 40,
                "rejected_tokens": 50,
            }
        ],
    )
    _write(
        d / "stages.json",
        _stages(
            executions={
                "samples": 4,
                "parse_failures": 1,
                "parse_failure_rate": 0.25,
                "execution_accuracy": 0.25,
                "verdicts": {"A": 1, "B": 1, "None": 1, "tie": 1},
            },
            pairs={
                "pairs": 1,
                "pairs_by_order": {"AB": 1, "BA": 0},
                "chosen_tokens": 40.0,
                "rejected_tokens": 50.0,
            },
            train={"skipped": "no training examples"},
            evaluate=judge_eval | {"acc_first": 1.0},
        ),
    )
    return root


@pytest.fixture(scope="module")
def judged(tmp_path_factory) -> tuple[Path, str]:
    """The judged run and its page, built once for the tests that only read it."""
    run = judged_run(tmp_path_factory.mktemp("judged") / "run")
    return run, write_report(run).read_text()


def _img_ids(page: str) -> set[str]:
    return set(re.findall(r'<img id="img-([\w-]+)"', page))


# ---------------------------------------------------------------- the page and its figures
def test_judged_run_has_every_judge_figure_and_its_pngs(judged):
    run, page = judged
    assert (run / "report" / "index.html").read_text() == page
    ids = _img_ids(page)
    assert {
        "judge_health",
        "judge_scores",
        "score_margins",
        "pair_lengths",
        "training",
        "stage_judgements",
        "stage_train",
    } <= ids
    assert "eval" not in ids and "verdicts" not in ids  # no evaluate stage, no pairwise judge
    for name in ids:
        png = (run / "report" / f"{name}.png").read_bytes()
        assert png.startswith(b"\x89PNG")
        # The page embeds exactly the bytes of the PNG file next to it.
        assert f'src="data:image/png;base64,{base64.b64encode(png).decode()}"' in page
    assert "evaluation curves: no method-specific metrics" in page  # a figure left out is listed
    # The summary table, then the example pairs with the judge's own words.
    assert '<table class="summary">' in page and "mean score" in page
    assert page.count('<tr class="pair">') == 2
    assert "on chosen, judgement 1 of 2 (score 4)" in page
    assert "on rejected, judgement 1 of 2 (score 3)" in page
    assert "2 more judgement(s)" in page  # each side's second judge sample is folded
    assert "all 1009 characters" in page  # the long rejected text is cut, with the whole one kept


def test_texts_are_html_escaped(judged):
    page = judged[1]
    assert "<script>" not in page and "<b>bold</b>" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;" in page


def test_page_is_self_contained(judged):
    page = judged[1]
    links = re.findall(r'(?:src|href)="([^"]*)"', page)
    assert links and all(u.startswith("data:image/png;base64,") for u in links)
    assert "<script" not in page and "http" not in re.sub(
        r"<pre class=\"config\">.*?</pre>", "", page, flags=re.S
    )


def test_irpo_run_shows_accuracy_and_the_rule_verdicts(tmp_path):
    run = irpo_run(tmp_path / "run")
    page = write_report(run).read_text()
    ids = _img_ids(page)
    assert {"eval", "judge_health", "pair_lengths", "stage_rewards", "stage_train"} <= ids
    assert "judge_scores" not in ids and "training" not in ids
    assert "judge-score histograms: no judgements.jsonl" in page
    assert "training curves: no checkpoint/metrics.jsonl" in page
    assert "<th>eval/accuracy</th>" in page and "<td>0.800</td>" in page
    assert "final answer 5, gold 5: reward 1" in page and "final answer 6, gold 5: reward 0" in page


def test_thinking_judge_run_shows_verdicts_and_judge_accuracy(tmp_path):
    page = write_report(thinking_judge_run(tmp_path / "run")).read_text()
    ids = _img_ids(page)
    assert {"eval", "verdicts", "judge_health", "stage_executions"} <= ids
    assert "[Assistant A]\nyes" in page  # the prompt shows both answers the judge compared
    assert "chosen A, rejected B (correct: A)" in page


def test_series_take_nested_counts_and_skip_flags_and_texts():
    stats = {
        "pairs": 3,
        "train_judge": True,
        "precision": "bf16",
        "x": None,
        "nan": float("nan"),
        "verdicts": {"A": 2, "None": 1},
    }
    assert report.numeric_stats(stats) == {"pairs": 3.0, "verdicts/A": 2.0, "verdicts/None": 1.0}


def test_run_without_artifacts_still_gets_a_page(tmp_path):
    root = tmp_path / "run"
    root.mkdir()
    (root / "config.yaml").write_text("method:\n  name: tpo\n")
    page = write_report(root).read_text()
    assert "srlm report: tpo" in page and "No iteration has finished a stage yet." in page
    assert "This run has no pairs.jsonl" in page and not _img_ids(page)


def test_rebuild_removes_figures_the_run_no_longer_has(tmp_path):
    run = irpo_run(tmp_path / "run")
    stale = run / "report" / "judge_scores.png"
    stale.parent.mkdir()
    stale.write_bytes(b"old")
    write_report(run)
    assert not stale.exists() and (run / "report" / "eval.png").exists()


# ---------------------------------------------------------------- broken run files
def test_corrupt_line_names_file_and_line_and_keeps_the_old_report(tmp_path):
    run = irpo_run(tmp_path / "run")
    old_page = write_report(run).read_text()
    pairs = run / "iter_01" / "pairs.jsonl"
    with open(pairs, "a") as f:
        f.write("\n")  # a blank line: read_jsonl skips it, the line count does not
        f.write('{"question_id": "q1", "chosen": "cut off\n')
    with pytest.raises(RunDirError) as err:
        write_report(run)
    assert str(err.value).startswith(f"{pairs}:3: not valid JSON (Invalid control character")
    # Nothing was written: the report of before the file broke is still whole.
    assert (run / "report" / "index.html").read_text() == old_page
    assert (run / "report" / "eval.png").exists()


def test_row_without_a_needed_field_names_file_line_and_field(tmp_path):
    run = judged_run(tmp_path / "run")
    pairs = run / "iter_02" / "pairs.jsonl"
    rows = [json.loads(line) for line in pairs.read_text().splitlines()]
    rows += [dict(rows[0]), {k: v for k, v in rows[0].items() if k != "chosen_tokens"}]
    _write(pairs, rows)
    with pytest.raises(RunDirError) as err:
        write_report(run)
    assert str(err.value) == (
        f"{pairs}:3: no field 'chosen_tokens' (the report reads it for the length figure); "
        "stage 'pairs' of iteration 2 is recorded finished with it: restore it, or run it "
        f"again: delete the entries from 'pairs' on in {run / 'iter_02' / 'stages.json'} and "
        "every later iter_NN/, then rerun the same command"
    )


@pytest.mark.parametrize(
    ("name", "row", "field", "purpose"),
    [
        ("judgements.jsonl", {"prompt_id": "x", "sample": 9}, "scores", "judge-score histograms"),
        ("checkpoint/metrics.jsonl", {"step": 9}, "loss", "training curves"),
        (
            "pairs.jsonl",
            {"kind": "judge", "chosen": "c"},  # a judge pair: no lengths or margin
            "rejected",
            "example pairs",
        ),
    ],
)
def test_each_figure_names_the_field_it_misses(tmp_path, name, row, field, purpose):
    run = judged_run(tmp_path / "run")
    path = run / "iter_01" / name
    lines = path.read_text().splitlines()
    # The broken row first, so the line number says it is the file's first line.
    path.write_text("\n".join([json.dumps(row), *lines]) + "\n")
    with pytest.raises(RunDirError, match="no field") as err:
        write_report(run)
    assert str(err.value).startswith(f"{path}:1: no field '{field}'")
    assert f"for the {purpose})" in str(err.value)


def test_bad_stages_json_and_a_non_object_row_are_named(tmp_path):
    run = irpo_run(tmp_path / "run")
    stages = run / "iter_01" / "stages.json"
    good = stages.read_text()
    stages.write_text('{\n  "samples": {"stats": {}},\n  "pairs": \n}\n')
    with pytest.raises(RunDirError) as err:
        report.load_run(run)
    assert str(err.value).startswith(f"{stages}:4: not valid JSON (Expecting value")
    stages.write_text('{"samples": {"finished": "2026-01-01T00:00:00"}}')
    with pytest.raises(RunDirError, match=r"stage 'samples' has no field 'stats'"):
        report.load_run(run)
    stages.write_text(good)
    rewards = run / "iter_01" / "rewards.jsonl"
    rewards.write_text(rewards.read_text() + '["not", "a", "row"]\n')
    with pytest.raises(RunDirError) as err:
        write_report(run)
    assert str(err.value).startswith(f"{rewards}:3: not a JSON object but list; stage 'rewards'")


def test_fields_a_method_never_writes_leave_their_figure_out_quietly(tmp_path):
    """No row with the field (an older run, a method without it) is no error; nor are a
    Meta-Rewarding run's judge pairs, which have scores and texts but no token counts."""
    run = judged_run(tmp_path / "run")
    for t in (1, 2):
        pairs = run / f"iter_{t:02d}" / "pairs.jsonl"
        actor = json.loads(pairs.read_text()) | {"kind": "actor"}
        no_lengths = {k: v for k, v in actor.items() if not k.endswith("_tokens")}
        judge = no_lengths | {"kind": "judge", "sample": 0, "chosen_score": 5.0}
        _write(pairs, [actor, judge] if t == 1 else [no_lengths])
    (run / "iter_02" / "checkpoint" / "metrics.jsonl").unlink()  # training not finished yet
    loaded = report.load_run(run)
    assert load.pair_lengths(loaded) == {"chosen": {1: [15.0]}, "rejected": {1: [10.0]}}
    assert load.score_margins(loaded) == {1: [1.0], 2: [1.0]}  # the judge pair is no margin
    steps, warm = load.training_steps(loaded)
    assert [t for t, _ in steps] == [1, 1, 1] and warm == set()
    page = write_report(run).read_text()
    assert page.count('<tr class="pair">') == 3
    assert "pair_lengths" in _img_ids(page)


# ---------------------------------------------------------------- command and runner hooks
def test_command_builds_the_report(tmp_path, capsys):
    run = irpo_run(tmp_path / "run")
    assert main([str(run)]) == 0
    assert f"report: {run / 'report' / 'index.html'}" in capsys.readouterr().out


def test_command_names_a_path_that_is_not_a_run_directory(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    for bad in (tmp_path / "missing", tmp_path / "empty"):
        assert main([str(bad)]) == 2
        err = capsys.readouterr().err
        assert f"srlm: error: {bad} is not a run directory" in err
    assert not (tmp_path / "empty" / "report").exists()


def test_command_on_a_broken_run_prints_one_error_line(tmp_path):
    run = irpo_run(tmp_path / "run")
    pairs = run / "iter_01" / "pairs.jsonl"
    pairs.write_text(pairs.read_text() + "{not json\n")
    out = subprocess.run(
        [sys.executable, "-m", "srlm.report", str(run)],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
        timeout=120,
    )
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.splitlines() == [
        f"srlm: error: {pairs}:2: not valid JSON "
        "(Expecting property name enclosed in double quotes, column 2); stage 'pairs' of "
        f"iteration 1 is recorded finished with it: restore it, or run it again: delete the "
        f"entries from 'pairs' on in {run / 'iter_01' / 'stages.json'} and every later "
        "iter_NN/, then rerun the same command"
    ]
    assert not (run / "report").exists()


def test_runner_warns_and_goes_on_when_the_report_fails(tmp_path, monkeypatch, capsys):
    from srlm import runner

    def broken(run_dir):
        raise ValueError("disk full")

    monkeypatch.setattr(report, "write_report", broken)
    assert runner._write_report(str(tmp_path)) is None
    assert (
        "warning: the report could not be written (ValueError: disk full)"
        in capsys.readouterr().err
    )
    assert report_line(None, tmp_path).startswith("report: not written")
    assert report_line(tmp_path / "report" / "index.html", tmp_path).startswith(
        f"report: {tmp_path / 'report' / 'index.html'}"
    )


# ---------------------------------------------------------------- in a real browser
# Run on the page after loading: how many images there are and how many the browser decoded.
def test_chromium_path_is_what_setup_installs():
    setup = (Path(__file__).resolve().parents[2] / "scripts" / "setup.sh").read_text()
    assert CHROMIUM in setup


def test_evaluated_run_shows_win_rates_judge_accuracy_and_answers(tmp_path):
    """A run with the shared evaluate stage (srlm/eval): M_0 and two iterations."""
    root = judged_run(tmp_path / "run")
    for t in (0, 1, 2):
        d = root / f"iter_{t:02d}"
        stages = json.loads((d / "stages.json").read_text()) if (d / "stages.json").exists() else {}
        stages |= _stages(
            evaluate={
                "eval_prompts": 4,
                "response_tokens": 40.0 + t,
                "unanswered_rate": 0.0,
                "judge_n": 3,
                "judge_accuracy": 0.3 + 0.2 * t,
                "judge_tie_rate": 0.1,
                "judge_score_histogram": {"2": 3, "4": 3},
            }
        )
        if t:
            stages |= _stages(
                winrates={
                    "win_rate_vs_m0": 0.5 + 0.1 * t,
                    "lc_win_rate_vs_m0": 0.45 + 0.1 * t,
                    "tie_rate_vs_m0": 0.2,
                    "loss_rate_vs_m0": 0.3 - 0.1 * t,
                    **(
                        {
                            "win_rate_vs_prev": 0.55,
                            "lc_win_rate_vs_prev": 0.5,
                            "tie_rate_vs_prev": 0.1,
                            "loss_rate_vs_prev": 0.35,
                        }
                        if t == 2
                        else {}
                    ),
                }
            )
        _write(d / "stages.json", stages)
        _write(
            d / "eval_judge.jsonl",
            [{"pair_id": str(i), "chosen": 4.0, "rejected": 2.0 + t} for i in range(3)],
        )
    page = write_report(root).read_text()
    ids = _img_ids(page)
    assert {"win_rates", "eval_judge", "labelled_pair_scores", "eval_answers"} <= ids
    assert "eval" not in ids  # no method-specific evaluation metrics in this run
    # The summary table carries the win rates; stage figures leave the evaluation stages to theirs.
    assert "<th>eval/win_rate_vs_m0</th>" in page and "<td>0.700</td>" in page
    assert "stage_winrates" not in ids and "stage_evaluate" not in ids
