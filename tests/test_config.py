"""Every config file in the repo composes and validates; user mistakes get clear messages."""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from srlm.compose import CONF_DIR, compose, validate
from srlm.config import Config
from srlm.errors import ConfigError

GROUPS = sorted(
    p.name for p in CONF_DIR.iterdir() if p.is_dir() and p.name not in ("hydra", "experiment")
)
OPTIONS = [(group, f.stem) for group in GROUPS for f in sorted((CONF_DIR / group).glob("*.yaml"))]
EXPERIMENTS = sorted(p.stem for p in (CONF_DIR / "experiment").rglob("*.yaml"))


def test_every_group_has_options():
    assert {
        "method",
        "model",
        "reward",
        "optimizer",
        "rollout",
        "trainer",
        "data",
        "logger",
    } <= set(GROUPS)


def test_default_config_validates():
    cfg = validate(compose([]))
    assert isinstance(cfg, Config)
    assert cfg.method.name == "self_reward"
    assert cfg.model.source == "embedded:smollm2-135m-instruct"


@pytest.mark.parametrize("group,option", OPTIONS, ids=[f"{g}={o}" for g, o in OPTIONS])
def test_every_option_composes(group, option):
    overrides = [f"{group}={option}"]
    if group == "rollout" and option == "vllm":
        pytest.importorskip("vllm")
    if group == "reward":
        # A reward fits some methods only (tests/test_cross_product.py has the whole table):
        # it must validate with at least one.
        from srlm.methods import method_names

        fits = []
        for method in method_names():
            try:
                validate(compose([*overrides, f"method={method}"]))
                fits.append(method)
            except ConfigError as e:
                assert f"method={method}" in str(e) and f"reward={option}" in str(e), str(e)
        assert fits, f"reward={option} fits no method"
        return
    cfg = compose(overrides)
    validate(cfg)


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_every_experiment_composes(name):
    validate(compose([f"experiment={name}"]))


def test_yaml_files_parse_into_their_schema():
    # Every YAML of every group, parsed on its own (not only through composition).
    for group, option in OPTIONS:
        text = (CONF_DIR / group / f"{option}.yaml").read_text()
        assert OmegaConf.create(text) is not None


@pytest.mark.parametrize(
    "override,needle",
    [
        (["optimizer.beta=-1"], "optimizer.beta=-1.0: must be > 0"),
        (["method.samples_per_prompt=1"], "method.samples_per_prompt=1"),
        (["rollout.engine=sglang"], "rollout.engine='sglang': allowed values are vllm, hf"),
        (["reward.sampling.top_p=1.5"], "reward.sampling.top_p=1.5"),
        (["trainer.precision=16-mixed"], "trainer.precision=16-mixed with trainer.accelerator=cpu"),
        (["optimizer.lr_end=1.0"], "optimizer.lr_end=1.0"),
        (
            ["trainer.strategy=deepspeed"],
            "trainer.strategy='deepspeed': allowed values are auto, ddp, fsdp",
        ),
        (["trainer.strategy=fsdp"], "trainer.strategy=fsdp needs GPUs"),
        (
            ["trainer=fsdp", "trainer.lora.enabled=true"],
            "LoRA is not supported with trainer.strategy=fsdp",
        ),
        (["trainer=ddp", "trainer.num_nodes=0"], "trainer.num_nodes=0: must be >= 1"),
        (
            ["reward.score_mode=guess"],
            "reward.score_mode='guess': allowed values are parse, expected",
        ),
        (["reward=judge_model", "reward.model.dtype=int8"], "reward.model.dtype='int8'"),
        (
            ["reward=pairwise_judge", "reward.rollout.engine=hf"],
            "reward.rollout.engine='hf': the judge's own",
        ),
        (["reward=reward_model", "reward.head_reduce=max"], "reward.head_reduce='max'"),
    ],
)
def test_bad_values_name_the_key(override, needle):
    with pytest.raises(ConfigError) as e:
        validate(compose(override))
    assert needle in str(e.value)


