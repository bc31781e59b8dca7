"""The iteration engine: prepare, warm start, then a training regime; resume at the first
unfinished stage.

    run(config)
      prepare()      checks that need no model (data files, SLURM allocation, the model's
                     location), then claims the run directory
      warm_start()   the method's supervised warm start, when it has one (Method.warm_start_from
                     says whether it needs iteration 1's rollout on M_0 first)
      iterate()      the iterative regime: for each iteration the rollout phase on M_t, the
                     train phase (M_t -> M_{t+1}), the evaluate phases; or online(), the
                     online and semi-online regimes
      summary, report, logger

Each phase (the rollout stages of an iteration, which share one engine serving M_t; a train
stage; an evaluate stage) runs in a child process by default. The evaluate stage of M_t and the
rollout stages of iteration t+1 sample from the same model, so they share one phase and one
engine ("evaluate+rollout"); RUN_DIR/phases.jsonl logs each phase's whole time. When the child exits, every byte
its engine held (vLLM's KV cache and workers, the trainer's optimizer state, CUDA contexts) is
gone before the next phase starts, so rollout and training never fight over an accelerator. The
cost is one interpreter start and model load per phase: measured in
benchmarks/isolation_overhead.py, small next to any stage's own work. `isolate_stages=false`
runs phases in-process (for debugging).

**A kept engine** (rollout.keep_engine; on by default where torch sees no GPU). Engine start is the
largest cost outside the work on CPU (~20 s a phase, against ~1 s to load a checkpoint into a
running engine). With it, the driver holds one engine for the whole run (kept_engine()): the
rollout, evaluate and win-rate phases run in the driver on that engine, which loads each new
checkpoint in place and checks it against the trainer's probe; the train phases still run in
child processes, as above, while the engine sleeps (vLLM's sleep mode on a GPU frees its memory
for the trainer; without a sleep mode a GPU run refuses the setting; on CPU the engine only
waits, holding its KV cache in host memory). A phase run in the driver keeps every stage record
as a child's would, so a rerun resumes the same way.

**Regimes.** A regime is a function with iterate()'s signature, ``(config, run_dir,
start_model, logger) -> (summary rows, final model)``, chosen in run() by trainer.sync_every;
prepare(), warm_start(), the run directory's stage records and the summary are shared. online()
(trainer.sync_every >= 1) runs the iterations still to do in one phase process that holds a
persistent engine and the trainer side by side (srlm.training.online): generation and training
interleave, the engine takes the trainer's weights in memory every s optimizer steps, and each
iteration (a block of steps) still ends in a checkpoint and its "train" and "evaluate" records,
so that a rerun resumes at the first iteration not finished.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from srlm.config import Config
from srlm.errors import SetupError, SrlmError
from srlm.eval.stage import Evaluation
from srlm.methods import get_method
from srlm.models import resolve_model_dir
from srlm.preflight import kept_engine_needs_sleep, preflight
from srlm.procs import child_setup, fault
from srlm.rollout.engines import make_engine
from srlm.rundir import RunDir, write_json
from srlm.summary import format_summary, iteration_row, report_line
from srlm.tracking import make_logger


def run(config: Config, preflown: bool = False) -> list[dict]:
    """Run (or resume) the experiment of a validated config; the per-iteration summary rows.
    `preflown`: this process already ran the pre-flight on this config (python -m srlm does,
    before Hydra starts)."""
    with stop_on_signals():
        return _run(config, preflown)


def _run(config: Config, preflown: bool) -> list[dict]:
    run_dir, logger = prepare(config, preflown)
    base = resolve_model_dir(config.model.source, config.model.path)
    with kept_engine(config):
        start = warm_start(config, run_dir, base)
        regime = online if config.trainer.sync_every else iterate
        rows, final = regime(config, run_dir, start, logger)
    write_json(Path(config.run_dir) / "summary.json", rows)
    report = _write_report(config.run_dir)
    logger.finish(
        rows, report
    )  # before the table, so that wandb's own closing lines do not bury it
    print("\n" + format_summary(rows))
    print(f"\nrun directory: {config.run_dir}   final model: {final}")
    print(report_line(report, config.run_dir))
    return rows


def prepare(config: Config, preflown: bool = False):
    """The pre-flight (srlm.preflight: data, models, lengths, this machine), before any model
    loads or any file is written; then claim the run directory."""
    if not preflown:
        preflight(config)
    run_dir = RunDir(config.run_dir)
    run_dir.bind(config)
    return run_dir, make_logger(config, run_dir)


def warm_start(config: Config, run_dir: RunDir, base: str) -> str:
    """The supervised warm start before iteration 1, when the method has one and it is on
    (Method.warm_start_from says from what data); the model iteration 1 starts from."""
    ws = getattr(config.method, "warm_start", None)
    if ws is None or not ws.enabled:
        return base
    if not run_dir.finished(0, "warm_start"):
        method = get_method(config.method.name)
        if method.warm_start_from == "first_rollout":
            # Its data are M_0's own outputs in iteration 1, so M_0 is measured and those
            # stages run first, on M_0; iterate() then finds them finished.
            if evaluation_on(config):
                evaluate_model(config, run_dir, 0, base, base, rollout_next=True)
            if not all(run_dir.finished(1, s) for s in method.rollout_stages):
                _run_phase(config, "rollout", 1, base)
        _run_phase(config, "warm_start", 0, base)
    # A warm start without examples records `skipped` and writes no checkpoint: M_0 goes on.
    trained = run_dir.trained_model(0)
    return str(trained) if trained is not None else base


def iterate(config: Config, run_dir: RunDir, start: str, logger) -> tuple[list[dict], str]:
    """The iterative regime: for t = 1..iterations, the rollout phase on M_t, the train phase
    (M_t -> M_{t+1}), the evaluate phases; each phase skipped when the run directory records
    it finished. Returns the summary rows (iteration 0 = the starting model) and the final model."""
    initial = current = start
    method = get_method(config.method.name)
    evaluates = evaluation_on(config)
    rows = []
    last = config.method.iterations
    if evaluates:
        evaluate_model(config, run_dir, 0, current, initial, rollout_next=last >= 1)
        rows.append(iteration_row(0, run_dir.stages(0)))
    for t in range(1, last + 1):
        started = time.time()
        if not all(run_dir.finished(t, s) for s in method.rollout_stages):
            _run_phase(config, "rollout", t, current)
        if not run_dir.finished(t, "train"):
            _run_phase(config, "train", t, current)
        if run_dir.checkpoint(t).exists():
            current = str(run_dir.checkpoint(t))
        if evaluates:
            evaluate_model(config, run_dir, t, current, initial, rollout_next=t < last)
        row = iteration_row(t, run_dir.stages(t))
        rows.append(row)
        logger.log_iteration(t, run_dir, row, time.time() - started)
    return rows, current


def online(config: Config, run_dir: RunDir, start: str, logger) -> tuple[list[dict], str]:
    """The online and semi-online regimes (trainer.sync_every >= 1, srlm.training.online): one
    phase process trains the iterations still to do, each a block of optimizer steps with the
    engine's weights synced in memory, and evaluates each iteration's model on that engine."""
    last = config.method.iterations
    evaluates = evaluation_on(config)
    first = next((t for t in range(1, last + 1) if not run_dir.finished(t, "train")), last + 1)
    current = start if first == 1 else str(run_dir.checkpoint(first - 1))
    if first <= last or (evaluates and not run_dir.finished(last, "evaluate")):
        _run_phase(config, "online", first, current, start)
    rows = []
    for t in range(0 if evaluates else 1, last + 1):
        row = iteration_row(t, run_dir.stages(t))
        rows.append(row)
        if t:
            seconds = run_dir.stages(t).get("train", {}).get("seconds", 0.0)
            logger.log_iteration(t, run_dir, row, seconds)
    return rows, str(run_dir.checkpoint(last))


def evaluation_on(config: Config) -> bool:
    """Whether the run has an evaluate stage: the method's own metrics or srlm/eval's."""
    return get_method(config.method.name).evaluates or config.eval.enabled


def evaluate_model(
    config: Config,
    run_dir: RunDir,
    t: int,
    model_dir: str,
    initial: str,
    rollout_next: bool = False,
) -> None:
    """The evaluate phases of M_t (srlm/eval/stage.py), each skipped when finished.

    `rollout_next`: iteration t+1's rollout samples from this same model, so when it is still
    to do it runs in the evaluate phase's process, on its engine: one process start, import and
    engine start fewer per iteration (benchmarks/iteration_breakdown.py)."""
    ev = evaluation(config, run_dir)
    if run_dir.finished(t, "evaluate") and not ev.complete(t):
        # Evaluated by an older srlm, or before these parts were turned on: measure again.
        run_dir.forget(t, ("evaluate", "winrates"))
    if not run_dir.finished(t, "evaluate"):
        stages = get_method(config.method.name).rollout_stages
        if rollout_next and not all(run_dir.finished(t + 1, s) for s in stages):
            _run_phase(config, "evaluate+rollout", t, model_dir)
        else:
            _run_phase(config, "evaluate", t, model_dir)
    if t >= 1 and not run_dir.finished(t, "winrates") and ev.win_rates:
        _run_phase(config, "winrates", t, model_dir, initial)


def evaluation(config: Config, run_dir: RunDir):
    return Evaluation(config, run_dir, get_method(config.method.name)(config, run_dir))


def _write_report(run_dir: str) -> Path | None:
    try:
        # Imported here so that a missing plotting library fails the report, not the run.
        from srlm.report import write_report

        return write_report(run_dir)
    except Exception as e:  # the report is a view of the run: it must never lose the run itself
        print(
            f"[srlm] warning: the report could not be written ({type(e).__name__}: {e})",
            file=sys.stderr,
        )
        return None


class Stopped(BaseException):
    """SIGTERM or SIGINT reached the driver. A BaseException, so that no `except Exception`
    on the way up mistakes it for a stage's own failure."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


