"""Flink session jobs on the REAL Apache Flink Kubernetes Operator 1.7.0 (issue 12).

The platform team's session cluster is a FlinkDeployment without a job, run by the real operator
(its own 1.7.0 CRDs installed); its JobManager is a real Flink 1.17.1 MiniCluster in session mode
on loopback (`MiniClusterSession`: the REST API with jar upload and run, no job of its own),
standing where the kwok pod cannot answer. A streamlet with `flinkSession` becomes a
FlinkSessionJob; the real operator fetches its jar (served on loopback over HTTP), uploads it to
the session cluster and runs it there. Every FlinkSessionJob status federator reads here was
written by the real operator from what the real Flink runtime said.

Aspects covered, in order, with deadlines (one application throughout):
- Progressing while the session cluster is not ready (SessionClusterNotReady) or the job is being
  submitted, then Healthy once the real operator reports the job RUNNING on the session cluster;
  the job really runs there, with federator's wiring as its program arguments;
- the job cancelled through Flink's REST API: the operator's verdict makes the Application
  Degraded;
- the Application deleted: the operator cancels the job and the FlinkSessionJob goes; the session
  cluster stays, untouched by federator.
"""

from __future__ import annotations

import functools
import http.server
import json
import subprocess
import sys
import threading
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from federator.devcluster import crdfiles
from federator.devcluster.delegates import DelegateBuildError
from federator.devcluster.flink_minicluster import JobManagerStandIn
from federator.devcluster.flink_operator import (
    FlinkOperatorBuild,
    FlinkOperatorProcess,
    ensure_flink_operator,
    rest_host,
)
from federator.devcluster.harness import OperatorProcess, eventually, free_port, in_ci
from federator.simulator import DelegateSimulator
from integration import flink_sessions

if TYPE_CHECKING:
    from conftest import Cluster
else:
    Cluster = Any

pytestmark = pytest.mark.real_delegates

REPO = Path(__file__).resolve().parents[2]
SOURCES = Path(__file__).resolve().parent / "data" / "flink_session"
TEAM, KAFKA = "rfs-team", "rfs-kafka"
SESSION = "shared-session"
NAME = "scoring"
JOB = f"{NAME}-score"
APP = f"/apis/federator.io/v1alpha1/namespaces/{TEAM}/applications/{NAME}"
SESSIONS = f"/apis/flink.apache.org/v1beta1/namespaces/{TEAM}/flinkdeployments"
JOBS = f"/apis/flink.apache.org/v1beta1/namespaces/{TEAM}/flinksessionjobs"
CONVERGE = 240.0  # JVMs on a loaded 2-core machine: the operator, the MiniCluster, the job


def compile_java(built: FlinkOperatorBuild, source: Path, out: Path) -> Path:
    """javac against the operator's Flink jars (the JDK is on the machine, as for the build)."""
    out.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["javac", "-d", str(out), "-cp", built.classpath, str(source)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return out


def job_jar(classes: Path, jar: Path) -> Path:
    """A jar of the job's classes (no manifest: the FlinkSessionJob names the entry class)."""
    jar.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(jar, "w") as archive:
        for path in sorted(classes.rglob("*.class")):
            archive.write(path, str(path.relative_to(classes)))
    return jar


class JarServer:
    """The job's jar over HTTP on loopback: where a platform keeps its jars (the operator
    fetches a session job's jarURI itself, then uploads it to the session cluster)."""

    def __init__(self, directory: Path) -> None:
        handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(directory))
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def env(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    try:
        built = ensure_flink_operator(build_missing=not in_ci(), out=sys.__stderr__)
    except DelegateBuildError as exc:
        pytest.fail(f"the real Flink operator is unavailable: {exc}", pytrace=False)
    plane = cluster.plane
    vendored = crdfiles.delegate_crd_files(crdfiles.delegate_crds_dir())
    plane.install_crds(REPO / "crds" / "application.yaml")
    plane.install_crds(*vendored)
    plane.install_crds(built.crds_dir)  # the operator's own 1.7.0 CRDs, both kinds
    for ns in (TEAM, KAFKA):
        cluster.ensure_namespace(ns)
    account = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "flink"}}
    status, body = plane.request("POST", f"/api/v1/namespaces/{TEAM}/serviceaccounts", account)
    assert status in (201, 409), body
    tmp = tmp_path_factory.mktemp("real-flink-session")
    session_classes = compile_java(built, SOURCES / "MiniClusterSession.java", tmp / "session")
    job_classes = compile_java(built, SOURCES / "TickerJob.java", tmp / "job")
    job_jar(job_classes, tmp / "jars" / "ticker.jar")
    jars = JarServer(tmp / "jars")
    rest = free_port()
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
                    "resyncSeconds": 5,  # the session cluster is read at each reconcile
                    "statusDebounceSeconds": 0.1,
                },
            }
        )
    )
    operator = FlinkOperatorProcess(
        built, plane, [TEAM], tmp, rest_hosts=[rest_host(TEAM, SESSION)]
    )
    standin = JobManagerStandIn(built, plane, [TEAM], tmp, session_classes=session_classes)
    topics = DelegateSimulator(cluster.api, interval=0.2, namespaces=[KAFKA])
    federator = OperatorProcess(
        settings, cluster.kubeconfig, tmp / "federator.log", namespaces=[TEAM, KAFKA]
    )
    operator.start()
    standin.run_in_thread()
    topics.run_in_thread()
    federator.start()
    try:
        yield {
            "standin": standin,
            "rest": rest,
            "jar": f"http://127.0.0.1:{jars.port}/ticker.jar",
            "tmp": tmp,
        }
    finally:
        try:
            plane.request("DELETE", APP)
            plane.request("DELETE", f"{SESSIONS}/{SESSION}")
            eventually(
                lambda: plane.request("GET", f"{SESSIONS}/{SESSION}")[0] == 404,
                "the session cluster deleted",
                120,
            )
        finally:
            federator.stop()
            topics.stop()
            standin.stop()
            operator.stop()
            jars.stop()
            plane.install_crds(*(p for p in vendored if "flink" in p.name))


