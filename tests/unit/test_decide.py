"""The decision of one reconcile (`core.decide`), as tables like the health adapters'.

Each case is the observed state of one small application (a `src` container streamlet writing
topic `app.src.out`, read by `sink` on Spark; `audit`, a container with its own outlet topic
`app.audit.out`) and what the reconcile must decide and report. No I/O: the bodies are what
the shell would have read.

Aspects covered:
- a new child is applied (topics first; streamlets wait for them); an unchanged one is not;
- a removed streamlet is pruned; its topic too under deletionPolicy Delete, kept (dropped from
  the inventory, never deleted) under Retain;
- an object that is not this application's (AlreadyExists, OwnedByAnotherApplication) is not
  written, not claimed (`owned: false`), and its streamlets wait;
- a kind whose CRD is not installed is Missing (DelegateNotInstalled); the rest goes on;
- suspended: nothing to write, the phase is Suspended;
- a summarised inventory: the children found by listing are pruned all the same; when a
  reconcile lists them (`lists_owned`);
- what the installed CRDs refuse wins over waiting, not over "not ours" / "not installed";
- the apply marks and `now` reach the verdicts; `report` after the writes: failures, retries,
  failed prunes kept in the inventory, unmanaged topics reported but never claimed;
- an invalid spec reports the previous children with their spec hashes;
- what a previous status says federator owns (`inventory.items`: owned, well-formed, known kinds).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from federator.core import compiler, crdcheck, decide, delegates, health, inventory, naming
from federator.core.compiler import Compiled
from federator.core.health import REASON_DELEGATE_NOT_INSTALLED
from federator.core.keys import Key
from federator.core.plan import (
    REASON_ALREADY_EXISTS,
    REASON_OWNED_ELSEWHERE,
    REASON_WAITING_FOR_TOPICS,
    InventoryItem,
    Observed,
)
from federator.core.render import Child
from federator.core.settings import parse_settings

NS, KAFKA = "team-a", "kafka"
OWNER = f"{NS}/app"
NOW = "2026-01-01T00:00:00Z"
SETTINGS = parse_settings(
    {
        "kafkaClusters": [
            {"name": "default", "strimziCluster": "s", "namespace": KAFKA, "bootstrapServers": "b"}
        ]
    }
)
ALL = frozenset(d.crd_name for d in delegates.ALL if not d.builtin)
NO_SPARK = ALL - {delegates.SPARK_APPLICATION.crd_name}
H = health.Health


def spec(*, audit: bool = True, **edits: Any) -> dict[str, Any]:
    streamlets: list[dict[str, Any]] = [
        {"name": "src", "runtime": "container", "image": "r.example.com/src:1", "outlets": ["out"]},
        {
            "name": "sink",
            "runtime": "spark",
            "image": "r.example.com/sink:1",
            "inlets": ["in"],
            "spark": {"mainApplicationFile": "local:///opt/sink.jar"},
        },
    ]
    if audit:
        streamlets.append(
            {
                "name": "audit",
                "runtime": "container",
                "image": "r.example.com/audit:1",
                "outlets": ["out"],
            }
        )
    return {
        "streamlets": streamlets,
        "connections": [{"from": "src.out", "to": ["sink.in"]}],
        **edits,
    }


def compile_(**kwargs: Any) -> Compiled:
    body = {
        "apiVersion": "federator.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": "app", "namespace": NS, "uid": "app-uid", "generation": 1},
        "spec": spec(**kwargs),
    }
    return compiler.compile_application(body, SETTINGS)


FULL = compile_()
"""The application with every streamlet: the previous generation of the removal cases."""


def by_name(compiled: Compiled, name: str) -> Child:
    return next(c for c in compiled.children if c.name == name)


# -- live objects as their operators leave them


def settled(child: Child) -> dict[str, Any]:
    """The child as federator wrote it, its operator done (Healthy, or Suspended when it was
    applied suspended)."""
    body = copy.deepcopy(dict(child.manifest))
    body["metadata"].update(uid=f"uid-{child.name}", generation=1, resourceVersion="1")
    if child.kind == "KafkaTopic":
        body["status"] = {
            "observedGeneration": 1,
            "conditions": [{"type": "Ready", "status": "True"}],
        }
    elif child.kind == "Deployment":
        n = body["spec"].get("replicas", 1)
        body["status"] = {
            "observedGeneration": 1,
            "replicas": n,
            "updatedReplicas": n,
            "availableReplicas": n,
        }
    elif child.kind == "SparkApplication":
        if body["spec"].get("suspend"):
            body["status"] = {"applicationState": {"state": "SUSPENDED"}}
        else:
            executors = body["spec"].get("executor", {}).get("instances", 1)
            body["status"] = {
                "submissionID": "s1",
                "applicationState": {"state": "RUNNING"},
                "executorState": {f"e{i}": "RUNNING" for i in range(executors)},
            }
    return body


def foreign(child: Child) -> dict[str, Any]:
    """An object of the child's name that federator did not create."""
    body = settled(child)
    body["metadata"]["annotations"] = {}
    body["metadata"]["labels"] = {}
    return body


