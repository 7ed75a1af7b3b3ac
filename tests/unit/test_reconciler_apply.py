"""One wave is applied concurrently: every child is tried, a refused child is Degraded
(ApplyFailed) while the rest deploy, and any other error surfaces once all were tried, so the
worker backs off and retries. A stand-in API decides each apply's fate; the integration tests
run the real API server."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from federator.core import health, naming
from federator.core.render import Child
from federator.core.settings import parse_settings
from federator.kube.client import (
    Conflict,
    Forbidden,
    Invalid,
    KubeError,
    NotFound,
    ResourceRef,
    Transient,
)
from federator.operator.reconciler import Reconciler


def deployment(name: str) -> Child:
    return Child(
        kind="Deployment",
        api_version="apps/v1",
        name=name,
        namespace="apps",
        wave=1,
        manifest={"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name}},
        spec_hash="h",
    )


class Fates:
    """create()/apply() raise the error named for a child, else return the object at version
    7; `existing` is what get() finds when a create is refused (409)."""

    def __init__(
        self, errors: dict[str, KubeError], existing: dict[str, dict[str, Any]] | None = None
    ) -> None:
        self.errors = errors
        self.existing = existing or {}
        self.tried: list[str] = []
        self.calls: list[tuple[str, str, Any]] = []
        self._lock = threading.Lock()

    def _write(self, verb: str, ref: ResourceRef, manifest: Any) -> dict[str, Any]:
        with self._lock:
            self.tried.append(ref.name)
            self.calls.append((verb, ref.name, manifest))
        if ref.name in self.errors:
            raise self.errors[ref.name]
        return {**manifest, "metadata": {**manifest["metadata"], "resourceVersion": "7"}}

    def create(self, ref: ResourceRef, manifest: Any, kind: str) -> dict[str, Any]:
        if ref.name in self.existing:
            with self._lock:
                self.calls.append(("create", ref.name, manifest))
            raise Conflict(f"create {ref}: already exists", 409)
        return self._write("create", ref, manifest)

    def apply(self, ref: ResourceRef, manifest: Any, kind: str) -> dict[str, Any]:
        return self._write("apply", ref, manifest)

    def claim_fields(self, ref: ResourceRef, body: Any, kind: str) -> dict[str, Any]:
        with self._lock:
            self.calls.append(("claim", ref.name, None))
        return dict(body)

    def get(self, ref: ResourceRef) -> dict[str, Any] | None:
        return self.existing.get(ref.name)


class Discovery:
    def __init__(self) -> None:
        self.invalidated = 0

    def invalidate(self) -> None:
        self.invalidated += 1


def reconciler(fates: Fates) -> tuple[Reconciler, Discovery]:
    discovery = Discovery()
    r = Reconciler(kube=fates, settings=parse_settings({}), discovery=discovery)  # type: ignore[arg-type]
    return r, discovery


WAVE = tuple(deployment(f"d{i}") for i in range(6))


def test_every_child_is_applied_and_remembered() -> None:
    fates = Fates({})
    r, _ = reconciler(fates)
    live: dict[Any, dict[str, Any]] = {}
    applied, failed = r._apply(WAVE, live)
    assert applied == [f"Deployment/d{i}" for i in range(6)]  # in the wave's order
    assert failed == {}
    assert sorted(fates.tried) == sorted(c.name for c in WAVE)
    assert all(live[c.key]["metadata"]["resourceVersion"] == "7" for c in WAVE)
    assert r.own_write("Deployment", "apps", "d3", "7")  # its echo will be skipped
    assert r.cache.lookup(WAVE[0].key) == (False, None)  # GET until the echo arrives


def test_a_refused_child_is_degraded_and_the_others_deploy() -> None:
    fates = Fates({"d2": Invalid("apply d2: spec.replicas: Invalid value", 422)})
    r, _ = reconciler(fates)
    applied, failed = r._apply(WAVE, {})
    assert "Deployment/d2" not in applied and len(applied) == 5
    verdict = failed[WAVE[2].key]
    assert verdict.health is health.Health.DEGRADED and verdict.reason == "ApplyFailed"
    assert "spec.replicas" in verdict.message


@pytest.mark.parametrize(
    ("error", "verdict", "invalidates"),
    [
        (Transient("apply d4: 503", 503), (health.Health.PROGRESSING, "ApplyRetrying"), 0),
        (Conflict("apply d4: conflict", 409), (health.Health.PROGRESSING, "ApplyRetrying"), 0),
        (NotFound("apply d4: no such kind", 404), (health.Health.DEGRADED, "KindNotServed"), 1),
        (Forbidden("apply d4: forbidden", 403), (health.Health.DEGRADED, "ApplyForbidden"), 0),
        (Invalid("apply d4: invalid", 422), (health.Health.DEGRADED, "ApplyFailed"), 0),
    ],
    ids=["transient", "conflict", "kind-gone", "forbidden", "invalid"],
)
def test_every_failure_becomes_the_childs_verdict_after_every_child_was_tried(
    error: KubeError, verdict: tuple[health.Health, str], invalidates: int
) -> None:
    """Nothing is raised: each failure reaches the status as that child's health (transient
    ones Progressing, retried soon; refusals Degraded with the API server's words)."""
    fates = Fates({"d4": error})
    r, discovery = reconciler(fates)
    applied, failed = r._apply(WAVE, {})
    assert sorted(fates.tried) == sorted(c.name for c in WAVE)
    assert len(applied) == 5 and r.own_write("Deployment", "apps", "d5", "7")
    got = failed[WAVE[4].key]
    assert (got.health, got.reason) == verdict
    assert str(error) in got.message
    assert discovery.invalidated == invalidates  # a vanished CRD: rediscover next time