def job_child(cluster: Cluster) -> tuple[Any, Any, Any] | None:
    code, app = cluster.plane.request("GET", APP)
    got = flink_sessions.job_entry(app) if code == 200 else None
    return None if got is None else (got[0], got[1].get("reason"), got[1])


def reads(cluster: Cluster, phase: str, reason: str | None = None) -> dict[str, Any] | None:
    got = job_child(cluster)
    if got is None or got[0] != phase or (reason is not None and got[1] != reason):
        return None
    return dict(got[2])


def flink_jobs(port: int) -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/jobs/overview", timeout=5) as r:
        return list(json.loads(r.read())["jobs"])


def test_the_job_runs_on_the_session_cluster_and_reads_healthy(
    cluster: Cluster, env: dict[str, Any]
) -> None:
    plane = cluster.plane
    code, got = plane.request(
        "POST",
        SESSIONS,
        flink_sessions.session_cluster(
            TEAM,
            SESSION,
            {"rest.port": str(env["rest"]), "taskmanager.numberOfTaskSlots": "2"},
        ),
    )
    assert code == 201, got
    code, got = plane.request(
        "POST",
        APP.rsplit("/", 1)[0],
        flink_sessions.application(
            TEAM, NAME, SESSION, {"jarURI": env["jar"], "entryClass": "TickerJob"}
        ),
    )
    assert code == 201, got
    seen: list[tuple[Any, Any]] = []

    def healthy() -> dict[str, Any] | None:
        got = job_child(cluster)
        if got is not None and (not seen or seen[-1] != got[:2]):
            seen.append(got[:2])
        return reads(cluster, "Healthy", "STABLE")

    entry = eventually(healthy, "Healthy on the real operator", CONVERGE, 0.2)
    print("federator read (phase, FlinkSessionJob reason):", seen)
    assert "job RUNNING on the session cluster" in entry["message"]
    assert any(phase == "Progressing" for phase, _ in seen), seen
    job = plane.request("GET", f"{JOBS}/{JOB}")[1]
    assert job["status"]["jobStatus"]["state"] == "RUNNING"  # written by the real operator
    running = [j for j in flink_jobs(env["rest"]) if j["state"] == "RUNNING"]
    assert [j["jid"] for j in running] == [job["status"]["jobStatus"]["jobId"]]
    log = next(Path(env["tmp"]).glob(f"minicluster-{SESSION}-*.log")).read_text()
    assert "--FEDERATOR_OUTLET_OUT_TOPIC scoring.score.out" in log


def test_a_cancelled_job_degrades_the_application(cluster: Cluster, env: dict[str, Any]) -> None:
    job = cluster.plane.request("GET", f"{JOBS}/{JOB}")[1]
    job_id = job["status"]["jobStatus"]["jobId"]
    request = urllib.request.Request(
        f"http://127.0.0.1:{env['rest']}/jobs/{job_id}?mode=cancel", method="PATCH"
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        response.read()
    entry = eventually(lambda: reads(cluster, "Degraded"), "Degraded after the cancel", CONVERGE)
    print("after the cancel:", entry["reason"], entry["message"])
    assert "CANCELED" in entry["message"] or entry["reason"] == "JobCanceled", entry


def test_deleting_the_application_leaves_the_session_cluster(
    cluster: Cluster, env: dict[str, Any]
) -> None:
    before = cluster.plane.request("GET", f"{SESSIONS}/{SESSION}")[1]
    code, got = cluster.plane.request("DELETE", APP)
    assert code in (200, 202), got
    eventually(lambda: cluster.plane.request("GET", APP)[0] == 404, "application gone", CONVERGE)
    eventually(
        lambda: cluster.plane.request("GET", f"{JOBS}/{JOB}")[0] == 404, "job gone", CONVERGE
    )
    after = cluster.plane.request("GET", f"{SESSIONS}/{SESSION}")[1]
    assert "federator.io/application" not in (after["metadata"].get("annotations") or {})
    assert after["metadata"]["uid"] == before["metadata"]["uid"]
