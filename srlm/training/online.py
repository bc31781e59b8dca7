"""The online and semi-online regimes: generation and training interleaved in one process.

`trainer.sync_every: s` (s >= 1) trains a method online (s = 1) or semi-online (s > 1), as in
Lanchantin et al. 2025 ("Bridging Offline and Online Reinforcement Learning for LLMs"): every
optimizer step draws `trainer.prompts_per_step` prompts, samples the method's group of responses
for each from the rollout engine, scores them with the run's reward source, and trains one step
on them, with a group loss (optimizer=grpo) or with pairs made by the method's own rule (the
DPO family). Every s optimizer steps the trainer's weights go into the engine (a sync,
srlm.rollout.weight_sync), so the samples of a step come from the model as of the last sync.

Design:

- **One process, one persistent engine.** The driver starts one phase process ("online") for
  the iterations still to do; it holds the trainer's model and the engine side by side for all
  of them. The engine starts once, on the model the phase starts from, and from then on takes
  the trainer's weights in memory; after each sync its log-probs of the probe text are checked
  against the trainer's, and a mismatch stops the run.
- **Iterations are blocks of steps.** `method.iterations` x `trainer.steps_per_iteration`
  optimizer steps in all. An iteration ends in a checkpoint (the HF model, M_t, and the
  optimizer's, scheduler's and prompt order's state beside it) and the method's evaluation,
  recorded as the iteration's "train" and "evaluate" stages: the summary, the report and the
  resume work as in the iterative regime. A rerun after a crash continues from the last
  finished iteration with the same prompt order an uninterrupted run has (the prompts of a
  step depend on the count of steps drawn, not on the process); samples differ, since vLLM's
  sampler is seeded once per engine.
- **Old log-probs and the reference.** The ratio's old log-probs are those of the model that
  sampled the step (the trainer's weights at the last sync), computed by the trainer rather
  than taken from the engine, whose numbers differ by kernels and precision. Online (s = 1)
  that model is the trainer's own, not yet updated; semi-online a frozen copy taken at each
  sync. The reference (`trainer.reference`) is the model the online run started from, or the
  model at the last sync; it is read only by losses that use one (grpo with beta > 0, dpo).
- **Steps without signal.** A group whose samples all scored the same has no advantage and is
  left out; a step whose groups all are is drawn again with the next prompts (it does not
  count as an optimizer step).
- **Ranks** (`trainer.devices` > 1, DDP on one node). Each rank is a process with its own
  model replica and its own colocated engine (so generation is data-parallel too); a step's
  `prompts_per_step` prompts are dealt out evenly, each rank samples, scores and trains on its
  share, and DDP averages the gradients. The ranks redraw together when no rank has a group
  with signal; a rank left without any while another has some takes a zero loss, so that every
  rank joins the gradient all-reduce. Each rank syncs its own engine from its own weights
  (equal on all ranks, which every iteration's end checks by hash) and checks its own probe.
  A step's figures are merged over the ranks (counts summed, the rest averaged); rank 0 writes
  the checkpoint and the records and runs the evaluation while the others wait.

The iterative regime (trainer.sync_every=0) does not use this module.
"""

from __future__ import annotations

import os
import random
import time
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.plugins.environments import LightningEnvironment
from torch.utils.data import DataLoader, Dataset

from srlm.config import Config
from srlm.core.losses import loss_spec
from srlm.core.stats import is_number
from srlm.errors import SrlmError
from srlm.rollout.base import PROBE_TEXT
from srlm.rollout.hf_engine import token_logprobs
from srlm.training.data import encode_example, sequence_logps, token_logps
from srlm.training.model import load_causal_lm, load_tokenizer
from srlm.training.trainer import (
    KeepSignalHandlers,
    PreferenceModule,
    group_rows,
    make_strategy,
    resolve_precision,
    save_checkpoint,
    set_torch_threads,
    weights_fingerprint,
)

STATE_FILE = "online_state.pt"
# A step whose groups all scored the same is drawn again; this many draws in a row without a
# step means the reward cannot tell this model's samples apart.
MAX_EMPTY_DRAWS = 20


def prompt_indices(n: int, seed: int, draw: int, size: int) -> list[int]:
    """The prompts of the `draw`-th step: consecutive positions in a sequence of seeded
    permutations of the n prompts, a new permutation for each pass over them."""
    out = []
    for pos in range(draw * size, (draw + 1) * size):
        epoch, i = divmod(pos, n)
        out.append(random.Random(seed * 1_000_003 + epoch).sample(range(n), n)[i])
    return out


