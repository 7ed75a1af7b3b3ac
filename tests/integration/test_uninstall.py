"""Removing federator and upgrading its CRD, on the real API server and garbage collector.

Aspects covered:
- `federator uninstall` without `--yes` changes nothing;
- with the operator running, `--yes` deletes every Application through its finalizer: owned
  children gone, Retain topics kept;
- with no operator, the default waits in vain and says so (exit 1, naming `--orphan`), and
  `--orphan --yes` lets go: the Applications are gone, every child federator made is still there
  once the garbage collector has dealt with the Application's deletion (a ConfigMap the user
  made owned by the Application is collected, which is how the test knows the collector ran);
- the CRD upgrade path (`federator crd | kubectl apply --server-side --force-conflicts -f -`)
  over an older CRD keeps every Application, and the new schema is in force at once.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from federator.devcluster import crdfiles
from federator.devcluster.harness import OperatorProcess, eventually
from federator.simulator import DelegateSimulator
from integration import operator_settings

if TYPE_CHECKING:
    from conftest import Cluster
else:
    Cluster = Any

REPO = Path(__file__).resolve().parents[2]
APPS_NS, KAFKA_NS = "uninstall-apps", "uninstall-kafka"
APP = f"/apis/federator.io/v1alpha1/namespaces/{APPS_NS}/applications"
FEDERATOR = (sys.executable, "-m", "federator")
CRD = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/applications.federator.io"


@pytest.fixture(scope="module")
def env(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    cluster.plane.install_crds(REPO / "crds" / "application.yaml")
    cluster.plane.install_crds(*crdfiles.delegate_crd_files(crdfiles.delegate_crds_dir()))
    for ns in (APPS_NS, KAFKA_NS):
        cluster.ensure_namespace(ns)
    tmp = tmp_path_factory.mktemp("uninstall")
    settings = tmp / "settings.yaml"
    operator_settings.write(settings, KAFKA_NS)
    operator = OperatorProcess(
        settings, cluster.kubeconfig, tmp / "operator.log", namespaces=[APPS_NS, KAFKA_NS]
    )
    sim = DelegateSimulator(cluster.api, interval=0.1, namespaces=[APPS_NS, KAFKA_NS])
    sim.run_in_thread()
    try:
        yield {"operator": operator, "tmp": tmp}
    finally:
        operator.stop()
        sim.stop()


def uninstall(cluster: Cluster, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*FEDERATOR, "uninstall", "--kubeconfig", str(cluster.kubeconfig), "-n", APPS_NS, *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def create_healthy(cluster: Cluster, name: str) -> dict[str, Any]:
    body: dict[str, Any] = yaml.safe_load(
        (REPO / "examples" / "call-record-aggregator.yaml").read_text()
    )
    body["metadata"] = {"name": name, "namespace": APPS_NS}
    body["spec"]["deletionPolicy"] = "Retain"
    status, got = cluster.plane.request("POST", APP, body)
    assert status == 201, got

    def healthy() -> dict[str, Any] | None:
        app = cluster.plane.request("GET", f"{APP}/{name}")[1]
        return app if (app.get("status") or {}).get("phase") == "Healthy" else None

    app: dict[str, Any] = eventually(healthy, f"{name} Healthy", timeout=120)
    return app


def path_of(child: dict[str, Any]) -> str:
    """The API path of a `status.children` entry."""
    from federator.core import delegates

    plural = delegates.BY_KIND[child["kind"]].plural
    where = f"/apis/{child['apiVersion']}/namespaces/{child['namespace']}"
    return f"{where}/{plural}/{child['name']}"


def exists(cluster: Cluster, path: str) -> bool:
    return int(cluster.plane.request("GET", path)[0]) == 200


def children(app: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for c in app["status"]["children"] if c.get("owned", True)]


def test_dry_run_then_delete_through_the_running_operator(
    cluster: Cluster, env: dict[str, Any]
) -> None:
    env["operator"].start()
    try:
        app = create_healthy(cluster, "by-finalizer")
        kids = children(app)
        topics = [c for c in kids if c["kind"] == "KafkaTopic"]
        owned = [c for c in kids if c["kind"] != "KafkaTopic"]
        assert topics and owned

        dry = uninstall(cluster)
        assert dry.returncode == 0, dry.stderr
        assert f"{APPS_NS}/by-finalizer" in dry.stdout and "Nothing done" in dry.stdout
        assert exists(cluster, f"{APP}/by-finalizer")

        done = uninstall(cluster, "--yes")
        assert done.returncode == 0, done.stdout + done.stderr
        assert "All Applications are gone" in done.stdout
        assert not exists(cluster, f"{APP}/by-finalizer")
        eventually(
            lambda: not any(exists(cluster, path_of(c)) for c in owned),
            "the owned children collected",
        )
        assert all(exists(cluster, path_of(c)) for c in topics)  # Retain
    finally:
        env["operator"].stop()


def test_without_an_operator_orphan_keeps_every_child(
    cluster: Cluster, env: dict[str, Any]
) -> None:
    env["operator"].start()
    try:
        app = create_healthy(cluster, "orphaned")
    finally:
        env["operator"].stop()
    kids = children(app)
    # The user's own object, owned by the Application: the garbage collector's witness.
    witness = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "witness",
            "ownerReferences": [
                {
                    "apiVersion": "federator.io/v1alpha1",
                    "kind": "Application",
                    "name": "orphaned",
                    "uid": app["metadata"]["uid"],
                }
            ],
        },
    }
    cm = f"/api/v1/namespaces/{APPS_NS}/configmaps"
    assert cluster.plane.request("POST", cm, witness)[0] == 201

    stuck = uninstall(cluster, "--yes", "--timeout", "3")
    assert stuck.returncode == 1, stuck.stdout + stuck.stderr
    assert "--orphan" in stuck.stderr and f"{APPS_NS}/orphaned" in stuck.stderr

    done = uninstall(cluster, "--orphan", "--yes")
    assert done.returncode == 0, done.stdout + done.stderr
    assert not exists(cluster, f"{APP}/orphaned")
    eventually(lambda: not exists(cluster, f"{cm}/witness"), "the collector's pass")
    for child in kids:
        path = path_of(child)
        assert exists(cluster, path), f"{child['kind']} {child['name']} was lost"
        refs = cluster.plane.request("GET", path)[1]["metadata"].get("ownerReferences") or []
        assert all(r["uid"] != app["metadata"]["uid"] for r in refs)


def spec_properties(crd: dict[str, Any]) -> dict[str, Any]:
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema["properties"]["spec"]["properties"]  # type: ignore[no-any-return]


def test_crd_upgrade_keeps_the_applications(cluster: Cluster, env: dict[str, Any]) -> None:
    current = yaml.safe_load((REPO / "crds" / "application.yaml").read_text())
    older = yaml.safe_load((REPO / "crds" / "application.yaml").read_text())
    del spec_properties(older)["suspend"]  # an older release without spec.suspend
    assert older != current
    cluster.plane.kubectl("replace", "-f", "-", stdin=yaml.safe_dump(older))
    eventually(
        lambda: "suspend" not in spec_properties(cluster.plane.request("GET", CRD)[1]),
        "the older CRD in force",
    )
    body: dict[str, Any] = yaml.safe_load(
        (REPO / "examples" / "call-record-aggregator.yaml").read_text()
    )
    body["metadata"] = {"name": "upgraded", "namespace": APPS_NS}
    body["spec"]["suspend"] = True
    status, got = cluster.plane.request("POST", APP, body)
    assert status == 201, got
    assert "suspend" not in got["spec"]  # pruned: the older schema does not know it
    uid = got["metadata"]["uid"]

    crd = subprocess.run(
        [sys.executable, "-m", "federator", "crd"], capture_output=True, text=True, check=True
    ).stdout
    cluster.plane.kubectl(
        "apply",
        "--server-side",
        "--force-conflicts",
        "--field-manager=federator-upgrade",
        "-f",
        "-",
        stdin=crd,
    )

    def suspend_kept() -> bool:
        status, got = cluster.plane.request(
            "PATCH",
            f"{APP}/upgraded",
            {"spec": {"suspend": True}},
            content_type="application/merge-patch+json",
        )
        return status == 200 and got["spec"].get("suspend") is True

    eventually(suspend_kept, "the new schema in force")
    kept = cluster.plane.request("GET", f"{APP}/upgraded")[1]
    assert kept["metadata"]["uid"] == uid
    assert cluster.plane.request("DELETE", f"{APP}/upgraded")[0] == 200
