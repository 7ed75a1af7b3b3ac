"""Run the real kubeflow spark-operator against the embedded control plane, out of cluster.

Why: federator's Spark health adapter must read what the real operator writes, not what the
delegate simulator imitates. The operator (built by `federator.devcluster.delegates`) runs as a
subprocess in its own process group on loopback: `controller start` only (no webhook), leader
election, metrics, health probes and pprof off. It thinks it runs in a pod for one thing only: it
builds spark-submit's master URL from KUBERNETES_SERVICE_HOST/PORT, so those point at the API
server; spark-submit itself (a JVM on our Spark jars) takes its credentials from KUBECONFIG.

Under kwok no container runs: the driver pod is marked Running but never starts executors, so the
real operator never writes `status.executorState`. `ExecutorStandIn` stands in for the driver's
executor allocation only: it creates the executor pods a driver would (labelled like Spark's,
owned by the driver pod), kwok runs them, and the real operator reports them.
`set_pod_terminated` marks a pod Failed/Succeeded the way a kubelet would (kwok's pod-ready stage
only selects Pending pods, so it leaves that status alone).
"""

from __future__ import annotations

import datetime
import logging
import os
import subprocess
import threading
import time
import urllib.parse
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from federator.devcluster.delegates import SparkOperatorBuild
from federator.devcluster.harness import stop_group
from federator.devcluster.launcher import ControlPlane

log = logging.getLogger(__name__)

READY_LINE = '"Starting workers","controller":"sparkapplication"'
SPARK_APPS = "/apis/sparkoperator.k8s.io/v1beta2/namespaces/{ns}/sparkapplications"
PODS = "/api/v1/namespaces/{ns}/pods"
STOP_GRACE_SECONDS = 10.0


def operator_args(namespaces: Sequence[str]) -> list[str]:
    """`spark-operator controller start` for the given namespaces, nothing listening."""
    return [
        "controller",
        "start",
        f"--namespaces={','.join(namespaces)}",
        "--leader-election=false",
        "--metrics-bind-address=0",
        "--health-probe-bind-address=0",
        "--pprof-bind-address=0",
        "--driver-pod-creation-grace-period=10s",
        "--zap-log-level=info",
    ]


def operator_env(
    base: Mapping[str, str], built: SparkOperatorBuild, server: str, kubeconfig: Path
) -> dict[str, str]:
    """The operator's environment: the API server as its 'in-cluster' service, our SPARK_HOME."""
    url = urllib.parse.urlsplit(server)
    env = dict(base)
    env.update(
        KUBERNETES_SERVICE_HOST=url.hostname or "127.0.0.1",
        KUBERNETES_SERVICE_PORT=str(url.port or 443),
        SPARK_HOME=str(built.spark_home),
        KUBECONFIG=str(kubeconfig),
    )
    return env


class SparkOperatorProcess:
    """The real spark-operator as a subprocess (own process group), with its log."""

    def __init__(
        self, built: SparkOperatorBuild, plane: ControlPlane, namespaces: Sequence[str], log: Path
    ) -> None:
        self.built, self.plane, self.log = built, plane, log
        self.namespaces = list(namespaces)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> None:
        """Start it and wait until its SparkApplication controller runs its workers."""
        env = operator_env(os.environ, self.built, self.plane.server, self.plane.kubeconfig)
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [str(self.built.binary), *operator_args(self.namespaces)],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while READY_LINE not in self.log.read_text(errors="replace"):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                tail = self.log.read_text(errors="replace")[-3000:]
                self.stop()
                raise RuntimeError(f"spark-operator did not start its workers:\n{tail}")
            time.sleep(0.1)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        """SIGTERM its process group (spark-submit JVMs included), SIGKILL after a grace."""
        if self.proc is None:
            return
        stop_group(self.proc, STOP_GRACE_SECONDS)
        self.proc = None


