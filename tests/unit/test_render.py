"""Rendering Applications into child manifests (DESIGN §2, §3).

Aspects covered:
- delegate schemas: every child of every example validates against the REAL delegate CRDs in
  third_party/delegate-crds with strict unknown-field checking: KafkaTopic under both Strimzi
  versions (the v1-only CRD and the 0.51.0 CRD that still serves v1beta2, each file indexed on
  its own), Apache FlinkDeployment, Lyft FlinkApplication, SparkApplication; offline and with
  the cluster serving KafkaTopic v1beta2; and the check is shown to catch a bad child;
- the seed's topics: exactly the KafkaTopics of the seed's `kubectl get kafkatopics`;
- waves and determinism: topics first, streamlets upstream-first, identical output every time;
- metadata: labels, annotations, spec-hash, never app.kubernetes.io/instance; ownerReferences;
- wiring: identical env in every runtime and location, FEDERATOR_CONTEXT;
- runtime blocks: deep merge, and they cannot rewire (or unwire) a streamlet;
- replicas and suspend per runtime; Lyft cannot be suspended;
- injection: values with YAML/Jinja syntax reach exactly their own field, literally
  (explicit cases and hypothesis), or, in image fields, are refused as image references;
- long names: 63-character app, streamlet and port names, 253-character app names, and an
  implicit topic name over Kafka's 249-character limit.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, assume, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from federator.core import childschema, compiler, delegates, imageref, naming
from federator.core.compiler import Compiled
from federator.core.delegates import TargetApis
from federator.core.problems import Code, InvalidSpec
from federator.core.render import Child, deep_merge
from federator.core.settings import Settings, parse_settings

EXAMPLES_DIR = Path(__file__).resolve().parents[2] / "examples"
EXAMPLES = tuple(sorted(p.name for p in EXAMPLES_DIR.glob("*.yaml") if p.name != "settings.yaml"))

STRIMZI_V1 = "strimzi-kafkatopic.crd.yaml"
STRIMZI_0_51 = "strimzi-kafkatopic-0.51.0-v1beta2.crd.yaml"
BOOTSTRAP = "pipelines-strimzi-kafka-bootstrap.kafka.svc:9092"

DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")

SERVED_VARIANTS: dict[str, TargetApis | None] = {
    "offline": None,  # what `federator compile` does: the settings' pin, else v1
    "served-v1beta2": TargetApis(topic_version="v1beta2"),
}


# --- helpers ----------------------------------------------------------------------------------


def compile_body(
    body: Mapping[str, Any], settings: Settings, served: TargetApis | None = None
) -> Compiled:
    return compiler.compile_application(copy.deepcopy(body), settings, served)


def application(name: str = "demo", namespace: str = "team", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "federator.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def streamlet(
    name: str,
    runtime: str,
    *,
    inlets: tuple[str, ...] = (),
    outlets: tuple[str, ...] = (),
    image: str = "registry.example.com/img:1",
    block: Mapping[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A streamlet with the runtime block fields its delegate requires (plus `block`)."""
    out: dict[str, Any] = {"name": name, "image": image, **extra}
    if inlets:
        out["inlets"] = list(inlets)
    if outlets:
        out["outlets"] = list(outlets)
    block = dict(block or {})
    if runtime == "spark":
        out["spark"] = {"mainApplicationFile": "local:///opt/app.jar", **block}
    elif runtime in ("flink", "apache"):
        job = {"jarURI": "local:///opt/flink/usrlib/job.jar", **block.pop("job", {})}
        out["flink"] = {"job": job, **block}
        out["flinkOperator"] = "apache"
    elif runtime == "lyft":
        out["flink"] = {"jarName": "job.jar", "entryClass": "org.example.Job", **block}
        out["flinkOperator"] = "lyft"
    elif block:
        out["container"] = block
    out["runtime"] = {"apache": "flink", "lyft": "flink"}.get(runtime, runtime)
    return out


def by_streamlet(children: tuple[Child, ...], name: str) -> Child:
    (child,) = [c for c in children if c.streamlet == name]
    return child


def topics_of(children: tuple[Child, ...]) -> list[Child]:
    return [c for c in children if c.kind == "KafkaTopic"]


def env_locations(child: Child) -> dict[str, Any]:
    """Where the template wires env vars, per kind: location -> the env list found there."""
    spec = child.manifest["spec"]
    if child.kind == "Deployment":
        containers = {c.get("name"): c for c in spec["template"]["spec"]["containers"]}
        wired = containers.get(child.streamlet, {})  # a block may have dropped it (a bug)
        return {"template.containers[streamlet].env": wired.get("env")}
    if child.kind == "SparkApplication":
        return {
            "driver.env": spec["driver"].get("env"),
            "executor.env": spec["executor"].get("env"),
        }
    if child.kind == "FlinkDeployment":
        containers = {c.get("name"): c for c in spec["podTemplate"]["spec"]["containers"]}
        return {
            "podTemplate.flink-main-container.env": containers["flink-main-container"].get("env")
        }
    if child.kind == "FlinkApplication":
        return {
            "jobManagerConfig.envConfig.env": spec["jobManagerConfig"]["envConfig"].get("env"),
            "taskManagerConfig.envConfig.env": spec["taskManagerConfig"]["envConfig"].get("env"),
        }
    raise AssertionError(f"no env locations known for {child.kind}")


def env_map(env: list[Mapping[str, Any]]) -> dict[str, Any]:
    names = [e["name"] for e in env]
    assert len(names) == len(set(names)), f"duplicate env names: {names}"
    return {e["name"]: e.get("value") for e in env}


def label_maps(node: Any, path: str = "") -> Iterator[tuple[str, Mapping[str, Any]]]:
    """Every `labels` / `matchLabels` map anywhere in a manifest, with its path."""
    if isinstance(node, Mapping):
        for key, value in node.items():
            if key in ("labels", "matchLabels") and isinstance(value, Mapping):
                yield f"{path}.{key}", value
            else:
                yield from label_maps(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, item in enumerate(node):
            yield from label_maps(item, f"{path}[{i}]")


def all_keys(node: Any) -> Iterator[str]:
    if isinstance(node, Mapping):
        for key, value in node.items():
            yield key
            yield from all_keys(value)
    elif isinstance(node, list):
        for item in node:
            yield from all_keys(item)


def all_strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, Mapping):
        for key, value in node.items():
            yield key
            yield from all_strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from all_strings(item)


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def crd_indexes(delegate_crds: Path) -> dict[str, childschema.SchemaIndex]:
    """One SchemaIndex per real CRD file, so each child is checked against each file serving it."""
    out = {}
    for path in sorted(delegate_crds.glob("*.crd.yaml")):
        with path.open(encoding="utf-8") as handle:
            out[path.name] = childschema.SchemaIndex.from_documents(
                list(yaml.safe_load_all(handle))
            )
    assert {STRIMZI_V1, STRIMZI_0_51} <= set(out), sorted(out)
    return out


@pytest.fixture(scope="module")
def full_index(delegate_crds: Path) -> childschema.SchemaIndex:
    """Every CRD file of third_party/delegate-crds in one index (v1 KafkaTopic from the v1 file)."""
    docs: list[Any] = []
    for path in sorted(delegate_crds.glob("*.crd.yaml"), reverse=True):  # strimzi v1 file wins
        with path.open(encoding="utf-8") as handle:
            docs += list(yaml.safe_load_all(handle))
    return childschema.SchemaIndex.from_documents(docs)


