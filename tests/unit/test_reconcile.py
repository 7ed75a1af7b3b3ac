"""`Reconciler.reconcile` and `finalize` end to end against an in-memory API (`memkube.MemKube`):
observe -> decide -> act -> report, with the writes and the status they leave. The rules are
tabled in test_decide.py; the integration tests run the same stories on the real API server.

Aspects covered:
- create: topics first, then the streamlets once their topics are Ready; then nothing is written;
- change: only the changed child is written; a spec change of a Spark application reads
  Progressing until the operator resubmits it (the apply mark), then Healthy;
- remove a streamlet: its child is pruned; its topic deleted under Delete, kept under Retain
  (and no longer in the inventory);
- delete: the finalizer deletes Delete-policy topics, not Retain ones;
- conflicts: an object federator did not create is left alone (AlreadyExists), also when it
  appears between the read and the create; a 409 on an apply is retried, then converges;
- a delegate not installed reads Missing; an invalid spec writes and deletes nothing;
- the verdicts read the reconciler's clock.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from memkube import AllServed, MemKube
from test_decide import KAFKA, NOW, NS, SETTINGS, spec

from federator.core import naming
from federator.kube.client import Conflict, ResourceRef
from federator.operator import observe
from federator.operator.reconciler import Outcome, Reconciler

TOPIC, AUDIT_TOPIC = "app.src.out", "app.audit.out"
SRC, SINK, AUDIT = "app-src", "app-sink", "app-audit"


def application(
    *, audit: bool = True, policy: str = "Retain", generation: int = 1
) -> dict[str, Any]:
    """`src` (container) writes a topic that `sink` (Spark) reads; `audit` (container) has a
    topic of its own."""
    return {
        "apiVersion": "federator.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": "app", "namespace": NS, "uid": "app-uid", "generation": generation},
        "spec": spec(audit=audit, deletionPolicy=policy),
    }


def settle(kube: MemKube, submission: str = "s1") -> None:
    """Every child's operator has acted on its spec and reports it ready."""
    for body in kube.objects.values():
        body["metadata"]["generation"] = 1
        spec = body.get("spec") or {}
        if body["kind"] == "KafkaTopic":
            body["status"] = {
                "observedGeneration": 1,
                "conditions": [{"type": "Ready", "status": "True"}],
            }
        elif body["kind"] == "Deployment":
            n = spec.get("replicas", 1)
            body["status"] = {
                "observedGeneration": 1,
                "replicas": n,
                "updatedReplicas": n,
                "availableReplicas": n,
            }
        elif body["kind"] == "SparkApplication":
            n = (spec.get("executor") or {}).get("instances", 1)
            body["status"] = {
                "submissionID": submission,
                "applicationState": {"state": "RUNNING"},
                "executorState": {f"e{i}": "RUNNING" for i in range(n)},
            }


class Story:
    """One application's reconciles by one reconciler (which keeps its apply marks), each
    status written back as the worker would."""

    def __init__(self, kube: MemKube | None = None, *missing: str) -> None:
        self.kube = kube or MemKube()
        self.reconciler = Reconciler(
            kube=self.kube,  # type: ignore[arg-type]
            settings=SETTINGS,
            discovery=AllServed(*missing),  # type: ignore[arg-type]
            clock=lambda: NOW,
        )
        self.body = application()

    def reconcile(self, body: dict[str, Any] | None = None, **kwargs: Any) -> Outcome:
        if body is not None:
            body["status"] = self.body.get("status")
            self.body = body
        self.kube.calls.clear()
        outcome = self.reconciler.reconcile(self.body, **kwargs)
        self.body["status"] = outcome.status
        return outcome

    def children(self) -> dict[str, dict[str, Any]]:
        return {e["name"]: e for e in self.body["status"]["children"]}

    def deployed(self) -> Story:
        """Created, then Healthy: three reconciles (topics, streamlets, the final health)."""
        self.reconcile()
        settle(self.kube)
        self.reconcile()
        settle(self.kube)
        outcome = self.reconcile()
        assert outcome.app_health.phase == "Healthy"
        return self


def writes(kube: MemKube) -> int:
    return kube.calls["create"] + kube.calls["apply"] + kube.calls["delete"]


# -- create


def test_create_topics_first_then_the_streamlets_then_nothing() -> None:
    story = Story()
    first = story.reconcile()
    assert sorted(first.applied) == [f"KafkaTopic/{AUDIT_TOPIC}", f"KafkaTopic/{TOPIC}"]
    assert story.kube.names("Deployment") == set()
    children = story.children()
    assert children[SRC]["reason"] == "WaitingForTopics"
    assert children[TOPIC]["health"] == "Progressing"  # created, not Ready yet
    assert first.status["phase"] == "Progressing" and first.status["summary"] == "0/5"
    settle(story.kube)
    second = story.reconcile()
    assert sorted(second.applied) == [
        f"Deployment/{AUDIT}",
        f"Deployment/{SRC}",
        f"SparkApplication/{SINK}",
    ]
    settle(story.kube)
    third = story.reconcile()
    assert third.applied == () and writes(story.kube) == 0
    assert third.status["phase"] == "Healthy" and third.status["summary"] == "5/5"
    assert all(e.get("specHash") for e in third.status["children"])


