"""Argo CD health checks shipped with the chart (charts/federator/argocd, DESIGN §6 GitOps).

Aspects covered:

- the runtime: every script runs on LuaJIT 2.1 (``lupa.luajit21``) and on PUC Lua 5.1
  (``lupa.lua51``), both the Lua 5.1 dialect of Argo CD's gopher-lua, in a sandbox shaped like
  Argo CD's: only the base, table and package libraries (no ``string``/``math``/``io``/``os``,
  no string methods), the resource in the global ``obj`` with JSON nulls absent, and the chunk's
  returned table read as ``{status, message}``;
- ``federator.io_Application.lua`` on statuses produced by federator's own aggregator
  (``health.aggregate`` + ``operator.status.build_status``) for every phase, Healthy, Progressing,
  Degraded, Suspended, Missing (a delegate operator not installed, and children not found),
  Unknown and Invalid, each message taken from the condition that explains the phase; a stale
  ``observedGeneration`` reads Progressing whatever the phase; no status, a status without phase
  (only kopf's bookkeeping) or without observedGeneration read Progressing; an unrecognised
  phase reads Unknown;
- ``flink.k8s.io_FlinkApplication.lua`` (Lyft) on realistic bodies, compared with federator's own
  adapter ``health.flink_application`` on the same bodies, verdict and message; a property test
  over generated statuses keeps the two in agreement;
- both scripts never fail and always return a valid Argo CD status, whatever JSON they get;
- the scripts use nothing outside Argo CD's libraries (checked statically too, for branches the
  tables do not reach);
- ``argocd-cm.yaml`` embeds both scripts byte for byte under the documented keys.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from federator.core import health
from federator.core.delegates.flinkapplication import flink_application
from federator.core.health import ChildHealth, ChildReport, Health
from federator.core.plan import InventoryItem
from federator.operator.status import build_status, child_entry

REPO_ROOT = Path(__file__).resolve().parents[2]
ARGOCD_DIR = REPO_ROOT / "charts" / "federator" / "argocd"
APPLICATION_LUA = ARGOCD_DIR / "federator.io_Application.lua"
FLINK_APPLICATION_LUA = ARGOCD_DIR / "flink.k8s.io_FlinkApplication.lua"
ARGOCD_CM = ARGOCD_DIR / "argocd-cm.yaml"

# argocd-cm key -> the script it must embed.
CM_KEYS: dict[str, Path] = {
    "resource.customizations.health.federator.io_Application": APPLICATION_LUA,
    "resource.customizations.health.flink.k8s.io_FlinkApplication": FLINK_APPLICATION_LUA,
}

# What Argo CD accepts from a health script (anything else becomes Unknown).
ARGO_STATUSES = frozenset({"Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown"})

# lupa modules that run the Lua 5.1 dialect: LuaJIT 2.1 first (what the issue asks for), then
# PUC Lua 5.1 (the reference implementation gopher-lua follows).
LUA_FLAVOURS = ("luajit21", "lua51")

# Argo CD opens only the base, table and package libraries (plus a safe os); strip the rest,
# and the string metatable's __index, so that `s:sub(1)` fails here as it does in Argo CD.
SANDBOX = """
local string_metatable = getmetatable("")
if string_metatable ~= nil then
  string_metatable.__index = nil