def gvk(child: Child) -> tuple[str, str, str]:
    group, _, version = child.api_version.rpartition("/")
    return (group, version, child.kind)


# === delegate schemas ===========================================================================


@pytest.mark.parametrize("variant", list(SERVED_VARIANTS), ids=list(SERVED_VARIANTS))
@pytest.mark.parametrize("example", EXAMPLES, ids=[e.removesuffix(".yaml") for e in EXAMPLES])
def test_every_child_validates_against_the_real_crds(
    example: str,
    variant: str,
    example_loader: Callable[[str], dict[str, Any]],
    example_settings: Settings,
    crd_indexes: dict[str, childschema.SchemaIndex],
) -> None:
    compiled = compile_body(example_loader(example), example_settings, SERVED_VARIANTS[variant])
    assert compiled.children
    failures = []
    for child in compiled.children:
        if child.kind == "Deployment":
            continue  # a core kind: no CRD (checked structurally in test_deployment_is_coherent)
        serving = sorted(f for f, idx in crd_indexes.items() if gvk(child) in idx.schemas)
        assert serving, f"no CRD file in third_party/delegate-crds serves {child.api_version}"
        if child.kind == "KafkaTopic":
            expected = (
                [STRIMZI_0_51]
                if child.api_version.endswith("v1beta2")
                else [STRIMZI_0_51, STRIMZI_V1]
            )
            assert serving == expected, (child.api_version, serving)
        for file in serving:
            for problem in childschema.check([child], crd_indexes[file]):
                failures.append(f"{file}: {problem.path}: {problem.message}")
    assert failures == []


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.removesuffix(".yaml") for e in EXAMPLES])
def test_served_v1beta2_renders_every_topic_as_v1beta2(
    example: str,
    example_loader: Callable[[str], dict[str, Any]],
    example_settings: Settings,
) -> None:
    compiled = compile_body(
        example_loader(example), example_settings, TargetApis(topic_version="v1beta2")
    )
    versions = {c.api_version for c in topics_of(compiled.children)}
    assert versions == {"kafka.strimzi.io/v1beta2"}


def test_the_examples_exercise_every_delegate_kind_and_topic_version(
    example_loader: Callable[[str], dict[str, Any]], example_settings: Settings
) -> None:
    seen = set()
    for example in EXAMPLES:
        for served in SERVED_VARIANTS.values():
            compiled = compile_body(example_loader(example), example_settings, served)
            seen |= {(c.kind, c.api_version) for c in compiled.children}
    assert seen >= {
        ("KafkaTopic", "kafka.strimzi.io/v1"),
        ("KafkaTopic", "kafka.strimzi.io/v1beta2"),
        ("SparkApplication", "sparkoperator.k8s.io/v1beta2"),
        ("FlinkDeployment", "flink.apache.org/v1beta1"),
        ("FlinkApplication", "flink.k8s.io/v1beta1"),
        ("Deployment", "apps/v1"),
    }


def test_legacy_cluster_pins_v1beta2_offline(
    example_loader: Callable[[str], dict[str, Any]], example_settings: Settings
) -> None:
    compiled = compile_body(example_loader("wordcount-lyft.yaml"), example_settings)
    assert {c.api_version for c in topics_of(compiled.children)} == {"kafka.strimzi.io/v1beta2"}
    assert {c.namespace for c in topics_of(compiled.children)} == {"kafka-legacy"}


@pytest.mark.parametrize(
    ("kind", "mutate", "field"),
    [
        ("KafkaTopic", lambda m: m["spec"].__setitem__("partitionz", 3), "partitionz"),
        ("SparkApplication", lambda m: m["spec"]["driver"].__setitem__("coresz", 1), "coresz"),
        ("FlinkDeployment", lambda m: m["spec"]["job"].__setitem__("jarUri", "x"), "jarUri"),
        (
            "FlinkApplication",
            lambda m: m["spec"]["jobManagerConfig"].__setitem__("replicaz", 1),
            "replicaz",
        ),
    ],
    ids=["kafkatopic", "sparkapplication", "flinkdeployment", "flinkapplication"],
)
def test_schema_check_is_strict_about_unknown_fields(
    *,
    kind: str,
    mutate: Callable[[dict[str, Any]], None],
    field: str,
    example_loader: Callable[[str], dict[str, Any]],
    example_settings: Settings,
    full_index: childschema.SchemaIndex,
) -> None:
    """The CRD check above can fail: a misspelt field the API server would prune is caught."""
    children = []
    for example in EXAMPLES:
        children += compile_body(example_loader(example), example_settings).children
    child = next(c for c in children if c.kind == kind)
    manifest = copy.deepcopy(dict(child.manifest))
    mutate(manifest)
    bad = Child(**{**child.__dict__, "manifest": manifest})
    problems = childschema.check([bad], full_index)
    assert problems and all(p.code is Code.CHILD_SCHEMA for p in problems)
    assert any(field in p.message for p in problems), problems


def test_a_runtime_block_typo_is_refused_before_rendering(example_settings: Settings) -> None:
    """Validation checks the block against the same CRD, so the typo never reaches a child."""
    body = application(
        streamlets=[
            streamlet("gen", "spark", outlets=("out",), block={"executr": {"memory": "1g"}})
        ]
    )
    with pytest.raises(InvalidSpec) as raised:
        compile_body(body, example_settings)
    (problem,) = raised.value.problems
    assert (problem.path, problem.code) == ("spec.streamlets[0].spark.executr", Code.RUNTIME_FIELD)
    assert "did you mean 'executor'" in problem.message


def test_a_missing_crd_is_reported_not_skipped(
    example_loader: Callable[[str], dict[str, Any]],
    example_settings: Settings,
    crd_indexes: dict[str, childschema.SchemaIndex],
) -> None:
    compiled = compile_body(example_loader("fraud-detection-flink.yaml"), example_settings)
    problems = childschema.check(compiled.children, crd_indexes[STRIMZI_V1])
    kinds = {p.path.split("/")[0] for p in problems}
    assert kinds == {"FlinkDeployment"}  # Deployments are core; topics served by this file


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.removesuffix(".yaml") for e in EXAMPLES])
def test_deployment_is_coherent(
    example: str, example_loader: Callable[[str], dict[str, Any]], example_settings: Settings
) -> None:
    for child in compile_body(example_loader(example), example_settings).children:
        if child.kind != "Deployment":
            continue
        spec = child.manifest["spec"]
        selector = spec["selector"]["matchLabels"]
        template_labels = spec["template"]["metadata"]["labels"]
        assert selector.items() <= template_labels.items()
        assert selector[naming.STREAMLET_LABEL] == child.streamlet
        (container,) = spec["template"]["spec"]["containers"]
        assert container["name"] == child.streamlet and container["image"]
        assert isinstance(spec["replicas"], int)


# === the seed's topics ==========================================================================

SEED_TOPICS = {
    "call-record-aggregator.cdr-aggregator.out",
    "call-record-aggregator.cdr-generator1.out",
    "call-record-aggregator.cdr-generator2.out",
    "call-record-aggregator.cdr-ingress.out",
    "call-record-aggregator.cdr-validator.invalid",
    "call-record-aggregator.cdr-validator.valid",
    "call-record-aggregator.merge.out",
    "mixed-sensors.akka-process.out",
    "mixed-sensors.akka-process1.out",
    "mixed-sensors.akka-process2.out",
    "mixed-sensors.ingress.out",
    "mixed-sensors.spark-process.out",
    "mixed-sensors.spark-process1.out",
    "mixed-sensors.spark-process2.out",
}