def elsewhere(child: Child) -> dict[str, Any]:
    """The child's name, owned by another application."""
    body = settled(child)
    body["metadata"]["annotations"] = {naming.APPLICATION_ANNOTATION: "team-b/other"}
    return body


def everything(compiled: Compiled) -> dict[Key, dict[str, Any]]:
    return {c.key: settled(c) for c in compiled.children}


def topics_only(compiled: Compiled) -> dict[Key, dict[str, Any]]:
    return {c.key: settled(c) for c in compiled.children if c.topic}


def items(compiled: Compiled) -> tuple[InventoryItem, ...]:
    return tuple(InventoryItem.from_child(c) for c in compiled.children)


# -- the table


@dataclass(frozen=True, kw_only=True)
class Case:
    id: str
    compiled: Compiled = FULL
    live: Callable[[], dict[Key, dict[str, Any]]] = dict
    inventory: tuple[InventoryItem, ...] = ()
    found: Callable[[], list[dict[str, Any]]] = list
    installed: frozenset[str] = ALL
    refused: tuple[str, ...] = ()
    """Names of the children the installed CRDs refuse."""
    # expected
    apply: set[str] = field(default_factory=set)
    prune: set[str] = field(default_factory=set)
    held: dict[str, str] = field(default_factory=dict)
    """name -> reason of the children not written."""
    not_owned: set[str] = field(default_factory=set)
    """Children reported but left out of the inventory."""
    phase: str | None = None


TOPIC, AUDIT_TOPIC = "app.src.out", "app.audit.out"
SRC, SINK, AUDIT = "app-src", "app-sink", "app-audit"
WAITING = REASON_WAITING_FOR_TOPICS
SHRUNK = compile_(audit=False)
SHRUNK_DELETE = compile_(audit=False, deletionPolicy="Delete")
SUSPENDED = compile_(suspend=True)
TOPIC_CHILD, SRC_CHILD = by_name(FULL, TOPIC), by_name(FULL, SRC)

