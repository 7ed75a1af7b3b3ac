"""Check what a streamlet hands its delegate before anything is rendered or applied.

A runtime block (`spark`, `flink`, `container`) is merged over the child federator renders, so a
wrong value used to surface only when the API server refused the apply, retried forever; where
federator's wiring needed a mapping it was even replaced without a word (`spark.driver: "abc"`).
Each block is checked here, every problem at its path:

- types and fields, against the schema of the delegate that receives the block: the `spec` of the
  vendored CRD for Spark and Flink (closed over the fields its operator reads where the CRD
  keeps unknown fields: Lyft's FlinkApplication), `deploymentschema` for Deployments. The
  block is a partial spec: the fields federator renders are never required of the user (list
  items are whole, so their required fields stay required);
- placement: a field that would move the child or its pods to another namespace, or rename the
  child, is refused with what federator does instead;
- images: every image field, and the streamlet's own `image`, is parsed as an image reference.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from functools import cache
from typing import TYPE_CHECKING, Any

from federator.core import (
    delegates,
    deploymentschema,
    flinkconf,
    imageref,
    naming,
    openapi,
    quickcheck,
)
from federator.core.delegates import Delegate, TargetApis, specschemas
from federator.core.model import Application, Streamlet
from federator.core.problems import Code, Problem, format_path, suggest
from federator.core.render import delegate_for
from federator.core.settings import Settings

if TYPE_CHECKING:
    import jsonschema
    from jsonschema.protocols import Validator

_TYPE_NAMES = {
    "object": "an object (a mapping of fields)",
    "array": "a list",
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "a boolean (true or false)",
    "null": "null",
}
IMAGE_FORMAT = "[registry[:port]/]repository[:tag][@sha256:<64 hex digits>]"
# Spark and Flink configuration keys that choose a container image.
_IMAGE_SETTINGS = (".container.image", ".container.image.ref")
_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?")


def problems(app: Application, settings: Settings) -> list[Problem]:
    """Every problem of every streamlet's image and runtime block."""
    out: list[Problem] = []
    for s in app.streamlets:
        out += _image_problems({"image": s.image}, s.path)
        if not s.overrides:
            continue
        delegate = delegate_for(s, settings, TargetApis.offline())
        base = f"{s.path}.{s.runtime.value}"
        placement = list(_placement_problems(app, s, delegate, base))
        moved = {p.path for p in placement}
        out += placement
        out += [p for p in _type_problems(s.overrides, delegate, base) if not _under(p.path, moved)]
        out += _image_problems(s.overrides, base)
    return out


def _under(path: str, roots: Iterable[str]) -> bool:
    return any(path == r or path.startswith((f"{r}.", f"{r}[")) for r in roots)


# --- types --------------------------------------------------------------------------------------


def _type_problems(block: Mapping[str, Any], delegate: Delegate, base: str) -> Iterator[Problem]:
    quick = _certainly_valid(delegate.kind)
    if quick is not None and quick(block):
        return
    errors = _validator(delegate.kind).iter_errors(block)
    for error in sorted(errors, key=lambda e: [str(p) for p in e.absolute_path]):
        yield _type_problem(error, delegate, base)


@cache
def _json_schema(kind: str) -> Mapping[str, Any]:
    delegate = delegates.BY_KIND[kind]
    converted: Mapping[str, Any] = openapi.to_json_schema(
        _partial(_closed(spec_schema(delegate), delegate))
    )
    return converted


def _closed(spec: Mapping[str, Any], delegate: Delegate) -> Mapping[str, Any]:
    """The spec schema of a delegate whose CRD keeps unknown fields, closed over the fields
    its operator reads (`Delegate.undeclared_spec_fields`), so an unknown field in a runtime
    block is an error with a "did you mean" instead of stored and ignored."""
    extra = delegate.undeclared_spec_fields
    if extra is None:
        return spec
    closed = {k: v for k, v in spec.items() if k != "x-kubernetes-preserve-unknown-fields"}
    closed["properties"] = {**spec.get("properties", {}), **extra}
    return closed


@cache
def _validator(kind: str) -> Validator:
    return openapi.json_schema_validator(_json_schema(kind))


