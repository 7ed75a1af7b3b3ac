"""Federator driven by a REAL Argo CD (v3.6, built by `make argocd`), as docs/gitops.md tells users.

Argo CD runs out of cluster on loopback (`federator.devcluster.argocd.ArgoCD`: repo-server,
application controller, API server, miniredis) against the embedded control plane, with the
health checks of charts/federator/argocd/argocd-cm.yaml installed. Git is a plain `file://`
repository in a temporary directory; each commit is what Argo CD syncs next.

The chart's Deployment gets kwok pods that report Ready but run nothing, so the operator that
reconciles here is `federator run` from this checkout (a subprocess, as in test_operator.py),
with the delegate simulator playing the Spark operator and Strimzi.

Aspects covered, in order, one Argo CD for the module:
- the chart synced by an Argo CD Application: Synced and Healthy, its CRD applied;
- a Federator Application synced by a second Argo CD Application: Argo CD's health follows
  federator's through Progressing -> Healthy -> Degraded (a failed Spark child) -> Healthy ->
  Degraded (an invalid spec committed, the problems in the message) -> Healthy (reverted), and a
  committed spec change reaches the topics;
- a sync with prune deletes nothing federator created (its children carry no tracking mark);
- a cascade delete of that Argo CD Application deletes the Federator Application, federator's
  finalizer and the garbage collector remove its children, `Retain` topics stay;
- a cascade delete of the chart's Argo CD Application removes the operator's objects but never
  the CRD (Argo CD skips CRDs), so Federator Applications survive it.
"""

from __future__ import annotations

import copy
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from federator.devcluster import crdfiles, delegates
from federator.devcluster.argocd import ArgoCD, ensure_argocd
from federator.devcluster.harness import OperatorProcess, eventually, free_port, in_ci
from federator.simulator import DelegateSimulator

if TYPE_CHECKING:
    from conftest import Cluster
else:
    Cluster = Any

pytestmark = pytest.mark.argocd

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "federator"
APPS_NS, KAFKA_NS, CHART_NS = "acd-apps", "acd-kafka", "acd-federator"
NAME = "call-record-aggregator"
CHART_APP, APPS_APP = "federator", "streaming-apps"
ARGO = "/apis/argoproj.io/v1alpha1/namespaces/argocd/applications"
FAPP = f"/apis/federator.io/v1alpha1/namespaces/{APPS_NS}/applications"
CRD = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/applications.federator.io"
USER = {"username": "test"}
DEPLOYMENTS = f"/apis/apps/v1/namespaces/{CHART_NS}/deployments"  # the chart's
CASCADE = "resources-finalizer.argocd.argoproj.io"
SPARK_CHILD = f"{NAME}-cdr-aggregator"
# Deadlines (s) on a loaded 2-core machine shared with other builds.
SYNC = 120.0
HEALTH = 90.0
CHILD_KINDS = {  # what the example creates, by list path
    "Deployment": f"/apis/apps/v1/namespaces/{APPS_NS}/deployments",
    "SparkApplication": (
        f"/apis/sparkoperator.k8s.io/v1beta2/namespaces/{APPS_NS}/sparkapplications"
    ),
    "KafkaTopic": f"/apis/kafka.strimzi.io/v1/namespaces/{KAFKA_NS}/kafkatopics",
}


class Git:
    """A plain git repository (branch main) Argo CD reads through `file://`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir(parents=True)
        self._git("init", "-q", "-b", "main")

    @property
    def url(self) -> str:
        return self.path.as_uri()

    def _git(self, *args: str) -> str:
        proc = subprocess.run(
            ["git", "-c", "user.name=test", "-c", "user.email=test@example.invalid", *args],
            cwd=self.path,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert proc.returncode == 0, f"git {' '.join(args)}:\n{proc.stdout}\n{proc.stderr}"
        return proc.stdout.strip()

    def commit(self, message: str, files: dict[str, str] | None = None) -> str:
        """Write `files` (path -> text), commit everything, return the commit's sha."""
        for name, text in (files or {}).items():
            target = self.path / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
        self._git("add", "-A")
        self._git("commit", "-q", "-m", message)
        return self._git("rev-parse", "HEAD")


@dataclass
class Env:
    argocd: ArgoCD
    git: Git
    operator: OperatorProcess
    sim: DelegateSimulator
    started: list[Callable[[], None]] = field(default_factory=list)

    def start_operator(self) -> None:
        """Once the chart's sync installed the CRD: the operator and (later) the simulator."""
        self.operator.start()
        self.started.append(self.operator.stop)

    def start_simulator(self) -> None:
        self.sim.run_in_thread()
        self.started.append(self.sim.stop)


