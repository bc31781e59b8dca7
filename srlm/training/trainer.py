"""The train stage: a Lightning module for every loss in `srlm.core.losses`.

Reference log-probabilities come from the iteration's starting model M_t. The policy *is* M_t
before its first update, so they are computed by the policy itself in one no-grad pass before
training, and no second model is kept in memory while training.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import signal
import time
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.plugins.environments import LightningEnvironment
from torch.utils.data import DataLoader, Dataset

from srlm.config import ModelConfig, OptimizerConfig, TrainerConfig
from srlm.core.grpo import group_advantages
from srlm.core.losses import loss_spec
from srlm.procs import fault
from srlm.rollout.base import PROBE_FILE, PROBE_TEXT
from srlm.training.data import (
    Example,
    Group,
    collate,
    encode_example,
    encode_group,
    sequence_logps,
    token_logps,
)
from srlm.training.model import load_causal_lm, load_tokenizer
from srlm.training.nodes import launch_nodes
from srlm.training.ranks import launch_ranks
from srlm.training.selection import Selector, Validation


def loss_kwargs(opt: OptimizerConfig) -> dict:
    """The optimizer.* values the configured loss takes as keyword arguments."""
    return {key: getattr(opt, key) for key in loss_spec(opt.loss).options}


class _Rows(Dataset):
    def __init__(self, rows: list[dict]):
        self.rows = rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict:
        return self.rows[i]


class PreferenceModule(L.LightningModule):
    def __init__(
        self,
        model,
        opt: OptimizerConfig,
        total_steps: int,
        pad_id: int,
        rows: list[dict] | None = None,
        selector: Selector | None = None,
    ):
        super().__init__()
        self.model = model
        self.opt = opt
        self.loss = loss_spec(opt.loss)
        self.kwargs = loss_kwargs(opt)
        self.pairwise = self.loss.inputs == "pairs"
        self.grouped = self.loss.inputs == "groups"
        self.total_steps = max(total_steps, 1)
        self.pad_id = pad_id
        self.history: list[dict] = []
        # The training rows: scored before training (the reference log-probs and the "before"
        # statistics) and after it, by every rank together.
        self.rows = rows or []
        # dr_grpo's constant normaliser: the stage's longest response.
        self.longest_response = max((len(b) for r in self.rows for b in r["branches"]), default=1)
        # Per row, the summed log-prob of each of its responses.
        self.before: list[list[float]] = []
        self.after: list[list[float]] = []
        self.fingerprints: list[str] = []
        self.probe: list[float] = []
        self.full_state: dict | None = None
        # Where the stage's time goes (stats "*_seconds", benchmarks/iteration_breakdown.py).
        self.seconds: dict[str, float] = {}
        self.steps_started = 0.0
        # Checkpoint selection (srlm.training.selection), when the method asks for it.
        self.selector = selector
        self.selection_before = 0.0

    def collate(self, rows: list[dict]) -> dict:
        if self.grouped:
            return self._collate_groups(rows)
        # sft: the chosen response only, whatever the rows hold.
        n = 2 if self.pairwise else 1
        batch = collate([r | {"branches": r["branches"][:n]} for r in rows], self.pad_id)
        batch["ref"] = torch.tensor(
            [[r.get("ref_chosen", 0.0), r.get("ref_rejected", 0.0)] for r in rows]
        )
        return batch

    def _collate_groups(self, rows: list[dict]) -> dict:
        batch = collate(rows, self.pad_id)
        b, k, t = batch["targets"].shape
        # Per sample (branch-major, as token_logps returns them): its advantage and M_t's
        # log-prob of each of its tokens, which is both the sampling policy (the ratio's
        # denominator) and the reference in the iterative regime.
        advantages = torch.zeros(k, b)
        ref = torch.zeros(k, b, t)
        for i, r in enumerate(rows):
            for j, adv in enumerate(r["advantages"]):
                advantages[j, i] = adv
                if "ref_tokens" in r:
                    tokens = r["ref_tokens"][j]
                    ref[j, i, : len(tokens)] = torch.tensor(tokens)
        batch["advantages"] = advantages.reshape(k * b)
        batch["ref_tokens"] = ref.reshape(k * b, t)
        batch["ref"] = torch.zeros(b, 2)  # the batch size, for logging
        return batch

    def compute(self, batch: dict) -> tuple[torch.Tensor, dict]:
        if self.grouped:
            return self._compute_groups(batch)
        logps, counts = sequence_logps(self.model, batch)
        n = batch["ref"].shape[0]
        # sft: the batch holds the chosen sequences only (collate), and the loss gets no
        # rejected side at all rather than made-up zeros that would show up in its metrics.
        chosen, rejected = logps[:n], logps[n:] if self.pairwise else None
        n_chosen, n_rejected = counts[:n], counts[n:] if self.pairwise else None
        # Reference-free losses (simpo, sft) get None: they must not read the zeros in "ref".
        ref = batch["ref"].to(logps.dtype) if self.loss.reference else None
        return self.loss.fn(
            chosen,
            rejected,
            None if ref is None else ref[:, 0],
            None if ref is None else ref[:, 1],
            n_chosen,
            n_rejected,
            **self.kwargs,
        )

    def _compute_groups(self, batch: dict) -> tuple[torch.Tensor, dict]:
        logps, mask = token_logps(self.model, batch)
        # Rows of absent samples (a group smaller than the batch's largest) score no token.
        present = mask.any(-1)
        # The sampler's log-probs; in the iterative regime the sampler is the reference, M_t
        # (the online regimes score the two apart: srlm.training.online).
        old = batch.get("old_tokens", batch["ref_tokens"])[present].to(logps.dtype)
        ref = batch["ref_tokens"][present].to(logps.dtype) if self.opt.beta else None
        kwargs = dict(self.kwargs)
        if kwargs.get("aggregation") == "dr_grpo":
            kwargs["max_length"] = self.longest_response
        return self.loss.fn(
            logps[present],
            old,
            ref,
            batch["advantages"][present].to(logps.dtype),
            mask[present],
            **kwargs,
        )

    def training_step(self, batch, batch_idx):
        loss, metrics = self.compute(batch)
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"non-finite training loss ({loss.item()}) at step {self.global_step}; "
                "lower optimizer.lr or check the pairs"
            )
        logged = {"loss": loss.detach()} | {k: v.detach() for k, v in metrics.items()}
        self.log_dict(logged, prog_bar=False, batch_size=batch["ref"].shape[0])
        self.log("train_loss", loss.detach(), prog_bar=True, batch_size=batch["ref"].shape[0])
        # Every rank records its own losses; on_train_end averages them over the ranks.
        row = {k: float(v) for k, v in logged.items()}
        row |= {
            "step": self.global_step,
            "epoch": self.current_epoch,
            "lr": self.trainer.optimizers[0].param_groups[0]["lr"],
        }
        self.history.append(row)
        return loss

    def on_train_batch_end(self, outputs, batch, batch_idx) -> None:
        if self.selector and self.selector.due(self.global_step):
            self.selector.score(self, self.global_step)

    def configure_optimizers(self):
        o = self.opt
        params = [p for p in self.model.parameters() if p.requires_grad]
        optim = torch.optim.AdamW(
            params,
            lr=o.lr,
            betas=tuple(o.adam_betas),
            eps=o.adam_epsilon,
            weight_decay=o.weight_decay,
        )
        floor = o.lr_end / o.lr

        def factor(step: int) -> float:
            if step < o.warmup_steps:
                return (step + 1) / (o.warmup_steps + 1)
            progress = min(1.0, (step - o.warmup_steps) / max(1, self.total_steps - o.warmup_steps))
            if o.schedule == "constant":
                return 1.0
            if o.schedule == "linear":
                return 1.0 - (1.0 - floor) * progress
            return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))

        sched = torch.optim.lr_scheduler.LambdaLR(optim, factor)
        return {"optimizer": optim, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    # ---- scoring, run by every rank at once through the strategy's wrapped model

    def forward(self, batch: dict) -> torch.Tensor:
        """Per-token log-probs. Called through `trainer.strategy.model` (the DDP or FSDP wrapper),
        so that FSDP gathers its sharded parameters just as in a training step."""
        return token_logps(self.model, batch)[0]

    def on_fit_start(self) -> None:
        # The policy is M_t until its first update, so its log-probs now are the reference ones.
        # They are computed here rather than before trainer.fit so that the pass runs on the
        # strategy's devices and, under FSDP, on the sharded model (a 70B model fits on no
        # single GPU). Each rank scores every world-th row and all ranks gather the whole table:
        # a rank needs the reference values of whichever rows the sampler gives it in each
        # epoch, and the pass costs 1/world of a full pass per rank instead of a full one.
        t0 = time.time()
        self.before, tokens = self._score_rows(tokens=self.grouped)
        self.seconds["reference_seconds"] = time.time() - t0
        for r, per_token in zip(self.rows, tokens or [], strict=False):
            r["ref_tokens"] = per_token
        if self.selector and self.selector.due(0):
            self.selector.score(self, 0)
        self.selection_before = self.selector.seconds if self.selector else 0.0
        self.steps_started = time.time()
        if self.pairwise and self.loss.reference:
            for r, (c, j) in zip(self.rows, self.before, strict=True):
                r["ref_chosen"], r["ref_rejected"] = c, j

    def on_train_end(self) -> None:
        # Still inside fit: the model is on its devices and, under FSDP, still sharded.
        # Candidates scored between the steps are the selection's time, not the steps'.
        between = self.selector.seconds - self.selection_before if self.selector else 0.0
        self.seconds["steps_seconds"] = time.time() - self.steps_started - between
        if self.selector:
            self.selector.finish(self, self.global_step)
        t0 = time.time()
        if self.selector and self.selector.stats()["selected_step"] == 0:
            # The start was kept: its scores are the ones measured before training.
            self.after = [list(b) for b in self.before]
        else:
            self.after, _ = self._score_rows()
        self.seconds["after_seconds"] = time.time() - t0
        self.history = self._mean_over_ranks(self.history)
        self.probe = self._probe_logprobs()
        self.fingerprints = self._gather_fingerprints()
        if _is_fsdp(self.trainer.strategy):
            # Full (unsharded) weights, gathered to rank 0's CPU memory, for the HF checkpoint.
            state = self.trainer.strategy.lightning_module_state_dict()
            if self.trainer.is_global_zero:
                self.full_state = {k.removeprefix("model."): v for k, v in state.items()}

    @torch.no_grad()
    def _score_rows(self, tokens: bool = False) -> tuple[list[list[float]], list | None]:
        """Every row's summed log-prob of each of its responses (the chosen only for sft), in
        eval mode, gathered from all ranks; with `tokens`, also each response's per-token
        log-probs.

        Under the training precision, so that at step 0 the policy's log-probs equal the
        reference ones and the margin starts at zero.
        """
        world, rank, n = self.trainer.world_size, self.global_rank, len(self.rows)
        per_rank = max(1, math.ceil(n / world))
        mine = list(range(rank, n, world)) or [0]
        # Every rank runs the same number of forward passes: under FSDP each is a collective.
        mine += mine[-1:] * (per_rank - len(mine))
        k = 1 if not (self.pairwise or self.grouped) else max(len(r["branches"]) for r in self.rows)
        width = self.longest_response if tokens else 0
        wrapped = self.trainer.strategy.model
        self.model.eval()
        local = torch.zeros(per_rank, k, dtype=torch.float64, device=self.device)
        local_tokens = torch.zeros(per_rank, k, width, dtype=torch.float32, device=self.device)
        for start in range(0, per_rank, self.opt.batch_size):
            idx = mine[start : start + self.opt.batch_size]
            batch = {
                key: v.to(self.device)
                for key, v in self.collate([self.rows[i] for i in idx]).items()
            }
            with self.trainer.precision_plugin.forward_context():
                per_token = wrapped(batch).float()
            # (branch * batch, T) -> (batch, branch, T)
            per_token = per_token.view(-1, len(idx), per_token.shape[-1]).transpose(0, 1)
            got = per_token.shape[1]
            local[start : start + len(idx), :got] = per_token.sum(-1).double()
            if tokens:
                local_tokens[start : start + len(idx), :got, : per_token.shape[-1]] = per_token
        # Back to train mode (dropout on): HF loads models in eval mode and Lightning keeps the
        # mode it finds at the start of fit.
        self.model.train()
        gather = self.trainer.strategy.all_gather
        table = gather(local).reshape(world, per_rank, k).cpu()
        sums = [table[i % world, i // world].tolist() for i in range(n)]
        if not tokens:
            return sums, None
        table = gather(local_tokens).reshape(world, per_rank, k, width).cpu()
        per_row = []
        for i, r in enumerate(self.rows):
            row = table[i % world, i // world]
            per_row.append([row[j, : len(b)].tolist() for j, b in enumerate(r["branches"])])
        return sums, per_row

    def _mean_over_ranks(self, history: list[dict]) -> list[dict]:
        """Each step's metrics averaged over the ranks, so that every rank reports the same ones.

        The distributed sampler gives every rank the same number of batches, so the histories
        line up step by step.
        """
        world = self.trainer.world_size
        if world == 1 or not history:
            return history
        keys = [k for k in history[0] if k not in ("step", "epoch", "lr")]
        local = torch.tensor(
            [[h[k] for k in keys] for h in history], dtype=torch.float64, device=self.device
        )
        mean = self.trainer.strategy.all_gather(local).reshape(world, *local.shape).mean(0).tolist()
        return [h | dict(zip(keys, row, strict=True)) for h, row in zip(history, mean, strict=True)]

    @torch.no_grad()
    def _probe_logprobs(self) -> list[float]:
        """Next-token log-probs of the fixed probe text, which rollout engines check after loading
        the checkpoint (stale weights). In the weights' own dtype: no autocast."""
        # The text's first token as the "prompt": every later token is scored.
        row = {"prefix": self.probe_ids[:1], "branches": [self.probe_ids[1:]]}
        batch = {k: v.to(self.device) for k, v in collate([row], self.pad_id).items()}
        self.model.eval()
        out = self.trainer.strategy.model(batch)[0].float().tolist()
        self.model.train()
        return out

    def _gather_fingerprints(self) -> list[str]:
        """Every DDP rank's weights hash: they must be equal, or a rank trained something else.

        Hashing copies the weights to CPU once (seconds for an 8B model); FSDP ranks hold
        different shards by design, and a single process has nothing to compare with.
        """
        world = self.trainer.world_size
        if world == 1 or _is_fsdp(self.trainer.strategy):
            return []
        out: list[str | None] = [None] * world
        torch.distributed.all_gather_object(out, weights_fingerprint(self.model))
        return out


