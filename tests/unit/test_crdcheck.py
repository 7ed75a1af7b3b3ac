"""The check of each child against the INSTALLED delegate CRD before it is applied (issue 13,
finding 2): `core.crdcheck`, its cache `kube.crdschemas`, and the reconciler's use of both.

Aspects:
- violations, as a table: enum, unknown field, wrong type, missing required, int-or-string,
  nullable, several at once (counted past MAX_LISTED), and what passes;
- the real CRDs: every example federator ships renders children the vendored (current) CRDs
  accept; against the real Flink operator 1.7.0 CRD only `spec.flinkVersion: v1_20` is refused,
  with the field, the value, the allowed values and the setting to change; v1_17 (settings) or
  a streamlet's `flink.flinkVersion` passes;
- the cache: a CRD read whole once, then only its metadata at most once per ttl; read again
  when its resourceVersion changes; dropped when deleted; kept (and logged) when unreadable;
- the reconciler: a refused child is not written, reads Degraded InvalidForInstalledCRD (over
  WaitingForTopics), is named for an Event, the other children are applied, and an unchanged
  application is not validated again (no API call, no validation per reconcile).
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from memkube import AllServed, MemKube

from federator.core import compiler, crdcheck, delegates
from federator.core.render import Child
from federator.core.settings import Settings, parse_settings
from federator.kube.client import Forbidden
from federator.kube.crdschemas import CrdSchemaCache
from federator.kube.discovery import Discovered
from federator.operator.reconciler import Reconciler

REPO = Path(__file__).resolve().parents[2]
FLINK_1_7 = (
    REPO / "third_party" / "delegate-crds" / "older" / "apache-flinkdeployment-1.7.0.crd.yaml"
)
LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: the CRDs are megabytes
CRD_KINDS = {d.kind: d.crd_name for d in delegates.ALL if not d.builtin}


def mini_crd(resource_version: str = "1") -> dict[str, Any]:
    """A small CRD exercising each kind of schema rule."""
    spec_schema = {
        "type": "object",
        "required": ["image"],
        "properties": {
            "image": {"type": "string"},
            "flinkVersion": {"type": "string", "enum": ["v1_17", "v1_18", "v1_19"]},
            "replicas": {"type": "integer"},
            "memory": {"x-kubernetes-int-or-string": True},
            "note": {"type": "string", "nullable": True},
            "config": {"type": "object", "additionalProperties": {"type": "string"}},
            "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
        },
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "things.example.com", "resourceVersion": resource_version},
        "spec": {
            "group": "example.com",
            "names": {"kind": "Thing", "plural": "things"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {"spec": spec_schema},
                        }
                    },
                }
            ],
        },
    }


def thing(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "example.com/v1",
        "kind": "Thing",
        "metadata": {"name": "t", "namespace": "n"},
        "spec": {"image": "i", **spec},
    }


MINI = crdcheck.InstalledCRD.from_body(mini_crd())
VALIDATOR = MINI.validator(("example.com", "v1", "Thing"))


@pytest.mark.parametrize(
    ("manifest", "expected"),
    [
        (thing(), []),
        (thing(flinkVersion="v1_19", replicas=2, memory="1g", note=None), []),
        (thing(memory=1024, config={"a": "b"}, free={"anything": {"goes": 1}}), []),
        (
            thing(flinkVersion="v1_20"),
            ["spec.flinkVersion: 'v1_20' is not allowed (allowed: v1_17, v1_18, v1_19)"],
        ),
        (
            thing(flinkVerison="v1_17"),
            ["spec.flinkVerison: unknown field (the API server would drop it silently)"],
        ),
        (thing(replicas="2"), ["spec.replicas: '2' is not of type integer"]),
        (thing(note=3), ["spec.note: 3 is not of type string or null"]),
        (thing(config={"a": 1}), ["spec.config.a: 1 is not of type string"]),
        (
            {**thing(), "spec": {"replicas": 1}},
            ["spec.image: required field missing"],
        ),
        (
            thing(memory=1.5),
            ["spec.memory: 1.5 is not valid under any of the given schemas"],
        ),
        (
            thing(flinkVersion="x", a=1, b=2),
            [
                "spec.a: unknown field (the API server would drop it silently)",
                "spec.b: unknown field (the API server would drop it silently)",
                "spec.flinkVersion: 'x' is not allowed (allowed: v1_17, v1_18, v1_19)",
            ],
        ),
    ],
    ids=[
        "minimal",
        "allowed-values",
        "int-or-string-map-preserve",
        "enum",
        "unknown-field",
        "type",
        "nullable",
        "map-values",
        "required",
        "int-or-string-float",
        "several",
    ],
)
def test_violations(manifest: dict[str, Any], expected: list[str]) -> None:
    assert VALIDATOR is not None
    assert [str(v) for v in crdcheck.violations(manifest, VALIDATOR)] == expected


def child_of(manifest: dict[str, Any], streamlet: str | None = "s") -> Child:
    return Child(
        kind=manifest["kind"],
        api_version=manifest["apiVersion"],
        name=manifest["metadata"]["name"],
        namespace=manifest["metadata"]["namespace"],
        wave=1,
        manifest=manifest,
        spec_hash="h",
        streamlet=streamlet,
    )


def test_a_long_list_is_cut_and_counted() -> None:
    many = thing(**{f"extra{i}": i for i in range(5)})
    verdict = crdcheck.verdict(child_of(many), MINI)
    assert verdict is not None
    assert "spec.extra2: unknown field" in verdict.message
    assert "spec.extra3" not in verdict.message
    assert "; and 2 more." in verdict.message


def test_a_version_the_crd_does_not_describe_is_left_to_the_api_server() -> None:
    other = {**thing(flinkVersion="nope"), "apiVersion": "example.com/v2"}
    assert crdcheck.verdict(child_of(other), MINI) is None


# --- the real CRDs ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def flink_1_7() -> crdcheck.InstalledCRD:
    return crdcheck.InstalledCRD.from_body(yaml.load(FLINK_1_7.read_text(), Loader=LOADER))


def compile_example(
    loader: Callable[[str], dict[str, Any]], settings: Settings, name: str
) -> compiler.Compiled:
    return compiler.compile_application(loader(name), settings)


def installed_from(path: Path) -> dict[str, crdcheck.InstalledCRD]:
    out = {}
    for doc in yaml.load_all(path.read_text(), Loader=LOADER):
        if isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition":
            crd = crdcheck.InstalledCRD.from_body(doc)
            out[crd.name] = crd
    return out


EXAMPLES = sorted(
    p.name
    for p in (REPO / "examples").glob("*.yaml")
    if p.name != "settings.yaml" and "kind: Application" in p.read_text()
)


@pytest.fixture(scope="module")
def vendored(delegate_crds: Path) -> dict[str, dict[str, crdcheck.InstalledCRD]]:
    """Each vendored CRD file, read once, as the cluster would have it installed."""
    return {p.name: installed_from(p) for p in sorted(delegate_crds.glob("*.crd.yaml"))}


@pytest.mark.parametrize("example", EXAMPLES)
def test_every_example_fits_the_vendored_crds(
    example: str,
    example_loader: Callable[[str], dict[str, Any]],
    example_settings: Settings,
    vendored: dict[str, dict[str, crdcheck.InstalledCRD]],
) -> None:
    compiled = compile_example(example_loader, example_settings, example)
    for name, installed in vendored.items():
        assert crdcheck.check(compiled.children, installed, CRD_KINDS) == {}, name


def test_the_flink_1_7_crd_refuses_only_the_default_flink_version(
    example_loader: Callable[[str], dict[str, Any]],
    example_settings: Settings,
    flink_1_7: crdcheck.InstalledCRD,
) -> None:
    compiled = compile_example(example_loader, example_settings, "fraud-detection-flink.yaml")
    refused = crdcheck.check(compiled.children, {flink_1_7.name: flink_1_7}, CRD_KINDS)
    assert list(refused) == [("FlinkDeployment", "payments", "fraud-detection-scorer")]
    verdict = refused[("FlinkDeployment", "payments", "fraud-detection-scorer")]
    assert verdict.health.value == "Degraded"
    assert verdict.reason == crdcheck.REASON == "InvalidForInstalledCRD"
    assert verdict.message.startswith(
        "FlinkDeployment payments/fraud-detection-scorer (streamlet scorer) not applied: the "
        "installed CRD flinkdeployments.flink.apache.org (resourceVersion ) refuses "
        "spec.flinkVersion: 'v1_20' is not allowed (allowed: v1_13, v1_14, v1_15, v1_16, "
        "v1_17, v1_18, v1_19). To fix: set `flink.flinkVersion` in federator's operator settings"
    ), verdict.message
    assert "spec.streamlets[].flink.flinkVersion" in verdict.message


def test_a_supported_flink_version_passes_the_1_7_crd(
    example_loader: Callable[[str], dict[str, Any]],
    example_settings: Settings,
    flink_1_7: crdcheck.InstalledCRD,
) -> None:
    """From the settings, or from the streamlet's `flink` block: either is all it takes (the
    rest of what federator renders is known to the 1.7.0 CRD: no field it would prune)."""
    settings = dataclasses.replace(
        example_settings, flink=dataclasses.replace(example_settings.flink, flink_version="v1_17")
    )
    compiled = compile_example(example_loader, settings, "fraud-detection-flink.yaml")
    assert crdcheck.check(compiled.children, {flink_1_7.name: flink_1_7}, CRD_KINDS) == {}
    body = example_loader("fraud-detection-flink.yaml")
    scorer = next(s for s in body["spec"]["streamlets"] if s["name"] == "scorer")
    scorer["flink"]["flinkVersion"] = "v1_19"
    compiled = compiler.compile_application(body, example_settings)
    assert crdcheck.check(compiled.children, {flink_1_7.name: flink_1_7}, CRD_KINDS) == {}


# --- the cache ------------------------------------------------------------------------------


class CrdKube:
    """`Kube.crd` over a dict of CRDs; counts full and metadata reads."""

    def __init__(self, crds: dict[str, dict[str, Any]]) -> None:
        self.crds = crds
        self.full = 0
        self.meta = 0
        self.forbidden = False

    def crd(self, name: str, *, metadata_only: bool = False) -> dict[str, Any] | None:
        if self.forbidden:
            raise Forbidden("get customresourcedefinition: forbidden")
        if metadata_only:
            self.meta += 1
        else:
            self.full += 1
        body = self.crds.get(name)
        if body is None:
            return None
        return {"metadata": body["metadata"]} if metadata_only else copy.deepcopy(body)


def test_the_cache_reads_a_crd_once_and_again_only_when_it_changes() -> None:
    kube = CrdKube({"things.example.com": mini_crd("1")})
    now = [0.0]
    cache = CrdSchemaCache(kube, ttl=10.0, clock=lambda: now[0])  # type: ignore[arg-type]
    assert cache.get(["things.example.com"])["things.example.com"].resource_version == "1"
    assert (kube.meta, kube.full) == (1, 1)
    for _ in range(5):  # within the ttl: no request at all
        cache.get(["things.example.com"])
    assert (kube.meta, kube.full) == (1, 1)
    now[0] = 11.0  # past it: the metadata only, unchanged
    first = cache.get(["things.example.com"])["things.example.com"]
    assert (kube.meta, kube.full) == (2, 1)
    kube.crds["things.example.com"] = mini_crd("2")
    now[0] = 22.0
    second = cache.get(["things.example.com"])["things.example.com"]
    assert (kube.meta, kube.full) == (3, 2)
    assert (first.resource_version, second.resource_version) == ("1", "2")
    del kube.crds["things.example.com"]
    cache.invalidate()
    assert cache.get(["things.example.com"]) == {}


def test_an_unreadable_crd_is_not_checked_and_what_was_read_is_kept() -> None:
    kube = CrdKube({"things.example.com": mini_crd("1")})
    now = [0.0]
    cache = CrdSchemaCache(kube, ttl=1.0, clock=lambda: now[0])  # type: ignore[arg-type]
    assert cache.get(["things.example.com"])
    kube.forbidden = True
    now[0] = 5.0
    assert cache.get(["things.example.com"])["things.example.com"].resource_version == "1"
    fresh = CrdSchemaCache(kube)  # type: ignore[arg-type]
    assert fresh.get(["things.example.com"]) == {}


# --- the reconciler -------------------------------------------------------------------------


class Schemas:
    """A CrdSchemaCache stand-in: fixed CRDs."""

    def __init__(self, crds: dict[str, crdcheck.InstalledCRD]) -> None:
        self.crds = crds
        self.asked = 0

    def get(self, names: Any) -> dict[str, crdcheck.InstalledCRD]:
        self.asked += 1
        wanted = set(names)
        return {n: c for n, c in self.crds.items() if n in wanted}

    def invalidate(self) -> None:
        pass


def ready(kube: MemKube) -> None:
    for body in kube.objects.values():
        body["metadata"]["generation"] = 1
        if body["kind"] == "KafkaTopic":
            body["status"] = {
                "observedGeneration": 1,
                "conditions": [{"type": "Ready", "status": "True"}],
            }


def test_the_reconciler_writes_every_child_but_the_refused_one(
    example_loader: Callable[[str], dict[str, Any]],
    example_settings: Settings,
    flink_1_7: crdcheck.InstalledCRD,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    kube = MemKube()
    schemas = Schemas({flink_1_7.name: flink_1_7})
    r = Reconciler(kube=kube, settings=example_settings, discovery=AllServed(), schemas=schemas)  # type: ignore[arg-type]
    body = example_loader("fraud-detection-flink.yaml")
    body["metadata"].update(uid="u", generation=1)
    first = r.reconcile(body)  # topics only: the streamlets wait for them
    scorer = next(c for c in first.status["children"] if c["kind"] == "FlinkDeployment")
    assert scorer["reason"] == "InvalidForInstalledCRD", scorer  # said at once, not Waiting
    assert scorer["health"] == "Degraded"
    assert len(first.refused) == 1 and "spec.flinkVersion" in first.refused[0]
    body["status"] = first.status
    ready(kube)
    judged: list[Child] = []
    real = crdcheck.verdict
    monkeypatch.setattr(crdcheck, "verdict", lambda c, crd: judged.append(c) or real(c, crd))
    second = r.reconcile(body)
    assert kube.names("FlinkDeployment") == set()
    assert kube.names("Deployment") == {
        "fraud-detection-transactions-ingress",
        "fraud-detection-alert-sink",
    }
    assert any(a.startswith("Deployment/") for a in second.applied)
    assert second.app_health.phase == "Degraded"
    assert judged == []  # the same children, the same CRD: not validated again
    assert schemas.asked == 2  # the cache is asked (it decides when to look), not the API
    assert kube.calls["create"] + kube.calls["apply"] == len(kube.objects)


def test_without_schemas_nothing_is_checked(example_settings: Settings) -> None:
    settings = parse_settings({})
    r = Reconciler(kube=MemKube(), settings=settings, discovery=AllServed())  # type: ignore[arg-type]
    assert r._refused([], AllServed().get()) == {}
    assert example_settings.flink.flink_version == "v1_20"  # the default the finding is about


# --- what the settings declare the operator reads (a CRD newer than the operator) ---------


SUPPORTED_1_7 = ["v1_13", "v1_14", "v1_15", "v1_16", "v1_17", "v1_18", "v1_19"]


def with_flink(settings: Settings, **flink: Any) -> Settings:
    return dataclasses.replace(settings, flink=dataclasses.replace(settings.flink, **flink))


@pytest.mark.parametrize(
    ("flink", "error"),
    [
        ({"flinkVersion": "v1_19", "supportedVersions": SUPPORTED_1_7}, ""),
        ({"supportedVersions": []}, ""),
        (
            {"supportedVersions": SUPPORTED_1_7},
            "settings.flink.flinkVersion: 'v1_20' is not one of settings.flink.supportedVersions",
        ),
        (
            {"flinkVersion": "v1_19", "supportedVersions": ["1.19"]},
            "settings.flink.supportedVersions: expected FlinkVersion names like v1_19",
        ),
        ({"supportedVersions": "v1_19"}, "settings.flink.supportedVersions: expected list"),
    ],
    ids=["listed", "empty", "default-not-listed", "bad-name", "not-a-list"],
)
def test_supported_versions_setting(flink: dict[str, Any], error: str) -> None:
    if not error:
        parsed = parse_settings({"flink": flink})
        assert parsed.flink.supported_versions == tuple(flink.get("supportedVersions", ()))
        return
    with pytest.raises(ValueError, match=error.replace("(", r"\(").replace(".", r"\.")):
        parse_settings({"flink": flink})


def test_a_version_the_operator_does_not_read_is_refused_where_the_crd_allows_it(
    example_loader: Callable[[str], dict[str, Any]],
    example_settings: Settings,
    vendored: dict[str, dict[str, crdcheck.InstalledCRD]],
) -> None:
    """The spike's case: the current CRD (allows v1_20) with operator 1.7.0 (reads up to
    v1_19). A streamlet's own `flinkVersion` is refused too: one team cannot stop the operator
    every team shares."""
    settings = with_flink(
        example_settings, flink_version="v1_19", supported_versions=tuple(SUPPORTED_1_7)
    )
    body = example_loader("fraud-detection-flink.yaml")
    scorer = next(s for s in body["spec"]["streamlets"] if s["name"] == "scorer")
    scorer["flink"]["flinkVersion"] = "v1_20"
    compiled = compiler.compile_application(body, settings)
    current = vendored["apache-flinkdeployment.crd.yaml"]
    restrictions = crdcheck.declared(settings)
    assert crdcheck.check(compiled.children, current, CRD_KINDS) == {}  # the CRD alone: fine
    for installed in (current, {}):  # with the CRD read, or without it
        refused = crdcheck.check(compiled.children, installed, CRD_KINDS, restrictions)
        (verdict,) = refused.values()
        assert (
            "not applied: the operator the settings describe (`flink.supportedVersions`) "
            in verdict.message
        )
        assert "spec.flinkVersion: 'v1_20' is not supported (supported: v1_13, " in verdict.message
    del scorer["flink"]["flinkVersion"]
    compiled = compiler.compile_application(body, settings)
    assert crdcheck.check(compiled.children, current, CRD_KINDS, restrictions) == {}


def test_the_crd_and_the_settings_are_named_once_each(flink_1_7: crdcheck.InstalledCRD) -> None:
    manifest = {
        "apiVersion": "flink.apache.org/v1beta1",
        "kind": "FlinkDeployment",
        "metadata": {"name": "f", "namespace": "n"},
        "spec": {"flinkVersion": "v1_20", "unknownField": 1},
    }
    restrictions = {("FlinkDeployment", "spec.flinkVersion"): ("v1_17",)}
    verdict = crdcheck.verdict(child_of(manifest), flink_1_7, restrictions)
    assert verdict is not None
    # The CRD refuses both fields; the settings' verdict on the same field is not repeated.
    assert verdict.message.count("spec.flinkVersion: ") == 1
    assert "the installed CRD flinkdeployments.flink.apache.org" in verdict.message
    assert "the operator the settings describe" not in verdict.message
    assert "spec.unknownField: unknown field" in verdict.message


def test_the_reconciler_applies_the_settings_without_any_crd_read(
    example_loader: Callable[[str], dict[str, Any]], example_settings: Settings
) -> None:
    settings = with_flink(example_settings, flink_version="v1_17", supported_versions=("v1_17",))
    kube = MemKube()
    r = Reconciler(kube=kube, settings=settings, discovery=AllServed())  # type: ignore[arg-type]
    body = example_loader("fraud-detection-flink.yaml")
    body["metadata"].update(uid="u", generation=1)
    scorer = next(s for s in body["spec"]["streamlets"] if s["name"] == "scorer")
    scorer["flink"]["flinkVersion"] = "v1_18"
    outcome = r.reconcile(body)
    entry = next(c for c in outcome.status["children"] if c["kind"] == "FlinkDeployment")
    assert entry["reason"] == "InvalidForInstalledCRD", entry
    assert "'v1_18' is not supported (supported: v1_17)" in entry["message"]


def test_a_delegate_not_installed_stays_missing(
    example_loader: Callable[[str], dict[str, Any]], example_settings: Settings
) -> None:
    """No CRD at all is the more basic fact: the settings' verdict does not hide it."""
    settings = with_flink(example_settings, flink_version="v1_17", supported_versions=("v1_17",))
    discovery = AllServed()
    discovery.discovered = Discovered(
        served={
            n: v
            for n, v in discovery.discovered.served.items()
            if n != "flinkdeployments.flink.apache.org"
        }
    )
    r = Reconciler(kube=MemKube(), settings=settings, discovery=discovery)  # type: ignore[arg-type]
    body = example_loader("fraud-detection-flink.yaml")
    body["metadata"].update(uid="u", generation=1)
    scorer = next(s for s in body["spec"]["streamlets"] if s["name"] == "scorer")
    scorer["flink"]["flinkVersion"] = "v1_18"
    outcome = r.reconcile(body)
    entry = next(c for c in outcome.status["children"] if c["kind"] == "FlinkDeployment")
    assert entry["reason"] == "DelegateNotInstalled", entry
    assert outcome.refused == ()
