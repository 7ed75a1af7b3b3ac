"""The namespaces an operator serves (`core.scope`) in the decision of a reconcile.

The application of tests/unit/test_decide.py (`src` -> topic -> `sink`, and `audit` with its own
topic), in `team-a`, its topics in the Kafka namespace `kafka`.

Aspects covered:
- cluster-wide, or serving both namespaces: the decision is the one test_decide's table gives;
- serving `team-a` only: no topic is applied or read, each is refused with a message naming
  the namespace and the way out, the streamlets wait for them, the phase is Degraded; even
  topics observed there (handed in by a careless caller) are neither applied nor pruned;
- a topic that left the spec, in a namespace not served, is kept in the inventory (Degraded,
  saying why), never pruned; a Deployment that left the spec in a served namespace still is;
- which namespaces are served: `-n` values, empty meaning every namespace.
"""

from __future__ import annotations

import pytest
from test_decide import (
    ALL,
    AUDIT,
    FULL,
    KAFKA,
    NOW,
    OWNER,
    SHRUNK,
    SINK,
    SRC,
    WAITING,
    everything,
    items,
)

from federator.core import decide, health
from federator.core.scope import CLUSTERWIDE, REASON_NOT_SERVED, Scope

H = health.Health
APP_ONLY = Scope.of(["team-a"])
TOPICS = {c.name for c in FULL.children if c.topic}


@pytest.mark.parametrize("scope", [CLUSTERWIDE, Scope.of(["team-a", KAFKA])], ids=str)
def test_serving_every_namespace_of_the_children_changes_nothing(scope: Scope) -> None:
    decision = decide.decide(FULL, {}, (), owner=OWNER, installed=ALL, now=NOW, scope=scope)
    assert {c.name for c in decision.apply} == TOPICS
    assert {decision.held[k].reason for k in decision.held} == {WAITING}


def test_children_in_a_namespace_not_served_are_refused_never_written() -> None:
    # Even if the caller hands in what it read there, nothing there is applied or pruned.
    live = {k: v for k, v in everything(FULL).items() if k[1] == KAFKA}
    decision = decide.decide(
        FULL, live, items(FULL), owner=OWNER, installed=ALL, now=NOW, scope=APP_ONLY
    )
    assert decision.apply == () and decision.prune == ()
    refused = {k[2]: v for k, v in decision.held.items() if v.reason == REASON_NOT_SERVED}
    assert set(refused) == TOPICS
    message = refused[next(iter(TOPICS))].message
    assert f"namespace {KAFKA} is not served by this operator (it serves team-a)" in message
    assert "-n or operator.namespaces" in message
    assert {decision.held[k].reason for k in decision.held if k[2] in {SRC, SINK, AUDIT}} == {
        WAITING
    }
    report = decide.report(FULL, decision, live, now=NOW)
    assert report.app_health.phase == H.DEGRADED
    # Still its own: refused, not disowned (a later operator serving `kafka` takes over).
    assert {i.name for i in report.inventory} >= TOPICS


def test_what_left_the_spec_is_not_pruned_in_a_namespace_not_served() -> None:
    live = {k: v for k, v in everything(FULL).items() if k[1] != KAFKA}
    decision = decide.decide(
        SHRUNK, live, items(FULL), owner=OWNER, installed=ALL, now=NOW, scope=APP_ONLY
    )
    assert [i.name for i in decision.prune] == [AUDIT]  # served: pruned as ever
    (kept, why), *others = decision.kept
    assert not others and kept.kind == "KafkaTopic" and kept.namespace == KAFKA
    assert (why.health, why.reason) == (H.DEGRADED, REASON_NOT_SERVED)
    assert "is no longer desired but is not deleted" in why.message
    report = decide.report(SHRUNK, decision, live, now=NOW)
    assert kept in report.inventory


def test_what_is_read_only_in_served_namespaces() -> None:
    read = decide.to_read(FULL.children, items(FULL), ALL, APP_ONLY)
    assert {i.namespace for i in read} == {"team-a"}


@pytest.mark.parametrize(
    ("namespaces", "namespace", "served"),
    [((), "anything", True), (("a", "k"), "k", True), (("a", "k"), "b", False), (("",), "b", True)],
)
def test_which_namespaces_are_served(
    namespaces: tuple[str, ...], namespace: str, served: bool
) -> None:
    assert Scope.of(namespaces).serves(namespace) is served
