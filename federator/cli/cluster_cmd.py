"""`federator cluster up|down|status`: the embedded local control plane from a terminal.

Why: developers (and `federator demo`) need a real API server without Docker. `up` builds the
binaries if needed, starts them, prints the `export KUBECONFIG=...` line and stays in the
foreground until Ctrl-C or `federator cluster down`; a state file under the cache dir lets the
other subcommands find it. Each plane has a name (`--name`, default `default`) and its own state
file, so several run side by side (two terminals, two test runs) on their own free ports.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import re
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

from federator.core import resources
from federator.devcluster import build, crdfiles
from federator.devcluster.launcher import ControlPlane, ControlPlaneError
from federator.devcluster.processes import pid_alive

DOWN_TIMEOUT_SECONDS = 40.0
DEFAULT_NAME = "default"
_NAME = re.compile(r"[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?")


class _Stop(Exception):
    """Raised from the SIGTERM/SIGHUP handler to leave `up`'s wait loop and clean up."""


def states_dir() -> Path:
    return build.cache_root() / "cluster"


def state_file(name: str = DEFAULT_NAME) -> Path:
    """Where `up --name NAME` records its PID, kubeconfig and components for `down`/`status`."""
    return states_dir() / name / "state.json"


def plane_name(value: str) -> str:
    """argparse type for --name: a short DNS label, as it names a folder."""
    if not _NAME.fullmatch(value):
        raise argparse.ArgumentTypeError(
            f"{value!r}: use 1-40 lowercase letters, digits and '-' (e.g. 'dev', 'test-2')"
        )
    return value


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
    named = argparse.ArgumentParser(add_help=False)
    named.add_argument(
        "--name",
        type=plane_name,
        default=DEFAULT_NAME,
        help=f"which control plane (several run side by side; default {DEFAULT_NAME!r})",
    )

    up = sub.add_parser(
        "up", parents=[named], help="build if needed, start, and run until Ctrl-C or `down`"
    )
    up.add_argument("--no-build", action="store_true", help="fail instead of building binaries")
    up.add_argument("--timeout", type=float, default=180.0, help="start deadline in seconds")
    up.add_argument(
        "--crds",
        action="append",
        default=[],
        metavar="PATH",
        help="install CRDs from this file or directory after start (repeatable); where a "
        "folder holds two versions of one CRD, the one with the newest storage version wins",
    )
    up.add_argument(
        "--with-crds",
        action="store_true",
        help="install federator's Application CRD and the delegate CRDs shipped with it "
        f"(or ${crdfiles.ENV_DELEGATE_CRDS})",
    )
    up.set_defaults(func=cmd_up)

    down = sub.add_parser("down", parents=[named], help="stop a control plane started by `up`")
    down.set_defaults(func=cmd_down)

    status = sub.add_parser(
        "status", parents=[named], help="show whether a control plane is up and ready"
    )
    status.set_defaults(func=cmd_status)

    listing = sub.add_parser("list", help="list the control planes started by `up`")
    listing.set_defaults(func=cmd_list)


def cmd_up(args: argparse.Namespace) -> int:
    """Start the control plane and block; always stop it and remove the state file."""
    path = state_file(args.name)
    existing = read_state(path)
    if existing and pid_alive(int(existing.get("pid", 0))):
        print(
            f"federator: control plane {args.name!r} is already running (pid {existing['pid']}); "
            f"export KUBECONFIG={existing.get('kubeconfig')}  or run "
            f"`federator cluster down --name {args.name}`, or start another with --name",
            file=sys.stderr,
        )
        return 1
    try:
        crds = [Path(p) for p in args.crds]
        if args.with_crds:
            crds = [resources.application_crd_path(), *crdfiles.delegate_crd_files(), *crds]
        # Read (and choose among) the CRDs before starting anything: a bad file fails at once.
        crdfiles.current_crds(crdfiles.load_crds(crds))
        bin_dir = build.ensure_binaries(build=not args.no_build)
    except (build.BuildError, crdfiles.CRDFileError) as exc:
        print(f"federator: error: {exc}", file=sys.stderr)
        return 1

    def on_signal(signum: int, frame: FrameType | None) -> None:
        raise _Stop(signal.Signals(signum).name)

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGHUP)}
    plane = ControlPlane(bin_dir, start_timeout=args.timeout)
    try:
        t0 = time.monotonic()
        plane.start()
        if crds:
            plane.install_crds(*crds)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(
            json.dumps(
                {
                    "name": args.name,
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
        print(
            f"federator: control plane {args.name!r} ready at {plane.server} "
            f"in {time.monotonic() - t0:.1f}s"
        )
        print(f"export KUBECONFIG={plane.kubeconfig}", flush=True)
        print(
            f"federator: Ctrl-C or `federator cluster down --name {args.name}` stops it",
            file=sys.stderr,
            flush=True,
        )
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
            with contextlib.suppress(OSError):
                path.parent.rmdir()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def cmd_down(args: argparse.Namespace) -> int:
    """Ask `up` to stop (SIGTERM) and wait; clean up by hand if `up` died uncleanly."""
    path = state_file(args.name)
    state = read_state(path)
    if not state:
        print(f"federator: no control plane {args.name!r} is running")
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
    with contextlib.suppress(OSError):
        path.parent.rmdir()
    print(f"federator: control plane {args.name!r} stopped")
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
    state = read_state(state_file(args.name))
    if not state or not pid_alive(int(state.get("pid", 0))):
        print(
            f"federator: no control plane {args.name!r} is running"
            + (" (stale state)" if state else "")
        )
        return 1
    kubeconfig = Path(state["kubeconfig"])
    ready = kubeconfig.is_file() and readyz(kubeconfig)
    print(f"name:       {args.name}")
    print(f"pid:        {state['pid']}")
    print(f"server:     {state['server']}")
    print(f"kubeconfig: {kubeconfig}")
    for name, cpid in (state.get("components") or {}).items():
        print(f"  {name:<24} pid {cpid:<8} {'running' if pid_alive(int(cpid)) else 'EXITED'}")
    print(f"readyz:     {'ok' if ready else 'NOT READY'}")
    return 0 if ready else 1


def cmd_list(args: argparse.Namespace) -> int:
    """One line per control plane with a state file: name, pid, running or stale, server."""
    rows = []
    for path in sorted(states_dir().glob("*/state.json")):
        state = read_state(path)
        if state is None:
            continue
        alive = pid_alive(int(state.get("pid", 0)))
        rows.append(
            f"{path.parent.name:<16} pid {state.get('pid', '?'):<8} "
            f"{'running' if alive else 'stale':<8} {state.get('server', '')}"
        )
    print("\n".join(rows) if rows else "federator: no control plane is running")
    return 0