@pytest.fixture(scope="module")
def env(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    try:
        built = ensure_argocd(build_missing=not in_ci(), out=sys.__stderr__)
    except delegates.DelegateBuildError as exc:
        pytest.fail(f"Argo CD is unavailable: {exc}", pytrace=False)
    plane = cluster.plane
    plane.install_crds(*crdfiles.delegate_crd_files(crdfiles.delegate_crds_dir()))
    for ns in (APPS_NS, KAFKA_NS):
        cluster.ensure_namespace(ns)
    tmp = tmp_path_factory.mktemp("argocd")
    git = Git(tmp / "gitops")
    settings = tmp / "settings.yaml"
    settings.write_text(
        yaml.safe_dump(
            {
                "kafkaClusters": [KAFKA_CLUSTER],
                "operator": {
                    "metricsPort": free_port(),
                    "livenessPort": free_port(),
                    "resyncSeconds": 30,
                    "statusDebounceSeconds": 0.1,
                },
            }
        )
    )
    operator = OperatorProcess(
        settings, cluster.kubeconfig, tmp / "federator.log", namespaces=[APPS_NS, KAFKA_NS]
    )
    # Not started yet: until it runs, the children stay unready and federator Progressing.
    sim = DelegateSimulator(cluster.api, interval=0.1, namespaces=[APPS_NS, KAFKA_NS])
    argocd = ArgoCD(built, plane, tmp / "argocd", health_config=CHART / "argocd" / "argocd-cm.yaml")
    argocd.start()
    state = Env(argocd=argocd, git=git, operator=operator, sim=sim)
    try:
        yield state
    finally:
        try:
            # Whatever a failed test left: no Argo CD Application may outlive its controller
            # with a finalizer nobody removes.
            for app in (APPS_APP, CHART_APP):
                plane.request(
                    "PATCH",
                    f"{ARGO}/{app}",
                    {"metadata": {"finalizers": None}},
                    content_type="application/merge-patch+json",
                )
                plane.request("DELETE", f"{ARGO}/{app}")
            plane.request("DELETE", f"{FAPP}/{NAME}")
            if state.operator.proc is not None:
                eventually(
                    lambda: plane.request("GET", f"{FAPP}/{NAME}")[0] == 404,
                    "the Federator Application deleted",
                    60,
                )
        finally:
            for stop in reversed(state.started):
                stop()
            argocd.stop()


KAFKA_CLUSTER = {
    "name": "default",
    "strimziCluster": "pipelines-strimzi",
    "namespace": KAFKA_NS,
    "bootstrapServers": "pipelines-strimzi-kafka-bootstrap:9092",
}


# ---- helpers -----------------------------------------------------------------------------------


def argo_application(
    name: str, git: Git, path: str, namespace: str, **source: Any
) -> dict[str, Any]:
    """An Argo CD Application as docs/gitops.md writes them (cascade finalizer, automated sync
    with prune and self-heal)."""
    options = ["CreateNamespace=true", "ServerSideApply=true"]
    if name == APPS_APP:
        options = ["SkipDryRunOnMissingResource=true"]
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": name, "namespace": "argocd", "finalizers": [CASCADE]},
        "spec": {
            "project": "default",
            "source": {"repoURL": git.url, "targetRevision": "main", "path": path, **source},
            "destination": {"server": ArgoCD.IN_CLUSTER, "namespace": namespace},
            "syncPolicy": {
                "automated": {"prune": True, "selfHeal": True},
                "syncOptions": options,
                "retry": {"limit": 10, "backoff": {"duration": "2s", "factor": 2}},
            },
        },
    }


def create(cluster: Cluster, body: dict[str, Any]) -> None:
    status, got = cluster.plane.request("POST", ARGO, body)
    assert status == 201, got


def argo(cluster: Cluster, name: str) -> dict[str, Any]:
    status, body = cluster.plane.request("GET", f"{ARGO}/{name}")
    assert status == 200, body
    return body  # type: ignore[no-any-return]


def refresh(cluster: Cluster, name: str) -> None:
    """What a git webhook does: ask Argo CD to look at the repository now."""
    status, got = cluster.plane.request(
        "PATCH",
        f"{ARGO}/{name}",
        {"metadata": {"annotations": {"argocd.argoproj.io/refresh": "hard"}}},
        content_type="application/merge-patch+json",
    )
    assert status == 200, got


