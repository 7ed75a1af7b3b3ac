"""Validation of Application specs: every problem, at its path, all at once.

Aspects covered:
- one table row per kind of problem (schema, names, references, ports, topics, runtime, Kafka
  cluster, schemas and Avro compatibility, cycles), asserting the code AND the path;
- suggestions of the closest valid names;
- every problem of a spec reported in one pass, without echoes;
- random specs never raise anything but the typed result (hypothesis).
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from federator.core import compiler, validation
from federator.core.problems import Code, InvalidSpec
from federator.core.settings import parse_settings

SETTINGS = parse_settings(
    {
        "kafkaClusters": [
            {
                "name": "default",
                "strimziCluster": "strimzi",
                "namespace": "kafka",
                "bootstrapServers": "kafka:9092",
            },
            {
                "name": "analytics",
                "strimziCluster": "strimzi-b",
                "namespace": "kafka-b",
                "bootstrapServers": "b:9092",
            },
        ]
    }
)


def avro(fields: list[dict[str, Any]]) -> dict[str, str]:
    record = {"type": "record", "name": "R", "fields": fields}
    return {"format": "avro", "definition": json.dumps(record)}


def base() -> dict[str, Any]:
    return {
        "apiVersion": "federator.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": "app", "namespace": "ns"},
        "spec": {
            "streamlets": [
                {"name": "src", "runtime": "container", "image": "i", "outlets": ["out"]},
                {
                    "name": "proc",
                    "runtime": "container",
                    "image": "i",
                    "inlets": ["in"],
                    "outlets": ["out"],
                },
                {"name": "sink", "runtime": "container", "image": "i", "inlets": ["in"]},
            ],
            "connections": [
                {"from": "src.out", "to": ["proc.in"]},
                {"from": "proc.out", "to": ["sink.in"]},
            ],
        },
    }


def with_changes(*edits: Any) -> dict[str, Any]:
    body = base()
    for edit in edits:
        edit(body["spec"])
    return body


def setter(path: list[Any], value: Any) -> Any:
    def edit(spec: dict[str, Any]) -> None:
        node = spec
        for part in path[:-1]:
            node = node[part]
        node[path[-1]] = value

    return edit


def appender(path: list[Any], value: Any) -> Any:
    def edit(spec: dict[str, Any]) -> None:
        node = spec
        for part in path:
            node = node.setdefault(part, []) if isinstance(node, dict) else node[part]
        node.append(copy.deepcopy(value))

    return edit


CASES: list[tuple[str, dict[str, Any], Code, str, str]] = [
    # id, body, code, path, a fragment of the message users rely on
    (
        "schema-missing-image",
        with_changes(lambda s: s["streamlets"][0].pop("image")),
        Code.SCHEMA,
        "spec.streamlets[0].image",
        "required",
    ),
    (
        "schema-unknown-field-suggests",
        with_changes(setter(["streamlets", 1, "replica"], 2)),
        Code.SCHEMA,
        "spec.streamlets[1].replica",
        "did you mean 'replicas'",
    ),
    (
        "schema-bad-streamlet-name",
        with_changes(setter(["streamlets", 2, "name"], "Sink_1")),
        Code.SCHEMA,
        "spec.streamlets[2].name",
        "does not match",
    ),
    (
        "duplicate-streamlet",
        with_changes(
            appender(["streamlets"], {"name": "sink", "runtime": "container", "image": "i"})
        ),
        Code.DUPLICATE_STREAMLET,
        "spec.streamlets[3].name",
        "already used by spec.streamlets[2]",
    ),
    (
        "unknown-streamlet-suggests",
        with_changes(setter(["connections", 1, "to"], ["snik.in"])),
        Code.UNKNOWN_STREAMLET,
        "spec.connections[1].to[0]",
        "did you mean 'sink'",
    ),
    (
        "unknown-port-suggests",
        with_changes(setter(["connections", 0, "from"], "src.outt")),
        Code.UNKNOWN_PORT,
        "spec.connections[0].from",
        "did you mean 'out'",
    ),
    (
        "producer-not-an-outlet",
        with_changes(
            appender(["topics"], {"name": "t", "producers": ["proc.in"]}),
        ),
        Code.NOT_AN_OUTLET,
        "spec.topics[0].producers[0]",
        "is an inlet",
    ),
    (
        "consumer-not-an-inlet",
        with_changes(setter(["connections", 1, "to"], ["sink.in", "proc.out"])),
        Code.NOT_AN_INLET,
        "spec.connections[1].to[1]",
        "is an outlet",
    ),
    (
        "port-bound-twice",
        with_changes(appender(["connections"], {"from": "src.out", "to": ["sink.in"]})),
        Code.PORT_BOUND_TWICE,
        "spec.connections[2].to[0]",
        "already bound to topic 'app.proc.out'",
    ),
    (
        "unconnected-inlet",
        with_changes(setter(["streamlets", 2, "inlets"], ["in", "side"])),
        Code.UNCONNECTED_INLET,
        "spec.streamlets[2].inlets[1]",
        "sink.side reads no topic",
    ),
    (
        "invalid-topic-name",
        with_changes(appender(["topics"], {"name": "bad topic!", "producers": ["src.out"]})),
        Code.INVALID_TOPIC_NAME,
        "spec.topics[0].name",
        "not a valid Kafka topic name",
    ),
    (
        "invalid-implicit-topic-name-too-long",
        with_changes(
            setter(["streamlets", 0, "outlets"], ["o" * 63]),
            setter(["streamlets", 0, "name"], "s" * 63),
            setter(["connections", 0, "from"], f"{'s' * 63}.{'o' * 63}"),
            lambda s: s.update(topics=[]),
            lambda s: s["streamlets"][0].update(name="s" * 63),
        )
        | {"metadata": {"name": "a" * 130, "namespace": "ns"}},
        Code.INVALID_TOPIC_NAME,
        "spec.streamlets[0].outlets[0]",
        "shorten the application, streamlet or outlet name",
    ),
    (
        "duplicate-topic-name",
        with_changes(
            appender(["topics"], {"name": "shared", "producers": ["src.out"]}),
            appender(["topics"], {"name": "shared", "producers": ["proc.out"]}),
        ),
        Code.DUPLICATE_TOPIC,
        "spec.topics[1].name",
        "declared twice",
    ),
    (
        "topic-collides-with-implicit",
        with_changes(appender(["topics"], {"name": "app.src.out", "consumers": []})),
        Code.DUPLICATE_TOPIC,
        "spec.streamlets[0].outlets[0]",
        "same name as the explicit topic",
    ),
    (
        "topic-dot-underscore-collision",
        with_changes(
            appender(["topics"], {"name": "a.b", "producers": ["src.out"]}),
            appender(["topics"], {"name": "a_b", "producers": ["proc.out"]}),
        ),
        Code.DUPLICATE_TOPIC,
        "spec.topics[1].name",
        "Kafka treats '.' and '_' as the same",
    ),
    (
        "unknown-runtime-suggests",
        with_changes(setter(["streamlets", 1, "runtime"], "sprak")),
        Code.UNKNOWN_RUNTIME,
        "spec.streamlets[1].runtime",
        "did you mean 'spark'",
    ),
    (
        "unknown-kafka-cluster-suggests",
        with_changes(setter(["kafka"], {"cluster": "analytic"})),
        Code.UNKNOWN_KAFKA_CLUSTER,
        "spec.kafka.cluster",
        "did you mean 'analytics'",
    ),
    (
        "schema-format-mismatch",
        with_changes(
            setter(["streamlets", 0, "schemas"], {"out": {"format": "json"}}),
            setter(["streamlets", 1, "schemas"], {"in": {"format": "avro"}}),
        ),
        Code.SCHEMA_MISMATCH,
        "spec.streamlets[1].schemas.in",
        "format 'avro' of proc.in does not match format 'json' of src.out",
    ),
    (
        "avro-reader-cannot-read-writer",
        with_changes(
            setter(["streamlets", 0, "schemas"], {"out": avro([{"name": "x", "type": "int"}])}),
            setter(
                ["streamlets", 1, "schemas"],
                {"in": avro([{"name": "x", "type": "int"}, {"name": "y", "type": "string"}])},
            ),
        ),
        Code.SCHEMA_MISMATCH,
        "spec.streamlets[1].schemas.in",
        "reader_field_missing_default_value",
    ),
    (
        "avro-definition-unparsable",
        with_changes(
            setter(["streamlets", 0, "schemas"], {"out": {"format": "avro", "definition": "{"}})
        ),
        Code.INVALID_PORT_SCHEMA,
        "spec.streamlets[0].schemas.out.definition",
        "invalid Avro schema",
    ),
    (
        "schema-for-unknown-port",
        with_changes(setter(["streamlets", 0, "schemas"], {"ot": {"format": "json"}})),
        Code.INVALID_PORT_SCHEMA,
        "spec.streamlets[0].schemas.ot",
        "did you mean 'out'",
    ),
    (
        "cycle-printed-as-path",
        with_changes(
            setter(["streamlets", 0, "inlets"], ["back"]),
            appender(["connections"], {"from": "proc.out", "to": ["src.back"]}),
        ),
        Code.CYCLE,
        "spec.streamlets[1]",  # a cycle starts at its alphabetically first streamlet
        "proc -> app.proc.out -> src -> app.src.out -> proc",
    ),
    (
        "runtime-block-for-other-runtime",
        with_changes(setter(["streamlets", 0, "spark"], {"mainClass": "x"})),
        Code.RUNTIME_BLOCK,
        "spec.streamlets[0].spark",
        "only allowed when runtime is spark",
    ),
    (
        "flink-operator-on-container",
        with_changes(setter(["streamlets", 0, "flinkOperator"], "apache")),
        Code.RUNTIME_BLOCK,
        "spec.streamlets[0].flinkOperator",
        "only allowed when runtime is flink",
    ),
    (
        "spark-without-main-application-file",
        with_changes(setter(["streamlets", 2, "runtime"], "spark")),
        Code.SCHEMA,
        "spec.streamlets[2].spark.mainApplicationFile",
        "required for SparkApplication",
    ),
    (
        "unmanaged-topic-with-settings",
        with_changes(
            appender(
                ["topics"],
                {"name": "ext", "managed": False, "partitions": 3, "consumers": []},
            )
        ),
        Code.UNMANAGED_TOPIC_SETTINGS,
        "spec.topics[0]",
        "managed: false",
    ),
    (
        "lyft-cannot-suspend",
        with_changes(
            setter(["suspend"], True),
            setter(["streamlets", 2, "runtime"], "flink"),
            setter(["streamlets", 2, "flinkOperator"], "lyft"),
            setter(["streamlets", 2, "flink"], {"jarName": "j.jar", "entryClass": "E"}),
        ),
        Code.RUNTIME_BLOCK,
        "spec.suspend",
        "cannot be suspended",
    ),
]


def test_base_spec_is_valid() -> None:
    result = validation.validate(base(), SETTINGS)
    assert result.problems == ()


@pytest.mark.parametrize(
    ("body", "code", "path", "fragment"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_each_problem_has_code_path_and_message(
    body: dict[str, Any], code: Code, path: str, fragment: str
) -> None:
    problems = validation.validate(body, SETTINGS).problems
    matching = [p for p in problems if p.code is code and p.path == path]
    assert matching, f"expected {code.value} at {path}, got: {[str(p) for p in problems]}"
    assert any(fragment in p.message for p in matching), [p.message for p in matching]


def test_every_problem_is_reported_in_one_pass() -> None:
    body = with_changes(
        setter(["streamlets", 1, "runtime"], "sprak"),
        setter(["kafka"], {"cluster": "nope"}),
        setter(["connections", 1, "to"], ["snik.in"]),
        setter(["streamlets", 2, "inlets"], ["in", "side"]),
    )
    codes = {p.code for p in validation.validate(body, SETTINGS).problems}
    assert {
        Code.UNKNOWN_RUNTIME,
        Code.UNKNOWN_KAFKA_CLUSTER,
        Code.UNKNOWN_STREAMLET,
        Code.UNCONNECTED_INLET,
    } <= codes


def test_a_streamlet_with_a_bad_runtime_is_not_reported_again_as_unknown() -> None:
    body = with_changes(setter(["streamlets", 0, "runtime"], "sprak"))
    problems = validation.validate(body, SETTINGS).problems
    assert [p.code for p in problems] == [Code.UNKNOWN_RUNTIME]


def test_compile_raises_invalid_spec_with_all_problems() -> None:
    body = with_changes(setter(["kafka"], {"cluster": "nope"}), setter(["streamlets", 1, "x"], 1))
    with pytest.raises(InvalidSpec) as info:
        compiler.compile_application(body, SETTINGS)
    assert {p.code for p in info.value.problems} == {Code.UNKNOWN_KAFKA_CLUSTER, Code.SCHEMA}


def test_avro_compatible_evolution_is_accepted() -> None:
    body = with_changes(
        setter(["streamlets", 0, "schemas"], {"out": avro([{"name": "x", "type": "int"}])}),
        setter(
            ["streamlets", 1, "schemas"],
            {
                "in": avro(
                    [
                        {"name": "x", "type": "long"},
                        {"name": "y", "type": "string", "default": ""},
                    ]
                )
            },
        ),
    )
    assert validation.validate(body, SETTINGS).problems == ()


def test_problems_are_sorted_by_path_with_numeric_indices() -> None:
    body = base()
    body["spec"]["streamlets"] += [
        {"name": f"x{i}", "runtime": "container", "image": "i", "inlets": ["in"]} for i in range(11)
    ]
    paths = [p.path for p in validation.validate(body, SETTINGS).problems]
    assert paths == [f"spec.streamlets[{i}].inlets[0]" for i in range(3, 14)]


# --- property: validation never raises, whatever the body ---------------------------------------

json_leaf = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 300), st.text(max_size=12), st.floats(allow_nan=False)
)
json_value = st.recursive(
    json_leaf,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
names = st.sampled_from(["src", "proc", "sink", "x", "Bad_Name", "", "a" * 70])
ports = st.sampled_from(["in", "out", "in-0", "valid", "", "a.b"])
refs = st.builds(lambda s, p: f"{s}.{p}", names, ports) | st.text(max_size=10)
streamlet = st.fixed_dictionaries(
    {"name": names, "runtime": st.sampled_from(["spark", "flink", "container", "akka", "x"])},
    optional={
        "image": st.text(max_size=5),
        "inlets": st.lists(ports, max_size=3),
        "outlets": st.lists(ports, max_size=3),
        "replicas": st.integers(-1, 5),
        "config": json_value,
        "flinkOperator": st.sampled_from(["apache", "lyft", "other"]),
        "schemas": st.dictionaries(
            ports,
            st.fixed_dictionaries(
                {"format": st.sampled_from(["avro", "json", "x"])},
                optional={"definition": st.sampled_from(['{"type":"int"}', "{", '"string"'])},
            ),
            max_size=2,
        ),
        "spark": json_value,
        "flink": json_value,
        "container": json_value,
    },
)
spec = st.fixed_dictionaries(
    {},
    optional={
        "streamlets": st.lists(streamlet, max_size=5) | json_value,
        "connections": st.lists(
            st.fixed_dictionaries({"from": refs, "to": st.lists(refs, max_size=3)}), max_size=4
        )
        | json_value,
        "topics": st.lists(
            st.fixed_dictionaries(
                {"name": st.text(max_size=10)},
                optional={
                    "producers": st.lists(refs, max_size=2),
                    "consumers": st.lists(refs, max_size=2),
                    "managed": st.booleans(),
                    "partitions": st.integers(-1, 5),
                },
            ),
            max_size=3,
        ),
        "kafka": json_value,
        "topicDefaults": json_value,
        "suspend": json_value,
        "deletionPolicy": json_value,
    },
)
bodies = st.fixed_dictionaries(
    {
        "apiVersion": st.just("federator.io/v1alpha1"),
        "kind": st.just("Application"),
        "metadata": st.fixed_dictionaries({"name": names}),
        "spec": spec | json_value,
    }
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=bodies)
def test_random_specs_yield_a_result_never_an_exception(body: dict[str, Any]) -> None:
    result = validation.validate(body, SETTINGS)
    assert isinstance(result, validation.Result)
    if result.ok:
        # A spec that validates must also compile: validation is the whole gate.
        compiled = compiler.compile_application(body, SETTINGS)
        assert len(compiled.children) >= len(compiled.topology.streamlets)
    else:
        assert all(p.path and p.message for p in result.problems)


@settings(max_examples=200, deadline=None)
@given(body=json_value)
@example(body={"\u00b2": None})  # '²'.isdigit() is True, int('²') raises: the order key broke
@example(body={"spec": {"streamlets": [{"name": "a", "\u0663": 1}]}})  # an Arabic-Indic 3
def test_arbitrary_json_never_raises(body: Any) -> None:
    result = validation.validate(body if isinstance(body, dict) else {"spec": body}, SETTINGS)
    assert not result.ok
