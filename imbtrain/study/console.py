"""The console of a study: its own lines, and a heartbeat so that it is never silent for long.

A study spends long stretches in steps that print nothing: loading PyTorch and Ray, starting
Ray, waiting for Ray's worker processes to start (each loads PyTorch and the data before its
first trial), an epoch of a large model. The user then cannot tell a slow start from a hang.
So every line of a study goes through `CONSOLE.say`, and while a study runs
(`CONSOLE.active()`), a daemon thread prints what the study is doing whenever no line came for
`HEARTBEAT_S` seconds: the step it is in (`CONSOLE.step("starting Ray")`) and for how long,
or the trials running and how many are done (a `status` function the Tune callback sets).

    >>> console = Console(heartbeat_s=60)
    >>> console.say("study x: 8 trials")
    study x: 8 trials
    >>> with console.active():
    ...     console.step("starting Ray")
    ...     console.heartbeat_line().startswith("... starting Ray (")
    True
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Callable, Iterator

# A line at least this often (seconds of silence), well inside 10 s even when the machine is
# loaded enough that the heartbeat thread waits a second or two for its turn.
HEARTBEAT_S = 6.0
POLL_S = 0.25


class Console:
    """Lines of a study on stdout, and the heartbeat (module doc)."""

    def __init__(self, heartbeat_s: float = HEARTBEAT_S) -> None:
        self.heartbeat_s = heartbeat_s
        self._lock = threading.RLock()
        self._last = time.monotonic()
        self._step = ""
        self._step_since = time.monotonic()
        self._status: Callable[[], str] | None = None
        self._depth = 0
        self._stop: threading.Event | None = None

    def say(self, line: str, err: bool = False) -> None:
        """Print one line (flushed); the heartbeat counts its silence from here."""
        with self._lock:
            print(line, file=sys.stderr if err else sys.stdout, flush=True)
            self._last = time.monotonic()

    def step(self, text: str) -> None:
        """What the study does now, for the heartbeat ("starting Ray"); clears a status."""
        with self._lock:
            self._step, self._step_since, self._status = text, time.monotonic(), None

    def status(self, fn: Callable[[], str] | None) -> None:
        """A function whose text the heartbeat prints (the trials running), instead of the
        step; None: back to the step."""
        with self._lock:
            self._status = fn

    def heartbeat_line(self) -> str:
        with self._lock:
            if self._status is not None:
                return f"... {self._status()}"
            return f"... {self._step} ({time.monotonic() - self._step_since:.0f} s)"

    @contextlib.contextmanager
    def active(self) -> Iterator[Console]:
        """Run the heartbeat inside the block (nested blocks share one thread)."""
        with self._lock:
            self._depth += 1
            if self._depth == 1:
                self._last = time.monotonic()
                self._stop = threading.Event()
                threading.Thread(target=self._beat, args=(self._stop,), daemon=True,
                                 name="imbtrain-heartbeat").start()
        try:
            yield self
        finally:
            with self._lock:
                self._depth -= 1
                if self._depth == 0 and self._stop is not None:
                    self._stop.set()
                    self._step, self._status = "", None

    def _beat(self, stop: threading.Event) -> None:
        while not stop.wait(POLL_S):
            with self._lock:
                quiet = time.monotonic() - self._last >= self.heartbeat_s
                if quiet and (self._step or self._status) and not stop.is_set():
                    try:
                        line = self.heartbeat_line()
                    except Exception:  # a status function must never stop the study
                        continue
                    self.say(line)


CONSOLE = Console()
"""The console every study of this process prints through."""


def say(line: str, err: bool = False) -> None:
    """`CONSOLE.say`."""
    CONSOLE.say(line, err)
