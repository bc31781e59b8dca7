"""Process lifetime (srlm.procs) and the driver's signal handling (srlm.runner.stop_on_signals),
with real processes: a few seconds in all."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux prctl")


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _wait_gone(pid: int, limit: float = 5.0) -> float | None:
    t0 = time.time()
    while time.time() - t0 < limit:
        if not _alive(pid):
            return time.time() - t0
        time.sleep(0.02)
    return None


def _python(code: str, tmp_path, **kw) -> subprocess.Popen:
    # A file, not -c: spawn's children import the parent's __main__ to find their function.
    script = tmp_path / f"script{len(list(tmp_path.iterdir()))}.py"
    script.write_text(textwrap.dedent(code))
    return subprocess.Popen(
        [sys.executable, str(script)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        **kw,
    )


# A parent that starts a spawned child (which prints its pid, then sleeps) and sleeps itself.
PARENT = """
    import multiprocessing as mp, sys, time
    from srlm.procs import child_setup

    def child():
        {setup}
        print(mp.current_process().pid, flush=True)
        time.sleep(60)

    if __name__ == "__main__":
        p = mp.get_context("spawn").Process(target=child)
        p.start()
        time.sleep(60)
"""


@pytest.mark.parametrize("setup", ["child_setup()", "pass"])
def test_a_child_dies_with_its_parent_killed_by_sigkill(setup, tmp_path):
    parent = _python(PARENT.format(setup=setup), tmp_path)
    child = int(parent.stdout.readline())
    parent.kill()
    parent.wait()
    gone = _wait_gone(child, 3.0)
    if setup == "pass":  # the control: without die_with_parent the orphan runs on
        assert gone is None
        os.kill(child, signal.SIGKILL)
    else:
        assert gone is not None


def test_exit_on_signal_ends_the_process_with_the_signal(tmp_path):
    """(That Lightning's handler does not undo it is the crash test's SIGTERM mid-training.)"""
    p = _python(
        """
        import time
        from srlm.procs import exit_on_signal

        exit_on_signal()
        print("ready", flush=True)
        time.sleep(60)
        """,
        tmp_path,
    )
    assert p.stdout.readline().strip() == "ready"
    p.send_signal(signal.SIGTERM)
    assert p.wait(timeout=10) == -signal.SIGTERM


def test_reap_with_me_kills_the_targets_when_the_caller_dies(tmp_path):
    target = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    caller = _python(
        f"""
        import time
        from srlm.procs import reap_with_me
        w = reap_with_me([{target.pid}])
        print(w.pid, flush=True)
        time.sleep(60)
        """,
        tmp_path,
    )
    watcher = int(caller.stdout.readline())
    assert _alive(target.pid)
    caller.kill()
    caller.wait()
    assert target.wait(timeout=10) == -signal.SIGKILL
    assert _wait_gone(watcher) is not None


def test_sigterm_to_the_driver_ends_its_phase_child_and_exits_143(tmp_path):
    """stop_on_signals around a phase child (srlm.runner._run_phase's way of waiting)."""
    p = _python(
        """
        import multiprocessing as mp, time
        from srlm.procs import child_setup
        from srlm.runner import _stop_child, stop_on_signals

        def phase():
            child_setup()
            time.sleep(60)

        if __name__ == "__main__":
            with stop_on_signals():
                proc = mp.get_context("spawn").Process(target=phase)
                # All inside the try, as in the runner: a signal that lands during the print
                # must still end the child, or the interpreter's exit waits for it.
                try:
                    proc.start()
                    print(proc.pid, flush=True)
                    proc.join()
                except BaseException:
                    _stop_child(proc)
                    raise
        """,
        tmp_path,
        stderr=subprocess.PIPE,
    )
    child = int(p.stdout.readline())
    t0 = time.time()
    p.send_signal(signal.SIGTERM)
    assert p.wait(timeout=30) == 128 + signal.SIGTERM
    assert _wait_gone(child) is not None
    assert time.time() - t0 < 30
    err = p.stderr.read()
    assert "srlm: error: stopped by SIGTERM; finished stages are kept" in err
    assert "Traceback" not in err


def test_stage_seed_depends_on_the_stage_alone():
    from srlm.runner import stage_seed

    assert stage_seed(0, 1, "samples") == stage_seed(0, 1, "samples")
    assert len({stage_seed(0, 1, s) for s in ("prompts", "samples", "judgements")}) == 3
    assert stage_seed(0, 1, "samples") != stage_seed(0, 2, "samples")
