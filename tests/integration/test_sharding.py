"""Sharding on the real control plane (issue 14, item 3): two `federator run` processes, the
default shard and shard `a`, driven by the delegate simulator.

Aspects covered:
- every Application is served by exactly one shard: an unlabelled one by the default shard, one
  labelled `federator.io/shard: a` by shard `a` (known by the Events each shard posts, whose
  reportingInstance names it, and by its children's shard label);
- children carry the shard label on the child, never on a pod template;
- a relabelled Application moves to the other shard and back: its children are relabelled in
  place (same UIDs: nothing pruned, recreated or duplicated on the way), it stays Healthy (a
  Spark child is not left Progressing by the label-only apply), and after the move a spec
  change is applied by the new shard alone.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from federator.core.sharding import SHARD_LABEL
from federator.devcluster import crdfiles
from federator.devcluster.harness import OperatorProcess, eventually, free_port
from federator.simulator import DelegateSimulator

if TYPE_CHECKING:
    from conftest import Cluster
else:
    Cluster = Any

REPO = Path(__file__).resolve().parents[2]
APPS_NS = "shard-apps"
KAFKA_NS = "shard-kafka"
APPS = f"/apis/federator.io/v1alpha1/namespaces/{APPS_NS}/applications"
DEFAULT, SHARD_A = "federator", "federator/a"  # the Events' reportingInstance of each shard
PATHS = {
    "KafkaTopic": "/apis/kafka.strimzi.io/v1/namespaces/{ns}/kafkatopics/{name}",
    "SparkApplication": (
        "/apis/sparkoperator.k8s.io/v1beta2/namespaces/{ns}/sparkapplications/{name}"
    ),
    "Deployment": "/apis/apps/v1/namespaces/{ns}/deployments/{name}",
}


def settings_file(path: Path) -> Path:
    path.write_text(
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
                    "resyncSeconds": 60,
                    "statusDebounceSeconds": 0.1,
                },
            }
        )
    )
    return path


@pytest.fixture(scope="module")
def shards(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    cluster.plane.install_crds(REPO / "crds" / "application.yaml")
    cluster.plane.install_crds(*crdfiles.delegate_crd_files(crdfiles.delegate_crds_dir()))
    for ns in (APPS_NS, KAFKA_NS):
        cluster.ensure_namespace(ns)
    tmp = tmp_path_factory.mktemp("sharding")
    namespaces = [APPS_NS, KAFKA_NS]
    default = OperatorProcess(
        settings_file(tmp / "default.yaml"), cluster.kubeconfig, tmp / "default.log", namespaces
    )
    shard_a = OperatorProcess(
        settings_file(tmp / "a.yaml"),
        cluster.kubeconfig,
        tmp / "a.log",
        namespaces,
        extra_args=["--shard", "a"],
    )
    sim = DelegateSimulator(cluster.api, interval=0.1, namespaces=namespaces)
    sim.run_in_thread()
    default.start()
    shard_a.start()
    try:
        yield
    finally:
        shard_a.stop()
        default.stop()
        sim.stop()


def seed(name: str, shard: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = yaml.safe_load(
        (REPO / "examples" / "call-record-aggregator.yaml").read_text()
    )
    body["metadata"] = {"name": name, "namespace": APPS_NS}
    if shard:
        body["metadata"]["labels"] = {SHARD_LABEL: shard}
    return body


def get(cluster: Cluster, path: str) -> dict[str, Any]:
    status, body = cluster.plane.request("GET", path)
    assert status == 200, body
    return body  # type: ignore[no-any-return]


def healthy(cluster: Cluster, name: str) -> dict[str, Any] | None:
    body = get(cluster, f"{APPS}/{name}")
    status = body.get("status") or {}
    if status.get("phase") == "Healthy" and status.get("observedGeneration") == body[
        "metadata"
    ].get("generation"):
        return body
    return None


def children(cluster: Cluster, app: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every child in the inventory, as the API server holds it now."""
    out = {}
    for c in app["status"]["children"]:
        path = PATHS[c["kind"]].format(ns=c["namespace"], name=c["name"])
        out[f"{c['kind']}/{c['name']}"] = get(cluster, path)
    return out


