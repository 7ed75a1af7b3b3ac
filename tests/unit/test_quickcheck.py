"""The quick "certainly valid" verdict (federator.core.quickcheck) never hides an error.

Aspects: on plain data (what YAML and JSON give) its verdict is jsonschema's `is_valid`, keyword
by keyword and on hypothesis-mutated Applications and runtime blocks against the real schemas
(the Application CRD, the delegates' spec schemas); where it doubts (a number type it does not
know, an enum of non-strings, a keyword it does not compile, an instance nested past the
recursion limit) it answers False, so jsonschema decides; the schemas federator validates with
all compile, so the quick path is taken.
"""

from __future__ import annotations

import copy
import decimal
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from federator.core import blockcheck, delegates, quickcheck, validation

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "bench"))
import compile as bench_compile  # noqa: E402

AGREE: dict[str, tuple[dict[str, Any], list[Any]]] = {
    # id: schema, instances (quickcheck and jsonschema must agree on each)
    "type": ({"type": "integer"}, [1, -3, True, 1.0, "1", None, [], {}]),
    "type-list": ({"type": ["string", "null"]}, ["a", None, 0, False]),
    "number": ({"type": "number"}, [1, 1.5, True, "1.5"]),
    "boolean-null-array-object": (
        {"anyOf": [{"type": "boolean"}, {"type": "null"}, {"type": "array"}]},
        [True, None, [], {}, 0],
    ),
    "properties": (
        {
            "type": "object",
            "properties": {"a": {"type": "string"}, "b": {"type": "integer"}},
            "required": ["a"],
            "additionalProperties": False,
        },
        [{"a": "x"}, {"a": "x", "b": 1}, {"b": 1}, {"a": 1}, {"a": "x", "c": 1}, "not an object"],
    ),
    "additional-schema": (
        {"type": "object", "additionalProperties": {"type": "string"}},
        [{}, {"k": "v"}, {"k": 1}, {"k": "v", "j": None}],
    ),
    "object-sizes": ({"maxProperties": 1, "minProperties": 1}, [{}, {"a": 1}, {"a": 1, "b": 2}]),
    "items": (
        {"type": "array", "items": {"type": "string", "maxLength": 2}, "maxItems": 2},
        [[], ["ab"], ["abc"], ["a", "b", "c"], [1], "ab"],
    ),
    "min-items": ({"minItems": 1}, [[], [0], "x"]),
    "strings": (
        {"pattern": "^[a-z]+$", "minLength": 2, "maxLength": 3},
        ["ab", "abcd", "a", "AB", "ab1", 12, None],
    ),
    "search-not-match": ({"pattern": "b"}, ["abc", "xyz"]),
    "bounds": ({"minimum": 1, "maximum": 3.5}, [0, 1, 3.5, 4, True, "9", 2.0]),
    "enum": ({"enum": ["a", "b"]}, ["a", "c", 1, None]),
    "any-of": ({"anyOf": [{"type": "integer"}, {"type": "string"}]}, [1, "x", 1.5, None]),
    "true-false": ({"properties": {"t": True, "f": False}}, [{"t": 1}, {"f": 1}, {}]),
    "annotations": ({"description": "d", "default": 1, "title": "t"}, [None, 1]),
}


@pytest.mark.parametrize(("schema", "instances"), list(AGREE.values()), ids=list(AGREE))
def test_its_verdict_is_jsonschemas_on_plain_data(schema: dict[str, Any], instances: list[Any]):
    quick = quickcheck.compile(schema)
    assert quick is not None
    validator = jsonschema.Draft7Validator(schema)
    for instance in instances:
        assert quick(instance) == validator.is_valid(instance), instance


DOUBTS: dict[str, tuple[dict[str, Any], Any]] = {
    # id: schema, an instance jsonschema accepts and quickcheck leaves to it
    "decimal-number": ({"type": "number"}, decimal.Decimal("1.5")),
    "decimal-bound": ({"minimum": 1}, decimal.Decimal(2)),
    "enum-of-integers": ({"enum": [1, 2]}, 1),
    "unknown-keyword-below": ({"properties": {"a": {"uniqueItems": True}}}, {"a": [1, 2]}),
}