class _Ticks(Dataset):
    """Draw numbers for the fit loop: each step's data comes from the engine, not from here."""

    def __len__(self) -> int:
        return 10**9

    def __getitem__(self, i: int) -> int:
        return i


class OnlineModule(PreferenceModule):
    """PreferenceModule's losses on batches the module makes itself each step."""

    def __init__(self, model, config: Config, method, engine, tok, initial_model, state: dict):
        tc, opt = config.trainer, config.optimizer
        self.total_steps = config.method.iterations * tc.steps_per_iteration
        super().__init__(model, opt, self.total_steps, tok.pad_token_id)
        self.config, self.method, self.engine, self.tok = config, method, engine, tok
        self.prompts = method.online_prompts()
        self.sampling, self.samples = method.online_sampling()
        # Dr. GRPO's constant normaliser: the generation budget (with the end token).
        self.longest_response = self.sampling.max_tokens + 1
        self.probe_ids = tok(PROBE_TEXT, add_special_tokens=False).input_ids
        # Frozen models, kept out of the module's registry (not trained, not checkpointed).
        self.frozen: dict[str, torch.nn.Module] = {}
        if tc.sync_every > 1:
            self.frozen["sampler"] = _frozen_copy(model)
        if self.loss.reference and (self.grouped is False or opt.beta):
            self.frozen["reference"] = (
                initial_model if tc.reference == "initial" else self.frozen.get("sampler", model)
            )
        self.step = state.get("step", 0)  # optimizer steps of the whole run
        self.draws = state.get("draws", 0)
        self.synced_step: int | None = None
        self.last_sync: dict = {}
        self.resume = state
        self.optim = None
        self.prepared: list | None = None
        self.t = 1
        self.rank, self.world = _rank_world()

    # ---- the step's data, made before the step (outside the training precision's autocast)

    def on_train_batch_start(self, batch, batch_idx) -> None:
        self.step_started = time.time()
        woke = self.engine().wake()  # rollout.sleep: the engine slept through the last step
        self.sync()
        started = time.time()
        empty = 0
        generation = scoring = 0.0
        while True:
            idx = prompt_indices(len(self.prompts), self.config.seed, self.draws, self.size)
            share = len(idx) // self.world  # each rank's own part of the step's prompts
            idx = idx[self.rank * share : (self.rank + 1) * share]
            self.draws += 1
            questions = [self.prompts[i] for i in idx]
            tokenizer = self.engine().tokenizer
            texts = [self.method.online_prompt(tokenizer, q) for q in questions]
            t0 = time.time()
            outs = self.engine().generate(texts, self.sampling, n=self.samples, desc=None)
            t1 = time.time()
            examples, stats = self.method.online_examples(
                self.t, questions, outs, self.policy, self.tok, self.grouped
            )
            if self.grouped:
                examples = [g for g in examples if len(set(g.rewards)) > 1]
            generation += t1 - t0
            scoring += time.time() - t1
            stats |= {
                "generation_seconds": generation,
                "scoring_seconds": scoring,
                "response_tokens": _mean_tokens(outs),
            }
            if _global_count(len(examples), self.world):
                break
            empty += 1
            if empty >= MAX_EMPTY_DRAWS:
                raise SrlmError(
                    f"{empty} draws of {self.size} prompts in a row gave no training data (every "
                    "group's samples scored the same): the reward cannot tell this model's "
                    "samples apart; raise method.samples_per_question or the temperature"
                )
        stats["draws"] = empty + 1
        stats["prepare_seconds"] = time.time() - started
        # The engine's accelerator memory is the trainer's until the next step (rollout.sleep).
        slept = self.engine().sleep()
        if self.engine().sleeps:
            stats["engine_sleep_seconds"] = woke + slept
        self.prepared = [examples, stats]

    def policy(self):
        """The engine, for the reward source, without its release(): a judge with its own
        model (reward=judge_model, reward_model) releases the policy's engine before it loads
        in the iterative regime, and a restarted engine would serve the phase's starting
        weights, not the synced ones. Online, both stay up side by side."""
        return self.engine()

    @property
    def size(self) -> int:
        return self.config.trainer.prompts_per_step

    def sync(self, force: bool = False) -> None:
        """Put the trainer's weights into the engine when a sync is due (or `force`: the
        evaluation needs the current model), and check them."""
        s = self.config.trainer.sync_every
        if self.synced_step == self.step:
            return
        if not force and self.synced_step is not None and self.step % s:
            return
        engine = self.engine()  # started here on first use: engine time, not sync time
        t0 = time.time()
        figures = engine.sync_from(self.model)
        was_training = self.model.training
        self.model.eval()
        probe = token_logprobs(self.model, self.probe_ids)
        self.model.train(was_training)
        diff = engine.check_probe(
            probe,
            self.config.rollout.check_weights_tolerance,
            f"the trainer's weights at step {self.step}",
        )
        if "sampler" in self.frozen:
            self.frozen["sampler"].load_state_dict(self.model.state_dict())
        self.synced_step = self.step
        self.last_sync = {
            "sync_seconds": time.time() - t0,
            "sync_bytes": figures.get("sync_bytes"),
            "sync_probe_diff": diff,
        }

    # ---- the step

    def training_step(self, batch, batch_idx):
        examples, stats = self.prepared
        t0 = time.time()
        self.train_started = t0
        self.step_stats = stats | {"examples": len(examples)}
        if not examples:
            # Another rank has data this step: join its gradient all-reduce with zeros.
            loss = sum(p.sum() for p in self.model.parameters() if p.requires_grad) * 0.0
            self.history.append({"loss": None} | self.step_stats | {"step": self.step + 1})
            return loss
        max_length = self.config.model.max_length
        if self.grouped:
            opt = self.opt
            rows = group_rows(self.tok, examples, max_length, opt.advantage_scale)
        else:
            rows = [encode_example(self.tok, ex, max_length) for ex in examples]
        batch = {k: v.to(self.device) for k, v in self.collate(rows).items()}
        with torch.no_grad():
            self._score_fixed(batch)
        loss, metrics = self.compute(batch)
        self.log("train_loss", loss.detach(), prog_bar=True, batch_size=len(rows))
        row = {"loss": float(loss.detach())} | {k: float(v) for k, v in metrics.items()}
        self.history.append(row | self.step_stats | {"step": self.step + 1})
        return loss

    def _score_fixed(self, batch: dict) -> None:
        """The old and reference log-probs of the batch, from the frozen models (or, online,
        the trainer's own model before this step's update)."""
        sampler = self.frozen.get("sampler", self.model)
        reference = self.frozen.get("reference")
        modes = [m.training for m in (sampler, reference) if m is not None]
        for m in (sampler, reference):
            if m is not None:
                m.eval()
        if self.grouped:
            batch["old_tokens"] = token_logps(sampler, batch)[0]
            if reference is not None:
                batch["ref_tokens"] = token_logps(reference, batch)[0]
        elif reference is not None:
            sums, _ = sequence_logps(reference, batch)
            n = batch["ref"].shape[0]
            batch["ref"] = torch.stack([sums[:n], sums[n:]], dim=1).float()
        for m, mode in zip([m for m in (sampler, reference) if m is not None], modes, strict=True):
            m.train(mode)

    def on_train_batch_end(self, outputs, batch, batch_idx) -> None:
        if outputs is not None:
            # Training: from the batch's encoding to the end of the optimizer step (backward
            # included); the step: from the sync check before sampling to here.
            now = time.time()
            self.history[-1]["train_seconds"] = now - self.train_started
            self.history[-1]["step_seconds"] = now - self.step_started
            self.step += 1
            if self.last_sync:
                self.history[-1] |= self.last_sync
                self.last_sync = {}
            self.history[-1]["lr"] = self.trainer.optimizers[0].param_groups[0]["lr"]
            if self.world > 1:
                self.history[-1] = merge_rank_rows(_gather(self.history[-1], self.world))
            h = self.history[-1]
            if self.rank:
                return
            reward = h.get("sample_accuracy", h.get("score_mean"))
            print(
                f"[srlm] step {self.step}/{self.total_steps}: {h['examples']} "
                f"{'groups' if self.grouped else 'pairs'}, loss {h['loss']:.4f}, mean reward "
                f"{'-' if reward is None else f'{reward:.3f}'}, {h['step_seconds']:.1f} s",
                flush=True,
            )

    def configure_optimizers(self):
        # One optimizer for the whole run: each iteration's fit continues its state.
        if self.optim is None:
            self.optim = super().configure_optimizers()
            if "optimizer" in self.resume:
                self.optim["optimizer"].load_state_dict(self.resume["optimizer"])
                self.optim["lr_scheduler"]["scheduler"].load_state_dict(self.resume["scheduler"])
        return self.optim

    # PreferenceModule scores its fixed rows before and after training; here there are none.
    def on_fit_start(self) -> None:
        self.last_sync = {}

    def on_train_end(self) -> None:
        pass

    def state(self) -> dict:
        return {
            "step": self.step,
            "draws": self.draws,
            "optimizer": self.optim["optimizer"].state_dict(),
            "scheduler": self.optim["lr_scheduler"]["scheduler"].state_dict(),
        }


