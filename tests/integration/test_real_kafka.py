"""Federator's KafkaTopics on a REAL Kafka broker (issue 13, the Kafka slice; finding 3).

A real Kafka 4.4.0 broker (single-node KRaft, built by `make delegates`, see
docs/real-delegates.md) runs on loopback. No Strimzi topic operator can run here, so the delegate
simulator in broker mode plays it: it creates and alters every KafkaTopic's topic on the broker
and writes the broker's answer into the KafkaTopic's status as Strimzi does. `federator run`
deploys the seed application; the broker is checked with Kafka's admin client (confluent-kafka).
The simulator runs as a developer runs it (`federator simulate --kafka-bootstrap`);
SparkApplications are simulated, Deployments run on the real controller-manager and kwok.

Aspects covered, each with a deadline and in this order (one application throughout):
- the seed's seven topics exist on the broker with the spec's partitions, replication factor and
  config, and each KafkaTopic's topicId is the broker's; the Application is Healthy;
- a topic with replicas 2 on the one-broker cluster: the broker refuses it
  (INVALID_REPLICATION_FACTOR), the KafkaTopic is Ready=False with the broker's message and the
  Application is Degraded naming that topic and message (finding 3); replicas 1 recovers it;
- a partition increase reaches the broker; a decrease is refused as Strimzi refuses it;
- a topic removed from the spec under deletionPolicy Delete is deleted from the broker.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from federator.devcluster import crdfiles
from federator.devcluster.delegates import DelegateBuildError
from federator.devcluster.harness import OperatorProcess, eventually, free_port, in_ci
from federator.devcluster.kafka_broker import KafkaBroker, ensure_kafka

if TYPE_CHECKING:
    from conftest import Cluster
else:
    Cluster = Any

pytestmark = pytest.mark.real_delegates

REPO = Path(__file__).resolve().parents[2]
APPS_NS = "rk-apps"
KAFKA_NS = "rk-kafka"
NAME = "call-record-aggregator"
APP = f"/apis/federator.io/v1alpha1/namespaces/{APPS_NS}/applications/{NAME}"
TOPICS = f"/apis/kafka.strimzi.io/v1/namespaces/{KAFKA_NS}/kafkatopics"
AUDIT = f"{NAME}.audit"  # an explicit topic the tests add, change and remove
RETENTION = "7200000"
# Deadlines (s) on a loaded 2-core machine.
CONVERGE = 240.0
TRANSITION = 120.0


class Broker:
    """The test's own view of the broker, through Kafka's admin client."""

    def __init__(self, bootstrap: str) -> None:
        from confluent_kafka.admin import AdminClient

        self.admin = AdminClient(
            {"bootstrap.servers": bootstrap, "logger": logging.getLogger("test.kafka")}
        )

    def topics(self) -> dict[str, Any]:
        """Topic name -> metadata (partitions with their replicas), internal topics left out."""
        found = self.admin.list_topics(timeout=15).topics
        return {name: meta for name, meta in found.items() if not name.startswith("__")}

    def partitions(self, name: str) -> int | None:
        meta = self.topics().get(name)
        return None if meta is None or meta.error is not None else len(meta.partitions)

    def config(self, name: str) -> dict[str, tuple[str, int]]:
        from confluent_kafka.admin import ConfigResource, ResourceType

        resource = ConfigResource(ResourceType.TOPIC, name)
        entries = self.admin.describe_configs([resource])[resource].result(timeout=15)
        return {key: (entry.value, entry.source) for key, entry in entries.items()}

    def topic_id(self, name: str) -> str:
        from confluent_kafka import TopicCollection

        described = self.admin.describe_topics(TopicCollection([name]))[name]
        return str(described.result(timeout=15).topic_id)


class SimulatorProcess:
    """`federator simulate --kafka-bootstrap B -n APPS -n KAFKA` with its log."""

    def __init__(self, kubeconfig: Path, bootstrap: str, log: Path) -> None:
        self.log = log
        self.argv = [
            sys.executable,
            "-m",
            "federator",
            "simulate",
            "--kubeconfig",
            str(kubeconfig),
            "--interval",
            "0.2",
            "-n",
            APPS_NS,
            "-n",
            KAFKA_NS,
            "--kafka-bootstrap",
            bootstrap,
        ]
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                self.argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )

        def started() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError("the simulator exited:\n" + self.log.read_text()[-3000:])
            return "KafkaTopics on the broker" in self.log.read_text()

        eventually(started, "federator simulate in broker mode", 60)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None


@pytest.fixture(scope="module")
def env(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    try:
        built = ensure_kafka(build_missing=not in_ci(), out=sys.__stderr__)
    except DelegateBuildError as exc:
        pytest.fail(f"the real Kafka broker is unavailable: {exc}", pytrace=False)
    plane = cluster.plane
    plane.install_crds(REPO / "crds" / "application.yaml")
    plane.install_crds(*crdfiles.delegate_crd_files(crdfiles.delegate_crds_dir()))
    for ns in (APPS_NS, KAFKA_NS):
        cluster.ensure_namespace(ns)
    tmp = tmp_path_factory.mktemp("real-kafka")
    broker = KafkaBroker(built, tmp / "broker")
    t0 = time.monotonic()
    broker.start()
    print(f"Kafka broker started in {time.monotonic() - t0:.1f}s at {broker.bootstrap}")
    settings = tmp / "settings.yaml"
    settings.write_text(
        yaml.safe_dump(
            {
                "kafkaClusters": [
                    {
                        "name": "default",
                        "strimziCluster": "local",
                        "namespace": KAFKA_NS,
                        "bootstrapServers": broker.bootstrap,
                    }
                ],
                "operator": {
                    "metricsPort": free_port(),
                    "livenessPort": free_port(),
                    "resyncSeconds": 30,
                    "statusDebounceSeconds": 0.1,
                },
            }
        )
    )
    # `federator simulate --kafka-bootstrap` plays Strimzi's topic operator on the broker (and
    # the Spark operator), as a developer runs it.
    simulator = SimulatorProcess(cluster.kubeconfig, broker.bootstrap, tmp / "simulator.log")
    federator = OperatorProcess(
        settings, cluster.kubeconfig, tmp / "federator.log", namespaces=[APPS_NS, KAFKA_NS]
    )
    try:
        simulator.start()
        federator.start()
        yield {"broker": Broker(broker.bootstrap)}
    finally:
        federator.stop()
        simulator.stop()
        broker.stop()
        status, _ = plane.request("DELETE", APP)
        assert status in (200, 202, 404)


def seed() -> dict[str, Any]:
    body: dict[str, Any] = yaml.safe_load((REPO / "examples" / f"{NAME}.yaml").read_text())
    body["metadata"] = {"name": NAME, "namespace": APPS_NS}
    # One broker: the seed's replicas 2 could never be created (that is the next test's case).
    body["spec"]["topicDefaults"] = {
        "partitions": 53,
        "replicas": 1,
        "config": {"retention.ms": RETENTION},
    }
    return body


def application(cluster: Cluster) -> dict[str, Any]:
    status, body = cluster.plane.request("GET", APP)
    assert status == 200, body
    return body  # type: ignore[no-any-return]


def kafka_topic(cluster: Cluster, name: str) -> dict[str, Any]:
    status, body = cluster.plane.request("GET", f"{TOPICS}/{name}")
    assert status == 200, body
    return body  # type: ignore[no-any-return]


def healthy(cluster: Cluster) -> dict[str, Any] | None:
    body = application(cluster)
    status = body.get("status") or {}
    ready = next((c for c in status.get("conditions", []) if c["type"] == "Ready"), {})
    if (
        status.get("phase") == "Healthy"
        and ready.get("status") == "True"
        and status.get("observedGeneration") == body["metadata"]["generation"]
    ):
        return body
    return None


def topic_child(body: dict[str, Any], topic: str) -> dict[str, Any]:
    children = (body.get("status") or {}).get("children") or []
    return next((c for c in children if c.get("kind") == "KafkaTopic" and c["topic"] == topic), {})


def patch(cluster: Cluster, path: str, body: dict[str, Any]) -> None:
    status, got = cluster.plane.request(
        "PATCH", path, body, content_type="application/merge-patch+json"
    )
    assert status == 200, got


def set_audit(cluster: Cluster, **fields: Any) -> None:
    patch(cluster, APP, {"spec": {"topics": [{"name": AUDIT, **fields}]}})


def test_the_seeds_topics_exist_on_the_broker(cluster: Cluster, env: dict[str, Any]) -> None:
    broker: Broker = env["broker"]
    t0 = time.monotonic()
    status, body = cluster.plane.request(
        "POST", f"/apis/federator.io/v1alpha1/namespaces/{APPS_NS}/applications", seed()
    )
    assert status == 201, body
    body = eventually(lambda: healthy(cluster), "Healthy with topics on the broker", CONVERGE)
    print(f"seed application Healthy on the real broker in {time.monotonic() - t0:.1f}s")
    names = sorted(c["topic"] for c in body["status"]["children"] if c["kind"] == "KafkaTopic")
    assert len(names) == 7
    # The broker's metadata follows its controller's a moment after a creation.
    on_broker = eventually(
        lambda: (found := broker.topics()) and sorted(found) == names and found,
        "the seven topics in the broker's metadata",
        TRANSITION,
    )
    for name in names:
        partitions = on_broker[name].partitions
        assert len(partitions) == 53, name
        assert {len(p.replicas) for p in partitions.values()} == {1}, name
        value, source = broker.config(name)["retention.ms"]
        assert (value, source) == (RETENTION, 1), name  # 1: DYNAMIC_TOPIC_CONFIG, set on it
        real = eventually(
            lambda name=name: (
                (status := kafka_topic(cluster, name)["status"]).get("topicId") and status
            ),
            f"the topicId of {name}",
            TRANSITION,
        )
        assert real["topicName"] == name
        assert real["topicId"] == broker.topic_id(name)
        assert [c["type"] for c in real["conditions"]] == ["Ready"]


def test_replicas_two_on_one_broker_degrades_with_the_brokers_message(
    cluster: Cluster, env: dict[str, Any]
) -> None:
    """Finding 3: the broker's refusal reaches the Application, naming the topic."""
    broker: Broker = env["broker"]
    set_audit(cluster, partitions=2, replicas=2)

    def degraded() -> dict[str, Any] | None:
        body = application(cluster)
        child = topic_child(body, AUDIT)
        status = body.get("status") or {}
        current = status.get("observedGeneration") == body["metadata"]["generation"]
        if current and status.get("phase") == "Degraded" and child.get("health") == "Degraded":
            return body
        return None

    body = eventually(degraded, "Degraded by INVALID_REPLICATION_FACTOR", TRANSITION)
    ready = kafka_topic(cluster, AUDIT)["status"]["conditions"][0]
    assert (ready["type"], ready["status"], ready["reason"]) == ("Ready", "False", "KafkaError")
    assert ready["message"].startswith(
        "org.apache.kafka.common.errors.InvalidReplicationFactorException: "
        "Unable to replicate the partition 2 time(s): "
        "The target replication factor of 2 cannot be reached because only 1 broker(s)"
    )
    child = topic_child(body, AUDIT)
    assert (child["health"], child["reason"]) == ("Degraded", "KafkaError")
    assert child["message"] == ready["message"].removeprefix("org.apache.kafka.common.errors.")
    stalled = next(c for c in body["status"]["conditions"] if c["type"] == "Stalled")
    assert stalled["status"] == "True"
    assert (
        f"{AUDIT}: InvalidReplicationFactorException: Unable to replicate" in (stalled["message"])
    )
    assert AUDIT not in broker.topics()

    set_audit(cluster, partitions=2, replicas=1)
    body = eventually(lambda: healthy(cluster), "Healthy with replicas 1", TRANSITION)
    assert topic_child(body, AUDIT)["health"] == "Healthy"
    eventually(lambda: broker.partitions(AUDIT) == 2, "the topic on the broker", TRANSITION)