def executor_pods(app: Mapping[str, Any], driver: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The executor pods a Spark driver would create for `app` (pure; unit-tested)."""
    spec = app.get("spec") or {}
    executor = spec.get("executor") or {}
    count = int(executor.get("instances") or 1)
    meta = driver.get("metadata") or {}
    driver_labels = meta.get("labels") or {}
    # Spark gives executors the driver's labels (the operator's app-name and submission-id, by
    # which it finds them) with spark-role=executor.
    labels = {**driver_labels, "spark-role": "executor"}
    app_id = str(driver_labels.get("spark-app-selector") or meta.get("name", "spark"))
    image = executor.get("image") or spec.get("image") or "spark:placeholder"
    return [
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": f"{app_id[:40]}-exec-{index}",
                "namespace": meta.get("namespace"),
                "labels": {**labels, "spark-exec-id": str(index)},
                "ownerReferences": [
                    {
                        "apiVersion": "v1",
                        "kind": "Pod",
                        "name": meta.get("name"),
                        "uid": meta.get("uid"),
                        "controller": True,
                    }
                ],
            },
            "spec": {
                "restartPolicy": "Never",
                "containers": [{"name": "spark-kubernetes-executor", "image": image}],
            },
        }
        for index in range(1, count + 1)
    ]


class ExecutorStandIn:
    """Creates the executor pods of every RUNNING SparkApplication's driver (see module doc).

    Only drivers in phase Running get executors (a Failed or deleted driver gets none; its
    executors are garbage-collected with it). `paused` apps (by name) get none: that is how a
    test shows a RUNNING application without executors.
    """

    def __init__(self, plane: ControlPlane, namespaces: Sequence[str], interval: float = 0.5):
        self.plane, self.namespaces, self.interval = plane, list(namespaces), interval
        self.paused: set[str] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def step(self) -> int:
        """One pass; returns how many executor pods were created."""
        created = 0
        for ns in self.namespaces:
            status, apps = self.plane.request("GET", SPARK_APPS.format(ns=ns))
            if status != 200:
                continue
            for app in apps.get("items") or []:
                created += self._ensure(ns, app)
        return created

    def _ensure(self, ns: str, app: Mapping[str, Any]) -> int:
        name = app["metadata"]["name"]
        state = ((app.get("status") or {}).get("applicationState") or {}).get("state")
        pod_name = ((app.get("status") or {}).get("driverInfo") or {}).get("podName")
        if state != "RUNNING" or not pod_name or name in self.paused:
            return 0
        status, driver = self.plane.request("GET", f"{PODS.format(ns=ns)}/{pod_name}")
        if status != 200 or (driver.get("status") or {}).get("phase") != "Running":
            return 0
        created = 0
        for pod in executor_pods(app, driver):
            path = f"{PODS.format(ns=ns)}/{pod['metadata']['name']}"
            if self.plane.request("GET", path)[0] == 200:
                continue
            code, body = self.plane.request("POST", PODS.format(ns=ns), pod)
            if code == 201:
                created += 1
            elif code != 409:
                log.warning("creating executor pod %s failed (%s): %s", path, code, body)
        return created

    def run_in_thread(self) -> None:
        def loop() -> None:
            while not self._stop.wait(self.interval):
                try:
                    self.step()
                except Exception:  # keep standing in; the test's deadline reports the effect
                    log.exception("executor stand-in pass failed")

        self._thread = threading.Thread(target=loop, name="executor-stand-in", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None


def set_pod_terminated(
    plane: ControlPlane, ns: str, name: str, phase: str = "Failed", exit_code: int = 1
) -> None:
    """Mark a pod terminated the way a kubelet would: phase and a terminated container."""
    status, pod = plane.request("GET", f"{PODS.format(ns=ns)}/{name}")
    if status != 200:
        raise RuntimeError(f"pod {ns}/{name} not found ({status}): {pod}")
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    succeeded = phase == "Succeeded"
    terminated = {
        "exitCode": 0 if succeeded else exit_code,
        "reason": "Completed" if succeeded else "Error",
        "startedAt": now,
        "finishedAt": now,
    }
    patch = {
        "status": {
            "phase": phase,
            "conditions": [{"type": "Ready", "status": "False", "lastTransitionTime": now}],
            "containerStatuses": [
                {
                    "name": pod["spec"]["containers"][0]["name"],
                    "image": pod["spec"]["containers"][0].get("image", ""),
                    "imageID": "",
                    "ready": False,
                    "restartCount": 0,
                    "state": {"terminated": terminated},
                }
            ],
        }
    }
    code, body = plane.request(
        "PATCH",
        f"{PODS.format(ns=ns)}/{name}/status",
        patch,
        content_type="application/merge-patch+json",
    )
    if code != 200:
        raise RuntimeError(f"marking pod {ns}/{name} {phase} failed ({code}): {body}")
