"""HA with kopf peering on the real control plane: one active replica, failover on its exit.

Aspects covered:
- two `federator run --peering federator` processes: exactly one works (known by its reconcile
  count), the other stands by (distinct random priorities; kopf's default 0 pauses both);
- when the active one stops, the other resumes and reconciles new Applications.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from federator.devcluster.harness import OperatorProcess, eventually, free_port

if TYPE_CHECKING:
    from conftest import Cluster
else:
    Cluster = Any

REPO = Path(__file__).resolve().parents[2]
NS = "ha-apps"
APPS = f"/apis/federator.io/v1alpha1/namespaces/{NS}/applications"


def application(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "federator.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"streamlets": [{"name": "s", "runtime": "container", "image": "r/s:1"}]},
    }


def reconciled(cluster: Cluster, name: str) -> bool:
    status = cluster.plane.request("GET", f"{APPS}/{name}")[1].get("status") or {}
    return status.get("total") == 1


@pytest.fixture
def replicas(cluster: Cluster, tmp_path: Path) -> Iterator[list[OperatorProcess]]:
    rendered = subprocess.run(
        [
            str(cluster.bin_dir / "helm"),
            "template",
            "x",
            str(REPO / "charts" / "federator"),
            "--set",
            "peering.enabled=true",
            "--set",
            "replicaCount=2",
            "--show-only",
            "templates/peering-crds.yaml",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    crds = tmp_path / "peering-crds.yaml"
    crds.write_text(rendered)
    cluster.plane.install_crds(REPO / "crds" / "application.yaml", crds)
    cluster.ensure_namespace(NS)
    # Watching namespaces (not cluster-wide), kopf peers through a KopfPeering in each one.
    status, body = cluster.plane.request(
        "POST",
        f"/apis/kopf.dev/v1/namespaces/{NS}/kopfpeerings",
        {"apiVersion": "kopf.dev/v1", "kind": "KopfPeering", "metadata": {"name": "federator"}},
    )
    assert status in (201, 409), body
    procs = []
    for i in range(2):
        settings = tmp_path / f"settings-{i}.yaml"
        settings.write_text(
            yaml.safe_dump(
                {
                    "kafkaClusters": [
                        {
                            "name": "default",
                            "strimziCluster": "s",
                            "namespace": NS,
                            "bootstrapServers": "b:9092",
                        }
                    ],
                    "operator": {"metricsPort": free_port(), "livenessPort": 0},
                }
            )
        )
        replica = OperatorProcess(
            settings,
            cluster.kubeconfig,
            tmp_path / f"replica-{i}.log",
            namespaces=[NS],
            # Fixed, distinct priorities make the active replica known in advance; without
            # --priority each process draws a random one (kopf's default 0 pauses all).
            extra_args=["--peering", "federator", "--priority", str(100 - 50 * i)],
        )
        replica.start()
        procs.append(replica)
    try:
        yield procs
    finally:
        for replica in procs:
            replica.stop()


def reconciles(replica: OperatorProcess) -> float:
    return replica.metric("federator_reconcile_duration_seconds_count")


def peers(cluster: Cluster) -> int:
    body = cluster.plane.request("GET", f"/apis/kopf.dev/v1/namespaces/{NS}/kopfpeerings/federator")
    return len(body[1].get("status") or {})


def test_one_replica_works_and_the_other_takes_over(
    cluster: Cluster, replicas: list[OperatorProcess]
) -> None:
    active, standby = replicas  # priorities 100 and 50
    eventually(lambda: peers(cluster) >= 2, "both replicas in the KopfPeering")
    cluster.plane.request("POST", APPS, application("first"))
    eventually(lambda: reconciled(cluster, "first"), "the active replica to reconcile")
    assert reconciles(active) > 0
    idle = reconciles(standby)
    cluster.plane.request("POST", APPS, application("second"))
    eventually(lambda: reconciled(cluster, "second"), "the active replica to reconcile again")
    assert reconciles(standby) == idle  # the standby did nothing while the active one ran

    active.stop()
    cluster.plane.request("POST", APPS, application("third"))
    eventually(lambda: reconciled(cluster, "third"), "the standby to take over", 120)
    assert reconciles(standby) > idle