def test_seed_examples_yield_exactly_the_seed_topics(
    example_loader: Callable[[str], dict[str, Any]], example_settings: Settings
) -> None:
    topics: list[Child] = []
    for example in ("call-record-aggregator.yaml", "mixed-sensors.yaml"):
        topics += topics_of(compile_body(example_loader(example), example_settings).children)
    names = [t.manifest["spec"]["topicName"] for t in topics]
    assert sorted(names) == sorted(SEED_TOPICS)  # exactly, and no duplicates
    for topic in topics:
        m = topic.manifest
        assert m["apiVersion"] == "kafka.strimzi.io/v1"
        assert m["metadata"]["name"] == m["spec"]["topicName"] == topic.name == topic.topic
        assert m["metadata"]["namespace"] == topic.namespace == "kafka"
        assert m["metadata"]["labels"][naming.STRIMZI_CLUSTER_LABEL] == "pipelines-strimzi"
        assert m["spec"]["partitions"] == 53
        assert m["spec"]["replicas"] == 2
        assert "ownerReferences" not in m["metadata"]


# === waves and determinism ======================================================================


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.removesuffix(".yaml") for e in EXAMPLES])
def test_topics_come_first_then_streamlets_upstream_first(
    example: str, example_loader: Callable[[str], dict[str, Any]], example_settings: Settings
) -> None:
    compiled = compile_body(example_loader(example), example_settings)
    waves = [c.wave for c in compiled.children]
    assert waves == sorted(waves)
    assert {c.wave for c in compiled.children if c.kind == "KafkaTopic"} == {0}
    assert {c.wave for c in compiled.children if c.kind != "KafkaTopic"} == {1}
    position = {c.streamlet: i for i, c in enumerate(compiled.children) if c.streamlet}
    assert len(position) == len(compiled.app.streamlets)
    edges = 0
    for topic in compiled.topology.topics:
        for producer in topic.producers:
            for consumer in topic.consumers:
                edges += 1
                assert position[producer.streamlet] < position[consumer.streamlet], topic.name
    assert edges > 0


def test_call_record_aggregator_order(
    example_loader: Callable[[str], dict[str, Any]], example_settings: Settings
) -> None:
    compiled = compile_body(example_loader("call-record-aggregator.yaml"), example_settings)
    order = [c.streamlet for c in compiled.children if c.streamlet]
    assert order.index("merge") > max(
        order.index(s) for s in ("cdr-generator1", "cdr-generator2", "cdr-ingress")
    )
    assert (
        order.index("merge")
        < order.index("cdr-validator")
        < order.index("cdr-aggregator")
        < order.index("console-egress")
    )
    assert order.index("cdr-validator") < order.index("error-egress")


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.removesuffix(".yaml") for e in EXAMPLES])
def test_output_is_deterministic(
    example: str, example_loader: Callable[[str], dict[str, Any]], example_settings: Settings
) -> None:
    first = compile_body(example_loader(example), example_settings).children
    second = compile_body(example_loader(example), example_settings).children
    assert [json.dumps(c.manifest, sort_keys=False) for c in first] == [
        json.dumps(c.manifest, sort_keys=False) for c in second
    ]
    assert [c.spec_hash for c in first] == [c.spec_hash for c in second]
    # Declaration order of streamlets, connections and topics does not matter either.
    body = example_loader(example)
    for key in ("streamlets", "connections", "topics"):
        if key in body["spec"]:
            body["spec"][key].reverse()
    shuffled = compile_body(body, example_settings).children
    assert [c.key for c in shuffled] == [c.key for c in first]
    assert [c.spec_hash for c in shuffled] == [c.spec_hash for c in first]


def test_spec_hash_tracks_the_manifest(
    example_loader: Callable[[str], dict[str, Any]], example_settings: Settings
) -> None:
    body = example_loader("call-record-aggregator.yaml")
    before = {c.key: c.spec_hash for c in compile_body(body, example_settings).children}
    body["spec"]["streamlets"][5]["config"]["window"] = "5m"  # cdr-aggregator
    after = compile_body(body, example_settings).children
    changed = {c.key for c in after if before[c.key] != c.spec_hash}
    assert changed == {("SparkApplication", "lightbend", "call-record-aggregator-cdr-aggregator")}
    for child in after:
        annotations = child.manifest["metadata"]["annotations"]
        assert annotations[naming.SPEC_HASH_ANNOTATION] == child.spec_hash
        assert re.fullmatch(r"[0-9a-f]{16}", child.spec_hash)


# === labels, annotations, ownership =============================================================


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.removesuffix(".yaml") for e in EXAMPLES])
def test_labels_and_annotations(
    example: str, example_loader: Callable[[str], dict[str, Any]], example_settings: Settings
) -> None:
    body = example_loader(example)
    # Argo CD's tracking label on the Application must never be copied to children.
    body["metadata"]["labels"] = {"app.kubernetes.io/instance": "argo-app", "team": "x"}
    compiled = compile_body(body, example_settings)
    app, ns = body["metadata"]["name"], body["metadata"]["namespace"]
    for child in compiled.children:
        meta = child.manifest["metadata"]
        labels = meta["labels"]
        assert labels[naming.MANAGED_BY] == "federator"
        assert labels[naming.PART_OF] == app
        assert labels[naming.APPLICATION_LABEL] == app
        assert "team" not in labels
        if child.streamlet:
            assert labels[naming.STREAMLET_LABEL] == child.streamlet
            assert child.namespace == ns == meta["namespace"]
        else:
            assert naming.STREAMLET_LABEL not in labels
            assert naming.STRIMZI_CLUSTER_LABEL in labels
        assert meta["annotations"][naming.APPLICATION_ANNOTATION] == f"{ns}/{app}"
        assert meta["annotations"][naming.SPEC_HASH_ANNOTATION] == child.spec_hash
        assert "app.kubernetes.io/instance" not in set(all_keys(child.manifest))
        for where, labels_found in label_maps(child.manifest):
            if where != ".spec.selector.matchLabels":
                assert labels_found.get(naming.MANAGED_BY) == "federator", where


@pytest.mark.parametrize("policy", ["Retain", "Delete"])
def test_owner_references_with_a_uid(
    policy: str, example_loader: Callable[[str], dict[str, Any]], example_settings: Settings
) -> None:
    body = example_loader("fraud-detection-flink.yaml")
    body["metadata"]["uid"] = "0b6b3c1e-8a2f-4c3e-9d1a-7f00c0ffee00"
    body["spec"]["deletionPolicy"] = policy
    compiled = compile_body(body, example_settings)
    for child in compiled.children:
        refs = child.manifest["metadata"].get("ownerReferences")
        if child.kind == "KafkaTopic":
            assert refs is None
        else:
            assert refs == [
                {
                    "apiVersion": "federator.io/v1alpha1",
                    "kind": "Application",
                    "name": "fraud-detection",
                    "uid": "0b6b3c1e-8a2f-4c3e-9d1a-7f00c0ffee00",
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ]


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.removesuffix(".yaml") for e in EXAMPLES])
def test_no_owner_references_without_a_uid(
    example: str, example_loader: Callable[[str], dict[str, Any]], example_settings: Settings
) -> None:
    for child in compile_body(example_loader(example), example_settings).children:
        assert "ownerReferences" not in child.manifest["metadata"]


