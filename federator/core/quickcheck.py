"""A quick "certainly valid" verdict for the JSON Schemas federator validates against.

jsonschema's `iter_errors` is general: every keyword of every node of the instance goes through
a dynamic dispatch, an evolved validator and a path, about 7 µs a node. An Application of 1,000
streamlets has some 18,000 nodes: 0.12 s of `federator compile`, spent to learn, nearly always,
that there is no error. This module compiles a schema once into plain Python closures that answer
only that question, for the keywords the CRD schemas federator reads use (`openapi` converts
them): type, properties, additionalProperties, required, items, anyOf, enum, pattern, the length,
size and range bounds. A schema with any other keyword is not compiled (`compile` answers None).

The verdict is one-sided by design: True only when jsonschema would find no error; False means
"ask jsonschema", which then reports every problem with its own messages. So a doubt (a number
type jsonschema accepts but this does not know, an enum of non-strings) costs time, never a
message or a missed error.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

Check = Callable[[Any], bool]

_ANNOTATIONS = frozenset({"description", "default", "title", "example", "examples", "$comment"})
"""Keywords that never fail an instance."""


class _Unsupported(Exception):
    """A keyword (or a form of one) this module does not compile."""


def compile(schema: Any) -> Check | None:
    """A function telling whether an instance is certainly valid against `schema` (JSON Schema
    draft 7, as `openapi.validator_for` builds it), or None when the schema uses a keyword this
    module does not know."""
    try:
        root = _node(schema)
    except _Unsupported:
        return None

    def certainly_valid(instance: Any) -> bool:
        try:
            return root(instance)
        except _Unsupported:  # met below, where the schema is compiled on first use
            return False
        except RecursionError:  # a deeply nested instance: jsonschema decides, as it did
            return False

    return certainly_valid


def _always(instance: Any) -> bool:
    return True


def _never(instance: Any) -> bool:
    return False


_TYPES: dict[str, Check] = {
    "object": lambda x: isinstance(x, dict),
    "array": lambda x: isinstance(x, list),
    "string": lambda x: isinstance(x, str),
    # jsonschema (draft 6 and later): an int but a bool, or an integral float; any
    # numbers.Number but a bool (only int and float here: another Number is a doubt).
    "integer": lambda x: (
        (isinstance(x, int) and not isinstance(x, bool))
        or (isinstance(x, float) and x.is_integer())
    ),
    "number": lambda x: isinstance(x, int | float) and not isinstance(x, bool),
    "boolean": lambda x: isinstance(x, bool),
    "null": lambda x: x is None,
}


def _lazy(schema: Any) -> Check:
    """`_node(schema)` compiled when first needed: the delegates' schemas have thousands of
    nodes (pod templates), a runtime block reaches a few of them."""
    compiled: Check | None = None

    def check(instance: Any) -> bool:
        nonlocal compiled
        if compiled is None:
            compiled = _node(schema)
        return compiled(instance)

    return check


def _node(schema: Any) -> Check:
    if schema is True:
        return _always
    if schema is False:
        return _never
    if not isinstance(schema, Mapping):
        raise _Unsupported
    checks: list[Check] = []
    keys = set(schema) - _ANNOTATIONS
    if "type" in keys:
        checks.append(_type(schema["type"]))
    if keys & {"properties", "additionalProperties", "required", "maxProperties", "minProperties"}:
        checks.append(_object(schema))
    if keys & {"items", "maxItems", "minItems"}:
        checks.append(_array(schema))
    if keys & {"pattern", "maxLength", "minLength"}:
        checks.append(_string(schema))
    if keys & {"minimum", "maximum"}:
        checks.append(_number(schema))
    if "enum" in keys:
        checks.append(_enum(schema["enum"]))
    if "anyOf" in keys:
        checks.append(_any_of(schema["anyOf"]))
    known = {"type", "enum", "anyOf", "properties", "additionalProperties", "required"}
    known |= {"maxProperties", "minProperties", "items", "maxItems", "minItems"}
    known |= {"pattern", "maxLength", "minLength", "minimum", "maximum"}
    if keys - known:
        raise _Unsupported
    if not checks:
        return _always
    if len(checks) == 1:
        return checks[0]
    return lambda x: all(check(x) for check in checks)


def _type(value: Any) -> Check:
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not names or any(n not in _TYPES for n in names):
        raise _Unsupported
    tests = [_TYPES[n] for n in names]
    if len(tests) == 1:
        return tests[0]
    return lambda x: any(test(x) for test in tests)


def _object(schema: Mapping[str, Any]) -> Check:
    properties = schema.get("properties", {})
    if not isinstance(properties, Mapping):
        raise _Unsupported
    subs = {name: _lazy(sub) for name, sub in properties.items()}
    extra_schema = schema.get("additionalProperties", True)
    extra = _lazy(extra_schema)
    required = schema.get("required", [])
    if not isinstance(required, list):
        raise _Unsupported
    most = schema.get("maxProperties")
    least = schema.get("minProperties")
    if not all(b is None or (type(b) is int) for b in (most, least)):
        raise _Unsupported
    extras_free = extra_schema is True

    def check(x: Any) -> bool:
        if not isinstance(x, dict):
            return True  # the object keywords ignore anything else
        for name in required:
            if name not in x:
                return False
        if most is not None and len(x) > most:
            return False
        if least is not None and len(x) < least:
            return False
        for name, value in x.items():
            sub = subs.get(name)
            if sub is not None:
                if not sub(value):
                    return False
            elif not extras_free and not extra(value):
                return False
        return True

    return check


def _array(schema: Mapping[str, Any]) -> Check:
    items = schema.get("items", True)
    if isinstance(items, list):
        raise _Unsupported  # draft 7's tuple form
    each = _lazy(items)
    most = schema.get("maxItems")
    least = schema.get("minItems")
    if not all(b is None or (type(b) is int) for b in (most, least)):
        raise _Unsupported

    def check(x: Any) -> bool:
        if not isinstance(x, list):
            return True
        if most is not None and len(x) > most:
            return False
        if least is not None and len(x) < least:
            return False
        return all(each(item) for item in x)

    return check


def _string(schema: Mapping[str, Any]) -> Check:
    pattern = schema.get("pattern")
    search = re.compile(pattern).search if isinstance(pattern, str) else None
    if pattern is not None and search is None:
        raise _Unsupported
    most = schema.get("maxLength")
    least = schema.get("minLength")
    if not all(b is None or (type(b) is int) for b in (most, least)):
        raise _Unsupported

    def check(x: Any) -> bool:
        if not isinstance(x, str):
            return True
        if most is not None and len(x) > most:
            return False
        if least is not None and len(x) < least:
            return False
        return search is None or search(x) is not None

    return check


def _number(schema: Mapping[str, Any]) -> Check:
    low = schema.get("minimum")
    high = schema.get("maximum")
    for bound in (low, high):
        if bound is not None and (type(bound) not in (int, float)):
            raise _Unsupported

    def check(x: Any) -> bool:
        if isinstance(x, bool) or not isinstance(x, int | float):
            # Not a number for jsonschema's bounds, unless another numbers.Number: a doubt.
            return not _is_other_number(x)
        if low is not None and x < low:
            return False
        return high is None or x <= high

    return check


def _is_other_number(x: Any) -> bool:
    import numbers

    return isinstance(x, numbers.Number) and not isinstance(x, bool)


def _enum(values: Any) -> Check:
    if not isinstance(values, list):
        raise _Unsupported
    strings = frozenset(v for v in values if isinstance(v, str))
    # A string equals only a string in jsonschema's `equal`; any other instance is a doubt.
    return lambda x: isinstance(x, str) and x in strings


def _any_of(schemas: Any) -> Check:
    if not isinstance(schemas, list) or not schemas:
        raise _Unsupported
    subs = [_lazy(s) for s in schemas]
    return lambda x: any(sub(x) for sub in subs)