def test_a_partition_increase_reaches_the_broker_and_a_decrease_is_refused(
    cluster: Cluster, env: dict[str, Any]
) -> None:
    broker: Broker = env["broker"]
    set_audit(cluster, partitions=4, replicas=1)
    eventually(lambda: broker.partitions(AUDIT) == 4, "4 partitions on the broker", TRANSITION)
    eventually(lambda: healthy(cluster), "Healthy with 4 partitions", TRANSITION)

    set_audit(cluster, partitions=1, replicas=1)

    def refused() -> dict[str, Any] | None:
        child = topic_child(application(cluster), AUDIT)
        return child if child.get("reason") == "NotSupported" else None

    child = eventually(refused, "the decrease refused", TRANSITION)
    assert (child["health"], child["message"]) == (
        "Degraded",
        "Decreasing partitions not supported",
    )
    assert broker.partitions(AUDIT) == 4
    set_audit(cluster, partitions=4, replicas=1)
    eventually(lambda: healthy(cluster), "Healthy once the decrease is undone", TRANSITION)


def test_a_removed_topic_is_deleted_from_the_broker(cluster: Cluster, env: dict[str, Any]) -> None:
    broker: Broker = env["broker"]
    patch(cluster, APP, {"spec": {"deletionPolicy": "Delete", "topics": None}})
    eventually(
        lambda: cluster.plane.request("GET", f"{TOPICS}/{AUDIT}")[0] == 404,
        "the KafkaTopic pruned by federator",
        TRANSITION,
    )
    eventually(lambda: AUDIT not in broker.topics(), "the topic deleted on the broker", TRANSITION)
    body = eventually(lambda: healthy(cluster), "Healthy without the topic", TRANSITION)
    assert len(broker.topics()) == 7
    assert not topic_child(body, AUDIT)