# Seconds the driver waits for a phase child to exit after SIGTERM before it sends SIGKILL. A
# child dies at once on SIGTERM (srlm.procs.exit_on_signal); the margin is for a machine under
# load. With the driver's own exit it stays well inside the 30 s that SLURM (KillWait) and
# most schedulers allow between SIGTERM and SIGKILL.
STOP_WAIT_S = 15


@contextmanager
def stop_on_signals():
    """While the run goes on, SIGTERM or SIGINT stops it: the phase child is ended (its ranks and
    engines die with it), one line says what stopped, and the process exits with 128 + the
    signal's number, as a shell reports a process ended by that signal. Every finished stage is
    kept, and no half-done one is recorded (srlm.procs), so the same command resumes."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set in the main thread; the caller owns signals
        return
    received: list[int] = []

    def handler(signum, frame):
        if received:
            return  # already stopping: a second signal must not interrupt the clean-up
        received.append(signum)
        raise Stopped(signum)

    old = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    except Stopped as e:
        name = signal.Signals(e.signum).name
        print(
            f"srlm: error: stopped by {name}; finished stages are kept: rerun the same command "
            "to resume",
            file=sys.stderr,
            flush=True,
        )
        sys.exit(128 + e.signum)
    finally:
        for s, h in old.items():
            signal.signal(s, h)


# The phases that sample from the policy: the ones a kept engine serves.
SAMPLING_PHASES = ("rollout", "evaluate", "evaluate+rollout", "winrates")
# The iterative regime's kept engine while a run is in kept_engine(); None otherwise.
_kept: PolicyEngine | None = None


@contextmanager
def kept_engine(config: Config):
    """rollout.keep_engine: one engine in this (the driver's) process serves every sampling
    phase of the iterative regime, and takes each new model's weights in place when a phase
    needs it; the train phases still run in processes of their own, while the engine sleeps
    (on a GPU; on CPU it only waits). Closed when the run ends, however it ends. The online
    regimes hold their own persistent engine."""
    global _kept
    if not keeps_engine(config):
        yield
        return
    _kept = PolicyEngine("", config, keep=True)
    try:
        yield
    finally:
        kept, _kept = _kept, None
        kept.release()


def keeps_engine(config: Config) -> bool:
    """Whether the iterative regime keeps one engine for the run (rollout.keep_engine)."""
    setting = config.rollout.keep_engine
    if config.trainer.sync_every or setting == "off":
        return False
    if setting == "on":
        return True
    import torch

    # auto: where it is measured (CPU). On a GPU the kept engine's sleep path is untested.
    return not torch.cuda.is_available()


def _run_phase(config: Config, phase: str, t: int, model_dir: str, initial: str = "") -> None:
    started = time.time()
    if _kept is not None and phase in SAMPLING_PHASES:
        _kept.serve(model_dir)
        run_phase(config, phase, t, model_dir, initial, engine=_kept)
    else:
        if _kept is not None:
            _kept.sleep()  # the accelerator is the trainer's until the next sampling phase
        _run_phase_process(config, phase, t, model_dir, initial)
    RunDir(config.run_dir).log_phase(phase, t, started, phase_stages(config, phase, t))


def _run_phase_process(config: Config, phase: str, t: int, model_dir: str, initial: str) -> None:
    if not config.isolate_stages:
        run_phase(config, phase, t, model_dir, initial)
        return
    proc = mp.get_context("spawn").Process(
        target=_child, args=(config, phase, t, model_dir, initial), name=f"srlm-{phase}-{t}"
    )
    try:
        proc.start()
        proc.join()
    except BaseException:
        # Stopped (or any error in the driver): the child must not outlive it.
        _stop_child(proc)
        raise
    check_phase_exit(config, phase, t, proc.exitcode)


def _stop_child(proc) -> None:
    if proc.is_alive():
        proc.terminate()
        proc.join(STOP_WAIT_S)
    if proc.is_alive():
        proc.kill()
        proc.join()


def check_phase_exit(config: Config, phase: str, t: int, exitcode: int) -> None:
    """Raise unless the phase's process succeeded, or crashed only after recording all its work."""
    if exitcode == 0:
        return
    if exitcode != 2 and _phase_done(config, phase, t):
        # Every stage of the phase was recorded (each record is written after its files), so
        # the crash came after the work: seen as SIGABRT from vLLM's threads at process exit.
        # Exit code 2 is srlm's own error, which is never passed over.
        print(
            f"[srlm] warning: the {phase} phase of iteration {t} ended with exit code "
            f"{exitcode} after all its stages were recorded; going on with them",
            file=sys.stderr,
        )
        return
    how = f"exit code {exitcode}" + (f", {_signal_name(-exitcode)}" if exitcode < 0 else "")
    raise SrlmError(
        f"the {phase} phase of iteration {t} failed ({how}; see above). "
        + RunDir(config.run_dir).resume_hint()
    )


def _signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def phase_stages(config: Config, phase: str, t: int) -> list[tuple[int, str]]:
    """The (iteration, stage) records a phase of iteration t makes."""
    rollout = [(t, s) for s in get_method(config.method.name).rollout_stages]
    if phase == "rollout":
        return rollout
    if phase == "evaluate+rollout":
        return [(t, "evaluate")] + [(t + 1, s) for _, s in rollout]
    if phase == "online":  # M_{t-1}'s evaluation if missing, then each iteration's stages
        last = config.method.iterations
        stages = [(i, s) for i in range(t, last + 1) for s in ("train", "evaluate")]
        return [(t - 1, "evaluate")] + stages if evaluation_on(config) else stages[::2]
    return [(t, phase)]  # train, warm_start, evaluate, winrates: one stage of the same name


def _phase_done(config: Config, phase: str, t: int) -> bool:
    """Whether every stage a phase runs is recorded as finished in the run directory."""
    run_dir = RunDir(config.run_dir)
    return all(run_dir.finished(i, s) for i, s in phase_stages(config, phase, t))


def _child(config: Config, phase: str, t: int, model_dir: str, initial: str) -> None:
    child_setup()
    try:
        run_phase(config, phase, t, model_dir, initial)
    except SrlmError as e:
        print(f"srlm: error: {e}", file=sys.stderr)
        sys.exit(2)


class PolicyEngine:
    """The EngineFn of a phase: the rollout engine serving M_t, started on first call (a stage
    that needs no model never pays for one). A reward source with its own model (a judge model,
    a reward model) calls release() before loading it, so the two never share the accelerator's
    memory; a later stage that needs the policy again starts it again.

    Each stage starts from a random state of its own (``seed_stage``): a run resumed at the
    samples stage then draws what an uninterrupted one draws there, instead of continuing the
    random stream of a prompts stage that ran in another process. This holds for the
    transformers engine in this process (rollout=hf, one replica); vLLM's sampler lives in its
    engine process, seeded once per engine, so a resumed vLLM stage samples afresh."""

    def __init__(self, model_dir: str, config: Config, keep: bool = False):
        self.model_dir, self.config = model_dir, config
        # keep: the iterative regime's kept engine (runner.kept_engine), which serves one model
        # after another and sleeps between its phases.
        self.keep = keep
        self.engine = None
        self.new_phase = False
        self.loaded = model_dir  # the model the running engine serves
        self.seed: int | None = None
        self.start_seconds = 0.0  # spent starting engines since the last timing() call
        self.load_seconds = 0.0  # spent loading weights into the running engine, likewise

    def __call__(self):
        if self.engine is None:
            t0 = time.time()
            self.engine = make_engine(
                self.model_dir,
                self.config.model,
                self.config.rollout,
                # The online regimes' persistent engine and the iterative regime's kept one
                # sleep while the trainer trains; otherwise the engine is closed before training.
                sleep=bool(self.config.trainer.sync_every) or self.keep,
            )
            self.loaded = self.model_dir
            self.start_seconds += time.time() - t0
            if self.keep:
                self._check_sleeps()
            self._reseed()  # the engine seeds the global generator as it starts
        else:
            if self.loaded != self.model_dir:
                t0 = time.time()
                self.engine.load(self.model_dir)
                self.loaded = self.model_dir
                if self.config.rollout.check_weights:
                    tolerance = self.config.rollout.check_weights_tolerance
                    self.engine.check_weights(self.model_dir, tolerance)
                self.load_seconds += time.time() - t0
            if self.new_phase:
                self._restart_random_state()
        self.new_phase = False
        self.engine.wake()
        return self.engine

    def serve(self, model_dir: str) -> None:
        """A new phase on `model_dir`: a running engine loads its weights on the next call (a
        phase that never samples costs nothing), and its random state starts as a new engine's
        would."""
        self.model_dir = model_dir
        self.seed = None
        self.new_phase = True

    def _restart_random_state(self) -> None:
        # The transformers engine seeds torch's global generator as it starts; a kept engine
        # does so again at each phase, so that a run draws the same samples with or without it.
        # vLLM's sampler lives in its engine process, seeded once per engine.
        if self.config.rollout.engine == "hf":
            import torch

            torch.manual_seed(self.config.rollout.seed)
            self._reseed()

    def sleep(self) -> None:
        if self.engine is not None:
            self.engine.sleep()

    def _check_sleeps(self) -> None:
        import torch

        if torch.cuda.is_available() and not self.engine.sleeps:
            self.release()
            raise SetupError(kept_engine_needs_sleep("rollout", self.config.rollout.sleep))

    def timing(self) -> dict[str, float]:
        """The engine start-up and in-place weight-load seconds of the stage that just
        finished, for its record."""
        start, self.start_seconds = self.start_seconds, 0.0
        load, self.load_seconds = self.load_seconds, 0.0
        return ({"engine_seconds": start} if start else {}) | (
            {"engine_load_seconds": load} if load else {}
        )

    def seed_stage(self, t: int, stage: str) -> None:
        self.seed = stage_seed(self.config.rollout.seed, t, stage)
        self._reseed()

    def _reseed(self) -> None:
        if self.seed is not None and self.engine is not None and self.config.rollout.engine == "hf":
            import torch

            torch.manual_seed(self.seed)

    def release(self) -> None:
        if self.engine is not None:
            self.engine.close()
            self.engine = None


def online_rank(config: Config, first: int, model_dir: str, initial: str) -> dict:
    """The online phase in this process, or in one of its ranks (trainer.devices > 1,
    srlm.training.ranks.launch_ranks): the process's own engine, then the iterations."""
    from srlm.training.online import run_online

    run_dir = RunDir(config.run_dir)
    method = get_method(config.method.name)(config, run_dir)
    engine = PolicyEngine(model_dir, config)
    run_online(config, run_dir, method, first, model_dir, initial, engine, evaluation)
    return {}


def stage_seed(seed: int, t: int, stage: str) -> int:
    """The random seed of one stage of iteration t: fixed by the run's seed and the stage alone
    (zlib.crc32, not hash(): the latter differs between processes)."""
    import zlib

    return (seed * 1_000_003 + t * 1009 + zlib.crc32(stage.encode())) % 2**32


def run_phase(
    config: Config,
    phase: str,
    t: int,
    model_dir: str,
    initial: str = "",
    engine: PolicyEngine | None = None,
) -> None:
    """Run one phase of iteration t on the model in `model_dir` (M_t); `initial` is M_0's
    directory (the fixed judge of the win rates). "evaluate+rollout" evaluates the model as
    iteration t's and then runs iteration t+1's rollout stages on the same engine. `engine`:
    a kept engine serving M_t (rollout.keep_engine), left running when the phase ends."""
    if phase == "online":
        if config.trainer.devices > 1 and "LOCAL_RANK" not in os.environ:
            from srlm.training.ranks import launch_ranks

            # One process per rank, each with its own engine (srlm.training.online).
            launch_ranks(online_rank, config.trainer.devices, (config, t, model_dir, initial))
            return
        online_rank(config, t, model_dir, initial)
        return
    run_dir = RunDir(config.run_dir)
    method = get_method(config.method.name)(config, run_dir)
    if phase in SAMPLING_PHASES:
        kept = engine is not None
        engine = engine or PolicyEngine(model_dir, config)
        try:
            if phase in ("evaluate", "evaluate+rollout"):
                print(f"[srlm] iteration {t}: evaluate", flush=True)
                started = time.time()
                fault(f"{t}/evaluate:before-file")
                stats = method.evaluate(t, engine) if method.evaluates else {}
                stats |= evaluation(config, run_dir).evaluate(t, engine)
                fault(f"{t}/evaluate:after-file")
                run_dir.mark_finished(t, "evaluate", stats, started, **engine.timing())
                fault(f"{t}/evaluate:after-record")
                if phase == "evaluate":
                    return
                t += 1
            if phase == "winrates":
                print(
                    f"[srlm] iteration {t}: win rates against M_0"
                    + (f" and M_{t - 1}" if t > 1 else ""),
                    flush=True,
                )
                started = time.time()
                stats = evaluation(config, run_dir).compare(t, engine, initial)
                run_dir.mark_finished(t, "winrates", stats, started, **engine.timing())
                return
            for stage in method.rollout_stages:
                if run_dir.finished(t, stage):
                    continue
                print(f"[srlm] iteration {t}: {stage}", flush=True)
                started = time.time()
                engine.seed_stage(t, stage)
                fault(f"{t}/{stage}:before-file")
                stats = method.run_stage(stage, t, engine)
                fault(f"{t}/{stage}:after-file")
                run_dir.mark_finished(t, stage, stats, started, **engine.timing())
                fault(f"{t}/{stage}:after-record")
        finally:
            if not kept:
                engine.release()
        return

    # Only a phase that trains imports Lightning: seconds a rollout or evaluate process saves.
    from srlm.core.losses import loss_spec
    from srlm.training.model import load_tokenizer
    from srlm.training.selection import kept_score
    from srlm.training.trainer import train

    tok = load_tokenizer(model_dir)
    selection = None
    extra: dict = {}
    if phase == "warm_start":
        ws = config.method.warm_start
        examples = method.warm_start_examples(tok)
        opt = ws.optimizer()
        stage = "warm_start"
    else:
        opt = config.optimizer.for_iteration(t)
        stage = "train"
        if loss_spec(opt.loss).inputs == "groups":
            groups = method.training_groups(t, tok)
            # A group whose samples all got the same reward has no advantage: no policy
            # gradient, and (the reference being the sampler, M_t) a KL term near zero.
            examples = [g for g in groups if len(set(g.rewards)) > 1]
            extra = {"groups": len(groups), "groups_uniform": len(groups) - len(examples)}
        else:
            examples = method.training_examples(t, tok)
        m = config.method
        if m.selects:
            validation = method.validation(t, tok)
            known = kept_score(run_dir.stages(t - 1).get("train"), validation.name)
            selection = (validation, m.select_checkpoints, m.select_from_start, known)
    if not examples:
        # Defined outcome of an iteration without pairs: M_{t+1} = M_t, recorded and reported.
        print(f"[srlm] iteration {t}: no training examples; the model is carried over unchanged")
        run_dir.mark_finished(t, stage, {"skipped": "no training examples"} | extra)
        return
    print(f"[srlm] iteration {t}: {stage} on {len(examples)} examples ({opt.loss})", flush=True)
    started = time.time()
    fault(f"{t}/{stage}:before-file")
    stats = train(
        examples,
        model_dir,
        run_dir.checkpoint(t),
        config.model,
        replace(opt),
        config.trainer,
        seed=config.seed + t,
        selection=selection,
    )
    fault(f"{t}/{stage}:after-file")
    run_dir.mark_finished(t, stage, extra | stats, started)
    fault(f"{t}/{stage}:after-record")
