"""`federator demo`: the whole product on the embedded control plane, from one command.

Starts the control plane (real etcd, kube-apiserver, controllers, kwok), installs the
Application CRD and the delegate CRDs shipped with federator (third_party/delegate-crds, or
$FEDERATOR_DELEGATE_CRDS), runs the operator (`federator run`, a
subprocess) and the delegate simulator (a development tool standing in for Strimzi, Spark and
Flink operators, which cannot run here), applies the seed example and shows live progress
until the application is Healthy; then prints `federator status` and the kubectl commands to
explore. Everything started is stopped on exit.

It fails fast: a kind the application renders that no CRD file defines, a CRD the API server
refuses, or a child that reads DelegateNotInstalled stops the demo at once with the reason,
instead of waiting for a Healthy that cannot come.

`--real-spark` runs the REAL kubeflow spark-operator (built once from the Go module proxy and
Maven Central by `federator.devcluster.delegates`, cached; minutes the first time) for the
SparkApplications, with the executor stand-in kwok needs (docs/real-delegates.md); the simulator
then moves only the other kinds. It needs a checkout (the recipe lives in hack/delegates).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from federator.cli.main import EXIT_INVALID, EXIT_OK, UsageError
from federator.core import appkind, compiler, delegates, resources
from federator.core.health import REASON_DELEGATE_NOT_INSTALLED
from federator.core.problems import InvalidSpec
from federator.core.status_types import ChildEntry, Phase
from federator.devcluster import crdfiles
from federator.settings_file import load_settings
from federator.yamlio import InputError, iter_documents

DEFAULT_APP = resources.examples_dir() / "call-record-aggregator.yaml"
DEFAULT_SETTINGS = resources.examples_dir() / "settings.yaml"


def delegate_crds(kinds: set[str]) -> list[Path]:
    """The delegate CRD files to install; a rendered kind that none of them defines is a
    CRDFileError naming the kind, the folder and the operator that would bring it."""
    files = crdfiles.delegate_crd_files()
    defined = {
        str(crd["metadata"]["name"]) for crd in crdfiles.current_crds(crdfiles.load_crds(files))
    }
    missing = [d for d in delegates.ALL if d.kind in kinds and not d.served(defined)]
    if missing:
        folder = files[0].parent
        raise crdfiles.CRDFileError(
            "the application renders "
            + ", ".join(f"{d.kind} ({d.crd_name})" for d in missing)
            + f", but no CRD file in {folder} defines it; add the CRD of "
            + "; ".join(d.operator for d in missing)
        )
    return files


def _not_installed(status: Mapping[str, Any]) -> list[str]:
    """Children that read DelegateNotInstalled: nothing will change that during a demo."""
    entries = (ChildEntry.from_status(c) for c in status.get("children") or [])
    return [
        f"{c.kind}/{c.name}: {c.message}"
        for c in entries
        if c.reason == REASON_DELEGATE_NOT_INSTALLED
    ]


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
    """Live progress until Healthy (or the deadline, or a child that cannot become ready);
    returns the last phase."""
    deadline = time.monotonic() + timeout
    last, phase = "", ""
    while time.monotonic() < deadline and operator.proc.poll() is None:
        status = plane.request("GET", path)[1].get("status") or {}
        line = _progress(status)
        if line != last:
            _say(f"  {line}")
            last = line
        phase = status.get("phase", "")
        if Phase.parse(phase) is Phase.HEALTHY:
            break
        stuck = _not_installed(status)
        if stuck:
            print(
                "federator demo: a delegate's CRD is not served, so the application cannot "
                "become Healthy:\n  " + "\n  ".join(stuck),
                file=sys.stderr,
            )
            break
        time.sleep(0.5)  # a progress display, polling the real server
    return phase


def _explain(plane: Any, bin_dir: Path, name: str, namespace: str, real_spark: bool) -> None:
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
    if real_spark:
        _say(f"  {kubectl} get sparkapplications -n {namespace} -o wide   # the real operator's")
    else:
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


def _start_real_spark(built: Any, plane: Any, namespace: str, workdir: Path) -> list[Any]:
    """The real spark-operator on `namespace` and the executor stand-in."""
    from federator.devcluster.spark_operator import ExecutorStandIn, SparkOperatorProcess

    spark = SparkOperatorProcess(built, plane, [namespace], workdir / "spark-operator.log")
    spark.start()
    assert spark.proc is not None
    _say(f"spark-operator: the real kubeflow operator (pid {spark.proc.pid}, log {spark.log})")
    executors = ExecutorStandIn(plane, [namespace])
    executors.run_in_thread()
    return [spark, executors]


def _stop(started: list[Any]) -> None:
    """Stop what was started, in reverse order (each once)."""
    while started:
        started.pop().stop()


def _cleanup(workdir: Path, started: list[Any]) -> None:
    """Stop whatever is still running and remove the work directory."""
    _stop(started)
    for leftover in sorted(workdir.glob("*")):
        leftover.unlink()
    workdir.rmdir()


def _spark_build(args: argparse.Namespace) -> Any:
    """The built real spark-operator when `--real-spark` (built now if missing), else None."""
    if not args.real_spark:
        return None
    from federator.devcluster import delegates

    return delegates.ensure_spark_operator(out=sys.stdout)


def cmd_demo(args: argparse.Namespace) -> int:
    from federator.devcluster import build, delegates
    from federator.devcluster.launcher import ControlPlaneError

    try:
        settings_doc = yaml.safe_load(Path(args.settings).read_text(encoding="utf-8")) or {}
        body = next(iter(iter_documents(args.file)))
        compiled = compiler.compile_application(body, load_settings(args.settings))
    except (InputError, ValueError, OSError, StopIteration) as exc:
        raise UsageError(str(exc)) from None
    except InvalidSpec as exc:
        print(f"federator demo: {args.file} is invalid:\n{exc}", file=sys.stderr)
        return EXIT_INVALID
    try:
        crd_files = delegate_crds({child.kind for child in compiled.children})
        bin_dir = build.ensure_binaries()
        spark_build = _spark_build(args)
    except (crdfiles.CRDFileError, delegates.DelegateBuildError) as exc:
        print(f"federator demo: {exc}", file=sys.stderr)
        return EXIT_INVALID
    workdir = Path(tempfile.mkdtemp(prefix="federator-demo-"))
    started: list[Any] = []
    try:
        return _run(
            args,
            body,
            settings_doc=settings_doc,
            crd_files=crd_files,
            bin_dir=bin_dir,
            spark_build=spark_build,
            workdir=workdir,
            started=started,
        )
    except ControlPlaneError as exc:
        print(f"federator demo: {exc}", file=sys.stderr)
        return EXIT_INVALID
    except KeyboardInterrupt:
        _say("stopped")
        return EXIT_OK
    finally:
        _cleanup(workdir, started)


def _run(
    args: argparse.Namespace,
    body: Mapping[str, Any],
    *,
    settings_doc: dict[str, Any],
    crd_files: list[Path],
    bin_dir: Path,
    spark_build: Any,
    workdir: Path,
    started: list[Any],
) -> int:
    """Everything on a live control plane. What it starts goes into `started` and is stopped,
    the last first, before the control plane stops (the caller stops any leftovers)."""
    from federator.devcluster.launcher import ControlPlane
    from federator.simulator import DelegateSimulator

    meta = body.get("metadata") or {}
    namespace, name = meta.get("namespace", "default"), meta["name"]
    path = f"/apis/{appkind.API_VERSION}/namespaces/{namespace}/{appkind.PLURAL}/{name}"
    with ControlPlane(bin_dir=bin_dir) as plane:
        try:
            _say(f"control plane (kube-apiserver, etcd, controllers, kwok) at {plane.server}")
            installed = plane.install_crds(resources.application_crd_path(), *crd_files)
            _say(f"CRDs: {', '.join(installed)}")
            kafka = {c["namespace"] for c in settings_doc.get("kafkaClusters", [])}
            for ns in sorted({namespace} | kafka):
                plane.request("POST", "/api/v1/namespaces", {"metadata": {"name": ns}})
            operator = _start_operator(plane, settings_doc, workdir)
            started.append(operator)
            simulated = {d.kind for d in delegates.ALL if not d.builtin}
            if spark_build is not None:
                started.extend(_start_real_spark(spark_build, plane, namespace, workdir))
                simulated.discard(delegates.SPARK_APPLICATION.kind)
            kinds = frozenset(simulated)
            with DelegateSimulator(plane.api_client(), interval=0.3, kinds=kinds):
                _say(f"delegate simulator (a dev tool) moving: {', '.join(sorted(kinds))}")
                if not _apply_application(plane, path, body):
                    return EXIT_INVALID
                _say(f"applied {args.file}: Application {namespace}/{name}\n")
                phase = _watch(plane, path, args.timeout, operator)
                if operator.proc.poll() is not None:
                    _say(operator.log.read_text()[-3000:])
                    return EXIT_INVALID
                _explain(plane, bin_dir, name, namespace, spark_build is not None)
                if args.wait:
                    _say("Ctrl-C stops everything.")
                    while plane.running and operator.proc.poll() is None:
                        time.sleep(1.0)
                return EXIT_OK if Phase.parse(phase) is Phase.HEALTHY else EXIT_INVALID
        finally:  # before the control plane goes: they talk to it
            _stop(started)


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "demo",
        help="the operator on the embedded control plane: apply the seed example, watch it "
        "become Healthy",
    )
    p.add_argument("file", nargs="?", default=str(DEFAULT_APP), metavar="FILE")
    p.add_argument("--settings", default=str(DEFAULT_SETTINGS), metavar="FILE")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for Healthy")
    p.add_argument("--wait", action="store_true", help="keep running until Ctrl-C")
    p.add_argument(
        "--real-spark",
        action="store_true",
        help="run the real kubeflow spark-operator for SparkApplications (built and cached the "
        "first time: minutes; needs go, mvn and java)",
    )
    p.set_defaults(func=cmd_demo)
