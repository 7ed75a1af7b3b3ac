"""Flink session jobs (issue 12) on the real control plane: a streamlet with `flinkSession` runs
as an Apache FlinkSessionJob on a session cluster the platform team owns.

One `federator run` with a short resync; the delegate simulator plays the Flink operator for the
FlinkSessionJob federator writes. The session cluster is the platform's FlinkDeployment (no job,
no federator label): the test writes its status as the Flink operator would, and federator must
never write to it.

Aspects covered, in order (one application throughout):
- no session cluster yet: the FlinkSessionJob is created, and the Application reads Degraded with
  reason SessionClusterMissing naming the cluster to create;
- the platform creates the session cluster, JobManager not ready yet: Progressing,
  SessionClusterNotReady;
- its JobManager READY: Healthy, the job RUNNING on it; the job's spec names the session
  cluster and carries the wiring as program arguments;
- the Application deleted: its FlinkSessionJob is gone, the session cluster is untouched.
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
from integration import flink_sessions

if TYPE_CHECKING:
    from conftest import Cluster
else:
    Cluster = Any

REPO = Path(__file__).resolve().parents[2]
TEAM, KAFKA = "fs-team", "fs-kafka"
APP = f"/apis/federator.io/v1alpha1/namespaces/{TEAM}/applications"
SESSIONS = f"/apis/flink.apache.org/v1beta1/namespaces/{TEAM}/flinkdeployments"
JOBS = f"/apis/flink.apache.org/v1beta1/namespaces/{TEAM}/flinksessionjobs"
SESSION = "shared-session"
NAME = "orders"
JOB = f"{NAME}-score"
APPLICATION = flink_sessions.application(
    TEAM, NAME, SESSION, {"jarURI": "https://jars.example.com/score-1.jar"}
)


@pytest.fixture(scope="module")
def env(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    cluster.plane.install_crds(REPO / "crds" / "application.yaml")
    cluster.plane.install_crds(*crdfiles.delegate_crd_files(crdfiles.delegate_crds_dir()))
    for ns in (TEAM, KAFKA):
        cluster.ensure_namespace(ns)
    tmp = tmp_path_factory.mktemp("flink-session")
    settings = tmp / "settings.yaml"
    settings.write_text(
        yaml.safe_dump(
            {
                "kafkaClusters": [
                    {
                        "name": "default",
                        "namespace": KAFKA,
                        "strimziCluster": "pipelines-strimzi",
                        "bootstrapServers": "kafka:9092",
                    }
                ],
                "operator": {
                    "metricsPort": free_port(),
                    "livenessPort": free_port(),
                    "statusDebounceSeconds": 0.1,
                    # The session cluster is not federator's child: no watch brings its changes,
                    # the resync does (and every reconcile reads it).
                    "resyncSeconds": 2,
                },
            }
        )
    )
    operator = OperatorProcess(settings, cluster.kubeconfig, tmp / "operator.log", [TEAM, KAFKA])
    sim = DelegateSimulator(cluster.api, interval=0.1, namespaces=[TEAM, KAFKA])
    sim.run_in_thread()
    operator.start()
    try:
        yield {"operator": operator}
    finally:
        operator.stop()
        sim.stop()


def write_session_status(cluster: Cluster, job_manager: str, lifecycle: str) -> None:
    """What the Flink operator writes on a session cluster (session mode: no jobStatus)."""
    body = cluster.plane.request("GET", f"{SESSIONS}/{SESSION}")[1]
    status = {
        "lifecycleState": lifecycle,
        "jobManagerDeploymentStatus": job_manager,
        "observedGeneration": body["metadata"]["generation"],
        "reconciliationStatus": {"state": "DEPLOYED"},
    }
    code, got = cluster.plane.request(
        "PATCH",
        f"{SESSIONS}/{SESSION}/status",
        {"status": status},
        content_type="application/merge-patch+json",
    )
    assert code == 200, got


def job_entry(cluster: Cluster, phase: str, reason: str, text: str = "") -> dict[str, Any] | None:
    """The FlinkSessionJob's entry once the Application reads `phase` and the entry `reason`
    with `text` in its message."""
    got = flink_sessions.job_entry(cluster.plane.request("GET", f"{APP}/{NAME}")[1])
    if got is None or got[0] != phase or got[1].get("reason") != reason:
        return None
    return got[1] if text in (got[1].get("message") or "") else None


def test_without_its_session_cluster_the_job_is_degraded(
    cluster: Cluster, env: dict[str, Any]
) -> None:
    code, got = cluster.plane.request("POST", APP, APPLICATION)
    assert code == 201, got
    eventually(lambda: cluster.plane.request("GET", f"{JOBS}/{JOB}")[0] == 200, "the job", 60)
    entry = eventually(
        lambda: job_entry(cluster, "Degraded", "SessionClusterMissing"), "SessionClusterMissing", 60
    )
    assert f"{TEAM}/{SESSION}" in entry["message"]
    assert "does not exist" in entry["message"]


def test_a_session_cluster_not_ready_then_ready(cluster: Cluster, env: dict[str, Any]) -> None:
    code, got = cluster.plane.request(
        "POST", SESSIONS, flink_sessions.session_cluster(TEAM, SESSION)
    )
    assert code == 201, got
    write_session_status(cluster, "DEPLOYED_NOT_READY", "DEPLOYED")
    # (Read between the create and the status write, it is "has not written a status" first.)
    entry = eventually(
        lambda: job_entry(cluster, "Progressing", "SessionClusterNotReady", "DEPLOYED_NOT_READY"),
        "not ready",
        60,
    )
    assert "JobManager is DEPLOYED_NOT_READY" in entry["message"]
    write_session_status(cluster, "READY", "STABLE")
    entry = eventually(lambda: job_entry(cluster, "Healthy", "STABLE"), "Healthy", 60)
    assert f"on the session cluster {SESSION}" in entry["message"]

    job = cluster.plane.request("GET", f"{JOBS}/{JOB}")[1]
    assert job["spec"]["deploymentName"] == SESSION
    assert job["spec"]["job"]["jarURI"] == "https://jars.example.com/score-1.jar"
    args = job["spec"]["job"]["args"]
    wiring = dict(zip(args[0::2], args[1::2], strict=True))
    assert wiring["--FEDERATOR_OUTLET_OUT_TOPIC"] == f"{NAME}.score.out"
    assert "--FEDERATOR_KAFKA_BOOTSTRAP_SERVERS" in wiring


def test_deleting_the_application_removes_the_job_not_the_session_cluster(
    cluster: Cluster, env: dict[str, Any]
) -> None:
    before = cluster.plane.request("GET", f"{SESSIONS}/{SESSION}")[1]
    code, got = cluster.plane.request("DELETE", f"{APP}/{NAME}")
    assert code in (200, 202), got
    eventually(
        lambda: cluster.plane.request("GET", f"{APP}/{NAME}")[0] == 404, "application gone", 60
    )
    eventually(lambda: cluster.plane.request("GET", f"{JOBS}/{JOB}")[0] == 404, "job gone", 60)
    after = cluster.plane.request("GET", f"{SESSIONS}/{SESSION}")[1]
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    assert "federator.io/application" not in (after["metadata"].get("annotations") or {})
