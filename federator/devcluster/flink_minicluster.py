"""A real Flink MiniCluster standing where a FlinkDeployment's JobManager pod would be.

Why: under kwok no container runs, so the JobManager pod the real Flink operator deploys never
answers, and the operator reports it DEPLOYING forever. The operator dials the JobManager at
`<deployment>-rest.<namespace>:<rest.port>` (resolved to loopback for its JVM, see
`flink_operator.hosts_file_text`); `MiniClusterProcess` puts a real Flink 1.17.1 runtime there
(JobManager, one TaskManager, the REST API: `hack/delegates/flink/MiniClusterJob.java`) running
an endless job under the operator's own `status.jobStatus.jobId`, so every job status the
operator writes (RUNNING, FAILED, CANCELED, a savepoint on suspend) comes from Flink itself.

`JobManagerStandIn` ties one MiniCluster to the life of the JobManager Deployment the operator
created (named like the FlinkDeployment): it starts one when the Deployment appears, stops it when
the Deployment is deleted (suspend, a restart of a failed job) and starts a fresh one for a new
Deployment. A test makes the job fail (`fail`) or cancels it through Flink's REST API (`cancel`).
"""

from __future__ import annotations

import json
import logging
import subprocess
import threading
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from federator.devcluster.flink_operator import FlinkOperatorBuild, java_options
from federator.devcluster.harness import stop_group
from federator.devcluster.launcher import ControlPlane

log = logging.getLogger(__name__)

MAIN_CLASS = "MiniClusterJob"
SESSION_MAIN_CLASS = "MiniClusterSession"
DEFAULT_REST_PORT = 8081  # Flink's rest.port default
FLINK_DEPLOYMENTS = "/apis/flink.apache.org/v1beta1/namespaces/{ns}/flinkdeployments"
DEPLOYMENT = "/apis/apps/v1/namespaces/{ns}/deployments/{name}"
STOP_GRACE_SECONDS = 5.0


class StandInError(ValueError):
    """A FlinkDeployment the stand-in cannot serve, with what to change."""


