"""Applications at and over the size limits, on the real API server (issue 10 §4).

`federator run` with the default limits (1,000 streamlets, 3,000 children per application),
the delegate simulator making topics Ready.

Aspects covered:
- an application over the limit is refused before anything is applied (Compiled=False,
  TooManyStreamlets at spec.streamlets), nothing is created;
- the largest application the defaults allow (1,000 streamlets, 3,000 children, Delete
  policy) deploys to Healthy with a summarised status within `limits.STATUS_BYTES` and kopf's
  bookkeeping annotations a few hundred bytes; it is deleted: the finalizer deletes its 2,000
  topics and is removed;
- a deletion the API server refuses (a ValidatingAdmissionPolicy forbids deleting one topic)
  does not hold the Application: it goes, a Warning Event names what was left behind.

The streamlets run on Spark, whose status the simulator writes: a thousand Deployments would
wait on the kube-controller-manager (its client is limited to 20 requests/s), which is a
property of the controller, not of federator.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from federator.core import limits
from federator.devcluster import crdfiles
from federator.devcluster.harness import OperatorProcess, eventually, free_port
from federator.simulator import DelegateSimulator

if TYPE_CHECKING:
    from conftest import Cluster
else:
    Cluster = Any

REPO = Path(__file__).resolve().parents[2]
TEAM = "lim-team"
KAFKA = "lim-kafka"
APPS = f"/apis/federator.io/v1alpha1/namespaces/{TEAM}/applications"
TOPICS = f"/apis/kafka.strimzi.io/v1/namespaces/{KAFKA}/kafkatopics"
SPARK_APPS = f"/apis/sparkoperator.k8s.io/v1beta2/namespaces/{TEAM}/sparkapplications"
VAP = "/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicies"
VAP_BINDING = "/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicybindings"
KEPT = "lim-refused.src.out"  # the topic the admission policy keeps
PROBE = "lim-probe"  # kept too: shows when the policy is in force


@pytest.fixture(scope="module")
def operator(
    cluster: Cluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    cluster.plane.install_crds(REPO / "crds" / "application.yaml")
    cluster.plane.install_crds(*crdfiles.delegate_crd_files())
    for ns in (TEAM, KAFKA):
        cluster.ensure_namespace(ns)
    tmp = tmp_path_factory.mktemp("limits")
    settings = tmp / "settings.yaml"
    settings.write_text(
        yaml.safe_dump(
            {
                "kafkaClusters": [
                    {
                        "name": "default",
                        "strimziCluster": "pipelines-strimzi",
                        "namespace": KAFKA,
                        "bootstrapServers": "pipelines-strimzi-kafka-bootstrap:9092",
                    }
                ],
                "operator": {
                    "metricsPort": free_port(),
                    "livenessPort": free_port(),
                    "resyncSeconds": 600,
                    "statusDebounceSeconds": 0.2,
                },
            }
        )
    )
    process = OperatorProcess(
        settings, cluster.kubeconfig, tmp / "operator.log", namespaces=[TEAM, KAFKA]
    )
    sim = DelegateSimulator(cluster.api, interval=0.2, namespaces=[TEAM, KAFKA])
    sim.run_in_thread()
    process.start()
    try:
        yield process
    finally:
        process.stop()
        sim.stop()
    log = (tmp / "operator.log").read_text()
    ours = [line for line in log.splitlines() if re.search(r"ERROR federator\.|crashed", line)]
    assert not ours, "\n".join(ours[:20])


def line_of(name: str, streamlets: int, policy: str = "Delete") -> dict[str, Any]:
    """A line of Spark streamlets with two outlets each (one feeds the next): streamlets
    + 2 * streamlets children."""
    names = [f"s{i:04d}" for i in range(streamlets)] if streamlets > 1 else ["src"]
    return {
        "apiVersion": "federator.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": name, "namespace": TEAM},
        "spec": {
            "deletionPolicy": policy,
            "streamlets": [
                {
                    "name": s,
                    "runtime": "spark",
                    "image": "registry.example.com/team/app:1.0",
                    "spark": {"mainApplicationFile": "local:///opt/app/app.jar"},
                    **({"inlets": ["in"]} if i else {}),
                    "outlets": ["out", "audit"],
                }
                for i, s in enumerate(names)
            ],
            "connections": [
                {"from": f"{a}.out", "to": [f"{b}.in"]} for a, b in itertools.pairwise(names)
            ],
        },
    }


def get(cluster: Cluster, name: str) -> dict[str, Any] | None:
    code, body = cluster.plane.request("GET", f"{APPS}/{name}")
    return body if code == 200 else None


def count(cluster: Cluster, path: str, app: str) -> int:
    code, body = cluster.plane.request(
        "GET", f"{path}?labelSelector=federator.io/application={app}"
    )
    assert code == 200, body
    return len(body["items"])


def events(cluster: Cluster, name: str, reason: str) -> list[dict[str, Any]]:
    code, body = cluster.plane.request("GET", f"/api/v1/namespaces/{TEAM}/events")
    assert code == 200, body
    return [
        e
        for e in body["items"]
        if e["involvedObject"].get("name") == name and e.get("reason") == reason
    ]


def test_over_the_limit_nothing_is_applied(cluster: Cluster, operator: OperatorProcess) -> None:
    body = line_of("lim-over", limits.DEFAULT_MAX_STREAMLETS + 1)
    code, got = cluster.plane.request("POST", APPS, body)
    assert code == 201, got

    def invalid() -> dict[str, Any] | None:
        status = (get(cluster, "lim-over") or {}).get("status") or {}
        return status if status.get("phase") == "Invalid" else None

    status = eventually(invalid, "phase Invalid", 120)
    compiled = next(c for c in status["conditions"] if c["type"] == "Compiled")
    assert compiled["status"] == "False"
    assert (
        "spec.streamlets: 1001 streamlets, over this operator's limit of 1000"
        in (compiled["message"])
    )
    assert "limits.maxStreamlets" in compiled["message"]
    assert count(cluster, TOPICS, "lim-over") == 0
    assert count(cluster, SPARK_APPS, "lim-over") == 0
    cluster.plane.request("DELETE", f"{APPS}/lim-over")
    eventually(lambda: get(cluster, "lim-over") is None, "lim-over deleted", 60)


def test_the_largest_allowed_application_fits_and_is_deleted(
    cluster: Cluster, operator: OperatorProcess
) -> None:
    streamlets = limits.DEFAULT_MAX_STREAMLETS
    children = limits.DEFAULT_MAX_CHILDREN
    assert streamlets * 3 == children  # the application is at both limits
    code, got = cluster.plane.request("POST", APPS, line_of("lim-max", streamlets))
    assert code == 201, got

    def healthy() -> dict[str, Any] | None:
        body = get(cluster, "lim-max") or {}
        status = body.get("status") or {}
        done = (
            status.get("phase") == "Healthy"
            and status.get("observedGeneration") == (body["metadata"]["generation"])
        )
        return body if done else None

    body = eventually(healthy, "the largest application Healthy", 600, 1.0)
    status = body["status"]
    assert (status["ready"], status["total"]) == (children, children)
    assert status["inventory"] == {
        "summarised": True,
        "total": children,
        "listed": 0,
        "counts": [
            {"kind": "KafkaTopic", "health": "Healthy", "count": 2 * streamlets},
            {"kind": "SparkApplication", "health": "Healthy", "count": streamlets},
        ],
    }
    assert len(json.dumps(status, separators=(",", ":"))) <= limits.STATUS_BYTES
    annotations = body["metadata"]["annotations"]
    assert len(annotations["federator.io/last-handled-configuration"]) < 300
    assert sum(len(k) + len(v) for k, v in annotations.items()) < 2048
    assert count(cluster, TOPICS, "lim-max") == 2 * streamlets

    code, got = cluster.plane.request("DELETE", f"{APPS}/lim-max")
    assert code == 200, got
    eventually(lambda: get(cluster, "lim-max") is None, "the finalizer removed", 300, 1.0)
    assert count(cluster, TOPICS, "lim-max") == 0  # deleted by the finalizer, before it went


def test_a_refused_deletion_does_not_hold_the_application(
    cluster: Cluster, operator: OperatorProcess
) -> None:
    policy = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": "lim-keep-topic"},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {
                "resourceRules": [
                    {
                        "apiGroups": ["kafka.strimzi.io"],
                        "apiVersions": ["*"],
                        "operations": ["DELETE"],
                        "resources": ["kafkatopics"],
                    }
                ]
            },
            "validations": [
                {
                    "expression": f"!(oldObject.metadata.name in ['{KEPT}', '{PROBE}'])",
                    "message": "this topic is kept by the platform team",
                    "reason": "Forbidden",
                }
            ],
        },
    }
    binding = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": "lim-keep-topic"},
        "spec": {
            "policyName": "lim-keep-topic",
            "validationActions": ["Deny"],
            "matchResources": {
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": KAFKA}}
            },
        },
    }
    probe = {
        "apiVersion": "kafka.strimzi.io/v1",
        "kind": "KafkaTopic",
        "metadata": {"name": PROBE, "namespace": KAFKA},
        "spec": {"topicName": PROBE},
    }
    for path, obj in ((VAP, policy), (VAP_BINDING, binding)):
        code, got = cluster.plane.request("POST", path, obj)
        assert code == 201, got

    def in_force() -> bool:
        """Deleting the probe is refused (re-created if it went before the policy applied)."""
        code, got = cluster.plane.request("POST", TOPICS, probe)
        assert code in (201, 409), got
        return cluster.plane.request("DELETE", f"{TOPICS}/{PROBE}")[0] == 403

    try:
        # The API server enforces a new policy once its informers have it: wait for that.
        eventually(in_force, "the admission policy in force")
        code, got = cluster.plane.request("POST", APPS, line_of("lim-refused", 1))
        assert code == 201, got
        eventually(
            lambda: count(cluster, TOPICS, "lim-refused") == 2, "its two topics created", 120
        )
        code, got = cluster.plane.request("DELETE", f"{APPS}/lim-refused")
        assert code == 200, got
        eventually(lambda: get(cluster, "lim-refused") is None, "deleted all the same", 120)
        (event,) = eventually(
            lambda: events(cluster, "lim-refused", "DeletionIncomplete"), "the Warning Event"
        )
        assert event["type"] == "Warning"
        assert KEPT in event["message"] and "kept by the platform team" in event["message"]
        assert count(cluster, TOPICS, "lim-refused") == 1  # the other topic was deleted
    finally:
        cluster.plane.request("DELETE", f"{VAP_BINDING}/lim-keep-topic")
        cluster.plane.request("DELETE", f"{VAP}/lim-keep-topic")
        eventually(
            lambda: cluster.plane.request("DELETE", f"{TOPICS}/{PROBE}")[0] in (200, 404),
            "the probe topic deleted",
        )
