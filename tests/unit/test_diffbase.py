"""kopf's last-handled configuration is a digest (issue 10 §4): it never grows with the spec.

kopf's own pipeline is reproduced as it runs it (`processing.process_resource_causes`):
fetch the stored essence, build the new one, clear the progress annotations from both, diff,
then detect the cause; so what is asserted is the cause kopf would act on.

Aspects covered:
- the annotation stays a few hundred bytes for the largest application the CRD accepts;
- a first sight is a creation; an unchanged object is a no-op (and a resume after a restart);
  a spec change is an update of `spec` (what the `field="spec"` handler needs); labels and
  annotations are tracked apart from the spec; kopf's own annotations are not;
- a full essence stored by kopf's default storage (an older federator) compares equal to an
  unchanged object: an upgrade triggers nothing and writes nothing;
- the operator's kopf settings use this storage under `federator.io/`.
"""

from __future__ import annotations

import copy
from typing import Any

import kopf
import pytest
from kopf._cogs.structs import diffs
from kopf._core.intents import causes

from federator.core import limits
from federator.operator import handlers
from federator.operator.diffbase import DigestDiffBase, is_digest

KEY = "federator.io/last-handled-configuration"


def storage() -> DigestDiffBase:
    return DigestDiffBase(prefix="federator.io", key="last-handled-configuration")


PROGRESS = kopf.AnnotationsProgressStorage(prefix="federator.io")


def app(streamlets: int = 3, **annotations: str) -> dict[str, Any]:
    return {
        "apiVersion": "federator.io/v1alpha1",
        "kind": "Application",
        "metadata": {
            "name": "big",
            "namespace": "team-a",
            "uid": "u",
            "resourceVersion": "1",
            "generation": 1,
            "labels": {"team": "a"},
            "annotations": dict(annotations),
            "finalizers": ["federator.io/finalizer"],
        },
        "spec": {
            "streamlets": [
                {
                    "name": f"s{i:04d}",
                    "runtime": "container",
                    "image": "registry.example.com/team/app:1.0",
                    "outlets": ["out"],
                    "config": {"key": "v" * 40},
                }
                for i in range(streamlets)
            ]
        },
        "status": {"phase": "Healthy"},
    }


def handled(body: dict[str, Any], store: Any = None) -> dict[str, Any]:
    """`body` after kopf stored its essence (the annotation its patch writes)."""
    store = store or storage()
    patch = kopf.Patch()
    store.store(body=kopf.Body(body), patch=patch, essence=essence(body, store)[1])
    out = copy.deepcopy(body)
    out["metadata"]["annotations"].update(dict(patch["metadata"]["annotations"]))
    return out


def essence(body: dict[str, Any], store: Any = None) -> tuple[Any, Any]:
    """(old, new) essences as kopf computes them for a cause."""
    store = store or storage()
    wrapped = kopf.Body(body)
    old = store.fetch(body=wrapped)
    new = store.build(body=wrapped)
    old = PROGRESS.clear(essence=old) if old is not None else None
    new = PROGRESS.clear(essence=new) if new is not None else None
    return old, new


def cause(body: dict[str, Any], *, initial: bool = False) -> causes.Reason:
    old, new = essence(body)
    return causes.detect_changing_cause(
        finalizer="federator.io/finalizer",
        raw_event={"type": "MODIFIED", "object": body},
        body=kopf.Body(body),
        old=old,
        new=new,
        diff=diffs.diff(old, new),
        initial=initial,
        resource=None,
        indices=None,
        logger=None,
        patch=kopf.Patch(),
        memo=None,
    ).reason


def spec_changed(body: dict[str, Any]) -> bool:
    old, new = essence(body)
    return any(path[:1] == ("spec",) for _, path, _, _ in diffs.diff(old, new))


def test_the_annotation_stays_small_for_the_largest_application() -> None:
    body = handled(app(limits.STREAMLETS_CEILING))
    stored = body["metadata"]["annotations"][KEY]
    assert len(stored) < 300
    assert sum(len(k) + len(v) for k, v in body["metadata"]["annotations"].items()) < 1024
    assert is_digest(storage().fetch(body=kopf.Body(body)) or {})


def test_creation_noop_resume_and_update() -> None:
    fresh = app()
    assert cause(fresh) is causes.Reason.CREATE
    seen = handled(fresh)
    assert cause(seen) is causes.Reason.NOOP
    assert cause(seen, initial=True) is causes.Reason.RESUME  # a restart
    changed = copy.deepcopy(seen)
    changed["spec"]["streamlets"][1]["config"]["key"] = "other"
    assert cause(changed) is causes.Reason.UPDATE and spec_changed(changed)


@pytest.mark.parametrize(
    ("edit", "reason", "spec"),
    [
        (lambda b: b["metadata"]["labels"].update(team="b"), causes.Reason.UPDATE, False),
        (lambda b: b["metadata"]["annotations"].update(note="x"), causes.Reason.UPDATE, False),
        (lambda b: b["status"].update(phase="Degraded"), causes.Reason.NOOP, False),
        (lambda b: b["metadata"].update(resourceVersion="9"), causes.Reason.NOOP, False),
        (
            lambda b: b["metadata"]["annotations"].update({"federator.io/reconcile": "{}"}),
            causes.Reason.NOOP,
            False,
        ),
    ],
    ids=["label", "annotation", "status", "resource-version", "kopf-progress"],
)
def test_what_counts_as_a_change(edit: Any, reason: causes.Reason, spec: bool) -> None:
    body = handled(app())
    edit(body)
    assert cause(body) is reason
    assert spec_changed(body) is spec


def test_an_essence_stored_in_full_by_an_older_federator_compares_equal() -> None:
    legacy = kopf.AnnotationsDiffBaseStorage(
        prefix="federator.io", key="last-handled-configuration"
    )
    body = handled(app(50), legacy)
    assert len(body["metadata"]["annotations"][KEY]) > 5_000  # the whole spec
    assert cause(body) is causes.Reason.NOOP  # no reconcile, no write on upgrade
    body["spec"]["streamlets"].pop()
    assert cause(body) is causes.Reason.UPDATE and spec_changed(body)


def test_the_operator_uses_it() -> None:
    settings = kopf.OperatorSettings()
    handlers.configure(settings)
    store = settings.persistence.diffbase_storage
    assert isinstance(store, DigestDiffBase)
    assert list(store.make_keys(store.key, body=kopf.Body(app()))) == [KEY]
