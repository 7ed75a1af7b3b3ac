"""`federator uninstall`: take federator out of a cluster without losing anything by surprise.

Neither Helm nor Argo CD deletes the Application CRD, and neither knows what removing the
operator does to the Applications: with no operator left, nothing runs their finalizer, so a
later deletion of an Application (or of the CRD) hangs, and whatever the garbage collector then
does to the children happens without anyone deciding it. This command is the decision, made
before `helm uninstall`:

- by default, it deletes the Applications while the operator still runs and waits until they
  are gone: each finalizer deletes what it must (Delete-policy topics, every child but Retain
  topics), exactly as a single `kubectl delete` would;
- with `--orphan`, federator lets go of them instead: each child's ownerReference to its
  Application is dropped (so the workloads and topics keep running, unmanaged), then the
  finalizer, then the Application is deleted. Works without an operator.

Without `--yes` it only says what it would do. Afterwards: `helm uninstall`, then
`kubectl delete crd applications.federator.io` (docs/install.md).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from federator.cli.main import EXIT_INVALID, EXIT_OK, UsageError
from federator.core import delegates, uninstall
from federator.core.appkind import CRD_NAME, GROUP, PLURAL, VERSION
from federator.core.naming import MANAGED_SELECTOR

if TYPE_CHECKING:
    from federator.kube.client import Kube, ResourceRef

Body = Mapping[str, Any]
POLL = 1.0


def _ref(group: str, version: str, plural: str, namespace: str, name: str) -> ResourceRef:
    from federator.kube.client import ResourceRef

    return ResourceRef(group=group, version=version, plural=plural, namespace=namespace, name=name)


def _app_ref(app: Body) -> ResourceRef:
    meta = app.get("metadata") or {}
    return _ref(GROUP, VERSION, PLURAL, str(meta.get("namespace")), str(meta.get("name")))


def _where(app: Body) -> str:
    meta = app.get("metadata") or {}
    return f"{meta.get('namespace')}/{meta.get('name')}"


def applications(kube: Kube, namespaces: Sequence[str]) -> list[dict[str, Any]]:
    """The Applications in `namespaces` (empty: all); UsageError if the CRD is not installed."""
    from federator.kube.client import NotFound

    try:
        if not namespaces:
            return kube.list(GROUP, VERSION, PLURAL, page_size=500)
        return [a for ns in namespaces for a in kube.list(GROUP, VERSION, PLURAL, namespace=ns)]
    except NotFound:
        raise UsageError(f"the Application CRD ({CRD_NAME}) is not installed") from None


def owned_children(kube: Kube, app: Body) -> list[tuple[ResourceRef, str, dict[str, Any]]]:
    """Every object in the Application's namespace that federator rendered and that names the
    Application as its owner, whatever the status says (it may be summarised, or stale)."""
    from federator.kube.client import NotFound

    meta = app.get("metadata") or {}
    namespace, uid = str(meta.get("namespace")), str(meta.get("uid"))
    found = []
    for delegate in delegates.ALL:
        for version in delegate.versions:
            try:
                items = kube.list(
                    delegate.group,
                    version,
                    delegate.plural,
                    namespace=namespace,
                    label_selector=MANAGED_SELECTOR,
                )
            except NotFound:
                continue  # this version (or the kind) is not served here
            for child in items:
                if uninstall.owner_patch(child, uid) is not None:
                    name = str((child.get("metadata") or {}).get("name"))
                    ref = _ref(delegate.group, version, delegate.plural, namespace, name)
                    found.append((ref, delegate.kind, child))
            break
    return found


def orphan(kube: Kube, app: Body, out: Any) -> None:
    """Let go of one Application: its children's ownerReferences, its finalizer, then it."""
    uid = str((app.get("metadata") or {}).get("uid"))
    for ref, kind, child in owned_children(kube, app):
        ops = uninstall.owner_patch(child, uid)
        if ops is not None:
            kube.json_patch(ref, ops, kind)
            print(f"  kept {kind} {ref.namespace}/{ref.name} (no longer owned)", file=out)
    current = kube.get(_app_ref(app))
    if current is None:
        return
    ops = uninstall.finalizer_patch(current)
    if ops is not None:
        kube.json_patch(_app_ref(app), ops, "Application")
    kube.delete(_app_ref(app), "Application", uid=uid)
    print(f"  deleted Application {_where(app)} (its children kept)", file=out)