# === wiring =====================================================================================

WIRED_RUNTIMES = ["container", "akka", "spark", "apache", "lyft"]


def wired_app(runtime: str, block: Mapping[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    return application(
        name="wired",
        streamlets=[
            streamlet("src1", "container", outlets=("out",)),
            streamlet("src2", "container", outlets=("out",)),
            streamlet(
                "proc",
                runtime,
                inlets=("in-0", "in"),
                outlets=("out", "dead-letters"),
                config={"window": "1m", "records.max": "10"},
                block=block,
                **extra,
            ),
            streamlet("sink", "container", inlets=("in",)),
        ],
        connections=[
            {"from": "src1.out", "to": ["proc.in-0"]},
            {"from": "src2.out", "to": ["proc.in"]},
            {"from": "proc.out", "to": ["sink.in"]},
        ],
        topics=[{"name": "errors.dlq", "producers": ["proc.dead-letters"]}],
    )


EXPECTED_WIRING = {
    "FEDERATOR_APPLICATION": "wired",
    "FEDERATOR_STREAMLET": "proc",
    "FEDERATOR_KAFKA_BOOTSTRAP_SERVERS": BOOTSTRAP,
    "FEDERATOR_INLET_IN_0_TOPIC": "wired.src1.out",
    "FEDERATOR_INLET_IN_0_GROUP_ID": "wired.proc.in-0",
    "FEDERATOR_INLET_IN_TOPIC": "wired.src2.out",
    "FEDERATOR_INLET_IN_GROUP_ID": "wired.proc.in",
    "FEDERATOR_OUTLET_OUT_TOPIC": "wired.proc.out",
    "FEDERATOR_OUTLET_DEAD_LETTERS_TOPIC": "errors.dlq",
}
EXPECTED_CONTEXT = {
    "application": "wired",
    "streamlet": "proc",
    "kafkaBootstrapServers": BOOTSTRAP,
    "inlets": {
        "in-0": {"topic": "wired.src1.out", "groupId": "wired.proc.in-0"},
        "in": {"topic": "wired.src2.out", "groupId": "wired.proc.in"},
    },
    "outlets": {"out": {"topic": "wired.proc.out"}, "dead-letters": {"topic": "errors.dlq"}},
    "config": {"window": "1m", "records.max": "10"},
}
EXPECTED_KIND = {
    "container": "Deployment",
    "akka": "Deployment",
    "spark": "SparkApplication",
    "apache": "FlinkDeployment",
    "lyft": "FlinkApplication",
}


@pytest.mark.parametrize("runtime", WIRED_RUNTIMES)
def test_wiring_env(runtime: str, example_settings: Settings) -> None:
    child = by_streamlet(compile_body(wired_app(runtime), example_settings).children, "proc")
    assert child.kind == EXPECTED_KIND[runtime]
    locations = env_locations(child)
    assert len(locations) == (2 if child.kind in ("SparkApplication", "FlinkApplication") else 1)
    for where, env in locations.items():
        values = env_map(env)
        context = json.loads(values.pop("FEDERATOR_CONTEXT"))
        assert values == EXPECTED_WIRING, where
        assert context == EXPECTED_CONTEXT, where


def test_wiring_env_is_identical_across_runtimes(example_settings: Settings) -> None:
    envs = {}
    for runtime in WIRED_RUNTIMES:
        child = by_streamlet(compile_body(wired_app(runtime), example_settings).children, "proc")
        for where, env in env_locations(child).items():
            envs[f"{runtime}:{where}"] = env
    reference = next(iter(envs.values()))
    assert len(envs) == 7
    assert all(env == reference for env in envs.values()), list(envs)


def test_wiring_uses_the_named_clusters_bootstrap(example_settings: Settings) -> None:
    body = wired_app("container")
    body["spec"]["kafka"] = {"cluster": "legacy"}
    child = by_streamlet(compile_body(body, example_settings).children, "proc")
    (env,) = env_locations(child).values()
    assert env_map(env)["FEDERATOR_KAFKA_BOOTSTRAP_SERVERS"] == (
        "legacy-strimzi-kafka-bootstrap.kafka-legacy.svc:9092"
    )


@pytest.mark.parametrize(
    ("port", "env_name"),
    [("in-0", "IN_0"), ("in", "IN"), ("a-b-c-1", "A_B_C_1"), ("9lives", "9LIVES")],
    ids=["in-0", "in", "dashes", "leading-digit"],
)
def test_port_env_names(port: str, env_name: str) -> None:
    assert naming.env_port(port) == env_name


# === runtime blocks =============================================================================


@pytest.mark.parametrize(
    ("base", "override", "expected"),
    [
        ({"a": {"b": 1, "c": 2}}, {"a": {"c": 3, "d": 4}}, {"a": {"b": 1, "c": 3, "d": 4}}),
        ({"a": 1}, {"a": {"b": 2}}, {"a": {"b": 2}}),
        ({"a": {"b": 1}}, {"a": "x"}, {"a": "x"}),
        ({"l": [1, 2]}, {"l": [3]}, {"l": [3]}),
        (
            {"env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]},
            {"env": [{"name": "B", "value": "3"}, {"name": "C", "value": "4"}]},
            {
                "env": [
                    {"name": "A", "value": "1"},
                    {"name": "B", "value": "3"},
                    {"name": "C", "value": "4"},
                ]
            },
        ),
        (
            {"containers": [{"name": "c", "image": "i", "env": [{"name": "A", "value": "1"}]}]},
            {"containers": [{"name": "c", "env": [{"name": "X", "value": "y"}]}]},
            {
                "containers": [
                    {
                        "name": "c",
                        "image": "i",
                        "env": [{"name": "A", "value": "1"}, {"name": "X", "value": "y"}],
                    }
                ]
            },
        ),
        ({"a": 1}, {"b": None}, {"a": 1, "b": None}),
    ],
    ids=[
        "maps-recursive",
        "scalar-by-map",
        "map-by-scalar",
        "plain-list-replaced",
        "named-list-by-name",
        "nested-named-lists",
        "new-key",
    ],
)
def test_deep_merge(base: Any, override: Any, expected: Any) -> None:
    base_copy, override_copy = copy.deepcopy(base), copy.deepcopy(override)
    assert deep_merge(base, override) == expected
    assert (base, override) == (base_copy, override_copy)  # inputs untouched


def test_spark_block_is_deep_merged(example_settings: Settings) -> None:
    block = {
        "sparkVersion": "3.4.1",
        "executor": {"memory": "2g"},
        "driver": {"env": [{"name": "EXTRA", "value": "1"}]},
        "sparkConf": {"spark.sql.shuffle.partitions": "8"},
    }
    child = by_streamlet(
        compile_body(wired_app("spark", block, replicas=3), example_settings).children, "proc"
    )
    spec = child.manifest["spec"]
    assert spec["sparkVersion"] == "3.4.1"  # scalar replaced
    assert spec["executor"] == {**spec["executor"], "memory": "2g", "cores": 1, "instances": 3}
    assert spec["restartPolicy"]["type"] == "Always"  # untouched template fields stay
    assert spec["sparkConf"] == {"spark.sql.shuffle.partitions": "8"}
    driver_env = env_map(spec["driver"]["env"])
    assert driver_env["EXTRA"] == "1"
    assert driver_env.items() >= EXPECTED_WIRING.items()
    assert "EXTRA" not in env_map(spec["executor"]["env"])


def test_container_block_merges_containers_by_name(example_settings: Settings) -> None:
    block = {
        "template": {
            "spec": {
                "serviceAccountName": "default",
                "containers": [
                    {
                        "name": "proc",
                        "resources": {"limits": {"memory": "256Mi"}},
                        "env": [{"name": "LOG_LEVEL", "value": "debug"}],
                    },
                    {"name": "sidecar", "image": "envoy:1"},
                ],
            }
        }
    }
    child = by_streamlet(
        compile_body(wired_app("container", block), example_settings).children, "proc"
    )
    pod = child.manifest["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "default"
    assert [c["name"] for c in pod["containers"]] == ["proc", "sidecar"]
    proc = pod["containers"][0]
    assert proc["image"] == "registry.example.com/img:1"
    assert proc["resources"] == {"limits": {"memory": "256Mi"}}
    values = env_map(proc["env"])
    assert values["LOG_LEVEL"] == "debug"
    assert values.items() >= EXPECTED_WIRING.items()


HIJACK = [
    {"name": "FEDERATOR_INLET_IN_TOPIC", "value": "someone-elses-topic"},
    {"name": "FEDERATOR_APPLICATION", "value": "other"},
    {"name": "FEDERATOR_CONTEXT", "value": "{}"},
    {"name": "MINE", "value": "kept"},
]
HIJACK_BLOCKS = {
    "container": {"template": {"spec": {"containers": [{"name": "proc", "env": HIJACK}]}}},
    "spark": {"driver": {"env": HIJACK}, "executor": {"env": HIJACK}},
    "apache": {
        "podTemplate": {"spec": {"containers": [{"name": "flink-main-container", "env": HIJACK}]}}
    },
    "lyft": {
        "jobManagerConfig": {"envConfig": {"env": HIJACK}},
        "taskManagerConfig": {"envConfig": {"env": HIJACK}},
    },
}


@pytest.mark.parametrize("runtime", list(HIJACK_BLOCKS))
def test_runtime_block_cannot_override_wiring(runtime: str, example_settings: Settings) -> None:
    body = wired_app(runtime, HIJACK_BLOCKS[runtime])
    child = by_streamlet(compile_body(body, example_settings).children, "proc")
    for where, env in env_locations(child).items():
        values = env_map(env)  # also: no duplicate names
        assert values.pop("MINE") == "kept", where
        assert json.loads(values.pop("FEDERATOR_CONTEXT")) == EXPECTED_CONTEXT, where
        assert values == EXPECTED_WIRING, where


UNWIRE_BLOCKS = {
    "container-empty-env": (
        "container",
        {"template": {"spec": {"containers": [{"name": "proc", "env": []}]}}},
    ),
    "container-unnamed-containers": (
        "container",
        {"template": {"spec": {"containers": [{"image": "other:1"}]}}},
    ),
    "spark-empty-driver-env": ("spark", {"driver": {"env": []}}),
    "lyft-empty-env": ("lyft", {"taskManagerConfig": {"envConfig": {"env": []}}}),
}


@pytest.mark.parametrize("case", list(UNWIRE_BLOCKS))
def test_runtime_block_cannot_remove_wiring(case: str, example_settings: Settings) -> None:
    runtime, block = UNWIRE_BLOCKS[case]
    try:
        child = by_streamlet(
            compile_body(wired_app(runtime, block), example_settings).children, "proc"
        )
    except InvalidSpec:
        return  # rejecting the block with a problem is an acceptable fix too
    for where, env in env_locations(child).items():
        assert env is not None, where
        assert env_map(env).items() >= EXPECTED_WIRING.items(), where


# === replicas and suspend =======================================================================


def replicas_field(child: Child) -> Any:
    spec = child.manifest["spec"]
    return {
        "Deployment": lambda: spec["replicas"],
        "SparkApplication": lambda: spec["executor"]["instances"],
        "FlinkDeployment": lambda: spec["job"]["parallelism"],
        "FlinkApplication": lambda: spec["parallelism"],
    }[child.kind]()


@pytest.mark.parametrize("runtime", WIRED_RUNTIMES)
@pytest.mark.parametrize("replicas", [None, 3], ids=["default", "three"])
def test_replicas_mapping(runtime: str, replicas: int | None, example_settings: Settings) -> None:
    extra = {} if replicas is None else {"replicas": replicas}
    child = by_streamlet(
        compile_body(wired_app(runtime, **extra), example_settings).children, "proc"
    )
    assert replicas_field(child) == (replicas or 1)


def test_container_replicas_zero(example_settings: Settings) -> None:
    child = by_streamlet(
        compile_body(wired_app("container", replicas=0), example_settings).children, "proc"
    )
    assert child.manifest["spec"]["replicas"] == 0


@pytest.mark.parametrize("suspend", [False, True], ids=["running", "suspended"])
@pytest.mark.parametrize("runtime", ["container", "spark", "apache"])
def test_suspend(runtime: str, suspend: bool, example_settings: Settings) -> None:
    body = wired_app(runtime, replicas=3)
    body["spec"]["suspend"] = suspend
    compiled = compile_body(body, example_settings)
    child = by_streamlet(compiled.children, "proc")
    spec = child.manifest["spec"]
    if child.kind == "Deployment":
        assert spec["replicas"] == (0 if suspend else 3)
    elif child.kind == "SparkApplication":
        assert spec["suspend"] is suspend
        assert spec["executor"]["instances"] == 3
    else:
        assert spec["job"]["state"] == ("suspended" if suspend else "running")
        assert spec["job"]["parallelism"] == 3
    # Topics are kept while suspended.
    assert {c.topic for c in topics_of(compiled.children)} == {
        "wired.src1.out",
        "wired.src2.out",
        "wired.proc.out",
        "errors.dlq",
    }


def test_suspended_examples_still_validate(
    example_loader: Callable[[str], dict[str, Any]],
    example_settings: Settings,
    full_index: childschema.SchemaIndex,
) -> None:
    for example in ("call-record-aggregator.yaml", "fraud-detection-flink.yaml"):
        body = example_loader(example)
        body["spec"]["suspend"] = True
        compiled = compile_body(body, example_settings)
        assert childschema.check(compiled.children, full_index) == []


@pytest.mark.parametrize("how", ["flinkOperator", "settings-default"])
def test_lyft_cannot_be_suspended(how: str, example_settings: Settings) -> None:
    settings = example_settings
    body = wired_app("lyft")
    if how == "settings-default":
        del body["spec"]["streamlets"][2]["flinkOperator"]
        settings = parse_settings(
            {
                "kafkaClusters": [
                    {
                        "name": "default",
                        "strimziCluster": "pipelines-strimzi",
                        "namespace": "kafka",
                        "bootstrapServers": BOOTSTRAP,
                    }
                ],
                "flink": {"defaultOperator": "lyft"},
            }
        )
        assert (
            by_streamlet(compile_body(body, settings).children, "proc").kind == "FlinkApplication"
        )
    body["spec"]["suspend"] = True
    with pytest.raises(InvalidSpec) as raised:
        compile_body(body, settings)
    (problem,) = raised.value.problems
    assert problem.path == "spec.suspend"
    assert problem.code is Code.RUNTIME_BLOCK
    assert "proc" in problem.message and "apache" in problem.message


UNSUSPEND_BLOCKS = {
    "container-replicas": ("container", {"replicas": 5}),
    "spark-suspend-false": ("spark", {"suspend": False}),
    "flink-job-state-running": ("apache", {"job": {"state": "running"}}),
}


@pytest.mark.parametrize("case", list(UNSUSPEND_BLOCKS))
def test_runtime_block_cannot_undo_suspend(case: str, example_settings: Settings) -> None:
    runtime, block = UNSUSPEND_BLOCKS[case]
    body = wired_app(runtime, block)
    body["spec"]["suspend"] = True
    try:
        child = by_streamlet(compile_body(body, example_settings).children, "proc")
    except InvalidSpec:
        return  # rejecting the block with a problem is an acceptable fix too
    spec = child.manifest["spec"]
    if child.kind == "Deployment":
        assert spec["replicas"] == 0
    elif child.kind == "SparkApplication":
        assert spec["suspend"] is True
    else:
        assert spec["job"]["state"] == "suspended"


# === injection ==================================================================================
# Each injectable field of a baseline app holds a unique marker. A payload is put in ONE field;
# the rendered children, with every string equal to the payload swapped back to the marker (also
# inside FEDERATOR_CONTEXT's JSON), must equal the baseline's, spec-hash annotations aside.

_INJECTABLE_PATHS = {
    "image-container": "spec/streamlets/0/image",
    "image-spark": "spec/streamlets/1/image",
    "image-flink": "spec/streamlets/2/image",
    "image-lyft": "spec/streamlets/3/image",
    "config-value": "spec/streamlets/0/config/key",
    "config-value-lyft": "spec/streamlets/3/config/key",
    "topic-config": "spec/topics/0/config/cleanup.policy",
    "topic-defaults-config": "spec/topicDefaults/config/retention.ms",
    "container-block": "spec/streamlets/0/container/template/spec/schedulerName",
    "container-block-env": "spec/streamlets/0/container/template/spec/containers/0/env/0/value",
    "spark-block": "spec/streamlets/1/spark/mainClass",
    "spark-block-conf": "spec/streamlets/1/spark/sparkConf/spark.user.value",
    "flink-block": "spec/streamlets/2/flink/job/entryClass",
    "flink-block-args": "spec/streamlets/2/flink/job/args/0",
    "flink-block-conf": "spec/streamlets/2/flink/flinkConfiguration/user.key",
    "lyft-block": "spec/streamlets/3/flink/programArgs",
}
INJECTABLE: dict[str, tuple[Any, ...]] = {
    field: tuple(int(p) if p.isdigit() else p for p in path.split("/"))
    for field, path in _INJECTABLE_PATHS.items()
}
TOPIC_NAME_PATH = ("spec", "topics", 0, "name")


def marker(field: str) -> str:
    return f"marker-{field}"


def injection_app() -> dict[str, Any]:
    m = marker
    return application(
        name="inject",
        topicDefaults={
            "partitions": 3,
            "replicas": 1,
            "config": {"retention.ms": m("topic-defaults-config")},
        },
        streamlets=[
            streamlet(
                "src",
                "container",
                outlets=("out",),
                image=m("image-container"),
                config={"key": m("config-value")},
                block={
                    "template": {
                        "spec": {
                            "schedulerName": m("container-block"),
                            "containers": [
                                {
                                    "name": "src",
                                    "env": [
                                        {"name": "USER_VAR", "value": m("container-block-env")}
                                    ],
                                }
                            ],
                        }
                    }
                },
            ),
            streamlet(
                "sp",
                "spark",
                inlets=("in",),
                outlets=("out",),
                image=m("image-spark"),
                block={
                    "mainClass": m("spark-block"),
                    "sparkConf": {"spark.user.value": m("spark-block-conf")},
                },
            ),
            streamlet(
                "fl",
                "apache",
                inlets=("in",),
                image=m("image-flink"),
                block={
                    "job": {"entryClass": m("flink-block"), "args": [m("flink-block-args")]},
                    "flinkConfiguration": {"user.key": m("flink-block-conf")},
                },
            ),
            streamlet(
                "ly",
                "lyft",
                inlets=("in",),
                image=m("image-lyft"),
                config={"key": m("config-value-lyft")},
                block={"programArgs": m("lyft-block")},
            ),
        ],
        connections=[{"from": "src.out", "to": ["sp.in"]}],
        topics=[
            {
                "name": "marker.topic-name",
                "producers": ["sp.out"],
                "consumers": ["fl.in", "ly.in"],
                "config": {"cleanup.policy": m("topic-config")},
            }
        ],
    )


def set_path(body: dict[str, Any], path: tuple[Any, ...], value: Any) -> None:
    node: Any = body
    for part in path[:-1]:
        node = node[part]
    assert node[path[-1]] is not None
    node[path[-1]] = value


def swap(node: Any, payload: str, original: str) -> Any:
    """Every string (key or value) equal to `payload` becomes `original`; FEDERATOR_CONTEXT is
    compared as the JSON it carries."""
    if isinstance(node, str):
        return original if node == payload else node
    if isinstance(node, list):
        return [swap(item, payload, original) for item in node]
    if isinstance(node, Mapping):
        out = {}
        for key, value in node.items():
            parsed = (
                ("json", json.loads(value))
                if key == "value" and node.get("name") == "FEDERATOR_CONTEXT"
                else value
            )
            out[swap(key, payload, original)] = swap(parsed, payload, original)
        return out
    if isinstance(node, tuple):
        return tuple(swap(item, payload, original) for item in node)
    return node


def normalised(children: tuple[Child, ...], payload: str, original: str) -> dict[Any, Any]:
    out = {}
    for child in children:
        manifest = copy.deepcopy(dict(child.manifest))
        del manifest["metadata"]["annotations"][naming.SPEC_HASH_ANNOTATION]
        if child.kind == "KafkaTopic":
            # A topic name that is no DNS-1123 subdomain gets a sanitised metadata.name and
            # the real name in an annotation; both are checked in the topic-name test.
            manifest["metadata"].pop("name")
            manifest["metadata"]["annotations"].pop(naming.TOPIC_ANNOTATION, None)
            key: Any = ("KafkaTopic", swap(child.topic, payload, original))
        else:
            key = (child.kind, child.streamlet)
        out[key] = swap(manifest, payload, original)
    return out


@pytest.fixture(scope="module")
def injection_baseline(example_settings: Settings) -> tuple[Child, ...]:
    return compile_body(injection_app(), example_settings).children


def baseline_strings(children: tuple[Child, ...]) -> set[str]:
    out = set()
    for child in children:
        out |= set(all_strings(child.manifest))
        for env in env_locations(child).values() if child.streamlet else ():
            for e in env:
                if e["name"] == "FEDERATOR_CONTEXT":
                    out |= set(all_strings(json.loads(e["value"])))
    return out


def assert_only_its_field_differs(
    field: str,
    payload: str,
    baseline: tuple[Child, ...],
    settings: Settings,
    index: childschema.SchemaIndex,
) -> None:
    body = injection_app()
    set_path(body, INJECTABLE[field], payload)
    if field.startswith("image-") and imageref.problem(payload) is not None:
        # Images are parsed as image references: such a payload never reaches a manifest.
        with pytest.raises(InvalidSpec) as raised:
            compile_body(body, settings)
        path = f"spec.streamlets[{INJECTABLE[field][2]}].image"
        assert [(p.path, p.code) for p in raised.value.problems] == [(path, Code.INVALID_IMAGE)]
        return
    children = compile_body(body, settings).children
    assert normalised(children, payload, marker(field)) == normalised(baseline, "", "")
    # The payload really is in the manifests, literally (never evaluated or re-parsed).
    rendered = baseline_strings(children)
    assert payload in rendered
    assert marker(field) not in rendered
    assert childschema.check(children, index) == []


PAYLOADS = {
    "newline": "line1\nkind: Secret\nline3",
    "quotes": "he said \"hi\" and 'bye'",
    "jinja-expression": "{{ 7*7 }}",
    "jinja-statement": "{% if true %}x{% endif %}",
    "jinja-comment": "{# gone? #}",
    "jinja-config": "{{ config.__class__ }}",
    "document-separator": "---",
    "document-separator-doc": "---\napiVersion: v1\nkind: Secret\n...",
    "colon-space": "key: value",
    "flow-mapping": "{a: 1, b: [2, 3]}",
    "anchor-alias": "&a [*a, *a]",
    "python-tag": "!!python/object/apply:os.system ['id']",
    "yaml-null": "null",
    "yaml-bool": "yes",
    "number": "49",
    "json": '{"application": "evil", "inlets": {}}',
    "backslashes": "C:\\new\\table\\u0041",
    "unicode": "Grüße — 日本語 ☃ \u202e",
    "emoji": "🚀🔥 ok",
    "spaces": "  leading and trailing  ",
    "token-lookalike": "federator-value-0",
    "nul-token-lookalike": "\x00federator-value-0",
}


@pytest.mark.parametrize("payload", list(PAYLOADS.values()), ids=list(PAYLOADS))
@pytest.mark.parametrize("field", list(INJECTABLE))
def test_injection_explicit(
    field: str,
    payload: str,
    injection_baseline: tuple[Child, ...],
    example_settings: Settings,
    full_index: childschema.SchemaIndex,
) -> None:
    assert_only_its_field_differs(field, payload, injection_baseline, example_settings, full_index)


def test_template_expressions_stay_literal(example_settings: Settings) -> None:
    body = injection_app()
    set_path(body, INJECTABLE["config-value"], "{{ 7*7 }}")
    set_path(body, INJECTABLE["spark-block"], "{% if true %}x{% endif %}")
    children = compile_body(body, example_settings).children
    src = by_streamlet(children, "src")
    (env,) = env_locations(src).values()
    assert json.loads(env_map(env)["FEDERATOR_CONTEXT"])["config"] == {"key": "{{ 7*7 }}"}
    assert by_streamlet(children, "sp").manifest["spec"]["mainClass"] == "{% if true %}x{% endif %}"
    strings = baseline_strings(children)
    assert "49" not in strings and "x" not in strings


_TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    min_size=1,
    max_size=40,
)


@hsettings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(field=st.sampled_from(sorted(INJECTABLE)), payload=_TEXT)
def test_injection_property(
    field: str,
    payload: str,
    injection_baseline: tuple[Child, ...],
    example_settings: Settings,
    full_index: childschema.SchemaIndex,
) -> None:
    assume(payload not in baseline_strings(injection_baseline))
    assert_only_its_field_differs(field, payload, injection_baseline, example_settings, full_index)


def check_topic_name(
    name: str, baseline: tuple[Child, ...], settings: Settings, index: childschema.SchemaIndex
) -> None:
    body = injection_app()
    set_path(body, TOPIC_NAME_PATH, name)
    children = compile_body(body, settings).children
    original = "marker.topic-name"
    assert normalised(children, name, original) == normalised(baseline, "", "")
    (topic,) = [c for c in topics_of(children) if c.topic == name]
    meta = topic.manifest["metadata"]
    assert topic.manifest["spec"]["topicName"] == name
    assert len(meta["name"]) <= 253 and DNS1123_SUBDOMAIN.match(meta["name"]), meta["name"]
    if naming.is_subdomain(name):
        assert meta["name"] == name
        assert naming.TOPIC_ANNOTATION not in meta["annotations"]
    else:
        assert meta["annotations"][naming.TOPIC_ANNOTATION] == name
    assert childschema.check(children, index) == []


TOPIC_NAMES = {
    "separator": "---",
    "dots": "a.b.c",
    "upper-underscore": "Spark_Users",
    "leading-dash": "-topic",
    "leading-dot": ".hidden",
    "double-dot": "a..b",
    "digits": "9",
    "mixed": "UPPER.case-Mix_1",
    "longest": "t" * 249,
    "longest-upper": "T" * 249,
}


@pytest.mark.parametrize("name", list(TOPIC_NAMES.values()), ids=list(TOPIC_NAMES))
def test_injection_topic_name(
    name: str,
    injection_baseline: tuple[Child, ...],
    example_settings: Settings,
    full_index: childschema.SchemaIndex,
) -> None:
    check_topic_name(name, injection_baseline, example_settings, full_index)


@hsettings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(name=st.from_regex(r"[a-zA-Z0-9._-]{1,80}", fullmatch=True))
def test_injection_topic_name_property(
    name: str,
    injection_baseline: tuple[Child, ...],
    example_settings: Settings,
    full_index: childschema.SchemaIndex,
) -> None:
    assume(name not in (".", "..") and name.replace(".", "_") != "inject_src_out")
    assume(name not in baseline_strings(injection_baseline))
    check_topic_name(name, injection_baseline, example_settings, full_index)


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("spec", "streamlets", 0, "name"), "src\nkind: Secret"),
        (("spec", "streamlets", 0, "name"), "{{ 7*7 }}"),
        (("spec", "streamlets", 0, "name"), "a: b"),
        (("spec", "streamlets", 0, "outlets", 0), "---"),
        (("metadata", "name"), "inject\n---\nkind: Secret"),
        (("metadata", "name"), "{% if true %}x{% endif %}"),
        (("spec", "topics", 0, "name"), "bad topic: {{ x }}"),
    ],
    ids=[
        "streamlet-newline",
        "streamlet-jinja",
        "streamlet-colon",
        "port-separator",
        "app-newline",
        "app-jinja",
        "topic-name-outside-charset",
    ],
)
def test_names_cannot_carry_payloads(
    path: tuple[Any, ...], value: str, example_settings: Settings
) -> None:
    body = injection_app()
    set_path(body, path, value)
    with pytest.raises(InvalidSpec) as raised:
        compile_body(body, example_settings)
    expected = ".".join(str(p) for p in path[:2]) if path[0] == "metadata" else None
    paths = [p.path for p in raised.value.problems]
    if expected:
        assert expected in paths
    else:
        assert any(p.startswith(f"spec.{path[1]}[0]") for p in paths), paths


