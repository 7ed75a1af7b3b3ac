"""The Application CRD (crds/application.yaml), checked without an API server.

Aspects covered:
- documentation: every field of the schema has a description (what `kubectl explain` shows);
- structure: the schema is structural (a type on every node, no properties beside
  additionalProperties, unknown fields preserved only in the runtime blocks), list-map keys are
  required, defaults satisfy their own schema, CEL rules carry a message and a valid fieldPath;
- validation: jsonschema accepts DESIGN §2's example and a minimal spec, and rejects bad specs
  at the right paths;
- presentation: names, short names, categories, printer columns, status subresource.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

CRD_PATH = Path(__file__).parents[2] / "crds" / "application.yaml"

Schema = dict[str, Any]

# The runtime blocks hold native fields of the delegates' specs; nothing else may escape pruning.
PRESERVED_PATHS = {
    "spec.streamlets[].spark",
    "spec.streamlets[].flink",
    "spec.streamlets[].container",
}


@pytest.fixture(scope="module")
def crd() -> dict[str, Any]:
    with CRD_PATH.open(encoding="utf-8") as f:
        loaded: dict[str, Any] = yaml.safe_load(f)
    return loaded


@pytest.fixture(scope="module")
def version(crd: dict[str, Any]) -> dict[str, Any]:
    (only,) = crd["spec"]["versions"]
    return dict(only)


@pytest.fixture(scope="module")
def root(version: dict[str, Any]) -> Schema:
    return dict(version["schema"]["openAPIV3Schema"])


def _strip_kubernetes_keys(node: Any) -> Any:
    """The schema as plain JSON Schema: without the `x-kubernetes-*` extensions."""
    if isinstance(node, dict):
        return {
            key: _strip_kubernetes_keys(value)
            for key, value in node.items()
            if not key.startswith("x-kubernetes-")
        }
    if isinstance(node, list):
        return [_strip_kubernetes_keys(item) for item in node]
    return node


@pytest.fixture(scope="module")
def spec_validator(root: Schema) -> jsonschema.Draft202012Validator:
    schema = _strip_kubernetes_keys(root["properties"]["spec"])
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def _walk(node: Schema, path: str) -> Iterator[tuple[str, Schema]]:
    """Every schema node with a readable path: `spec.streamlets[].schemas{}.format`."""
    yield path, node
    for name, child in node.get("properties", {}).items():
        yield from _walk(child, f"{path}.{name}" if path else name)
    if isinstance(node.get("items"), dict):
        yield from _walk(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from _walk(node["additionalProperties"], f"{path}{{}}")


def _nodes(root: Schema) -> list[tuple[str, Schema]]:
    return list(_walk(root, ""))


def _error_path(error: jsonschema.ValidationError) -> str:
    """A jsonschema error's location in DESIGN's notation: `spec.streamlets[3].inlets[0]`."""
    path = "spec"
    for part in error.absolute_path:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


# DESIGN §2's example, with the elided parts (`...`) filled in.
EXAMPLE_SPEC: dict[str, Any] = yaml.safe_load(
    """
kafka:
  cluster: default
topicDefaults:
  partitions: 53
  replicas: 2
  config: {retention.ms: "7200000"}
streamlets:
  - name: cdr-aggregator
    runtime: spark
    image: registry.example.com/cdr/aggregator:1.4.2
    inlets: [in]
    outlets: [out]
    schemas:
      in: {format: avro, definition: '{"type": "record", "name": "Cdr", "fields": []}'}
    replicas: 2
    config: {window: 1m}
    spark: {sparkVersion: "3.5.1", driver: {cores: 1, memory: 512m}}
  - name: cdr-validator
    runtime: flink
    image: registry.example.com/cdr/validator:1.0.0
    inlets: [in]
    outlets: [valid, invalid]
    flinkOperator: apache
    flink: {flinkVersion: v1_18}
  - name: ingress
    runtime: akka
    image: registry.example.com/cdr/ingress:1.0.0
    outlets: [out]
    container: {template: {spec: {nodeSelector: {disk: ssd}}}}
  - name: proc
    runtime: container
    image: registry.example.com/cdr/proc:1.0.0
    inlets: [in]
connections:
  - {from: cdr-validator.valid, to: [cdr-aggregator.in]}
