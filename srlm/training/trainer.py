"""The train stage: a Lightning module for every loss in `srlm.core.losses`.

Reference log-probabilities come from the iteration's starting model M_t. The policy *is* M_t
before its first update, so they are computed by the policy itself in one no-grad pass before
training, and no second model is kept in memory while training.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset

from srlm.config import ModelConfig, OptimizerConfig, TrainerConfig
from srlm.core.losses import get_loss, needs_reference
from srlm.rollout.base import PROBE_FILE, PROBE_TEXT
from srlm.training.data import Example, collate, encode_example, sequence_logps
from srlm.training.model import load_causal_lm, load_tokenizer


def loss_kwargs(opt: OptimizerConfig) -> dict:
    return {
        "dpo": {"beta": opt.beta, "label_smoothing": opt.label_smoothing},
        "ipo": {"beta": opt.beta},
        "dpo_nll": {"beta": opt.beta, "alpha": opt.alpha},
        "simpo": {"beta": opt.beta, "gamma": opt.gamma},
        "sft": {},
    }[opt.loss]


class _Rows(Dataset):
    def __init__(self, rows: list[dict]):
        self.rows = rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict:
        return self.rows[i]


class PreferenceModule(L.LightningModule):
    def __init__(self, model, opt: OptimizerConfig, total_steps: int, pad_id: int):
        super().__init__()
        self.model = model
        self.opt = opt
        self.loss_fn = get_loss(opt.loss)
        self.kwargs = loss_kwargs(opt)
        self.pairwise = opt.loss != "sft"
        self.total_steps = max(total_steps, 1)
        self.pad_id = pad_id
        self.history: list[dict] = []

    def collate(self, rows: list[dict]) -> dict:
        seqs = [r["chosen"] for r in rows]
        if self.pairwise:
            seqs += [r["rejected"] for r in rows]
        batch = collate(seqs, self.pad_id)
        batch["ref"] = torch.tensor([[r.get("ref_chosen", 0.0), r.get("ref_rejected", 0.0)] for r in rows])
        return batch

    def compute(self, batch: dict) -> tuple[torch.Tensor, dict]:
        logps, counts = sequence_logps(self.model, batch)
        n = batch["ref"].shape[0]
        # sft: the batch holds the chosen sequences only (collate), and the loss gets no
        # rejected side at all rather than made-up zeros that would show up in its metrics.
        chosen, rejected = logps[:n], logps[n:] if self.pairwise else None
        n_chosen, n_rejected = counts[:n], counts[n:] if self.pairwise else None
        # Reference-free losses (simpo, sft) get None: they must not read the zeros in "ref".
        ref = batch["ref"].to(logps.dtype) if needs_reference(self.opt.loss) else None
        return self.loss_fn(chosen, rejected, None if ref is None else ref[:, 0],
                            None if ref is None else ref[:, 1], n_chosen, n_rejected, **self.kwargs)

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
        if self.trainer.is_global_zero:
            row = {k: float(v) for k, v in logged.items()}
            row |= {"step": self.global_step, "epoch": self.current_epoch,
                    "lr": self.trainer.optimizers[0].param_groups[0]["lr"]}
            self.history.append(row)
        return loss

    def configure_optimizers(self):
        o = self.opt
        params = [p for p in self.model.parameters() if p.requires_grad]
        optim = torch.optim.AdamW(params, lr=o.lr, betas=tuple(o.adam_betas), weight_decay=o.weight_decay)
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


def resolve_precision(cfg: TrainerConfig) -> str:
    """`auto`: bf16 autocast where the hardware computes in bf16 natively, else float32.

    On a CPU with AVX512-BF16 or AMX, bf16 matmuls run at several times the float32 rate
    (benchmarks/train_precision.py: 2.3x training throughput on the 2-core dev machine).
    """
    if cfg.precision != "auto":
        return cfg.precision
    if cfg.accelerator in ("gpu", "cuda") or (cfg.accelerator == "auto" and torch.cuda.is_available()):
        return "bf16-mixed" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "16-mixed"
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "32-true"
    return "bf16-mixed" if ("avx512_bf16" in flags or "amx_bf16" in flags) else "32-true"


@torch.inference_mode()
def _score_rows(module: PreferenceModule, rows: list[dict], batch_size: int,
                precision: str = "32-true") -> list[tuple[float, float]]:
    """Policy log-probs of every chosen (and rejected) sequence, in eval mode.

    Computed under the same autocast as training, so that at step 0 the policy's log-probs
    equal the reference ones and the margin starts at zero.
    """
    module.model.eval()
    out: list[tuple[float, float]] = []
    device = next(module.model.parameters()).device
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision.startswith("bf16"))
    for start in range(0, len(rows), batch_size):
        batch = {k: v.to(device) for k, v in module.collate(rows[start : start + batch_size]).items()}
        with autocast:
            logps, _ = sequence_logps(module.model, batch)
        n = len(rows[start : start + batch_size])
        rej = logps[n:] if module.pairwise else torch.zeros(n)
        out += list(zip(logps[:n].float().tolist(), rej.float().tolist()))
    module.model.train()
    return out


def train(
    examples: list[Example],
    init_dir: str,
    out_dir: Path,
    model_cfg: ModelConfig,
    opt: OptimizerConfig,
    trainer_cfg: TrainerConfig,
    seed: int = 0,
) -> dict:
    """Train the model in `init_dir` on `examples`; save it as a HF directory in `out_dir`.

    Returns the stage's statistics: loss, reward margin and accuracy on the training pairs
    before and after training, and the per-step history (also written to metrics.jsonl).
    """
    L.seed_everything(seed, workers=True, verbose=False)
    if trainer_cfg.num_threads:
        torch.set_num_threads(trainer_cfg.num_threads)
    tok = load_tokenizer(init_dir)
    model = load_causal_lm(init_dir, model_cfg, trainer_cfg)
    rows = [encode_example(tok, ex, model_cfg.max_length) for ex in examples]
    world = trainer_cfg.devices * trainer_cfg.num_nodes
    steps_per_epoch = math.ceil(len(rows) / (opt.batch_size * world * opt.grad_accum))
    module = PreferenceModule(model, opt, steps_per_epoch * opt.epochs, tok.pad_token_id)

    precision = resolve_precision(trainer_cfg)
    if torch.cuda.is_available() and trainer_cfg.accelerator != "cpu":
        model.to("cuda")  # reference pass on the accelerator; Lightning keeps it there
    use_ref = module.pairwise and needs_reference(opt.loss)
    before = _score_rows(module, rows, opt.batch_size, precision)
    if use_ref:
        for r, (c, j) in zip(rows, before):
            r["ref_chosen"], r["ref_rejected"] = c, j

    loader = DataLoader(_Rows(rows), batch_size=opt.batch_size, shuffle=True,
                        collate_fn=module.collate, generator=torch.Generator().manual_seed(seed))
    trainer = L.Trainer(
        accelerator=trainer_cfg.accelerator,
        devices=trainer_cfg.devices,
        num_nodes=trainer_cfg.num_nodes,
        strategy=trainer_cfg.strategy,
        precision=precision,
        max_epochs=opt.epochs,
        accumulate_grad_batches=opt.grad_accum,
        gradient_clip_val=opt.max_grad_norm or None,
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        log_every_n_steps=1,
        default_root_dir=str(out_dir.parent / "lightning"),
    )
    trainer.fit(module, loader)
    if not trainer.is_global_zero:
        return {}

    after = _score_rows(module, rows, opt.batch_size, precision)
    stats = _margin_stats(before, after, opt.beta, module.pairwise)
    stats |= {
        "precision": precision,
        "examples": len(rows),
        "steps": int(trainer.global_step),
        "loss": _mean([h["loss"] for h in module.history]),
        "loss_first": module.history[0]["loss"] if module.history else None,
        "loss_last": module.history[-1]["loss"] if module.history else None,
    }
    if any("loss/nll" in h for h in module.history):
        stats["nll"] = _mean([h["loss/nll"] for h in module.history if "loss/nll" in h])
    _save(module.model, tok, out_dir, module.history, stats)
    return stats


def _margin_stats(before, after, beta: float, pairwise: bool) -> dict:
    """What training did to the training pairs: the DPO implicit reward margin and accuracy.

    With M_t as reference the margin before training is zero by definition; after training
    it is beta * mean[(log pi(y_w) - log ref(y_w)) - (log pi(y_l) - log ref(y_l))].
    """
    d_chosen = [a[0] - b[0] for a, b in zip(after, before)]
    out = {"chosen_logp_change": _mean(d_chosen)}
    if pairwise:
        d_rej = [a[1] - b[1] for a, b in zip(after, before)]
        margins = [beta * (c - r) for c, r in zip(d_chosen, d_rej)]
        out |= {
            "rejected_logp_change": _mean(d_rej),
            "margin_before": 0.0,
            "margin_after": _mean(margins),
            "pair_accuracy_after": _mean([float(m > 0) for m in margins]),
        }
    return out


def _mean(xs) -> float | None:
    xs = list(xs)
    return sum(xs) / len(xs) if xs else None


@torch.inference_mode()
def _save(model, tok, out_dir: Path, history: list[dict], stats: dict) -> None:
    if hasattr(model, "merge_and_unload"):  # LoRA: ship plain weights to the rollout engine
        model = model.merge_and_unload()
    model.eval()
    tmp = out_dir.with_name(out_dir.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp, safe_serialization=True)
    tok.save_pretrained(tmp)
    ids = torch.tensor([tok(PROBE_TEXT, add_special_tokens=False).input_ids], device=model.device)
    logp = torch.log_softmax(model(input_ids=ids).logits[0, :-1].float(), -1)
    probe = logp.gather(-1, ids[0, 1:, None]).squeeze(-1).tolist()
    (tmp / PROBE_FILE).write_text(json.dumps({"text": PROBE_TEXT, "logprobs": probe}))
    (tmp / "metrics.jsonl").write_text("".join(json.dumps(h) + "\n" for h in history))
    (tmp / "train_stats.json").write_text(json.dumps(stats, indent=2))
    shutil.rmtree(out_dir, ignore_errors=True)
    os.replace(tmp, out_dir)