# === long names =================================================================================

APP63 = "a" + "p" * 61 + "z"
PORT_IN = "i" * 62 + "n"
PORT_OUT = "o" * 62 + "t"


def long_streamlet(i: int) -> str:
    """63 characters; all share a 61-character prefix, so only a hash can keep them apart."""
    return "s" * 61 + f"{i:02d}"


def long_app(name: str) -> dict[str, Any]:
    s = long_streamlet
    return application(
        name=name,
        topicDefaults={"partitions": 1, "replicas": 1},
        streamlets=[
            streamlet(s(1), "container", outlets=(PORT_OUT,)),
            streamlet(s(2), "spark", inlets=(PORT_IN,), outlets=(PORT_OUT,)),
            streamlet(s(3), "apache", inlets=(PORT_IN,), outlets=(PORT_OUT,)),
            streamlet(s(4), "lyft", inlets=(PORT_IN,), outlets=(PORT_OUT,)),
            streamlet(s(5), "container", inlets=(PORT_IN,)),
            streamlet(s(6), "apache", inlets=(PORT_IN,)),
        ],
        connections=[
            {"from": f"{s(1)}.{PORT_OUT}", "to": [f"{s(2)}.{PORT_IN}"]},
            {"from": f"{s(2)}.{PORT_OUT}", "to": [f"{s(3)}.{PORT_IN}"]},
            {"from": f"{s(3)}.{PORT_OUT}", "to": [f"{s(4)}.{PORT_IN}", f"{s(6)}.{PORT_IN}"]},
            {"from": f"{s(4)}.{PORT_OUT}", "to": [f"{s(5)}.{PORT_IN}"]},
        ],
    )


