"""Bodies shaped like what each real delegate operator writes (field names checked against the
CRDs in third_party/delegate-crds), one builder per kind, and the row/check helpers of the state
tables: the tables themselves are in tests/unit/test_delegate_<module>.py, one per delegate."""

from __future__ import annotations

import copy
import json
from typing import Any

from federator.core.health import ChildHealth, Health

# --------------------------------------------------------------------------------------------------
# Realistic bodies, one builder per kind; tests patch single fields into copies.
# --------------------------------------------------------------------------------------------------

T0 = "2024-05-01T10:00:00Z"
SPARK_SUBMISSION = "0d5e2c5a-6a7e-4f7b-9d0e-3c1b2a4f5e6d"


def patched(body: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of ``body`` with dotted-path ``changes`` applied (value ``...`` deletes)."""
    result = copy.deepcopy(body)
    for path, value in changes.items():
        *parents, leaf = path.split(".")
        node = result
        for key in parents:
            node = node.setdefault(key, {})
        if value is ...:
            node.pop(leaf, None)
        else:
            node[leaf] = value
    return result


def kafka_topic(**changes: Any) -> dict[str, Any]:
    """A Strimzi v1 KafkaTopic as the unidirectional topic operator leaves a ready topic."""
    body = {
        "apiVersion": "kafka.strimzi.io/v1",
        "kind": "KafkaTopic",
        "metadata": {
            "name": "call-record-aggregator.merge.out",
            "namespace": "kafka",
            "generation": 3,
            "resourceVersion": "48213",
            "uid": "5c1d9f0e-2a3b-4c5d-8e9f-0a1b2c3d4e5f",
            "labels": {
                "strimzi.io/cluster": "my-cluster",
                "app.kubernetes.io/managed-by": "federator",
                "federator.io/application": "call-record-aggregator",
            },
            "finalizers": ["strimzi.io/topic-operator"],
        },
        "spec": {
            "topicName": "call-record-aggregator.merge.out",
            "partitions": 53,
            "replicas": 2,
            "config": {"retention.ms": "7200000"},
        },
        "status": {
            "conditions": [
                {"type": "Ready", "status": "True", "lastTransitionTime": "2024-05-01T10:00:01.0Z"}
            ],
            "observedGeneration": 3,
            "topicName": "call-record-aggregator.merge.out",
            "topicId": "tBtqZ3tUQ1m3S2U7J2jQ0A",
        },
    }
    return patched(body, {k.replace("__", "."): v for k, v in changes.items()})


def spark_app(**changes: Any) -> dict[str, Any]:
    """A Kubeflow SparkApplication, RUNNING with both of its executors."""
    body = {
        "apiVersion": "sparkoperator.k8s.io/v1beta2",
        "kind": "SparkApplication",
        "metadata": {
            "name": "call-record-aggregator-cdr-aggregator",
            "namespace": "lightbend",
            "generation": 2,
            "labels": {"federator.io/streamlet": "cdr-aggregator"},
        },
        "spec": {
            "type": "Scala",
            "mode": "cluster",
            "image": "registry.example.com/cdr/aggregator:1.4.2",
            "mainClass": "com.example.cdr.Aggregator",
            "mainApplicationFile": "local:///opt/spark/jars/aggregator.jar",
            "sparkVersion": "3.5.1",
            "restartPolicy": {"type": "Always"},
            "driver": {"cores": 1, "memory": "512m", "serviceAccount": "spark"},
            "executor": {"instances": 2, "cores": 1, "memory": "1g"},
        },
        "status": {
            "applicationState": {"state": "RUNNING"},
            "driverInfo": {
                "podName": "call-record-aggregator-cdr-aggregator-driver",
                "webUIAddress": "10.96.14.2:4040",
                "webUIPort": 4040,
                "webUIServiceName": "call-record-aggregator-cdr-aggregator-ui-svc",
            },
            "executionAttempts": 1,
            "executorState": {
                "call-record-aggregator-cdr-aggregator-8c1d2e8f9a0b1c2d-exec-1": "RUNNING",
                "call-record-aggregator-cdr-aggregator-8c1d2e8f9a0b1c2d-exec-2": "RUNNING",
            },
            "lastSubmissionAttemptTime": "2024-05-01T10:00:05Z",
            "sparkApplicationId": "spark-3c5a5b0e7f9d4c1e9b0f6a2d8e4c7b11",
            "submissionAttempts": 1,
            "submissionID": "0d5e2c5a-6a7e-4f7b-9d0e-3c1b2a4f5e6d",
            "terminationTime": None,
        },
    }
    return patched(body, {k.replace("__", "."): v for k, v in changes.items()})


def _last_reconciled_spec(generation: int) -> str:
    return json.dumps(
        {
            "spec": {
                "job": {"jarURI": "local:///opt/flink/usrlib/cdr.jar", "parallelism": 2},
                "flinkVersion": "v1_18",
            },
            "resource_metadata": {
                "apiVersion": "flink.apache.org/v1beta1",
                "metadata": {"generation": generation},
                "firstDeployment": generation == 1,
            },
        }
    )


def flink_deployment(**changes: Any) -> dict[str, Any]:
    """An Apache FlinkDeployment in application mode, STABLE with its job RUNNING."""
    body = {
        "apiVersion": "flink.apache.org/v1beta1",
        "kind": "FlinkDeployment",
        "metadata": {"name": "call-record-aggregator-cdr-merge", "namespace": "lightbend"},
        "spec": {
            "image": "registry.example.com/cdr/merge:1.0.0",
            "flinkVersion": "v1_18",
            "serviceAccount": "flink",
            "flinkConfiguration": {"taskmanager.numberOfTaskSlots": "2"},
            "jobManager": {"resource": {"memory": "2048m", "cpu": 1}},
            "taskManager": {"resource": {"memory": "2048m", "cpu": 1}},
            "job": {
                "jarURI": "local:///opt/flink/usrlib/cdr.jar",
                "parallelism": 2,
                "upgradeMode": "savepoint",
                "state": "running",
            },
        },
        "status": {
            "clusterInfo": {
                "flink-revision": "d8f5d1e @ 2024-01-12T12:05:43+01:00",
                "flink-version": "1.18.1",
                "total-cpu": "2.0",
                "total-memory": "4294967296",
            },
            "jobManagerDeploymentStatus": "READY",
            "jobStatus": {
                "jobId": "7c9f3b9e0d8a4c2f1e6b5a4d3c2b1a09",
                "jobName": "cdr-merge",
                "state": "RUNNING",
                "startTime": "1714557605000",
                "updateTime": "1714557630000",
                "checkpointInfo": {"lastPeriodicCheckpointTimestamp": 0},
                "savepointInfo": {"lastPeriodicSavepointTimestamp": 0, "savepointHistory": []},
            },
            "lifecycleState": "STABLE",
            "observedGeneration": 2,
            "reconciliationStatus": {
                "lastReconciledSpec": _last_reconciled_spec(2),
                "lastStableSpec": _last_reconciled_spec(2),
                "reconciliationTimestamp": 1714557600000,
                "state": "DEPLOYED",
            },
            "taskManager": {
                "labelSelector": "component=taskmanager,app=call-record-aggregator-cdr-merge",
                "replicas": 1,
            },
        },
    }
    body["metadata"]["generation"] = 2  # type: ignore[index]
    return patched(body, {k.replace("__", "."): v for k, v in changes.items()})


APACHE_ERROR = json.dumps(
    {
        "type": "org.apache.flink.kubernetes.operator.exception.ReconciliationException",
        "message": "org.apache.flink.configuration.IllegalConfigurationException: "
        "Invalid log4j configuration",
        "throwableList": [],
    }
)


APACHE_JOB_FAILED_ERROR = json.dumps(
    {
        "type": "org.apache.flink.util.SerializedThrowable",
        "message": "org.apache.flink.runtime.JobException: Recovery is suppressed by "
        "NoRestartBackoffTimeStrategy",
        "additionalMetadata": {},
        "throwableList": [
            {
                "type": "org.apache.flink.util.SerializedThrowable",
                "message": "java.lang.RuntimeException: simulated job failure: "
                "/tmp/real-flink0/fraud-detection-scorer.fail appeared",
                "additionalMetadata": {},
            }
        ],
    }
)


def lyft_app(**changes: Any) -> dict[str, Any]:
    """A Lyft FlinkApplication, phase Running with its job RUNNING (as in Lyft's quick start)."""
    body = {
        "apiVersion": "flink.k8s.io/v1beta1",
        "kind": "FlinkApplication",
        "metadata": {
            "name": "call-record-aggregator-cdr-window",
            "namespace": "lightbend",
            "generation": 1,
            "finalizers": ["job.finalizers.flink.k8s.io"],
        },
        "spec": {
            "image": "registry.example.com/cdr/window:2.0.0",
            "jarName": "cdr-window-2.0.0.jar",
            "entryClass": "com.example.cdr.Window",
            "flinkVersion": "1.16",
            "parallelism": 3,
            "deleteMode": "Savepoint",
            "jobManagerConfig": {"replicas": 1},
            "taskManagerConfig": {"taskSlots": 3},
        },
        "status": {
            "clusterStatus": {
                "availableTaskSlots": 0,
                "health": "Green",
                "healthyTaskManagers": 1,
                "numberOfTaskManagers": 1,
                "numberOfTaskSlots": 3,
            },
            "deployHash": "d9f8a6a8",
            "failedDeployHash": "",
            "jobStatus": {
                "completedCheckpointCount": 12,
                "entryClass": "com.example.cdr.Window",
                "failedCheckpointCount": 0,
                "health": "Green",
                "jarName": "cdr-window-2.0.0.jar",
                "jobID": "acd232a002dd5204669d1041736b8fa0",
                "jobRestartCount": 0,
                "parallelism": 3,
                "startTime": "2024-05-01T10:00:59Z",
                "state": "RUNNING",
            },
            "lastSeenError": None,
            "lastUpdatedAt": "2024-05-01T10:01:09Z",
            "phase": "Running",
            "retryCount": 0,
        },
    }
    return patched(body, {k.replace("__", "."): v for k, v in changes.items()})


def deployment(**changes: Any) -> dict[str, Any]:
    """An apps/v1 Deployment with its rollout complete."""
    body = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "call-record-aggregator-cdr-ingress", "generation": 4},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "cdr-ingress"}}},
        "status": {
            "observedGeneration": 4,
            "replicas": 2,
            "updatedReplicas": 2,
            "readyReplicas": 2,
            "availableReplicas": 2,
            "conditions": [
                {
                    "type": "Available",
                    "status": "True",
                    "reason": "MinimumReplicasAvailable",
                    "message": "Deployment has minimum availability.",
                },
                {
                    "type": "Progressing",
                    "status": "True",
                    "reason": "NewReplicaSetAvailable",
                    "message": 'ReplicaSet "cdr-ingress-6d4cf56db6" has successfully progressed.',
                },
            ],
        },
    }
    return patched(body, {k.replace("__", "."): v for k, v in changes.items()})


def row(
    body: dict[str, Any], expected: Health, reason: str, in_message: str = ""
) -> tuple[dict[str, Any], Health, str, str]:
    return body, expected, reason, in_message


def check(result: ChildHealth, expected: Health, reason: str, in_message: str) -> None:
    assert (result.health, result.reason) == (expected, reason), result
    assert in_message in result.message, result
