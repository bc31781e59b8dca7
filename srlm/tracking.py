"""wandb (offline when there is no API key) or nothing; local files are always written.

What a run logs at step t (iteration t; step 0 is the warm start and the evaluation of M_0,
when the run has them):

* ``iter/<key>``: every number of the iteration's summary row (stage statistics; the
  held-out evaluation's as ``iter/eval/<key>``), and ``iter/seconds``;
* ``pairs``: the iteration's training pairs, as a table;
* ``samples``: the iteration's sampled responses with their prompt and score, as a table.

Runs of one sweep share a wandb group (:func:`choose_group`).
"""

from __future__ import annotations

import math
import netrc
import os
import uuid
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlparse

from srlm.config import Config, to_plain
from srlm.rundir import RunDir, read_json, read_jsonl

METRIC_PREFIX = "iter/"
# A table is a snapshot for reading, not the data set: the full files stay in the run directory.
TABLE_ROWS = 200
# Where each method keeps its sampled responses, richest first: a file with scores beats the
# raw samples it was made from (judgements: self_reward, tpo, meta_reward; rewards: irpo;
# executions: thinking_judge, whose samples are judgements of a triple).
SAMPLE_FILES = ("judgements.jsonl", "rewards.jsonl", "samples.jsonl", "executions.jsonl")
# Column -> the row keys that fill it, first present non-null one wins (tpo's response is null
# when the output has no separator; then the whole output is shown).
SAMPLE_COLUMNS = {
    "prompt": ("instruction", "question", "prompt", "triple_id"),
    "response": ("response", "output", "raw"),
    "score": ("score", "reward", "correct"),
}


def iteration_metrics(row: dict, seconds: float | None = None) -> dict:
    """The scalar metrics logged for one summary row (srlm.summary.iteration_row)."""
    metrics = {f"{METRIC_PREFIX}{k}": v for k, v in row.items() if isinstance(v, (int, float))}
    if seconds is not None:
        metrics[f"{METRIC_PREFIX}seconds"] = seconds
    return metrics


def sample_rows(iter_dir: Path, limit: int = TABLE_ROWS) -> list[list]:
    """[prompt, response, score] of the first `limit` sampled responses of one iteration."""
    for name in SAMPLE_FILES:
        path = iter_dir / name
        if path.exists():
            return [[_cell(r, col) for col in SAMPLE_COLUMNS] for r in read_jsonl(path)[:limit]]
    return []


def _cell(row: dict, column: str):
    for key in SAMPLE_COLUMNS[column]:
        value = row.get(key)
        if value is None:
            continue
        if column != "score":
            return str(value)
        # One numeric column whether the source wrote a float, a 0/1 reward or a bool.
        try:
            value = float(value)
        except (TypeError, ValueError):
            continue
        return None if math.isnan(value) else value
    return None


def choose_group(
    configured: str | None,
    env: Mapping[str, str],
    multirun_dir: str | None = None,
    sweep_file: str | None = None,
) -> str | None:
    """The wandb group of a run: runs of one sweep share one without the user naming it.

    logger.group, or WANDB_RUN_GROUP, wins. A run started by a wandb agent is grouped by its
    sweep id; a job of a Hydra multirun (`multirun_dir`: its hydra.sweep.dir) by the sweep
    directory's name, followed by the sweep file's name when it came from sweep=NAME, so a
    requeued or resubmitted job lands in the same group. Any other run: no group.
    """
    if configured:
        return configured
    if env.get("WANDB_RUN_GROUP"):
        return env["WANDB_RUN_GROUP"]
    if env.get("WANDB_SWEEP_ID"):
        return f"sweep-{env['WANDB_SWEEP_ID']}"
    if multirun_dir:
        name = Path(multirun_dir).name
        return f"{name}-{sweep_file}" if sweep_file else name
    return None