class KeepSignalHandlers(L.Callback):
    """Put back the SIGTERM handler Lightning replaced when fit began.

    Lightning's handler (lightning.pytorch.trainer.connectors.signal_connector) logs "Received
    SIGTERM", broadcasts a flag to the other ranks from inside the handler, and asks the loop to
    stop after the current batch; in the last batch it does not stop at all, so a terminated
    trainer saved its checkpoint and went on. srlm's processes end at once on SIGTERM instead
    (srlm.procs.exit_on_signal; in the driver, srlm.runner.stop_on_signals); nothing half-done
    is recorded, and the rerun trains the stage again from M_t.

    Also the crash test's mid-training kill point: ``SRLM_FAULT=iter_NN:train-step-1`` fires
    after the first optimizer step of the training in iter_NN.
    """

    def __init__(self, label: str):
        self.label = label
        self.handler = None

    def setup(self, trainer, pl_module, stage) -> None:
        self.handler = signal.getsignal(signal.SIGTERM)

    def on_train_start(self, trainer, pl_module) -> None:
        # After Lightning registered its own handler (Trainer._run, before the fit loop).
        if self.handler is not None and _in_main_thread():
            signal.signal(signal.SIGTERM, self.handler)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        fault(f"{self.label}:train-step-{trainer.global_step}")


