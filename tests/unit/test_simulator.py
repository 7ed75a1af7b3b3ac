"""The delegate simulator's state machine (federator.simulator, pure part).

Every transition of every kind is driven from a body and checked two ways: the status it writes
is read by ``federator.core.health.assess`` as the intended health (Healthy, Progressing,
Degraded, Suspended), and it is valid under the status schema of the real delegate CRD in
third_party/delegate-crds (strict: a field the API server would prune is an error). The merge patch
the simulator sends is checked to produce exactly that status.
"""

from __future__ import annotations

import copy
import itertools
import json
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from federator import simulator
from federator.core import openapi
from federator.core.delegates import assess, simstep
from federator.core.health import Health
from federator.simulator import Failure, Step

NOW = "2026-03-04T05:06:07Z"
LATER = "2026-03-04T05:07:00Z"

CRD_FILES = {
    "KafkaTopic": ("strimzi-kafkatopic.crd.yaml", "v1"),
    "SparkApplication": ("sparkoperator-sparkapplication.crd.yaml", "v1beta2"),
    "FlinkDeployment": ("apache-flinkdeployment.crd.yaml", "v1beta1"),
    "FlinkApplication": ("lyft-flinkapplication.crd.yaml", "v1beta1"),
}
LEGACY_TOPIC_CRD = ("strimzi-kafkatopic-0.51.0-v1beta2.crd.yaml", "v1beta2")


def _status_validator(path: Path, version: str) -> Callable[[Any], list[str]]:
    crd = next(d for d in yaml.safe_load_all(path.read_text()) if isinstance(d, Mapping))
    served = next(v for v in crd["spec"]["versions"] if v["name"] == version)
    schema = served["schema"]["openAPIV3Schema"]["properties"]["status"]
    validator = openapi.validator_for(schema, strict=True)
    return lambda status: [error.message for error in validator.iter_errors(status)]


@pytest.fixture(scope="module")
def status_schemas(delegate_crds: Path) -> dict[str, list[Callable[[Any], list[str]]]]:
    """Kind -> validators of ``.status`` built from the real CRDs (KafkaTopic: v1 and v1beta2)."""
    out = {
        kind: [_status_validator(delegate_crds / file, version)]
        for kind, (file, version) in CRD_FILES.items()
    }
    out["KafkaTopic"].append(_status_validator(delegate_crds / LEGACY_TOPIC_CRD[0], "v1beta2"))
    return out