OWNER = "apps/pipeline"


def body(name: str, uid: str, annotations: dict[str, str], managed: list[Any]) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": name,
            "namespace": "apps",
            "uid": uid,
            "annotations": annotations,
            "managedFields": managed,
        },
    }


def test_absent_children_are_created_and_existing_ones_applied_with_their_uid() -> None:
    fates = Fates({})
    r, _ = reconciler(fates)
    ours = body("d1", "uid-1", {naming.APPLICATION_ANNOTATION: OWNER}, [])
    live: dict[Any, dict[str, Any]] = {WAVE[1].key: ours}
    r._apply(WAVE[:2], live, OWNER)
    calls = {name: [(v, m) for v, n, m in fates.calls if n == name] for name in ("d0", "d1")}
    ((create, created),) = calls["d0"]  # one write; the claim waits for the next apply
    assert create == "create" and "uid" not in created["metadata"]
    ((apply, applied),) = calls["d1"]
    assert apply == "apply" and applied["metadata"]["uid"] == "uid-1"


@pytest.mark.parametrize(
    ("annotations", "reason"),
    [
        ({}, "AlreadyExists"),
        ({naming.APPLICATION_ANNOTATION: "team-b/other"}, "OwnedByAnotherApplication"),
        ({naming.ADOPT_ANNOTATION: OWNER}, None),
        ({naming.APPLICATION_ANNOTATION: OWNER}, None),
    ],
    ids=["not-federators", "another-apps", "adopt-consented", "ours-after-all"],
)
def test_a_refused_create_writes_nothing_onto_an_object_that_is_not_ours(
    annotations: dict[str, str], reason: str | None
) -> None:
    """The view was stale: something holds the name. Only ours, or one whose owner consented,
    is then applied (with its UID); anything else is left untouched and reported."""
    fates = Fates({}, existing={"d0": body("d0", "uid-0", annotations, [])})
    r, _ = reconciler(fates)
    applied, failed = r._apply(WAVE[:1], {}, OWNER)
    writes = [(verb, name) for verb, name, _ in fates.calls if verb != "create"]
    if reason is None:
        assert applied == ["Deployment/d0"] and writes == [("apply", "d0")]
        assert fates.calls[-1][2]["metadata"]["uid"] == "uid-0"
    else:
        assert applied == [] and writes == []
        assert failed[WAVE[0].key].reason == reason
        assert failed[WAVE[0].key].health is health.Health.DEGRADED


def test_fields_a_create_left_under_an_update_entry_are_claimed_before_the_apply() -> None:
    """A crash between the create and the claim: the next apply claims first."""
    fates = Fates({})
    r, _ = reconciler(fates)
    left = body(
        "d0",
        "uid-0",
        {naming.APPLICATION_ANNOTATION: OWNER},
        [{"manager": "federator", "operation": "Update"}],
    )
    r._apply(WAVE[:1], {WAVE[0].key: left}, OWNER)
    assert [verb for verb, _, _ in fates.calls] == ["claim", "apply"]
