"""Process lifetime: every process of a run ends with the run.

A run is a tree: the driver (``python -m srlm``), one child per phase (srlm.runner), and below
a phase child its trainer ranks (srlm.training.ranks), rollout replicas (srlm.rollout.replicas)
or vLLM's engine process. Three rules keep the tree from outliving its root:

- ``die_with_parent()``, first thing in every child srlm starts: the kernel sends the child
  SIGKILL when its parent dies, by any means (kill -9 included), so a killed phase child takes
  its ranks and replicas with it at once.
- ``exit_on_signal()`` in the same children: SIGTERM or SIGINT ends the process at once, as the
  default action does. Lightning's trainer would otherwise note the SIGTERM and train on (its
  handler only asks the loop to stop between batches, and not at all in the last one), leaving
  an orphan that writes into the run directory.
- ``reap_with_me(pids)`` for processes srlm does not start itself (vLLM's engine core): a small
  watcher process that kills them when the calling process goes away.

The driver's own SIGTERM/SIGINT handling (stop the phase child, say so, exit) is
srlm.runner.stop_on_signals. Nothing half-done is recorded when a process dies at any point:
every stage file is written to a temporary name and renamed, and the stage's record in
``stages.json`` is written after its files (srlm.rundir).

``fault(where)`` is the crash test's hook (tests/integration/test_crash.py): with
``SRLM_FAULT=<where>`` in the environment, reaching that point kills the run's whole process
group with SIGKILL, as a power cut or the OOM killer would.
"""

from __future__ import annotations

import ctypes
import multiprocessing as mp
import os
import signal
import subprocess
import sys
import time

PR_SET_PDEATHSIG = 1  # linux/prctl.h
FAULT_ENV = "SRLM_FAULT"
FAULT_SIGNAL_ENV = "SRLM_FAULT_SIGNAL"


def die_with_parent(parent_pid: int | None = None) -> None:
    """Have the kernel SIGKILL this process when its parent dies (Linux; elsewhere nothing).

    `parent_pid` defaults to the multiprocessing parent. The parent may have died before this
    call, when the signal could no longer be armed: then this process exits at once.
    """
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if parent_pid is None:
        parent = mp.parent_process()
        parent_pid = parent.pid if parent is not None else None
    if parent_pid is not None and os.getppid() != parent_pid:
        os._exit(128 + signal.SIGKILL)


def _die(signum, frame) -> None:
    # The default action, taken again, so that the exit status says which signal ended it.
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def exit_on_signal() -> None:
    """SIGTERM and SIGINT end this process at once (its own children follow: die_with_parent).

    A handler rather than SIG_DFL: Lightning keeps a handler it finds installed (and calls it
    after its own notice), where it would replace the default action with one that trains on.
    """
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _die)


def child_setup() -> None:
    """What every child process srlm starts runs first."""
    die_with_parent()
    exit_on_signal()


_WATCHER = """
import os, signal, sys
# Outlive a SIGTERM to the whole group: the watched process may still need its targets killed.
signal.signal(signal.SIGTERM, signal.SIG_IGN)
signal.signal(signal.SIGINT, signal.SIG_IGN)
targets = [tuple(map(int, a.split(":"))) for a in sys.argv[1:]]
sys.stdin.buffer.read()  # returns when every writer, i.e. the watched process, is gone
for pid, start in targets:
    try:
        with open(f"/proc/{pid}/stat") as f:
            same = int(f.read().rsplit(")", 1)[1].split()[19]) == start
        if same:  # not a later process that reused the number
            os.kill(pid, signal.SIGKILL)
    except (OSError, ValueError, IndexError):
        pass
"""


def start_time(pid: int) -> int:
    """A process's start time in clock ticks since boot (field 22 of /proc/PID/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[19])


def reap_with_me(pids: list[int]) -> subprocess.Popen | None:
    """Start a watcher that SIGKILLs `pids` once this process is gone (for whatever reason).

    The watcher reads a pipe only this process holds open: the kernel closes it when this
    process dies, even by SIGKILL, and the read returns. Keep the returned object alive as long
    as the pids should live; ``stop_reaper`` ends the watcher when they have exited normally.
    """
    if not pids or not sys.platform.startswith("linux"):
        return None
    targets = []
    for pid in pids:
        try:
            targets.append(f"{pid}:{start_time(pid)}")
        except OSError:
            continue
    if not targets:
        return None
    return subprocess.Popen(
        [sys.executable, "-c", _WATCHER, *targets],
        stdin=subprocess.PIPE,
        # The watcher must not hold the driver's terminal or output pipes open.
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        close_fds=True,
    )


def stop_reaper(watcher: subprocess.Popen | None) -> None:
    """End a watcher from reap_with_me (it kills whatever of its pids still runs)."""
    if watcher is None:
        return
    if watcher.stdin is not None:
        watcher.stdin.close()
    try:
        watcher.wait(timeout=10)
    except subprocess.TimeoutExpired:
        watcher.kill()
        watcher.wait()


def children(pid: int | None = None) -> set[int]:
    """The direct children of a process (default: this one), from /proc."""
    pid = os.getpid() if pid is None else pid
    out = set()
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                out |= {int(p) for p in f.read().split()}
    except OSError:
        pass
    return out


def fault(where: str) -> None:
    """The crash test's kill point: when SRLM_FAULT names `where`, signal the run's whole
    process group (the test starts the run as a session of its own), with SIGKILL by default or
    the signal SRLM_FAULT_SIGNAL names (TERM, INT); with SRLM_FAULT_TARGET=driver, the driver
    alone (the group's leader), after which this process waits for its parent-death signal.
    Does nothing otherwise (one environment lookup)."""
    if os.environ.get(FAULT_ENV) != where:
        return
    sig = signal.Signals["SIG" + os.environ.get(FAULT_SIGNAL_ENV, "KILL").upper()]
    driver = os.environ.get("SRLM_FAULT_TARGET") == "driver"
    # The time goes with the notice, so that a test can measure how long the stop takes.
    print(
        f"[srlm] fault {where}: {sig.name} to the {'driver' if driver else 'process group'} "
        f"at {time.time():.3f}",
        flush=True,
    )
    sys.stderr.flush()
    if not driver:
        os.killpg(os.getpgid(0), sig)
        return
    os.kill(os.getpgid(0), sig)
    if os.getpgid(0) != os.getpid():
        time.sleep(60)  # die_with_parent ends this process; a process still here is the bug