# -- change


def test_a_change_writes_only_the_changed_child() -> None:
    story = Story().deployed()
    changed = application(generation=2)
    changed["spec"]["streamlets"][0]["replicas"] = 3
    outcome = story.reconcile(changed)
    assert outcome.applied == (f"Deployment/{SRC}",) and writes(story.kube) == 1
    assert story.kube.objects[("deployments", NS, SRC)]["spec"]["replicas"] == 3
    assert outcome.status["observedGeneration"] == 2


def test_a_spark_spec_change_reads_progressing_until_the_operator_resubmits() -> None:
    story = Story().deployed()
    changed = application(generation=2)
    changed["spec"]["streamlets"][1]["config"] = {"window": "5m"}
    outcome = story.reconcile(changed)
    assert outcome.applied == (f"SparkApplication/{SINK}",)
    # Still RUNNING as the previous submission: not Healthy until the operator resubmits.
    assert story.children()[SINK]["reason"] == "AwaitingResubmission"
    assert story.reconcile().status["phase"] == "Progressing"
    settle(story.kube, submission="s2")
    outcome = story.reconcile()
    assert story.children()[SINK]["health"] == "Healthy" and outcome.status["phase"] == "Healthy"


# -- remove a streamlet


@pytest.mark.parametrize(
    ("policy", "deleted", "topic_left"),
    [
        ("Delete", {f"Deployment/{AUDIT}", f"KafkaTopic/{AUDIT_TOPIC}"}, False),
        ("Retain", {f"Deployment/{AUDIT}"}, True),
    ],
    ids=["delete", "retain"],
)
def test_a_removed_streamlet_is_pruned_its_topic_by_policy(
    policy: str, deleted: set[str], topic_left: bool
) -> None:
    story = Story()
    story.body = application(policy=policy)
    story.deployed()
    outcome = story.reconcile(application(audit=False, policy=policy, generation=2))
    assert set(outcome.pruned) == deleted
    assert AUDIT not in story.kube.names("Deployment")
    assert (AUDIT_TOPIC in story.kube.names("KafkaTopic")) is topic_left
    # A kept topic is no longer this application's: out of the inventory, never deleted later.
    assert set(story.children()) == {TOPIC, SRC, SINK}
    assert outcome.status["phase"] == "Healthy"
    assert story.reconcile(fresh=True).pruned == ()


# -- delete


@pytest.mark.parametrize(
    ("policy", "topics_left"), [("Delete", set()), ("Retain", {TOPIC, AUDIT_TOPIC})], ids=str
)
def test_finalize_deletes_the_topics_by_policy(policy: str, topics_left: set[str]) -> None:
    story = Story()
    story.body = application(policy=policy)
    story.deployed()
    deleted = story.reconciler.finalize(story.body)
    assert story.kube.names("KafkaTopic") == topics_left
    assert len(deleted) == 2 - len(topics_left)
    # Same-namespace children are the garbage collector's (their ownerReferences).
    assert story.kube.names("Deployment") == {SRC, AUDIT}


# -- conflicts


def test_an_object_federator_did_not_create_is_left_alone() -> None:
    kube = MemKube()
    kube.put(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": AUDIT, "namespace": NS, "labels": {"app": "theirs"}},
            "spec": {"replicas": 9},
        }
    )
    story = Story(kube)
    story.reconcile()
    settle(kube)
    outcome = story.reconcile()
    audit = story.children()[AUDIT]
    assert (audit["health"], audit["reason"], audit["owned"]) == (
        "Degraded",
        "AlreadyExists",
        False,
    )
    assert kube.objects[("deployments", NS, AUDIT)]["spec"] == {"replicas": 9}  # untouched
    assert f"Deployment/{SRC}" in outcome.applied  # the rest deploys
    assert outcome.failures == ()  # not a failure of ours: the status says it
    # Never claimed, so never pruned nor deleted.
    outcome = story.reconcile(application(audit=False, policy="Delete", generation=2))
    assert AUDIT in kube.names("Deployment") and f"Deployment/{AUDIT}" not in outcome.pruned


