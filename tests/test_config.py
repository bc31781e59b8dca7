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
# Every option of every group, in subdirectories too (reward=default/irpo is an option).
OPTIONS = [
    (group, f.relative_to(CONF_DIR / group).with_suffix("").as_posix())
    for group in GROUPS
    for f in sorted((CONF_DIR / group).rglob("*.yaml"))
]
EXPERIMENTS = sorted(p.stem for p in (CONF_DIR / "experiment").rglob("*.yaml"))
# Group files whose options are chosen by GROUP=OPTION and have a schema (sweep files are
# multirun settings, tested in tests/test_sweeps.py).
SCHEMA_GROUPS = (
    "method",
    "model",
    "reward",
    "optimizer",
    "rollout",
    "trainer",
    "data",
    "logger",
    "eval",
)


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

        name = compose(overrides).reward.name  # reward=default/irpo is reward=verifiable
        fits = []
        for method in method_names():
            try:
                validate(compose([*overrides, f"method={method}"]))
                fits.append(method)
            except ConfigError as e:
                assert f"method={method}" in str(e) and f"reward={name}" in str(e), str(e)
        assert fits, f"reward={option} fits no method"
        return
    if group == "optimizer" and option == "grpo":
        overrides.append("method=irpo")  # the group loss needs a method that scores groups
    cfg = compose(overrides)
    validate(cfg)


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_every_experiment_composes(name):
    validate(compose([f"experiment={name}"]))


def _schema_of(group: str, option: str):
    """The schema a group file composes into: a method's or a reward's own, else the group's."""
    from srlm.compose import GROUP_SCHEMAS, method_schema, reward_schema

    node = compose([f"{group}={option}"])[group]
    if group == "method":
        return method_schema(node.name)
    if group == "reward":
        return reward_schema(node.name)
    return GROUP_SCHEMAS[group]


SCHEMA_OPTIONS = [(g, o) for g, o in OPTIONS if g in SCHEMA_GROUPS]


@pytest.mark.parametrize(
    "group,option", SCHEMA_OPTIONS, ids=[f"{g}={o}" for g, o in SCHEMA_OPTIONS]
)
def test_every_group_file_composes_into_its_schema(group, option):
    node = compose([f"{group}={option}"])[group]
    assert isinstance(OmegaConf.to_object(node), _schema_of(group, option))


def _leaves(d: dict, prefix: str = ""):
    for k, v in d.items():
        if k == "defaults":
            continue
        if isinstance(v, dict) and v:
            yield from _leaves(v, f"{prefix}{k}.")
        else:
            yield f"{prefix}{k}", v


def restated_defaults(text: str, schema_cls) -> list[str]:
    """Keys a group file's text sets to the value its schema already has (stated twice)."""
    import yaml

    schema = OmegaConf.structured(schema_cls)
    out = []
    for key, value in _leaves(yaml.safe_load(text) or {}):
        try:
            default = OmegaConf.select(schema, key, throw_on_missing=True)
        except Exception:  # no default (MISSING), or a key under an untyped node (eval.judge)
            continue
        if OmegaConf.is_config(default):
            default = OmegaConf.to_container(default)
        if default is not None and default == value:
            out.append(f"{key}: {value!r}")
    return out


def test_restated_defaults_are_found():
    from srlm.config import OptimizerConfig, SelfJudgeRewardConfig

    text = "defaults: [x]\nloss: dpo\nlr: 5.0e-6\nmax_grad_norm: 1.0\nbeta: 0.2\n"
    assert restated_defaults(text, OptimizerConfig) == ["max_grad_norm: 1.0"]
    text = "sampling: {temperature: 0.7, top_p: 0.5}\nsamples: 3\n"
    assert restated_defaults(text, SelfJudgeRewardConfig) == [
        "sampling.temperature: 0.7",
        "samples: 3",
    ]


@pytest.mark.parametrize(
    "group,option", SCHEMA_OPTIONS, ids=[f"{g}={o}" for g, o in SCHEMA_OPTIONS]
)
def test_no_group_file_restates_a_schema_default(group, option):
    # One source of each default: the schema (srlm/config.py), or the group file where the
    # group's options differ in it. Experiment files may restate paper values on purpose.
    text = (CONF_DIR / group / f"{option}.yaml").read_text()
    assert restated_defaults(text, _schema_of(group, option)) == [], (
        f"conf/{group}/{option}.yaml restates schema defaults; delete these lines (or change "
        "the schema's default if the value is meant for every option)"
    )


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


def test_lr_iteration_decay_scales_each_iterations_schedule():
    from srlm.config import OptimizerConfig

    opt = OptimizerConfig(loss="dpo_nll", lr=1e-5, lr_end=1e-6, lr_iteration_decay=0.5)
    assert (opt.for_iteration(1).lr, opt.for_iteration(1).lr_end) == (1e-5, 1e-6)
    # Iteration 3: 1e-5 * 0.5^2 = 2.5e-6, decaying to 2.5e-7 within the iteration.
    assert opt.for_iteration(3).lr == pytest.approx(2.5e-6)
    assert opt.for_iteration(3).lr_end == pytest.approx(2.5e-7)
    assert opt.lr == 1e-5  # the config itself is left as it was
    assert OptimizerConfig(loss="dpo", lr=1e-5).for_iteration(4).lr == 1e-5  # default: no decay
    with pytest.raises(ConfigError, match="optimizer.lr_iteration_decay=0"):
        OptimizerConfig(loss="dpo", lr_iteration_decay=0).check()


def test_rollout_dtype_defaults_to_the_models_and_is_checked():
    from srlm.config import RolloutConfig

    RolloutConfig(engine="vllm").check()  # null: the engine serves in model.dtype
    RolloutConfig(engine="vllm", dtype="bfloat16").check()
    with pytest.raises(ConfigError, match="rollout.dtype='bf16'"):
        RolloutConfig(engine="vllm", dtype="bf16").check()