@cache
def _certainly_valid(kind: str) -> quickcheck.Check | None:
    return quickcheck.compile(_json_schema(kind))


def spec_schema(delegate: Delegate) -> Mapping[str, Any]:
    """The OpenAPI schema of the delegate's `spec`, for the version federator writes: its own,
    else the one extracted from the vendored CRDs (`delegates.specschemas`)."""
    if delegate.spec_schema is not None:
        return delegate.spec_schema
    spec = specschemas.load().get(specschemas.key(delegate))
    if not isinstance(spec, Mapping):
        raise LookupError(
            f"federator's vendored CRDs have no {delegate.api_version()} {delegate.kind} "
            f"({delegate.crd_name}); reinstall federator"
        )
    return spec


def _partial(node: Any) -> Any:
    """The schema of a block merged over federator's own spec: no field of a mapping is
    required (federator may render it); items of a list are whole and keep their `required`."""
    if not isinstance(node, Mapping):
        return node
    out = {key: value for key, value in node.items() if key != "required"}
    if isinstance(node.get("properties"), Mapping):
        out["properties"] = {key: _partial(value) for key, value in node["properties"].items()}
    if isinstance(node.get("additionalProperties"), Mapping):
        out["additionalProperties"] = _partial(node["additionalProperties"])
    return out


def _type_problem(error: jsonschema.ValidationError, delegate: Delegate, base: str) -> Problem:
    parts = list(error.absolute_path)
    where = f"{delegate.kind} {format_path(['spec', *parts])}"
    if error.validator == "additionalProperties" and isinstance(error.instance, Mapping):
        known = error.schema.get("properties", {}) if isinstance(error.schema, Mapping) else {}
        extra = sorted(str(k) for k in set(error.instance) - set(known))
        if extra:
            return Problem(
                path=format_path([base, *parts, extra[0]]),
                code=Code.RUNTIME_FIELD,
                message=f"{where} has no field {extra[0]!r}"
                + suggest(extra[0], known)
                + ("" if len(extra) == 1 else f" (also unknown: {', '.join(extra[1:])})"),
            )
    if error.validator == "required":
        missing = re.match(r"'([^']+)'", error.message)
        if missing:
            return Problem(
                path=format_path([base, *parts, missing.group(1)]),
                code=Code.RUNTIME_FIELD,
                message=f"required: each item of {where} needs {missing.group(1)!r}",
            )
    expected = _expected_types(error)
    if expected:
        return Problem(
            path=format_path([base, *parts]),
            code=Code.RUNTIME_FIELD,
            message=f"{where} must be {' or '.join(_TYPE_NAMES.get(t, t) for t in expected)}, "
            f"not {_describe(error.instance)}" + _unquote_hint(error.instance, expected),
        )
    patterns = [e.validator_value for e in (error, *error.context) if e.validator == "pattern"]
    if deploymentschema.QUANTITY_PATTERN in patterns:
        message = (
            f"{where} must be a Kubernetes quantity such as 500m, 2, 1.5, 512Mi or 4Gi, "
            f"not {error.instance!r}"
        )
    elif patterns:
        message = f"{error.instance!r} does not match {patterns[0]!r} ({where})"
    else:
        message = f"{error.message} ({where})"
    return Problem(path=format_path([base, *parts]), code=Code.RUNTIME_FIELD, message=message)


def _expected_types(error: jsonschema.ValidationError) -> list[str]:
    """The JSON types a `type` error (or an int-or-string `anyOf`) asked for."""
    if error.validator == "type":
        value = error.validator_value
        return [value] if isinstance(value, str) else [str(v) for v in value]
    if error.validator == "anyOf" and isinstance(error.validator_value, list):
        import jsonschema  # imported by the error's validator already

        types = [s.get("type") for s in error.validator_value if isinstance(s, Mapping)]
        wrong_type = all(
            isinstance(t, str)
            and not jsonschema.Draft7Validator({"type": t}).is_valid(error.instance)
            for t in types
        )
        return [str(t) for t in types] if wrong_type else []
    return []


def _describe(value: Any) -> str:
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if value is None:
        return "null"
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, int | float):
        return f"the number {value!r}"
    if isinstance(value, list):
        return "a list"
    return "an object"


