"""Topic names of teams sharing one Kafka namespace (issue 10 §2), on the real control plane.

One `federator run` serves three team namespaces and two named Kafka clusters: `shared` with the
policy the chart recommends (`topicPrefix: "{namespace}."`, team-a and team-b allowed) and
`default` without one (today's names). The delegate simulator plays Strimzi and the rest.

Aspects covered:
- with the policy, `orders` in team-a and `orders` in team-b get distinct, prefixed topics and
  consumer groups; team-a's explicit topic named like team-b's would-be implicit topic
  (`orders.src.out`, 1 partition, `retention.ms: "1"`) is refused as a validation problem naming
  the expected prefix, with nothing applied for it, and compiles once renamed;
- a namespace the policy does not list is refused the cluster, naming the cluster it may use;
- without a policy, the application reconciled second is refused the topic the first owns
  (Degraded, the owner named), and the owner's KafkaTopic is left exactly as it was.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from federator.devcluster import crdfiles
from federator.devcluster.harness import OperatorProcess, eventually, free_port
from federator.simulator import DelegateSimulator

if TYPE_CHECKING:
    from conftest import Cluster
else:
    Cluster = Any

REPO = Path(__file__).resolve().parents[2]
TEAM_A, TEAM_B, TEAM_C = "tn-team-a", "tn-team-b", "tn-team-c"
KAFKA_SHARED, KAFKA_OPEN = "tn-kafka", "tn-kafka-open"
NAMESPACES = [TEAM_A, TEAM_B, TEAM_C, KAFKA_SHARED, KAFKA_OPEN]
APP = "/apis/federator.io/v1alpha1/namespaces/{ns}/applications"
TOPICS = "/apis/kafka.strimzi.io/v1/namespaces/{ns}/kafkatopics"
OWNER = "federator.io/application"


@pytest.fixture(scope="module")
def env(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    cluster.plane.install_crds(REPO / "crds" / "application.yaml")
    cluster.plane.install_crds(*crdfiles.delegate_crd_files(crdfiles.delegate_crds_dir()))
    for ns in NAMESPACES:
        cluster.ensure_namespace(ns)
    tmp = tmp_path_factory.mktemp("topic-naming")
    settings = tmp / "settings.yaml"
    kafka = {"strimziCluster": "pipelines-strimzi", "bootstrapServers": "kafka:9092"}
    settings.write_text(
        yaml.safe_dump(
            {
                "kafkaClusters": [
                    {
                        "name": "shared",
                        "namespace": KAFKA_SHARED,
                        **kafka,
                        "allowedNamespaces": [TEAM_A, TEAM_B],
                        "topicPrefix": "{namespace}.",
                    },
                    {"name": "default", "namespace": KAFKA_OPEN, **kafka},
                ],
                "operator": {
                    "metricsPort": free_port(),
                    "livenessPort": free_port(),
                    "statusDebounceSeconds": 0.1,
                },
            }
        )
    )
    operator = OperatorProcess(settings, cluster.kubeconfig, tmp / "operator.log", NAMESPACES)
    sim = DelegateSimulator(cluster.api, interval=0.1, namespaces=NAMESPACES)
    sim.run_in_thread()
    operator.start()
    try:
        yield {"operator": operator, "log": tmp / "operator.log"}
    finally:
        operator.stop()
        sim.stop()


def application(ns: str, name: str, cluster: str, **spec: Any) -> dict[str, Any]:
    """`src.out` -> `sink.in`, through the implicit topic unless `spec` says otherwise."""
    return {
        "apiVersion": "federator.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "kafka": {"cluster": cluster},
            "streamlets": [
                {"name": "src", "runtime": "container", "image": "r/src:1", "outlets": ["out"]},
                {"name": "sink", "runtime": "container", "image": "r/sink:1", "inlets": ["in"]},
            ],
            "connections": [{"from": "src.out", "to": ["sink.in"]}],
            **spec,
        },
    }


def explicit(topic: str) -> dict[str, Any]:
    """The issue's explicit topic: 1 partition, `retention.ms: "1"`."""
    return {
        "connections": [],
        "topics": [
            {
                "name": topic,
                "producers": ["src.out"],
                "consumers": ["sink.in"],
                "partitions": 1,
                "config": {"retention.ms": "1"},
            }
        ],
    }