def _in_main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def resolve_precision(cfg: TrainerConfig) -> str:
    """`auto`: bf16 autocast where the hardware computes in bf16 natively, else float32.

    On a CPU with AVX512-BF16 or AMX, bf16 matmuls run at several times the float32 rate
    (benchmarks/train_precision.py: 2.3x training throughput on the 2-core dev machine).
    """
    if cfg.precision != "auto":
        return cfg.precision
    if cfg.accelerator in ("gpu", "cuda") or (
        cfg.accelerator == "auto" and torch.cuda.is_available()
    ):
        return (
            "bf16-mixed"
            if torch.cuda.is_available() and torch.cuda.is_bf16_supported()
            else "16-mixed"
        )
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "32-true"
    return "bf16-mixed" if ("avx512_bf16" in flags or "amx_bf16" in flags) else "32-true"


def train(
    examples: list[Example] | list[Group],
    init_dir: str,
    out_dir: Path,
    model_cfg: ModelConfig,
    opt: OptimizerConfig,
    trainer_cfg: TrainerConfig,
    seed: int = 0,
    selection: tuple[Validation, int, bool, float | None] | None = None,
) -> dict:
    """Train the model in `init_dir` on `examples`; save it as a HF directory in `out_dir`.

    Returns the stage's statistics: loss, reward margin and accuracy on the training pairs
    before and after training, and the per-step history (also written to metrics.jsonl).
    With trainer.devices > 1 it starts one process per device and returns once all have
    finished and the checkpoint is written. `selection` = (validation set, candidates, whether
    M_t itself is one, M_t's score if known): the checkpoint is the best candidate
    (srlm.training.selection).
    """
    args = (examples, init_dir, out_dir, model_cfg, opt, trainer_cfg, seed, selection)
    world = trainer_cfg.devices * trainer_cfg.num_nodes
    if "LOCAL_RANK" in os.environ or world == 1:
        # One process, or a rank that something else started (torchrun, or launch_ranks).
        return _train_rank(*args)
    if trainer_cfg.num_nodes > 1:
        return launch_nodes(_train_rank, args, out_dir, trainer_cfg.num_nodes)
    return launch_ranks(_train_rank, trainer_cfg.devices, args)


