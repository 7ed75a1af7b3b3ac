"""Quiet at rest (issue 14), on the real control plane with `federator run` as a subprocess.

Aspects covered:
- converged applications over several resync periods (`resyncSeconds: 2`): every resync reads
  the children from the watch cache, so 0 child GETs (the operator's own counter, and the API
  server's count of GETs of the child kinds) and 0 writes (the operator's and the API
  server's), the Applications' resourceVersions unchanged;
- metrics: with the default settings no series is per application, a second application adds
  no series, and no gauge is zero;
- the log: no line per child event (kopf's "Handler 'child-...' succeeded" at DEBUG), a line
  per decision (Applied, HealthChanged);
- stop: SIGTERM, then SIGTERM again while stopping: exit code 0, no ERROR, no traceback.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from federator.core import delegates
from federator.devcluster import crdfiles
from federator.devcluster.harness import OperatorProcess, eventually, free_port, parse_metrics
from federator.simulator import DelegateSimulator

if TYPE_CHECKING:
    from conftest import Cluster
else:
    Cluster = Any

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
APPS_NS = "rest-apps"
KAFKA_NS = "rest-kafka"
PERIOD = 2.0
APP = "/apis/federator.io/v1alpha1/namespaces/{ns}/applications"
CHILD_RESOURCES = {d.plural for d in delegates.ALL}
NAMES = ("quiet-one", "quiet-two")


@pytest.fixture(scope="module")
def env(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    delegates = crdfiles.delegate_crds_dir()
    cluster.plane.install_crds(REPO / "crds" / "application.yaml")
    cluster.plane.install_crds(*crdfiles.delegate_crd_files(delegates))
    for ns in (APPS_NS, KAFKA_NS):
        cluster.ensure_namespace(ns)
    tmp = tmp_path_factory.mktemp("rest")
    settings = tmp / "settings.yaml"
    settings.write_text(
        yaml.safe_dump(
            {
                "kafkaClusters": [
                    {
                        "name": "default",
                        "strimziCluster": "pipelines-strimzi",
                        "namespace": KAFKA_NS,
                        "bootstrapServers": "pipelines-strimzi-kafka-bootstrap:9092",
                    }
                ],
                "operator": {
                    "metricsPort": free_port(),
                    "livenessPort": free_port(),
                    "resyncSeconds": PERIOD,
                    "statusDebounceSeconds": 0.1,
                },
            }
        )
    )
    log = tmp / "operator.log"
    operator = OperatorProcess(settings, cluster.kubeconfig, log, namespaces=[APPS_NS, KAFKA_NS])
    sim = DelegateSimulator(cluster.api, interval=0.1, namespaces=[APPS_NS, KAFKA_NS])
    sim.run_in_thread()
    operator.start()
    try:
        yield {"operator": operator, "sim": sim, "log": log}
    finally:
        operator.stop()
        sim.stop()


def seed(name: str) -> dict[str, Any]:
    body: dict[str, Any] = yaml.safe_load(
        (REPO / "examples" / "call-record-aggregator.yaml").read_text()
    )
    body["metadata"] = {"name": name, "namespace": APPS_NS}
    return body


def healthy(cluster: Cluster, name: str) -> dict[str, Any] | None:
    status, body = cluster.plane.request("GET", f"{APP.format(ns=APPS_NS)}/{name}")
    assert status == 200, body
    st = body.get("status") or {}
    if (
        st.get("phase") == "Healthy"
        and st.get("observedGeneration") == body["metadata"]["generation"]
    ):
        return body  # type: ignore[no-any-return]
    return None


def create_healthy(cluster: Cluster, name: str) -> dict[str, Any]:
    status, got = cluster.plane.request("POST", APP.format(ns=APPS_NS), seed(name))
    assert status == 201, got
    return eventually(lambda: healthy(cluster, name), f"{name} Healthy", 120)  # type: ignore[no-any-return]


def series(operator: OperatorProcess) -> set[str]:
    """The series that were per application before issue 14 (name and labels); the others are
    by verb, kind or result only, and appear as those occur (an Event posted in the
    background, a first read by GET)."""
    return {
        k
        for k in operator.metrics()
        if k.startswith(("federator_applications", "federator_children", "federator_status_"))
        and "_created" not in k
    }


def apiserver_requests(cluster: Cluster) -> dict[str, float]:
    """The API server's request counts on the child kinds and Applications, by verb and
    resource (any client)."""
    _, text = cluster.plane.request("GET", "/metrics")
    out: dict[str, float] = {}
    for key, value in parse_metrics(str(text)).items():
        if not key.startswith("apiserver_request_total{"):
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', key))
        resource = labels.get("resource", "")
        if resource in CHILD_RESOURCES | {"applications"}:
            what = f"{labels.get('verb')} {resource}" + (
                f"/{labels['subresource']}" if labels.get("subresource") else ""
            )
            out[what] = out.get(what, 0.0) + value
    return out


def test_metrics_do_not_grow_with_applications(cluster: Cluster, env: dict[str, Any]) -> None:
    operator: OperatorProcess = env["operator"]
    create_healthy(cluster, NAMES[0])
    eventually(lambda: operator.metric("federator_applications", phase="Healthy") == 1, "1 Healthy")
    one = series(operator)
    create_healthy(cluster, NAMES[1])
    eventually(lambda: operator.metric("federator_applications", phase="Healthy") == 2, "2 Healthy")
    assert series(operator) == one
    assert not [s for s in operator.metrics() if 'application="' in s]
    gauges = {
        k: v
        for k, v in operator.metrics().items()
        if k.startswith(("federator_applications{", "federator_children{"))
    }
    assert gauges and all(v > 0 for v in gauges.values()), gauges
    assert operator.metric("federator_children", kind="KafkaTopic", health="Healthy") == 14


def test_converged_applications_resync_without_reads_or_writes(
    cluster: Cluster, env: dict[str, Any]
) -> None:
    operator: OperatorProcess = env["operator"]
    env["sim"].stop()  # nothing changes any more: every reconcile from now on is a resync
    versions = {n: (healthy(cluster, n) or {})["metadata"]["resourceVersion"] for n in NAMES}

    def reconciles() -> float:
        return operator.metric("federator_reconcile_duration_seconds_count")

    # Two resyncs of each first: every reconcile from here on is one.
    start = reconciles()
    eventually(lambda: reconciles() >= start + 2 * len(NAMES), "two resyncs of each", 30)
    gets0 = operator.metric("federator_child_reads_total", source="api")
    cache0 = operator.metric("federator_child_reads_total", source="cache")
    writes0 = operator.metric("federator_api_writes_total")
    server0 = apiserver_requests(cluster)
    count0 = reconciles()
    eventually(lambda: reconciles() >= count0 + 3 * len(NAMES), "three more resyncs of each", 30)
    assert operator.metric("federator_child_reads_total", source="api") == gets0
    assert operator.metric("federator_child_reads_total", source="cache") >= cache0 + 3 * 2 * 15
    assert operator.metric("federator_api_writes_total") == writes0
    server1 = apiserver_requests(cluster)
    changed = {k: server1[k] - server0.get(k, 0.0) for k in server1 if server1[k] != server0.get(k)}
    # Only the test's own GETs of the Applications: no child read, no write, by anyone. A WATCH
    # may be re-opened when the API server ends one (kopf asks for 300 s): a stream, not a read.
    reads_and_writes = {k for k in changed if not k.startswith("WATCH ")}
    assert reads_and_writes <= {"GET applications"}, changed
    assert {n: (healthy(cluster, n) or {})["metadata"]["resourceVersion"] for n in NAMES} == (
        versions
    )


def test_the_log_has_a_line_per_decision_not_per_event(env: dict[str, Any]) -> None:
    text = Path(env["log"]).read_text()
    assert "Handler 'child-" not in text
    assert "Timer 'resync'" not in text
    assert re.search(rf"INFO federator\.workers: Applied {APPS_NS}/{NAMES[0]}: applied 7", text)
    assert re.search(rf"INFO federator\.workers: HealthChanged {APPS_NS}/{NAMES[0]}: ", text)
    per_event = [line for line in text.splitlines() if " INFO kopf.objects: " in line]
    assert per_event == []


def test_a_second_sigterm_while_stopping_exits_cleanly(env: dict[str, Any]) -> None:
    operator: OperatorProcess = env["operator"]
    proc = operator.proc
    assert proc is not None
    log = Path(env["log"])
    os.kill(proc.pid, signal.SIGTERM)
    eventually(lambda: "SIGTERM" in log.read_text(), "the stop", 10, 0.005)
    # SIGTERM again and again while it stops, up to its exit: none may kill it or raise.
    deadline = time.monotonic() + 30
    while proc.poll() is None and time.monotonic() < deadline:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(0.02)
    assert proc.wait(1) == 0
    operator.proc = None
    text = log.read_text()
    assert "SIGTERM received again: still stopping" in text
    assert " ERROR " not in text
    assert "Traceback" not in text
    assert "InvalidStateError" not in text
