"""The FlinkSessionJob delegate (federator/core/delegates/flinksessionjob.py): its state table,
the session cluster it depends on, how a streamlet selects it and how its wiring reaches the job.
The delegate contract test (test_delegate_contract.py) requires this file and TABLE."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml
from delegate_tables import APACHE_ERROR, check, flink_deployment, patched, row

from federator.core import compiler, delegates
from federator.core.delegates.base import Judging
from federator.core.delegates.flinksessionjob import FLINK_SESSION_JOB, flink_session_job
from federator.core.health import Health
from federator.core.problems import InvalidSpec
from federator.core.resources import examples_dir
from federator.core.settings import parse_settings

EXAMPLE_STREAMLET: dict[str, Any] = {
    "name": "score",
    "runtime": "flink",
    "flinkSession": "shared-session",
    "image": "img",
    "outlets": ["out"],
    "flink": {"job": {"jarURI": "https://jars.example.com/score.jar"}},
}
"""A streamlet of an Application that renders this delegate (the contract test renders it)."""

SETTINGS = parse_settings(yaml.safe_load((examples_dir() / "settings.yaml").read_text()))
SESSION = ("FlinkDeployment", "team-a", "shared-session")


def session_job(**changes: Any) -> dict[str, Any]:
    """A FlinkSessionJob STABLE with its job RUNNING, as the Apache operator writes it."""
    body = {
        "apiVersion": "flink.apache.org/v1beta1",
        "kind": "FlinkSessionJob",
        "metadata": {"name": "orders-score", "namespace": "team-a", "generation": 2},
        "spec": {
            "deploymentName": "shared-session",
            "job": {
                "jarURI": "https://jars.example.com/score.jar",
                "parallelism": 1,
                "upgradeMode": "stateless",
                "state": "running",
            },
        },
        "status": {
            "lifecycleState": "STABLE",
            "observedGeneration": 2,
            "reconciliationStatus": {"state": "DEPLOYED"},
            "jobStatus": {
                "jobId": "0c0b7c6a4e4f4c5d9a8b7c6d5e4f3a2b",
                "jobName": "orders-score",
                "state": "RUNNING",
            },
        },
    }
    return patched(body, {k.replace("__", "."): v for k, v in changes.items()})


def session_cluster(**changes: Any) -> dict[str, Any]:
    """The session cluster: a FlinkDeployment without a job, JobManager READY."""
    body = flink_deployment(**changes)
    body["metadata"] = {"name": "shared-session", "namespace": "team-a"}
    body["spec"].pop("job")
    body["status"].pop("jobStatus", None)
    return body


TABLE = [
    row(session_job(), Health.HEALTHY, "STABLE", "job RUNNING on the session cluster shared"),
    row(session_job(status__lifecycleState="DEPLOYED"), Health.HEALTHY, "DEPLOYED"),
    row(session_job(status=...), Health.PROGRESSING, "AwaitingStatus"),
    row(
        session_job(metadata__generation=3),
        Health.PROGRESSING,
        "StaleGeneration",
        "observedGeneration 2, spec is generation 3",
    ),
    row(
        session_job(metadata__generation=3, status__error=APACHE_ERROR),
        Health.DEGRADED,
        "FlinkError",
        "Invalid log4j configuration",
    ),
    row(
        session_job(status__lifecycleState="UPGRADING", status__jobStatus__state="RECONCILING"),
        Health.PROGRESSING,
        "UPGRADING",
    ),
    row(
        session_job(status__lifecycleState="DEPLOYED", status__jobStatus__state="RECONCILING"),
        Health.PROGRESSING,
        "RECONCILING",
        "job RECONCILING",
    ),
    row(session_job(status__lifecycleState="FAILED"), Health.DEGRADED, "FAILED"),
    row(session_job(status__lifecycleState="ROLLED_BACK"), Health.DEGRADED, "ROLLED_BACK"),
    row(session_job(status__jobStatus__state="FAILED"), Health.DEGRADED, "JobFailed"),
    row(session_job(status__jobStatus__state="FINISHED"), Health.DEGRADED, "JobFinished"),
    row(session_job(status__jobStatus__state="CANCELED"), Health.DEGRADED, "JobCanceled"),
    row(
        session_job(status__lifecycleState="SUSPENDED", status__jobStatus__state="SUSPENDED"),
        Health.SUSPENDED,
        "SUSPENDED",
    ),
    row(session_job(status__lifecycleState="SOMETHING"), Health.UNKNOWN, "UnrecognisedState"),
    row(session_job(status__lifecycleState=7), Health.UNKNOWN, "MalformedStatus"),
]
IDS = [
    "stable-running",
    "deployed-running",
    "no-status",
    "stale-generation",
    "rejected-new-spec",
    "upgrading",
    "deployed-job-reconciling",
    "failed",
    "rolled-back",
    "job-failed",
    "job-finished",
    "job-canceled",
    "suspended",
    "unknown-lifecycle",
    "malformed-lifecycle",
]


@pytest.mark.parametrize(("body", "expected", "reason", "msg"), TABLE, ids=IDS)
def test_state_table(body: dict[str, Any], expected: Health, reason: str, msg: str) -> None:
    check(flink_session_job(body), expected, reason, msg)


SESSION_TABLE = [
    (None, Health.DEGRADED, "SessionClusterMissing", "team-a/shared-session"),
    (
        flink_deployment(),  # a FlinkDeployment with a job of its own
        Health.DEGRADED,
        "NotASessionCluster",
        "runs a job of its own",
    ),
    (
        session_cluster(status__jobManagerDeploymentStatus="DEPLOYING"),
        Health.PROGRESSING,
        "SessionClusterNotReady",
        "JobManager is DEPLOYING",
    ),
    (
        session_cluster(status__lifecycleState="FAILED", status__error=APACHE_ERROR),
        Health.DEGRADED,
        "SessionClusterNotReady",
        "Invalid log4j configuration",
    ),
    (session_cluster(), Health.HEALTHY, "STABLE", "job RUNNING on the session cluster"),
]


@pytest.mark.parametrize(
    ("cluster", "expected", "reason", "msg"),
    SESSION_TABLE,
    ids=["missing", "application-cluster", "not-ready", "failed", "ready"],
)
def test_the_session_cluster_decides_first(
    cluster: dict[str, Any] | None, expected: Health, reason: str, msg: str
) -> None:
    if cluster is not None:
        cluster = copy.deepcopy(cluster)
        cluster["metadata"] = {"name": "shared-session", "namespace": "team-a"}
    verdict = FLINK_SESSION_JOB.assess(session_job(), Judging(related={SESSION: cluster}))
    check(verdict, expected, reason, msg)


def test_a_session_cluster_not_observed_is_not_judged() -> None:
    """Offline (no related objects read), the job is judged alone."""
    assert flink_session_job(session_job(), None).health is Health.HEALTHY
    assert flink_session_job(session_job(), {}).health is Health.HEALTHY


def test_it_names_its_session_cluster_as_related() -> None:
    assert FLINK_SESSION_JOB.related is not None
    assert FLINK_SESSION_JOB.related(session_job()) == (SESSION,)
    assert FLINK_SESSION_JOB.related(session_job(spec__deploymentName=...)) == ()


def app(*streamlets: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "federator.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": "orders", "namespace": "team-a", "uid": "u-1"},
        "spec": {"streamlets": list(streamlets)},
    }


def rendered(streamlet: dict[str, Any]) -> dict[str, Any]:
    children = compiler.compile_application(app(streamlet), SETTINGS).children
    (child,) = [c for c in children if c.streamlet == streamlet["name"]]
    return {"kind": child.kind, **child.manifest}


def test_flink_session_selects_a_session_job_on_that_cluster() -> None:
    job = rendered(EXAMPLE_STREAMLET)
    assert job["kind"] == "FlinkSessionJob"
    assert job["spec"]["deploymentName"] == "shared-session"
    assert job["spec"]["job"]["jarURI"] == "https://jars.example.com/score.jar"
    own = rendered({k: v for k, v in EXAMPLE_STREAMLET.items() if k != "flinkSession"})
    assert own["kind"] == "FlinkDeployment"


def test_the_wiring_reaches_the_job_as_arguments_a_block_cannot_replace() -> None:
    streamlet = copy.deepcopy(EXAMPLE_STREAMLET)
    streamlet["flink"]["job"]["args"] = ["--FEDERATOR_OUTLET_OUT_TOPIC", "mine", "--verbose"]
    args = rendered(streamlet)["spec"]["job"]["args"]
    pairs = dict(zip(args[0::2], args[1::2], strict=False))
    assert pairs["--FEDERATOR_OUTLET_OUT_TOPIC"] == "orders.score.out"
    assert args.count("--FEDERATOR_OUTLET_OUT_TOPIC") == 1
    assert args[-1] == "--verbose"  # the block's own arguments are kept, after the wiring
    assert any(a.startswith("--FEDERATOR_KAFKA") for a in args[0::2])


def test_suspend_suspends_the_job_whatever_the_block_says() -> None:
    streamlet = copy.deepcopy(EXAMPLE_STREAMLET)
    streamlet["flink"]["job"]["state"] = "running"
    body = app(streamlet)
    body["spec"]["suspend"] = True
    (child,) = [
        c
        for c in compiler.compile_application(body, SETTINGS).children
        if c.kind == "FlinkSessionJob"
    ]
    assert child.manifest["spec"]["job"]["state"] == "suspended"


@pytest.mark.parametrize(
    ("streamlet", "path"),
    [
        ({"runtime": "spark", "spark": {"mainApplicationFile": "x"}}, "flinkSession"),
        ({"flinkOperator": "lyft", "flink": {"jarName": "a", "entryClass": "A"}}, "flinkSession"),
        ({"flink": {}}, "flink.job.jarURI"),
    ],
    ids=["not-flink", "lyft", "no-jar"],
)
def test_a_session_job_the_operator_cannot_run_is_refused_at_validation(
    streamlet: dict[str, Any], path: str
) -> None:
    with pytest.raises(InvalidSpec) as refused:
        compiler.compile_application(app({**EXAMPLE_STREAMLET, **streamlet}), SETTINGS)
    paths = [p.path for p in refused.value.problems]
    assert f"spec.streamlets[0].{path}" in paths, paths


def test_it_is_registered() -> None:
    assert delegates.BY_KIND["FlinkSessionJob"] is FLINK_SESSION_JOB


@pytest.mark.parametrize(
    "session",
    ["Shared", "shared_session", "shared.session", "-shared", "shared-", "1shared", "s" * 46],
    ids=["upper-case", "underscore", "dot", "leading-dash", "trailing-dash", "digit", "too-long"],
)
def test_a_session_name_that_cannot_name_a_flink_deployment_is_refused(session: str) -> None:
    with pytest.raises(InvalidSpec) as refused:
        compiler.compile_application(app({**EXAMPLE_STREAMLET, "flinkSession": session}), SETTINGS)
    (problem,) = [p for p in refused.value.problems if p.path.endswith("flinkSession")]
    assert problem.path == "spec.streamlets[0].flinkSession"
    assert f"{session!r} cannot name a Flink session cluster" in problem.message
    assert "DNS-1035 label" in problem.message and "at most 45 characters" in problem.message


@pytest.mark.parametrize("session", ["s", "shared-session-2", "s" * 45])
def test_a_session_name_a_flink_deployment_can_have_is_accepted(session: str) -> None:
    compiled = compiler.compile_application(
        app({**EXAMPLE_STREAMLET, "flinkSession": session}), SETTINGS
    )
    (job,) = [c for c in compiled.children if c.kind == "FlinkSessionJob"]
    assert job.manifest["spec"]["deploymentName"] == session
