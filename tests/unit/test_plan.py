"""The reconcile plan (DESIGN §4), as tables over compiled children and observed state.

Aspects covered:
- first reconcile applies topics and holds streamlets until their topics are Healthy;
- unchanged children (same spec-hash, no drift) are not written; drift or a deletion by hand is;
- a missing delegate CRD holds only its own children (Missing, DelegateNotInstalled);
- an object that belongs to another application is never taken over, nor one federator did
  not create (AlreadyExists), unless its owner consented (`federator.io/adopt`);
- pruning: removed streamlets are deleted; removed topics only under deletionPolicy Delete;
  only objects that carry this application's annotation now; children found in the cluster
  (a crash kept them out of the inventory) are pruned too;
- the deletion plan of the finalizer, by the same ownership rule.
(What ends up in the inventory, status.children, is `decide.report`'s: tests/unit/test_decide.py.)
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from federator.core import compiler, delegates, health, naming
from federator.core.health import REASON_DELEGATE_NOT_INSTALLED
from federator.core.model import DeletionPolicy
from federator.core.plan import (
    REASON_ALREADY_EXISTS,
    REASON_OWNED_ELSEWHERE,
    REASON_WAITING_FOR_TOPICS,
    InventoryItem,
    Observed,
    contains,
    deletion_plan,
    make_plan,
)
from federator.core.render import Child
from federator.core.settings import parse_settings

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = parse_settings(yaml.safe_load((ROOT / "examples" / "settings.yaml").read_text()))
ALL_CRDS = frozenset(d.crd_name for d in delegates.ALL)
OWNER = "lightbend/call-record-aggregator"
HEALTHY = health.ChildHealth(health=health.Health.HEALTHY, reason="Ready")
PROGRESSING = health.ChildHealth(health=health.Health.PROGRESSING, reason="AwaitingStatus")


def children(**edits: Any) -> tuple[Child, ...]:
    body = yaml.safe_load((ROOT / "examples" / "call-record-aggregator.yaml").read_text())
    body["spec"].update(edits)
    return compiler.compile_application(body, SETTINGS).children


def live(child: Child, verdict: health.ChildHealth = HEALTHY, **meta: Any) -> Observed:
    body = copy.deepcopy(dict(child.manifest))
    body["metadata"].update(meta)
    return Observed.from_body(body, verdict)


def plan_for(
    desired: tuple[Child, ...],
    observed: dict[Any, Observed] | None = None,
    inventory: tuple[InventoryItem, ...] = (),
    installed: frozenset[str] = ALL_CRDS,
    policy: DeletionPolicy = DeletionPolicy.RETAIN,
) -> Any:
    return make_plan(
        desired,
        observed or {},
        inventory,
        owner=OWNER,
        installed=installed,
        deletion_policy=policy,
    )


def test_first_reconcile_applies_topics_and_holds_streamlets() -> None:
    desired = children()
    plan = plan_for(desired)
    assert {c.kind for c in plan.apply} == {"KafkaTopic"}
    assert len(plan.apply) == 7
    assert {h.health.reason for h in plan.held} == {REASON_WAITING_FOR_TOPICS}
    merge = next(h for h in plan.held if h.child.streamlet == "merge")
    assert "call-record-aggregator.cdr-generator1.out" in merge.health.message


def test_streamlets_apply_once_their_topics_are_healthy() -> None:
    desired = children()
    observed = {c.key: live(c) for c in desired if c.topic}
    plan = plan_for(desired, observed)
    assert [c.streamlet for c in plan.apply] == [c.streamlet for c in desired if c.streamlet]
    assert len(plan.unchanged) == 7 and not plan.held


def test_one_unready_topic_holds_only_its_streamlets() -> None:
    desired = children()
    observed = {
        c.key: live(c, PROGRESSING if c.topic == "call-record-aggregator.merge.out" else HEALTHY)
        for c in desired
        if c.topic
    }
    held = {h.child.streamlet for h in plan_for(desired, observed).held}
    assert held == {"merge", "cdr-validator"}


def test_converged_application_writes_nothing() -> None:
    desired = children()
    plan = plan_for(desired, {c.key: live(c) for c in desired})
    assert plan.apply == () and plan.prune == () and len(plan.unchanged) == len(desired)


@pytest.mark.parametrize(
    "edit",
    ["replicas", "label", "deleted"],
    ids=["spec-edited-by-hand", "label-removed-by-hand", "deleted-by-hand"],
)
def test_drift_is_repaired(edit: str) -> None:
    desired = children()
    observed = {c.key: live(c) for c in desired}
    target = next(c for c in desired if c.kind == "Deployment")
    if edit == "deleted":
        del observed[target.key]
    else:
        body = copy.deepcopy(dict(observed[target.key].body))
        if edit == "replicas":
            body["spec"]["replicas"] = 7
        else:
            body["metadata"]["labels"].pop("federator.io/streamlet")
        observed[target.key] = Observed.from_body(body, HEALTHY)
    assert [c.key for c in plan_for(desired, observed).apply] == [target.key]


def test_server_defaults_are_not_drift() -> None:
    desired = children()
    observed = {}
    for c in desired:
        body = copy.deepcopy(dict(c.manifest))
        body["spec"]["addedByTheServer"] = True
        body["metadata"]["resourceVersion"] = "42"
        observed[c.key] = Observed.from_body(body, HEALTHY)
    assert plan_for(desired, observed).apply == ()


def test_a_missing_delegate_holds_only_its_children() -> None:
    desired = children()
    observed = {c.key: live(c) for c in desired if c.topic}
    installed = ALL_CRDS - {delegates.SPARK_APPLICATION.crd_name}
    plan = plan_for(desired, observed, installed=installed)
    held = {h.child.kind: h.health for h in plan.held}
    assert set(held) == {"SparkApplication"}
    assert held["SparkApplication"].health is health.Health.MISSING
    assert held["SparkApplication"].reason == REASON_DELEGATE_NOT_INSTALLED
    assert "Spark operator" in held["SparkApplication"].message
    assert {c.kind for c in plan.apply} == {"Deployment"}


def test_objects_of_another_application_are_not_taken_over() -> None:
    desired = children()
    topic = desired[0]
    observed = {topic.key: live(topic, annotations={"federator.io/application": "x/other"})}
    plan = plan_for(desired, observed)
    held = next(h for h in plan.held if h.child.key == topic.key)
    assert held.health.reason == REASON_OWNED_ELSEWHERE and "x/other" in held.health.message
    assert topic.key not in {c.key for c in plan.apply}


@pytest.mark.parametrize(
    ("policy", "topic_pruned"),
    [(DeletionPolicy.RETAIN, False), (DeletionPolicy.DELETE, True)],
    ids=["retain-keeps-topic", "delete-prunes-topic"],
)
def test_removed_children_are_pruned_by_policy(policy: DeletionPolicy, topic_pruned: bool) -> None:
    old = children()
    body_edit = yaml.safe_load((ROOT / "examples" / "call-record-aggregator.yaml").read_text())
    spec = body_edit["spec"]
    spec["streamlets"] = [s for s in spec["streamlets"] if s["name"] != "error-egress"]
    validator = next(s for s in spec["streamlets"] if s["name"] == "cdr-validator")
    validator["outlets"] = ["valid"]
    spec["connections"] = [c for c in spec["connections"] if "invalid" not in c["from"]]
    new = compiler.compile_application(body_edit, SETTINGS).children
    inventory = tuple(InventoryItem.from_child(c) for c in old)
    observed = {c.key: live(c) for c in old} | {c.key: live(c) for c in new}
    plan = plan_for(new, observed, inventory, policy=policy)
    pruned = {(i.kind, i.name) for i in plan.prune}
    assert ("Deployment", "call-record-aggregator-error-egress") in pruned
    invalid_topic = ("KafkaTopic", "call-record-aggregator.cdr-validator.invalid")
    assert (invalid_topic in pruned) is topic_pruned  # Retain: released, never deleted


def test_deletion_plan_leaves_owned_children_to_the_garbage_collector() -> None:
    desired = children()
    inventory = [InventoryItem.from_child(c) for c in desired]
    observed = {c.key: live(c) for c in desired}

    def plan(policy: DeletionPolicy) -> tuple[InventoryItem, ...]:
        return deletion_plan(
            inventory,
            app_namespace="lightbend",
            deletion_policy=policy,
            owner=OWNER,
            observed=observed,
        )

    assert plan(DeletionPolicy.RETAIN) == ()
    delete = plan(DeletionPolicy.DELETE)
    assert {i.kind for i in delete} == {"KafkaTopic"} and len(delete) == 7


def _foreign(child: Child, **annotations: str) -> Observed:
    """The object of that name, made by someone else: no federator annotations but these."""
    body = copy.deepcopy(dict(child.manifest))
    body["metadata"]["annotations"] = dict(annotations)
    body["metadata"]["labels"] = {}
    return Observed.from_body(body, HEALTHY)


@pytest.mark.parametrize(
    ("annotations", "reason", "fragment"),
    [
        ({}, REASON_ALREADY_EXISTS, "was not created by federator; it is left untouched"),
        (
            {naming.ADOPT_ANNOTATION: "team-b/other"},
            REASON_ALREADY_EXISTS,
            f"annotate it {naming.ADOPT_ANNOTATION}={OWNER}",
        ),
        (
            {naming.APPLICATION_ANNOTATION: "team-b/other"},
            REASON_OWNED_ELSEWHERE,
            "already belongs to application team-b/other",
        ),
        ({naming.ADOPT_ANNOTATION: OWNER}, None, ""),
    ],
    ids=["not-federators", "consent-for-another-app", "another-apps", "adopt-consented"],
)
def test_an_object_federator_did_not_create_is_never_written_without_consent(
    annotations: dict[str, str], reason: str | None, fragment: str
) -> None:
    desired = children()
    topic = next(c for c in desired if c.kind == "KafkaTopic")
    deployment = next(c for c in desired if c.kind == "Deployment")
    observed = {
        topic.key: _foreign(topic, **annotations),
        deployment.key: _foreign(deployment, **annotations),
    }
    plan = plan_for(desired, observed, policy=DeletionPolicy.DELETE)
    held = {h.child.key: h.health for h in plan.held}
    for child in (topic, deployment):
        if reason is None:  # adopted: applied, and from then on ours (test_decide: inventory)
            assert child.key in {c.key for c in plan.apply} or child.key in held
            continue
        verdict = held[child.key]
        assert (verdict.health, verdict.reason) == (health.Health.DEGRADED, reason)
        assert f"{child.kind} {child.namespace}/{child.name}" in verdict.message
        assert fragment in verdict.message
        assert child.key not in {c.key for c in plan.apply}
    if reason == REASON_ALREADY_EXISTS:
        assert "declare it managed: false" in held[topic.key].message
        assert "rename the streamlet or the application" in held[deployment.key].message


def test_only_objects_that_are_this_applications_now_are_pruned() -> None:
    old = children()
    gone, foreign, taken, ours = (
        next(c for c in old if c.kind == "KafkaTopic"),
        next(c for c in old if c.kind == "SparkApplication"),
        next(c for c in old if c.kind == "Deployment"),
        [c for c in old if c.kind == "Deployment"][1],
    )
    inventory = tuple(InventoryItem.from_child(c) for c in (gone, foreign, taken, ours))
    observed = {
        foreign.key: _foreign(foreign),  # re-created by someone else since
        taken.key: _foreign(taken, **{naming.APPLICATION_ANNOTATION: "team-b/other"}),
        ours.key: live(ours),
    }  # `gone` is not observed: already deleted
    plan = plan_for((), observed, inventory, policy=DeletionPolicy.DELETE)
    assert [i.key for i in plan.prune] == [ours.key]
    for_deletion = deletion_plan(
        inventory,
        app_namespace="elsewhere",  # so that Deployments are the finalizer's to delete
        deletion_policy=DeletionPolicy.DELETE,
        owner=OWNER,
        observed=observed,
    )
    assert [i.key for i in for_deletion] == [ours.key]


@pytest.mark.parametrize(
    ("policy", "pruned_kinds"),
    [
        (DeletionPolicy.DELETE, {"KafkaTopic", "Deployment"}),
        (DeletionPolicy.RETAIN, {"Deployment"}),  # the topic is released, never deleted
    ],
    ids=["delete", "retain"],
)
def test_children_found_in_the_cluster_but_not_in_the_inventory_are_pruned(
    policy: DeletionPolicy, pruned_kinds: set[str]
) -> None:
    """A crash between an apply and the status write: the child is in the cluster with our
    annotation, not in status.children; once it is no longer desired it is pruned all the
    same (topics by policy); one found with another owner is left alone."""
    old = children()
    topic = next(c for c in old if c.kind == "KafkaTopic")
    deployment = next(c for c in old if c.kind == "Deployment")
    stranger = next(c for c in old if c.kind == "SparkApplication")
    found = [
        live(topic),
        live(deployment),
        _foreign(stranger, **{naming.APPLICATION_ANNOTATION: "team-b/other"}),
    ]
    plan = make_plan(
        (), {}, (), owner=OWNER, installed=ALL_CRDS, deletion_policy=policy, found=found
    )
    assert {i.kind for i in plan.prune} == pruned_kinds
    pruned_topic = next((i for i in plan.prune if i.kind == "KafkaTopic"), None)
    if pruned_topic is not None:
        assert pruned_topic.topic == topic.topic
    deletion = deletion_plan(
        (),
        app_namespace="lightbend",
        deletion_policy=policy,
        owner=OWNER,
        observed={},
        found=found,
    )
    assert {i.kind for i in deletion} == ({"KafkaTopic"} & pruned_kinds)


@pytest.mark.parametrize(
    ("desired", "actual", "expected"),
    [
        ({"a": 1}, {"a": 1, "b": 2}, True),
        ({"a": 1}, {"a": 2}, False),
        ({"a": [{"x": 1}]}, {"a": [{"x": 1, "y": 2}]}, True),
        ({"a": [{"x": 1}]}, {"a": [{"x": 1}, {"x": 2}]}, False),
        ({"a": {"b": 1}}, {"a": None}, False),
    ],
    ids=["extra-field", "changed", "list-item-defaults", "list-grew", "map-removed"],
)
def test_contains(desired: Any, actual: Any, expected: bool) -> None:
    assert contains(desired, actual) is expected


@pytest.mark.parametrize(
    "annotations",
    [{}, {naming.APPLICATION_ANNOTATION: "team-b/other"}],
    ids=["not-federators", "another-apps"],
)
def test_streamlets_never_start_on_a_topic_that_is_not_ours(annotations: dict[str, str]) -> None:
    """However healthy another's topic is, it is not this application's: its producers and
    consumers wait (they would write into, and join the consumer group of, someone else's)."""
    desired = children()
    observed = {c.key: _foreign(c, **annotations) for c in desired if c.topic}
    plan = plan_for(desired, observed)
    assert not [c for c in plan.apply if c.kind != "KafkaTopic"]
    waiting = [h for h in plan.held if h.health.reason == REASON_WAITING_FOR_TOPICS]
    assert len(waiting) == len([c for c in desired if c.kind != "KafkaTopic"])
