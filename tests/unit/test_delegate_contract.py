"""The delegate contract: every registered delegate has all its parts (issue 12).

A delegate kind lives in one module under federator/core/delegates; this test holds each one
to the list in `base.Delegate`, so a part forgotten fails here, not at run time as a kind that
reads Unknown:
- its template renders a child for an Application that selects it, and that child validates
  against the vendored CRD (third_party/delegate-crds) serving its group, version and plural;
- its adapter has a state table (tests/unit/test_delegate_<module>.py, TABLE) with Healthy,
  Progressing and Degraded rows;
- the chart's RBAC lists it (charts/federator/files/delegates.yaml, generated from the
  registry) with the verbs it declares;
- the simulator plays it from the rendered child to a status the adapter reads as Healthy
  (built-in kinds are run by kube-controller-manager instead);
- its pods are declared (pod security), and an Argo CD health script it names is shipped.
"""

from __future__ import annotations

import importlib
import itertools
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from federator import simulator
from federator.core import childschema, compiler, delegates
from federator.core.delegates import Delegate, rbac
from federator.core.delegates.simstep import Failure
from federator.core.health import Health
from federator.core.render import Child
from federator.core.resources import delegate_crds_dir, templates_dir
from federator.core.settings import parse_settings
from federator.devcluster import crdfiles

REPO = Path(__file__).resolve().parents[2]
SETTINGS = parse_settings(yaml.safe_load((REPO / "examples" / "settings.yaml").read_text()))
IDS = [d.kind for d in delegates.ALL]


def module_of(delegate: Delegate) -> str:
    """The delegate's own module (where its adapter is defined)."""
    return delegate.judge.__module__.rsplit(".", 1)[1]


def tables_of(delegate: Delegate) -> ModuleType:
    return importlib.import_module(f"test_delegate_{module_of(delegate)}")


def rendered(delegate: Delegate) -> Child:
    example = tables_of(delegate).EXAMPLE_STREAMLET
    body = {
        "apiVersion": "federator.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": "contract", "namespace": "team-a", "uid": "u-1"},
        "spec": {"streamlets": [example]},
    }
    children = compiler.compile_application(body, SETTINGS).children
    (child,) = [c for c in children if c.kind == delegate.kind][:1]
    return child


def vendored_crds() -> dict[str, Mapping[str, Any]]:
    found = crdfiles.load_crds(crdfiles.delegate_crd_files(delegate_crds_dir()))
    return {crd["metadata"]["name"]: crd for crd in crdfiles.current_crds(found)}


def test_every_delegate_module_is_registered() -> None:
    modules = {
        p.stem
        for p in (REPO / "federator" / "core" / "delegates").glob("*.py")
        if (p.read_text().count("= Delegate(") == 1)
    }
    assert modules == {module_of(d) for d in delegates.ALL}
    assert len(delegates.BY_KIND) == len(delegates.ALL)


@pytest.mark.parametrize("delegate", delegates.ALL, ids=IDS)
def test_its_template_renders_a_child_its_crd_accepts(delegate: Delegate) -> None:
    assert (templates_dir() / delegate.template).is_file()
    child = rendered(delegate)
    assert child.api_version == delegate.api_version(child.api_version.rpartition("/")[2])
    assert len(child.name) <= delegate.name_limit
    if delegate.builtin:
        return
    crd = vendored_crds().get(delegate.crd_name)
    assert crd is not None, f"no vendored CRD {delegate.crd_name} in {delegate_crds_dir()}"
    assert crd["spec"]["group"] == delegate.group
    assert crd["spec"]["names"]["plural"] == delegate.plural
    assert crd["spec"]["names"]["kind"] == delegate.kind
    served = {v["name"] for v in crd["spec"]["versions"] if v.get("served", True)}
    assert delegate.versions[0] in served
    index = childschema.SchemaIndex.from_documents([crd])
    assert childschema.check([child], index) == []