def test_cli_unknown_option_lists_valid_ones(srlm_cli):
    p = srlm_cli(["method=selfreward"])
    assert p.returncode != 0
    assert "Could not find 'method/selfreward'" in p.stderr
    assert "self_reward" in p.stderr
    assert "Traceback" not in p.stderr


def test_cli_typo_and_wrong_type(srlm_cli):
    p = srlm_cli(["method.samples_per_prompts=3"])
    assert p.returncode != 0 and "samples_per_prompts" in p.stderr and "Traceback" not in p.stderr
    p = srlm_cli(["method.samples_per_prompt=four"])
    assert p.returncode != 0 and "method.samples_per_prompt" in p.stderr and "four" in p.stderr
    assert "Traceback" not in p.stderr


def test_cli_range_error_is_one_line(srlm_cli, tmp_path):
    p = srlm_cli(["optimizer.beta=0", f"run_dir={tmp_path}/r"])
    assert p.returncode == 2
    assert p.stderr.strip() == "srlm: error: optimizer.beta=0.0: must be > 0"
    assert not (tmp_path / "r" / "config.yaml").exists()  # refused before anything was made


def test_cli_help_lists_groups(srlm_cli):
    p = srlm_cli(["--help"])
    assert p.returncode == 0
    for group in ("method:", "model:", "reward:", "optimizer:", "rollout:", "trainer:"):
        assert group in p.stdout
    assert "smollm2_135m" in p.stdout


def test_cli_cfg_job_prints_resolved_config(srlm_cli):
    p = srlm_cli(["--cfg", "job", "optimizer.beta=0.05"])
    assert p.returncode == 0
    cfg = OmegaConf.create(p.stdout)
    assert cfg.optimizer.beta == 0.05
    assert cfg.run_dir is None  # decided by Hydra from the command line (conf/config.yaml)


def test_several_nodes_outside_slurm_are_refused_before_models_load(
    srlm_cli, tmp_path, monkeypatch
):
    for var in ("SLURM_JOB_ID", "SLURM_JOB_NODELIST", "SLURM_NODELIST"):
        monkeypatch.delenv(var, raising=False)
    p = srlm_cli(["trainer=cpu_ddp", "trainer.num_nodes=2", f"run_dir={tmp_path}/r", "logger=none"])
    assert p.returncode == 2, p.stderr
    assert "trainer.num_nodes=2 needs a SLURM allocation of 2 nodes" in p.stderr
    assert "Traceback" not in p.stderr
    assert not (tmp_path / "r" / "config.yaml").exists()


def test_missing_data_file_is_reported_before_models_load(srlm_cli, tmp_path):
    p = srlm_cli(
        [f"data.seed_instructions={tmp_path}/nope.jsonl", f"run_dir={tmp_path}/r", "logger=none"]
    )
    assert p.returncode == 2
    assert "nope.jsonl" in p.stderr and "Traceback" not in p.stderr


def test_malformed_data_row_names_file_and_line(srlm_cli, tmp_path):
    bad = tmp_path / "seed.jsonl"
    bad.write_text('{"instruction": "Name three colours."}\n{"instruction": oops}\n')
    p = srlm_cli([f"data.seed_instructions={bad}", f"run_dir={tmp_path}/r", "logger=none"])
    assert p.returncode == 2
    assert f"{bad}:2" in p.stderr and "Traceback" not in p.stderr


def test_conf_tree_has_no_stray_files():
    stray = [
        p
        for p in Path(CONF_DIR).rglob("*")
        if p.is_file() and p.suffix not in (".yaml",) and p.name != ".keep"
    ]
    assert not stray


def test_run_directory_names_fit_a_file_name():
    from srlm.compose import MAX_DIR_NAME, dir_name

    short = "optimizer.beta=0.05"
    assert dir_name(short) == short
    long = ",".join(f"method.some_setting_{i}=value_{i}" for i in range(12))
    name = dir_name(long)
    # Still one name per command: the start of the overrides and a hash of all of them.
    assert len(name.encode()) <= MAX_DIR_NAME and name.startswith(long[:100])
    assert dir_name(long) == name and dir_name(long + "x") != name