CASES = [
    Case(
        id="new-application: the topics first, the streamlets wait for them",
        apply={TOPIC, AUDIT_TOPIC},
        held={SRC: WAITING, SINK: WAITING, AUDIT: WAITING},
        phase="Progressing",
    ),
    Case(
        id="topics-ready: the streamlets go out",
        live=lambda: topics_only(FULL),
        inventory=tuple(i for i in items(FULL) if i.topic),
        apply={SRC, SINK, AUDIT},
    ),
    Case(
        id="unchanged: nothing is written",
        live=lambda: everything(FULL),
        inventory=items(FULL),
        phase="Healthy",
    ),
    Case(
        id="drift: a child edited by hand is written again",
        live=lambda: (
            everything(FULL) | {SRC_CHILD.key: settled(SRC_CHILD) | {"spec": {"replicas": 7}}}
        ),
        inventory=items(FULL),
        apply={SRC},
    ),
    Case(
        id="removed-streamlet-retain: pruned; its topic kept, no longer in the inventory",
        compiled=SHRUNK,
        live=lambda: everything(FULL),
        inventory=items(FULL),
        prune={AUDIT},
        phase="Healthy",
    ),
    Case(
        id="removed-streamlet-delete: pruned with its topic",
        compiled=SHRUNK_DELETE,
        live=lambda: everything(FULL),
        inventory=items(FULL),
        prune={AUDIT, AUDIT_TOPIC},
    ),
    Case(
        id="removed-but-gone: nothing left to prune",
        compiled=SHRUNK_DELETE,
        live=lambda: everything(SHRUNK),
        inventory=items(FULL),
    ),
    Case(
        id="not-ours: an object federator did not create is left alone (AlreadyExists)",
        live=lambda: {TOPIC_CHILD.key: foreign(TOPIC_CHILD)},
        apply={AUDIT_TOPIC},
        held={TOPIC: REASON_ALREADY_EXISTS, SRC: WAITING, SINK: WAITING, AUDIT: WAITING},
        not_owned={TOPIC},
        phase="Degraded",
    ),
    Case(
        id="owned-elsewhere: another application's object is left alone",
        live=lambda: {TOPIC_CHILD.key: elsewhere(TOPIC_CHILD)},
        apply={AUDIT_TOPIC},
        held={TOPIC: REASON_OWNED_ELSEWHERE, SRC: WAITING, SINK: WAITING, AUDIT: WAITING},
        not_owned={TOPIC},
        phase="Degraded",
    ),
    Case(
        id="adopt-consented: the owner's consent lets it be taken over",
        live=lambda: {
            TOPIC_CHILD.key: settled(TOPIC_CHILD)
            | {"metadata": {"name": TOPIC, "annotations": {naming.ADOPT_ANNOTATION: OWNER}}}
        },
        apply={TOPIC, AUDIT_TOPIC, SRC, SINK},  # a Healthy topic it may take: ready
        held={AUDIT: WAITING},
    ),
    Case(
        id="not-installed: the Spark CRD is missing, the rest deploys",
        live=lambda: topics_only(FULL),
        installed=NO_SPARK,
        apply={SRC, AUDIT},
        held={SINK: REASON_DELEGATE_NOT_INSTALLED},
        phase="Missing",
    ),
    Case(
        id="suspended: everything scaled to zero, nothing to write",
        compiled=SUSPENDED,
        live=lambda: everything(SUSPENDED),
        inventory=items(SUSPENDED),
        phase="Suspended",
    ),
    Case(
        id="summarised-inventory: what the listing found is pruned",
        compiled=SHRUNK_DELETE,
        live=lambda: everything(SHRUNK),
        found=lambda: [settled(by_name(FULL, AUDIT)), settled(by_name(FULL, AUDIT_TOPIC))],
        prune={AUDIT, AUDIT_TOPIC},
    ),
    Case(
        id="summarised-inventory-retain: found topics are released, not deleted",
        compiled=SHRUNK,
        live=lambda: everything(SHRUNK),
        found=lambda: [settled(by_name(FULL, AUDIT)), settled(by_name(FULL, AUDIT_TOPIC))],
        prune={AUDIT},
    ),
    Case(
        id="found-but-not-ours: another's object found by listing is never pruned",
        compiled=SHRUNK_DELETE,
        live=lambda: everything(SHRUNK),
        found=lambda: [elsewhere(by_name(FULL, AUDIT))],
    ),
    Case(
        id="refused-by-the-installed-crd: held at once, even while waiting for topics",
        refused=(SINK, SRC),
        apply={TOPIC, AUDIT_TOPIC},
        held={SRC: crdcheck.REASON, SINK: crdcheck.REASON, AUDIT: WAITING},
        phase="Degraded",
    ),
    Case(
        id="refused-but-not-installed: not installed says more",
        live=lambda: topics_only(FULL),
        installed=NO_SPARK,
        refused=(SINK,),
        apply={SRC, AUDIT},
        held={SINK: REASON_DELEGATE_NOT_INSTALLED},
    ),
    Case(
        id="refused-but-not-ours: not ours says more",
        live=lambda: {TOPIC_CHILD.key: foreign(TOPIC_CHILD)},
        refused=(TOPIC,),
        apply={AUDIT_TOPIC},
        held={TOPIC: REASON_ALREADY_EXISTS, SRC: WAITING, SINK: WAITING, AUDIT: WAITING},
        not_owned={TOPIC},
    ),
]