def reporters(cluster: Cluster, name: str, reason: str | None = None) -> list[str]:
    """The reportingInstance of every Event on the Application, oldest first."""
    items = get(cluster, f"/api/v1/namespaces/{APPS_NS}/events")["items"]
    mine = [
        e
        for e in items
        if e["involvedObject"].get("kind") == "Application"
        and e["involvedObject"].get("name") == name
        and (reason is None or e["reason"] == reason)
    ]
    mine.sort(key=lambda e: int(e["metadata"]["resourceVersion"]))
    return [e.get("reportingInstance") or "" for e in mine]


def relabel(cluster: Cluster, name: str, shard: str | None) -> None:
    status, got = cluster.plane.request(
        "PATCH",
        f"{APPS}/{name}",
        {"metadata": {"labels": {SHARD_LABEL: shard}}},
        content_type="application/merge-patch+json",
    )
    assert status == 200, got


def labelled(kids: dict[str, dict[str, Any]], shard: str | None) -> bool:
    return all(k["metadata"].get("labels", {}).get(SHARD_LABEL) == shard for k in kids.values())


def test_each_application_is_served_by_exactly_one_shard(cluster: Cluster, shards: None) -> None:
    for body in (seed("plain"), seed("alpha", "a")):
        status, got = cluster.plane.request("POST", APPS, body)
        assert status == 201, got
    plain = eventually(lambda: healthy(cluster, "plain"), "plain Healthy", 180)
    alpha = eventually(lambda: healthy(cluster, "alpha"), "alpha Healthy", 180)
    eventually(lambda: reporters(cluster, "plain", "Applied"), "plain's Applied Event")
    eventually(lambda: reporters(cluster, "alpha", "Applied"), "alpha's Applied Event")
    assert set(reporters(cluster, "plain")) == {DEFAULT}
    assert set(reporters(cluster, "alpha")) == {SHARD_A}
    plain_kids, alpha_kids = children(cluster, plain), children(cluster, alpha)
    assert len(plain_kids) == len(alpha_kids) == 15
    assert labelled(plain_kids, None) and labelled(alpha_kids, "a")
    deployment = next(k for k in alpha_kids.values() if k["kind"] == "Deployment")
    assert SHARD_LABEL not in deployment["spec"]["template"]["metadata"]["labels"]


def test_a_relabelled_application_moves_without_prune_or_duplicate(
    cluster: Cluster, shards: None
) -> None:
    before = children(cluster, eventually(lambda: healthy(cluster, "plain"), "plain Healthy"))
    uids = {k: v["metadata"]["uid"] for k, v in before.items()}

    for shard, instance in (("a", SHARD_A), (None, DEFAULT)):
        applied = len(reporters(cluster, "plain", "Applied"))
        relabel(cluster, "plain", shard)

        def moved(shard: str | None = shard) -> dict[str, dict[str, Any]] | None:
            app = healthy(cluster, "plain")
            kids = children(cluster, app) if app else {}
            return kids if app and labelled(kids, shard) else None

        kids = eventually(moved, f"plain's children relabelled for shard {shard}", 120)
        # Relabelled in place: the same objects, none pruned, recreated or added.
        assert {k: v["metadata"]["uid"] for k, v in kids.items()} == uids
        # The label-only apply was posted by the shard the application moved to.
        new = eventually(
            lambda n=applied: reporters(cluster, "plain", "Applied")[n:], "the move's Event"
        )
        assert set(new) == {instance}

    # Moved to shard a once more: a spec change is applied by shard a alone.
    body = get(cluster, f"{APPS}/plain")
    relabel(cluster, "plain", "a")
    eventually(lambda: labelled(children(cluster, body), "a"), "plain back in shard a")
    applied = len(reporters(cluster, "plain", "Applied"))
    before_default = reporters(cluster, "plain").count(DEFAULT)
    spec = copy.deepcopy(get(cluster, f"{APPS}/plain")["spec"])
    spec["topicDefaults"]["partitions"] = 61
    status, got = cluster.plane.request(
        "PATCH", f"{APPS}/plain", {"spec": spec}, content_type="application/merge-patch+json"
    )
    assert status == 200, got
    eventually(lambda: healthy(cluster, "plain"), "plain Healthy after the change", 120)
    new = eventually(lambda: reporters(cluster, "plain", "Applied")[applied:], "Applied Event")
    assert set(new) == {SHARD_A}
    assert reporters(cluster, "plain").count(DEFAULT) == before_default
    topic = next(v for k, v in children(cluster, body).items() if k.startswith("KafkaTopic/"))
    assert topic["spec"]["partitions"] == 61