def create(cluster: Cluster, body: dict[str, Any]) -> None:
    ns = body["metadata"]["namespace"]
    status, got = cluster.plane.request("POST", APP.format(ns=ns), body)
    assert status == 201, got


def replace_spec(cluster: Cluster, ns: str, name: str, spec: dict[str, Any]) -> None:
    """The whole spec at once (a JSON patch: no resourceVersion, so the operator's own status
    write between a GET and a PUT cannot make it a 409 Conflict, as it once did in CI)."""
    path = f"{APP.format(ns=ns)}/{name}"
    patch = [{"op": "replace", "path": "/spec", "value": spec}]
    status, got = cluster.plane.request(
        "PATCH", path, patch, content_type="application/json-patch+json"
    )
    assert status == 200, got


def settled(cluster: Cluster, ns: str, name: str, phase: str) -> dict[str, Any] | None:
    """The application once its status is about its current generation and reads `phase`."""
    body = cluster.plane.request("GET", f"{APP.format(ns=ns)}/{name}")[1]
    status = body.get("status") or {}
    current = status.get("observedGeneration") == body["metadata"]["generation"]
    return body if current and status.get("phase") == phase else None


def wait_for(cluster: Cluster, ns: str, name: str, phase: str) -> dict[str, Any]:
    found: dict[str, Any] = eventually(
        lambda: settled(cluster, ns, name, phase), f"{ns}/{name} {phase}", 120
    )
    return found


