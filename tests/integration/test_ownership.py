"""Never touch what federator did not create; leak nothing at a crash (issue 10 §1 and §3).

`federator run` as a subprocess on the real API server, the delegate simulator moving the
statuses of federator's children (only those: it never drives an unlabelled object).

Aspects covered, each as a tenant would try it:
- a platform-owned KafkaTopic named by a Delete-policy application is left byte-identical, is
  reported Degraded/AlreadyExists with how to resolve it, and survives the application;
- a pre-existing Deployment of the tenant's namespace, not made by federator: the same;
- adoption with the owner's consent (`federator.io/adopt: <namespace>/<application>`);
- a `managed: false` topic is a read-only reference: never written or deleted, its health
  (from the platform's KafkaTopic) reported and counted;
- SIGKILL right after a Delete-policy topic is created, then the application deleted (or the
  topic removed from its spec) while the operator is down: after a restart nothing leaks.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from federator.core import compiler, naming
from federator.core.settings import parse_settings
from federator.devcluster import crdfiles
from federator.devcluster.harness import OperatorProcess, eventually, free_port
from federator.simulator import DelegateSimulator

if TYPE_CHECKING:
    from conftest import Cluster
else:
    Cluster = Any

REPO = Path(__file__).resolve().parents[2]
TEAM = "own-team-a"
KAFKA = "own-kafka"
APPS = "/apis/federator.io/v1alpha1/namespaces/{ns}/applications"
TOPICS = f"/apis/kafka.strimzi.io/v1/namespaces/{KAFKA}/kafkatopics"
DEPLOYMENTS = f"/apis/apps/v1/namespaces/{TEAM}/deployments"
IMAGE = "registry.example.com/team-a/app:1.0"


@pytest.fixture(scope="module")
def env(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    cluster.plane.install_crds(REPO / "crds" / "application.yaml")
    cluster.plane.install_crds(*crdfiles.delegate_crd_files())
    for ns in (TEAM, KAFKA):
        cluster.ensure_namespace(ns)
    tmp = tmp_path_factory.mktemp("ownership")
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
                    "resyncSeconds": 600,  # the tests never wait for a resync
                    "statusDebounceSeconds": 0.1,
                },
            }
        )
    )
    operator = OperatorProcess(
        settings, cluster.kubeconfig, tmp / "operator.log", namespaces=[TEAM, KAFKA]
    )
    sim = DelegateSimulator(cluster.api, interval=0.1, namespaces=[TEAM, KAFKA])
    sim.run_in_thread()
    operator.start()
    try:
        yield {"operator": operator, "log": tmp / "operator.log", "settings": settings}
    finally:
        operator.stop()
        sim.stop()


def app(name: str, topic: dict[str, Any], *, policy: str = "Delete") -> dict[str, Any]:
    """src -> topic -> sink, both plain containers."""
    return {
        "apiVersion": "federator.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": name, "namespace": TEAM},
        "spec": {
            "deletionPolicy": policy,
            "streamlets": [
                {"name": "src", "runtime": "container", "image": IMAGE, "outlets": ["out"]},
                {"name": "sink", "runtime": "container", "image": IMAGE, "inlets": ["in"]},
            ],
            "topics": [{**topic, "producers": ["src.out"], "consumers": ["sink.in"]}],
        },
    }


def request(cluster: Cluster, method: str, path: str, body: Any = None, **kw: Any) -> Any:
    return cluster.plane.request(method, path, body, **kw)


def create(cluster: Cluster, path: str, body: dict[str, Any]) -> dict[str, Any]:
    status, got = request(cluster, "POST", path, body)
    assert status == 201, got
    return got  # type: ignore[no-any-return]


def get(cluster: Cluster, path: str) -> dict[str, Any] | None:
    status, got = request(cluster, "GET", path)
    return got if status == 200 else None  # type: ignore[no-any-return]


def application(cluster: Cluster, name: str) -> dict[str, Any]:
    got = get(cluster, f"{APPS.format(ns=TEAM)}/{name}")
    assert got is not None
    return got


def entry(cluster: Cluster, name: str, kind: str, child: str) -> dict[str, Any] | None:
    status = application(cluster, name).get("status") or {}
    return next(
        (c for c in status.get("children") or [] if c["kind"] == kind and c["name"] == child),
        None,
    )


def delete_app_and_wait(cluster: Cluster, name: str, timeout: float = 60) -> None:
    path = f"{APPS.format(ns=TEAM)}/{name}"
    request(cluster, "DELETE", path)
    eventually(lambda: get(cluster, path) is None, f"application {name} deleted", timeout)


def platform_topic(cluster: Cluster, name: str, **annotations: str) -> dict[str, Any]:
    """A KafkaTopic the platform team made by hand: no federator label or annotation."""
    return create(
        cluster,
        TOPICS,
        {
            "apiVersion": "kafka.strimzi.io/v1",
            "kind": "KafkaTopic",
            "metadata": {
                "name": name,
                "labels": {"strimzi.io/cluster": "pipelines-strimzi"},
                "annotations": annotations,
            },
            "spec": {"partitions": 24, "replicas": 3, "config": {"retention.ms": "-1"}},
        },
    )


def set_topic_ready(cluster: Cluster, name: str, ready: bool, message: str = "") -> None:
    """Stand in for Strimzi's topic operator on the platform's own topic."""
    condition = {"type": "Ready", "status": "True" if ready else "False"}
    if not ready:
        condition |= {"reason": "KafkaError", "message": message}
    topic = get(cluster, f"{TOPICS}/{name}")
    assert topic is not None
    generation = topic["metadata"]["generation"]
    status, got = request(
        cluster,
        "PATCH",
        f"{TOPICS}/{name}/status",
        {"status": {"conditions": [condition], "observedGeneration": generation}},
        content_type="application/merge-patch+json",
    )
    assert status == 200, got


def untouched(before: dict[str, Any], after: dict[str, Any] | None) -> bool:
    return after is not None and json.dumps(after, sort_keys=True) == json.dumps(
        before, sort_keys=True
    )


# ------------------------------------------------------------------------------- §1 ownership


def test_a_platform_topic_is_never_modified_or_deleted(
    cluster: Cluster, env: dict[str, Any]
) -> None:
    before = platform_topic(cluster, "platform.ledger")
    create(
        cluster,
        APPS.format(ns=TEAM),
        app(
            "ledger-reader",
            {
                "name": "platform.ledger",
                "partitions": 30,
                "replicas": 1,
                "config": {"retention.ms": "1"},
            },
        ),
    )
    reported = eventually(
        lambda: entry(cluster, "ledger-reader", "KafkaTopic", "platform.ledger"),
        "the platform topic reported in status.children",
    )
    assert (reported["health"], reported["reason"]) == ("Degraded", "AlreadyExists")
    assert reported["owned"] is False
    assert f"KafkaTopic {KAFKA}/platform.ledger already exists" in reported["message"]
    assert f"{naming.ADOPT_ANNOTATION}={TEAM}/ledger-reader" in reported["message"]
    status = application(cluster, "ledger-reader")["status"]
    assert status["phase"] == "Degraded"
    # The streamlets wait for a topic that is not theirs: nothing was created for them.
    assert get(cluster, f"{DEPLOYMENTS}/ledger-reader-src") is None
    assert untouched(before, get(cluster, f"{TOPICS}/platform.ledger"))

    delete_app_and_wait(cluster, "ledger-reader")
    assert untouched(before, get(cluster, f"{TOPICS}/platform.ledger")), "deleted or changed"


def test_a_deployment_federator_did_not_create_is_left_alone(
    cluster: Cluster, env: dict[str, Any]
) -> None:
    labels = {"app": "web-api"}
    before = create(
        cluster,
        DEPLOYMENTS,
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web-api", "labels": labels},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]},
                },
            },
        },
    )
    body = app("web", {"name": "web.events"})  # streamlet `api` -> Deployment web-api
    body["spec"]["streamlets"][0]["name"] = "api"
    body["spec"]["topics"][0]["producers"] = ["api.out"]
    create(cluster, APPS.format(ns=TEAM), body)

    def refused() -> dict[str, Any] | None:  # first WaitingForTopics, then the create fails
        got = entry(cluster, "web", "Deployment", "web-api")
        return got if got and got["reason"] == "AlreadyExists" else None

    reported = eventually(refused, "web-api reported AlreadyExists")
    assert (reported["health"], reported["reason"], reported["owned"]) == (
        "Degraded",
        "AlreadyExists",
        False,
    )
    assert "rename the streamlet or the application" in reported["message"]
    after = get(cluster, f"{DEPLOYMENTS}/web-api")
    assert after is not None
    assert after["spec"] == before["spec"]
    # (the deployment controller adds its revision annotation; federator adds nothing)
    assert not [a for a in after["metadata"].get("annotations") or {} if "federator" in a]
    assert after["metadata"]["labels"] == labels
    assert not any(m["manager"] == "federator" for m in after["metadata"]["managedFields"])
    delete_app_and_wait(cluster, "web")
    assert get(cluster, f"{DEPLOYMENTS}/web-api") is not None


def test_adoption_needs_the_owners_consent(cluster: Cluster, env: dict[str, Any]) -> None:
    platform_topic(cluster, "shared.orders", **{naming.ADOPT_ANNOTATION: f"{TEAM}/adopter"})
    create(
        cluster,
        APPS.format(ns=TEAM),
        app("adopter", {"name": "shared.orders", "partitions": 24, "replicas": 3}),
    )

    def adopted() -> dict[str, Any] | None:
        topic = get(cluster, f"{TOPICS}/shared.orders") or {}
        annotations = (topic.get("metadata") or {}).get("annotations") or {}
        ok = annotations.get(naming.APPLICATION_ANNOTATION) == f"{TEAM}/adopter"
        return topic if ok else None

    topic = eventually(adopted, "the consented topic adopted")
    assert topic["metadata"]["labels"][naming.MANAGED_BY] == naming.MANAGER
    eventually(
        lambda: application(cluster, "adopter").get("status", {}).get("phase") == "Healthy",
        "the adopter Healthy",
    )
    reported = entry(cluster, "adopter", "KafkaTopic", "shared.orders")
    assert reported is not None and "owned" not in reported  # ours now
    delete_app_and_wait(cluster, "adopter")  # Delete policy: now it is ours to delete
    eventually(lambda: get(cluster, f"{TOPICS}/shared.orders") is None, "adopted topic deleted")


def test_an_unmanaged_topic_is_a_read_only_reference_whose_health_counts(
    cluster: Cluster, env: dict[str, Any]
) -> None:
    platform_topic(cluster, "platform.audit")
    set_topic_ready(cluster, "platform.audit", True)
    before = get(cluster, f"{TOPICS}/platform.audit")
    assert before is not None
    create(
        cluster,
        APPS.format(ns=TEAM),
        app("auditor", {"name": "platform.audit", "managed": False}),
    )
    eventually(
        lambda: application(cluster, "auditor").get("status", {}).get("phase") == "Healthy",
        "the auditor Healthy with the external topic Ready",
    )
    reported = entry(cluster, "auditor", "KafkaTopic", "platform.audit")
    assert reported is not None
    assert (reported["health"], reported["owned"]) == ("Healthy", False)
    assert untouched(before, get(cluster, f"{TOPICS}/platform.audit"))

    set_topic_ready(cluster, "platform.audit", False, "Replication factor: 3 larger than brokers")

    def degraded() -> dict[str, Any] | None:
        status = application(cluster, "auditor").get("status") or {}
        return status if status.get("phase") == "Degraded" else None

    # The platform's topic carries no federator label, so its events do not reach the
    # operator: its health is read again at the application's next reconcile (any event of
    # one of its children, a spec change, the resync). Stand in for a child event.
    request(
        cluster,
        "PATCH",
        f"{DEPLOYMENTS}/auditor-sink",
        {"metadata": {"annotations": {"test/nudge": "1"}}},
        content_type="application/merge-patch+json",
    )
    eventually(degraded, "the auditor Degraded by its external topic")
    reported = entry(cluster, "auditor", "KafkaTopic", "platform.audit")
    assert reported is not None and "larger than brokers" in reported["message"]
    after_status = get(cluster, f"{TOPICS}/platform.audit")
    assert after_status is not None and after_status["spec"] == before["spec"]
    delete_app_and_wait(cluster, "auditor")
    assert get(cluster, f"{TOPICS}/platform.audit") is not None


# ------------------------------------------------------------------------------- §3 crash leaks


def _kill_after_topic_created(cluster: Cluster, operator: OperatorProcess, topic: str) -> None:
    """SIGKILL the operator as soon as the topic exists (before, or just after, the status
    write that would list it: either way nothing may leak)."""
    eventually(
        lambda: get(cluster, f"{TOPICS}/{topic}") is not None,
        f"topic {topic} created",
        timeout=60,
        poll=0.005,
    )
    assert operator.proc is not None
    operator.proc.kill()
    operator.proc.wait()
    operator.proc = None


@pytest.mark.parametrize("while_down", ["delete-application", "remove-topic"])
def test_a_crash_at_the_apply_leaks_no_delete_policy_topic(
    cluster: Cluster, env: dict[str, Any], while_down: str
) -> None:
    operator: OperatorProcess = env["operator"]
    name = f"crash-{while_down}"
    topic = f"{name}.src.extra"
    body = app(name, {"name": f"{name}.events"})
    body["spec"]["streamlets"][0]["outlets"] = ["out", "extra"]  # implicit topic `topic`
    create(cluster, APPS.format(ns=TEAM), body)
    try:
        _kill_after_topic_created(cluster, operator, topic)
        live = get(cluster, f"{TOPICS}/{topic}")
        assert live is not None
        assert live["metadata"]["annotations"][naming.APPLICATION_ANNOTATION] == f"{TEAM}/{name}"
        path = f"{APPS.format(ns=TEAM)}/{name}"
        if while_down == "delete-application":
            request(cluster, "DELETE", path)  # blocked by the finalizer until the restart
        else:
            changed = copy.deepcopy(application(cluster, name))
            changed["spec"]["streamlets"][0]["outlets"] = ["out"]
            status, got = request(cluster, "PUT", path, changed)
            assert status == 200, got
    finally:
        if operator.proc is None:
            operator.start()
    eventually(
        lambda: get(cluster, f"{TOPICS}/{topic}") is None,
        f"the Delete-policy topic {topic} removed after the restart ({while_down})",
        timeout=90,
    )
    if while_down == "remove-topic":
        delete_app_and_wait(cluster, name)
    else:
        eventually(lambda: get(cluster, f"{APPS.format(ns=TEAM)}/{name}") is None, "app gone")
    leftovers = [
        t["metadata"]["name"]
        for t in request(cluster, "GET", TOPICS)[1]["items"]
        if t["metadata"]["name"].startswith(name)
    ]
    assert leftovers == []


@pytest.mark.parametrize("while_down", ["delete-application", "remove-topic"])
def test_a_child_applied_just_before_a_crash_is_not_leaked(
    cluster: Cluster, env: dict[str, Any], while_down: str
) -> None:
    """Deterministic: the state a SIGKILL between an apply and the status write leaves. The
    operator is killed; the spec gains an outlet; its Delete-policy topic is applied exactly as
    the operator would have (rendered by federator, field manager federator), but never
    reaches status.children; then the application is deleted, or the outlet removed, while the
    operator is down. After the restart the topic must be gone."""
    operator: OperatorProcess = env["operator"]
    name = f"staged-{while_down}"
    path = f"{APPS.format(ns=TEAM)}/{name}"
    create(cluster, APPS.format(ns=TEAM), app(name, {"name": f"{name}.events"}))
    eventually(
        lambda: (application(cluster, name).get("status") or {}).get("phase") == "Healthy",
        f"{name} Healthy",
    )
    assert operator.proc is not None
    operator.proc.kill()
    operator.proc.wait()
    operator.proc = None
    try:
        changed = copy.deepcopy(application(cluster, name))
        changed["spec"]["streamlets"][0]["outlets"] = ["out", "extra"]
        status, changed = request(cluster, "PUT", path, changed)
        assert status == 200, changed
        settings = parse_settings(yaml.safe_load(env["settings"].read_text()))
        (topic,) = [
            c
            for c in compiler.compile_application(changed, settings).children
            if c.topic == f"{name}.src.extra"
        ]
        status, got = request(
            cluster,
            "PATCH",
            f"{TOPICS}/{topic.name}?fieldManager=federator&force=true",
            dict(topic.manifest),
            content_type="application/apply-patch+yaml",
        )
        assert status in (200, 201), got
        listed = application(cluster, name)["status"]["children"]
        assert topic.name not in {c["name"] for c in listed}  # the crash's window
        if while_down == "delete-application":
            request(cluster, "DELETE", path)
        else:
            changed = application(cluster, name)
            changed["spec"]["streamlets"][0]["outlets"] = ["out"]
            status, got = request(cluster, "PUT", path, changed)
            assert status == 200, got
    finally:
        operator.start()
    eventually(
        lambda: get(cluster, f"{TOPICS}/{topic.name}") is None,
        f"the orphaned Delete-policy topic removed after the restart ({while_down})",
        timeout=90,
    )
    if while_down == "remove-topic":
        delete_app_and_wait(cluster, name)
    eventually(lambda: get(cluster, path) is None, f"{name} gone")


def test_a_field_dropped_from_the_spec_leaves_a_child_that_was_created(
    cluster: Cluster, env: dict[str, Any]
) -> None:
    """A child is created (not applied), so its fields start under the create's `Update`
    entry of managedFields; the next apply claims them first, so a field the spec no longer
    sets is removed by server-side apply as if an apply had created the child."""
    name = "dropper"
    config = {"retention.ms": "1000", "cleanup.policy": "delete"}
    create(cluster, APPS.format(ns=TEAM), app(name, {"name": "dropper.events", "config": config}))
    topic = eventually(
        lambda: get(cluster, f"{TOPICS}/dropper.events"), "the topic created", timeout=60
    )
    assert topic["spec"]["config"] == config
    managers = {(m["manager"], m["operation"]) for m in topic["metadata"]["managedFields"]}
    assert ("federator", "Update") in managers  # created, not yet claimed
    path = f"{APPS.format(ns=TEAM)}/{name}"
    status, got = request(
        cluster,
        "PATCH",
        path,
        [{"op": "remove", "path": "/spec/topics/0/config/retention.ms"}],
        content_type="application/json-patch+json",
    )
    assert status == 200, got

    def dropped() -> dict[str, Any] | None:
        now = get(cluster, f"{TOPICS}/dropper.events") or {}
        return (
            now if (now.get("spec") or {}).get("config") == {"cleanup.policy": "delete"} else None
        )

    now = eventually(dropped, "retention.ms removed from the topic", timeout=60)
    managers = {(m["manager"], m["operation"]) for m in now["metadata"]["managedFields"]}
    assert ("federator", "Update") not in managers and ("federator", "Apply") in managers
    delete_app_and_wait(cluster, name)
