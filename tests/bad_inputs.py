"""Mistakes a user makes, each with the error srlm must answer with before any model loads.

One table for two readers: tests/test_bad_inputs.py runs every case in-process (the fast tier),
and scripts/bad_inputs.py runs every case as the real command line and counts the outcomes
(clear error before any model loads, weak message, traceback or late failure).

A case is a command (``srlm`` = ``python -m srlm``, ``evaluate``, ``report``, ``sweeps``), its
arguments with ``{tmp}`` standing for a scratch directory that ``setup`` fills, the environment
it adds, and the text every one of its expected ``srlm: error:`` lines must contain.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

BUILTIN = Path(__file__).resolve().parent.parent / "srlm" / "data"
TINY = ["rollout=hf", "logger=none"]


@dataclass
class Case:
    id: str
    category: str
    args: list[str]
    # Each string must appear in one of the error lines (in this order of lines, not necessarily
    # adjacent): one per problem the command has.
    expected: list[str]
    command: str = "srlm"
    setup: Callable[[Path], None] | None = None
    env: dict[str, str] = field(default_factory=dict)
    # Skipped where the machine has what the case lacks (a GPU).
    needs_no_gpu: bool = False

    def argv(self, tmp: Path) -> list[str]:
        return [a.replace("{tmp}", str(tmp)) for a in self.args]


# ---------------------------------------------------------------- helpers that make files
def _jsonl(path: Path, rows: list) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))


def _files(**named: list) -> Callable[[Path], None]:
    """A setup writing {tmp}/NAME.jsonl for each keyword (rows as dicts, or raw lines)."""

    def make(tmp: Path) -> None:
        for name, rows in named.items():
            _jsonl(tmp / f"{name}.jsonl", rows)

    return make


def _raw(name: str, data: bytes) -> Callable[[Path], None]:
    def make(tmp: Path) -> None:
        (tmp / name).write_bytes(data)

    return make


def _run_dir(*overrides: str, then: Callable[[Path], None] | None = None):
    """A setup making {tmp}/run a run directory claimed by `python -m srlm OVERRIDES` (its
    config.yaml), with one finished stage in iteration 1, then `then(run)` to break it."""

    def make(tmp: Path) -> None:
        from srlm.compose import compose, validate
        from srlm.rundir import RunDir

        run = tmp / "run"
        config = validate(compose([*TINY, f"run_dir={run}", *overrides]))
        rd = RunDir(run)
        rd.bind(config)
        rd.write_rows(1, "prompts", [{"id": "p0", "instruction": "Say hi."}])
        rd.mark_finished(1, "prompts", {"prompts": 1})
        if then is not None:
            then(run)

    return make


def _cut(name: str) -> Callable[[Path], None]:
    def cut(run: Path) -> None:
        f = run / name
        f.write_text(f.read_text()[: len(f.read_text()) // 2])

    return cut


def _spec(parameters: dict, method: str = "grid") -> Callable[[Path], None]:
    def make(tmp: Path) -> None:
        spec = {
            "program": "srlm",
            "method": method,
            "metric": {"name": "iter/eval/accuracy", "goal": "maximize"},
            "parameters": parameters,
            "command": ["${env}", "python", "-m", "srlm", "rollout=hf", "${args_no_hyphens}"],
        }
        (tmp / "spec.yaml").write_text(yaml.safe_dump(spec))

    return make


SEED_ROW = {"instruction": "Name a prime number."}
JUDGEMENT = {
    "instruction": "Say hi.",
    "response": "Hi!",
    "justification": "It greets.",
    "score": 4,
}

# ---------------------------------------------------------------- the table
CASES: list[Case] = [
    # ----------------------------------------------------------- keys
    Case(
        "plus_misspelt_key",
        "keys",
        ["+optimizer.bta=0.2"],
        ["optimizer.bta: srlm has no such key", "did you mean optimizer.beta?"],
    ),
    Case(
        "misspelt_key",
        "keys",
        ["optimizer.bta=0.2"],
        ["optimizer.bta: srlm has no such key", "did you mean optimizer.beta?"],
    ),
    Case("plus_unknown_top_key", "keys", ["+foo=1"], ["foo: srlm has no such key"]),
    Case("misspelt_group", "keys", ["metod=irpo"], ["did you mean method?"]),
    Case("unknown_method", "keys", ["method=irpoo"], ["method/irpoo"]),
    Case("unknown_reward", "keys", ["reward=judge_modl"], ["reward/judge_modl"]),
    Case("unknown_optimizer", "keys", ["optimizer=adamw"], ["optimizer/adamw"]),
    Case("beta_not_a_number", "keys", ["optimizer.beta=abc"], ["optimizer.beta", "abc"]),
    Case("seed_not_a_number", "keys", ["seed=abc"], ["seed", "abc"]),
    Case("overwrite_not_bool", "keys", ["overwrite=maybe"], ["overwrite", "maybe"]),
    Case("negative_beta", "keys", ["optimizer.beta=-0.1"], ["optimizer.beta=-0.1: must be > 0"]),
    Case("zero_lr", "keys", ["optimizer.lr=0"], ["optimizer.lr=0.0: must be > 0"]),
    Case(
        "lr_end_above_lr",
        "keys",
        ["optimizer.lr_end=1"],
        ["optimizer.lr_end=1.0: must be in [0, optimizer.lr]"],
    ),
    Case(
        "misspelt_schedule",
        "keys",
        ["optimizer.schedule=cosin"],
        ["optimizer.schedule='cosin': allowed values are cosine, linear, constant"],
    ),
    Case("unknown_loss", "keys", ["optimizer.loss=dpoo"], ["optimizer.loss='dpoo': allowed"]),
    Case(
        "one_adam_beta",
        "keys",
        ["optimizer.adam_betas=[0.9]"],
        ["optimizer.adam_betas=[0.9]: must be two numbers in [0, 1)"],
    ),
    Case("zero_epochs", "keys", ["optimizer.epochs=0"], ["optimizer.epochs=0: must be >= 1"]),
    Case("zero_batch", "keys", ["optimizer.batch_size=0"], ["optimizer.batch_size=0: must be"]),
    Case(
        "warm_start_negative_lr",
        "keys",
        ["method.warm_start.lr=-1"],
        ["method.warm_start.lr=-1.0: must be > 0"],
    ),
    Case(
        "warm_start_zero_batch",
        "keys",
        ["method.warm_start.batch_size=0"],
        ["method.warm_start.batch_size=0: must be >= 1"],
    ),
    Case(
        "warm_start_zero_epochs",
        "keys",
        ["method.warm_start.epochs=0"],
        ["method.warm_start.epochs=0: must be >= 1"],
    ),
    Case(
        "thinking_judge_sft_lr",
        "keys",
        ["method=thinking_judge", "method.sft_lr=0"],
        ["method.sft_lr=0.0: must be > 0"],
    ),
    Case("zero_iterations", "keys", ["method.iterations=0"], ["method.iterations=0: must be"]),
    Case(
        "one_sample",
        "keys",
        ["method.samples_per_prompt=1"],
        ["method.samples_per_prompt=1: must be >= 2"],
    ),
    Case(
        "negative_temperature",
        "keys",
        ["method.response_sampling.temperature=-1"],
        ["method.response_sampling.temperature=-1.0: must be >= 0"],
    ),
    Case(
        "zero_top_p",
        "keys",
        ["method.response_sampling.top_p=0"],
        ["method.response_sampling.top_p=0.0: must be in (0, 1]"],
    ),
    Case("unknown_engine", "keys", ["rollout.engine=tgi"], ["rollout.engine='tgi': allowed"]),
    Case(
        "memory_share_above_one",
        "keys",
        ["rollout.gpu_memory_utilization=1.5"],
        ["rollout.gpu_memory_utilization=1.5: must be in (0, 1]"],
    ),
    Case("unknown_precision", "keys", ["trainer.precision=fp16"], ["trainer.precision='fp16'"]),
    Case("unknown_strategy", "keys", ["trainer.strategy=zero3"], ["trainer.strategy='zero3'"]),
    Case("zero_devices", "keys", ["trainer.devices=0"], ["trainer.devices=0: must be >= 1"]),
    Case(
        "unknown_logger",
        "keys",
        ["logger.backend=tensorboard"],
        ["logger.backend='tensorboard': allowed values are wandb, none"],
    ),
    Case("zero_eval_prompts", "keys", ["eval.max_prompts=0"], ["eval.max_prompts=0: must be"]),
    Case("tiny_max_length", "keys", ["model.max_length=32"], ["model.max_length=32: must be"]),
    Case("unknown_dtype", "keys", ["model.dtype=fp8"], ["model.dtype='fp8': allowed values"]),
    Case("zero_limit", "keys", ["data.limit=0"], ["data.limit=0: must be >= 1"]),
    Case(
        "reward_does_not_fit_method",
        "keys",
        ["method=irpo", "reward=self_judge"],
        ["reward=self_judge"],
    ),
    Case(
        "selection_without_validation_questions",
        "keys",
        ["method=irpo", "method.select_checkpoints=2"],
        ["method.validation_questions=0: method.select_checkpoints=2 scores"],
    ),
    Case(
        "selection_for_a_method_without_validation",
        "keys",
        ["method.select_checkpoints=2"],
        ["method.select_checkpoints=2: method self_reward has no validation set"],
    ),
    Case(
        "selection_from_start_alone",
        "keys",
        ["method=irpo", "method.select_from_start=true"],
        ["method.select_from_start=True: needs method.select_checkpoints >= 1"],
    ),
    Case(
        "online_for_a_method_without_an_online_form",
        "keys",
        ["method=meta_reward", "trainer.sync_every=1", "trainer.steps_per_iteration=4"],
        ["trainer.sync_every=1 with method=meta_reward: the method has no online form"],
    ),
    Case(
        "online_self_rewarding_with_a_prompt_writer",
        "keys",
        [
            "+model@method.prompt_writer=smollm2_135m",
            "trainer.sync_every=1",
            "trainer.steps_per_iteration=4",
        ],
        ["method.prompt_writer with trainer.sync_every=1: online Self-Rewarding answers"],
    ),
    Case(
        "online_without_steps",
        "keys",
        ["method=irpo", "trainer.sync_every=2"],
        ["trainer.steps_per_iteration=0: must be >= 1 with trainer.sync_every=2"],
    ),
    Case(
        "sleep_mode_in_the_iterative_regime",
        "keys",
        ["rollout=vllm", "rollout.sleep=on", "rollout.keep_engine=off"],
        ["rollout.sleep=on with trainer.sync_every=0 and rollout.keep_engine=off"],
    ),
    Case(
        "sleep_mode_of_a_kept_engine_on_cpu",
        "keys",
        ["rollout=vllm", "rollout.sleep=on"],
        ["rollout.sleep=on with trainer.accelerator=cpu"],
    ),
    Case(
        "unknown_keep_engine",
        "keys",
        ["rollout.keep_engine=true"],
        ["rollout.keep_engine='True': allowed values are auto, on, off"],
    ),
    Case(
        "sleep_mode_on_cpu",
        "keys",
        [
            "method=irpo",
            "rollout=vllm",
            "rollout.sleep=on",
            "trainer.sync_every=1",
            "trainer.steps_per_iteration=4",
        ],
        ["rollout.sleep=on with trainer.accelerator=cpu"],
    ),
    Case(
        "sleep_mode_for_transformers",
        "keys",
        ["rollout=hf", "rollout.sleep=on"],
        ["rollout.sleep='on': sleep mode is vLLM's"],
    ),
    Case(
        "online_over_two_nodes",
        "keys",
        [
            "method=irpo",
            "trainer.sync_every=1",
            "trainer.steps_per_iteration=4",
            "trainer.num_nodes=2",
        ],
        ["trainer.sync_every=1 with trainer.num_nodes=2"],
    ),
    Case(
        "online_prompts_not_shared_evenly_over_ranks",
        "keys",
        [
            "method=irpo",
            "trainer.sync_every=1",
            "trainer.steps_per_iteration=4",
            "trainer.devices=2",
            "trainer.prompts_per_step=3",
        ],
        ["trainer.prompts_per_step=3 with trainer.devices=2"],
    ),
    Case(
        "online_with_fsdp",
        "keys",
        [
            "method=irpo",
            "trainer.sync_every=1",
            "trainer.steps_per_iteration=4",
            "trainer=fsdp",
        ],
        ["trainer.sync_every=1 with trainer.strategy=fsdp"],
    ),
    Case(
        "grpo_with_one_sample_per_group",
        "keys",
        ["method=irpo", "optimizer=grpo", "method.samples_per_question=1"],
        ["method.samples_per_question=1: must be >= 2"],
    ),
    Case(
        "fp16_on_cpu",
        "keys",
        ["trainer.precision=16-mixed"],
        ["trainer.precision=16-mixed with trainer.accelerator=cpu"],
    ),
    Case(
        "three_problems_at_once",
        "keys",
        ["optimizer.beta=-1", "optimizer.lr=-1", "+optimizer.bta=1"],
        [
            "optimizer.bta: srlm has no such key",
            "optimizer.beta=-1.0: must be > 0",
            "optimizer.lr=-1.0: must be > 0",
        ],
    ),
    # ----------------------------------------------------------- data files
    Case(
        "seed_file_missing",
        "data",
        ["data.seed_instructions={tmp}/missing.jsonl"],
        ["missing.jsonl: data file not found"],
    ),
    Case(
        "seed_instruction_a_list",
        "data",
        ["data.seed_instructions={tmp}/seed.jsonl"],
        ["seed.jsonl:2: field 'instruction'"],
        setup=_files(seed=[SEED_ROW, {"instruction": ["Name", "a prime"]}]),
    ),
    Case(
        "seed_instruction_a_number",
        "data",
        ["data.seed_instructions={tmp}/seed.jsonl"],
        ["seed.jsonl:1: field 'instruction'"],
        setup=_files(seed=[{"instruction": 7}]),
    ),
    Case(
        "seed_file_empty",
        "data",
        ["data.seed_instructions={tmp}/seed.jsonl"],
        ["seed.jsonl"],
        setup=_raw("seed.jsonl", b""),
    ),
    Case(
        "seed_file_bad_json",
        "data",
        ["data.seed_instructions={tmp}/seed.jsonl"],
        ["seed.jsonl:2: malformed JSON"],
        setup=_files(seed=[SEED_ROW, '{"instruction": "unclosed']),
    ),
    Case(
        "seed_file_not_utf8",
        "data",
        ["data.seed_instructions={tmp}/seed.jsonl"],
        ["seed.jsonl:1: not valid UTF-8"],
        setup=_raw("seed.jsonl", b'{"instruction": "caf\xe9"}\n'),
    ),
    Case(
        "seed_file_a_directory",
        "data",
        ["data.seed_instructions={tmp}"],
        ["train.jsonl: data file not found"],
    ),
    Case(
        "seed_builtin_unknown",
        "data",
        ["data.seed_instructions=builtin:nope"],
        ["builtin:nope: no such builtin data file"],
    ),
    Case(
        "seed_row_missing_field",
        "data",
        ["data.seed_instructions={tmp}/seed.jsonl"],
        ["seed.jsonl:1: required field 'instruction'"],
        setup=_files(seed=[{"prompt": "Name a prime number."}]),
    ),
    Case(
        "seed_judgement_without_score",
        "data",
        ["data.seed_judgements={tmp}/judged.jsonl"],
        ["judged.jsonl:1: required field 'score'"],
        setup=_files(judged=[{k: v for k, v in JUDGEMENT.items() if k != "score"}]),
    ),
    Case(
        "eval_prompts_bad_row",
        "data",
        ["eval.prompts={tmp}/prompts.jsonl"],
        ["prompts.jsonl:2"],
        setup=_files(prompts=[{"instruction": "Say hi."}, {"instruction": ""}]),
    ),
    Case(
        "eval_prompts_missing",
        "data",
        ["eval.prompts={tmp}/nope.jsonl"],
        ["nope.jsonl: data file not found"],
    ),
    Case(
        "eval_pairs_without_rejected",
        "data",
        ["eval.pairs={tmp}/pairs.jsonl"],
        ["pairs.jsonl:1"],
        setup=_files(pairs=[{"prompt": "Say hi.", "chosen": "Hi!"}]),
    ),
    Case(
        "irpo_test_file_missing",
        "data",
        [
            "method=irpo",
            "method.task=file",
            "method.train_file={tmp}/train.jsonl",
            "method.test_file={tmp}/nope.jsonl",
        ],
        ["nope.jsonl: data file not found"],
        setup=_files(
            train=[{"question": f"What is {i} + 1?", "answer": f"#### {i + 1}"} for i in range(4)]
        ),
    ),
    Case(
        "thinking_judge_triples_missing",
        "data",
        ["method=thinking_judge", "method.triples={tmp}/nope.jsonl"],
        ["method.triples: {tmp}/nope.jsonl: data file not found"],
    ),
    Case(
        "thinking_judge_triple_without_rejected",
        "data",
        ["method=thinking_judge", "method.triples={tmp}/triples.jsonl"],
        ["method.triples: {tmp}/triples.jsonl:2: required field 'rejected' is missing"],
        setup=_files(
            triples=[
                {"instruction": "Say hi.", "chosen": "Hi!", "rejected": "Bye."},
                {"instruction": "Say bye.", "chosen": "Bye!"},
            ]
        ),
    ),
    # ----------------------------------------------------------- models
    Case(
        "judge_model_path_missing",
        "models",
        ["reward=judge_model", "reward.model.path=/nonexistent"],
        ["reward.model.path='/nonexistent' does not exist"],
    ),
    Case(
        "eval_judge_missing",
        "models",
        ["eval.judge.model.source=/nonexistent"],
        ["eval.judge.model.source='/nonexistent': no such directory"],
    ),
    Case(
        "model_path_missing",
        "models",
        ["model.path=/nonexistent"],
        ["model.path='/nonexistent' does not exist"],
    ),
    Case(
        "model_path_without_config",
        "models",
        ["model.path={tmp}"],
        ["has no config.json"],
    ),
    Case(
        "embedded_model_unknown",
        "models",
        ["model.source=embedded:gpt5"],
        ["model.source='embedded:gpt5': unknown embedded model"],
    ),
    Case(
        "hub_model_not_here",
        "models",
        ["model.source=no-such-org/no-such-model"],
        ["model.source='no-such-org/no-such-model'", "not available on this machine"],
        env={"HF_HUB_OFFLINE": "1"},
    ),
    # ----------------------------------------------------------- hardware
    Case(
        "ddp_without_gpus",
        "hardware",
        ["trainer=ddp"],
        ["trainer.accelerator=gpu: this machine has no GPU"],
        needs_no_gpu=True,
    ),
    Case(
        "gpu_trainer_without_gpus",
        "hardware",
        ["trainer=gpu"],
        ["trainer.accelerator=gpu: this machine has no GPU"],
        needs_no_gpu=True,
    ),
    Case(
        "fsdp_without_gpus",
        "hardware",
        ["trainer=fsdp"],
        ["this machine has no GPU"],
        needs_no_gpu=True,
    ),
    Case(
        "tensor_parallel_8_on_cpu",
        "hardware",
        ["rollout=vllm", "rollout.tensor_parallel_size=8"],
        ["rollout.tensor_parallel_size=8: this machine has no GPU"],
        needs_no_gpu=True,
    ),
    Case(
        "tensor_parallel_with_hf",
        "hardware",
        ["rollout.tensor_parallel_size=2"],
        ["rollout.tensor_parallel_size=2: rollout=hf generates on one device"],
    ),
    # ----------------------------------------------------------- lengths
    Case(
        "response_longer_than_context",
        "lengths",
        ["model.max_length=128", "method.response_sampling.max_tokens=500"],
        ["method.prompt_sampling.max_tokens=200", "method.response_sampling.max_tokens=500"],
    ),
    Case(
        "eval_answers_longer_than_context",
        "lengths",
        ["eval.sampling.max_tokens=4000"],
        ["eval.sampling.max_tokens=4000 with model.max_length=2048"],
    ),
    Case(
        "judge_longer_than_context",
        "lengths",
        ["reward.sampling.max_tokens=2040"],
        ["reward.sampling.max_tokens=2040 with model.max_length=2048"],
    ),
    # ----------------------------------------------------------- environment
    Case(
        "cache_unwritable",
        "environment",
        [],
        ["SRLM_CACHE=/proc/x"],
        env={"SRLM_CACHE": "/proc/x"},
    ),
    Case(
        "cache_a_file",
        "environment",
        [],
        ["SRLM_CACHE=", "is a file"],
        env={"SRLM_CACHE": "{tmp}/cache"},
        setup=_raw("cache", b"not a directory"),
    ),
    # ----------------------------------------------------------- run directory
    Case(
        "run_dir_a_file",
        "run_dir",
        ["run_dir={tmp}/afile"],
        ["run_dir={tmp}/afile: a file, not a directory"],
        setup=_raw("afile", b"x"),
    ),
    Case(
        "run_dir_unwritable",
        "run_dir",
        ["run_dir=/proc/srlm-run"],
        ["run_dir=/proc/srlm-run: cannot write there"],
    ),
    Case(
        "run_dir_of_another_config",
        "run_dir",
        ["run_dir={tmp}/run", "optimizer.beta=0.3"],
        ["was made with a different config", "optimizer.beta: 0.1 -> 0.3"],
        setup=_run_dir(),
    ),
    Case(
        "run_dir_cut_stages_json",
        "run_dir",
        ["run_dir={tmp}/run"],
        ["iter_01/stages.json"],
        setup=_run_dir(then=_cut("iter_01/stages.json")),
    ),
    Case(
        "run_dir_broken_stage_file",
        "run_dir",
        ["run_dir={tmp}/run"],
        ["iter_01/prompts.jsonl:1"],
        setup=_run_dir(then=lambda run: (run / "iter_01/prompts.jsonl").write_text("{oops\n")),
    ),
    Case(
        "run_dir_broken_config_yaml",
        "run_dir",
        ["run_dir={tmp}/run"],
        ["config.yaml"],
        setup=_run_dir(then=lambda run: (run / "config.yaml").write_text("method: [unclosed\n")),
    ),
    Case(
        "overwrite_with_a_late_setting",
        "run_dir",
        ["run_dir={tmp}/run", "overwrite=true", "optimizer.beta=0.3", "trainer=ddp"],
        ["trainer.accelerator=gpu: this machine has no GPU"],
        setup=_run_dir(),
        needs_no_gpu=True,
    ),
    # ----------------------------------------------------------- sweeps
    Case(
        "multirun_bad_value",
        "sweeps",
        ["-m", "optimizer.beta=0.1,-1"],
        ["job 2 of 2 (optimizer.beta=-1): optimizer.beta=-1.0: must be > 0"],
    ),
    Case(
        "multirun_sweep_file_bad_value",
        "sweeps",
        ["-m", "sweep=self_reward_beta", "optimizer.beta=0.3,-2"],
        ["job 2 of 2 (optimizer.beta=-2): optimizer.beta=-2.0: must be > 0"],
    ),
    Case(
        "multirun_bad_for_every_job",
        "sweeps",
        ["-m", "optimizer.beta=0.1,0.2", "method.iterations=0"],
        ["every job: method.iterations=0: must be >= 1"],
    ),
    Case(
        "multirun_unknown_sweep_file",
        "sweeps",
        ["-m", "sweep=nope"],
        ["sweep/nope"],
    ),
    Case(
        "multirun_bad_data_in_one_job",
        "sweeps",
        ["-m", "eval.prompts=eval_prompts,{tmp}/nope.jsonl"],
        ["job 2 of 2", "nope.jsonl: data file not found"],
    ),
    Case(
        "wandb_spec_bad_value",
        "sweeps",
        ["{tmp}/spec.yaml"],
        ["(optimizer.beta=-1): optimizer.beta=-1.0: must be > 0"],
        command="sweeps",
        setup=_spec({"optimizer.beta": {"values": [0.1, -1]}}),
    ),
    Case(
        "wandb_spec_range_end",
        "sweeps",
        ["{tmp}/spec.yaml"],
        ["(optimizer.lr=0.0): optimizer.lr=0.0: must be > 0"],
        command="sweeps",
        setup=_spec(
            {"optimizer.lr": {"distribution": "uniform", "min": 0.0, "max": 1e-5}}, "bayes"
        ),
    ),
    Case(
        "wandb_spec_unknown_key",
        "sweeps",
        ["{tmp}/spec.yaml"],
        ["optimizer.bta: srlm has no such key"],
        command="sweeps",
        setup=_spec({"optimizer.bta": {"values": [0.1]}}),
    ),
    Case(
        "wandb_spec_not_yaml",
        "sweeps",
        ["{tmp}/spec.yaml"],
        ["spec.yaml: cannot read the sweep spec"],
        command="sweeps",
        setup=_raw("spec.yaml", b"parameters: [unclosed\n"),
    ),
    # ----------------------------------------------------------- srlm.evaluate
    Case(
        "evaluate_not_a_run",
        "evaluate",
        ["{tmp}"],
        ["config.yaml is missing"],
        command="evaluate",
    ),
    Case(
        "evaluate_changes_training",
        "evaluate",
        ["{tmp}/run", "optimizer.beta=0.2"],
        ["optimizer.beta=0.2: only evaluation settings"],
        command="evaluate",
        setup=_run_dir(),
    ),
    Case(
        "evaluate_bad_prompts",
        "evaluate",
        ["{tmp}/run", "eval.prompts={tmp}/prompts.jsonl"],
        ["prompts.jsonl:1"],
        command="evaluate",
        setup=lambda tmp: (
            _run_dir()(tmp),
            _files(prompts=[{"instruction": ["a", "list"]}])(tmp),
        ),
    ),
    Case(
        "evaluate_judge_missing",
        "evaluate",
        ["{tmp}/run", "eval.judge.model.source=/nonexistent"],
        ["eval.judge.model.source='/nonexistent': no such directory"],
        command="evaluate",
        setup=_run_dir(),
    ),
    Case(
        "evaluate_zero_prompts",
        "evaluate",
        ["{tmp}/run", "eval.max_prompts=0"],
        ["eval.max_prompts=0: must be"],
        command="evaluate",
        setup=_run_dir(),
    ),
    Case(
        "evaluate_cut_stages_json",
        "evaluate",
        ["{tmp}/run"],
        ["iter_01/stages.json"],
        command="evaluate",
        setup=_run_dir(then=_cut("iter_01/stages.json")),
    ),
    Case(
        "evaluate_broken_config_yaml",
        "evaluate",
        ["{tmp}/run"],
        ["config.yaml"],
        command="evaluate",
        setup=_run_dir(then=lambda run: (run / "config.yaml").write_text("method: [unclosed\n")),
    ),
    # ----------------------------------------------------------- srlm.report
    Case(
        "report_not_a_directory",
        "report",
        ["{tmp}/nope"],
        ["nope"],
        command="report",
    ),
    Case(
        "report_cut_stages_json",
        "report",
        ["{tmp}/run"],
        ["iter_01/stages.json"],
        command="report",
        setup=_run_dir(then=_cut("iter_01/stages.json")),
    ),
    Case(
        "report_broken_config_yaml",
        "report",
        ["{tmp}/run"],
        ["config.yaml"],
        command="report",
        setup=_run_dir(then=lambda run: (run / "config.yaml").write_text("method: [unclosed\n")),
    ),
]

MODULES = {
    "srlm": "srlm",
    "evaluate": "srlm.evaluate",
    "report": "srlm.report",
    "sweeps": "srlm.sweeps",
}
