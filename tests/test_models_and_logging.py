"""Model resolution fails early and clearly offline; wandb works offline."""

from __future__ import annotations

import pytest

from srlm.compose import compose, validate
from srlm.errors import SetupError
from srlm.models import resolve_model_dir


def test_hub_model_offline_names_the_id_and_the_fix(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(SetupError) as e:
        resolve_model_dir("meta-llama/Meta-Llama-3-8B-Instruct")
    msg = str(e.value)
    assert "meta-llama/Meta-Llama-3-8B-Instruct" in msg and "model.path=" in msg


def test_local_path_without_config_is_refused(tmp_path):
    with pytest.raises(SetupError, match="no config.json"):
        resolve_model_dir("meta-llama/Meta-Llama-3-8B-Instruct", local_path=str(tmp_path))


def test_unknown_embedded_model(tmp_path):
    with pytest.raises(SetupError, match="embedded models: smollm2-135m-instruct"):
        resolve_model_dir("embedded:gpt5")


def test_embedded_model_is_a_plain_hf_checkpoint():
    from pathlib import Path

    d = Path(resolve_model_dir("embedded:smollm2-135m-instruct"))
    assert (d / "model.safetensors").exists() and (d / "config.json").exists()
    assert "quantization_config" not in (d / "config.json").read_text()


def test_cli_offline_hub_model_fails_before_any_work(srlm_cli, tmp_path):
    p = srlm_cli(
        ["model=llama3_8b_instruct", "rollout=hf", "logger=none", f"run_dir={tmp_path}/r"],
        env={"HF_HUB_OFFLINE": "1"},
    )
    assert p.returncode == 2, p.stderr[-2000:]
    assert "meta-llama/Meta-Llama-3-8B-Instruct" in p.stderr and "Traceback" not in p.stderr


def test_wandb_offline_logs_the_plain_config_and_iterations(tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    from srlm.rundir import RunDir, write_jsonl
    from srlm.tracking import WandbLogger

    cfg = validate(compose([f"run_dir={tmp_path}/run", "rollout=hf", "logger=wandb"]))
    run = RunDir(cfg.run_dir)
    run.bind(cfg)
    write_jsonl(
        run.iter_dir(1) / "pairs.jsonl", [{"instruction": "q", "chosen": "a", "rejected": "b"}]
    )
    logger = WandbLogger(cfg, run)
    assert logger.run.settings.mode == "offline"
    assert logger.run.config["optimizer"]["beta"] == 0.1  # a plain dict, not OmegaConf nodes
    logger.log_iteration(1, run, {"iteration": 1, "pairs": 1, "margin_after": 0.5}, 1.0)
    logger.finish([])
    assert list((run.root / "wandb").glob("offline-run-*"))
