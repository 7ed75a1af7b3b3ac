"""A status that always fits, and an inventory that never forgets (issue 10 §4).

Whole reconciles of the largest application the default limits allow (1,000 streamlets, 3,000
children) against an in-memory API (`memkube`); the integration tests run the real API server.

Aspects covered:
- `inventory.fit`: everything while it fits; past that, only what is not Healthy, worst first,
  as many as fit, with counts by kind and health;
- the status of the largest allowed application stays within `limits.STATUS_BYTES`, even when
  every child carries the longest message, and says it is summarised;
- a summarised inventory does not make federator forget what it owns: after a spec change the
  children left out of `status.children` are found by listing and pruned (Delete topics
  deleted, Retain topics released); without a spec change nothing is listed;
- an invalid spec still reports every child of a summarised inventory;
- finalization deletes what the summary does not name, tries every deletion, and says which
  failed and whether retrying may help; `finalize_delay` decides what holds a deletion.
"""

from __future__ import annotations

import copy
import itertools
from typing import Any

import pytest
from memkube import AllServed, MemKube

from federator.core import health, inventory, limits
from federator.core.settings import parse_settings
from federator.kube.client import Forbidden, Invalid, NotFound, Transient
from federator.operator.handlers import FINALIZE_DEADLINE, finalize_delay
from federator.operator.reconciler import DeletionIncomplete, Reconciler
from federator.operator.status import build_status

NS, KAFKA = "team-a", "kafka"
SETTINGS = parse_settings(
    {
        "kafkaClusters": [
            {"name": "default", "strimziCluster": "s", "namespace": KAFKA, "bootstrapServers": "b"}
        ]
    }
)
STREAMLETS = limits.DEFAULT_MAX_STREAMLETS
CHILDREN = limits.DEFAULT_MAX_CHILDREN


def largest(streamlets: int = STREAMLETS, policy: str = "Retain") -> dict[str, Any]:
    """The largest application the default limits allow: a line of container streamlets with
    two outlets each (one feeds the next streamlet): streamlets + 2 * streamlets children."""
    names = [f"s{i:04d}" for i in range(streamlets)]
    return {
        "apiVersion": "federator.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": "big", "namespace": NS, "uid": "app-uid", "generation": 1},
        "spec": {
            "deletionPolicy": policy,
            "streamlets": [
                {
                    "name": name,
                    "runtime": "container",
                    "image": "registry.example.com/team/app:1.0",
                    **({"inlets": ["in"]} if i else {}),
                    "outlets": ["out", "audit"],
                }
                for i, name in enumerate(names)
            ],
            "connections": [
                {"from": f"{a}.out", "to": [f"{b}.in"]} for a, b in itertools.pairwise(names)
            ],
        },
    }


def settle(kube: MemKube) -> None:
    """Every child reports itself ready, as its operator would."""
    for body in kube.objects.values():
        body["metadata"]["generation"] = 1
        if body["kind"] == "KafkaTopic":
            body["status"] = {
                "observedGeneration": 1,
                "conditions": [{"type": "Ready", "status": "True"}],
            }
        else:
            body["status"] = {
                "observedGeneration": 1,
                "replicas": 1,
                "updatedReplicas": 1,
                "availableReplicas": 1,
            }