def rest_port(deployment: Mapping[str, Any]) -> int:
    """The JobManager REST port of a FlinkDeployment: `rest.port` of its flinkConfiguration."""
    config = (deployment.get("spec") or {}).get("flinkConfiguration") or {}
    raw = config.get("rest.port", DEFAULT_REST_PORT) if isinstance(config, Mapping) else None
    try:
        port = int(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise StandInError(
            f"flinkConfiguration rest.port {raw!r} is not a port number; "
            "set it to a free loopback port"
        ) from None
    if not 0 < port < 65536:
        raise StandInError(f"flinkConfiguration rest.port {port} is out of range (1-65535)")
    return port


def minicluster_argv(
    built: FlinkOperatorBuild, port: int, job_id: str, job_name: str, fail_file: Path
) -> list[str]:
    """The MiniCluster JVM: the compiled job first on the class path, then the operator's jars."""
    classpath = f"{built.classes}:{built.classpath}"
    return [
        "java",
        *java_options(built),
        "-cp",
        classpath,
        MAIN_CLASS,
        str(port),
        job_id,
        job_name,
        str(fail_file),
    ]


def session_argv(built: FlinkOperatorBuild, port: int, session_classes: Path) -> list[str]:
    """A session MiniCluster JVM: the REST API with jar upload and run, no job of its own."""
    classpath = f"{session_classes}:{built.classes}:{built.classpath}"
    return ["java", *java_options(built), "-cp", classpath, SESSION_MAIN_CLASS, str(port)]


@dataclass
class MiniClusterProcess:
    """One MiniCluster JVM (own process group) running one job; logs to `log`."""

    built: FlinkOperatorBuild
    port: int
    job_id: str
    job_name: str
    workdir: Path
    proc: subprocess.Popen[bytes] | None = None
    session_classes: Path | None = None
    """A session cluster (no job of its own; jobs come as FlinkSessionJobs through the REST
    API): the directory with the compiled `MiniClusterSession` (SESSION_MAIN_CLASS)."""

    @property
    def log(self) -> Path:
        return self.workdir / f"minicluster-{self.job_name}-{self.job_id[:8]}.log"

    @property
    def fail_file(self) -> Path:
        return self.workdir / f"{self.job_name}.fail"

    def start(self) -> None:
        """Start it; the operator's own polling finds it ready (no wait here)."""
        self.fail_file.unlink(missing_ok=True)
        argv = (
            minicluster_argv(self.built, self.port, self.job_id, self.job_name, self.fail_file)
            if self.session_classes is None
            else session_argv(self.built, self.port, self.session_classes)
        )
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def fail(self) -> None:
        """Make the running job throw (once): Flink reports it FAILED (no restart strategy)."""
        self.fail_file.touch()

    def cancel(self) -> None:
        """Cancel the job through Flink's REST API, as `flink cancel` does."""
        url = f"http://127.0.0.1:{self.port}/jobs/{self.job_id}?mode=cancel"
        request = urllib.request.Request(url, method="PATCH")
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()

    def job_state(self) -> str | None:
        """The job's state as Flink's REST API reports it (None when it does not answer)."""
        url = f"http://127.0.0.1:{self.port}/jobs/{self.job_id}"
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                state = json.loads(response.read()).get("state")
        except (OSError, ValueError):
            return None
        return str(state) if state else None

    def stop(self) -> None:
        if self.proc is not None:
            stop_group(self.proc, STOP_GRACE_SECONDS)
            self.proc = None


class JobManagerStandIn:
    """Runs a MiniCluster for every FlinkDeployment whose JobManager Deployment exists (module doc).

    One per JobManager Deployment (by uid): a Deployment deleted and created again gets a fresh
    MiniCluster under the jobId the operator holds then."""

    def __init__(
        self,
        built: FlinkOperatorBuild,
        plane: ControlPlane,
        namespaces: Sequence[str],
        workdir: Path,
        *,
        interval: float = 0.5,
        session_classes: Path | None = None,
    ) -> None:
        """`session_classes`: also stand in for session clusters (a FlinkDeployment without
        spec.job), with the compiled `MiniClusterSession` found there."""
        self.session_classes = session_classes
        self.built, self.plane, self.workdir = built, plane, workdir
        self.namespaces, self.interval = list(namespaces), interval
        self.clusters: dict[tuple[str, str], tuple[str, MiniClusterProcess]] = {}
        self.started = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def step(self) -> None:
        """One pass over every FlinkDeployment of the namespaces."""
        seen: set[tuple[str, str]] = set()
        for ns in self.namespaces:
            status, listing = self.plane.request("GET", FLINK_DEPLOYMENTS.format(ns=ns))
            if status != 200:
                continue
            for item in listing.get("items") or []:
                key = (ns, str(item["metadata"]["name"]))
                seen.add(key)
                self._serve(key, item)
        with self._lock:
            gone = [key for key in self.clusters if key not in seen]
        for key in gone:
            self._retire(key)

    def _serve(self, key: tuple[str, str], item: Mapping[str, Any]) -> None:
        ns, name = key
        status, deployment = self.plane.request("GET", DEPLOYMENT.format(ns=ns, name=name))
        meta = (deployment.get("metadata") or {}) if status == 200 else {}
        uid = str(meta.get("uid") or "")
        if not uid or meta.get("deletionTimestamp"):
            self._retire(key)
            return
        with self._lock:
            current = self.clusters.get(key)
        if current is not None and current[0] == uid and current[1].proc is not None:
            return
        if current is not None:
            self._retire(key)
        session = (item.get("spec") or {}).get("job") is None
        job_id = ((item.get("status") or {}).get("jobStatus") or {}).get("jobId")
        if session and self.session_classes is None:
            return
        if not session and not job_id:
            return
        cluster = MiniClusterProcess(
            self.built,
            rest_port(item),
            "" if session else str(job_id),
            name,
            self.workdir,
            session_classes=self.session_classes if session else None,
        )
        cluster.start()
        log.info("started a MiniCluster for %s/%s job %s (pid %s)", ns, name, job_id, cluster.proc)
        with self._lock:
            self.clusters[key] = (uid, cluster)
            self.started += 1

    def _retire(self, key: tuple[str, str]) -> None:
        with self._lock:
            entry = self.clusters.pop(key, None)
        if entry is not None:
            entry[1].stop()

    def cluster(self, ns: str, name: str) -> MiniClusterProcess:
        with self._lock:
            entry = self.clusters.get((ns, name))
        if entry is None:
            raise LookupError(f"no MiniCluster runs for FlinkDeployment {ns}/{name}")
        return entry[1]

    def fail(self, ns: str, name: str) -> None:
        self.cluster(ns, name).fail()

    def cancel(self, ns: str, name: str) -> None:
        self.cluster(ns, name).cancel()

    def run_in_thread(self) -> None:
        def loop() -> None:
            while not self._stop.wait(self.interval):
                try:
                    self.step()
                except Exception:  # keep standing in; the test's deadline reports the effect
                    log.exception("JobManager stand-in pass failed")

        self._thread = threading.Thread(target=loop, name="jobmanager-stand-in", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the loop, then every MiniCluster."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)
            self._thread = None
        with self._lock:
            keys = list(self.clusters)
        for key in keys:
            self._retire(key)