def assert_kubernetes_names(children: tuple[Child, ...]) -> None:
    names: dict[str, set[str]] = {}
    for child in children:
        limit = delegates.BY_KIND[child.kind].name_limit
        name = child.manifest["metadata"]["name"]
        assert name == child.name
        assert len(name) <= limit, (child.kind, name)
        if child.kind == "KafkaTopic":
            assert DNS1123_SUBDOMAIN.match(name), name
        else:
            assert DNS1123_LABEL.match(name), (child.kind, name)
        names.setdefault(child.kind, set()).add(name)
        for where, labels in label_maps(child.manifest):
            for key, value in labels.items():
                assert isinstance(value, str) and len(value) <= 63, (child.kind, where, key)
                assert LABEL_VALUE.match(value), (child.kind, where, key, value)
    for kind, kind_names in names.items():
        assert len(kind_names) == sum(1 for c in children if c.kind == kind), kind
    streamlet_labels = [
        c.manifest["metadata"]["labels"][naming.STREAMLET_LABEL] for c in children if c.streamlet
    ]
    assert len(set(streamlet_labels)) == len(streamlet_labels)


def test_63_character_names(
    example_settings: Settings, full_index: childschema.SchemaIndex
) -> None:
    assert len(APP63) == len(PORT_IN) == len(long_streamlet(1)) == 63
    compiled = compile_body(long_app(APP63), example_settings)
    children = compiled.children
    assert {c.kind for c in children} == {
        "KafkaTopic",
        "Deployment",
        "SparkApplication",
        "FlinkDeployment",
        "FlinkApplication",
    }
    assert_kubernetes_names(children)
    assert childschema.check(children, full_index) == []
    # Names are shortened for Kubernetes, never the values the streamlet sees.
    for child in children:
        if child.streamlet:
            labels = child.manifest["metadata"]["labels"]
            assert labels[naming.STREAMLET_LABEL] == child.streamlet  # 63 fits a label
            assert labels[naming.APPLICATION_LABEL] == APP63
            for env in env_locations(child).values():
                values = env_map(env)
                assert values["FEDERATOR_STREAMLET"] == child.streamlet
                if PORT_IN in compiled.app.streamlet(child.streamlet).inlets:  # type: ignore[union-attr]
                    key = f"FEDERATOR_INLET_{'I' * 62}N_GROUP_ID"
                    assert values[key] == f"{APP63}.{child.streamlet}.{PORT_IN}"
    topic_names = {c.topic for c in topics_of(children)}
    assert f"{APP63}.{long_streamlet(1)}.{PORT_OUT}" in topic_names
    assert all(len(t) == 191 for t in topic_names)  # type: ignore[arg-type]


