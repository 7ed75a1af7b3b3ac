"""Turn a CRD's OpenAPI v3 schema into JSON Schema, so one validator serves every CRD.

Kubernetes' structural schemas are almost JSON Schema; the differences that matter for
validation are `nullable`, `x-kubernetes-int-or-string` and the extension keys, handled here.
CEL rules (`x-kubernetes-validations`) are not evaluated here: the API server does that, and
federator's own rules are mirrored as Python checks in `validation`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jsonschema.protocols import Validator


def to_json_schema(node: Any, *, strict: bool = True) -> Any:
    """Convert; `strict` rejects unknown fields, which the API server would silently prune
    (a typo in a runtime block would otherwise vanish without a word)."""
    if isinstance(node, list):
        return [to_json_schema(item, strict=strict) for item in node]
    if not isinstance(node, Mapping):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key.startswith("x-kubernetes-") or key in ("nullable", "format", "example"):
            continue
        if key in ("properties", "patternProperties", "definitions"):
            out[key] = {k: to_json_schema(v, strict=strict) for k, v in value.items()}
        else:
            out[key] = to_json_schema(value, strict=strict)
    if (
        strict
        and "properties" in node
        and "additionalProperties" not in node
        and not node.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    if node.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if node.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    return out


def validator_for(schema: Mapping[str, Any], *, strict: bool = True) -> Validator:
    return json_schema_validator(to_json_schema(schema, strict=strict))


def json_schema_validator(converted: Mapping[str, Any]) -> Validator:
    """jsonschema's validator of a converted schema. jsonschema is imported here, when first
    needed: a valid Application never needs it (`quickcheck` says so), and importing it (with
    `referencing`) was 0.06 s of every `federator compile`."""
    import jsonschema

    cls = jsonschema.validators.validator_for(converted, default=jsonschema.Draft7Validator)
    validator: Validator = cls(converted)
    return validator


def crd_versions(crd: Mapping[str, Any]) -> dict[tuple[str, str, str], Mapping[str, Any]]:
    """`(group, version, kind)` -> openAPIV3Schema for every served version of a CRD document."""
    spec = crd.get("spec", {})
    group, kind = spec.get("group", ""), spec.get("names", {}).get("kind", "")
    out = {}
    for version in spec.get("versions", []):
        schema = version.get("schema", {}).get("openAPIV3Schema")
        if version.get("served", True) and schema:
            out[(group, version["name"], kind)] = _with_envelope(schema)
    return out


def _with_envelope(schema: Mapping[str, Any]) -> Mapping[str, Any]:
    """Some CRDs leave apiVersion/kind/metadata out of their root properties (the API server
    adds them); add them so strict validation does not call them unknown."""
    properties = dict(schema.get("properties", {}))
    for key, node in (("apiVersion", "string"), ("kind", "string"), ("metadata", "object")):
        properties.setdefault(key, {"type": node})
    return {**schema, "properties": properties}