def apply_merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386, as the API server applies ``application/merge-patch+json``."""
    if not isinstance(patch, Mapping):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = apply_merge_patch(result.get(key), value)
    return result


class Driver:
    """Runs the state machine like the simulator does: one step per tick, remembering Spark's
    submitted generation, checking every written status against the CRD and the patch."""

    def __init__(self, kind: str, body: dict[str, Any], schemas: Any) -> None:
        self.kind = kind
        self.body = body
        self.schemas = schemas[kind]
        self.submitted: int | None = None
        counter = itertools.count(1)
        self.new_id = lambda: str(uuid.UUID(int=next(counter)))
        self.now = NOW

    def step(self, failure: Failure | None = None) -> Step | None:
        step = simulator.next_step(
            self.kind,
            self.body,
            failure=failure,
            submitted_generation=self.submitted,
            now=self.now,
            new_id=self.new_id,
        )
        if step is None:
            return None
        old = self.body.get("status") or {}
        patch = simulator.merge_patch(old, step.status)
        assert apply_merge_patch(old, patch) == step.status
        for validate in self.schemas:
            assert validate(step.status) == [], (step.state, step.status)
        json.dumps(patch)  # what is sent must be JSON
        self.body = {**self.body, "status": step.status}
        if self.kind == "SparkApplication":
            self.submitted = step.generation
        return step

    def tick(self, expected_state: str, failure: Failure | None = None) -> Step:
        step = self.step(failure)
        assert step is not None, f"expected a step to {expected_state}, the object is settled"
        assert step.state == expected_state
        return step

    def health(self, mark: str | None = None) -> Any:
        return assess(self.kind, self.body, mark=mark)

    def expect(self, health: Health, reason: str | None = None, mark: str | None = None):
        verdict = self.health(mark)
        assert verdict.health is health, verdict
        if reason is not None:
            assert verdict.reason == reason, verdict
        return verdict

    def settled(self, failure: Failure | None = None) -> None:
        """Nothing to write, even a minute later (no timestamp churn)."""
        now, self.now = self.now, "2026-12-31T23:59:59Z"
        try:
            assert self.step(failure) is None, "a settled object must not be written again"
        finally:
            self.now = now

    def change_spec(self, **spec: Any) -> None:
        """A spec update: the API server bumps metadata.generation."""
        metadata = dict(self.body["metadata"])
        metadata["generation"] = metadata.get("generation", 1) + 1
        self.body = {**self.body, "metadata": metadata, "spec": {**self.body["spec"], **spec}}

    def annotate(self, **annotations: str | None) -> None:
        metadata = dict(self.body["metadata"])
        merged = {**(metadata.get("annotations") or {}), **annotations}
        metadata["annotations"] = {k: v for k, v in merged.items() if v is not None}
        self.body = {**self.body, "metadata": metadata}


def _metadata(name: str, namespace: str = "apps") -> dict[str, Any]:
    return {
        "name": name,
        "namespace": namespace,
        "generation": 1,
        "uid": f"uid-{name}",
        "labels": {"app.kubernetes.io/managed-by": "federator"},
        "annotations": {},
    }


def topic_body() -> dict[str, Any]:
    return {
        "apiVersion": "kafka.strimzi.io/v1",
        "kind": "KafkaTopic",
        "metadata": _metadata("app.ingress.out", "kafka"),
        "spec": {"topicName": "app.ingress.out", "partitions": 3, "replicas": 2},
    }


def spark_body(instances: int = 2) -> dict[str, Any]:
    return {
        "apiVersion": "sparkoperator.k8s.io/v1beta2",
        "kind": "SparkApplication",
        "metadata": _metadata("app-aggregator"),
        "spec": {
            "type": "Scala",
            "mode": "cluster",
            "sparkVersion": "3.5.1",
            "restartPolicy": {"type": "Always"},
            "executor": {"instances": instances},
            "suspend": False,
        },
    }


def flink_body() -> dict[str, Any]:
    return {
        "apiVersion": "flink.apache.org/v1beta1",
        "kind": "FlinkDeployment",
        "metadata": _metadata("app-scorer"),
        "spec": {
            "image": "scorer:1",
            "flinkVersion": "v1_20",
            "job": {"jarURI": "local:///scorer.jar", "parallelism": 2, "state": "running"},
        },
    }


def lyft_body() -> dict[str, Any]:
    return {
        "apiVersion": "flink.k8s.io/v1beta1",
        "kind": "FlinkApplication",
        "metadata": _metadata("app-counter"),
        "spec": {"image": "counter:1", "jarName": "counter.jar", "parallelism": 3},
    }


# --------------------------------------------------------------------------------------------------
# KafkaTopic
# --------------------------------------------------------------------------------------------------


def test_kafka_topic_becomes_ready_for_its_generation(status_schemas: Any) -> None:
    d = Driver("KafkaTopic", topic_body(), status_schemas)
    d.expect(Health.PROGRESSING, "AwaitingStatus")
    step = d.tick("Ready")
    d.expect(Health.HEALTHY, "Ready")
    assert step.status["observedGeneration"] == 1
    assert step.status["topicName"] == "app.ingress.out"
    assert len(step.status["topicId"]) == 22
    assert step.status["conditions"] == [
        {"type": "Ready", "status": "True", "lastTransitionTime": NOW}
    ]
    d.settled()


def test_kafka_topic_name_defaults_to_metadata_name(status_schemas: Any) -> None:
    body = topic_body()
    del body["spec"]["topicName"]
    d = Driver("KafkaTopic", body, status_schemas)
    assert d.tick("Ready").status["topicName"] == "app.ingress.out"


def test_kafka_topic_spec_change_is_progressing_then_ready_again(status_schemas: Any) -> None:
    d = Driver("KafkaTopic", topic_body(), status_schemas)
    first = d.tick("Ready")
    d.change_spec(partitions=6)
    d.expect(Health.PROGRESSING, "StaleGeneration")
    d.now = LATER
    step = d.tick("Ready")
    d.expect(Health.HEALTHY, "Ready")
    assert step.status["observedGeneration"] == 2
    assert step.status["topicId"] == first.status["topicId"]  # the same Kafka topic
    # Ready stayed True: its lastTransitionTime does not churn.
    assert step.status["conditions"][0]["lastTransitionTime"] == NOW
    d.settled()


@pytest.mark.parametrize("reason", [None, "InvalidResourceException"], ids=["default", "reason"])
def test_kafka_topic_failure_and_recovery(status_schemas: Any, reason: str | None) -> None:
    d = Driver("KafkaTopic", topic_body(), status_schemas)
    d.tick("Ready")
    failure = Failure("Replication factor: 5 larger than available brokers: 3.", reason)
    expected = reason or "KafkaError"
    d.tick(f"Ready=False ({expected})", failure)
    verdict = d.expect(Health.DEGRADED, expected)
    assert verdict.message == failure.message
    d.settled(failure)
    d.now = LATER
    d.tick("Ready")
    d.expect(Health.HEALTHY, "Ready")
    assert d.body["status"]["conditions"][0]["lastTransitionTime"] == LATER


def test_kafka_topic_failure_before_any_status_is_degraded(status_schemas: Any) -> None:
    d = Driver("KafkaTopic", topic_body(), status_schemas)
    d.tick("Ready=False (KafkaError)", Failure("boom"))
    d.expect(Health.DEGRADED, "KafkaError")


def test_kafka_topic_paused_is_suspended_and_unpaused_is_ready(status_schemas: Any) -> None:
    d = Driver("KafkaTopic", topic_body(), status_schemas)
    d.tick("Ready")
    d.annotate(**{"strimzi.io/pause-reconciliation": "true"})
    d.tick("ReconciliationPaused")
    d.expect(Health.SUSPENDED, "ReconciliationPaused")
    d.change_spec(partitions=9)  # not reconciled while paused
    d.expect(Health.SUSPENDED)
    d.settled()
    d.annotate(**{"strimzi.io/pause-reconciliation": None})
    d.tick("Ready")
    d.expect(Health.HEALTHY, "Ready")
    assert d.body["status"]["observedGeneration"] == 2


def test_kafka_topic_unmanaged_is_healthy(status_schemas: Any) -> None:
    d = Driver("KafkaTopic", topic_body(), status_schemas)
    d.annotate(**{"strimzi.io/managed": "false"})
    d.tick("Unmanaged")
    d.expect(Health.HEALTHY, "Unmanaged")
    d.settled()


def test_kafka_topic_completes_a_pending_replicas_change(status_schemas: Any) -> None:
    d = Driver("KafkaTopic", topic_body(), status_schemas)
    d.tick("Ready")
    d.body["status"]["replicasChange"] = {"targetReplicas": 3, "state": "ongoing"}
    d.expect(Health.PROGRESSING, "ReplicasChange")
    d.tick("Ready")
    d.expect(Health.HEALTHY, "Ready")
    assert "replicasChange" not in d.body["status"]


# --------------------------------------------------------------------------------------------------
# SparkApplication
# --------------------------------------------------------------------------------------------------


def _executors(d: Driver) -> dict[str, str]:
    return dict(d.body["status"].get("executorState") or {})


def test_spark_submits_then_runs_every_executor(status_schemas: Any) -> None:
    d = Driver("SparkApplication", spark_body(instances=3), status_schemas)
    d.expect(Health.PROGRESSING, "AwaitingSubmission")
    step = d.tick("SUBMITTED")
    d.expect(Health.PROGRESSING, "SUBMITTED")
    assert step.status["submissionID"]
    assert step.status["lastSubmissionAttemptTime"] == NOW
    assert step.status["driverInfo"]["podName"] == "app-aggregator-driver"
    assert step.generation == 1
    d.tick("RUNNING")
    verdict = d.expect(Health.HEALTHY, "RUNNING")
    assert verdict.message == "3/3 executors running"
    assert _executors(d) == {f"app-aggregator-exec-{i}": "RUNNING" for i in (1, 2, 3)}
    d.settled()


def test_spark_spec_change_resubmits_with_a_new_submission_id(status_schemas: Any) -> None:
    d = Driver("SparkApplication", spark_body(instances=3), status_schemas)
    d.tick("SUBMITTED")
    d.tick("RUNNING")
    before = d.body["status"]["submissionID"]
    mark = before  # what federator records when it applies
    d.change_spec(executor={"instances": 1})
    d.expect(Health.PROGRESSING, "AwaitingResubmission", mark)
    d.tick("INVALIDATING")
    d.expect(Health.PROGRESSING, "INVALIDATING")
    d.expect(Health.PROGRESSING, mark=mark)
    d.tick("PENDING_RERUN")
    d.expect(Health.PROGRESSING, "PENDING_RERUN")
    step = d.tick("SUBMITTED")
    assert step.status["submissionID"] != before
    assert step.generation == 2
    assert step.status["submissionAttempts"] == 1  # an invalidation clears the counters (real)
    d.expect(Health.PROGRESSING, "SUBMITTED", mark)
    d.tick("RUNNING")
    d.expect(Health.HEALTHY, "RUNNING", mark)
    # Scaled down: the merge patch removed the executors of the old submission.
    assert _executors(d) == {"app-aggregator-exec-1": "RUNNING"}
    d.settled()


def test_spark_status_seen_after_a_restart_is_not_resubmitted(status_schemas: Any) -> None:
    d = Driver("SparkApplication", spark_body(), status_schemas)
    d.tick("SUBMITTED")
    d.tick("RUNNING")
    d.body["metadata"]["generation"] = 5
    d.submitted = None  # the simulator restarted and remembers nothing
    d.settled()


def test_spark_dynamic_allocation_runs_at_least_the_minimum(status_schemas: Any) -> None:
    body = spark_body()
    del body["spec"]["executor"]
    body["spec"]["dynamicAllocation"] = {"enabled": True, "minExecutors": 2, "maxExecutors": 5}
    d = Driver("SparkApplication", body, status_schemas)
    d.tick("SUBMITTED")
    d.tick("RUNNING")
    d.expect(Health.HEALTHY)
    assert len(_executors(d)) == 2


def test_spark_suspend_and_resume(status_schemas: Any) -> None:
    d = Driver("SparkApplication", spark_body(), status_schemas)
    d.tick("SUBMITTED")
    d.tick("RUNNING")
    before = d.body["status"]["submissionID"]
    d.change_spec(suspend=True)
    d.tick("SUSPENDING")
    d.expect(Health.PROGRESSING, "SUSPENDING")
    d.tick("SUSPENDED")
    d.expect(Health.SUSPENDED, "SUSPENDED")
    assert "executorState" not in d.body["status"]
    d.settled()
    d.change_spec(suspend=False)
    mark = before
    d.tick("RESUMING")
    d.expect(Health.PROGRESSING, "RESUMING")
    step = d.tick("SUBMITTED")
    assert step.status["submissionID"] != before
    d.tick("RUNNING")
    d.expect(Health.HEALTHY, "RUNNING", mark)
    d.settled()


def test_spark_suspended_before_it_ever_ran(status_schemas: Any) -> None:
    body = spark_body()
    body["spec"]["suspend"] = True
    d = Driver("SparkApplication", body, status_schemas)
    d.tick("SUSPENDING")
    d.tick("SUSPENDED")
    d.expect(Health.SUSPENDED)
    d.settled()


@pytest.mark.parametrize("state", [None, "FAILED", "SUBMISSION_FAILED", "FAILING"])
def test_spark_failure_and_recovery(status_schemas: Any, state: str | None) -> None:
    d = Driver("SparkApplication", spark_body(), status_schemas)
    d.tick("SUBMITTED")
    d.tick("RUNNING")
    before = d.body["status"]["submissionID"]
    failure = Failure("Job aborted: executor 1 lost (OOMKilled)", state)
    target = state or "FAILED"
    d.tick(target, failure)
    verdict = d.expect(Health.DEGRADED, target)
    assert verdict.message == failure.message
    assert d.body["status"]["applicationState"]["errorMessage"] == failure.message
    d.settled(failure)
    # Recovered: restartPolicy Always reruns it with a new submission (a refused submission is
    # retried at once, as the real operator does).
    if target != "SUBMISSION_FAILED":
        d.tick("PENDING_RERUN")
        d.expect(Health.PROGRESSING, "PENDING_RERUN")
        assert "errorMessage" not in d.body["status"]["applicationState"]
    step = d.tick("SUBMITTED")
    assert step.status["submissionID"] != before
    d.tick("RUNNING")
    d.expect(Health.HEALTHY, "RUNNING")


@pytest.mark.parametrize("state", ["COMPLETED", "UNKNOWN", "SUCCEEDING"])
def test_spark_other_states_are_rerun(status_schemas: Any, state: str) -> None:
    d = Driver("SparkApplication", spark_body(), status_schemas)
    d.tick("SUBMITTED")
    d.body["status"]["applicationState"] = {"state": state}
    d.tick("PENDING_RERUN")
    d.tick("SUBMITTED")
    d.tick("RUNNING")
    d.expect(Health.HEALTHY)


# --------------------------------------------------------------------------------------------------
# FlinkDeployment
# --------------------------------------------------------------------------------------------------


def _reconciled_generation(d: Driver, key: str = "lastReconciledSpec") -> int:
    spec = json.loads(d.body["status"]["reconciliationStatus"][key])
    generation: int = spec["resource_metadata"]["metadata"]["generation"]
    return generation


def test_flink_created_deployed_stable(status_schemas: Any) -> None:
    d = Driver("FlinkDeployment", flink_body(), status_schemas)
    d.expect(Health.PROGRESSING, "AwaitingStatus")
    d.tick("CREATED")
    d.expect(Health.PROGRESSING)
    step = d.tick("DEPLOYED")
    d.expect(Health.PROGRESSING, "DEPLOYING")
    assert step.status["observedGeneration"] == 1
    assert step.status["reconciliationStatus"]["state"] == "DEPLOYED"
    assert _reconciled_generation(d) == 1
    step = d.tick("DEPLOYED")  # the JobManager is up, its REST endpoint not yet (real 1.7.0)
    assert step.status["jobManagerDeploymentStatus"] == "DEPLOYED_NOT_READY"
    d.expect(Health.PROGRESSING)
    step = d.tick("STABLE")
    d.expect(Health.HEALTHY, "STABLE")
    assert step.status["jobManagerDeploymentStatus"] == "READY"
    assert step.status["jobStatus"]["state"] == "RUNNING"
    assert step.status["jobStatus"]["jobId"]
    assert _reconciled_generation(d, "lastStableSpec") == 1
    d.settled()


def test_flink_spec_change_upgrades(status_schemas: Any) -> None:
    d = Driver("FlinkDeployment", flink_body(), status_schemas)
    for state in ("CREATED", "DEPLOYED", "DEPLOYED", "STABLE"):
        d.tick(state)
    d.change_spec(image="scorer:2")
    d.expect(Health.PROGRESSING, "StaleGeneration")
    d.tick("UPGRADING")
    d.expect(Health.PROGRESSING, "UPGRADING")
    assert _reconciled_generation(d) == 2
    d.tick("DEPLOYED")
    d.expect(Health.PROGRESSING, "DEPLOYING")
    d.tick("DEPLOYED")
    d.tick("STABLE")
    d.expect(Health.HEALTHY, "STABLE")
    assert d.body["status"]["observedGeneration"] == 2
    assert _reconciled_generation(d, "lastStableSpec") == 2
    d.settled()


def test_flink_suspend_and_resume(status_schemas: Any) -> None:
    d = Driver("FlinkDeployment", flink_body(), status_schemas)
    for state in ("CREATED", "DEPLOYED", "DEPLOYED", "STABLE"):
        d.tick(state)
    d.change_spec(job={**d.body["spec"]["job"], "state": "suspended"})
    d.tick("SUSPENDED")
    d.expect(Health.SUSPENDED, "SUSPENDED")
    assert d.body["status"]["jobStatus"]["state"] == "SUSPENDED"
    d.settled()
    d.change_spec(job={**d.body["spec"]["job"], "state": "running"})
    for state in ("UPGRADING", "DEPLOYED", "DEPLOYED", "STABLE"):
        d.tick(state)
        d.expect(Health.HEALTHY if state == "STABLE" else Health.PROGRESSING)
    d.settled()


@pytest.mark.parametrize("state", [None, "FAILED", "ROLLED_BACK"])
def test_flink_failure_and_recovery(status_schemas: Any, state: str | None) -> None:
    d = Driver("FlinkDeployment", flink_body(), status_schemas)
    for step_state in ("CREATED", "DEPLOYED", "DEPLOYED", "STABLE"):
        d.tick(step_state)
    failure = Failure("Could not restore from savepoint s3://x/sp-1", state)
    target = state or "FAILED"
    d.tick(target, failure)
    verdict = d.expect(Health.DEGRADED, target)
    assert failure.message in verdict.message
    error = json.loads(d.body["status"]["error"])
    assert error["message"] == failure.message
    d.settled(failure)
    d.tick("DEPLOYED")
    d.expect(Health.PROGRESSING)
    assert "error" not in d.body["status"]
    d.tick("DEPLOYED")
    d.tick("STABLE")
    d.expect(Health.HEALTHY, "STABLE")


def test_flink_session_cluster_without_job(status_schemas: Any) -> None:
    body = flink_body()
    del body["spec"]["job"]
    d = Driver("FlinkDeployment", body, status_schemas)
    for state in ("CREATED", "DEPLOYED", "DEPLOYED", "STABLE"):
        d.tick(state)
    d.expect(Health.HEALTHY, "STABLE")
    assert "jobStatus" not in d.body["status"]


def test_flink_heals_a_stable_status_with_a_lost_job_manager(status_schemas: Any) -> None:
    d = Driver("FlinkDeployment", flink_body(), status_schemas)
    for state in ("CREATED", "DEPLOYED", "DEPLOYED", "STABLE"):
        d.tick(state)
    d.body["status"]["jobManagerDeploymentStatus"] = "DEPLOYED_NOT_READY"
    d.expect(Health.PROGRESSING)
    d.tick("STABLE")
    d.expect(Health.HEALTHY)


# --------------------------------------------------------------------------------------------------
# FlinkApplication (Lyft)
# --------------------------------------------------------------------------------------------------


def test_lyft_new_to_running(status_schemas: Any) -> None:
    d = Driver("FlinkApplication", lyft_body(), status_schemas)
    d.expect(Health.PROGRESSING, "AwaitingDeploy")
    d.tick("New")
    d.expect(Health.PROGRESSING, "New")
    assert d.body["status"]["phase"] == ""
    for phase in ("ClusterStarting", "SubmittingJob"):
        d.tick(phase)
        d.expect(Health.PROGRESSING, phase)
    step = d.tick("Running")
    d.expect(Health.HEALTHY, "Running")
    assert step.status["deployHash"] == simstep.spec_hash(d.body["spec"])
    assert step.status["jobStatus"]["state"] == "RUNNING"
    assert step.status["jobStatus"]["parallelism"] == 3
    d.settled()


def test_lyft_spec_change_updates_and_changes_the_deploy_hash(status_schemas: Any) -> None:
    d = Driver("FlinkApplication", lyft_body(), status_schemas)
    for phase in ("New", "ClusterStarting", "SubmittingJob", "Running"):
        d.tick(phase)
    before = d.body["status"]["deployHash"]
    mark = before
    d.change_spec(image="counter:2")
    d.expect(Health.PROGRESSING, "AwaitingDeploy", mark)
    for phase in ("Updating", "ClusterStarting", "Savepointing", "SubmittingJob"):
        d.tick(phase)
        d.expect(Health.PROGRESSING, phase)
        d.expect(Health.PROGRESSING, mark=mark)
        assert d.body["status"]["deployHash"] == before
    d.tick("Running")
    d.expect(Health.HEALTHY, "Running", mark)
    assert d.body["status"]["deployHash"] == simstep.spec_hash(d.body["spec"]) != before
    assert d.body["status"]["savepointPath"]
    d.settled()


@pytest.mark.parametrize(
    ("state", "reason"),
    [
        (None, "DeployFailed"),
        ("DeployFailed", "DeployFailed"),
        ("RollingBackJob", "RollingBackJob"),
        ("FAILED", "JobFailed"),
    ],
)
def test_lyft_failure_and_recovery(status_schemas: Any, state: str | None, reason: str) -> None:
    d = Driver("FlinkApplication", lyft_body(), status_schemas)
    for phase in ("New", "ClusterStarting", "SubmittingJob", "Running"):
        d.tick(phase)
    failure = Failure("java.lang.ClassNotFoundException: org.example.WordCount", state)
    d.tick(state or "DeployFailed", failure)
    verdict = d.expect(Health.DEGRADED, reason)
    assert failure.message in verdict.message
    d.settled(failure)
    d.tick("Recovering")
    d.expect(Health.PROGRESSING, "Recovering")
    assert "failedDeployHash" not in d.body["status"]
    assert "lastSeenError" not in d.body["status"]
    d.tick("SubmittingJob")
    d.tick("Running")
    d.expect(Health.HEALTHY, "Running")
    d.settled()


# --------------------------------------------------------------------------------------------------
# Helpers and dispatch
# --------------------------------------------------------------------------------------------------


def test_merge_patch_nulls_removed_keys_and_keeps_equal_ones() -> None:
    old = {"a": 1, "b": {"c": 2, "d": 3}, "e": [1], "f": "x"}
    new = {"a": 1, "b": {"c": 2}, "e": [1, 2], "g": {}}
    patch = simulator.merge_patch(old, new)
    assert patch == {"b": {"d": None}, "e": [1, 2], "f": None, "g": {}}
    assert apply_merge_patch(old, patch) == new
    assert simulator.merge_patch(new, new) == {}


def test_failure_from_annotations() -> None:
    body = topic_body()
    assert simulator.failure_from_annotations(body) is None
    body["metadata"]["annotations"] = {simstep.FAIL_ANNOTATION: "disk full"}
    assert simulator.failure_from_annotations(body) == Failure("disk full")
    body["metadata"]["annotations"] = {
        simstep.FAIL_ANNOTATION: "",
        simstep.FAIL_STATE_ANNOTATION: "ROLLED_BACK",
    }
    assert simulator.failure_from_annotations(body) == Failure(
        simstep.DEFAULT_FAILURE_MESSAGE, "ROLLED_BACK"
    )


@pytest.mark.parametrize(
    ("kind", "state"),
    [
        ("Deployment", None),
        ("SparkApplication", "ROLLED_BACK"),
        ("FlinkDeployment", "DeployFailed"),
        ("FlinkApplication", "SUBMISSION_FAILED"),
        ("KafkaTopic", ""),
    ],
)
def test_validate_failure_rejects(kind: str, state: str | None) -> None:
    with pytest.raises(ValueError):
        simulator.validate_failure(kind, state)


def test_validate_failure_accepts_any_kafka_reason() -> None:
    simulator.validate_failure("KafkaTopic", "TopicAuthorizationException")


def test_next_step_rejects_kinds_it_does_not_drive() -> None:
    with pytest.raises(ValueError):
        simulator.next_step("Deployment", {"metadata": {"name": "x"}})


def test_next_step_defaults_to_the_wall_clock() -> None:
    step = simulator.next_step("KafkaTopic", topic_body())
    assert step is not None
    assert step.status["conditions"][0]["lastTransitionTime"].endswith("Z")


def test_every_delegate_kind_has_a_health_adapter() -> None:
    for delegate in simulator.DELEGATES:
        verdict = assess(delegate.kind, {"metadata": {"name": "x"}})
        assert verdict.reason != "UnsupportedKind"


def test_crd_version_prefers_v1_and_needs_established() -> None:
    delegate = simulator.DELEGATES_BY_KIND["KafkaTopic"]
    crd = {
        "spec": {
            "versions": [
                {"name": "v1beta2", "served": True, "subresources": {"status": {}}},
                {"name": "v1", "served": True},
            ]
        },
        "status": {"conditions": [{"type": "Established", "status": "True"}]},
    }
    served = simulator.served_version(crd, delegate)
    assert served is not None
    assert (served.version, served.status_subresource) == ("v1", False)
    crd["spec"]["versions"][1]["served"] = False
    served = simulator.served_version(crd, delegate)
    assert served is not None
    assert (served.version, served.status_subresource) == ("v1beta2", True)
    crd["status"] = {}
    assert simulator.served_version(crd, delegate) is None


def test_fail_validates_its_arguments_and_recover_is_idempotent() -> None:
    sim = simulator.DelegateSimulator(api_client=None)
    with pytest.raises(ValueError, match="unsupported kind"):
        sim.fail("Deployment", "apps", "web", "boom")
    with pytest.raises(ValueError, match="failure state"):
        sim.fail("SparkApplication", "apps", "job", "boom", state="ROLLED_BACK")
    sim.fail("SparkApplication", "apps", "job", "boom", state="SUBMISSION_FAILED")
    sim.recover("SparkApplication", "apps", "job")
    sim.recover("SparkApplication", "apps", "job")
    sim.stop()  # never started: a no-op