class Racing(MemKube):
    """Someone creates the object of `name` between federator's read and its create."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.racing = name

    def create(self, ref: ResourceRef, manifest: Any, kind: str) -> dict[str, Any]:
        if ref.name == self.racing:
            theirs = copy.deepcopy(dict(manifest))
            theirs["metadata"] = {"name": ref.name, "namespace": ref.namespace}
            self.put(theirs)
        return super().create(ref, manifest, kind)


def test_an_object_created_between_the_read_and_the_create_is_left_alone() -> None:
    kube = Racing(TOPIC)
    story = Story(kube)
    outcome = story.reconcile()
    topic = story.children()[TOPIC]
    assert (topic["reason"], topic["owned"]) == ("AlreadyExists", False)
    assert outcome.applied == (f"KafkaTopic/{AUDIT_TOPIC}",)
    assert naming.APPLICATION_ANNOTATION not in (
        kube.objects[("kafkatopics", KAFKA, TOPIC)]["metadata"].get("annotations") or {}
    )


def test_a_conflicting_apply_is_retried_then_converges() -> None:
    story = Story().deployed()
    story.kube.fail[("apply", SRC)] = Conflict(f"apply {SRC}: the object has been modified", 409)
    changed = application(generation=2)
    changed["spec"]["streamlets"][0]["replicas"] = 3
    outcome = story.reconcile(changed)
    assert outcome.retry and outcome.failures == (
        f"Deployment/{SRC}: apply {SRC}: the object has been modified",
    )
    assert story.children()[SRC]["reason"] == "ApplyRetrying"
    del story.kube.fail[("apply", SRC)]
    outcome = story.reconcile()
    assert outcome.applied == (f"Deployment/{SRC}",) and not outcome.retry


# -- missing delegates, invalid specs, time


def test_a_delegate_not_installed_reads_missing_and_the_rest_deploys() -> None:
    story = Story(None, "SparkApplication")
    story.reconcile()
    settle(story.kube)
    outcome = story.reconcile()
    sink = story.children()[SINK]
    assert (sink["health"], sink["reason"]) == ("Missing", "DelegateNotInstalled")
    assert story.kube.names("SparkApplication") == set()
    assert {f"Deployment/{SRC}", f"Deployment/{AUDIT}"} <= set(outcome.applied)
    assert outcome.status["phase"] == "Missing"


def test_an_invalid_spec_writes_and_deletes_nothing() -> None:
    story = Story().deployed()
    broken = application(audit=False, policy="Delete", generation=2)
    broken["spec"]["streamlets"][0]["runtime"] = "sprak"
    outcome = story.reconcile(broken)
    assert outcome.result == "invalid" and outcome.status["phase"] == "Invalid"
    assert writes(story.kube) == 0
    assert len(outcome.status["children"]) == 5  # the previous children, still reported
    assert outcome.status["ready"] == 5


def test_the_verdicts_read_the_reconcilers_clock() -> None:
    """The real spark-operator's RUNNING-without-executors status (captured): Progressing
    shortly after the submission, Degraded (NoExecutors) once it has lasted, at the next
    reconcile; the clock is the reconciler's, the core reads none."""
    data = Path(__file__).parent / "data" / "spark-operator-v2.5.2"
    captured = json.loads((data / "running-without-executors.json").read_text())
    story = Story().deployed()
    sink = story.kube.objects[("sparkapplications", NS, SINK)]
    sink["status"] = captured["status"]
    story.reconciler.clock = lambda: captured["status"]["lastSubmissionAttemptTime"]
    story.reconcile()
    assert story.children()[SINK]["health"] == "Progressing"
    story.reconciler.clock = lambda: "2099-01-01T00:00:00Z"
    story.reconcile()
    assert story.children()[SINK]["reason"] == "NoExecutors"


# -- restart


def test_a_restart_trusts_what_kopf_confirmed_and_finds_orphans_in_its_listing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The restart's reconcile (fresh) reads the watch cache where kopf's listing confirmed it
    and GETs the rest (what only the start-up priming saw: here a child deleted between the two
    listings, and one kopf has not delivered yet); what a crash left out of the inventory is
    found in the start-up listing, without a LIST per kind and namespace, and pruned."""
    story = Story().deployed()
    kube = story.kube
    orphan = copy.deepcopy(kube.objects[("deployments", NS, AUDIT)])
    orphan["metadata"]["name"] = "app-orphan"
    kube.put(orphan)
    restarted = Reconciler(
        kube=kube,  # type: ignore[arg-type]
        settings=SETTINGS,
        discovery=AllServed(),  # type: ignore[arg-type]
        clock=lambda: NOW,
    )
    monkeypatch.setattr(observe, "PRIME_PAGE", 2)  # the start-up listing in pages of two
    restarted.prime_cache([NS, KAFKA])
    del kube.objects[("deployments", NS, SRC)]  # deleted after the priming, before kopf's listing
    for (_plural, _ns, name), body in kube.objects.items():
        if name != SINK:  # kopf's listing has not delivered the SparkApplication yet
            restarted.cache.streamed(None, {"apiVersion": "v", **copy.deepcopy(body)})
    kube.calls.clear()
    outcome = restarted.reconcile(story.body, fresh=True)
    assert kube.calls["list"] == 0
    assert kube.calls["get"] == 2  # app-src and app-sink: not confirmed
    assert outcome.pruned == ("Deployment/app-orphan",)
    assert "Deployment/app-src" in outcome.applied  # re-created
    assert ("deployments", NS, "app-orphan") not in kube.objects