def hydra_multirun() -> tuple[str | None, str | None]:
    """(hydra.sweep.dir, sweep file) when this process is a job of a Hydra multirun."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized():
        return None, None
    hc = HydraConfig.get()
    if hc.mode != RunMode.MULTIRUN:
        return None, None
    return str(hc.sweep.dir), hc.runtime.choices.get("sweep")


def choose_mode(configured: str, env: Mapping[str, str], has_key: bool) -> str | None:
    """wandb's mode for logger.mode; None lets wandb read WANDB_MODE itself."""
    if configured != "auto":
        return configured
    if env.get("WANDB_MODE"):
        return None
    # An agent's run must reach the server, or the sweep never sees its result.
    return "online" if has_key or env.get("WANDB_SWEEP_ID") else "offline"


def has_api_key(env: Mapping[str, str]) -> bool:
    """WANDB_API_KEY, or the key `wandb login` saved in ~/.netrc for the server."""
    if env.get("WANDB_API_KEY"):
        return True
    host = urlparse(env.get("WANDB_BASE_URL") or "https://api.wandb.ai").hostname
    try:
        return netrc.netrc(env.get("NETRC")).authenticators(host) is not None
    except (OSError, netrc.NetrcParseError):
        return False


class NullLogger:
    def log_iteration(self, t: int, run: RunDir, row: dict, seconds: float) -> dict:
        return {}

    def finish(self, rows: list[dict], report: Path | None = None) -> None:
        pass


class WandbLogger(NullLogger):
    def __init__(self, config: Config, run: RunDir):
        import wandb

        env = os.environ
        self.wandb = wandb
        agent = bool(env.get("WANDB_SWEEP_ID"))
        run_id = None
        if not agent:  # an agent's run has the id the sweep gave it
            id_file = run.root / "wandb_id"
            if not id_file.exists():
                id_file.write_text(uuid.uuid4().hex[:12])
            run_id = id_file.read_text().strip()
        # A resumed run directory continues the same wandb run.
        self.run = wandb.init(
            project=None if agent else config.logger.project,  # the sweep's project
            group=choose_group(config.logger.group, env, *hydra_multirun()),
            tags=list(config.logger.tags),
            name=run.root.name,
            id=run_id,
            resume="allow",
            mode=choose_mode(config.logger.mode, env, has_api_key(env)),
            dir=str(run.root),
            config=to_plain(config),  # a plain dict: wandb cannot read OmegaConf nodes
        )
        # A resumed wandb run holds the iterations logged before; wandb would refuse them again.
        self.first_step = self.run.step

    def log_iteration(self, t, run, row, seconds):
        if t < self.first_step:
            return {}
        if t == 1 and self.first_step == 0:
            self._log_iteration_zero(run)
        metrics = iteration_metrics(row, seconds) | self._tables(run.iter_dir(t))
        self.run.log(metrics, step=t)
        return metrics

    def _log_iteration_zero(self, run: RunDir) -> None:
        from srlm.summary import iteration_row

        stages = run.root / "iter_00" / "stages.json"
        if stages.exists():
            self.run.log(iteration_metrics(iteration_row(0, read_json(stages))), step=0)

    def _tables(self, iter_dir: Path) -> dict:
        tables = {}
        pairs = iter_dir / "pairs.jsonl"
        rows = read_jsonl(pairs)[:TABLE_ROWS] if pairs.exists() else []
        if rows:
            cols = list(rows[0])
            tables["pairs"] = self.wandb.Table(
                columns=cols, data=[[str(r.get(c)) for c in cols] for r in rows]
            )
        samples = sample_rows(iter_dir)
        if samples:
            tables["samples"] = self.wandb.Table(columns=list(SAMPLE_COLUMNS), data=samples)
        return tables

    def finish(self, rows, report: Path | None = None):
        # The report's figures (win rates, judge accuracy, lengths, health ...) as images, so
        # the wandb run shows what the HTML report shows.
        if report is not None:
            figures = sorted(Path(report).parent.glob("*.png"))
            if figures:
                self.run.log({f"report/{f.stem}": self.wandb.Image(str(f)) for f in figures})
        self.run.finish()


def make_logger(config: Config, run: RunDir) -> NullLogger:
    if config.logger.backend == "none" or config.logger.mode == "disabled":
        return NullLogger()
    return WandbLogger(config, run)
