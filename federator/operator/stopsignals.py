"""SIGINT/SIGTERM for the operator process: handlers installed once, first thing, and kept.

Why: in a container the operator is PID 1, and the kernel drops a signal PID 1 has left at its
default action. Any moment without a handler of ours (start-up, the wait before the watch
machinery restarts, the gap while kopf's own loop handlers are swapped for ours) is a moment
where the kubelet's SIGTERM is lost and the pod dies by SIGKILL at the end of its grace period.
So the handlers are process handlers installed before anything slow happens and never reset to
the default; what a signal does depends on the phase it arrives in: it stops a running operator
(through `on_stop`), ends a wait (`wait`), or is remembered for the next phase to see
(`requested`).

Only the main thread can install signal handlers; elsewhere `install` does nothing.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Callable

log = logging.getLogger("federator.run")

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopSignals:
    """The process's stop request: set by the first SIGINT/SIGTERM, never cleared."""

    def __init__(self) -> None:
        self.requested: list[signal.Signals] = []
        self.on_stop: Callable[[], None] | None = None
        """Called (in the main thread, from the handler) by the first signal while set."""
        self._event = threading.Event()

    def install(self) -> None:
        """Install the handlers (again: asyncio's `remove_signal_handler` resets a signal to
        its default, so whoever removes a loop handler calls this after)."""
        with contextlib.suppress(ValueError):  # not the main thread
            for sig in STOP_SIGNALS:
                signal.signal(sig, self._handle)

    def wait(self, seconds: float) -> bool:
        """Sleep up to `seconds`; True at once if a stop was or is requested meanwhile."""
        return self._event.wait(seconds)

    def _handle(self, signum: int, _frame: object) -> None:
        sig = signal.Signals(signum)
        if self.requested:
            log.info("%s received again: still stopping", sig.name)
            return
        self.requested.append(sig)
        log.info("%s received: stopping", sig.name)
        self._event.set()
        if self.on_stop is not None:
            self.on_stop()


SIGNALS = StopSignals()
"""The process's one instance: `federator run` installs it before it imports the operator."""


def ignore_from_now_on() -> None:
    """At the very end of a stopped process: Python's finalization puts a handled signal back to
    its default, so a late SIGTERM would kill the exiting process (exit -15, seen in a test that
    signals on and on); an ignored one stays ignored."""
    with contextlib.suppress(ValueError):
        for sig in STOP_SIGNALS:
            signal.signal(sig, signal.SIG_IGN)