@pytest.mark.parametrize(("schema", "instance"), list(DOUBTS.values()), ids=list(DOUBTS))
def test_a_doubt_is_left_to_jsonschema(schema: dict[str, Any], instance: Any) -> None:
    assert jsonschema.Draft7Validator(schema).is_valid(instance)
    quick = quickcheck.compile(schema)
    assert quick is not None and quick(instance) is False


def test_an_instance_nested_past_the_recursion_limit_is_a_doubt() -> None:
    schema: dict[str, Any] = {"type": "object"}
    instance: dict[str, Any] = {}
    for _ in range(sys.getrecursionlimit() + 10):
        schema = {"type": "object", "properties": {"a": schema}}
        instance = {"a": instance}
    quick = quickcheck.compile(schema)
    assert quick is not None and quick(instance) is False


@pytest.mark.parametrize(
    "schema",
    [{"uniqueItems": True}, {"$ref": "#/x"}, {"items": [{"type": "string"}]}, {"type": "any"}],
    ids=["uniqueItems", "ref", "tuple-items", "unknown-type"],
)
def test_a_schema_with_an_unknown_keyword_is_not_compiled(schema: dict[str, Any]) -> None:
    assert quickcheck.compile(schema) is None


def test_the_schemas_federator_validates_with_compile_and_pass_a_valid_application() -> None:
    quick = validation._certainly_valid()
    assert quick is not None
    body = bench_compile.generate(50)
    assert quick(body) and validation._validator().is_valid(body)
    for kind in ("SparkApplication", "FlinkDeployment", "FlinkApplication", "Deployment"):
        assert blockcheck._certainly_valid(kind) is not None, kind


# --- mutated Applications and blocks, against the real schemas ---------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 70000) | st.floats(-2, 2) | st.text(max_size=6),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)
BASE = bench_compile.generate(6, seed=7)


def _paths(node: Any, here: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [here]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*here, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*here, i))
    return out


def _mutate(body: Any, path: tuple[Any, ...], action: str, value: Any) -> Any:
    body = copy.deepcopy(body)
    if not path:
        return value
    *parent_path, last = path
    parent = body
    for part in parent_path:
        parent = parent[part]
    if action == "replace":
        parent[last] = value
    elif action == "delete":
        del parent[last]
    elif action == "add" and isinstance(parent[last], dict):
        parent[last]["x" + str(len(parent[last]))] = value
    elif action == "add" and isinstance(parent[last], list):
        parent[last].append(value)
    return body


MUTATIONS = st.tuples(
    st.sampled_from(_paths(BASE)), st.sampled_from(["replace", "delete", "add"]), JSON
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(MUTATIONS, min_size=1, max_size=3))
def test_mutated_applications_get_jsonschemas_verdict(mutations: list[Any]) -> None:
    body: Any = BASE
    for path, action, value in mutations:
        try:
            body = _mutate(body, path, action, value)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation removed the path
    quick = validation._certainly_valid()
    assert quick is not None
    assert quick(body) == validation._validator().is_valid(body)


SPARK_BLOCK = {
    "driver": {"cores": 1, "memory": "512m", "env": [{"name": "A", "value": "b"}]},
    "executor": {"instances": 2, "labels": {"a": "b"}},
    "sparkConf": {"spark.x": "y"},
    "volumes": [{"name": "v", "emptyDir": {"sizeLimit": "1Gi"}}],
}


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(_paths(SPARK_BLOCK)), st.sampled_from(["replace", "delete", "add"]), JSON)
def test_mutated_runtime_blocks_get_jsonschemas_verdict(
    path: tuple[Any, ...], action: str, value: Any
) -> None:
    block = _mutate(SPARK_BLOCK, path, action, value)
    kind = delegates.SPARK_APPLICATION.kind
    quick = blockcheck._certainly_valid(kind)
    assert quick is not None
    assert quick(block) == blockcheck._validator(kind).is_valid(block)
