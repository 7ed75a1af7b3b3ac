"""HA with kopf peering on the real control plane: one active replica, failover on its exit.

Aspects covered:
- two `federator run --peering federator` processes: exactly one works, the other pauses
  (distinct random priorities; kopf's default of 0 for both would pause both);
- when the active one stops, the other resumes and reconciles new Applications.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

if TYPE_CHECKING:
    from conftest import Cluster
else:
    Cluster = Any

REPO = Path(__file__).resolve().parents[2]
NS = "ha-apps"
APPS = f"/apis/federator.io/v1alpha1/namespaces/{NS}/applications"
PAUSED = "Pausing operations in favour of"


def eventually(check: Callable[[], Any], what: str, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


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
def replicas(
    cluster: Cluster, tmp_path: Path
) -> Iterator[list[tuple[subprocess.Popen[bytes], Path]]]:
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
    settings = tmp_path / "settings.yaml"
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
                "operator": {"metricsPort": 0, "livenessPort": 0},
            }
        )
    )
    procs = []
    for i in range(2):
        log = tmp_path / f"replica-{i}.log"
        procs.append(
            (
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "federator",
                        "run",
                        "--kubeconfig",
                        str(cluster.kubeconfig),
                        "--settings",
                        str(settings),
                        "-n",
                        NS,
                        "--peering",
                        "federator",
                    ],
                    stdout=log.open("wb"),
                    stderr=subprocess.STDOUT,
                ),
                log,
            )
        )
    try:
        yield procs
    finally:
        for proc, _ in procs:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(20)


def test_one_replica_works_and_the_other_takes_over(
    cluster: Cluster, replicas: list[tuple[subprocess.Popen[bytes], Path]]
) -> None:
    def one_paused() -> list[int]:
        return [i for i, (_, log) in enumerate(replicas) if PAUSED in log.read_text()]

    paused = eventually(one_paused, "one replica to pause in favour of the other")
    assert len(paused) == 1
    standby = paused[0]
    active = 1 - standby
    cluster.plane.request("POST", APPS, application("first"))
    eventually(lambda: reconciled(cluster, "first"), "the active replica to reconcile")

    proc, _ = replicas[active]
    proc.terminate()
    proc.wait(20)
    cluster.plane.request("POST", APPS, application("second"))
    eventually(lambda: reconciled(cluster, "second"), "the standby to take over", 120)
    assert "Resuming operations after the pause" in replicas[standby][1].read_text()
