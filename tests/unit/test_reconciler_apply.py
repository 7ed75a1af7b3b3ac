"""One wave is applied concurrently: every child is tried, a refused child is Degraded
(ApplyFailed) while the rest deploy, and any other error surfaces once all were tried, so the
worker backs off and retries. A stand-in API decides each apply's fate; the integration tests
run the real API server."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from federator.core import health
from federator.core.render import Child
from federator.core.settings import parse_settings
from federator.kube.client import Invalid, KubeError, NotFound, ResourceRef, Transient
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
    """apply() raises the error named for a child, else returns the object at version 7."""

    def __init__(self, errors: dict[str, KubeError]) -> None:
        self.errors = errors
        self.tried: list[str] = []
        self._lock = threading.Lock()

    def apply(self, ref: ResourceRef, manifest: Any, kind: str) -> dict[str, Any]:
        with self._lock:
            self.tried.append(ref.name)
        if ref.name in self.errors:
            raise self.errors[ref.name]
        return {**manifest, "metadata": {**manifest["metadata"], "resourceVersion": "7"}}


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
    ("error", "invalidates"),
    [(Transient("apply d4: 503", 503), 0), (NotFound("apply d4: no such kind", 404), 1)],
)
def test_other_errors_surface_after_every_child_was_tried(
    error: KubeError, invalidates: int
) -> None:
    fates = Fates({"d4": error})
    r, discovery = reconciler(fates)
    with pytest.raises(type(error)):
        r._apply(WAVE, {})
    assert sorted(fates.tried) == sorted(c.name for c in WAVE)
    assert r.own_write("Deployment", "apps", "d5", "7")  # what was applied is remembered
    assert discovery.invalidated == invalidates  # a vanished CRD: rediscover next time
