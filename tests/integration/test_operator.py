"""The operator on the real control plane (issue 4 item 10), driven by the delegate simulator.

`federator run` runs as a subprocess watching its own namespaces; the delegate simulator moves
child statuses through the real state enumerations; the real kube-controller-manager and kwok
run Deployments and garbage-collect owned children.

Aspects covered:
- the seed example's lifecycle: topics first, streamlets once their topics are Healthy, then
  Ready=True / phase Healthy / observedGeneration current, KafkaTopics in the Kafka namespace;
- a Spark child FAILED -> Degraded with its message, then recovered;
- spec changes: partitions, a new streamlet, a removed streamlet pruned, a removed outlet's
  topic retained under Retain;
- an invalid update keeps the old children (Compiled=False, phase Invalid);
- a hand-deleted child is restored;
- a delegate CRD missing, then installed, is picked up without a restart;
- suspend scales streamlets to zero / suspends delegates, keeps topics, and resumes;
- an operator restart makes zero writes for converged applications;
- deletion: owned children garbage-collected, Retain topics survive, Delete topics removed;
- 50 applications converge.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from federator.devcluster import crdfiles
from federator.devcluster.harness import (
    OperatorProcess,
    eventually,
)
from federator.simulator import DelegateSimulator
from integration import operator_settings

if TYPE_CHECKING:
    from conftest import Cluster
else:
    Cluster = Any

REPO = Path(__file__).resolve().parents[2]
DELEGATES = crdfiles.delegate_crds_dir()
APPS_NS = "op-apps"
KAFKA_NS = "op-kafka"
LYFT_CRD = DELEGATES / "lyft-flinkapplication.crd.yaml"
APP = "/apis/federator.io/v1alpha1/namespaces/{ns}/applications"


@pytest.fixture(scope="module")
def env(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    cluster.plane.install_crds(REPO / "crds" / "application.yaml")
    cluster.plane.install_crds(*crdfiles.delegate_crd_files(DELEGATES))
    for ns in (APPS_NS, KAFKA_NS):
        cluster.ensure_namespace(ns)
    tmp = tmp_path_factory.mktemp("operator")
    settings = tmp / "settings.yaml"
    operator_settings.write(settings, KAFKA_NS)
    operator = OperatorProcess(
        settings, cluster.kubeconfig, tmp / "operator.log", namespaces=[APPS_NS, KAFKA_NS]
    )
    sim = DelegateSimulator(cluster.api, interval=0.1, namespaces=[APPS_NS, KAFKA_NS])
    sim.run_in_thread()
    operator.start()
    try:
        yield {"operator": operator, "sim": sim, "log": tmp / "operator.log"}
    finally:
        operator.stop()
        sim.stop()


def seed(name: str = "call-record-aggregator", **spec_changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = yaml.safe_load(
        (REPO / "examples" / "call-record-aggregator.yaml").read_text()
    )
    body["metadata"] = {"name": name, "namespace": APPS_NS}
    body["spec"].update(spec_changes)
    return body


def create(cluster: Cluster, body: dict[str, Any]) -> None:
    status, got = cluster.plane.request("POST", APP.format(ns=APPS_NS), body)
    assert status == 201, got


def get(cluster: Cluster, name: str) -> dict[str, Any]:
    status, body = cluster.plane.request("GET", f"{APP.format(ns=APPS_NS)}/{name}")
    assert status == 200, body
    return body  # type: ignore[no-any-return]


def patch_spec(cluster: Cluster, name: str, spec: dict[str, Any]) -> None:
    status, got = cluster.plane.request(
        "PATCH",
        f"{APP.format(ns=APPS_NS)}/{name}",
        {"spec": spec},
        content_type="application/merge-patch+json",
    )
    assert status == 200, got


def healthy(cluster: Cluster, name: str) -> dict[str, Any] | None:
    body = get(cluster, name)
    status = body.get("status") or {}
    ready = next((c for c in status.get("conditions", []) if c["type"] == "Ready"), {})
    if (
        status.get("phase") == "Healthy"
        and ready.get("status") == "True"
        and status.get("observedGeneration") == body["metadata"]["generation"]
    ):
        return body
    return None


def child(body: dict[str, Any], kind: str, streamlet: str | None = None) -> dict[str, Any]:
    return next(
        c
        for c in body["status"]["children"]
        if c["kind"] == kind and (streamlet is None or c.get("streamlet") == streamlet)
    )


def exists(cluster: Cluster, path: str) -> bool:
    return int(cluster.plane.request("GET", path)[0]) == 200


def deployment_path(name: str) -> str:
    return f"/apis/apps/v1/namespaces/{APPS_NS}/deployments/{name}"


def topic_path(name: str) -> str:
    return f"/apis/kafka.strimzi.io/v1/namespaces/{KAFKA_NS}/kafkatopics/{name}"


def test_seed_application_converges_in_waves(cluster: Cluster, env: dict[str, Any]) -> None:
    operator: OperatorProcess = env["operator"]
    create(cluster, seed())
    body = eventually(lambda: healthy(cluster, "call-record-aggregator"), "Healthy", 120)
    # Every child read came from the watch cache: the kinds were listed at start-up, so a
    # child not yet created is known to be absent without a GET (no resync ran yet).
    assert operator.metric("federator_child_reads_total", source="cache") >= 15
    assert operator.metric("federator_child_reads_total", source="api") == 0
    status = body["status"]
    assert (status["ready"], status["total"], status["summary"]) == (15, 15, "15/15")
    assert {c["type"]: c["status"] for c in status["conditions"]} == {
        "Ready": "True",
        "Reconciling": "False",
        "Stalled": "False",
        "Compiled": "True",
        "DelegatesAvailable": "True",
    }
    topics = cluster.plane.request(
        "GET", f"/apis/kafka.strimzi.io/v1/namespaces/{KAFKA_NS}/kafkatopics"
    )[1]["items"]
    names = sorted(
        t["spec"]["topicName"] for t in topics if "call-record" in t["spec"]["topicName"]
    )
    assert len(names) == 7 and names[0] == "call-record-aggregator.cdr-aggregator.out"
    assert all(t["metadata"]["labels"]["strimzi.io/cluster"] == "pipelines-strimzi" for t in topics)
    # Waves: every topic was created before any streamlet child.
    stamps = [
        (t["metadata"]["creationTimestamp"], "topic")
        for t in topics
        if "call-record" in t["spec"]["topicName"]
    ]
    deploy = cluster.plane.request("GET", f"/apis/apps/v1/namespaces/{APPS_NS}/deployments")[1]
    stamps += [(d["metadata"]["creationTimestamp"], "streamlet") for d in deploy["items"]]
    assert max(s for s, k in stamps if k == "topic") <= min(s for s, k in stamps if k != "topic")

    def reasons() -> set[str] | None:  # Events are posted in the background
        events = cluster.plane.request("GET", f"/api/v1/namespaces/{APPS_NS}/events")[1]
        got = {e["reason"] for e in events["items"] if e["involvedObject"]["kind"] == "Application"}
        return got if {"Compiled", "Applied", "HealthChanged"} <= got else None

    eventually(reasons, "the Compiled, Applied and HealthChanged Events")


def test_spark_failure_degrades_then_recovers(cluster: Cluster, env: dict[str, Any]) -> None:
    sim: DelegateSimulator = env["sim"]
    operator: OperatorProcess = env["operator"]
    name = "call-record-aggregator-cdr-aggregator"
    from_cache = operator.metric("federator_child_reads_total", source="cache")
    sim.fail("SparkApplication", APPS_NS, name, "Job aborted: OutOfMemoryError")

    def degraded() -> dict[str, Any] | None:
        body = get(cluster, "call-record-aggregator")
        return body if body["status"]["phase"] == "Degraded" else None

    body = eventually(degraded, "Degraded")
    spark = child(body, "SparkApplication", "cdr-aggregator")
    assert spark["health"] == "Degraded" and "OutOfMemoryError" in spark["message"]
    stalled = next(c for c in body["status"]["conditions"] if c["type"] == "Stalled")
    assert stalled["status"] == "True" and "OutOfMemoryError" in stalled["message"]
    # The reconcile the child event triggered read its 15 children from the watch cache.
    assert operator.metric("federator_child_reads_total", source="cache") >= from_cache + 15
    sim.recover("SparkApplication", APPS_NS, name)
    eventually(lambda: healthy(cluster, "call-record-aggregator"), "Healthy again")


def test_spec_changes_update_add_prune_and_retain(cluster: Cluster, env: dict[str, Any]) -> None:
    body = get(cluster, "call-record-aggregator")
    spec = copy.deepcopy(body["spec"])
    spec["topicDefaults"]["partitions"] = 60
    spec["streamlets"] = [s for s in spec["streamlets"] if s["name"] != "error-egress"]
    validator = next(s for s in spec["streamlets"] if s["name"] == "cdr-validator")
    validator["outlets"] = ["valid"]
    spec["connections"] = [c for c in spec["connections"] if "invalid" not in c["from"]]
    spec["streamlets"].append(
        {
            "name": "audit",
            "runtime": "container",
            "image": "registry.example.com/audit:1",
            "inlets": ["in"],
        }
    )
    spec["connections"].append({"from": "merge.out", "to": ["audit.in"]})
    status, got = cluster.plane.request(  # no resourceVersion: a status write cannot race it
        "PATCH",
        f"{APP.format(ns=APPS_NS)}/call-record-aggregator",
        [{"op": "replace", "path": "/spec", "value": spec}],
        content_type="application/json-patch+json",
    )
    assert status == 200, got
    body = eventually(lambda: healthy(cluster, "call-record-aggregator"), "Healthy after edit")
    assert body["status"]["total"] == 14  # 15, -1 streamlet, -1 topic, +1 streamlet
    assert exists(cluster, deployment_path("call-record-aggregator-audit"))
    eventually(
        lambda: not exists(cluster, deployment_path("call-record-aggregator-error-egress")),
        "error-egress pruned",
    )
    topic = cluster.plane.request("GET", topic_path("call-record-aggregator.merge.out"))[1]
    assert topic["spec"]["partitions"] == 60
    # Retain: the removed outlet's topic stays in Kafka, no longer in the inventory.
    assert exists(cluster, topic_path("call-record-aggregator.cdr-validator.invalid"))
    assert "call-record-aggregator.cdr-validator.invalid" not in {
        c["name"] for c in body["status"]["children"]
    }


def test_invalid_update_keeps_the_running_children(cluster: Cluster, env: dict[str, Any]) -> None:
    before = get(cluster, "call-record-aggregator")
    spec = copy.deepcopy(before["spec"])
    spec["connections"].append({"from": "merge.out", "to": ["nowhere.in"]})
    patch_spec(cluster, "call-record-aggregator", {"connections": spec["connections"]})

    def invalid() -> dict[str, Any] | None:
        body = get(cluster, "call-record-aggregator")
        return body if body["status"].get("phase") == "Invalid" else None

    body = eventually(invalid, "Invalid")
    compiled = next(c for c in body["status"]["conditions"] if c["type"] == "Compiled")
    assert compiled["status"] == "False" and "nowhere" in compiled["message"]
    assert exists(cluster, deployment_path("call-record-aggregator-merge"))
    assert len(body["status"]["children"]) == len(before["status"]["children"])
    patch_spec(cluster, "call-record-aggregator", {"connections": before["spec"]["connections"]})
    eventually(lambda: healthy(cluster, "call-record-aggregator"), "Healthy after fix")


def test_a_child_deleted_by_hand_is_restored(cluster: Cluster, env: dict[str, Any]) -> None:
    path = deployment_path("call-record-aggregator-merge")
    uid = cluster.plane.request("GET", path)[1]["metadata"]["uid"]
    cluster.plane.request("DELETE", path)
    eventually(
        lambda: (
            cluster.plane.request("GET", path)[1].get("metadata", {}).get("uid") not in (None, uid)
        ),
        "merge Deployment re-created",
    )
    eventually(lambda: healthy(cluster, "call-record-aggregator"), "Healthy after restore")


def test_missing_delegate_then_installed(cluster: Cluster, env: dict[str, Any]) -> None:
    cluster.plane.delete_crds("flinkapplications.flink.k8s.io")
    body = {
        "apiVersion": "federator.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": "lyft-late", "namespace": APPS_NS},
        "spec": {
            "streamlets": [
                {"name": "src", "runtime": "container", "image": "r/src:1", "outlets": ["out"]},
                {
                    "name": "count",
                    "runtime": "flink",
                    "flinkOperator": "lyft",
                    "image": "r/count:1",
                    "inlets": ["in"],
                    "flink": {"jarName": "c.jar", "entryClass": "C"},
                },
            ],
            "connections": [{"from": "src.out", "to": ["count.in"]}],
        },
    }
    create(cluster, body)

    seen: list[Any] = []

    def missing() -> dict[str, Any] | None:
        got = get(cluster, "lyft-late")
        status = got.get("status") or {}
        seen[:] = [
            status.get("phase"),
            [(c["kind"], c["health"]) for c in status.get("children", [])],
        ]
        ok = status.get("phase") == "Missing" and child(got, "Deployment")["health"] == "Healthy"
        return got if ok else None

    try:
        got = eventually(missing, "phase Missing with the rest deployed")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; last status: {seen}") from None
    lyft = child(got, "FlinkApplication")
    assert lyft["reason"] == "DelegateNotInstalled" and "flinkk8soperator" in lyft["message"]
    delegates = next(c for c in got["status"]["conditions"] if c["type"] == "DelegatesAvailable")
    assert delegates["status"] == "False"
    cluster.plane.install_crds(LYFT_CRD)
    eventually(lambda: healthy(cluster, "lyft-late"), "Healthy once the CRD is installed", 120)
    # Deleting a watched CRD can kill kopf's watch machinery (a 404 on a watch): federator
    # restarts it in-process, so the operator is still running.
    operator: OperatorProcess = env["operator"]
    assert operator.proc is not None and operator.proc.poll() is None


def test_suspend_and_resume(cluster: Cluster, env: dict[str, Any]) -> None:
    patch_spec(cluster, "call-record-aggregator", {"suspend": True})

    def suspended() -> dict[str, Any] | None:
        body = get(cluster, "call-record-aggregator")
        status = body.get("status") or {}
        current = status.get("observedGeneration") == body["metadata"]["generation"]
        return body if current and status.get("phase") == "Suspended" else None

    body = eventually(suspended, "phase Suspended")
    deployment = cluster.plane.request("GET", deployment_path("call-record-aggregator-merge"))[1]
    assert deployment["spec"]["replicas"] == 0
    assert child(body, "SparkApplication", "cdr-aggregator")["health"] == "Suspended"
    assert child(body, "KafkaTopic")["health"] == "Healthy"  # topics are kept
    patch_spec(cluster, "call-record-aggregator", {"suspend": False})
    eventually(lambda: healthy(cluster, "call-record-aggregator"), "Healthy after resume")


def test_restart_makes_no_writes_for_converged_applications(
    cluster: Cluster, env: dict[str, Any]
) -> None:
    operator: OperatorProcess = env["operator"]
    body = eventually(lambda: healthy(cluster, "call-record-aggregator"), "Healthy")
    version = body["metadata"]["resourceVersion"]
    operator.stop()
    operator.start()
    # Wait until the restarted operator has reconciled every application it watches.
    eventually(
        lambda: operator.metric("federator_reconcile_duration_seconds_count") >= 2,
        "the resumed reconciles",
    )
    assert operator.metric("federator_api_writes_total") == 0
    assert get(cluster, "call-record-aggregator")["metadata"]["resourceVersion"] == version
    # The resumed reconcile reads every child of the application: from the watch cache where
    # kopf's own listing has confirmed it, by GET otherwise (`WatchCache.confirmed`).
    reads = operator.metric("federator_child_reads_total", source="api") + operator.metric(
        "federator_child_reads_total", source="cache"
    )
    assert reads >= 15


def test_deletion_collects_owned_children_and_applies_topic_policy(
    cluster: Cluster, env: dict[str, Any]
) -> None:
    create(cluster, seed("doomed", deletionPolicy="Delete"))
    eventually(lambda: healthy(cluster, "doomed"), "doomed Healthy", 120)
    for name in ("doomed", "call-record-aggregator"):
        cluster.plane.request("DELETE", f"{APP.format(ns=APPS_NS)}/{name}")
    eventually(lambda: not exists(cluster, deployment_path("doomed-merge")), "owned GC'd")
    eventually(lambda: not exists(cluster, deployment_path("call-record-aggregator-merge")), "GC")
    eventually(lambda: not exists(cluster, topic_path("doomed.merge.out")), "Delete topic gone")
    assert exists(cluster, topic_path("call-record-aggregator.merge.out"))  # Retain


def test_fifty_applications_converge(cluster: Cluster, env: dict[str, Any]) -> None:
    names = [f"fleet-{i:02d}" for i in range(50)]
    for name in names:
        create(
            cluster,
            {
                "apiVersion": "federator.io/v1alpha1",
                "kind": "Application",
                "metadata": {"name": name, "namespace": APPS_NS},
                "spec": {
                    "topicDefaults": {"partitions": 3, "replicas": 1},
                    "streamlets": [
                        {
                            "name": "in",
                            "runtime": "container",
                            "image": "r/i:1",
                            "outlets": ["out"],
                        },
                        {
                            "name": "agg",
                            "runtime": "spark",
                            "image": "r/a:1",
                            "inlets": ["in"],
                            "spark": {"mainApplicationFile": "local:///a.jar"},
                        },
                    ],
                    "connections": [{"from": "in.out", "to": ["agg.in"]}],
                },
            },
        )
    pending = set(names)

    def all_healthy() -> bool:
        for name in sorted(pending):
            if healthy(cluster, name):
                pending.discard(name)
        return not pending

    eventually(all_healthy, f"50 applications Healthy (left: {pending})", 300)
    # federator's own code never crashed (kopf may log its watch-stream retries when a
    # delegate CRD is deleted under it, as test_missing_delegate_then_installed does).
    log = env["log"].read_text()
    ours = [line for line in log.splitlines() if re.search(r"ERROR federator\.|crashed", line)]
    assert not ours, "\n".join(ours[:20])