def _frozen_copy(model):
    import copy

    frozen = copy.deepcopy(model).eval()
    for p in frozen.parameters():
        p.requires_grad_(False)
    return frozen


def _mean_tokens(outs) -> float:
    counts = [c.num_tokens for cs in outs for c in cs]
    return sum(counts) / max(len(counts), 1)


def _rank_world() -> tuple[int, int]:
    """This process's rank and the number of ranks (srlm.training.ranks sets them)."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def _global_count(n: int, world: int) -> int:
    if world == 1:
        return n
    t = torch.tensor([n], dtype=torch.long)
    torch.distributed.all_reduce(t)
    return int(t.item())


def _gather(obj, world: int) -> list:
    out: list = [None] * world
    torch.distributed.all_gather_object(out, obj)
    return out


# The same on every rank: the step's place in the run.
SHARED = ("step", "draws", "lr")


def merge_rank_rows(rows: list[dict]) -> dict:
    """One step's figures from every rank's row: counts (integers: examples, pairs, judgements,
    questions all right...) summed; clock readings and the probe difference the worst rank's;
    the rest (losses, rewards, rates, lengths) the mean of the ranks that have them."""
    out: dict = {}
    for key in dict.fromkeys(k for r in rows for k in r):
        values = [r[key] for r in rows if is_number(r.get(key))]
        if key in SHARED or not values:
            out[key] = next((r[key] for r in rows if r.get(key) is not None), None)
        elif key.endswith("_seconds") or key == "sync_probe_diff":
            out[key] = max(values)
        elif all(isinstance(v, int) for v in values):
            out[key] = sum(values)
        else:
            out[key] = sum(values) / len(values)
    return out


def run_online(
    config: Config, run_dir, method, first: int, model_dir: str, initial: str, engine, evaluation
) -> None:
    """Iterations first..method.iterations of an online regime, from the model in `model_dir`
    (M_{first-1}); the evaluation of M_{first-1} first if it is not recorded. `engine`: the
    phase's engine (srlm.runner.PolicyEngine), serving `model_dir` until the first sync;
    `evaluation(config, run_dir)`: srlm's evaluate stage (srlm.eval.stage.Evaluation).
    In a rank of several (trainer.devices > 1, srlm.runner.online_rank), `engine` is the
    rank's own and rank 0 alone writes records and evaluates."""
    last = config.method.iterations
    tc = config.trainer
    rank, world = _rank_world()
    set_torch_threads(tc)  # one rank per device (srlm.runner.run_phase)
    if world > 1:
        _join_ranks(tc)
    # Each rank samples its own prompts with its own random stream.
    L.seed_everything(config.seed + first + 7919 * rank, workers=True, verbose=False)
    try:
        evaluates = method.evaluates or config.eval.enabled
        if evaluates and not run_dir.finished(first - 1, "evaluate"):
            if rank == 0:
                _evaluate(config, run_dir, method, engine, first - 1, evaluation)
            _barrier(world)
        if first > last:
            return
        tok = load_tokenizer(model_dir)
        model = load_causal_lm(model_dir, config.model, tc)
        start = initial or model_dir
        needs_initial = tc.reference == "initial" and loss_spec(config.optimizer.loss).reference
        initial_model = (
            _frozen_copy(load_causal_lm(start, config.model, tc)) if needs_initial else None
        )
        state = {}
        if first > 1:
            state = torch.load(
                run_dir.iter_dir(first - 1) / STATE_FILE, map_location="cpu", weights_only=False
            )
            if rank == 0:
                print(
                    f"[srlm] online: resuming at iteration {first}, step {state['step']}",
                    flush=True,
                )
        module = OnlineModule(model, config, method, engine, tok, initial_model, state)
        precision = resolve_precision(tc)
        for t in range(first, last + 1):
            if rank == 0:
                print(
                    f"[srlm] iteration {t}: online, {tc.steps_per_iteration} steps "
                    f"(sync every {tc.sync_every})" + (f", {world} ranks" if world > 1 else ""),
                    flush=True,
                )
            started = time.time()
            module.t, module.history = t, []
            trainer = L.Trainer(
                accelerator=tc.accelerator,
                devices=world,
                strategy=make_strategy(tc, model, world),
                # The ranks are the ones srlm.training.ranks started (not a SLURM job's tasks).
                plugins=[LightningEnvironment()] if world > 1 else None,
                # The data of a step comes from the engine; a distributed sampler over _Ticks
                # would list its billion indices.
                use_distributed_sampler=False,
                precision=precision,
                max_steps=tc.steps_per_iteration,
                gradient_clip_val=config.optimizer.max_grad_norm or None,
                logger=False,
                enable_checkpointing=False,
                enable_model_summary=False,
                enable_progress_bar=False,
                default_root_dir=str(run_dir.iter_dir(t) / "lightning"),
                callbacks=[KeepSignalHandlers(run_dir.iter_dir(t).name)],
            )
            trainer.fit(module, DataLoader(_Ticks(), batch_size=None))
            stats = _iteration_stats(module.history) | {"precision": precision}
            if world > 1:
                hashes = _gather(weights_fingerprint(model), world)
                if len(set(hashes)) > 1:
                    raise SrlmError(f"online ranks ended iteration {t} with different weights")
                stats |= {"world_size": world, "rank_weights_sha256": hashes}
            model.eval()
            probe = token_logprobs(model, module.probe_ids)
            model.train()
            if rank == 0:
                save_checkpoint(model, tok, run_dir.checkpoint(t), module.history, stats, probe)
                _save_state(run_dir.iter_dir(t) / STATE_FILE, module.state())
                run_dir.mark_finished(t, "train", stats, started, **engine.timing())
            if evaluates:
                engine().wake()
                module.sync(force=True)  # the engine serves M_t for its evaluation
                if rank == 0:
                    _evaluate(config, run_dir, method, engine, t, evaluation)
            _barrier(world)  # no rank goes on (or returns) before the records exist
    finally:
        engine.release()


