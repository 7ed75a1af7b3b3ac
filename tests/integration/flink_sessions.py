"""What the two FlinkSessionJob test modules share (test_flink_session on the simulator,
test_real_flink_session on the real Flink operator): the platform's session cluster, an
Application with one streamlet on it, and the Application's FlinkSessionJob entry."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def session_cluster(
    namespace: str, name: str, configuration: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The platform team's session cluster: a FlinkDeployment without a job."""
    spec: dict[str, Any] = {
        "image": "flink:1.17",
        "flinkVersion": "v1_17",
        "serviceAccount": "flink",
        "jobManager": {"resource": {"memory": "1024m", "cpu": 1}},
        "taskManager": {"resource": {"memory": "1024m", "cpu": 1}},
    }
    if configuration:
        spec["flinkConfiguration"] = dict(configuration)
    return {
        "apiVersion": "flink.apache.org/v1beta1",
        "kind": "FlinkDeployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def application(namespace: str, name: str, session: str, job: Mapping[str, Any]) -> dict[str, Any]:
    """An Application whose one streamlet, `score`, runs `job` on the session cluster."""
    return {
        "apiVersion": "federator.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "deletionPolicy": "Delete",
            "streamlets": [
                {
                    "name": "score",
                    "runtime": "flink",
                    "flinkSession": session,
                    "image": "registry.example.com/score:1",
                    "outlets": ["out"],
                    "flink": {"job": dict(job)},
                }
            ],
        },
    }


def job_entry(app: Mapping[str, Any]) -> tuple[Any, dict[str, Any]] | None:
    """The Application's phase and its FlinkSessionJob's status.children entry, if listed."""
    status = app.get("status") or {}
    entry = next(
        (c for c in status.get("children") or [] if c.get("kind") == "FlinkSessionJob"), None
    )
    return None if entry is None else (status.get("phase"), dict(entry))
