"""`federator cluster up|down|status`: the embedded local control plane from a terminal.

Why: developers (and `federator demo`) need a real API server without Docker. `up` builds the
binaries if needed, starts them, prints the `export KUBECONFIG=...` line and stays in the
foreground until Ctrl-C or `federator cluster down`; a state file under the cache dir lets the
other subcommands find it.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import shutil
import signal
import ssl
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import FrameType
from typing import Any

import yaml

from federator.devcluster import build
from federator.devcluster.launcher import ControlPlane, ControlPlaneError, pid_alive

DOWN_TIMEOUT_SECONDS = 40.0


class _Stop(Exception):
    """Raised from the SIGTERM/SIGHUP handler to leave `up`'s wait loop and clean up."""


def state_file() -> Path:
    """Where `up` records its PID, kubeconfig and components for `down`/`status`."""
    return build.cache_root() / "cluster" / "state.json"


def read_state(path: Path | None = None) -> dict[str, Any] | None:
    """The state `up` wrote, or None (absent or unreadable)."""
    try:
        data = json.loads((path or state_file()).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _cmdline_mentions(pid: int, needle: str) -> bool:
    """Guard against recycled PIDs: our components' command lines name their workdir."""
    try:
        return needle in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return False


def register(subparsers: Any) -> None:
    """Add `cluster` and its subcommands to the top-level parser."""
    parser = subparsers.add_parser(
        "cluster", help="run the embedded local control plane (etcd, kube-apiserver, ...)"
    )
    sub = parser.add_subparsers(dest="cluster_command", metavar="SUBCOMMAND")
    sub.required = True

    up = sub.add_parser("up", help="build if needed, start, and run until Ctrl-C or `down`")
    up.add_argument("--no-build", action="store_true", help="fail instead of building binaries")
    up.add_argument("--timeout", type=float, default=180.0, help="start deadline in seconds")
    up.add_argument(
        "--crds",
        action="append",
        default=[],
        metavar="PATH",
        help="install CRDs from this file or directory after start (repeatable)",
    )
    up.set_defaults(func=cmd_up)

    down = sub.add_parser("down", help="stop the control plane started by `up`")
    down.set_defaults(func=cmd_down)

    status = sub.add_parser("status", help="show whether the control plane is up and ready")
    status.set_defaults(func=cmd_status)


def cmd_up(args: argparse.Namespace) -> int:
    """Start the control plane and block; always stop it and remove the state file."""
    existing = read_state()
    if existing and pid_alive(int(existing.get("pid", 0))):
        print(
            f"federator: a control plane is already running (pid {existing['pid']}); "
            f"export KUBECONFIG={existing.get('kubeconfig')}  or run `federator cluster down`",
            file=sys.stderr,
        )
        return 1
    try:
        bin_dir = build.ensure_binaries(build=not args.no_build)
    except build.BuildError as exc:
        print(f"federator: error: {exc}", file=sys.stderr)
        return 1

    def on_signal(signum: int, frame: FrameType | None) -> None:
        raise _Stop(signal.Signals(signum).name)

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGHUP)}
    plane = ControlPlane(bin_dir, start_timeout=args.timeout)
    path = state_file()
    try:
        t0 = time.monotonic()
        plane.start()
        for crd_path in args.crds:
            plane.install_crds(crd_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(
            json.dumps(
                {
                    "pid": os.getpid(),
                    "server": plane.server,
                    "kubeconfig": str(plane.kubeconfig),
                    "user_kubeconfig": str(plane.user_kubeconfig),
                    "workdir": str(plane.workdir),
                    "components": plane.pids,
                    "bin_dir": str(bin_dir),
                    "started": time.time(),
                },
                indent=2,
            )
        )
        print(f"federator: control plane ready at {plane.server} in {time.monotonic() - t0:.1f}s")
        print(f"export KUBECONFIG={plane.kubeconfig}", flush=True)
        print("federator: Ctrl-C or `federator cluster down` stops it", file=sys.stderr, flush=True)
        while plane.running:
            time.sleep(0.5)
        died = [name for name, pid in plane.pids.items() if not pid_alive(pid)]
        print(f"federator: component(s) exited: {', '.join(died) or '?'}", file=sys.stderr)
        return 1
    except ControlPlaneError as exc:
        print(f"federator: error: {exc}", file=sys.stderr)
        return 1
    except (KeyboardInterrupt, _Stop):
        print("federator: stopping the control plane", file=sys.stderr)
        return 0
    finally:
        plane.stop()
        state = read_state(path)
        if state and state.get("pid") == os.getpid():
            path.unlink(missing_ok=True)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def cmd_down(args: argparse.Namespace) -> int:
    """Ask `up` to stop (SIGTERM) and wait; clean up by hand if `up` died uncleanly."""
    path = state_file()
    state = read_state(path)
    if not state:
        print("federator: no control plane is running")
        return 0
    pid = int(state.get("pid", 0))
    if pid and pid_alive(pid):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + DOWN_TIMEOUT_SECONDS
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if pid_alive(pid):
            print(f"federator: `up` (pid {pid}) did not stop; killing it", file=sys.stderr)
            os.kill(pid, signal.SIGKILL)
    workdir = str(state.get("workdir", ""))
    for name, cpid in (state.get("components") or {}).items():
        if workdir and pid_alive(int(cpid)) and _cmdline_mentions(int(cpid), workdir):
            print(f"federator: killing leftover {name} (pid {cpid})", file=sys.stderr)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(int(cpid), signal.SIGKILL)
    if workdir:
        shutil.rmtree(workdir, ignore_errors=True)
    path.unlink(missing_ok=True)
    print("federator: control plane stopped")
    return 0


def readyz(kubeconfig: Path) -> bool:
    """GET /readyz with the kubeconfig's server, CA and token."""
    config = yaml.safe_load(kubeconfig.read_text())
    cluster = config["clusters"][0]["cluster"]
    token = config["users"][0]["user"]["token"]
    ca = base64.b64decode(cluster["certificate-authority-data"]).decode()
    req = urllib.request.Request(cluster["server"] + "/readyz")
    req.add_header("Authorization", f"Bearer {token}")
    context = ssl.create_default_context(cadata=ca)
    try:
        with urllib.request.urlopen(req, context=context, timeout=5) as resp:
            return bool(resp.status == 200)
    except (OSError, urllib.error.URLError):
        return False


def cmd_status(args: argparse.Namespace) -> int:
    """Print pid/server/kubeconfig and component liveness; exit 0 only when ready."""
    state = read_state()
    if not state or not pid_alive(int(state.get("pid", 0))):
        print("federator: no control plane is running" + (" (stale state)" if state else ""))
        return 1
    kubeconfig = Path(state["kubeconfig"])
    ready = kubeconfig.is_file() and readyz(kubeconfig)
    print(f"pid:        {state['pid']}")
    print(f"server:     {state['server']}")
    print(f"kubeconfig: {kubeconfig}")
    for name, cpid in (state.get("components") or {}).items():
        print(f"  {name:<24} pid {cpid:<8} {'running' if pid_alive(int(cpid)) else 'EXITED'}")
    print(f"readyz:     {'ok' if ready else 'NOT READY'}")
    return 0 if ready else 1