def _join_ranks(tc) -> None:
    """The ranks' process group, made here rather than by Lightning's first fit: rank 0
    evaluates before any fit while the others wait, and each iteration's fit reuses it."""
    import datetime

    if not torch.distributed.is_initialized():
        backend = "gloo" if tc.accelerator == "cpu" else "nccl"
        # A rank waits at a barrier while rank 0 evaluates: longer than the default 30 min.
        torch.distributed.init_process_group(backend, timeout=datetime.timedelta(hours=12))


def _barrier(world: int) -> None:
    if world > 1:
        torch.distributed.barrier()


def _evaluate(config, run_dir, method, engine, t: int, evaluation) -> None:
    print(f"[srlm] iteration {t}: evaluate", flush=True)
    started = time.time()
    stats = method.evaluate(t, engine) if method.evaluates else {}
    stats |= evaluation(config, run_dir).evaluate(t, engine)
    run_dir.mark_finished(t, "evaluate", stats, started, **engine.timing())


def _save_state(path: Path, state: dict) -> None:
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    torch.save(state, tmp)
    os.replace(tmp, path)


def _iteration_stats(history: list[dict]) -> dict:
    """An iteration's figures: its steps' means and its time split by kind."""

    def mean(key: str) -> float | None:
        xs = [h[key] for h in history if h.get(key) is not None]
        return sum(xs) / len(xs) if xs else None

    # The reward source's health (parse failures, ties, order flips...) averaged over steps.
    health = sorted(
        {k for h in history for k, v in h.items() if k.startswith("reward_") and is_number(v)}
    )
    seconds = {
        k: sum(h.get(k) or 0.0 for h in history)
        for k in (
            "generation_seconds",
            "scoring_seconds",
            "train_seconds",
            "sync_seconds",
            "step_seconds",
        )
    }
    # Outside the work of the steps: syncs, probe checks, prompt building, redrawn prompts'
    # bookkeeping, Lightning's loop.
    work = sum(seconds[k] for k in ("generation_seconds", "scoring_seconds", "train_seconds"))
    seconds["outside_seconds"] = seconds["step_seconds"] - work
    return (
        {
            "steps": len(history),
            "examples": sum(h["examples"] for h in history),
            "syncs": sum("sync_seconds" in h for h in history),
            "draws": sum(h["draws"] for h in history),
            "loss": mean("loss"),
            "loss_first": history[0]["loss"] if history else None,
            "loss_last": history[-1]["loss"] if history else None,
            "sample_accuracy": mean("sample_accuracy"),
            "score_mean": mean("score_mean"),
            "response_tokens": mean("response_tokens"),
            "kl": mean("grpo/kl"),
            "clip_fraction": mean("grpo/clip_fraction"),
            "sampled_nll": mean("grpo/sampled_nll"),
            "sync_probe_diff_max": max(
                (h.get("sync_probe_diff") or 0.0 for h in history), default=None
            ),
        }
        | {k: mean(k) for k in health}
        | seconds
    )
