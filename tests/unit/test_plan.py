"""The reconcile plan (DESIGN §4), as tables over compiled children and observed state.

Aspects covered:
- first reconcile applies topics and holds streamlets until their topics are Healthy;
- unchanged children (same spec-hash, no drift) are not written; drift or a deletion by hand is;
- a missing delegate CRD holds only its own children (Missing, DelegateNotInstalled);
- an object that belongs to another application is never taken over;
- pruning: removed streamlets are deleted; removed topics only under deletionPolicy Delete;
- the deletion plan of the finalizer;
- the inventory that ends up in status.children.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from federator.core import compiler, health, runtimes
from federator.core.model import DeletionPolicy
from federator.core.plan import (
    REASON_DELEGATE_NOT_INSTALLED,
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
ALL_CRDS = frozenset(d.crd_name for d in runtimes.ALL)
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
    installed = ALL_CRDS - {runtimes.SPARK_APPLICATION.crd_name}
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
    assert topic.key not in {i.key for i in plan.inventory}


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
    plan = plan_for(new, {c.key: live(c) for c in new}, inventory, policy=policy)
    pruned = {(i.kind, i.name) for i in plan.prune}
    assert ("Deployment", "call-record-aggregator-error-egress") in pruned
    invalid_topic = ("KafkaTopic", "call-record-aggregator.cdr-validator.invalid")
    assert (invalid_topic in pruned) is topic_pruned
    assert (invalid_topic in {(i.kind, i.name) for i in plan.release}) is not topic_pruned


def test_deletion_plan_leaves_owned_children_to_the_garbage_collector() -> None:
    inventory = [InventoryItem.from_child(c) for c in children()]
    retain = deletion_plan(
        inventory, app_namespace="lightbend", deletion_policy=DeletionPolicy.RETAIN
    )
    assert retain == ()
    delete = deletion_plan(
        inventory, app_namespace="lightbend", deletion_policy=DeletionPolicy.DELETE
    )
    assert {i.kind for i in delete} == {"KafkaTopic"} and len(delete) == 7


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
