"""`federator demo`: the whole product on the embedded control plane, from one command.

Starts the control plane (real etcd, kube-apiserver, controllers, kwok), installs the
Application CRD and the delegate CRDs it can find, runs the operator (`federator run`, a
subprocess) and the delegate simulator (a development tool standing in for Strimzi, Spark and
Flink operators, which cannot run here), applies the seed example and shows live progress
until the application is Healthy; then prints `federator status` and the kubectl commands to
explore. Everything started is stopped on exit.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from federator.cli.main import EXIT_INVALID, EXIT_OK, UsageError
from federator.core import compiler
from federator.core.problems import InvalidSpec
from federator.settings_file import load_settings
from federator.yamlio import InputError, iter_documents

REPO = Path(__file__).resolve().parents[2]
DEFAULT_APP = REPO / "examples" / "call-record-aggregator.yaml"
DEFAULT_SETTINGS = REPO / "examples" / "settings.yaml"
ENV_DELEGATE_CRDS = "FEDERATOR_DELEGATE_CRDS"


def delegate_crds() -> list[Path]:
    """The delegate CRDs: $FEDERATOR_DELEGATE_CRDS, else ../shared/delegate-crds (never copied
    into this repository). Without them, children show Missing/DelegateNotInstalled."""
    for candidate in (
        os.environ.get(ENV_DELEGATE_CRDS),
        str(REPO.parent / "shared" / "delegate-crds"),
    ):
        if candidate and Path(candidate).is_dir():
            from federator.devcluster.harness import current_delegate_crds

            return current_delegate_crds(Path(candidate))
    return []


def _say(text: str = "") -> None:
    print(text, flush=True)


def _progress(status: Mapping[str, Any]) -> str:
    children = status.get("children") or []
    counts: dict[str, int] = {}
    for c in children:
        counts[c.get("health", "?")] = counts.get(c.get("health", "?"), 0) + 1
    parts = ", ".join(f"{n} {h}" for h, n in sorted(counts.items()))
    return f"{status.get('phase', '-'):12} {status.get('summary', '-'):6} {parts}"


def _start_operator(plane: Any, settings_doc: dict[str, Any], workdir: Path) -> Any:
    from federator.devcluster.harness import OperatorProcess, free_port

    settings_doc["operator"] = {
        **settings_doc.get("operator", {}),
        "metricsPort": free_port(),
        "livenessPort": free_port(),
        "statusDebounceSeconds": 0.1,
    }
    settings_path = workdir / "settings.yaml"
    settings_path.write_text(yaml.safe_dump(settings_doc))
    operator = OperatorProcess(settings_path, plane.kubeconfig, workdir / "operator.log")
    operator.start()
    assert operator.proc is not None
    _say(f"operator: federator run (pid {operator.proc.pid}, log {operator.log})")
    return operator


def _watch(plane: Any, path: str, timeout: float, operator: Any) -> str:
    """Live progress until Healthy (or the deadline); returns the last phase."""
    deadline = time.monotonic() + timeout
    last, phase = "", ""
    while time.monotonic() < deadline and operator.proc.poll() is None:
        status = plane.request("GET", path)[1].get("status") or {}
        line = _progress(status)
        if line != last:
            _say(f"  {line}")
            last = line
        phase = status.get("phase", "")
        if phase == "Healthy":
            break
        time.sleep(0.5)  # a progress display, polling the real server
    return phase


def _explain(plane: Any, bin_dir: Path, name: str, namespace: str) -> None:
    from federator.cli.main import main as cli

    _say()
    cli(["status", name, "-n", namespace, "--kubeconfig", str(plane.kubeconfig)])
    kubectl = bin_dir / "kubectl"
    _say()
    _say("Explore (while it runs, with --wait):")
    _say(f"  export KUBECONFIG={plane.kubeconfig}")
    _say(f"  {kubectl} get fapp -A")
    _say(f"  {kubectl} get kafkatopics,sparkapplications,deployments -A")
    _say(f"  {kubectl} describe fapp {name} -n {namespace}")
    _say(f"  federator status {name} -n {namespace}")
    _say(
        f"  {kubectl} annotate sparkapplication -n {namespace} {name}-cdr-aggregator "
        "simulator.federator.io/fail='OutOfMemoryError'"
    )


def _apply_application(plane: Any, path: str, body: Mapping[str, Any]) -> bool:
    status, got = plane.request(
        "PATCH",
        f"{path}?fieldManager=kubectl&force=true",
        body,
        content_type="application/apply-patch+yaml",
    )
    if status >= 300:
        _say(f"the API server refused the Application ({status}): {got}")
    return bool(status < 300)


def _cleanup(operator: Any, workdir: Path) -> None:
    if operator is not None:
        operator.stop()
    for leftover in sorted(workdir.glob("*")):
        leftover.unlink()
    workdir.rmdir()


def cmd_demo(args: argparse.Namespace) -> int:
    from federator.devcluster import build
    from federator.devcluster.launcher import ControlPlane, ControlPlaneError
    from federator.simulator import DelegateSimulator

    try:
        settings_doc = yaml.safe_load(Path(args.settings).read_text(encoding="utf-8")) or {}
        body = next(iter(iter_documents(args.file)))
        compiler.compile_application(body, load_settings(args.settings))
    except (InputError, ValueError, OSError, StopIteration) as exc:
        raise UsageError(str(exc)) from None
    except InvalidSpec as exc:
        print(f"federator demo: {args.file} is invalid:\n{exc}", file=sys.stderr)
        return EXIT_INVALID
    meta = body.get("metadata") or {}
    namespace, name = meta.get("namespace", "default"), meta["name"]
    path = f"/apis/federator.io/v1alpha1/namespaces/{namespace}/applications/{name}"

    bin_dir = build.ensure_binaries()
    workdir = Path(tempfile.mkdtemp(prefix="federator-demo-"))
    operator: Any = None
    try:
        with ControlPlane(bin_dir=bin_dir) as plane:
            _say(f"control plane (kube-apiserver, etcd, controllers, kwok) at {plane.server}")
            installed = plane.install_crds(REPO / "crds" / "application.yaml", *delegate_crds())
            _say(f"CRDs: {', '.join(installed)}")
            kafka = {c["namespace"] for c in settings_doc.get("kafkaClusters", [])}
            for ns in sorted({namespace} | kafka):
                plane.request("POST", "/api/v1/namespaces", {"metadata": {"name": ns}})
            operator = _start_operator(plane, settings_doc, workdir)
            with DelegateSimulator(plane.api_client(), interval=0.3):
                _say("delegate simulator: moving KafkaTopic/Spark/Flink statuses (a dev tool)")
                if not _apply_application(plane, path, body):
                    return EXIT_INVALID
                _say(f"applied {args.file}: Application {namespace}/{name}\n")
                phase = _watch(plane, path, args.timeout, operator)
                if operator.proc.poll() is not None:
                    _say(operator.log.read_text()[-3000:])
                    return EXIT_INVALID
                _explain(plane, bin_dir, name, namespace)
                if args.wait:
                    _say("Ctrl-C stops everything.")
                    while plane.running and operator.proc.poll() is None:
                        time.sleep(1.0)
                return EXIT_OK if phase == "Healthy" else EXIT_INVALID
    except ControlPlaneError as exc:
        print(f"federator demo: {exc}", file=sys.stderr)
        return EXIT_INVALID
    except KeyboardInterrupt:
        _say("stopped")
        return EXIT_OK
    finally:
        _cleanup(operator, workdir)


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "demo",
        help="the operator on the embedded control plane: apply the seed example, watch it "
        "become Healthy",
    )
    p.add_argument("file", nargs="?", default=str(DEFAULT_APP), metavar="FILE")
    p.add_argument("--settings", default=str(DEFAULT_SETTINGS), metavar="FILE")
    p.add_argument("--timeout", type=float, default=180.0, help="seconds to wait for Healthy")
    p.add_argument("--wait", action="store_true", help="keep running until Ctrl-C")
    p.set_defaults(func=cmd_demo)