def test_long_names_are_deterministic(example_settings: Settings) -> None:
    first = compile_body(long_app(APP63), example_settings).children
    second = compile_body(long_app(APP63), example_settings).children
    assert [c.key for c in first] == [c.key for c in second]


@pytest.mark.parametrize(
    "app",
    [
        "a" * 253,
        ("x" * 62 + ".") * 4 + "y",
        "z" + "-" * 251 + "z",
    ],
    ids=["letters", "dotted-labels", "dashes"],
)
def test_253_character_app_name(
    app: str, example_settings: Settings, full_index: childschema.SchemaIndex
) -> None:
    assert len(app) == 253 and DNS1123_SUBDOMAIN.match(app)
    body = application(
        name=app,
        streamlets=[
            streamlet("src", "container", outlets=("out",)),
            streamlet("sp", "spark", inlets=("in",), outlets=("out",)),
            streamlet("fl", "apache", inlets=("in",)),
            streamlet("ly", "lyft", inlets=("in",)),
        ],
        topics=[
            {"name": "src.out", "producers": ["src.out"], "consumers": ["sp.in"]},
            {"name": "sp.out", "producers": ["sp.out"], "consumers": ["fl.in", "ly.in"]},
        ],
    )
    body["metadata"]["uid"] = "uid-1"
    children = compile_body(body, example_settings).children
    assert_kubernetes_names(children)
    assert childschema.check(children, full_index) == []
    for child in children:
        meta = child.manifest["metadata"]
        assert meta["annotations"][naming.APPLICATION_ANNOTATION] == f"team/{app}"
        if child.streamlet:
            assert meta["ownerReferences"][0]["name"] == app  # the real name, never shortened