def refusal(name: str) -> health.ChildHealth:
    return health.ChildHealth(health=H.DEGRADED, reason=crdcheck.REASON, message=f"{name} refused")


def run(case: Case) -> tuple[decide.Decision, decide.Report]:
    live = case.live()
    compiled = case.compiled
    decision = decide.decide(
        compiled,
        live,
        case.inventory,
        owner=OWNER,
        installed=case.installed,
        now=NOW,
        found=[
            Observed.from_body(b, health.ChildHealth(health=H.UNKNOWN, reason="Listed"))
            for b in case.found()
        ],
        refused={by_name(FULL, n).key: refusal(n) for n in case.refused},
    )
    # The writes succeed: each written child as the API server returns it (no status yet).
    written = {c.key: {**copy.deepcopy(dict(c.manifest)), "status": {}} for c in decision.apply}
    return decision, decide.report(compiled, decision, live | written, now=NOW)


@pytest.mark.parametrize("case", CASES, ids=[c.id.split(":")[0] for c in CASES])
def test_the_decision(case: Case) -> None:
    decision, report = run(case)
    assert {c.name for c in decision.apply} == case.apply
    assert {i.name for i in decision.prune} == case.prune
    names = {k: k[2] for k in decision.held}
    assert {names[k]: v.reason for k, v in decision.held.items()} == case.held
    # Every desired child is reported; what is not ours is reported, never claimed.
    assert [r.name for r in report.reports] == [c.name for c in case.compiled.children]
    assert {e.item.name for e in report.entries if not e.owned} == case.not_owned
    assert {i.name for i in report.inventory} == {
        c.name for c in case.compiled.children
    } - case.not_owned
    if case.phase is not None:
        assert report.app_health.phase == case.phase
    # Written or held, never both; never a write without a verdict to show for it.
    assert not {c.key for c in decision.apply} & set(decision.held)


def test_a_child_not_installed_reads_missing_and_names_the_operator() -> None:
    (case,) = [c for c in CASES if c.id.startswith("not-installed")]
    _, report = run(case)
    sink = next(r for r in report.reports if r.name == SINK).health
    assert (sink.health, sink.reason) == (H.MISSING, REASON_DELEGATE_NOT_INSTALLED)
    assert "Spark operator" in sink.message


def test_what_the_installed_crds_refuse_is_named_for_an_event() -> None:
    (case,) = [c for c in CASES if c.id.startswith("refused-by")]
    _, report = run(case)
    assert sorted(report.refused) == ["app-sink refused", "app-src refused"]


# -- when a reconcile lists the cluster


@pytest.mark.parametrize(
    ("previous", "generation", "fresh", "lists"),
    [
        ({}, 1, False, False),
        ({}, 1, True, True),
        ({"inventory": {"summarised": True}, "observedGeneration": 1}, 1, False, False),
        ({"inventory": {"summarised": True}, "observedGeneration": 1}, 2, False, True),
        ({"inventory": None, "observedGeneration": 1}, 2, False, False),
    ],
    ids=["steady", "resync", "summarised-unchanged", "summarised-spec-change", "listed-in-full"],
)
def test_when_the_cluster_is_listed(
    previous: dict[str, Any], generation: int, fresh: bool, lists: bool
) -> None:
    assert decide.lists_owned(previous, generation, fresh=fresh) is lists


