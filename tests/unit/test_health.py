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

from typing import Any

import pytest
from delegate_tables import (
    SPARK_SUBMISSION,
    deployment,
    flink_deployment,
    kafka_topic,
    lyft_app,
    spark_app,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from federator.core import delegates, health
from federator.core.health import (
    AppHealth,
    ChildHealth,
    ChildReport,
    Condition,
    Health,
)

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
        assert delegates.assess(kind, body).health is Health.HEALTHY

    def test_not_found_is_missing(self) -> None:
        result = delegates.assess("SparkApplication", None)
        assert (result.health, result.reason) == (Health.MISSING, "NotFound")

    def test_delegate_not_installed_names_the_crd_and_the_operator(self) -> None:
        result = delegates.assess("KafkaTopic", None, delegate_installed=False)
        assert (result.health, result.reason) == (Health.MISSING, "DelegateNotInstalled")
        assert "kafkatopics.kafka.strimzi.io" in result.message
        assert "install the Strimzi cluster operator" in result.message

    def test_unknown_kind(self) -> None:
        result = delegates.assess("StatefulSet", {"status": {}})
        assert (result.health, result.reason) == (Health.UNKNOWN, "UnsupportedKind")

    @pytest.mark.parametrize(
        "body",
        [[1, 2], "status", 42],
        ids=["list", "string", "int"],
    )
    def test_body_not_an_object(self, body: Any) -> None:
        assert delegates.assess("KafkaTopic", body).reason == "MalformedStatus"

    @pytest.mark.parametrize(
        "kind", ["KafkaTopic", "FlinkDeployment", "Deployment"], ids=["kt", "fd", "deploy"]
    )
    def test_status_not_an_object(self, kind: str) -> None:
        result = delegates.assess(kind, {"metadata": {"generation": 1}, "status": ["Ready"]})
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
        # Suspended as asked: Ready (kstatus reads Ready=False as InProgress, and a suspended
        # application is not on its way anywhere), neither Reconciling nor Stalled.
        assert (ready.status, ready.reason) == ("True", "Suspended")
        assert conditions_of(app)["Reconciling"].status == "False"
        assert conditions_of(app)["Stalled"].status == "False"

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
marks = st.none() | st.sampled_from(["", SPARK_SUBMISSION, "d9f8a6a8"])


class TestProperties:
    @settings(max_examples=400, deadline=None)
    @given(
        kind=st.sampled_from([*sorted(delegates.BY_KIND), "Pod"]),
        body=bodies,
        mark=marks,
        suspended=st.booleans(),
    )
    def test_assess_never_raises(
        self, kind: str, body: Any, mark: str | None, suspended: bool
    ) -> None:
        result = delegates.assess(kind, body, mark=mark, suspended=suspended)
        assert isinstance(result.health, Health)
        assert result.reason
        assert len(result.message) <= health.MAX_CHILD_MESSAGE

    @settings(max_examples=100, deadline=None)
    @given(
        reports=st.lists(
            st.builds(
                ChildReport,
                kind=st.sampled_from(sorted(delegates.BY_KIND)),
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
        # Ready: in the state the spec asks for (healthy, or suspended by spec.suspend).
        as_asked = app.phase == "Healthy" or (app.phase == "Suspended" and suspended)
        assert (ready.status == "True") == as_asked
        if not problems and reports and not suspended:
            assert app.phase == health.worst(r.health.health for r in reports).value
