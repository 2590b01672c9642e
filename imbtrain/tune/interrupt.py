"""SIGINT and SIGTERM during a study: stop the trials, keep what finished, tell the truth.

    with StudySignals() as signals:
        tuner.fit()          # the tuner's callbacks include StopOnSignal()
    if signals.signum: ...   # interrupted: nothing may look finished

Ray Tune stops an experiment gracefully on the first SIGINT (its handler in `tune.run`: the
loop ends, the experiment state is saved one last time with the unfinished trials as they
were, so `Tuner.restore` continues them) and on SIGUSR1, but it takes no SIGTERM, which is
what a cluster's job manager, `kill` and a container runtime send. So imbtrain replaces the
SIGINT handler deliberately (`TUNE_DISABLE_SIGINT_HANDLER=1`) and handles both signals the
same way: the handler records the signal, and `StopOnSignal`, a Tune callback, hands it on
to Tune's own graceful stop (SIGUSR1) at the start of the next step of Tune's loop; a
signal that arrives before Tune's loop runs is handed on as soon as it does. A second
signal stops the driver at once (the default action of that signal).

The trials' own processes ignore SIGINT (Ray blocks it in its workers), so Ctrl-C in a
terminal, which signals the whole process group, reaches the driver alone. SIGTERM to the
whole group of a local study (Ray in the driver's process) also ends Ray's own processes,
and with them Tune's loop, which would wait a minute for them and end the driver with a
traceback: the watchdog sees Ray's processes gone and calls `on_ray_lost`, which records the
interruption from what Tune last saved (its experiment state, written every few seconds)
and ends the driver with the same line and status.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable

from ray import tune

SIGNALS = (signal.SIGINT, signal.SIGTERM)
HANDED = (*SIGNALS, signal.SIGUSR1)  # restored after the study (Tune leaves SIGUSR1 its own)
_pending = {"signum": None, "delivered": False}  # module state: the callback is pickled


class StopOnSignal(tune.Callback):
    """Hands a recorded SIGINT/SIGTERM to Tune's graceful stop (SIGUSR1, which Tune's loop
    handles from its first step on)."""

    def on_step_begin(self, iteration, trials, **info) -> None:
        if _pending["signum"] is not None and not _pending["delivered"]:
            _pending["delivered"] = True
            signal.raise_signal(signal.SIGUSR1)


def local_ray_gone() -> bool:
    """Whether Ray started in this process (a local study) has lost one of its processes;
    False when this process joined a cluster (whose processes are not its own)."""
    import ray._private.worker as worker

    node = getattr(worker, "_global_node", None)
    return bool(node is not None and node.head and node.dead_processes())


class StudySignals:
    """Installs the handlers for the duration of a `with` block; `signum` is the first
    signal received (None: none). `on_ray_lost(signum)`, called from a watchdog thread
    when Ray's own processes died with the signal, must end the process."""

    POLL_S = 0.5

    def __init__(self, on_ray_lost: Callable[[int], None] | None = None) -> None:
        self.signum: int | None = None
        self._old: dict = {}
        self._env: str | None = None
        self._on_ray_lost = on_ray_lost
        self._done = threading.Event()

    def __enter__(self) -> StudySignals:
        _pending.update(signum=None, delivered=False)
        self._env = os.environ.get("TUNE_DISABLE_SIGINT_HANDLER")
        os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"  # ours below takes SIGINT
        self._old = {s: signal.getsignal(s) for s in HANDED}
        for s in SIGNALS:
            signal.signal(s, self._handle)
        return self

    def _handle(self, signum: int, frame) -> None:
        if self.signum is not None:  # the second signal: stop now
            self._restore()
            if signum == signal.SIGINT:
                raise KeyboardInterrupt
            signal.raise_signal(signum)
            return
        self.signum = signum
        _pending["signum"] = signum
        print(f"{signal.Signals(signum).name}: stopping the study; finished trials are kept "
              "and the others wait for --resume (signal again to stop at once)",
              file=sys.stderr, flush=True)
        if self._on_ray_lost is not None:
            threading.Thread(target=self._watch, args=(signum,), daemon=True,
                             name="imbtrain-ray-watchdog").start()

    def _watch(self, signum: int) -> None:
        while not self._done.wait(self.POLL_S):
            if local_ray_gone():
                self._on_ray_lost(signum)
                return

    def _restore(self) -> None:
        for s, handler in self._old.items():
            signal.signal(s, handler)
        self._old = {}
        if self._env is None:
            os.environ.pop("TUNE_DISABLE_SIGINT_HANDLER", None)
        else:
            os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = self._env

    def __exit__(self, *exc) -> None:
        self._done.set()
        if self._old:
            self._restore()
