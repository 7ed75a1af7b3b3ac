"""Check each rendered child against the schema of the CRD INSTALLED in the cluster, before it
is applied (issue 13, finding 2).

Why: the delegate CRDs federator was built against (third_party/delegate-crds) are not the ones a
cluster runs. A value the installed CRD does not allow is refused by the API server at best; an
unknown field is pruned without a word; and where the installed CRD is newer than the operator
that reads it, the operator may fail to deserialize the object: the Apache Flink operator 1.7.0
shut down entirely, for every team, on `flinkVersion: v1_20`. So a child that does not fit the
installed schema is reported (Degraded, `InvalidForInstalledCRD`, with the field, the value, the
allowed values and the fix) and never written; the other children proceed.

Pure: the shell fetches the CRD (`federator.kube.crdschemas`), this module parses and judges.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from jsonschema.exceptions import ValidationError
from jsonschema.protocols import Validator

from federator.core import openapi
from federator.core.health import ChildHealth, Health
from federator.core.problems import format_path
from federator.core.render import Child
from federator.core.settings import Settings

REASON = "InvalidForInstalledCRD"
MAX_LISTED = 3
"""Violations spelled out in a child's message; the rest are counted (the status stays small)."""
MAX_ALLOWED = 12
"""Allowed values listed for an enum; longer enums are cut (with a count)."""

GVK = tuple[str, str, str]


FIXES: dict[tuple[str, str], str] = {
    ("FlinkDeployment", "spec.flinkVersion"): (
        "set `flink.flinkVersion` in federator's operator settings (Helm value "
        "`flink.flinkVersion`; federator restarts with new settings) to a version the installed "
        "Flink operator supports, or set `flinkVersion` in this streamlet's `flink` block "
        "(spec.streamlets[].flink.flinkVersion) to override it for this streamlet only; "
        "the operator's versions: `flink.supportedVersions`"
    ),
}
"""Fields whose value comes from federator's settings, and how to change them."""
GENERIC_FIX = (
    "the installed CRD does not accept what federator renders: change the streamlet's runtime "
    "block (spec.streamlets[].{runtime}) or install a version of the delegate's CRD that "
    "accepts it"
)


@dataclass(kw_only=True)
class InstalledCRD:
    """What federator keeps of one installed CRD: its schemas, never the whole object (a
    FlinkDeployment CRD is half a megabyte), and the resourceVersion they were read at."""

    name: str
    resource_version: str
    schemas: Mapping[GVK, Mapping[str, Any]]
    _validators: dict[GVK, Validator] = field(default_factory=dict, repr=False)

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> InstalledCRD:
        meta = body.get("metadata") or {}
        return cls(
            name=str(meta.get("name") or ""),
            resource_version=str(meta.get("resourceVersion") or ""),
            schemas=openapi.crd_versions(body),
        )

    def validator(self, gvk: GVK) -> Validator | None:
        """Built on first use (converting a large schema takes milliseconds, once)."""
        if gvk not in self._validators and gvk in self.schemas:
            self._validators[gvk] = openapi.validator_for(self.schemas[gvk])
        return self._validators.get(gvk)


@dataclass(frozen=True, kw_only=True)
class Violation:
    """One field of a child the installed schema refuses."""

    path: str
    what: str  # "not allowed" | "unknown field" | "wrong type" | "missing" | "invalid"
    value: Any = None
    allowed: tuple[Any, ...] = ()
    detail: str = ""

    def __str__(self) -> str:
        if self.what == "not allowed":
            shown = ", ".join(str(v) for v in self.allowed[:MAX_ALLOWED])
            cut = len(self.allowed) - MAX_ALLOWED
            more = f" and {cut} more" if cut > 0 else ""
            return f"{self.path}: {self.value!r} is not allowed (allowed: {shown}{more})"
        if self.what == "not supported":
            shown = ", ".join(str(v) for v in self.allowed)
            return f"{self.path}: {self.value!r} is not supported (supported: {shown})"
        if self.what == "unknown field":
            return f"{self.path}: unknown field (the API server would drop it silently)"
        if self.what == "missing":
            return f"{self.path}: required field missing"
        if self.what == "wrong type":
            return f"{self.path}: {self.value!r} is not of type {self.detail}"
        return f"{self.path}: {self.detail}"


def _violations_of(error: ValidationError) -> list[Violation]:
    at = [str(p) if not isinstance(p, int) else p for p in error.absolute_path]
    path = format_path(at) or "(root)"
    if error.validator == "enum":
        return [
            Violation(
                path=path,
                what="not allowed",
                value=error.instance,
                allowed=tuple(error.validator_value or ()),
            )
        ]
    if error.validator == "additionalProperties" and isinstance(error.instance, Mapping):
        known = set((error.schema or {}).get("properties") or {})
        return [
            Violation(path=format_path([*at, str(key)]), what="unknown field")
            for key in sorted(error.instance, key=str)
            if key not in known
        ] or [Violation(path=path, what="invalid", detail=error.message)]
    if error.validator == "required" and isinstance(error.instance, Mapping):
        return [
            Violation(path=format_path([*at, str(key)]), what="missing")
            for key in error.validator_value or ()
            if key not in error.instance
        ]
    if error.validator == "type":
        wanted = error.validator_value
        shown = " or ".join(wanted) if isinstance(wanted, list) else str(wanted)
        return [Violation(path=path, what="wrong type", value=error.instance, detail=shown)]
    return [Violation(path=path, what="invalid", detail=error.message)]