def test_what_is_read_once_each_and_only_of_served_kinds() -> None:
    inventory = items(FULL)
    read = decide.to_read(SHRUNK.children, inventory, NO_SPARK)
    assert [i.name for i in read] == [c.name for c in SHRUNK.children if c.name != SINK] + [
        AUDIT_TOPIC,
        AUDIT,
    ]


# -- the verdicts: marks and time


def test_a_spec_change_reads_progressing_until_the_delegate_resubmits() -> None:
    live = everything(FULL)
    sink = by_name(FULL, SINK)
    mark = "s1"  # the submission the change found
    decision = decide.decide(
        FULL, live, items(FULL), owner=OWNER, installed=ALL, now=NOW, marks={sink.key: mark}
    )
    verdict = decision.observed[sink.key].health
    assert (verdict.health, verdict.reason) == (H.PROGRESSING, "AwaitingResubmission")
    after = decide.report(FULL, decision, live, now=NOW, marks={sink.key: mark})
    assert next(r for r in after.reports if r.name == SINK).health == verdict
    resubmitted = live | {
        sink.key: live[sink.key] | {"status": {**live[sink.key]["status"], "submissionID": "s2"}}
    }
    after = decide.report(FULL, decision, resubmitted, now=NOW, marks={sink.key: mark})
    assert next(r for r in after.reports if r.name == SINK).health.health is H.HEALTHY


def test_how_long_a_state_lasted_is_judged_at_now() -> None:
    """The real spark-operator's RUNNING-without-executors status (captured): Progressing
    shortly after the submission, Degraded (NoExecutors) once it has lasted."""
    data = Path(__file__).parent / "data" / "spark-operator-v2.5.2"
    body = json.loads((data / "running-without-executors.json").read_text())
    submitted = body["status"]["lastSubmissionAttemptTime"]
    early = decide.verdict("SparkApplication", body, mark=None, suspended=False, now=submitted)
    assert early.health is H.PROGRESSING
    late = decide.verdict(
        "SparkApplication", body, mark=None, suspended=False, now="2099-01-01T00:00:00Z"
    )
    assert (late.health, late.reason) == (H.DEGRADED, "NoExecutors")


# -- the report after the writes


def test_failed_writes_are_the_childs_verdict_and_a_transient_one_is_retried() -> None:
    live = topics_only(FULL)
    decision = decide.decide(FULL, live, (), owner=OWNER, installed=ALL, now=NOW)
    retrying = health.ChildHealth(health=H.PROGRESSING, reason="ApplyRetrying", message="503")
    refused = health.ChildHealth(health=H.DEGRADED, reason="ApplyFailed", message="422")
    taken = health.ChildHealth(health=H.DEGRADED, reason=REASON_ALREADY_EXISTS, message="x")
    failed = {
        by_name(FULL, SRC).key: retrying,
        by_name(FULL, SINK).key: refused,
        by_name(FULL, AUDIT).key: taken,  # created by someone else as we wrote
    }
    report = decide.report(FULL, decision, live, now=NOW, failed=failed)
    verdicts = {r.name: r.health for r in report.reports}
    assert verdicts[SRC] == retrying and verdicts[SINK] == refused and verdicts[AUDIT] == taken
    assert report.retry
    assert report.failures == (
        f"Deployment/{SRC}: 503",
        f"SparkApplication/{SINK}: 422",
    )  # not ours is no failure of ours: not named, never claimed
    assert AUDIT not in {i.name for i in report.inventory}
    only_refused = decide.report(
        FULL, decision, live, now=NOW, failed={by_name(FULL, SINK).key: refused}
    )
    assert not only_refused.retry


def test_a_failed_prune_stays_in_the_inventory_to_be_tried_again() -> None:
    live = everything(FULL)
    decision = decide.decide(SHRUNK, live, items(FULL), owner=OWNER, installed=ALL, now=NOW)
    (audit,) = decision.prune
    failure = health.ChildHealth(health=H.PROGRESSING, reason="PruneFailed", message="503")
    report = decide.report(SHRUNK, decision, live, now=NOW, unpruned=[(audit, failure)])
    assert audit in report.inventory
    assert report.failures == (f"Deployment/{AUDIT}: 503",) and report.retry
    assert report.app_health.phase == "Progressing"


