"""Development harness: `federator run` as a subprocess, polling with a deadline, free ports.

Shared by the integration tests, the reconcile benchmark and `federator demo`, so the way an
operator is started, awaited and stopped is written once.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml


def in_ci() -> bool:
    """Whether this runs in CI (`CI=true`): there, a missing cached build fails a test instead
    of being built on the spot (CI builds everything first, in `make test`)."""
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def eventually(
    check: Callable[[], Any], what: str, timeout: float = 90.0, poll: float = 0.2
) -> Any:
    """Poll `check` until it returns something truthy (returned), or fail at the deadline."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(poll)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")


def parse_metrics(text: str) -> dict[str, float]:
    """Prometheus text format -> {'name{labels}': value}."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            with contextlib.suppress(ValueError):
                out[key] = float(value)
    return out


class OperatorProcess:
    """`federator run --settings S --kubeconfig K [-n NS ...]`, ready once its metrics answer
    (so the settings must set `operator.metricsPort`)."""

    def __init__(
        self,
        settings: Path,
        kubeconfig: Path,
        log: Path,
        namespaces: Sequence[str] = (),
        extra_args: Sequence[str] = (),
    ) -> None:
        self.settings, self.kubeconfig, self.log = settings, kubeconfig, log
        self.namespaces = list(namespaces)
        self.extra_args = list(extra_args)
        self.metrics_port = int(yaml.safe_load(settings.read_text())["operator"]["metricsPort"])
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> None:
        args = [sys.executable, "-m", "federator", "run", "--kubeconfig", str(self.kubeconfig)]
        args += ["--settings", str(self.settings), *self.extra_args]
        for ns in self.namespaces:
            args += ["-n", ns]
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                args,
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        eventually(self.ready, "the operator's metrics endpoint", timeout)

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/", timeout=1):
                return True
        except OSError:
            if self.proc is None or self.proc.poll() is not None:
                raise AssertionError(
                    "the operator exited:\n" + self.log.read_text()[-3000:]
                ) from None
            return False

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None

    def metrics(self) -> dict[str, float]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/", timeout=5) as r:
            return parse_metrics(r.read().decode())

    def metric(self, prefix: str, **labels: str) -> float:
        """The sum of every sample whose name (with labels) starts with `prefix` and that has
        every label in `labels` (the exposition orders labels by name, not declaration)."""
        wanted = [f'{k}="{v}"' for k, v in labels.items()]
        return sum(
            v
            for k, v in self.metrics().items()
            if k.startswith(prefix) and all(w in k for w in wanted)
        )

    def cpu_seconds(self) -> float:
        """utime + stime of the operator process (from /proc; 0 where unavailable)."""
        if self.proc is None:
            return 0.0
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            return 0.0


def stop_group(proc: subprocess.Popen[bytes], grace: float) -> None:
    """SIGTERM a process group started with start_new_session, SIGKILL it after `grace`."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