def resource(body: dict[str, Any], kind: str, name: str) -> dict[str, Any]:
    """One entry of status.resources (with its health: the controller persists it)."""
    for item in (body.get("status") or {}).get("resources") or []:
        if item.get("kind") == kind and item.get("name") == name:
            return dict(item)
    return {}


def synced_at(
    cluster: Cluster, name: str, revision: str, health: str, text: str = ""
) -> Callable[[], dict[str, Any] | None]:
    """A check: the Argo CD Application synced `revision` and its health is `health` (and the
    Federator Application's health message contains `text`)."""

    def check() -> dict[str, Any] | None:
        body = argo(cluster, name)
        status = body.get("status") or {}
        sync = status.get("sync") or {}
        if sync.get("status") != "Synced" or sync.get("revision") != revision:
            return None
        if (status.get("health") or {}).get("status") != health:
            return None
        if text:
            fed = resource(body, "Application", NAME).get("health") or {}
            if text not in str(fed.get("message") or ""):
                return None
        return body

    return check


def wait(check: Callable[[], Any], what: str, env: Env, timeout: float) -> Any:
    """`eventually`, with Argo CD's logs in the failure message."""
    try:
        return eventually(check, what, timeout, poll=0.5)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{env.argocd.logs()}") from None


def federator_app(**spec_changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = yaml.safe_load((REPO / "examples" / f"{NAME}.yaml").read_text())
    body["metadata"] = {"name": NAME, "namespace": APPS_NS}
    body["spec"].update(spec_changes)
    return body


def children(cluster: Cluster) -> dict[tuple[str, str], str]:
    """(kind, name) -> uid of everything federator created for the application."""
    selector = f"app.kubernetes.io/managed-by=federator,app.kubernetes.io/part-of={NAME}"
    out: dict[tuple[str, str], str] = {}
    for kind, path in CHILD_KINDS.items():
        status, body = cluster.plane.request("GET", f"{path}?labelSelector={selector}")
        assert status == 200, body
        for item in body["items"]:
            out[(kind, item["metadata"]["name"])] = item["metadata"]["uid"]
    return out


def resource_path(cluster: Cluster, item: dict[str, Any]) -> str:
    """The API path of one status.resources entry (its version from discovery)."""
    group, kind = item.get("group") or "", item["kind"]
    base = f"/apis/{group}" if group else "/api"
    if group:
        version = cluster.plane.request("GET", base)[1]["preferredVersion"]["version"]
        base = f"{base}/{version}"
    else:
        base = f"{base}/v1"
    listing = cluster.plane.request("GET", base)[1]["resources"]
    plural = next(r["name"] for r in listing if r["kind"] == kind and "/" not in r["name"])
    ns = f"/namespaces/{item['namespace']}" if item.get("namespace") else ""
    return f"{base}{ns}/{plural}/{item['name']}"


# ---- the tests, in order -----------------------------------------------------------------------


def test_chart_synced_by_argocd_is_healthy(cluster: Cluster, env: Env) -> None:
    shutil.copytree(CHART, env.git.path / "charts" / "federator")
    sha = env.git.commit("the federator chart")
    values = {"kafkaClusters": [KAFKA_CLUSTER]}
    create(
        cluster,
        argo_application(
            CHART_APP,
            env.git,
            "charts/federator",
            CHART_NS,
            helm={"releaseName": "federator", "valuesObject": values},
        ),
    )
    body = wait(synced_at(cluster, CHART_APP, sha, "Healthy"), "chart Healthy", env, SYNC)
    resources = body["status"]["resources"]
    kinds = {(r["kind"], (r.get("health") or {}).get("status")) for r in resources}
    assert ("Deployment", "Healthy") in kinds, kinds
    assert "CustomResourceDefinition" in {r["kind"] for r in resources}, kinds
    status, crd = cluster.plane.request("GET", CRD)
    assert status == 200, crd
    # Applied by Argo CD (server-side, as the docs' ServerSideApply=true asks).
    assert "argocd-controller" in {m["manager"] for m in crd["metadata"]["managedFields"]}
    # Annotation tracking (Argo CD 3's default) marks what it applied from the chart.
    deployment = cluster.plane.request("GET", f"{DEPLOYMENTS}/federator")[1]
    tracking = deployment["metadata"]["annotations"]["argocd.argoproj.io/tracking-id"]
    assert tracking == f"{CHART_APP}:apps/Deployment:{CHART_NS}/federator"


def test_argocd_health_follows_federator(cluster: Cluster, env: Env) -> None:
    env.start_operator()
    sha = env.git.commit("the application", {f"apps/{NAME}.yaml": yaml.safe_dump(federator_app())})
    create(cluster, argo_application(APPS_APP, env.git, "apps", APPS_NS))
    # The simulator is not running: the topics never become Ready, federator stays Progressing.
    wait(
        synced_at(cluster, APPS_APP, sha, "Progressing", "Unready"),
        "Argo CD Progressing with federator's message",
        env,
        SYNC,
    )
    env.start_simulator()
    wait(
        synced_at(cluster, APPS_APP, sha, "Healthy", "children healthy"),
        "Healthy",
        env,
        HEALTH,
    )

    env.sim.fail("SparkApplication", APPS_NS, SPARK_CHILD, "Job aborted: OutOfMemoryError")
    wait(
        synced_at(cluster, APPS_APP, sha, "Degraded", "OutOfMemoryError"),
        "Degraded with the Spark error",
        env,
        HEALTH,
    )
    env.sim.recover("SparkApplication", APPS_NS, SPARK_CHILD)
    wait(synced_at(cluster, APPS_APP, sha, "Healthy"), "Healthy again", env, HEALTH)

    good = federator_app()
    bad = copy.deepcopy(good)
    bad["spec"]["connections"].append({"from": "merge.out", "to": ["nowhere.in"]})
    before = children(cluster)
    bad_sha = env.git.commit("an invalid spec", {f"apps/{NAME}.yaml": yaml.safe_dump(bad)})
    refresh(cluster, APPS_APP)
    body = wait(
        synced_at(cluster, APPS_APP, bad_sha, "Degraded", "nowhere"),
        "Degraded with the spec's problems",
        env,
        SYNC,
    )
    assert resource(body, "Application", NAME)["health"]["status"] == "Degraded"
    assert children(cluster) == before  # an invalid spec keeps the running children

    fixed_sha = env.git.commit("revert", {f"apps/{NAME}.yaml": yaml.safe_dump(good)})
    refresh(cluster, APPS_APP)
    wait(synced_at(cluster, APPS_APP, fixed_sha, "Healthy"), "Healthy reverted", env, SYNC)

    changed = federator_app(topicDefaults={**good["spec"]["topicDefaults"], "partitions": 60})
    change_sha = env.git.commit("60 partitions", {f"apps/{NAME}.yaml": yaml.safe_dump(changed)})
    refresh(cluster, APPS_APP)
    wait(synced_at(cluster, APPS_APP, change_sha, "Healthy"), "Healthy changed", env, SYNC)
    topic_path = f"{CHILD_KINDS['KafkaTopic']}/{NAME}.merge.out"
    topic = cluster.plane.request("GET", topic_path)[1]
    assert topic["spec"]["partitions"] == 60


def test_sync_with_prune_deletes_nothing_federator_created(cluster: Cluster, env: Env) -> None:
    before = children(cluster)
    assert len(before) >= 10, before
    body = argo(cluster, APPS_APP)
    # Argo CD tracks the Federator Application alone: no child is in its inventory.
    assert {(r["kind"], r["name"]) for r in body["status"]["resources"]} == {("Application", NAME)}

    # The API server's resource tree (what the UI draws) shows the same-namespace children
    # under the Federator Application through their ownerReferences, never the KafkaTopics.
    def tree() -> dict[str, Any] | None:
        nodes = env.argocd.tree(APPS_APP)["nodes"]
        assert isinstance(nodes, list)
        under = {
            n["kind"]
            for n in nodes
            if any(
                p.get("kind") == "Application" and p.get("name") == NAME
                for p in n.get("parentRefs") or []
            )
        }
        return {"under": under, "kinds": {n["kind"] for n in nodes}} if under else None

    shown = wait(tree, "the children in the resource tree", env, HEALTH)
    assert {"Deployment", "SparkApplication"} <= shown["under"], shown
    assert "KafkaTopic" not in shown["kinds"], shown
    revision = body["status"]["sync"]["revision"]
    status, got = cluster.plane.request(
        "PATCH",
        f"{ARGO}/{APPS_APP}",
        {
            "operation": {
                "sync": {"revision": revision, "prune": True},
                "initiatedBy": {"username": "test"},
            }
        },
        content_type="application/merge-patch+json",
    )
    assert status == 200, got

    def finished() -> dict[str, Any] | None:
        state = argo(cluster, APPS_APP)["status"].get("operationState") or {}
        mine = (state.get("operation") or {}).get("initiatedBy") == USER
        if mine and state.get("phase") == "Succeeded":
            return state
        return None

    state = wait(finished, "the pruning sync finished", env, SYNC)
    assert state["syncResult"]["revision"] == revision
    pruned = [r for r in state["syncResult"].get("resources") or [] if r.get("status") == "Pruned"]
    assert pruned == []
    assert children(cluster) == before
    assert (argo(cluster, APPS_APP)["status"]["sync"]["status"]) == "Synced"


def test_cascade_delete_removes_children_and_keeps_retained_topics(
    cluster: Cluster, env: Env
) -> None:
    before = children(cluster)
    topics = {name for kind, name in before if kind == "KafkaTopic"}
    assert topics and federator_app()["spec"]["deletionPolicy"] == "Retain"
    status, got = cluster.plane.request("DELETE", f"{ARGO}/{APPS_APP}")
    assert status in (200, 202), got
    wait(
        lambda: cluster.plane.request("GET", f"{ARGO}/{APPS_APP}")[0] == 404,
        "the Argo CD Application gone (its cascade finalizer done)",
        env,
        SYNC,
    )
    wait(
        lambda: cluster.plane.request("GET", f"{FAPP}/{NAME}")[0] == 404,
        "the Federator Application deleted by Argo CD",
        env,
        HEALTH,
    )

    def only_topics() -> dict[tuple[str, str], str] | None:
        left = children(cluster)
        return left if all(kind == "KafkaTopic" for kind, _ in left) else None

    left = wait(
        only_topics,
        "the same-namespace children garbage-collected",
        env,
        HEALTH,
    )
    assert {name for _, name in left} == topics  # Retain: every topic is still there


def test_uninstalling_the_chart_through_argocd_keeps_the_crd(cluster: Cluster, env: Env) -> None:
    # A Federator Application nobody's Argo CD Application tracks, to see what survives.
    survivor = federator_app()
    survivor["metadata"]["name"] = "survivor"
    status, got = cluster.plane.request("POST", FAPP, survivor)
    assert status == 201, got
    assert cluster.plane.request("GET", DEPLOYMENTS)[1]["items"], "the chart's Deployment"
    rendered = argo(cluster, CHART_APP)["status"]["resources"]
    assert len(rendered) > 3, rendered
    status, got = cluster.plane.request("DELETE", f"{ARGO}/{CHART_APP}")
    assert status in (200, 202), got
    wait(
        lambda: cluster.plane.request("GET", f"{ARGO}/{CHART_APP}")[0] == 404,
        "the chart's Argo CD Application gone (its cascade finalizer done)",
        env,
        SYNC,
    )
    # Everything the chart rendered is deleted except the CRD: Argo CD never deletes a
    # CustomResourceDefinition on cascade delete (controller: shouldBeDeleted skips CRDs).
    wait(
        lambda: not cluster.plane.request("GET", DEPLOYMENTS)[1]["items"],
        "the operator's Deployment deleted",
        env,
        HEALTH,
    )
    for item in rendered:
        if item["kind"] != "CustomResourceDefinition":
            path = resource_path(cluster, item)
            wait(lambda p=path: cluster.plane.request("GET", p)[0] == 404, path, env, HEALTH)
    status, crd = cluster.plane.request("GET", CRD)
    assert status == 200 and "deletionTimestamp" not in crd["metadata"], crd
    status, body = cluster.plane.request("GET", f"{FAPP}/survivor")
    assert status == 200 and "deletionTimestamp" not in body["metadata"], body
    # With the operator gone it would stay: it still carries federator's finalizer.
    assert "federator.io/finalizer" in body["metadata"]["finalizers"]
    # The namespace Argo CD created for the release (CreateNamespace=true) is not tracked: kept.
    assert cluster.plane.request("GET", f"/api/v1/namespaces/{CHART_NS}")[0] == 200
    # Clean up with the operator (still running here): its finalizer lets it go.
    status, got = cluster.plane.request("DELETE", f"{FAPP}/survivor")
    assert status in (200, 202), got
    wait(
        lambda: cluster.plane.request("GET", f"{FAPP}/survivor")[0] == 404,
        "survivor deleted",
        env,
        HEALTH,
    )
