"""The control plane's processes: started in their own groups, stopped whole, never left behind.

Every process gets its own process group and, on Linux, dies with the thread that started it;
the planes alive in this interpreter are stopped at exit and on SIGTERM/SIGHUP; a working
directory left by an owner that was SIGKILLed is removed by the next start beside it.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Protocol

from federator.devcluster.components import LOOPBACK

WORKDIR_PREFIX = "federator-cp-"
LOG_TAIL_LINES = 40
STOP_GRACE_SECONDS = 10.0


class ControlPlaneError(RuntimeError):
    """The control plane failed to start or to do what was asked; carries the log tail."""


def free_ports(count: int, host: str = LOOPBACK) -> list[int]:
    """`count` distinct free TCP ports on host (held open together so they differ)."""
    socks: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((host, 0))
            socks.append(sock)
        return [s.getsockname()[1] for s in socks]
    finally:
        for sock in socks:
            sock.close()


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last lines of a log file ('' when absent), for error messages."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


class Stoppable(Protocol):
    def stop(self) -> None: ...


_LIVE: set[Stoppable] = set()
_LIVE_LOCK = threading.Lock()
_HANDLERS_INSTALLED = False


def _stop_all() -> None:
    """Stop every live control plane (atexit and fatal-signal path)."""
    with _LIVE_LOCK:
        planes = list(_LIVE)
    for plane in planes:
        with contextlib.suppress(Exception):
            plane.stop()


def _on_fatal_signal(signum: int, frame: FrameType | None) -> None:
    """SIGTERM/SIGHUP would kill Python without atexit: clean up, then die by that signal."""
    _stop_all()
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def install_handlers() -> None:
    """atexit always; SIGTERM/SIGHUP only from the main thread and only if nobody else did."""
    global _HANDLERS_INSTALLED  # noqa: PLW0603
    if _HANDLERS_INSTALLED:
        return
    _HANDLERS_INSTALLED = True
    atexit.register(_stop_all)
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(sig) in (signal.SIG_DFL, None):
            signal.signal(sig, _on_fatal_signal)


def _die_with_parent_hook() -> None:
    """In the child before exec: get SIGKILL if our process dies (even by SIGKILL)."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)


def pid_alive(pid: int) -> bool:
    """True while the process runs; an exited, unreaped zombie does not count."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no procfs: trust kill(0)
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def reap_stale_workdirs(parent: Path) -> list[Path]:
    """Remove temp dirs left by a control plane whose owner was SIGKILLed (best effort)."""
    removed: list[Path] = []
    for path in parent.glob(f"{WORKDIR_PREFIX}*"):
        try:
            owner = int((path / "owner.pid").read_text().strip())
        except (OSError, ValueError):
            continue
        if pid_alive(owner):
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed


def track(plane: Stoppable) -> None:
    """Stop `plane` at exit or on SIGTERM/SIGHUP if nobody stops it before."""
    install_handlers()
    with _LIVE_LOCK:
        _LIVE.add(plane)


def untrack(plane: Stoppable) -> None:
    with _LIVE_LOCK:
        _LIVE.discard(plane)


@dataclass
class Proc:
    """One started component: its process and where its output goes."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path


def spawn(
    binary: Path, name: str, args: Sequence[str], *, log: Path, cwd: Path, die_with_parent: bool
) -> Proc:
    """Start `binary args` in its own process group, output appended to `log`."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as handle:
        popen = subprocess.Popen(
            [str(binary), *args],
            stdin=subprocess.DEVNULL,
            stdout=handle,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            start_new_session=True,  # own process group: we can kill all it forks
            preexec_fn=_die_with_parent_hook if die_with_parent else None,  # noqa: PLW1509
        )
    return Proc(name, popen, log)


def stop_procs(procs: Sequence[Proc]) -> None:
    """TERM, then KILL after a grace, each process group; API clients first, etcd last, so
    nothing logs storms about a vanished store."""
    for group in (
        [p for p in procs if p.name != "etcd"],
        [p for p in procs if p.name == "etcd"],
    ):
        for proc in group:
            signal_group(proc.popen, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for proc in group:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.popen.wait(timeout=max(0.1, deadline - time.monotonic()))
            signal_group(proc.popen, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.popen.wait(timeout=5)


def signal_group(popen: subprocess.Popen[bytes], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(popen.pid, sig)