@pytest.mark.parametrize("delegate", delegates.ALL, ids=IDS)
def test_its_adapter_has_a_state_table(delegate: Delegate) -> None:
    table = tables_of(delegate).TABLE
    healths = {row[1] for row in table}
    assert {Health.HEALTHY, Health.PROGRESSING, Health.DEGRADED} <= healths
    for body, expected, reason, in_message in table:
        verdict = delegate.assess(body)
        assert (verdict.health, verdict.reason) == (expected, reason), verdict
        assert in_message in verdict.message


def test_the_charts_rbac_is_generated_from_the_registry() -> None:
    path = REPO / "charts" / "federator" / "files" / "delegates.yaml"
    assert path.read_text() == rbac.document(), (
        "regenerate: python -m federator.core.delegates.rbac > " + str(path.relative_to(REPO))
    )
    listed = {(r["apiGroup"], r["resource"]): r["verbs"] for r in rbac.rules()}
    for d in delegates.ALL:
        assert listed[(d.group, d.plural)] == list(d.verbs)
        assert {"get", "list", "watch", "create", "patch", "delete"} <= set(d.verbs)


def play(delegate: Delegate, body: dict[str, Any], failure: Failure | None = None) -> None:
    """Step the simulator on `body` until it settles (as its operator would, tick by tick)."""
    ids = (f"00000000-0000-4000-8000-{n:012d}" for n in itertools.count())
    submitted: int | None = body["metadata"]["generation"] if body["status"] else None
    for _ in range(12):
        step = simulator.next_step(
            delegate.kind,
            body,
            failure=failure,
            submitted_generation=submitted,
            now="2026-11-29T10:00:00Z",
            new_id=lambda: next(ids),
        )
        if step is None:
            return
        body["status"] = step.status
        submitted = step.generation if delegate.simulation.remembers_generation else None
    raise AssertionError(f"{delegate.kind}: the simulator did not settle in 12 steps")


def fresh(delegate: Delegate) -> dict[str, Any]:
    body: dict[str, Any] = {**rendered(delegate).manifest, "status": {}}
    body["metadata"] = {**body["metadata"], "generation": 1, "uid": "u-2"}
    return body


SIMULATED_IDS = [d.kind for d in delegates.SIMULATED]


@pytest.mark.parametrize("delegate", delegates.SIMULATED, ids=SIMULATED_IDS)
def test_the_simulator_plays_it_to_healthy(delegate: Delegate) -> None:
    body = fresh(delegate)
    play(delegate, body)
    verdict = delegate.assess(body)
    assert verdict.health is Health.HEALTHY, verdict


@pytest.mark.parametrize("delegate", delegates.SIMULATED, ids=SIMULATED_IDS)
def test_each_failure_the_simulator_shows_reads_degraded(delegate: Delegate) -> None:
    for state in (None, *delegate.simulation.failure_states):
        body = fresh(delegate)
        play(delegate, body)
        play(delegate, body, Failure(message="disk full", state=state))
        verdict = delegate.assess(body)
        assert verdict.health is Health.DEGRADED, (state, verdict)
        assert "disk full" in verdict.message, (state, verdict)


def test_built_in_kinds_are_not_simulated() -> None:
    assert all(not d.builtin for d in delegates.SIMULATED)
    assert {d.kind for d in delegates.ALL} - {d.kind for d in delegates.SIMULATED} == {
        d.kind for d in delegates.ALL if d.builtin
    }


@pytest.mark.parametrize("delegate", delegates.ALL, ids=IDS)
def test_its_argocd_health_script_is_shipped(delegate: Delegate) -> None:
    if delegate.argocd_health is None:
        return
    script = REPO / "charts" / "federator" / "argocd" / delegate.argocd_health
    assert script.is_file()
    configmap = (REPO / "charts" / "federator" / "argocd" / "argocd-cm.yaml").read_text()
    assert f"resource.customizations.health.{delegate.group}_{delegate.kind}" in configmap