end
string = nil
math = nil
io = nil
os = nil
debug = nil
coroutine = nil
"""

T0 = "2024-05-01T10:00:00Z"
T1 = "2024-05-01T10:05:00Z"


# --------------------------------------------------------------------------------------------------
# Running a health script the way Argo CD does
# --------------------------------------------------------------------------------------------------


def lupa_flavour(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(f"lupa.{name}")
    except ImportError:
        return None


@pytest.fixture(params=LUA_FLAVOURS, scope="module")
def flavour(request: pytest.FixtureRequest) -> ModuleType:
    module = lupa_flavour(request.param)
    if module is None:
        pytest.skip(f"lupa.{request.param} is not available in this lupa build")
    return module


def to_lua(runtime: Any, value: Any) -> Any:
    """A JSON value as Argo CD hands it to Lua: objects and arrays as tables, nulls absent."""
    if isinstance(value, Mapping):
        table = runtime.table()
        for key, item in value.items():
            if item is not None:
                table[key] = to_lua(runtime, item)
        return table
    if isinstance(value, list):
        table = runtime.table()
        for index, item in enumerate(value, start=1):
            if item is not None:
                table[index] = to_lua(runtime, item)
        return table
    return value


def run_health(flavour: ModuleType, script: Path, obj: Mapping[str, Any]) -> tuple[str, str]:
    """``(status, message)`` returned by ``script`` for the resource ``obj``, in a fresh state."""
    runtime = flavour.LuaRuntime(register_eval=False, register_builtins=False)
    runtime.execute(SANDBOX)
    runtime.globals().obj = to_lua(runtime, obj)
    result = runtime.execute(script.read_text(encoding="utf-8"))
    assert flavour.lua_type(result) == "table", f"{script.name} returned {result!r}, not a table"
    status, message = result["status"], result["message"]
    assert status in ARGO_STATUSES, f"{script.name} returned status {status!r}"
    assert message is None or isinstance(message, str), f"message {message!r} is not a string"
    return status, message or ""


def test_both_lua_51_flavours_are_available() -> None:
    """lupa ships LuaJIT 2.1 and Lua 5.1 here: the tables below run on both, never skipped."""
    for name in LUA_FLAVOURS:
        module = lupa_flavour(name)
        assert module is not None, f"lupa.{name} is missing"
        assert module.LuaRuntime().lua_version == (5, 1)


def test_sandbox_matches_argo_cd_libraries(flavour: ModuleType) -> None:
    """String methods and the string/math/os libraries are out of reach, as in Argo CD."""
    runtime = flavour.LuaRuntime(register_eval=False, register_builtins=False)
    runtime.execute(SANDBOX)
    assert runtime.execute("return string == nil and math == nil and os == nil and io == nil")
    assert runtime.execute("return type(ipairs) == 'function' and type(table.insert) == 'function'")
    with pytest.raises(flavour.LuaError):
        runtime.execute('return ("abc"):upper()')


# --------------------------------------------------------------------------------------------------
# federator.io_Application: statuses from our own aggregator
# --------------------------------------------------------------------------------------------------

GENERATION = 4


def report(kind: str, name: str, verdict: Health, reason: str, message: str = "") -> ChildReport:
    return ChildReport(
        kind=kind,
        name=name,
        health=ChildHealth(health=verdict, reason=reason, message=message),
    )


def topic(
    verdict: Health = Health.HEALTHY, reason: str = "Ready", message: str = ""
) -> ChildReport:
    return report(
        "KafkaTopic", "call-record-aggregator.cdr-validator.valid", verdict, reason, message
    )


def spark(
    verdict: Health = Health.HEALTHY, reason: str = "RUNNING", message: str = ""
) -> ChildReport:
    return report(
        "SparkApplication", "call-record-aggregator-cdr-aggregator", verdict, reason, message
    )


def ingress(
    verdict: Health = Health.HEALTHY, reason: str = "Available", message: str = ""
) -> ChildReport:
    return report("Deployment", "call-record-aggregator-cdr-ingress", verdict, reason, message)


def flink(
    verdict: Health = Health.HEALTHY, reason: str = "Running", message: str = ""
) -> ChildReport:
    return report("FlinkApplication", "call-record-aggregator-cdr-window", verdict, reason, message)


_API_VERSIONS = {
    "KafkaTopic": "kafka.strimzi.io/v1",
    "SparkApplication": "sparkoperator.k8s.io/v1beta2",
    "Deployment": "apps/v1",
    "FlinkApplication": "flink.k8s.io/v1beta1",
}


def application(
    children: list[ChildReport],
    *,
    problems: tuple[str, ...] = (),
    suspended: bool = False,
    generation: int = GENERATION,
    observed: int = GENERATION,
) -> dict[str, Any]:
    """An Application body whose status is what the operator writes for these children."""
    app_health = health.aggregate(children, problems=problems, suspended=suspended)
    entries = [
        child_entry(
            InventoryItem(
                kind=child.kind,
                api_version=_API_VERSIONS[child.kind],
                namespace="kafka" if child.kind == "KafkaTopic" else "lightbend",
                name=child.name,
            ),
            child.health,
            "0123abcd",
        )
        for child in children
    ]
    # Written twice, as the operator does over two reconciles: the second keeps the
    # lastTransitionTime of unchanged conditions (what Argo CD sees in a steady state).
    first = build_status({}, app_health, entries, generation=observed, now=T0)
    status = build_status(first, app_health, entries, generation=observed, now=T1)
    status["kopf"] = {"progress": {}}
    return {
        "apiVersion": "federator.io/v1alpha1",
        "kind": "Application",
        "metadata": {
            "name": "call-record-aggregator",
            "namespace": "lightbend",
            "generation": generation,
            "uid": "5f0c1e4e-8f57-4d43-9a55-3c7d1a0f3b7e",
        },
        "spec": {"suspend": suspended},
        "status": status,
    }


def condition_message(body: Mapping[str, Any], kind: str) -> str:
    for item in body["status"]["conditions"]:
        if item["type"] == kind:
            return str(item["message"])
    raise AssertionError(f"no {kind} condition in {body['status']['conditions']}")


# (id, children, aggregate kwargs, phase the aggregator must give, Argo verdict, message source)
APPLICATION_CASES: list[tuple[str, list[ChildReport], dict[str, Any], str, str, str]] = [
    ("healthy", [topic(), spark(), ingress()], {}, "Healthy", "Healthy", "Ready"),
    ("no-children-yet", [], {}, "Progressing", "Progressing", "Ready"),
    (
        "progressing-spark-submitted",
        [topic(), spark(Health.PROGRESSING, "SUBMITTED"), ingress()],
        {},
        "Progressing",
        "Progressing",
        "Ready",
    ),
    (
        "progressing-waiting-for-topics",
        [topic(Health.PROGRESSING, "AwaitingReady"), spark(Health.PROGRESSING, "WaitingForTopics")],
        {},
        "Progressing",
        "Progressing",
        "Ready",
    ),
    (
        "degraded-spark-failed",
        [topic(), spark(Health.DEGRADED, "FAILED", "driver pod failed: OOMKilled"), ingress()],
        {},
        "Degraded",
        "Degraded",
        "Stalled",
    ),
    (
        "degraded-topic-not-ready",
        [topic(Health.DEGRADED, "KafkaError", "Invalid replication factor: 5 > 3 brokers")],
        {},
        "Degraded",
        "Degraded",
        "Stalled",
    ),
    (
        "degraded-while-a-delegate-is-missing",
        [
            flink(Health.MISSING, "DelegateNotInstalled", "install the Lyft flinkk8soperator"),
            spark(Health.DEGRADED, "SUBMISSION_FAILED", "spark-submit: image pull failed"),
        ],
        {},
        "Degraded",
        "Degraded",
        "Stalled",
    ),
    (
        "suspended-by-spec",
        [topic(), spark(Health.SUSPENDED, "SUSPENDED"), ingress(Health.SUSPENDED, "ScaledToZero")],
        {"suspended": True},
        "Suspended",
        "Suspended",
        "Ready",
    ),
    (
        "suspended-topic-paused",
        [topic(Health.SUSPENDED, "ReconciliationPaused")],
        {},
        "Suspended",
        "Suspended",
        "Ready",
    ),
    (
        "missing-delegate-not-installed",
        [
            topic(),
            flink(Health.MISSING, "DelegateNotInstalled", "install the Lyft flinkk8soperator"),
        ],
        {},
        "Missing",
        "Degraded",
        "DelegatesAvailable",
    ),
    (
        "missing-child-not-found",
        [topic(), ingress(Health.MISSING, "NotFound", "the child does not exist")],
        {},
        "Missing",
        "Progressing",
        "Reconciling",
    ),
    (
        "unknown-malformed-child-status",
        [topic(), spark(Health.UNKNOWN, "MalformedStatus", "status is a list, not an object")],
        {},
        "Unknown",
        "Unknown",
        "Ready",
    ),
    (
        "invalid-spec",
        [topic(), spark()],
        {
            "problems": (
                "spec.streamlets[1].inlets[0]: inlet 'in' is not connected",
                "spec.connections[0].from: unknown outlet 'cdr-validatr.valid'"
                " (did you mean 'cdr-validator.valid'?)",
            )
        },
        "Invalid",
        "Degraded",
        "Compiled",
    ),
]
_APPLICATION_IDS = [case[0] for case in APPLICATION_CASES]


def test_application_cases_cover_every_phase() -> None:
    """Every phase the aggregator can write is in the table (a new phase fails here first)."""
    phases = {health_value.value for health_value in Health} | {health.PHASE_INVALID}
    assert {case[3] for case in APPLICATION_CASES} == phases


@pytest.mark.parametrize(
    ("children", "kwargs", "phase", "verdict", "source"),
    [case[1:] for case in APPLICATION_CASES],
    ids=_APPLICATION_IDS,
)
def test_application_verdict_for_each_phase(
    flavour: ModuleType,
    *,
    children: list[ChildReport],
    kwargs: dict[str, Any],
    phase: str,
    verdict: str,
    source: str,
) -> None:
    body = application(children, **kwargs)
    assert body["status"]["phase"] == phase, "the aggregator no longer gives this phase"
    status, message = run_health(flavour, APPLICATION_LUA, body)
    assert status == verdict
    expected = condition_message(body, source)
    assert expected, f"the {source} condition has no message to show"
    assert message == expected


@pytest.mark.parametrize(
    ("children", "kwargs"), [case[1:3] for case in APPLICATION_CASES], ids=_APPLICATION_IDS
)
def test_application_stale_observed_generation_is_progressing(
    flavour: ModuleType, children: list[ChildReport], kwargs: dict[str, Any]
) -> None:
    """The spec changed since the status was written: whatever it says is about the old spec."""
    body = application(children, generation=GENERATION + 1, observed=GENERATION, **kwargs)
    status, message = run_health(flavour, APPLICATION_LUA, body)
    assert (status, message) == (
        "Progressing",
        f"waiting for federator: status describes generation {GENERATION},"
        f" spec is generation {GENERATION + 1}",
    )


def test_application_without_status_is_progressing(flavour: ModuleType) -> None:
    body = application([topic()])
    del body["status"]
    assert run_health(flavour, APPLICATION_LUA, body) == (
        "Progressing",
        "waiting for federator to report a status",
    )


@pytest.mark.parametrize(
    "status",
    [
        {},
        {"kopf": {"progress": {"federator": {"started": T0, "retries": 1}}}},
        {"phase": ""},
        {"phase": None, "observedGeneration": GENERATION},
        {"phase": 7, "observedGeneration": GENERATION},
    ],
    ids=["empty", "only-kopf", "empty-phase", "null-phase", "phase-not-a-string"],
)
def test_application_without_phase_is_progressing(
    flavour: ModuleType, status: dict[str, Any]
) -> None:
    """Before federator's first status write only kopf's bookkeeping may be there."""
    body = application([topic()])
    body["status"] = status
    assert run_health(flavour, APPLICATION_LUA, body)[0] == "Progressing"


def test_application_without_observed_generation_is_progressing(flavour: ModuleType) -> None:
    body = application([topic(), spark()])
    del body["status"]["observedGeneration"]
    assert run_health(flavour, APPLICATION_LUA, body) == (
        "Progressing",
        "waiting for federator: status has no observedGeneration",
    )


def test_application_unrecognised_phase_is_unknown(flavour: ModuleType) -> None:
    body = application([topic()])
    body["status"]["phase"] = "Exploded"
    assert run_health(flavour, APPLICATION_LUA, body) == ("Unknown", "unrecognised phase Exploded")


def test_application_message_falls_back_to_the_summary(flavour: ModuleType) -> None:
    """A status without conditions (hand-written, or an older operator) still says something."""
    body = application([topic(), spark(Health.PROGRESSING, "SUBMITTED")])
    del body["status"]["conditions"]
    assert run_health(flavour, APPLICATION_LUA, body) == (
        "Progressing",
        "phase Progressing, 1/2 children healthy",
    )


def test_application_last_condition_of_a_type_wins(flavour: ModuleType) -> None:
    body = application([topic(), spark(Health.PROGRESSING, "SUBMITTED")])
    body["status"]["conditions"].append(
        {"type": "Ready", "status": "False", "reason": "WaitingForChildren", "message": "later"}
    )
    assert run_health(flavour, APPLICATION_LUA, body) == ("Progressing", "later")


# --------------------------------------------------------------------------------------------------
# flink.k8s.io_FlinkApplication (Lyft): the same verdicts as federator's adapter
# --------------------------------------------------------------------------------------------------


def lyft_app(status_changes: Mapping[str, Any] | None = None, **drop: bool) -> dict[str, Any]:
    """A Lyft FlinkApplication as flinkk8soperator writes it: phase Running, job RUNNING.

    ``status_changes`` replaces top-level status fields (``None`` removes one); ``jobStatus``
    may be given as a mapping merged into the running job's status.
    """
    status: dict[str, Any] = {
        "phase": "Running",
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
            "entryClass": "com.example.cdr.Window",
            "jarName": "cdr-window-2.0.0.jar",
            "jobID": "acd232a002dd5204669d1041736b8fa0",
            "parallelism": 3,
            "health": "Green",
            "completedCheckpointCount": 12,
            "failedCheckpointCount": 0,
            "jobRestartCount": 0,
            "startTime": "2024-05-01T10:00:59Z",
            "state": "RUNNING",
        },
        "lastSeenError": None,
        "lastUpdatedAt": "2024-05-01T10:01:09Z",
        "retryCount": 0,
    }
    for key, value in (status_changes or {}).items():
        if value is None:
            status.pop(key, None)
        elif key == "jobStatus" and isinstance(value, Mapping):
            status["jobStatus"] = {**status["jobStatus"], **value}
        else:
            status[key] = value
    body: dict[str, Any] = {
        "apiVersion": "flink.k8s.io/v1beta1",
        "kind": "FlinkApplication",
        "metadata": {
            "name": "call-record-aggregator-cdr-window",
            "namespace": "lightbend",
            "generation": 2,
            "finalizers": ["job.finalizers.flink.k8s.io"],
            "labels": {"app.kubernetes.io/managed-by": "federator"},
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
        "status": status,
    }
    if drop.get("status"):
        del body["status"]
    return body


_APP_ERROR = (
    "SubmitJob call failed with status 500 and message "
    "'org.apache.flink.client.program.ProgramInvocationException: The main method caused an error'"
)

# (id, body, Argo verdict) — the message must also equal the adapter's.
FLINK_CASES: list[tuple[str, dict[str, Any], str]] = [
    ("running-job-running", lyft_app(), "Healthy"),
    ("running-job-failed", lyft_app({"jobStatus": {"state": "FAILED"}}), "Degraded"),
    ("running-job-failing", lyft_app({"jobStatus": {"state": "FAILING"}}), "Degraded"),
    (
        "running-job-failed-with-error",
        lyft_app({"jobStatus": {"state": "FAILED"}, "lastSeenError": {"appError": _APP_ERROR}}),
        "Degraded",
    ),
    ("running-job-finished", lyft_app({"jobStatus": {"state": "FINISHED"}}), "Degraded"),
    ("running-job-canceled", lyft_app({"jobStatus": {"state": "CANCELED"}}), "Degraded"),
    ("running-job-restarting", lyft_app({"jobStatus": {"state": "RESTARTING"}}), "Progressing"),
    ("running-job-created", lyft_app({"jobStatus": {"state": "CREATED"}}), "Progressing"),
    ("running-no-job-status", lyft_app({"jobStatus": None}), "Progressing"),
    (
        "deploy-failed",
        lyft_app(
            {
                "phase": "DeployFailed",
                "failedDeployHash": "5c1e0b2f",
                "lastSeenError": {
                    "appError": _APP_ERROR,
                    "method": "SubmitJob",
                    "errorCode": "500",
                    "isRetryable": False,
                },
                "retryCount": 3,
            }
        ),
        "Degraded",
    ),
    ("deploy-failed-no-error", lyft_app({"phase": "DeployFailed"}), "Degraded"),
    (
        "rolling-back-job",
        lyft_app({"phase": "RollingBackJob", "reason": "job failed to start within 10m"}),
        "Degraded",
    ),
    (
        "failed-deploy-hash-while-running-old-job",
        lyft_app({"failedDeployHash": "5c1e0b2f"}),
        "Degraded",
    ),
    (
        "new-no-phase",
        lyft_app({"phase": None, "jobStatus": None, "deployHash": None}),
        "Progressing",
    ),
    ("no-status", lyft_app(status=True), "Progressing"),
    ("empty-status", {**lyft_app(status=True), "status": {}}, "Progressing"),
    ("cluster-starting", lyft_app({"phase": "ClusterStarting", "jobStatus": None}), "Progressing"),
    ("submitting-job", lyft_app({"phase": "SubmittingJob"}), "Progressing"),
    ("updating", lyft_app({"phase": "Updating"}), "Progressing"),
    ("rescaling", lyft_app({"phase": "Rescaling"}), "Progressing"),
    ("savepointing", lyft_app({"phase": "Savepointing"}), "Progressing"),
    ("cancelling", lyft_app({"phase": "Cancelling"}), "Progressing"),
    ("deleting", lyft_app({"phase": "Deleting"}), "Progressing"),
    ("dual-running", lyft_app({"phase": "DualRunning"}), "Progressing"),
    (
        "recovering-with-reason",
        lyft_app({"phase": "Recovering", "reason": "TaskManager lost; restoring from savepoint"}),
        "Progressing",
    ),
    ("unrecognised-phase", lyft_app({"phase": "Exploded"}), "Unknown"),
    ("phase-not-a-string", lyft_app({"phase": 3}), "Unknown"),
]


def lua_and_adapter(flavour: ModuleType, body: dict[str, Any]) -> tuple[tuple[str, str], str, str]:
    """The Lua verdict, and the adapter's health and the message Argo CD should show for it.

    The adapter leaves the message of a plain progressing phase empty; the script names the
    phase instead (``phase Updating``), which is all Argo CD has to show.
    """
    verdict = flink_application(body)
    expected = verdict.message
    status = body.get("status")
    if not expected and verdict.health is Health.PROGRESSING and isinstance(status, Mapping):
        expected = f"phase {status.get('phase') or 'New'}"
    return run_health(flavour, FLINK_APPLICATION_LUA, body), verdict.health.value, expected


@pytest.mark.parametrize(
    ("body", "verdict"), [case[1:] for case in FLINK_CASES], ids=[case[0] for case in FLINK_CASES]
)
def test_flink_application_matches_the_adapter(
    flavour: ModuleType, body: dict[str, Any], verdict: str
) -> None:
    (status, message), adapter_health, expected_message = lua_and_adapter(flavour, body)
    assert adapter_health == verdict, "federator's adapter changed its verdict"
    assert status == verdict
    assert message == expected_message


def test_flink_application_degraded_message_carries_the_operator_error(
    flavour: ModuleType,
) -> None:
    body = lyft_app({"phase": "DeployFailed", "lastSeenError": {"appError": _APP_ERROR}})
    assert run_health(flavour, FLINK_APPLICATION_LUA, body) == ("Degraded", _APP_ERROR)


_PHASES = st.sampled_from(
    [
        "Running",
        "DeployFailed",
        "RollingBackJob",
        "",
        "Updating",
        "ClusterStarting",
        "SubmittingJob",
        "Savepointing",
        "Recovering",
        "DualRunning",
        "Rescaling",
        "Cancelling",
        "Deleting",
        "Exploded",
    ]
)
_JOB_STATES = st.sampled_from(
    [None, "RUNNING", "FAILED", "FAILING", "FINISHED", "CANCELED", "RESTARTING", "CREATED", ""]
)
_MAYBE_TEXT = st.sampled_from([None, "", "5c1e0b2f", "d9f8a6a8"])
_ERRORS = st.sampled_from([None, "", "job failed to start", "ProgramInvocationException"])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    phase=st.one_of(st.none(), _PHASES),
    job_state=_JOB_STATES,
    deploy_hash=_MAYBE_TEXT,
    failed_hash=_MAYBE_TEXT,
    reason=_ERRORS,
    app_error=_ERRORS,
)
def test_flink_application_agrees_with_the_adapter_on_generated_statuses(
    *,
    phase: str | None,
    job_state: str | None,
    deploy_hash: str | None,
    failed_hash: str | None,
    reason: str | None,
    app_error: str | None,
) -> None:
    module = lupa_flavour("luajit21") or lupa_flavour("lua51")
    assert module is not None
    status: dict[str, Any] = {
        "phase": phase,
        "jobStatus": {"state": job_state} if job_state is not None else None,
        "deployHash": deploy_hash,
        "failedDeployHash": failed_hash,
        "reason": reason,
        "lastSeenError": {"appError": app_error} if app_error is not None else None,
    }
    # Argo CD hands JSON nulls to Lua as absent keys: give the adapter the same object.
    status = {key: value for key, value in status.items() if value is not None}
    body = {**lyft_app(status=True), "status": status}
    (lua_status, lua_message), adapter_health, expected_message = lua_and_adapter(module, body)
    assert (lua_status, lua_message) == (adapter_health, expected_message)


# --------------------------------------------------------------------------------------------------
# Robustness and dialect
# --------------------------------------------------------------------------------------------------

_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**31), max_value=2**31)
    | st.text(max_size=8)
    | st.sampled_from(["Healthy", "Missing", "Running", "FAILED", "Ready", "False", "True"]),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                [
                    "phase",
                    "observedGeneration",
                    "conditions",
                    "type",
                    "status",
                    "message",
                    "summary",
                    "jobStatus",
                    "state",
                    "deployHash",
                    "failedDeployHash",
                    "lastSeenError",
                    "appError",
                    "reason",
                ]
            ),
            children,
            max_size=5,
        )
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(status=_JSON, generation=st.one_of(st.none(), st.integers(0, 10), st.text(max_size=2)))
def test_scripts_never_fail_on_any_json(status: Any, generation: Any) -> None:
    """Argo CD shows a failing script as an error on the resource: ours must always answer."""
    module = lupa_flavour("luajit21") or lupa_flavour("lua51")
    assert module is not None
    body = {"metadata": {"name": "x", "generation": generation}, "status": status}
    for script in (APPLICATION_LUA, FLINK_APPLICATION_LUA):
        run_health(module, script, body)


def _code(script: Path) -> str:
    """The script without its comments (none of ours puts `--` inside a string)."""
    return "\n".join(line.split("--", 1)[0] for line in script.read_text().splitlines())


@pytest.mark.parametrize("script", [APPLICATION_LUA, FLINK_APPLICATION_LUA], ids=lambda p: p.name)
def test_scripts_use_only_argo_cd_libraries(script: Path) -> None:
    """No library Argo CD leaves closed, no string method, no Lua 5.2+ syntax (goto, //, bitops)."""
    code = _code(script)
    closed = re.findall(r"\b(string|math|io|os|debug|coroutine|utf8|bit|bit32)\s*\.", code)
    assert not closed, f"{script.name} uses closed libraries: {sorted(set(closed))}"
    assert not re.search(r"\)\s*:\s*\w+\s*\(|\"\s*:\s*\w+\s*\(", code), "string method call"
    assert not re.search(r"\bgoto\b|//|::\w+::|~(?!=)|<<|>>", code), "Lua 5.2+ syntax"
    assert "\t" not in script.read_text(), "tabs do not embed cleanly in the YAML block scalar"


# --------------------------------------------------------------------------------------------------
# argocd-cm snippet
# --------------------------------------------------------------------------------------------------


def test_argocd_cm_embeds_the_scripts_byte_for_byte() -> None:
    """Edit the .lua file, then copy it into argocd-cm.yaml (indented four spaces)."""
    manifest = yaml.safe_load(ARGOCD_CM.read_text(encoding="utf-8"))
    assert manifest["apiVersion"] == "v1"
    assert manifest["kind"] == "ConfigMap"
    assert manifest["metadata"]["name"] == "argocd-cm"
    # No namespace: the patch goes to wherever Argo CD runs (`kubectl -n argocd patch ...`).
    assert "namespace" not in manifest["metadata"]
    assert set(manifest["data"]) == set(CM_KEYS)
    for key, script in CM_KEYS.items():
        assert manifest["data"][key] == script.read_text(encoding="utf-8"), (
            f"{ARGOCD_CM.name} {key} is out of date with {script.name}"
        )


def test_argocd_cm_snippet_runs_like_the_files(flavour: ModuleType) -> None:
    """What Argo CD will actually run (the ConfigMap value) gives the same verdicts."""
    manifest = yaml.safe_load(ARGOCD_CM.read_text(encoding="utf-8"))
    runtime = flavour.LuaRuntime(register_eval=False, register_builtins=False)
    runtime.execute(SANDBOX)
    runtime.globals().obj = to_lua(runtime, lyft_app({"jobStatus": {"state": "FAILING"}}))
    result = runtime.execute(manifest["data"][next(iter(k for k in CM_KEYS if "flink" in k))])
    assert result["status"] == "Degraded"
