"""Health adapters and aggregation (federator.core.health, DESIGN §5).

Aspects covered:

- vocabulary: Argo CD's priority order and ``worst``;
- one table per delegate kind, with bodies shaped like what the real operators write (field names
  checked against the CRDs in third_party/delegate-crds): every row of the DESIGN §5 table, among
  them KafkaTopic with a stale generation, Spark RUNNING with too few executors, Spark after a spec
  change before its submissionID changes, Lyft phase Running with a FAILED job, Apache
  ROLLED_BACK, Apache DEPLOYED with the JobManager DEPLOYING;
- the dispatcher: not found, delegate not installed, unknown kind, non-object bodies;
- aggregation: phase is the worst child, counts, ``Unready: a, b and 1 more``, Invalid, Suspended,
  Stalled naming degraded children, DelegatesAvailable naming the operators to install;
- condition merging without lastTransitionTime churn, and ``status_changed``;
- properties: ``assess`` and ``aggregate`` never raise, whatever JSON they are given.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from federator.core import health
from federator.core.health import (
    AppHealth,
    ApplyMark,
    ChildHealth,
    ChildReport,
    Condition,
    Health,
)

# --------------------------------------------------------------------------------------------------
# Realistic bodies, one builder per kind; tests patch single fields into copies.
# --------------------------------------------------------------------------------------------------

T0 = "2024-05-01T10:00:00Z"


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


# --------------------------------------------------------------------------------------------------
# Vocabulary
# --------------------------------------------------------------------------------------------------


class TestVocabulary:
    def test_order_is_argo_cds(self) -> None:
        names = [h.value for h in sorted(Health, key=lambda h: h.priority)]
        assert names == ["Healthy", "Suspended", "Progressing", "Missing", "Degraded", "Unknown"]

    @pytest.mark.parametrize(
        ("healths", "expected"),
        [
            ([Health.HEALTHY, Health.SUSPENDED], Health.SUSPENDED),
            ([Health.DEGRADED, Health.PROGRESSING, Health.MISSING], Health.DEGRADED),
            ([Health.UNKNOWN, Health.DEGRADED], Health.UNKNOWN),
            ([Health.MISSING, Health.PROGRESSING], Health.MISSING),
            ([], Health.HEALTHY),
        ],
        ids=["suspended>healthy", "degraded>missing", "unknown>degraded", "missing>prog", "empty"],
    )
    def test_worst(self, healths: list[Health], expected: Health) -> None:
        assert health.worst(iter(healths)) is expected

    def test_health_is_a_str(self) -> None:
        assert isinstance(Health.DEGRADED, str)
        assert Health("Degraded") is Health.DEGRADED
        assert f"{Health.MISSING}" == "Missing"


# --------------------------------------------------------------------------------------------------
# KafkaTopic
# --------------------------------------------------------------------------------------------------

KAFKA_NOT_READY = {
    "type": "Ready",
    "status": "False",
    "reason": "KafkaError",
    "message": "org.apache.kafka.common.errors.InvalidReplicationFactorException: "
    "Replication factor: 3 larger than available brokers: 1.",
    "lastTransitionTime": "2024-05-01T10:00:01.0Z",
}

KAFKA_TOPIC_TABLE = [
    row(kafka_topic(), Health.HEALTHY, "Ready"),
    row(
        kafka_topic(
            status__conditions=[
                {"type": "Unmanaged", "status": "True", "lastTransitionTime": T0},
            ]
        ),
        Health.HEALTHY,
        "Unmanaged",
    ),
    row(kafka_topic(status=...), Health.PROGRESSING, "AwaitingStatus"),
    row(kafka_topic(status={}), Health.PROGRESSING, "AwaitingStatus"),
    row(
        kafka_topic(metadata__generation=4),
        Health.PROGRESSING,
        "StaleGeneration",
        "observedGeneration 3, spec is generation 4",
    ),
    row(
        kafka_topic(status__observedGeneration=...),
        Health.PROGRESSING,
        "StaleGeneration",
        "no observedGeneration",
    ),
    row(
        # A stale failure belongs to the previous spec: wait for the operator, not Degraded.
        kafka_topic(metadata__generation=4, status__conditions=[KAFKA_NOT_READY]),
        Health.PROGRESSING,
        "StaleGeneration",
    ),
    row(
        kafka_topic(status__replicasChange={"targetReplicas": 3, "state": "pending"}),
        Health.PROGRESSING,
        "ReplicasChange",
        "replication factor change to 3 is pending",
    ),
    row(
        kafka_topic(
            status__replicasChange={
                "targetReplicas": 3,
                "state": "ongoing",
                "sessionId": "8911ca89-351f-888-8d0f-9aade00e098h",
            }
        ),
        Health.PROGRESSING,
        "ReplicasChange",
        "is ongoing",
    ),
    row(
        kafka_topic(status__conditions=[KAFKA_NOT_READY]),
        Health.DEGRADED,
        "KafkaError",
        "Replication factor: 3 larger than available brokers: 1.",
    ),
    row(
        kafka_topic(
            status__conditions=[
                {"type": "ReconciliationPaused", "status": "True", "lastTransitionTime": T0}
            ],
            metadata__generation=9,
        ),
        Health.SUSPENDED,
        "ReconciliationPaused",
    ),
    row(
        kafka_topic(status__conditions=[{"type": "Ready", "status": "Unknown"}]),
        Health.PROGRESSING,
        "AwaitingReady",
    ),
    row(kafka_topic(status__conditions=[]), Health.PROGRESSING, "AwaitingReady"),
]
KAFKA_TOPIC_IDS = [
    "ready",
    "unmanaged",
    "no-status",
    "empty-status",
    "stale-generation",
    "no-observed-generation",
    "stale-generation-with-old-failure",
    "replicas-change-pending",
    "replicas-change-ongoing",
    "ready-false",
    "reconciliation-paused",
    "ready-unknown",
    "no-conditions",
]


class TestKafkaTopic:
    @pytest.mark.parametrize(
        ("body", "expected", "reason", "msg"), KAFKA_TOPIC_TABLE, ids=KAFKA_TOPIC_IDS
    )
    def test_table(self, body: dict[str, Any], expected: Health, reason: str, msg: str) -> None:
        check(health.kafka_topic(body), expected, reason, msg)

    def test_v1beta2_has_the_same_status(self) -> None:
        body = kafka_topic(apiVersion="kafka.strimzi.io/v1beta2")
        assert health.assess("KafkaTopic", body).health is Health.HEALTHY


# --------------------------------------------------------------------------------------------------
# SparkApplication
# --------------------------------------------------------------------------------------------------

SPARK_SUBMISSION = "0d5e2c5a-6a7e-4f7b-9d0e-3c1b2a4f5e6d"
SPARK_EXECUTORS_ONE_PENDING = {
    "call-record-aggregator-cdr-aggregator-8c1d2e8f9a0b1c2d-exec-1": "RUNNING",
    "call-record-aggregator-cdr-aggregator-8c1d2e8f9a0b1c2d-exec-2": "PENDING",
}


def spark_state(state: str, error: str | None = None, **changes: Any) -> dict[str, Any]:
    app_state: dict[str, Any] = {"state": state}
    if error is not None:
        app_state["errorMessage"] = error
    return spark_app(status__applicationState=app_state, **changes)


SPARK_TABLE = [
    row(spark_app(), Health.HEALTHY, "RUNNING", "2/2 executors running"),
    row(
        spark_app(status__executorState=SPARK_EXECUTORS_ONE_PENDING),
        Health.PROGRESSING,
        "ExecutorsPending",
        "1/2 executors running",
    ),
    row(spark_app(status__executorState=...), Health.PROGRESSING, "ExecutorsPending", "0/2"),
    row(spark_app(spec__executor__instances=3), Health.PROGRESSING, "ExecutorsPending", "2/3"),
    row(spark_app(status=...), Health.PROGRESSING, "AwaitingSubmission"),
    row(spark_state(""), Health.PROGRESSING, "AwaitingSubmission"),
    *[
        row(spark_state(state, executorState=None), Health.PROGRESSING, state)
        for state in (
            "SUBMITTED",
            "PENDING_RERUN",
            "INVALIDATING",
            "SUCCEEDING",
            "RESUMING",
            "SUSPENDING",
            "UNKNOWN",
        )
    ],
    row(
        spark_state("FAILED", "driver container failed with ExitCode: 1, Reason: Error"),
        Health.DEGRADED,
        "FAILED",
        "driver container failed with ExitCode: 1",
    ),
    row(
        spark_state(
            "SUBMISSION_FAILED",
            "failed to run spark-submit for SparkApplication lightbend/cdr: exit status 1",
        ),
        Health.DEGRADED,
        "SUBMISSION_FAILED",
        "failed to run spark-submit",
    ),
    row(
        spark_state("FAILING", "driver pod failed"),
        Health.DEGRADED,
        "FAILING",
        "driver pod failed",
    ),
    row(spark_state("FAILED"), Health.DEGRADED, "FAILED", "reports FAILED"),
    row(
        spark_state("COMPLETED"),
        Health.DEGRADED,
        "COMPLETED",
        "a streaming job must not finish",
    ),
    row(spark_state("SUSPENDED"), Health.SUSPENDED, "SUSPENDED"),
    row(spark_state("EXPLODED"), Health.UNKNOWN, "UnrecognisedState", "'EXPLODED'"),
    row(spark_app(status__applicationState={"state": 7}), Health.UNKNOWN, "MalformedStatus"),
]
SPARK_IDS = [
    "running-all-executors",
    "running-too-few-executors",
    "running-no-executor-state",
    "running-fewer-than-instances",
    "no-status",
    "new",
    *[
        f"{s.lower()}"
        for s in (
            "SUBMITTED",
            "PENDING_RERUN",
            "INVALIDATING",
            "SUCCEEDING",
            "RESUMING",
            "SUSPENDING",
            "UNKNOWN",
        )
    ],
    "failed",
    "submission-failed",
    "failing",
    "failed-without-message",
    "completed",
    "suspended",
    "unrecognised-state",
    "state-not-a-string",
]


class TestSparkApplication:
    @pytest.mark.parametrize(("body", "expected", "reason", "msg"), SPARK_TABLE, ids=SPARK_IDS)
    def test_table(self, body: dict[str, Any], expected: Health, reason: str, msg: str) -> None:
        check(health.spark_application(body), expected, reason, msg)

    @pytest.mark.parametrize(
        ("body", "expected", "reason"),
        [
            (spark_app(), Health.PROGRESSING, "AwaitingResubmission"),
            (spark_state("FAILED", "old failure"), Health.PROGRESSING, "AwaitingResubmission"),
            (spark_state("SUSPENDED"), Health.SUSPENDED, "SUSPENDED"),
            (
                spark_app(status__submissionID="f3a9c0de-1111-4b2a-9c3d-222233334444"),
                Health.HEALTHY,
                "RUNNING",
            ),
            (
                spark_state(
                    "SUBMISSION_FAILED",
                    "bad image",
                    status__submissionID="f3a9c0de-1111-4b2a-9c3d-222233334444",
                ),
                Health.DEGRADED,
                "SUBMISSION_FAILED",
            ),
        ],
        ids=[
            "running-same-submission",
            "failed-same-submission",
            "suspended-same-submission",
            "running-new-submission",
            "new-submission-failed",
        ],
    )
    def test_after_spec_change(self, body: dict[str, Any], expected: Health, reason: str) -> None:
        mark = ApplyMark(spark_submission_id=SPARK_SUBMISSION)
        result = health.spark_application(body, mark)
        assert (result.health, result.reason) == (expected, reason)

    def test_mark_of_unsubmitted_app_waits_for_first_submission(self) -> None:
        mark = ApplyMark(spark_submission_id="")
        body = spark_state("", status__submissionID=..., status__executorState=...)
        assert health.assess("SparkApplication", body, mark=mark).reason == "AwaitingResubmission"
        body = spark_state("SUBMITTED", status__executorState=...)
        assert health.assess("SparkApplication", body, mark=mark).reason == "SUBMITTED"

    def test_awaiting_resubmission_shows_the_old_error(self) -> None:
        mark = ApplyMark(spark_submission_id=SPARK_SUBMISSION)
        result = health.spark_application(spark_state("FAILED", "OOMKilled"), mark)
        assert "OOMKilled" in result.message

    @pytest.mark.parametrize(
        ("spec_changes", "expected"),
        [
            ({"spec__executor__instances": ...}, Health.HEALTHY),
            (
                {
                    "spec__executor__instances": ...,
                    "spec__sparkConf": {"spark.executor.instances": "3"},
                },
                Health.PROGRESSING,
            ),
        ],
        ids=["operator-default-one", "spark-conf-instances"],
    )
    def test_expected_executors_defaults(
        self, spec_changes: dict[str, Any], expected: Health
    ) -> None:
        body = spark_app(status__executorState=SPARK_EXECUTORS_ONE_PENDING, **spec_changes)
        assert health.spark_application(body).health is expected

    def test_dynamic_allocation_expects_the_minimum(self) -> None:
        body = spark_app(
            spec__dynamicAllocation={"enabled": True, "minExecutors": 1, "maxExecutors": 8},
            status__executorState=SPARK_EXECUTORS_ONE_PENDING,
        )
        assert health.spark_application(body).health is Health.HEALTHY

    def test_error_messages_are_clipped(self) -> None:
        trace = "java.lang.RuntimeException: boom\n" + "\tat com.example.Frame\n" * 500
        result = health.spark_application(spark_state("FAILED", trace))
        # Too long to show whole: the stack frames go first, the cause stays.
        assert result.message == "java.lang.RuntimeException: boom"
        result = health.spark_application(spark_state("FAILED", "x" * 5000))
        assert len(result.message) == health.MAX_CHILD_MESSAGE


# --------------------------------------------------------------------------------------------------
# FlinkDeployment (Apache)
# --------------------------------------------------------------------------------------------------

FLINK_DEPLOYMENT_TABLE = [
    row(flink_deployment(), Health.HEALTHY, "STABLE", "job RUNNING"),
    row(flink_deployment(status__lifecycleState="DEPLOYED"), Health.HEALTHY, "DEPLOYED"),
    row(flink_deployment(status=...), Health.PROGRESSING, "AwaitingStatus"),
    row(
        flink_deployment(metadata__generation=3),
        Health.PROGRESSING,
        "StaleGeneration",
        "observedGeneration 2, spec is generation 3",
    ),
    row(
        flink_deployment(metadata__generation=3, status__error=APACHE_ERROR),
        Health.DEGRADED,
        "FlinkError",
        "IllegalConfigurationException: Invalid log4j configuration",
    ),
    row(
        # Older operators carry the generation only inside lastReconciledSpec.
        flink_deployment(status__observedGeneration=..., metadata__generation=3),
        Health.PROGRESSING,
        "StaleGeneration",
        "observedGeneration 2",
    ),
    row(
        flink_deployment(status__observedGeneration=...),
        Health.HEALTHY,
        "STABLE",
    ),
    *[
        row(
            flink_deployment(
                status__lifecycleState=state,
                status__jobManagerDeploymentStatus="DEPLOYING",
                status__jobStatus__state=None,
            ),
            Health.PROGRESSING,
            state,
        )
        for state in ("CREATED", "UPGRADING", "ROLLING_BACK")
    ],
    row(
        flink_deployment(
            status__lifecycleState="DEPLOYED",
            status__jobManagerDeploymentStatus="DEPLOYING",
            status__jobStatus__state="RECONCILING",
        ),
        Health.PROGRESSING,
        "DEPLOYING",
        "JobManager is DEPLOYING",
    ),
    row(
        flink_deployment(
            status__lifecycleState="DEPLOYED",
            status__jobManagerDeploymentStatus="DEPLOYED_NOT_READY",
        ),
        Health.PROGRESSING,
        "DEPLOYED_NOT_READY",
    ),
    row(
        flink_deployment(status__jobManagerDeploymentStatus="MISSING"),
        Health.PROGRESSING,
        "MISSING",
    ),
    row(
        flink_deployment(status__lifecycleState="DEPLOYED", status__jobStatus__state="RECONCILING"),
        Health.PROGRESSING,
        "RECONCILING",
        "job RECONCILING",
    ),
    row(
        flink_deployment(status__jobStatus__state="RESTARTING"),
        Health.PROGRESSING,
        "RESTARTING",
    ),
    row(
        flink_deployment(
            status__lifecycleState="FAILED",
            status__jobStatus__state="FAILED",
            status__error=APACHE_ERROR,
        ),
        Health.DEGRADED,
        "FAILED",
        "Invalid log4j configuration",
    ),
    row(
        # As the real operator 1.7.0 wrote it for a job that threw (test_real_flink).
        flink_deployment(
            status__lifecycleState="FAILED",
            status__jobStatus__state="FAILED",
            status__error=APACHE_JOB_FAILED_ERROR,
        ),
        Health.DEGRADED,
        "FAILED",
        "NoRestartBackoffTimeStrategy (caused by java.lang.RuntimeException: simulated job failure",
    ),
    row(
        flink_deployment(
            status__lifecycleState="ROLLED_BACK", status__reconciliationStatus__state="ROLLED_BACK"
        ),
        Health.DEGRADED,
        "ROLLED_BACK",
        "rolled back to the last stable spec",
    ),
    row(
        flink_deployment(status__jobManagerDeploymentStatus="ERROR"),
        Health.DEGRADED,
        "JobManagerError",
    ),
    row(
        flink_deployment(status__error="Job manager pod crashed: CrashLoopBackOff"),
        Health.DEGRADED,
        "FlinkError",
        "CrashLoopBackOff",
    ),
    row(flink_deployment(status__jobStatus__state="FAILING"), Health.DEGRADED, "JobFailing"),
    row(flink_deployment(status__jobStatus__state="FAILED"), Health.DEGRADED, "JobFailed"),
    row(flink_deployment(status__jobStatus__state="FINISHED"), Health.DEGRADED, "JobFinished"),
    row(
        flink_deployment(
            spec__job__state="suspended",
            status__lifecycleState="SUSPENDED",
            status__jobManagerDeploymentStatus="MISSING",
            status__jobStatus__state="FINISHED",
        ),
        Health.SUSPENDED,
        "SUSPENDED",
    ),
    row(
        flink_deployment(spec__job=..., status__jobStatus={}),
        Health.HEALTHY,
        "STABLE",
        "JobManager READY",
    ),
    row(flink_deployment(status__lifecycleState="EXOTIC"), Health.UNKNOWN, "UnrecognisedState"),
    row(flink_deployment(status__lifecycleState=...), Health.PROGRESSING, "AwaitingStatus"),
]
FLINK_DEPLOYMENT_IDS = [
    "stable",
    "deployed",
    "no-status",
    "stale-generation",
    "stale-generation-with-error",
    "stale-generation-from-last-reconciled-spec",
    "current-generation-from-last-reconciled-spec",
    "created",
    "upgrading",
    "rolling-back",
    "deployed-jm-deploying",
    "deployed-jm-not-ready",
    "jm-missing",
    "deployed-job-reconciling",
    "job-restarting",
    "failed",
    "failed-job-with-its-cause",
    "rolled-back",
    "jm-error",
    "status-error",
    "job-failing",
    "job-failed",
    "job-finished",
    "suspended",
    "session-cluster",
    "unrecognised-lifecycle",
    "no-lifecycle",
]


class TestFlinkDeployment:
    @pytest.mark.parametrize(
        ("body", "expected", "reason", "msg"), FLINK_DEPLOYMENT_TABLE, ids=FLINK_DEPLOYMENT_IDS
    )
    def test_table(self, body: dict[str, Any], expected: Health, reason: str, msg: str) -> None:
        check(health.flink_deployment(body), expected, reason, msg)

    def test_unparsable_error_is_shown_verbatim(self) -> None:
        result = health.flink_deployment(flink_deployment(status__error="{not json"))
        assert result.message == "{not json"


# --------------------------------------------------------------------------------------------------
# FlinkApplication (Lyft)
# --------------------------------------------------------------------------------------------------

LYFT_TABLE = [
    row(lyft_app(), Health.HEALTHY, "Running", "job RUNNING"),
    row(lyft_app(status=...), Health.PROGRESSING, "AwaitingDeploy"),
    row(lyft_app(status__phase="", status__deployHash=""), Health.PROGRESSING, "New"),
    *[
        row(lyft_app(status__phase=phase), Health.PROGRESSING, phase)
        for phase in (
            "Updating",
            "Rescaling",
            "ClusterStarting",
            "SubmittingJob",
            "Savepointing",
            "Cancelling",
            "Deleting",
            "Recovering",
            "DualRunning",
        )
    ],
    row(
        lyft_app(status__jobStatus__state="FAILED"),
        Health.DEGRADED,
        "JobFailed",
        "the Flink job is FAILED (phase Running)",
    ),
    row(lyft_app(status__jobStatus__state="FAILING"), Health.DEGRADED, "JobFailing"),
    row(lyft_app(status__jobStatus__state="FINISHED"), Health.DEGRADED, "JobFinished"),
    row(lyft_app(status__jobStatus__state="RESTARTING"), Health.PROGRESSING, "Running"),
    row(
        lyft_app(
            status__phase="DeployFailed",
            status__failedDeployHash="5e3c1a7b",
            status__rollbackHash="d9f8a6a8",
            status__reason="Failed to submit job: deploy timed out",
        ),
        Health.DEGRADED,
        "DeployFailed",
        "deploy timed out",
    ),
    row(
        lyft_app(
            status__phase="RollingBackJob",
            status__lastSeenError={
                "appError": "Job submission failed: NoClassDefFoundError",
                "method": "SubmitJob",
                "errorCode": "500",
                "isRetryable": False,
            },
        ),
        Health.DEGRADED,
        "RollingBackJob",
        "NoClassDefFoundError",
    ),
    row(
        lyft_app(status__failedDeployHash="5e3c1a7b"),
        Health.DEGRADED,
        "FailedDeployHash",
        "deploy 5e3c1a7b failed; running d9f8a6a8",
    ),
    row(lyft_app(status__phase="Teleporting"), Health.UNKNOWN, "UnrecognisedState"),
]
LYFT_IDS = [
    "running",
    "no-status",
    "new",
    "updating",
    "rescaling",
    "cluster-starting",
    "submitting-job",
    "savepointing",
    "cancelling",
    "deleting",
    "recovering",
    "dual-running",
    "running-job-failed",
    "running-job-failing",
    "running-job-finished",
    "running-job-restarting",
    "deploy-failed",
    "rolling-back-job",
    "failed-deploy-hash",
    "unrecognised-phase",
]


class TestFlinkApplication:
    @pytest.mark.parametrize(("body", "expected", "reason", "msg"), LYFT_TABLE, ids=LYFT_IDS)
    def test_table(self, body: dict[str, Any], expected: Health, reason: str, msg: str) -> None:
        check(health.flink_application(body), expected, reason, msg)

    @pytest.mark.parametrize(
        ("body", "expected", "reason"),
        [
            (lyft_app(), Health.PROGRESSING, "AwaitingDeploy"),
            (lyft_app(status__phase="Updating"), Health.PROGRESSING, "AwaitingDeploy"),
            (lyft_app(status__deployHash="0b7e44c2"), Health.HEALTHY, "Running"),
            (
                lyft_app(status__phase="DeployFailed", status__failedDeployHash="0b7e44c2"),
                Health.DEGRADED,
                "DeployFailed",
            ),
        ],
        ids=["running-old-hash", "updating-old-hash", "running-new-hash", "deploy-failed"],
    )
    def test_after_spec_change(self, body: dict[str, Any], expected: Health, reason: str) -> None:
        result = health.flink_application(body, ApplyMark(lyft_deploy_hash="d9f8a6a8"))
        assert (result.health, result.reason) == (expected, reason)


# --------------------------------------------------------------------------------------------------
# Deployment
# --------------------------------------------------------------------------------------------------

DEPLOYMENT_TABLE = [
    row(deployment(), Health.HEALTHY, "Available", "2/2"),
    row(deployment(status=...), Health.PROGRESSING, "AwaitingStatus"),
    row(deployment(metadata__generation=5), Health.PROGRESSING, "StaleGeneration"),
    row(
        deployment(status__updatedReplicas=1, status__availableReplicas=1),
        Health.PROGRESSING,
        "RolloutInProgress",
        "1 of 2 updated replicas",
    ),
    row(
        deployment(status__replicas=3),
        Health.PROGRESSING,
        "RolloutInProgress",
        "1 old replicas are pending termination",
    ),
    row(
        deployment(status__availableReplicas=1),
        Health.PROGRESSING,
        "RolloutInProgress",
        "1 of 2 updated replicas are available",
    ),
    row(
        deployment(
            status__availableReplicas=1,
            status__conditions=[
                {
                    "type": "Progressing",
                    "status": "False",
                    "reason": "ProgressDeadlineExceeded",
                    "message": 'ReplicaSet "cdr-ingress-7f8b9c" has timed out progressing.',
                }
            ],
        ),
        Health.DEGRADED,
        "ProgressDeadlineExceeded",
        "has timed out progressing",
    ),
    row(deployment(spec__paused=True), Health.SUSPENDED, "Paused"),
    row(
        deployment(
            spec__replicas=0,
            status__replicas=...,
            status__updatedReplicas=...,
            status__availableReplicas=...,
        ),
        Health.HEALTHY,
        "Available",
        "0/0",
    ),
    row(deployment(spec__replicas="two"), Health.UNKNOWN, "MalformedStatus"),
]
DEPLOYMENT_IDS = [
    "available",
    "no-status",
    "stale-generation",
    "rollout-updating",
    "old-replicas-terminating",
    "not-all-available",
    "progress-deadline-exceeded",
    "paused",
    "scaled-to-zero-not-suspended",
    "replicas-not-an-int",
]


class TestDeployment:
    @pytest.mark.parametrize(
        ("body", "expected", "reason", "msg"), DEPLOYMENT_TABLE, ids=DEPLOYMENT_IDS
    )
    def test_table(self, body: dict[str, Any], expected: Health, reason: str, msg: str) -> None:
        check(health.deployment(body), expected, reason, msg)

    @pytest.mark.parametrize(
        ("status_replicas", "expected", "reason"),
        [(0, Health.SUSPENDED, "ScaledToZero"), (2, Health.PROGRESSING, "RolloutInProgress")],
        ids=["scaled-down", "still-scaling-down"],
    )
    def test_suspended(self, status_replicas: int, expected: Health, reason: str) -> None:
        body = deployment(
            spec__replicas=0,
            status__replicas=status_replicas,
            status__updatedReplicas=status_replicas,
            status__availableReplicas=status_replicas,
        )
        result = health.assess("Deployment", body, suspended=True)
        assert (result.health, result.reason) == (expected, reason)


# --------------------------------------------------------------------------------------------------
# Dispatcher
# --------------------------------------------------------------------------------------------------


class TestAssess:
    @pytest.mark.parametrize(
        ("kind", "body"),
        [
            ("KafkaTopic", kafka_topic()),
            ("SparkApplication", spark_app()),
            ("FlinkDeployment", flink_deployment()),
            ("FlinkApplication", lyft_app()),
            ("Deployment", deployment()),
        ],
        ids=["kafkatopic", "sparkapplication", "flinkdeployment", "flinkapplication", "deployment"],
    )
    def test_dispatches_by_kind(self, kind: str, body: dict[str, Any]) -> None:
        assert health.assess(kind, body).health is Health.HEALTHY

    def test_not_found_is_missing(self) -> None:
        result = health.assess("SparkApplication", None)
        assert (result.health, result.reason) == (Health.MISSING, "NotFound")

    def test_delegate_not_installed_names_the_operator(self) -> None:
        hint = "install the Strimzi cluster operator (kafkatopics.kafka.strimzi.io)"
        result = health.assess("KafkaTopic", None, delegate_installed=False, operator_hint=hint)
        assert result == ChildHealth(
            health=Health.MISSING, reason="DelegateNotInstalled", message=hint
        )

    def test_delegate_not_installed_without_hint_names_the_kind(self) -> None:
        result = health.assess("FlinkApplication", None, delegate_installed=False)
        assert "FlinkApplication" in result.message

    def test_unknown_kind(self) -> None:
        result = health.assess("StatefulSet", {"status": {}})
        assert (result.health, result.reason) == (Health.UNKNOWN, "UnsupportedKind")

    @pytest.mark.parametrize(
        "body",
        [[1, 2], "status", 42],
        ids=["list", "string", "int"],
    )
    def test_body_not_an_object(self, body: Any) -> None:
        assert health.assess("KafkaTopic", body).reason == "MalformedStatus"

    @pytest.mark.parametrize(
        "kind", ["KafkaTopic", "FlinkDeployment", "Deployment"], ids=["kt", "fd", "deploy"]
    )
    def test_status_not_an_object(self, kind: str) -> None:
        result = health.assess(kind, {"metadata": {"generation": 1}, "status": ["Ready"]})
        assert (result.health, result.reason) == (Health.UNKNOWN, "MalformedStatus")


# --------------------------------------------------------------------------------------------------
# Aggregation
# --------------------------------------------------------------------------------------------------


def child(
    name: str, state: Health, reason: str = "", message: str = "", kind: str = "X"
) -> ChildReport:
    return ChildReport(
        kind=kind,
        name=name,
        health=ChildHealth(health=state, reason=reason or state.value, message=message),
    )


def conditions_of(app: AppHealth) -> dict[str, Condition]:
    return {condition.type: condition for condition in app.conditions}


class TestAggregate:
    @pytest.mark.parametrize(
        ("healths", "phase"),
        [
            ([Health.HEALTHY, Health.HEALTHY], "Healthy"),
            ([Health.HEALTHY, Health.PROGRESSING], "Progressing"),
            ([Health.PROGRESSING, Health.MISSING, Health.HEALTHY], "Missing"),
            ([Health.MISSING, Health.DEGRADED], "Degraded"),
            ([Health.DEGRADED, Health.UNKNOWN], "Unknown"),
            ([Health.HEALTHY, Health.SUSPENDED], "Suspended"),
            ([], "Progressing"),
        ],
        ids=["healthy", "progressing", "missing", "degraded", "unknown", "suspended", "none"],
    )
    def test_phase_is_the_worst_child(self, healths: list[Health], phase: str) -> None:
        children = [child(f"c{index}", state) for index, state in enumerate(healths)]
        assert health.aggregate(children).phase == phase

    def test_counts_and_summary(self) -> None:
        app = health.aggregate(
            [child("a", Health.HEALTHY), child("b", Health.PROGRESSING), child("c", Health.HEALTHY)]
        )
        assert (app.ready, app.total, app.summary) == (2, 3, "2/3")

    def test_always_five_conditions_in_order(self) -> None:
        app = health.aggregate([child("a", Health.HEALTHY)])
        assert [c.type for c in app.conditions] == [
            "Ready",
            "Reconciling",
            "Stalled",
            "Compiled",
            "DelegatesAvailable",
        ]

    def test_healthy_conditions(self) -> None:
        conditions = conditions_of(health.aggregate([child("a", Health.HEALTHY)]))
        assert {t: (c.status, c.reason) for t, c in conditions.items()} == {
            "Ready": ("True", "AllChildrenHealthy"),
            "Reconciling": ("False", "Converged"),
            "Stalled": ("False", "NotStalled"),
            "Compiled": ("True", "Compiled"),
            "DelegatesAvailable": ("True", "AllDelegatesInstalled"),
        }

    def test_ready_message_lists_two_worst_first_then_counts(self) -> None:
        app = health.aggregate(
            [
                child("topic-a", Health.HEALTHY),
                child("zeta", Health.PROGRESSING),
                child("beta", Health.PROGRESSING),
                child("omega", Health.DEGRADED),
            ]
        )
        ready = conditions_of(app)["Ready"]
        assert (ready.status, ready.reason) == ("False", "ChildrenDegraded")
        assert ready.message == "Unready: omega, beta and 1 more"

    @pytest.mark.parametrize(
        ("names", "message"),
        [
            (["a"], "Unready: a"),
            (["b", "a"], "Unready: a, b"),
            (["c", "b", "a"], "Unready: a, b and 1 more"),
        ],
        ids=["one", "two", "three"],
    )
    def test_ready_message_truncation(self, names: list[str], message: str) -> None:
        app = health.aggregate([child(name, Health.PROGRESSING) for name in names])
        ready = conditions_of(app)["Ready"]
        assert (ready.reason, ready.message) == ("WaitingForChildren", message)

    def test_progressing_is_reconciling(self) -> None:
        app = health.aggregate([child("a", Health.HEALTHY), child("b", Health.PROGRESSING)])
        conditions = conditions_of(app)
        assert conditions["Reconciling"].status == "True"
        assert conditions["Reconciling"].message == "Waiting for: b"
        assert conditions["Stalled"].status == "False"

    def test_missing_is_reconciling(self) -> None:
        conditions = conditions_of(health.aggregate([child("a", Health.MISSING, "NotFound")]))
        assert (conditions["Reconciling"].status, conditions["Ready"].reason) == (
            "True",
            "ChildrenMissing",
        )

    def test_degraded_is_stalled_naming_children_and_messages(self) -> None:
        app = health.aggregate(
            [
                child("cdr-aggregator", Health.DEGRADED, "FAILED", "driver container failed"),
                child("cdr-merge", Health.DEGRADED, "ROLLED_BACK"),
                child("topic", Health.HEALTHY),
            ]
        )
        conditions = conditions_of(app)
        stalled = conditions["Stalled"]
        assert (stalled.status, stalled.reason) == ("True", "ChildrenDegraded")
        assert stalled.message == (
            "Degraded: cdr-aggregator: driver container failed; cdr-merge: ROLLED_BACK"
        )
        assert conditions["Reconciling"].status == "False"

    def test_stalled_message_is_bounded(self) -> None:
        children = [child(f"s{i:02}", Health.DEGRADED, "FAILED", "x" * 5000) for i in range(40)]
        stalled = conditions_of(health.aggregate(children))["Stalled"]
        assert stalled.message.endswith("; and 35 more")
        assert len(stalled.message) < 2000

    def test_invalid(self) -> None:
        problems = [
            "spec.streamlets[3].inlets[0]: inlet 'in' is not connected",
            "spec.connections[0].from: unknown streamlet 'cdr-validatr'"
            " (did you mean 'cdr-validator'?)",
        ]
        app = health.aggregate([child("a", Health.HEALTHY)], problems=problems)
        conditions = conditions_of(app)
        assert app.phase == "Invalid"
        assert (conditions["Compiled"].status, conditions["Compiled"].reason) == (
            "False",
            "Invalid",
        )
        for problem in problems:
            assert problem in conditions["Compiled"].message
        assert (conditions["Stalled"].status, conditions["Stalled"].reason) == ("True", "Invalid")
        assert (conditions["Ready"].status, conditions["Ready"].reason) == ("False", "Invalid")
        assert conditions["Reconciling"].status == "False"
        # The previous children keep running and are still counted.
        assert app.summary == "1/1"

    def test_invalid_wins_over_degraded_children(self) -> None:
        app = health.aggregate([child("a", Health.DEGRADED)], problems=["bad"])
        assert app.phase == "Invalid"

    def test_suspended_by_spec(self) -> None:
        app = health.aggregate(
            [child("topic", Health.HEALTHY), child("job", Health.SUSPENDED)], suspended=True
        )
        ready = conditions_of(app)["Ready"]
        assert app.phase == "Suspended"
        assert (ready.status, ready.reason) == ("False", "Suspended")
        assert conditions_of(app)["Reconciling"].status == "False"

    def test_suspended_all_healthy_still_suspended(self) -> None:
        assert (
            health.aggregate([child("topic", Health.HEALTHY)], suspended=True).phase == "Suspended"
        )

    def test_suspended_but_worse_child_shows_it(self) -> None:
        app = health.aggregate([child("job", Health.PROGRESSING, "SUSPENDING")], suspended=True)
        assert app.phase == "Progressing"

    def test_delegates_unavailable_names_the_operators(self) -> None:
        spark_hint = "install the Kubeflow Spark operator (sparkapplications.sparkoperator.k8s.io)"
        flink_hint = (
            "install the Apache Flink Kubernetes operator (flinkdeployments.flink.apache.org)"
        )
        app = health.aggregate(
            [
                child("a", Health.MISSING, "DelegateNotInstalled", spark_hint, "SparkApplication"),
                child("b", Health.MISSING, "DelegateNotInstalled", spark_hint, "SparkApplication"),
                child("c", Health.MISSING, "DelegateNotInstalled", flink_hint, "FlinkDeployment"),
                child("d", Health.MISSING, "NotFound", "Deployment not found", "Deployment"),
                child("topic", Health.HEALTHY, kind="KafkaTopic"),
            ]
        )
        delegates = conditions_of(app)["DelegatesAvailable"]
        assert (delegates.status, delegates.reason) == ("False", "DelegateNotInstalled")
        assert delegates.message == (
            f"missing delegate operators: FlinkDeployment: {flink_hint}; "
            f"SparkApplication: {spark_hint}"
        )
        assert app.phase == "Missing"

    def test_no_children(self) -> None:
        app = health.aggregate([])
        ready = conditions_of(app)["Ready"]
        assert (app.phase, app.summary, ready.reason) == ("Progressing", "0/0", "NoChildren")
        assert conditions_of(app)["Reconciling"].status == "True"

    def test_deterministic_whatever_the_input_order(self) -> None:
        children = [
            child(n, s)
            for n, s in [("b", Health.DEGRADED), ("a", Health.MISSING), ("c", Health.DEGRADED)]
        ]
        assert health.aggregate(children) == health.aggregate(list(reversed(children)))


# --------------------------------------------------------------------------------------------------
# Conditions on the wire
# --------------------------------------------------------------------------------------------------

EARLIER = "2024-05-01T09:00:00Z"
NOW = "2024-05-01T10:00:00Z"


class TestMergeConditions:
    def test_first_write_stamps_now(self) -> None:
        current = health.aggregate([child("a", Health.HEALTHY)]).conditions
        merged = health.merge_conditions([], current, now=NOW, observed_generation=4)
        assert [c["lastTransitionTime"] for c in merged] == [NOW] * 5
        assert merged[0] == {
            "type": "Ready",
            "status": "True",
            "reason": "AllChildrenHealthy",
            "message": "1/1 children healthy",
            "observedGeneration": 4,
            "lastTransitionTime": NOW,
        }

    def test_unchanged_status_keeps_last_transition_time(self) -> None:
        previous = [
            {
                "type": "Ready",
                "status": "False",
                "reason": "WaitingForChildren",
                "message": "old",
                "observedGeneration": 3,
                "lastTransitionTime": EARLIER,
            },
            {
                "type": "Stalled",
                "status": "False",
                "reason": "NotStalled",
                "message": "",
                "observedGeneration": 3,
                "lastTransitionTime": EARLIER,
            },
        ]
        current = [
            Condition(type="Ready", status="False", reason="ChildrenMissing", message="new"),
            Condition(type="Stalled", status="True", reason="ChildrenDegraded", message="x"),
        ]
        merged = health.merge_conditions(previous, current, now=NOW, observed_generation=4)
        ready, stalled = merged
        # Reason and message may change without a transition; the status flip is one.
        assert (ready["lastTransitionTime"], ready["reason"], ready["message"]) == (
            EARLIER,
            "ChildrenMissing",
            "new",
        )
        assert stalled["lastTransitionTime"] == NOW
        assert ready["observedGeneration"] == stalled["observedGeneration"] == 4

    def test_drops_foreign_and_ignores_malformed_previous(self) -> None:
        previous: list[Any] = [
            {"type": "Legacy", "status": "True", "lastTransitionTime": EARLIER},
            {"status": "True"},
            "garbage",
            {"type": "Ready", "status": "True", "lastTransitionTime": 12},
        ]
        current = [Condition(type="Ready", status="True", reason="AllChildrenHealthy", message="")]
        merged = health.merge_conditions(previous, current, now=NOW, observed_generation=1)
        assert [(c["type"], c["lastTransitionTime"]) for c in merged] == [("Ready", NOW)]

    def test_rewriting_the_same_health_does_not_change_status(self) -> None:
        app = health.aggregate([child("a", Health.HEALTHY), child("b", Health.PROGRESSING)])
        first = health.merge_conditions([], app.conditions, now=EARLIER, observed_generation=2)
        old_status = {"phase": app.phase, "conditions": first, "kopf": {"progress": {}}}
        second = health.merge_conditions(first, app.conditions, now=NOW, observed_generation=2)
        assert second == first
        assert not health.status_changed(old_status, {"phase": app.phase, "conditions": second})


class TestStatusChanged:
    @pytest.mark.parametrize(
        ("old", "new", "changed"),
        [
            (None, {"phase": "Healthy"}, True),
            ({"phase": "Healthy"}, {"phase": "Healthy"}, False),
            ({"phase": "Healthy", "kopf": {"x": 1}}, {"phase": "Healthy"}, False),
            ({"phase": "Healthy"}, {"phase": "Degraded"}, True),
            ({"phase": "Healthy"}, {"phase": "Healthy", "summary": "1/1"}, True),
        ],
        ids=["no-old", "same", "foreign-keys-ignored", "phase-changed", "new-key"],
    )
    def test_status_changed(self, old: Any, new: dict[str, Any], changed: bool) -> None:
        assert health.status_changed(old, new) is changed


# --------------------------------------------------------------------------------------------------
# Properties
# --------------------------------------------------------------------------------------------------

# Field names and values the adapters look at, so random bodies reach deep branches.
FIELDS = [
    "metadata", "generation", "spec", "status", "conditions", "type", "status", "reason",
    "message", "observedGeneration", "replicasChange", "targetReplicas", "state",
    "applicationState", "errorMessage", "executorState", "submissionID", "executor", "instances",
    "dynamicAllocation", "enabled", "minExecutors", "lifecycleState", "jobManagerDeploymentStatus",
    "jobStatus", "error", "reconciliationStatus", "lastReconciledSpec", "job", "phase",
    "deployHash", "failedDeployHash", "lastSeenError", "appError", "replicas", "updatedReplicas",
    "availableReplicas", "paused",
]  # fmt: skip
VALUES = [
    "True", "False", "Ready", "Unmanaged", "ReconciliationPaused", "RUNNING", "FAILED",
    "COMPLETED", "SUSPENDED", "STABLE", "DEPLOYED", "ROLLED_BACK", "READY", "ERROR", "Running",
    "DeployFailed", "ProgressDeadlineExceeded", "Progressing", "",
    '{"resource_metadata": {"metadata": {"generation": 1}}}', '{"message": 1}',
]  # fmt: skip

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-3, 3)
    | st.floats(allow_nan=True)
    | st.sampled_from(VALUES)
    | st.text(max_size=5)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=3), inner, max_size=4)
    ),
    max_leaves=25,
)
bodies = (
    st.fixed_dictionaries(
        {},
        optional={
            "metadata": st.fixed_dictionaries({}, optional={"generation": json_values}),
            "spec": json_values,
            "status": json_values,
        },
    )
    | json_values
)
marks = st.none() | st.builds(
    ApplyMark,
    spark_submission_id=st.none() | st.sampled_from(["", SPARK_SUBMISSION]),
    lyft_deploy_hash=st.none() | st.sampled_from(["", "d9f8a6a8"]),
)


class TestProperties:
    @settings(max_examples=400, deadline=None)
    @given(
        kind=st.sampled_from([*sorted(health.SUPPORTED_KINDS), "Pod"]),
        body=bodies,
        mark=marks,
        suspended=st.booleans(),
    )
    def test_assess_never_raises(
        self, kind: str, body: Any, mark: ApplyMark | None, suspended: bool
    ) -> None:
        result = health.assess(kind, body, mark=mark, suspended=suspended)
        assert isinstance(result.health, Health)
        assert result.reason
        assert len(result.message) <= health.MAX_CHILD_MESSAGE

    @settings(max_examples=100, deadline=None)
    @given(
        reports=st.lists(
            st.builds(
                ChildReport,
                kind=st.sampled_from(sorted(health.SUPPORTED_KINDS)),
                name=st.text(min_size=1, max_size=8),
                health=st.builds(
                    ChildHealth,
                    health=st.sampled_from(list(Health)),
                    reason=st.sampled_from(["DelegateNotInstalled", "NotFound", "RUNNING"]),
                    message=st.text(max_size=20),
                ),
            ),
            max_size=8,
        ),
        problems=st.lists(st.text(max_size=10), max_size=3),
        suspended=st.booleans(),
    )
    def test_aggregate_is_total(
        self, reports: list[ChildReport], problems: list[str], suspended: bool
    ) -> None:
        app = health.aggregate(reports, problems=problems, suspended=suspended)
        assert 0 <= app.ready <= app.total == len(reports)
        assert [c.type for c in app.conditions] == list(health.CONDITION_TYPES)
        ready = conditions_of(app)["Ready"]
        assert (ready.status == "True") == (app.phase == "Healthy")
        if not problems and reports and not suspended:
            assert app.phase == health.worst(r.health.health for r in reports).value