def reconcile(kube: MemKube, body: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    outcome = Reconciler(kube=kube, settings=SETTINGS, discovery=AllServed()).reconcile(  # type: ignore[arg-type]
        body, **kwargs
    )
    body["status"] = outcome.status
    return outcome.status


def deployed(
    streamlets: int = STREAMLETS, policy: str = "Retain"
) -> tuple[MemKube, dict[str, Any]]:
    """The largest application, applied and Healthy (three reconciles: topics, streamlets,
    the final health)."""
    kube, body = MemKube(), largest(streamlets, policy)
    reconcile(kube, body)
    settle(kube)
    reconcile(kube, body)
    settle(kube)
    reconcile(kube, body)
    return kube, body


# -- inventory.fit


def entry(name: str, health_: str, message: str = "") -> dict[str, Any]:
    return {"kind": "Deployment", "name": name, "health": health_, "message": message}


def test_everything_is_listed_while_it_fits() -> None:
    entries = [entry(f"d{i}", "Healthy") for i in range(10)]
    assert inventory.fit(entries, 10_000) == (entries, None)


def test_past_the_room_only_what_needs_attention_is_listed_worst_first() -> None:
    entries = [entry(f"d{i}", "Healthy") for i in range(100)]
    entries[10] = entry("p", "Progressing")
    entries[20] = entry("x", "Degraded")
    entries[30] = entry("m", "Missing")
    listed, summary = inventory.fit(entries, 1_000)
    assert [e["name"] for e in listed] == ["x", "m", "p"]
    assert summary == {
        "summarised": True,
        "total": 100,
        "listed": 3,
        "counts": [
            {"kind": "Deployment", "health": h, "count": n}
            for h, n in (("Degraded", 1), ("Healthy", 97), ("Missing", 1), ("Progressing", 1))
        ],
    }


def test_what_does_not_fit_is_counted_never_a_milder_entry_in_its_place() -> None:
    entries = [entry(f"d{i:03d}", "Degraded", "x" * 100) for i in range(100)]
    entries.append(entry("short", "Progressing"))
    listed, summary = inventory.fit(entries, 2_000)
    assert summary is not None and 0 < summary["listed"] == len(listed) < 100
    assert all(e["health"] == "Degraded" for e in listed)
    assert inventory.size(listed) + inventory.size(summary) <= 2_000


def merged(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch, as the API server applies the status write."""
    if not isinstance(patch, dict):
        return patch
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merged(out.get(key), value)
    return out


def test_the_summary_survives_the_merge_patch_of_the_status() -> None:
    """Counts that drop a health (every topic turned Healthy) and a summary that goes away
    (the application shrank) read exactly as written once merged into the previous status."""
    before = [entry(f"d{i}", "Progressing") for i in range(300)]
    after = [entry(f"d{i}", "Healthy") for i in range(300)]
    old = {"children": [], "inventory": inventory.fit(before, 2_000)[1]}
    new = dict(zip(("children", "inventory"), inventory.fit(after, 2_000), strict=True))
    assert merged(old, new) == new
    small = {"children": after[:3], "inventory": None}
    assert merged(new, small) == {"children": after[:3]}


def test_the_worst_case_status_fits() -> None:
    """3,000 Degraded children, each with the longest message a child carries, and the longest
    Compiled condition: the whole status stays within the limit."""
    long = "m" * health.MAX_CHILD_MESSAGE
    reports = [
        health.ChildReport(
            kind="Deployment",
            name=f"big-s{i:04d}",
            health=health.ChildHealth(health=health.Health.DEGRADED, reason="Oops", message=long),
        )
        for i in range(CHILDREN)
    ]
    entries = [
        {"kind": r.kind, "apiVersion": "apps/v1", "namespace": NS, "name": r.name}
        | {"health": "Degraded", "reason": "Oops", "message": long, "specHash": "h" * 16}
        for r in reports
    ]
    app_health = health.aggregate(reports, problems=("p" * 200,) * 500)
    status = build_status({}, app_health, entries, generation=1, now="2026-01-01T00:00:00Z")
    assert inventory.size(status) <= limits.STATUS_BYTES
    assert status["inventory"]["total"] == CHILDREN
    assert 0 < status["inventory"]["listed"] == len(status["children"]) < CHILDREN


# -- whole reconciles of the largest allowed application


def test_the_largest_application_deploys_with_a_summarised_status_that_fits() -> None:
    kube = MemKube()
    body = largest()
    status = reconcile(kube, body)  # the topics are created; every streamlet waits for them
    assert len(kube.names("KafkaTopic")) == 2 * STREAMLETS
    assert inventory.size(status) <= limits.STATUS_BYTES
    summary = status["inventory"]
    assert summary["summarised"] and summary["total"] == CHILDREN
    assert summary["counts"] == [
        {"kind": "Deployment", "health": "Progressing", "count": STREAMLETS},
        {"kind": "KafkaTopic", "health": "Progressing", "count": 2 * STREAMLETS},
    ]
    assert (status["ready"], status["total"]) == (0, CHILDREN)
    settle(kube)
    reconcile(kube, body)  # topics Healthy: the streamlets go out
    assert len(kube.names("Deployment")) == STREAMLETS
    settle(kube)
    status = reconcile(kube, body)
    assert status["phase"] == "Healthy" and status["summary"] == f"{CHILDREN}/{CHILDREN}"
    assert status["children"] == []  # nothing needs attention
    assert status["inventory"]["counts"] == [
        {"kind": "Deployment", "health": "Healthy", "count": STREAMLETS},
        {"kind": "KafkaTopic", "health": "Healthy", "count": 2 * STREAMLETS},
    ]


def test_a_small_inventory_is_written_in_full_and_a_summary_removed() -> None:
    kube, body = MemKube(), largest(3)
    status = reconcile(kube, body)
    assert len(status["children"]) == 9 and status["inventory"] is None  # the patch removes it


@pytest.mark.parametrize(
    ("policy", "topics_left"), [("Delete", 2 * 600), ("Retain", 2 * STREAMLETS)], ids=str
)
def test_a_summarised_inventory_still_prunes_what_left_the_spec(
    policy: str, topics_left: int
) -> None:
    kube, body = deployed(policy=policy)
    assert inventory.summarised(body["status"]) and body["status"]["children"] == []
    kube.calls.clear()
    status = reconcile(kube, body)  # nothing changed: the inventory is enough, nothing listed
    assert kube.calls["list"] == 0 and kube.calls["delete"] == 0
    changed = largest(600, policy)
    changed["metadata"]["generation"] = 2
    changed["status"] = status
    status = reconcile(kube, changed)
    assert kube.calls["list"] > 0  # the children the summary does not name were looked for
    assert len(kube.names("Deployment")) == 600
    assert len(kube.names("KafkaTopic")) == topics_left  # Retain: released, never deleted
    assert status["total"] == 3 * 600


def test_an_invalid_spec_reports_every_child_of_a_summarised_inventory() -> None:
    kube, body = deployed()
    broken = copy.deepcopy(body)
    broken["metadata"]["generation"] = 2
    broken["spec"]["streamlets"][5]["runtime"] = "sprak"
    status = reconcile(kube, broken)
    assert status["phase"] == "Invalid"
    assert status["inventory"]["total"] == CHILDREN and status["total"] == CHILDREN
    assert len(kube.names("Deployment")) == STREAMLETS  # nothing deleted
    # The next valid generation still finds (and prunes) what the summary does not name.
    fixed = largest(999)
    fixed["metadata"]["generation"] = 3
    fixed["status"] = status
    reconcile(kube, fixed)
    assert len(kube.names("Deployment")) == 999


# -- finalization


def finalize(kube: MemKube, body: dict[str, Any]) -> tuple[str, ...]:
    r = Reconciler(kube=kube, settings=SETTINGS, discovery=AllServed())  # type: ignore[arg-type]
    return r.finalize(body)


def test_finalization_deletes_what_a_summarised_inventory_does_not_name() -> None:
    kube, body = deployed(policy="Delete")
    deleted = finalize(kube, body)
    assert len(deleted) == 2 * STREAMLETS and not kube.names("KafkaTopic")
    # The inventory named nothing (all Healthy): nothing was read one by one.
    assert kube.calls["get"] > 0  # (the reconciles before)
    kube.calls.clear()
    finalize(kube, body)
    assert kube.calls["get"] == 0


@pytest.mark.parametrize(
    ("error", "retryable"),
    [(Forbidden("delete: forbidden", 403), False), (Transient("delete: 503", 503), True)],
    ids=["refused", "transient"],
)
def test_every_deletion_is_tried_and_the_failures_named(error: Any, retryable: bool) -> None:
    kube, body = deployed(5, policy="Delete")
    kube.fail[("delete", "big.s0002.out")] = error
    with pytest.raises(DeletionIncomplete) as raised:
        finalize(kube, body)
    assert kube.names("KafkaTopic") == {"big.s0002.out"}  # every other one was deleted
    assert raised.value.retryable is retryable
    assert [name for name, _ in raised.value.left] == ["KafkaTopic/big.s0002.out"]
    assert "big.s0002.out" in str(raised.value) and str(error) in str(raised.value)


@pytest.mark.parametrize(
    ("error", "elapsed", "retry", "delay"),
    [
        (Transient("503", 503), 0.0, 0, 1.0),
        (Transient("503", 503), 100.0, 3, 8.0),
        (Transient("503", 503), 100.0, 10, 60.0),
        (Transient("503", 503), FINALIZE_DEADLINE - 5, 10, 5.0),
        (Transient("503", 503), FINALIZE_DEADLINE, 10, None),
        (RuntimeError("a bug"), 0.0, 0, 1.0),
        (RuntimeError("a bug"), FINALIZE_DEADLINE + 1, 9, None),
        (Forbidden("403", 403), 0.0, 0, None),
        (NotFound("404", 404), 0.0, 0, None),
        (Invalid("422", 422), 0.0, 0, None),
        (DeletionIncomplete((), (("KafkaTopic/t", Forbidden("403", 403)),)), 0.0, 0, None),
        (DeletionIncomplete((), (("KafkaTopic/t", Transient("503", 503)),)), 0.0, 2, 4.0),
    ],
    ids=[
        "transient",
        "backoff",
        "capped",
        "until-the-deadline",
        "past-the-deadline",
        "crash",
        "crash-past-the-deadline",
        "forbidden",
        "kind-gone",
        "invalid",
        "refused-deletion",
        "transient-deletion",
    ],
)
def test_what_holds_a_deletion(
    error: Exception, elapsed: float, retry: int, delay: float | None
) -> None:
    """Retrying may fix it: hold, with backoff, up to the deadline. A refusal: let go now."""
    assert finalize_delay(error, elapsed, retry) == delay