topics:
  - name: spark.users
    producers: [ingress.out]
    consumers: [proc.in, cdr-validator.in]
    partitions: 3
    replicas: 2
    config: {segment.bytes: "1073741824"}
    managed: true
deletionPolicy: Retain
suspend: false
"""
)

EXAMPLE_STATUS: dict[str, Any] = yaml.safe_load(
    """
observedGeneration: 4
phase: Progressing
ready: 11
total: 12
summary: "11/12"
conditions:
  - {type: Ready, status: "False", reason: WaitingForChildren,
     message: "Unready: a, b and 1 more", observedGeneration: 4,
     lastTransitionTime: "2025-01-01T00:00:00Z"}
  - {type: Reconciling, status: "True", reason: Progressing, message: "",
     observedGeneration: 4, lastTransitionTime: "2025-01-01T00:00:00Z"}
children:
  - {kind: KafkaTopic, apiVersion: kafka.strimzi.io/v1, namespace: kafka,
     name: call-record-aggregator.merge.out, topic: call-record-aggregator.merge.out,
     health: Healthy, reason: Ready, message: ""}
  - {kind: SparkApplication, apiVersion: sparkoperator.k8s.io/v1beta2, namespace: lightbend,
     name: call-record-aggregator-cdr-aggregator, streamlet: cdr-aggregator,
     health: Progressing, reason: SUBMITTED, message: submitted, specHash: 0123abcd}