def violations(manifest: Mapping[str, Any], validator: Validator) -> list[Violation]:
    """Every field of `manifest` the schema refuses, in path order."""
    found: list[Violation] = []
    for error in validator.iter_errors(manifest):
        found += _violations_of(error)
    return sorted(found, key=lambda v: v.path)


Declared = Mapping[tuple[str, str], tuple[str, ...]]
"""(kind, field path) -> the values the running operator reads, where the settings say so."""
DECLARED_BY = {("FlinkDeployment", "spec.flinkVersion"): "`flink.supportedVersions`"}


def declared(settings: Settings) -> dict[tuple[str, str], tuple[str, ...]]:
    """What the settings declare the installed operators read, beyond their CRDs: a CRD newer
    than its operator lets the API server store what the operator cannot deserialize."""
    out = {}
    if settings.flink.supported_versions:
        out[("FlinkDeployment", "spec.flinkVersion")] = settings.flink.supported_versions
    return out


def _at(manifest: Mapping[str, Any], path: str) -> Any:
    node: Any = manifest
    for part in path.split("."):
        node = node.get(part) if isinstance(node, Mapping) else None
    return node


def _declared_violations(child: Child, restrictions: Declared) -> list[Violation]:
    found = []
    for (kind, path), allowed in sorted(restrictions.items()):
        value = _at(child.manifest, path) if kind == child.kind else None
        if value is not None and value not in allowed:
            found.append(Violation(path=path, what="not supported", value=value, allowed=allowed))
    return found


def _fix(child: Child, found: Sequence[Violation]) -> str:
    hints = [FIXES[(child.kind, v.path)] for v in found if (child.kind, v.path) in FIXES]
    if hints:
        return "; ".join(dict.fromkeys(hints))
    runtime = {"FlinkDeployment": "flink", "FlinkApplication": "flink"}.get(child.kind, "spark")
    if child.streamlet is None:
        return (
            "the installed CRD does not accept the topic federator renders: install a version "
            "of the delegate's CRD that accepts it, or pin the Kafka cluster's topicApiVersion"
        )
    return GENERIC_FIX.format(runtime=runtime)


def verdict(
    child: Child, crd: InstalledCRD | None, restrictions: Declared | None = None
) -> ChildHealth | None:
    """None when the child fits the installed CRD (or the CRD does not describe its version:
    the API server's answer then decides) and what the settings declare the operator reads;
    else a Degraded verdict whose message names each field, its value, what is allowed and how
    to fix it."""
    group, _, version = child.api_version.rpartition("/")
    validator = crd.validator((group, version, child.kind)) if crd is not None else None
    found = violations(child.manifest, validator) if validator is not None else []
    refused_by = []
    if found and crd is not None:
        refused_by.append(f"the installed CRD {crd.name} (resourceVersion {crd.resource_version})")
    seen = {v.path for v in found}
    extra = [v for v in _declared_violations(child, restrictions or {}) if v.path not in seen]
    if extra:
        keys = sorted({DECLARED_BY.get((child.kind, v.path), "the settings") for v in extra})
        refused_by.append(f"the operator the settings describe ({', '.join(keys)})")
        found = sorted(found + extra, key=lambda v: v.path)
    if not found:
        return None
    listed = "; ".join(str(v) for v in found[:MAX_LISTED])
    more = f"; and {len(found) - MAX_LISTED} more" if len(found) > MAX_LISTED else ""
    where = f" (streamlet {child.streamlet})" if child.streamlet else ""
    return ChildHealth(
        health=Health.DEGRADED,
        reason=REASON,
        message=(
            f"{child.kind} {child.namespace}/{child.name}{where} not applied: "
            f"{' and '.join(refused_by)} refuses {listed}{more}. To fix: {_fix(child, found)}"
        ),
    )


def check(
    children: Iterable[Child],
    installed: Mapping[str, InstalledCRD],
    crd_of: Mapping[str, str],
    restrictions: Declared | None = None,
) -> dict[tuple[str, str, str], ChildHealth]:
    """Verdicts for the children that do not fit, by child key. `installed`: CRD name ->
    what was read of it; `crd_of`: kind -> its CRD name; `restrictions`: `declared(settings)`.
    Kinds without an installed CRD read (built-in kinds, a CRD that could not be read) are
    judged by the restrictions only."""
    out: dict[tuple[str, str, str], ChildHealth] = {}
    for child in children:
        crd = installed.get(crd_of.get(child.kind, ""))
        refused = verdict(child, crd, restrictions)
        if refused is not None:
            out[child.key] = refused
    return out
