"""`python -m srlm.evaluate RUN_DIR [KEY=VALUE ...] [--redo]`: evaluate the models of an
existing run (M_0 and every trained iteration) without retraining, then rebuild its summary
and report.

The run's own config (RUN_DIR/config.yaml) is used, with KEY=VALUE overrides for the
evaluation only (``eval.max_prompts=8``, ``reward@eval.judge=thinking_judge``,
``eval.judge.model.source=/path/to/judge``): anything else would describe another run.
Evaluations already finished are kept unless ``--redo`` is given; each model's answers are
generated once and reused by the later iterations' win rates.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from omegaconf import OmegaConf

from srlm.compose import compose, validate
from srlm.config import Config
from srlm.errors import ConfigError, RunDirError, SrlmError, error_lines
from srlm.preflight import preflight
from srlm.rundir import RunDir, read_yaml_mapping, write_json

EVAL_STAGES = ("evaluate", "winrates")


def load_run_config(run_dir: Path, overrides: list[str]) -> Config:
    """The config a run was made with, plus evaluation overrides, typed and checked."""
    saved_path = run_dir / "config.yaml"
    if run_dir.exists() and not run_dir.is_dir():
        raise RunDirError(f"{run_dir} is a file, not a directory: pass the run_dir of an srlm run")
    if not saved_path.exists():
        raise ConfigError(
            f"{saved_path} is missing: {run_dir} is not an srlm run directory, or its "
            "config.yaml was removed: restore it"
        )
    restore = "it records the config the run was made with, which evaluating it needs: restore it"
    saved = read_yaml_mapping(saved_path, restore)
    for group in ("method", "reward"):
        if not isinstance(saved.get(group), dict) or not saved[group].get("name"):
            raise RunDirError(f"{saved_path}: no {group}.name; {restore}")
    bad = [o for o in overrides if not _is_eval_override(o)]
    if bad:
        raise ConfigError(
            f"{' '.join(bad)}: only evaluation settings (eval.*, method.eval_*, reward@eval.judge=..., "
            "inference=...) "
            "may change when evaluating an existing run"
        )
    groups = [f"method={saved['method']['name']}", f"reward={saved['reward']['name']}"]
    groups += [o for o in overrides if o.startswith(("reward@eval.judge=", "reward@inference."))]
    teacher = saved["method"].get("teacher")
    if isinstance(teacher, dict) and teacher.get("name"):
        # A distilling method's teacher: a decoder composed into the method's settings.
        groups.append(f"inference@method.teacher={teacher['name']}")
    chosen = [o for o in overrides if o.startswith("inference=")]
    if chosen:
        # Another decoder: the run's own decoder settings belong to the one it had.
        saved.pop("inference", None)
        groups += chosen
    elif (saved.get("inference") or {}).get("name"):
        groups.append(f"inference={saved['inference']['name']}")
    saved_judge = (saved.get("eval") or {}).get("judge") or {}
    if saved_judge.get("name") and not any(o.startswith("reward@eval.judge=") for o in overrides):
        groups.append(f"reward@eval.judge={saved_judge['name']}")
    cfg = compose(groups)
    dropped: list[str] = []
    saved = _known_keys(cfg, saved, "", dropped)
    if dropped:
        print(
            f"[srlm] note: {saved_path} has settings this version of srlm no longer has, left out: "
            f"{', '.join(dropped)}",
            file=sys.stderr,
        )
    # Free-form dicts (field maps) take the run's own keys; every other key was checked above.
    OmegaConf.set_struct(cfg, False)
    try:
        merged = OmegaConf.merge(cfg, saved)
    except Exception as e:  # a value of the wrong type: omegaconf's message names the key
        raise RunDirError(f"{saved_path}: {_first_line(e)}; {restore}") from None
    OmegaConf.set_struct(merged, True)
    try:
        merged.merge_with(
            OmegaConf.from_dotlist(
                [o for o in overrides if not o.startswith(("reward@", "inference="))]
            )
        )
    except Exception as e:  # omegaconf's message names the key
        raise ConfigError(str(e).strip()) from None
    merged.run_dir = str(run_dir)
    return validate(merged)


def _first_line(e: Exception) -> str:
    return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__


def _known_keys(schema, saved: dict, prefix: str, dropped: list[str]) -> dict:
    """`saved` without the keys the typed config no longer has (a run made by an older srlm);
    free-form dicts (field maps) are kept whole."""
    from dataclasses import is_dataclass

    if not is_dataclass(OmegaConf.get_type(schema)):
        return saved
    out = {}
    for key, value in saved.items():
        if key not in schema:
            dropped.append(prefix + key)
        elif isinstance(value, dict) and OmegaConf.is_dict(schema[key]):
            out[key] = _known_keys(schema[key], value, f"{prefix}{key}.", dropped)
        else:
            out[key] = value
    return out


def _is_eval_override(o: str) -> bool:
    return o.startswith(
        (
            "eval.",
            "reward@eval.judge=",
            "+eval.",
            "method.eval_",
            "inference=",
            "inference.",
            "reward@inference.reward=",
        )
    )


def evaluate_run(config: Config, redo: bool = False) -> list[dict]:
    from srlm.models import resolve_model_dir
    from srlm.runner import evaluate_model, evaluation_on, kept_engine
    from srlm.summary import format_summary, iteration_row

    if not evaluation_on(config):
        raise ConfigError(
            "eval.enabled=false and the method has no evaluation of its own: nothing to do"
        )
    # The run's config.yaml stays as the run wrote it: the evaluation settings are not part of
    # the experiment, and each evaluation's numbers are in its stages.json entries.
    run_dir = RunDir(config.run_dir)
    models = trained_models(run_dir, resolve_model_dir(config.model.source, config.model.path))
    if redo:
        for t, _ in models:
            run_dir.forget(t, EVAL_STAGES)
    initial = models[0][1]
    rows = []
    # One engine for all the models where the run would keep one (rollout.keep_engine).
    with kept_engine(config):
        for t, model in models:
            evaluate_model(config, run_dir, t, model, initial)
            rows.append(iteration_row(t, run_dir.stages(t)))
    write_json(Path(config.run_dir) / "summary.json", rows)
    print("\n" + format_summary(rows))
    return rows


def trained_models(run_dir: RunDir, base: str) -> list[tuple[int, str]]:
    """(t, model directory) of M_0 and of every iteration whose training finished, the way
    the runner chose them (an iteration without pairs carries the model over unchanged). A
    checkpoint that the record says was trained but that is gone is a RunDirError naming it."""
    warm = run_dir.trained_model(0)
    current = str(warm) if warm is not None else base
    out = [(0, current)]
    t = 1
    while run_dir.finished(t, "train"):
        trained = run_dir.trained_model(t)
        if trained is not None:
            current = str(trained)
        out.append((t, current))
        t += 1
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m srlm.evaluate", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("overrides", nargs="*", help="evaluation settings, KEY=VALUE (eval.*)")
    parser.add_argument(
        "--redo", action="store_true", help="evaluate again what was already evaluated"
    )
    args = parser.parse_intermixed_args(argv)  # --redo may stand anywhere
    try:
        config = load_run_config(args.run_dir, args.overrides)
        preflight(config)  # eval data, the judge's model, this machine: before any model loads
        evaluate_run(config, redo=args.redo)
        report = _report(args.run_dir)
    except SrlmError as e:
        print("\n".join(error_lines(e)), file=sys.stderr)
        return 2
    from srlm.summary import report_line

    print(report_line(report, args.run_dir))
    return 0


def _report(run_dir: Path) -> Path | None:
    """The rebuilt report. A broken run file is an SrlmError naming it, like every other file
    this command reads; anything else only warns, as at the end of a run
    (srlm.runner._write_report), since the evaluation it shows is already written."""
    from srlm.report import write_report

    try:
        return write_report(run_dir)
    except SrlmError:
        raise
    except Exception as e:
        print(
            f"[srlm] warning: the report could not be written ({type(e).__name__}: {e})",
            file=sys.stderr,
        )
        return None


if __name__ == "__main__":
    sys.exit(main())