def set_torch_threads(cfg: TrainerConfig) -> None:
    """This training process's torch threads: trainer.num_threads, or its share of the node's
    cores when several CPU ranks run on it."""
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    elif cfg.devices > 1 and cfg.accelerator == "cpu":
        # A node's CPU ranks share its cores; each taking all of them oversubscribes it.
        torch.set_num_threads(max(1, len(os.sched_getaffinity(0)) // cfg.devices))


def _train_rank(
    examples: list[Example] | list[Group],
    init_dir: str,
    out_dir: Path,
    model_cfg: ModelConfig,
    opt: OptimizerConfig,
    trainer_cfg: TrainerConfig,
    seed: int,
    selection: tuple[Validation, int, bool, float | None] | None = None,
) -> dict:
    L.seed_everything(seed, workers=True, verbose=False)
    world = trainer_cfg.devices * trainer_cfg.num_nodes
    set_torch_threads(trainer_cfg)
    t0 = time.time()
    tok = load_tokenizer(init_dir)
    model = load_causal_lm(init_dir, model_cfg, trainer_cfg)
    load_seconds = time.time() - t0
    grouped = loss_spec(opt.loss).inputs == "groups"
    if grouped:
        rows = group_rows(tok, examples, model_cfg.max_length, opt.advantage_scale)
    else:
        rows = [encode_example(tok, ex, model_cfg.max_length) for ex in examples]
    steps_per_epoch = math.ceil(len(rows) / (opt.batch_size * world * opt.grad_accum))
    total_steps = steps_per_epoch * opt.epochs
    selector = None
    if selection:
        selector = Selector(
            selection[0],
            total_steps,
            *selection[1:],
            tokenizer=tok,
            max_length=model_cfg.max_length,
        )
    module = PreferenceModule(model, opt, total_steps, tok.pad_token_id, rows, selector)
    module.probe_ids = tok(PROBE_TEXT, add_special_tokens=False).input_ids

    precision = resolve_precision(trainer_cfg)
    loader = DataLoader(
        _Rows(rows),
        batch_size=opt.batch_size,
        shuffle=opt.shuffle,
        collate_fn=module.collate,
        generator=torch.Generator().manual_seed(seed),
    )
    trainer = L.Trainer(
        accelerator=trainer_cfg.accelerator,
        devices=trainer_cfg.devices,
        num_nodes=trainer_cfg.num_nodes,
        strategy=make_strategy(trainer_cfg, model, world),
        # Explicit, so that a SLURM job's variables (one task, many devices) are not mistaken
        # for the rank layout: the ranks are the ones _launch_ranks (or torchrun) started.
        plugins=[LightningEnvironment()] if world > 1 else None,
        precision=precision,
        max_epochs=opt.epochs,
        accumulate_grad_batches=opt.grad_accum,
        gradient_clip_val=opt.max_grad_norm or None,
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        enable_progress_bar=None if world == 1 else False,
        log_every_n_steps=1,
        default_root_dir=str(out_dir.parent / "lightning"),
        callbacks=[KeepSignalHandlers(out_dir.parent.name)],
    )
    trainer.fit(module, loader)
    if len(set(module.fingerprints)) > 1:
        raise RuntimeError(f"DDP ranks ended with different weights: {module.fingerprints}")

    # Every rank computes the same statistics from the gathered scores and averaged losses.
    if grouped:
        stats = _group_stats(rows, module.before, module.after)
    else:
        stats = _margin_stats(module.before, module.after, opt.beta, module.pairwise)
    history = module.history
    stats |= {
        "precision": precision,
        "world_size": trainer.world_size,
        "strategy": trainer_cfg.strategy,
        "examples": len(rows),
        "steps": int(trainer.global_step),
        "loss": _mean([h["loss"] for h in history]),
        "loss_first": history[0]["loss"] if history else None,
        "loss_last": history[-1]["loss"] if history else None,
    }
    if module.fingerprints:
        stats["rank_weights_sha256"] = module.fingerprints
    if any("loss/nll" in h for h in history):
        stats["nll"] = _mean([h["loss/nll"] for h in history if "loss/nll" in h])
    stats["load_seconds"] = load_seconds
    if selector:
        stats |= selector.stats()
    stats |= module.seconds
    if trainer.is_global_zero:
        t0 = time.time()
        save_checkpoint(module.model, tok, out_dir, history, stats, module.probe, module.full_state)
        stats["save_seconds"] = time.time() - t0
    if world > 1:
        torch.distributed.barrier()  # no rank returns before the checkpoint exists
    return stats


def make_strategy(cfg: TrainerConfig, model, world: int):
    if cfg.strategy == "fsdp":
        from lightning.pytorch.strategies import FSDPStrategy

        return FSDPStrategy(
            # One FSDP unit per decoder layer: a layer's weights are gathered just before it
            # runs and freed after, so that at most about one full layer is unsharded at a time.
            auto_wrap_policy=decoder_layer_classes(model),
            sharding_strategy="FULL_SHARD",
            state_dict_type="full",
        )
    if cfg.strategy == "ddp" or (cfg.strategy == "auto" and world > 1):
        from lightning.pytorch.strategies import DDPStrategy

        return DDPStrategy()
    return cfg.strategy


def decoder_layer_classes(model) -> set[type]:
    """The model's repeated block classes (HF lists them in `_no_split_modules`)."""
    names = set(getattr(model, "_no_split_modules", None) or [])
    found = {type(m) for m in model.modules() if type(m).__name__ in names}
    if not found:
        raise ValueError(
            f"trainer.strategy=fsdp: no decoder layer class found in {type(model).__name__} "
            "(it lists no _no_split_modules); use trainer=ddp"
        )
    return found


def _is_fsdp(strategy) -> bool:
    from lightning.pytorch.strategies import FSDPStrategy

    return isinstance(strategy, FSDPStrategy)


def weights_fingerprint(model) -> str:
    """SHA-256 over the names, dtypes and bytes of all parameters: equal iff the weights are."""
    h = hashlib.sha256()
    for name, p in sorted(model.named_parameters()):
        t = p.detach().cpu().contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def _margin_stats(before, after, beta: float, pairwise: bool) -> dict:
    """What training did to the training pairs: the DPO implicit reward margin and accuracy.

    With M_t as reference the margin before training is zero by definition; after training
    it is beta * mean[(log pi(y_w) - log ref(y_w)) - (log pi(y_l) - log ref(y_l))].
    """
    d_chosen = [a[0] - b[0] for a, b in zip(after, before, strict=True)]
    out = {"chosen_logp_change": _mean(d_chosen)}
    if pairwise:
        d_rej = [a[1] - b[1] for a, b in zip(after, before, strict=True)]
        margins = [beta * (c - r) for c, r in zip(d_chosen, d_rej, strict=True)]
        out |= {
            "rejected_logp_change": _mean(d_rej),
            "margin_before": 0.0,
            "margin_after": _mean(margins),
            "pair_accuracy_after": _mean([float(m > 0) for m in margins]),
        }
    return out


def group_rows(tok, groups: list[Group], max_length: int, scale: str) -> list[dict]:
    """Encoded groups with each sample's group-relative advantage (srlm.core.grpo)."""
    rows = []
    for g in groups:
        row = encode_group(tok, g, max_length)
        adv, _ = group_advantages(torch.tensor([row["rewards"]], dtype=torch.float64), scale=scale)
        rows.append(row | {"advantages": adv[0].tolist()})
    return rows


def _group_stats(rows: list[dict], before, after) -> dict:
    """What training did to the sampled responses: the summed log-prob change of those with a
    positive advantage (better than their group) and of those with a negative one. GRPO should
    raise the first against the second (`advantage_logp_gap`)."""
    up, down, weighted = [], [], []
    for r, b, a in zip(rows, before, after, strict=True):
        for j, adv in enumerate(r["advantages"]):
            change = a[j] - b[j]
            weighted.append(adv * change)
            (up if adv > 0 else down if adv < 0 else []).append(change)
    gap = None if not (up and down) else _mean(up) - _mean(down)
    return {
        "groups_trained": len(rows),
        "samples_trained": sum(len(r["advantages"]) for r in rows),
        "positive_logp_change": _mean(up),
        "negative_logp_change": _mean(down),
        "advantage_logp_gap": gap,
        "advantage_weighted_logp_change": _mean(weighted),
    }


def _mean(xs) -> float | None:
    xs = list(xs)
    return sum(xs) / len(xs) if xs else None


@torch.inference_mode()
def save_checkpoint(
    model,
    tok,
    out_dir: Path,
    history: list[dict],
    stats: dict,
    probe: list[float],
    state_dict: dict | None = None,
) -> None:
    """Write the HF checkpoint atomically; `state_dict` holds the full weights under FSDP."""
    if hasattr(model, "merge_and_unload"):  # LoRA: ship plain weights to the rollout engine
        model = model.merge_and_unload()
    tmp = out_dir.with_name(out_dir.name + f".tmp{os.getpid()}")
    # A process killed while saving left its own temporary copy (a whole model): remove it.
    for old in out_dir.parent.glob(out_dir.name + ".tmp*"):
        shutil.rmtree(old, ignore_errors=True)
    model.save_pretrained(tmp, safe_serialization=True, state_dict=state_dict)
    tok.save_pretrained(tmp)
    (tmp / PROBE_FILE).write_text(json.dumps({"text": PROBE_TEXT, "logprobs": probe}))
    (tmp / "metrics.jsonl").write_text("".join(json.dumps(h) + "\n" for h in history))
    (tmp / "train_stats.json").write_text(json.dumps(stats, indent=2))
    shutil.rmtree(out_dir, ignore_errors=True)
    os.replace(tmp, out_dir)