"""
)


def _with(path: tuple[str | int, ...], value: Any) -> dict[str, Any]:
    """The example spec with one value replaced (or, with `...`, removed)."""
    spec = copy.deepcopy(EXAMPLE_SPEC)
    target: Any = spec
    for part in path[:-1]:
        target = target[part]
    if value is ...:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return spec


# (spec, the path of the error, the failing keyword)
BAD_SPECS = [
    pytest.param(
        _with(("streamlets", 0, "runtime"), "python"),
        "spec.streamlets[0].runtime",
        "enum",
        id="bad-runtime",
    ),
    pytest.param(
        _with(("streamlets", 1, "name"), "Cdr_Validator"),
        "spec.streamlets[1].name",
        "pattern",
        id="bad-streamlet-name",
    ),
    pytest.param(
        _with(("streamlets", 1, "name"), "a" * 64),
        "spec.streamlets[1].name",
        "maxLength",
        id="streamlet-name-too-long",
    ),
    pytest.param(
        _with(("topics", 0, "name"), "spark users!"),
        "spec.topics[0].name",
        "pattern",
        id="bad-topic-name",
    ),
    pytest.param(
        _with(("topics", 0, "name"), "t" * 250),
        "spec.topics[0].name",
        "maxLength",
        id="topic-name-too-long",
    ),
    pytest.param(
        _with(("streamlets", 2, "image"), ...),
        "spec.streamlets[2]",
        "required",
        id="missing-image",
    ),
    pytest.param(
        _with(("streamlets", 2, "image"), ""),
        "spec.streamlets[2].image",
        "minLength",
        id="empty-image",
    ),
    pytest.param(
        _with(("streamlets", 0, "inlets"), ["In"]),
        "spec.streamlets[0].inlets[0]",
        "pattern",
        id="bad-port-name",
    ),
    pytest.param(
        _with(("streamlets", 0, "schemas"), {"in": {"format": "xml"}}),
        "spec.streamlets[0].schemas.in.format",
        "enum",
        id="bad-schema-format",
    ),
    pytest.param(
        _with(("streamlets", 0, "replicas"), -1),
        "spec.streamlets[0].replicas",
        "minimum",
        id="negative-replicas",
    ),
    pytest.param(
        _with(("streamlets", 1, "flinkOperator"), "ververica"),
        "spec.streamlets[1].flinkOperator",
        "enum",
        id="bad-flink-operator",
    ),
    pytest.param(
        _with(("topicDefaults", "config"), {"retention.ms": 7200000}),
        "spec.topicDefaults.config.retention.ms",
        "type",
        id="unquoted-config-value",
    ),
    pytest.param(
        _with(("topicDefaults", "partitions"), 0),
        "spec.topicDefaults.partitions",
        "minimum",
        id="zero-partitions",
    ),
    pytest.param(
        _with(("topics", 0, "replicas"), 40000),
        "spec.topics[0].replicas",
        "maximum",
        id="too-many-topic-replicas",
    ),
    pytest.param(
        _with(("connections", 0, "from"), "cdr-validator"),
        "spec.connections[0].from",
        "pattern",
        id="from-without-port",
    ),
    pytest.param(
        _with(("connections", 0, "to"), []),
        "spec.connections[0].to",
        "minItems",
        id="empty-to",
    ),
    pytest.param(
        _with(("topics", 0, "producers"), ["ingress"]),
        "spec.topics[0].producers[0]",
        "pattern",
        id="producer-without-port",
    ),
    pytest.param(
        _with(("kafka", "cluster"), "My_Cluster"),
        "spec.kafka.cluster",
        "pattern",
        id="bad-cluster-name",
    ),
    pytest.param(
        _with(("deletionPolicy",), "Orphan"),
        "spec.deletionPolicy",
        "enum",
        id="bad-deletion-policy",
    ),
    pytest.param(
        _with(("suspend",), "yes"),
        "spec.suspend",
        "type",
        id="suspend-not-boolean",
    ),
    pytest.param(
        _with(("streamlets",), []),
        "spec.streamlets",
        "minItems",
        id="no-streamlets",
    ),
    pytest.param(
        _with(("streamlets",), ...),
        "spec",
        "required",
        id="missing-streamlets",
    ),
]


class TestDocumentation:
    def test_every_field_has_a_description(self, root: Schema) -> None:
        # The API server forbids anything but `type` on the root's metadata.
        undocumented = [
            path or "<root>"
            for path, node in _nodes(root)
            if path != "metadata" and not str(node.get("description", "")).strip()
        ]
        assert undocumented == []

    def test_metadata_is_left_to_the_api_server(self, root: Schema) -> None:
        assert root["properties"]["metadata"] == {"type": "object"}

    def test_every_printer_column_has_a_description(self, version: dict[str, Any]) -> None:
        columns = version["additionalPrinterColumns"]
        assert all(column.get("description") for column in columns)


class TestStructure:
    def test_every_node_has_a_type(self, root: Schema) -> None:
        untyped = [
            path
            for path, node in _nodes(root)
            if "type" not in node
            and not node.get("x-kubernetes-int-or-string")
            and not node.get("x-kubernetes-preserve-unknown-fields")
        ]
        assert untyped == []

    def test_no_properties_beside_additional_properties(self, root: Schema) -> None:
        both = [
            path
            for path, node in _nodes(root)
            if "properties" in node and "additionalProperties" in node
        ]
        assert both == []

    def test_no_json_schema_keywords_the_api_server_forbids(self, root: Schema) -> None:
        forbidden = {"$ref", "definitions", "dependencies", "patternProperties", "uniqueItems"}
        found = [(path, key) for path, node in _nodes(root) for key in forbidden & node.keys()]
        assert found == []

    def test_unknown_fields_are_preserved_only_in_runtime_blocks(self, root: Schema) -> None:
        preserved = {
            path for path, node in _nodes(root) if node.get("x-kubernetes-preserve-unknown-fields")
        }
        assert preserved == PRESERVED_PATHS
        assert all(dict(_nodes(root))[path]["type"] == "object" for path in preserved)

    def test_list_map_keys_are_required(self, root: Schema) -> None:
        list_maps = [
            (path, node) for path, node in _nodes(root) if "x-kubernetes-list-map-keys" in node
        ]
        assert {path for path, _ in list_maps} == {
            "spec.streamlets",
            "spec.topics",
            "status.conditions",
        }
        for path, node in list_maps:
            assert node["x-kubernetes-list-type"] == "map", path
            assert set(node["x-kubernetes-list-map-keys"]) <= set(node["items"]["required"]), path

    def test_defaults_satisfy_their_own_schema(self, root: Schema) -> None:
        defaulted = [(path, node) for path, node in _nodes(root) if "default" in node]
        assert {path for path, _ in defaulted} == {
            "spec.kafka",
            "spec.kafka.cluster",
            "spec.topics[].managed",
            "spec.deletionPolicy",
            "spec.suspend",
        }
        for path, node in defaulted:
            validator = jsonschema.Draft202012Validator(_strip_kubernetes_keys(node))
            assert validator.is_valid(node["default"]), path

    def test_cel_rules_have_a_message_and_a_valid_field_path(self, root: Schema) -> None:
        rules = [
            (path, node, rule)
            for path, node in _nodes(root)
            for rule in node.get("x-kubernetes-validations", [])
        ]
        assert len(rules) == 10
        for path, node, rule in rules:
            assert rule["rule"].strip(), path
            assert rule.get("message", "").strip(), path
            assert rule.get("reason", "FieldValueInvalid") in {
                "FieldValueInvalid",
                "FieldValueForbidden",
                "FieldValueRequired",
                "FieldValueDuplicate",
            }, path
            if "fieldPath" in rule:
                assert rule["fieldPath"].lstrip(".") in node["properties"], (path, rule)

    def test_cel_rules_stay_out_of_the_status(self, root: Schema) -> None:
        in_status = [
            path
            for path, node in _nodes(root)
            if path.startswith("status") and "x-kubernetes-validations" in node
        ]
        assert in_status == []


class TestValidation:
    def test_accepts_the_design_example(
        self, spec_validator: jsonschema.Draft202012Validator
    ) -> None:
        assert [e.message for e in spec_validator.iter_errors(EXAMPLE_SPEC)] == []

    def test_accepts_a_minimal_spec(self, spec_validator: jsonschema.Draft202012Validator) -> None:
        minimal = {"streamlets": [{"name": "a", "runtime": "container", "image": "a:1"}]}
        assert [e.message for e in spec_validator.iter_errors(minimal)] == []

    def test_accepts_the_status_the_operator_writes(self, root: Schema) -> None:
        validator = jsonschema.Draft202012Validator(
            _strip_kubernetes_keys(root["properties"]["status"])
        )
        assert [e.message for e in validator.iter_errors(EXAMPLE_STATUS)] == []

    @pytest.mark.parametrize(("spec", "path", "keyword"), BAD_SPECS)
    def test_rejects_a_bad_spec_at_its_path(
        self,
        spec_validator: jsonschema.Draft202012Validator,
        spec: dict[str, Any],
        path: str,
        keyword: str,
    ) -> None:
        errors = list(spec_validator.iter_errors(spec))
        assert [(_error_path(e), e.validator) for e in errors] == [(path, keyword)]

    def test_reports_every_problem_at_once(
        self, spec_validator: jsonschema.Draft202012Validator
    ) -> None:
        spec = _with(("streamlets", 0, "runtime"), "python")
        spec["topics"][0]["name"] = "bad name"
        del spec["streamlets"][2]["image"]
        paths = sorted(_error_path(e) for e in spec_validator.iter_errors(spec))
        assert paths == [
            "spec.streamlets[0].runtime",
            "spec.streamlets[2]",
            "spec.topics[0].name",
        ]


class TestPresentation:
    def test_names(self, crd: dict[str, Any]) -> None:
        assert crd["apiVersion"] == "apiextensions.k8s.io/v1"
        assert crd["kind"] == "CustomResourceDefinition"
        assert crd["metadata"]["name"] == "applications.federator.io"
        assert crd["spec"]["group"] == "federator.io"
        assert crd["spec"]["scope"] == "Namespaced"
        assert crd["spec"]["names"] == {
            "kind": "Application",
            "listKind": "ApplicationList",
            "plural": "applications",
            "singular": "application",
            "shortNames": ["fapp"],
            "categories": ["federator", "streaming"],
        }

    def test_labels(self, crd: dict[str, Any]) -> None:
        assert crd["metadata"]["labels"] == {
            "app.kubernetes.io/name": "federator",
            "app.kubernetes.io/part-of": "federator",
        }

    def test_one_served_storage_version_with_a_status_subresource(
        self, version: dict[str, Any]
    ) -> None:
        assert version["name"] == "v1alpha1"
        assert version["served"] is True
        assert version["storage"] is True
        assert version["subresources"] == {"status": {}}

    def test_printer_columns(self, version: dict[str, Any]) -> None:
        columns = [
            (c["name"], c["type"], c["jsonPath"]) for c in version["additionalPrinterColumns"]
        ]
        assert columns == [
            ("PHASE", "string", ".status.phase"),
            ("READY", "string", ".status.summary"),
            ("AGE", "date", ".metadata.creationTimestamp"),
        ]

    def test_phase_vocabulary(self, root: Schema) -> None:
        phase = root["properties"]["status"]["properties"]["phase"]
        assert phase["enum"] == [
            "Healthy",
            "Progressing",
            "Degraded",
            "Suspended",
            "Missing",
            "Unknown",
            "Invalid",
        ]