@pytest.mark.parametrize("runtime", ["spark", "apache", "lyft"])
def test_dotted_app_name_gives_label_child_names(runtime: str, example_settings: Settings) -> None:
    body = application(name="team.pipeline", streamlets=[streamlet("proc", runtime)])
    child = by_streamlet(compile_body(body, example_settings).children, "proc")
    assert DNS1123_LABEL.match(child.name), child.name


@pytest.mark.parametrize(
    ("app", "streamlet_name", "port"),
    [
        ("a" * 253, "s", "out"),
        ("a" * 150, "s" * 63, "o" * 63),
        ("a" * 122, "s" * 63, "o" * 63),  # 122 + 63 + 63 + 2 = 250: one over
    ],
    ids=["253-app", "150-app-63-streamlet-63-port", "one-over"],
)
def test_implicit_topic_over_249_is_a_problem(
    app: str, streamlet_name: str, port: str, example_settings: Settings
) -> None:
    topic = f"{app}.{streamlet_name}.{port}"
    assert len(topic) > 249
    body = application(
        name=app, streamlets=[streamlet(streamlet_name, "container", outlets=(port,))]
    )
    with pytest.raises(InvalidSpec) as raised:
        compile_body(body, example_settings)
    (problem,) = raised.value.problems
    assert problem.code is Code.INVALID_TOPIC_NAME
    assert problem.path == "spec.streamlets[0].outlets[0]"
    assert topic in problem.message
    assert "explicit topic" in problem.message  # says how to fix it


def test_implicit_topic_of_249_is_fine(example_settings: Settings) -> None:
    app = "a" * 121  # 121 + 63 + 63 + 2 = 249
    body = application(name=app, streamlets=[streamlet("s" * 63, "container", outlets=("o" * 63,))])
    (topic,) = topics_of(compile_body(body, example_settings).children)
    assert len(topic.manifest["spec"]["topicName"]) == 249
    assert topic.name == topic.manifest["spec"]["topicName"]


def test_long_app_name_with_an_explicit_topic_compiles(example_settings: Settings) -> None:
    """The fix the problem message suggests actually works."""
    body = application(
        name="a" * 253,
        streamlets=[streamlet("s", "container", outlets=("out",))],
        topics=[{"name": "short", "producers": ["s.out"]}],
    )
    children = compile_body(body, example_settings).children
    assert [c.topic for c in topics_of(children)] == ["short"]
    assert_kubernetes_names(children)
