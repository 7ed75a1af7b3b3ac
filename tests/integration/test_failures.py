"""Every failure reaches the Application (issue 10 §5), on the real API server.

The four cases of the issue, each of which used to leave a blank or a wrong status:
- a `spark` block that would move its child to another namespace;
- `container: {replicas: "many"}`;
- `spark.driver: "abc"` (was silently replaced by `{}` and read Healthy);
- a Kafka cluster pinned to `topicApiVersion: v1beta2` where only v1 is served (a 404 on every
  apply, retried forever with only log lines).
The first three are problems found before anything is applied (phase Invalid, Compiled=False,
the path of the field); the last is the topic's own verdict (Degraded, KindNotServed, with the
API server's words) and a Warning Event.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from federator.devcluster import crdfiles
from federator.devcluster.harness import OperatorProcess, eventually, free_port

if TYPE_CHECKING:
    from conftest import Cluster
else:
    Cluster = Any

REPO = Path(__file__).resolve().parents[2]
TEAM = "fail-team"
KAFKA = "fail-kafka"
APPS = f"/apis/federator.io/v1alpha1/namespaces/{TEAM}/applications"
IMAGE = "registry.example.com/team/app:1.0"


@pytest.fixture(scope="module")
def operator(
    cluster: Cluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    cluster.plane.install_crds(REPO / "crds" / "application.yaml")
    cluster.plane.install_crds(*crdfiles.delegate_crd_files())  # KafkaTopic: v1 only
    for ns in (TEAM, KAFKA):
        cluster.ensure_namespace(ns)
    tmp = tmp_path_factory.mktemp("failures")
    settings = tmp / "settings.yaml"
    cluster_values = {
        "strimziCluster": "pipelines-strimzi",
        "namespace": KAFKA,
        "bootstrapServers": "pipelines-strimzi-kafka-bootstrap:9092",
    }
    settings.write_text(
        yaml.safe_dump(
            {
                "kafkaClusters": [
                    {"name": "default", **cluster_values},
                    {"name": "pinned", **cluster_values, "topicApiVersion": "v1beta2"},
                ],
                "operator": {
                    "metricsPort": free_port(),
                    "livenessPort": free_port(),
                    "resyncSeconds": 600,
                    "statusDebounceSeconds": 0.1,
                },
            }
        )
    )
    process = OperatorProcess(
        settings, cluster.kubeconfig, tmp / "operator.log", namespaces=[TEAM, KAFKA]
    )
    process.start()
    try:
        yield process
    finally:
        process.stop()


def app(name: str, streamlet: dict[str, Any], kafka_cluster: str = "default") -> dict[str, Any]:
    return {
        "apiVersion": "federator.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": name, "namespace": TEAM},
        "spec": {
            "kafka": {"cluster": kafka_cluster},
            "streamlets": [
                {"name": "job", "image": IMAGE, "outlets": ["out"], **streamlet},
                {"name": "sink", "runtime": "container", "image": IMAGE, "inlets": ["in"]},
            ],
            "connections": [{"from": "job.out", "to": ["sink.in"]}],
        },
    }


SPARK = {
    "runtime": "spark",
    "spark": {"mainClass": "x.Main", "mainApplicationFile": "local:///opt/app.jar"},
}


def with_spark(**block: Any) -> dict[str, Any]:
    out = copy.deepcopy(SPARK)
    out["spark"].update(block)
    return out


def status_of(cluster: Cluster, name: str) -> dict[str, Any]:
    code, body = cluster.plane.request("GET", f"{APPS}/{name}")
    assert code == 200, body
    return body.get("status") or {}  # type: ignore[no-any-return]


def children_in(cluster: Cluster, path: str) -> list[str]:
    code, body = cluster.plane.request("GET", path)
    assert code == 200, body
    return [i["metadata"]["name"] for i in body["items"]]


@pytest.mark.parametrize(
    "case",
    [
        (
            "spark-moves-namespace",
            with_spark(namespace="team-b"),
            "spec.streamlets[0].spark.namespace",
            "namespace",
        ),
        (
            "replicas-many",
            {"runtime": "container", "container": {"replicas": "many"}},
            "spec.streamlets[0].container.replicas",
            "integer",
        ),
        ("spark-driver-a-string", with_spark(driver="abc"), "spec.streamlets[0].spark.driver", ""),
    ],
    ids=lambda case: str(case[0]),
)
def test_a_bad_runtime_block_is_a_problem_before_anything_is_applied(
    cluster: Cluster, operator: OperatorProcess, case: tuple[str, Any, str, str]
) -> None:
    name, streamlet, path, fragment = case
    code, got = cluster.plane.request("POST", APPS, app(name, streamlet))
    assert code == 201, got

    def invalid() -> dict[str, Any] | None:
        status = status_of(cluster, name)
        return status if status.get("phase") == "Invalid" else None

    status = eventually(invalid, f"{name} Invalid")
    compiled = next(c for c in status["conditions"] if c["type"] == "Compiled")
    assert compiled["status"] == "False"
    assert path in compiled["message"] and fragment in compiled["message"], compiled["message"]
    # Nothing was applied for it, in its namespace or elsewhere.
    assert not [
        n
        for n in children_in(cluster, f"/apis/apps/v1/namespaces/{TEAM}/deployments")
        if n.startswith(name)
    ]
    assert not [
        n
        for n in children_in(cluster, "/apis/sparkoperator.k8s.io/v1beta2/sparkapplications")
        if n.startswith(name)
    ]


def test_a_topic_version_the_cluster_does_not_serve_reaches_the_status(
    cluster: Cluster, operator: OperatorProcess
) -> None:
    name = "pinned-v1beta2"
    body = app(name, {"runtime": "container"}, kafka_cluster="pinned")
    code, got = cluster.plane.request("POST", APPS, body)
    assert code == 201, got

    def topic_verdict() -> dict[str, Any] | None:
        children = status_of(cluster, name).get("children") or []
        return next(
            (c for c in children if c["kind"] == "KafkaTopic" and c["health"] == "Degraded"),
            None,
        )

    verdict = eventually(topic_verdict, "the topic's Degraded verdict")
    assert verdict["reason"] == "KindNotServed"
    assert "v1beta2" in verdict["message"] and "topicApiVersion" in verdict["message"]
    assert status_of(cluster, name)["phase"] == "Degraded"

    def warned() -> list[dict[str, Any]]:
        code, events = cluster.plane.request("GET", f"/api/v1/namespaces/{TEAM}/events")
        assert code == 200
        return [
            e
            for e in events["items"]
            if e["involvedObject"].get("name") == name and e["reason"] == "WriteFailed"
        ]

    (event, *_) = eventually(warned, "a WriteFailed Warning Event")
    assert event["type"] == "Warning" and "KafkaTopic/" in event["message"]