def wait_gone(kube: Kube, apps: Sequence[Body], timeout: float) -> list[Body]:
    """Poll until every Application is gone or `timeout` seconds pass; what is left."""
    deadline = time.monotonic() + timeout
    left = list(apps)
    while left:
        left = [a for a in left if kube.get(_app_ref(a)) is not None]
        if not left or time.monotonic() >= deadline:
            break
        time.sleep(POLL)
    return left


def cmd_uninstall(args: argparse.Namespace) -> int:
    """Run `federator uninstall`."""
    from federator.cli.status_cmd import _kube, _kubeconfig_source
    from federator.kube.client import KubeError

    if args.timeout <= 0:
        raise UsageError("--timeout must be a positive number of seconds")
    kube = _kube(_kubeconfig_source(args.kubeconfig), args.context, 30.0)
    out = sys.stdout
    try:
        apps = applications(kube, args.namespace or ())
        scope = ", ".join(args.namespace) if args.namespace else "all namespaces"
        if not apps:
            print(f"No Applications in {scope}: federator can be removed.", file=out)
            _next_steps(out)
            return EXIT_OK
        verb = "orphan (keep their children running, unmanaged)" if args.orphan else "delete"
        print(f"{len(apps)} Application(s) in {scope} to {verb}:", file=out)
        for app in apps:
            print(f"  {_where(app)}", file=out)
        if not args.yes:
            print("Nothing done: run again with --yes.", file=out)
            return EXIT_OK
        if args.orphan:
            for app in apps:
                orphan(kube, app, out)
            left = wait_gone(kube, apps, args.timeout)
        else:
            for app in apps:
                kube.delete(
                    _app_ref(app), "Application", uid=(app.get("metadata") or {}).get("uid")
                )
            left = wait_gone(kube, apps, args.timeout)
        if left:
            print(
                f"{len(left)} Application(s) still there after {args.timeout:g}s: "
                + ", ".join(_where(a) for a in left)
                + ". Their finalizer needs a running operator: keep or reinstall it and wait, "
                "or run `federator uninstall --orphan --yes` to keep their children unmanaged.",
                file=sys.stderr,
            )
            return EXIT_INVALID
        print("All Applications are gone: federator can be removed.", file=out)
        _next_steps(out)
        return EXIT_OK
    except KubeError as exc:
        raise UsageError(f"the API server refused: {exc}") from None
    finally:
        kube.api.close()  # type: ignore[no-untyped-call]


def _next_steps(out: Any) -> None:
    print(
        "Next: `helm uninstall <release> -n <namespace>` (or delete the Argo CD Application of "
        f"the chart), then `kubectl delete crd {CRD_NAME}`.",
        file=out,
    )


def register(subparsers: Any) -> None:
    """Add `uninstall` to the `federator` command."""
    p = subparsers.add_parser(
        "uninstall",
        help="delete (or orphan) every Application before the operator is removed",
        description=(
            "Before removing the operator: delete every Application while the operator still "
            "runs (their finalizers delete the children as each deletionPolicy says), or with "
            "--orphan let go of them (children kept running, unmanaged; no operator needed). "
            "Without --yes, only says what it would do."
        ),
        epilog=(
            "examples:\n  federator uninstall                 # what would be deleted\n"
            "  federator uninstall --yes           # delete every Application, wait\n"
            "  federator uninstall --orphan --yes  # keep the workloads, drop the Applications"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "-n",
        "--namespace",
        action="append",
        metavar="NS",
        help="only the Applications of this namespace (repeatable; default: all namespaces)",
    )
    p.add_argument(
        "--orphan",
        action="store_true",
        help="keep every child running, unmanaged, instead of deleting through the finalizers",
    )
    p.add_argument("--yes", action="store_true", help="do it (default: only say what it would do)")
    p.add_argument(
        "--timeout",
        type=float,
        default=300.0,
        metavar="SECONDS",
        help="how long to wait for the Applications to be gone (default 300)",
    )
    p.add_argument("--kubeconfig", metavar="FILE", help="default $KUBECONFIG, else in-cluster")
    p.add_argument("--context", help="the kubeconfig context to use (default: current)")
    p.set_defaults(func=cmd_uninstall)