def test_an_unmanaged_topic_is_reported_never_claimed() -> None:
    compiled = compiler.compile_application(
        {
            "apiVersion": "federator.io/v1alpha1",
            "kind": "Application",
            "metadata": {"name": "app", "namespace": NS},
            "spec": {
                "streamlets": [
                    {
                        "name": "src",
                        "runtime": "container",
                        "image": "r.example.com/src:1",
                        "inlets": ["in"],
                    }
                ],
                "topics": [{"name": "external.in", "consumers": ["src.in"], "managed": False}],
            },
        },
        SETTINGS,
    )
    served = {delegates.KAFKA_TOPIC.crd_name: ("v1",)}
    (item,) = decide.unmanaged_topics(compiled, served, SETTINGS.kafka_cluster("default"))
    assert (item.namespace, item.name, item.topic) == (KAFKA, "external.in", "external.in")
    assert decide.unmanaged_topics(compiled, {}, SETTINGS.kafka_cluster("default")) == []
    decision = decide.decide(compiled, {}, (), owner=OWNER, installed=ALL, now=NOW)
    assert [c.name for c in decision.apply] == ["app-src"]  # it counts as ready
    unseen = decide.report(compiled, decision, {}, now=NOW, external=[(item, None)])
    entry = unseen.entries[-1]
    assert (entry.health.reason, entry.owned) == (decide.REASON_EXTERNAL_TOPIC_UNSEEN, False)
    assert [r.name for r in unseen.reports] == ["app-src"]  # not counted
    ready = {"status": {"conditions": [{"type": "Ready", "status": "True"}]}}
    seen = decide.report(
        compiled, decision, {}, now=NOW, external=[(item, {"metadata": {}, **ready})]
    )
    assert seen.reports[-1].topic == "external.in"
    assert seen.reports[-1].health.health is H.HEALTHY
    assert item not in seen.inventory


# -- an invalid spec


def test_an_invalid_spec_reports_the_previous_children_as_they_are() -> None:
    live = everything(FULL)
    sink = by_name(FULL, SINK)
    del live[sink.key]
    previous = {"children": [{"kind": "Deployment", "name": SRC, "specHash": "h1"}]}
    report = decide.report_invalid(
        items(FULL),
        live,
        installed=NO_SPARK,
        previous=previous,
        problems=("spec.streamlets[0].runtime: no such runtime",),
        suspended=False,
        now=NOW,
    )
    verdicts = {r.name: r.health for r in report.reports}
    assert verdicts[SINK].reason == REASON_DELEGATE_NOT_INSTALLED
    assert verdicts[SRC].health is H.HEALTHY
    assert {e.item.name: e.spec_hash for e in report.entries}[SRC] == "h1"
    assert report.app_health.phase == "Invalid"
    assert set(report.inventory) == set(items(FULL))


# -- what the previous status says federator owns


@pytest.mark.parametrize(
    ("status", "names"),
    [
        (None, []),
        ({}, []),
        ({"children": "junk"}, []),
        (
            {
                "children": [
                    {"kind": "Deployment", "apiVersion": "apps/v1", "namespace": NS, "name": SRC},
                    {
                        "kind": "Deployment",
                        "apiVersion": "apps/v1",
                        "name": "theirs",
                        "owned": False,
                    },
                    {"kind": "Widget", "apiVersion": "x/v1", "name": "unknown-kind"},
                    {"kind": "Deployment", "name": "no-api-version"},
                    "not-an-entry",
                ]
            },
            [SRC],
        ),
    ],
    ids=["no-status", "no-children", "malformed", "owned-known-well-formed-only"],
)
def test_the_inventory_of_a_status(status: Any, names: list[str]) -> None:
    assert [i.name for i in inventory.items(status)] == names