def _unquote_hint(value: Any, expected: list[str]) -> str:
    numeric = isinstance(value, str) and _NUMBER.fullmatch(value)
    return (
        "; write the number without quotes"
        if numeric and {"integer", "number"} & set(expected)
        else ""
    )


# --- placement ----------------------------------------------------------------------------------


def _placement_problems(
    app: Application, s: Streamlet, delegate: Delegate, base: str
) -> Iterator[Problem]:
    block = s.overrides
    stay = (
        f"federator creates every child of an Application in the Application's namespace "
        f"{app.namespace!r} (topics in their Kafka cluster's namespace)"
    )
    name = naming.child_name(app.name, s.name, delegate.name_limit)
    root = {
        "namespace": f"a runtime block cannot choose the {delegate.kind}'s namespace "
        f"({block.get('namespace')!r}): {stay}",
        "name": f"a runtime block cannot name the {delegate.kind}: it is always {name!r} "
        "(<application>-<streamlet>)",
        "metadata": f"a runtime block holds {delegate.kind} spec fields only; the child's "
        f"metadata is federator's (name {name!r}, namespace {app.namespace!r})",
    }
    for key, message in root.items():
        if key in block:
            yield Problem(
                path=format_path([base, key]),
                code=Code.CHILD_PLACEMENT,
                message=f"{message}; remove this field",
            )
    for parts in _nested_metadata_namespaces(block, ()):
        yield Problem(
            path=format_path([base, *parts]),
            code=Code.CHILD_PLACEMENT,
            message=f"pods cannot be moved to another namespace: {stay}; remove this field",
        )
    setting = delegate.namespace_setting
    if setting:
        section, key = setting
        # Read as the delegate reads its configuration: nested maps are dotted keys.
        for entry in flinkconf.lookup(block.get(section), key):
            yield Problem(
                path=format_path([base, section, *entry.path]),
                code=Code.CHILD_PLACEMENT,
                message=f"{key} would run the {delegate.kind}'s pods in another namespace: "
                f"{stay}; remove this setting",
            )


def _nested_metadata_namespaces(node: Any, parts: tuple[str | int, ...]) -> Iterator[list[Any]]:
    """Paths of `metadata.namespace` in pod templates below the block's root."""
    if isinstance(node, Mapping):
        for key, value in node.items():
            here = (*parts, key)
            if key == "metadata" and parts and isinstance(value, Mapping) and "namespace" in value:
                yield [*here, "namespace"]
            yield from _nested_metadata_namespaces(value, here)
    elif isinstance(node, list):
        for i, item in enumerate(node):
            yield from _nested_metadata_namespaces(item, (*parts, i))


# --- images -------------------------------------------------------------------------------------


def _image_problems(node: Mapping[str, Any], base: str) -> list[Problem]:
    return [
        Problem(
            path=format_path([base, *parts]),
            code=Code.INVALID_IMAGE,
            message=f"{text!r} is not a valid image reference: {reason}; write "
            f"{IMAGE_FORMAT}, e.g. {imageref.EXAMPLE}",
        )
        for parts, text in image_fields(node)
        if (reason := imageref.problem(text)) is not None
    ]


def image_fields(node: Any, parts: tuple[str | int, ...] = ()) -> Iterator[tuple[list[Any], str]]:
    """Every container image string below `node`: `image` fields (not `rbd.image`, a Ceph
    volume's name), image volumes' `image.reference`, and the image settings of Spark and
    Flink configurations (`spark.kubernetes.container.image`, `kubernetes.container.image.ref`)."""
    if isinstance(node, Mapping):
        parent = parts[-1] if parts else None
        for key, value in node.items():
            here = (*parts, key)
            if isinstance(value, str) and (
                (key == "image" and parent != "rbd")
                or (key == "reference" and parent == "image")
                or (isinstance(key, str) and key.endswith(_IMAGE_SETTINGS))
            ):
                yield [*here], value
            else:
                yield from image_fields(value, here)
    elif isinstance(node, list):
        for i, item in enumerate(node):
            yield from image_fields(item, (*parts, i))
