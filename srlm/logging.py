"""wandb (offline when there is no API key) or nothing; local files are always written."""

from __future__ import annotations

import os
import uuid

from srlm.config import Config, to_plain
from srlm.rundir import RunDir, read_jsonl


class NullLogger:
    def log_iteration(self, t: int, run: RunDir, row: dict, seconds: float) -> None:
        pass

    def finish(self, rows: list[dict]) -> None:
        pass


class WandbLogger(NullLogger):
    def __init__(self, config: Config, run: RunDir):
        import wandb

        mode = config.logger.mode
        if mode == "auto":
            mode = "online" if os.environ.get("WANDB_API_KEY") else "offline"
        id_file = run.root / "wandb_id"
        if not id_file.exists():
            id_file.write_text(uuid.uuid4().hex[:12])
        self.wandb = wandb
        # A resumed run directory continues the same wandb run.
        self.run = wandb.init(
            project=config.logger.project,
            group=config.logger.group,
            tags=list(config.logger.tags),
            name=run.root.name,
            id=id_file.read_text().strip(),
            resume="allow",
            mode=mode,
            dir=str(run.root),
            config=to_plain(config),  # a plain dict: wandb cannot read OmegaConf nodes
        )

    def log_iteration(self, t, run, row, seconds):
        metrics = {f"iter/{k}": v for k, v in row.items() if isinstance(v, (int, float))}
        metrics["iter/seconds"] = seconds
        pairs = run.iter_dir(t) / "pairs.jsonl"
        if pairs.exists():
            rows = read_jsonl(pairs)[:200]
            if rows:
                cols = list(rows[0])
                metrics["pairs"] = self.wandb.Table(columns=cols, data=[[str(r.get(c)) for c in cols] for r in rows])
        self.run.log(metrics, step=t)

    def finish(self, rows):
        self.run.finish()


def make_logger(config: Config, run: RunDir) -> NullLogger:
    if config.logger.backend == "none" or config.logger.mode == "disabled":
        return NullLogger()
    return WandbLogger(config, run)