def condition(body: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(c for c in body["status"]["conditions"] if c["type"] == kind)


def topics(cluster: Cluster, kafka_ns: str) -> dict[str, dict[str, Any]]:
    """The KafkaTopics of a Kafka namespace by Kafka topic name."""
    items = cluster.plane.request("GET", TOPICS.format(ns=kafka_ns))[1]["items"]
    return {t["spec"]["topicName"]: t for t in items}


def owned_by(cluster: Cluster, owner: str) -> list[str]:
    """Everything any team's application could have applied for `owner`, as kind/name."""
    found = []
    for kafka_ns in (KAFKA_SHARED, KAFKA_OPEN):
        for t in topics(cluster, kafka_ns).values():
            if t["metadata"].get("annotations", {}).get(OWNER) == owner:
                found.append(f"KafkaTopic/{t['metadata']['name']}")
    ns = owner.partition("/")[0]
    deployments = cluster.plane.request("GET", f"/apis/apps/v1/namespaces/{ns}/deployments")[1]
    for d in deployments["items"]:
        if d["metadata"].get("annotations", {}).get(OWNER) == owner:
            found.append(f"Deployment/{d['metadata']['name']}")
    return found


def env_of(cluster: Cluster, ns: str, deployment: str) -> dict[str, str]:
    path = f"/apis/apps/v1/namespaces/{ns}/deployments/{deployment}"
    body = cluster.plane.request("GET", path)[1]
    (container,) = body["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e.get("value", "") for e in container["env"]}


def test_with_the_policy_two_teams_get_their_own_topics(
    cluster: Cluster, env: dict[str, Any]
) -> None:
    create(cluster, application(TEAM_B, "orders", "shared"))
    wait_for(cluster, TEAM_B, "orders", "Healthy")
    team_b_topic = topics(cluster, KAFKA_SHARED)[f"{TEAM_B}.orders.src.out"]
    assert team_b_topic["metadata"]["annotations"][OWNER] == f"{TEAM_B}/orders"

    # team-a: the same application name, and an explicit topic named like team-b's implicit
    # topic would be without the policy.
    create(cluster, application(TEAM_A, "orders", "shared", **explicit("orders.src.out")))
    body = wait_for(cluster, TEAM_A, "orders", "Invalid")
    compiled = condition(body, "Compiled")
    assert compiled["status"] == "False"
    assert (
        "spec.topics[0].name: topic 'orders.src.out' must start with 'tn-team-a.'"
        in (compiled["message"])
    )
    assert body["status"]["children"] == []
    assert owned_by(cluster, f"{TEAM_A}/orders") == []  # nothing applied, anywhere
    assert "orders.src.out" not in topics(cluster, KAFKA_SHARED)

    # The rename the problem suggests: both teams run, on distinct topics and consumer groups.
    replace_spec(
        cluster,
        TEAM_A,
        "orders",
        application(TEAM_A, "orders", "shared", **explicit(f"{TEAM_A}.orders.src.out"))["spec"],
    )
    wait_for(cluster, TEAM_A, "orders", "Healthy")
    shared = topics(cluster, KAFKA_SHARED)
    mine, theirs = shared[f"{TEAM_A}.orders.src.out"], shared[f"{TEAM_B}.orders.src.out"]
    assert mine["metadata"]["annotations"][OWNER] == f"{TEAM_A}/orders"
    assert (mine["spec"]["partitions"], mine["spec"]["config"]) == (1, {"retention.ms": "1"})
    assert theirs["metadata"]["generation"] == team_b_topic["metadata"]["generation"]
    assert theirs["spec"] == team_b_topic["spec"]
    assert theirs["metadata"]["annotations"] == team_b_topic["metadata"]["annotations"]
    groups = {
        ns: env_of(cluster, ns, "orders-sink")["FEDERATOR_INLET_IN_GROUP_ID"]
        for ns in (TEAM_A, TEAM_B)
    }
    assert groups == {TEAM_A: f"{TEAM_A}.orders.sink.in", TEAM_B: f"{TEAM_B}.orders.sink.in"}


def test_a_namespace_the_policy_does_not_list_is_refused_the_cluster(
    cluster: Cluster, env: dict[str, Any]
) -> None:
    create(cluster, application(TEAM_C, "orders", "shared"))
    body = wait_for(cluster, TEAM_C, "orders", "Invalid")
    message = condition(body, "Compiled")["message"]
    assert "spec.kafka.cluster: namespace 'tn-team-c' may not use Kafka cluster 'shared'" in (
        message
    )
    assert "(it may use: default)" in message
    assert owned_by(cluster, f"{TEAM_C}/orders") == []


def test_without_a_policy_the_topic_stays_with_its_first_owner(
    cluster: Cluster, env: dict[str, Any]
) -> None:
    create(cluster, application(TEAM_B, "payments", "default"))
    wait_for(cluster, TEAM_B, "payments", "Healthy")
    before = topics(cluster, KAFKA_OPEN)["payments.src.out"]
    assert before["metadata"]["annotations"][OWNER] == f"{TEAM_B}/payments"

    create(cluster, application(TEAM_A, "payments", "default", **explicit("payments.src.out")))
    body = wait_for(cluster, TEAM_A, "payments", "Degraded")
    stalled = condition(body, "Stalled")
    assert stalled["status"] == "True"
    assert (
        f"payments.src.out: KafkaTopic {KAFKA_OPEN}/payments.src.out already belongs to "
        f"application {TEAM_B}/payments" in stalled["message"]
    )
    # Reported but never claimed: owned false keeps it out of team-a's inventory, so team-a
    # never prunes or deletes it either.
    reported = [c for c in body["status"]["children"] if c["kind"] == "KafkaTopic"]
    assert reported and all(c.get("owned") is False for c in reported), reported
    assert {c["reason"] for c in reported} == {"OwnedByAnotherApplication"}

    after = topics(cluster, KAFKA_OPEN)["payments.src.out"]
    assert after["metadata"]["generation"] == before["metadata"]["generation"]
    assert after["spec"] == before["spec"]
    assert after["spec"].get("partitions") != 1 and "retention.ms" not in after["spec"].get(
        "config", {}
    )
    assert after["metadata"]["annotations"] == before["metadata"]["annotations"]
    assert after["metadata"]["labels"] == before["metadata"]["labels"]
