"""Namespace scope on the real control plane: two `federator run` processes with disjoint
namespace sets that share the Kafka namespace (A: `-n scope-a -n scope-kafka`, B:
`-n scope-b -n scope-kafka`), both with admin credentials (so nothing but federator's own
scope stops a write), and different settings: B's Kafka cluster prefixes every topic with the
namespace, A's does not. Each has an Application named `scoped` in its own namespace.

Aspects covered:
- each application's children are exactly what `compile` gives for its own operator's
  settings, and stay so while both operators are driven: every round touches a topic of each
  application (an event both operators see, in the shared namespace) and waits until each
  operator has reconciled its own application again;
- zero writes across: the other's children keep their UIDs and resourceVersions over the
  rounds, and each operator's per-application metrics show no status write for, and no
  series of, the other's application.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from federator.core import compiler
from federator.core.settings import parse_settings
from federator.devcluster import crdfiles
from federator.devcluster.harness import OperatorProcess, eventually, free_port
from federator.simulator import DelegateSimulator

if TYPE_CHECKING:
    from conftest import Cluster
else:
    Cluster = Any

REPO = Path(__file__).resolve().parents[2]
TEAM_A, TEAM_B, KAFKA = "scope-a", "scope-b", "scope-kafka"
NAME = "scoped"
APPS = "/apis/federator.io/v1alpha1/namespaces/{ns}/applications"
PATHS = {
    "KafkaTopic": "/apis/kafka.strimzi.io/v1/namespaces/{ns}/kafkatopics/{name}",
    "Deployment": "/apis/apps/v1/namespaces/{ns}/deployments/{name}",
}
IMAGE = "registry.example.com/scope/app:1.0"
ROUNDS = 5


def settings(prefix: str | None) -> dict[str, Any]:
    cluster: dict[str, Any] = {
        "name": "default",
        "strimziCluster": "pipelines-strimzi",
        "namespace": KAFKA,
        "bootstrapServers": "pipelines-strimzi-kafka-bootstrap:9092",
    }
    if prefix is not None:
        cluster["topicPrefix"] = prefix
    return {
        "kafkaClusters": [cluster],
        "operator": {
            "metricsPort": free_port(),
            "livenessPort": free_port(),
            "resyncSeconds": 600,  # the rounds drive the reconciles, never a resync
            "statusDebounceSeconds": 0.1,
            "metricsPerApplication": True,
        },
    }


def app(namespace: str) -> dict[str, Any]:
    """w -> (one topic) -> r, plain containers; the same spec in both namespaces."""
    return {
        "apiVersion": "federator.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": NAME, "namespace": namespace},
        "spec": {
            "deletionPolicy": "Delete",
            "streamlets": [
                {"name": "w", "runtime": "container", "image": IMAGE, "outlets": ["out"]},
                {"name": "r", "runtime": "container", "image": IMAGE, "inlets": ["in"]},
            ],
            "connections": [{"from": "w.out", "to": ["r.in"]}],
        },
    }


@pytest.fixture(scope="module")
def env(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    cluster.plane.install_crds(REPO / "crds" / "application.yaml")
    cluster.plane.install_crds(*crdfiles.delegate_crd_files())
    for ns in (TEAM_A, TEAM_B, KAFKA):
        cluster.ensure_namespace(ns)
    tmp = tmp_path_factory.mktemp("scope")
    raw = {TEAM_A: settings(None), TEAM_B: settings("{namespace}.")}
    operators = {}
    for team, data in raw.items():
        path = tmp / f"{team}.yaml"
        path.write_text(yaml.safe_dump(data))
        operators[team] = OperatorProcess(
            path, cluster.kubeconfig, tmp / f"{team}.log", namespaces=[team, KAFKA]
        )
    sim = DelegateSimulator(cluster.api, interval=0.1, namespaces=[TEAM_A, TEAM_B, KAFKA])
    sim.run_in_thread()
    for operator in operators.values():
        operator.start()
    try:
        yield {"operators": operators, "settings": {t: parse_settings(d) for t, d in raw.items()}}
    finally:
        for operator in operators.values():
            operator.stop()
        sim.stop()


def get(cluster: Cluster, path: str) -> dict[str, Any] | None:
    status, got = cluster.plane.request("GET", path)
    return got if status == 200 else None  # type: ignore[no-any-return]


def healthy(cluster: Cluster, namespace: str) -> dict[str, Any] | None:
    body = get(cluster, f"{APPS.format(ns=namespace)}/{NAME}")
    status = (body or {}).get("status") or {}
    if (
        body is not None
        and status.get("phase") == "Healthy"
        and status.get("observedGeneration") == body["metadata"].get("generation")
    ):
        return body
    return None


def owned_children(cluster: Cluster, namespace: str) -> dict[tuple[str, str, str], Any]:
    """Every object in the three namespaces whose owner annotation names `namespace`/scoped:
    (kind, namespace, name) -> (uid, resourceVersion)."""
    out = {}
    lists = {
        "KafkaTopic": [f"/apis/kafka.strimzi.io/v1/namespaces/{KAFKA}/kafkatopics"],
        "Deployment": [f"/apis/apps/v1/namespaces/{ns}/deployments" for ns in (TEAM_A, TEAM_B)],
    }
    for kind, paths in lists.items():
        for path in paths:
            for item in (get(cluster, path) or {}).get("items", []):
                meta = item["metadata"]
                owner = (meta.get("annotations") or {}).get("federator.io/application")
                if owner == f"{namespace}/{NAME}":
                    key = (kind, meta["namespace"], meta["name"])
                    out[key] = (meta["uid"], meta["resourceVersion"])
    return out


def compiled_keys(env: dict[str, Any], namespace: str, body: dict[str, Any]) -> set[Any]:
    compiled = compiler.compile_application(body, env["settings"][namespace])
    return {(c.kind, c.namespace, c.name) for c in compiled.children}


def reconciles(operator: OperatorProcess) -> float:
    return operator.metric("federator_reconcile_duration_seconds_count")


def touch(cluster: Cluster, kind: str, namespace: str, name: str, value: str) -> None:
    """A label only this test sets: a child event for every operator that watches it."""
    status, got = cluster.plane.request(
        "PATCH",
        PATHS[kind].format(ns=namespace, name=name),
        {"metadata": {"labels": {"scope-test/round": value}}},
        content_type="application/merge-patch+json",
    )
    assert status == 200, got


def test_two_operators_sharing_the_kafka_namespace_never_write_across(
    cluster: Cluster, env: dict[str, Any]
) -> None:
    operators: dict[str, OperatorProcess] = env["operators"]
    for team in (TEAM_A, TEAM_B):
        status, got = cluster.plane.request("POST", APPS.format(ns=team), app(team))
        assert status == 201, got
    bodies = {
        team: eventually(lambda team=team: healthy(cluster, team), f"{team} Healthy", 120)
        for team in (TEAM_A, TEAM_B)
    }
    desired = {team: compiled_keys(env, team, bodies[team]) for team in bodies}
    # The settings differ, so do the topics: the same application name renders two topics.
    topics = {team: {k for k in keys if k[0] == "KafkaTopic"} for team, keys in desired.items()}
    assert topics[TEAM_A] == {("KafkaTopic", KAFKA, f"{NAME}.w.out")}
    assert topics[TEAM_B] == {("KafkaTopic", KAFKA, f"{TEAM_B}.{NAME}.w.out")}
    before = {team: owned_children(cluster, team) for team in bodies}
    for team in bodies:
        assert set(before[team]) == desired[team], (team, before[team])

    for round_ in range(ROUNDS):
        # Each round: an event on each application's topic, in the namespace both operators
        # watch; then each operator reconciles its own application (its reconcile count rises
        # past what it was): by then it has seen both events.
        counts = {team: reconciles(op) for team, op in operators.items()}
        for team in (TEAM_B, TEAM_A):
            ((kind, ns, name),) = topics[team]
            touch(cluster, kind, ns, name, str(round_))
        for team, op in operators.items():
            eventually(
                lambda op=op, team=team, counts=counts: reconciles(op) > counts[team],
                f"round {round_}: {team}'s operator reconciled",
                60,
            )
        for team in bodies:
            eventually(lambda team=team: healthy(cluster, team), f"{team} Healthy", 60)

    after = {team: owned_children(cluster, team) for team in bodies}
    for team in bodies:
        # Exactly what compile gives for its own operator's settings, the same objects.
        assert set(after[team]) == desired[team], (team, after[team])
        assert {k: uid for k, (uid, _) in after[team].items()} == {
            k: uid for k, (uid, _) in before[team].items()
        }, f"{team}'s children were deleted and re-created"
        # Only the test's own label changed a topic's resourceVersion; the Deployments are
        # exactly as they were.
        for key, (_, version) in after[team].items():
            if key[0] == "Deployment":
                assert version == before[team][key][1], (team, key)
    for team, other in ((TEAM_A, TEAM_B), (TEAM_B, TEAM_A)):
        op = operators[team]
        assert op.metric("federator_application_status_writes", namespace=other) == 0
        assert op.metric("federator_application_phase", namespace=other) == 0
        assert op.metric("federator_application_status_writes", namespace=team) > 0
