"""`federator demo`: the compiler on a real API server, end to end, on the embedded control plane.

Starts the control plane (real etcd, kube-apiserver, controllers, kwok), installs the Application
CRD and the delegate CRDs it can find, applies the seed example, compiles it and applies the
children with server-side apply in waves (topics first), then shows each child's health as the
health adapters read it from the real objects. Deployments become Available through the real
controllers; delegate kinds stay Progressing because no Strimzi/Spark/Flink operator runs here
(the operator and the delegate simulator come with `federator run`). Everything started is
stopped on exit.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from federator.cli.main import EXIT_OK, UsageError
from federator.core import compiler, health, runtimes
from federator.core.render import Child
from federator.settings_file import load_settings
from federator.yamlio import InputError, iter_documents

REPO = Path(__file__).resolve().parents[2]
DEFAULT_APP = REPO / "examples" / "call-record-aggregator.yaml"
DEFAULT_SETTINGS = REPO / "examples" / "settings.yaml"
ENV_DELEGATE_CRDS = "FEDERATOR_DELEGATE_CRDS"


def _delegate_crds() -> list[Path]:
    candidates = [os.environ.get(ENV_DELEGATE_CRDS), str(REPO.parent / "shared" / "delegate-crds")]
    for candidate in candidates:
        if candidate and Path(candidate).is_dir():
            # The newest Strimzi (v1 only) wins over the 0.51.0 file of the same CRD name.
            return sorted(
                p
                for p in Path(candidate).glob("*.crd.yaml")
                if "0.51.0" not in p.name and "scheduled" not in p.name
            )
    return []


def _path(child: Child) -> str:
    delegate = runtimes.BY_KIND[child.kind]
    return f"/apis/{child.api_version}/namespaces/{child.namespace}/{delegate.plural}/{child.name}"


def _apply(plane: Any, body: Mapping[str, Any], path: str) -> tuple[int, Any]:
    return plane.request(  # type: ignore[no-any-return]
        "PATCH",
        f"{path}?fieldManager=federator&force=true",
        body,
        content_type="application/apply-patch+yaml",
    )


def _say(text: str) -> None:
    print(text, flush=True)


def _table(plane: Any, children: tuple[Child, ...], installed: set[str]) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for child in children:
        delegate = runtimes.BY_KIND[child.kind]
        present = delegate.group in ("apps", "") or delegate.crd_name in installed
        body = None
        if present:
            status, got = plane.request("GET", _path(child))
            body = got if status == 200 else None
        verdict = health.assess(
            child.kind,
            body,
            delegate_installed=present,
            operator_hint=delegate.operator,
        )
        rows.append((child.kind, child.name, verdict.health.value, verdict.reason, verdict.message))
    return rows


def _apply_children(plane: Any, children: tuple[Child, ...], installed: set[str]) -> None:
    """Server-side apply in waves: topics first, then streamlets (DESIGN §4)."""
    for wave in sorted({c.wave for c in children}):
        for child in (c for c in children if c.wave == wave):
            delegate = runtimes.BY_KIND[child.kind]
            if delegate.group not in ("apps", "") and delegate.crd_name not in installed:
                _say(f"  skip  {child.kind}/{child.name}: {delegate.operator} missing")
                continue
            status, _ = _apply(plane, child.manifest, _path(child))
            verb = "apply" if status < 300 else f"FAILED ({status})"
            _say(f"  {verb:5} wave {wave} {child.kind}/{child.namespace}/{child.name}")


def _wait_for_deployments(
    plane: Any, children: tuple[Child, ...], installed: set[str], timeout: float
) -> list[tuple[str, ...]]:
    deadline = time.monotonic() + timeout
    while True:
        rows = _table(plane, children, installed)
        ready = [r for r in rows if r[0] == "Deployment" and r[2] == "Healthy"]
        wanted = [r for r in rows if r[0] == "Deployment"]
        if len(ready) == len(wanted) or time.monotonic() > deadline:
            return rows
        time.sleep(1.0)  # polling the real server with a deadline, not synchronising


def cmd_demo(args: argparse.Namespace) -> int:
    from federator.devcluster import build
    from federator.devcluster.launcher import ControlPlane, ControlPlaneError

    try:
        settings = load_settings(args.settings)
        (body,) = list(iter_documents(args.file))[:1]
    except (InputError, ValueError) as exc:
        raise UsageError(str(exc)) from None
    compiled = compiler.compile_application(body, settings)
    _say(f"compiled {args.file}: {len(compiled.children)} children")

    bin_dir = build.ensure_binaries()
    try:
        with ControlPlane(bin_dir=bin_dir) as plane:
            _say(f"control plane ready at {plane.server} in {plane.startup_seconds:.1f}s")
            installed = set(plane.install_crds(REPO / "crds" / "application.yaml"))
            crds = _delegate_crds()
            if crds:
                installed |= set(plane.install_crds(*crds))
            _say(f"installed CRDs: {', '.join(sorted(installed))}")
            namespaces = {compiled.app.namespace} | {c.namespace for c in compiled.children}
            for ns in sorted(namespaces):
                plane.request("POST", "/api/v1/namespaces", {"metadata": {"name": ns}})
            app_path = (
                f"/apis/federator.io/v1alpha1/namespaces/{compiled.app.namespace}"
                f"/applications/{compiled.app.name}"
            )
            status, created = _apply(plane, body, app_path)
            if status >= 300:
                _say(f"the API server refused the Application ({status}): {created}")
                return 1
            # Re-compile with the real uid so streamlet children are owned (garbage collection).
            compiled = compiler.compile_application(created, settings)
            _apply_children(plane, compiled.children, installed)
            rows = _wait_for_deployments(plane, compiled.children, installed, args.timeout)
            _say("")
            _say(f"{'KIND':18} {'NAME':48} {'HEALTH':12} {'REASON':22} MESSAGE")
            for kind, name, verdict, reason, message in rows:
                _say(f"{kind:18} {name:48} {verdict:12} {reason:22} {message[:60]}")
            _say("")
            _say("Deployments ran through the real controllers and kwok; KafkaTopic and")
            _say("SparkApplication stay Progressing: no Strimzi or Spark operator runs here.")
            _say("Explore while it runs (`--wait`):")
            _say(f"  export KUBECONFIG={plane.kubeconfig}")
            _say(f"  {bin_dir}/kubectl get fapp,deploy,sparkapplications -A")
            _say(f"  {bin_dir}/kubectl get kafkatopics -n kafka")
            if args.wait:
                _say("Ctrl-C stops everything.")
                while plane.running:
                    time.sleep(1.0)
    except ControlPlaneError as exc:
        print(f"federator demo: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        _say("stopped")
    return EXIT_OK


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "demo", help="compile and apply an example on the embedded control plane"
    )
    p.add_argument("file", nargs="?", default=str(DEFAULT_APP), metavar="FILE")
    p.add_argument("--settings", default=str(DEFAULT_SETTINGS), metavar="FILE")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for readiness")
    p.add_argument("--wait", action="store_true", help="keep running until Ctrl-C")
    p.set_defaults(func=cmd_demo)
