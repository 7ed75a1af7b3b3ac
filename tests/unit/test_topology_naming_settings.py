"""Topology, naming and settings: the pure pieces under the renderer.

Aspects covered:
- implicit topics `<app>.<streamlet>.<outlet>`, explicit topics, topic defaults and overrides;
- deploy waves (topics, then streamlets upstream-first) and deterministic order;
- the graph holds streamlets, ports and topics;
- deterministic shortening of names and label values, with hashes that keep names distinct;
- settings parsed from the YAML shape, with clear errors for bad keys and values.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from federator.core import model, naming, topology
from federator.core.settings import (
    FlinkPreference,
    SettingsError,
    TopicApiVersion,
    parse_settings,
)

ROOT = Path(__file__).resolve().parents[2]


def load(name: str) -> dict[str, Any]:
    body: dict[str, Any] = yaml.safe_load((ROOT / "examples" / name).read_text())
    return body


def build(body: dict[str, Any]) -> topology.Topology:
    topo, problems = topology.build(model.from_body(body))
    assert problems == []
    return topo


def test_implicit_topics_follow_the_seed_naming() -> None:
    topo = build(load("call-record-aggregator.yaml"))
    assert [t.name for t in topo.topics] == [
        "call-record-aggregator.cdr-aggregator.out",
        "call-record-aggregator.cdr-generator1.out",
        "call-record-aggregator.cdr-generator2.out",
        "call-record-aggregator.cdr-ingress.out",
        "call-record-aggregator.cdr-validator.invalid",
        "call-record-aggregator.cdr-validator.valid",
        "call-record-aggregator.merge.out",
    ]
    assert all(t.implicit and t.partitions == 53 and t.replicas == 2 for t in topo.topics)


def test_explicit_topic_overrides_defaults_and_merges_config() -> None:
    topo = build(load("fraud-detection-flink.yaml"))
    alerts = topo.topic("payments.fraud-alerts")
    assert not alerts.implicit
    assert (alerts.partitions, alerts.replicas) == (3, 3)
    assert alerts.config == {"retention.ms": "604800000"}
    assert [str(p) for p in alerts.producers] == ["scorer.alerts"]
    assert [str(c) for c in alerts.consumers] == ["alert-sink.in"]


def test_unmanaged_topics_are_in_the_topology() -> None:
    topo = build(load("wordcount-lyft.yaml"))
    assert not topo.topic("analytics.audit-log").managed


def test_streamlets_are_ordered_upstream_first() -> None:
    topo = build(load("call-record-aggregator.yaml"))
    order = [s.name for s in topo.streamlets]
    for upstream, downstream in [
        ("cdr-generator1", "merge"),
        ("cdr-ingress", "merge"),
        ("merge", "cdr-validator"),
        ("cdr-validator", "cdr-aggregator"),
        ("cdr-aggregator", "console-egress"),
        ("cdr-validator", "error-egress"),
    ]:
        assert order.index(upstream) < order.index(downstream)


def test_order_is_deterministic_whatever_the_spec_order() -> None:
    body = load("mixed-sensors.yaml")
    reordered = load("mixed-sensors.yaml")
    reordered["spec"]["streamlets"].reverse()
    reordered["spec"]["connections"].reverse()
    assert [s.name for s in build(body).streamlets] == [s.name for s in build(reordered).streamlets]


def test_graph_has_streamlets_ports_and_topics() -> None:
    topo = build(load("call-record-aggregator.yaml"))
    kinds = {data["kind"] for _, data in topo.graph.nodes(data=True)}
    assert kinds == {"streamlet", "inlet", "outlet", "topic"}
    assert topo.graph.has_edge(("streamlet", "merge"), ("outlet", "merge", "out"))
    assert topo.graph.has_edge(
        ("outlet", "merge", "out"), ("topic", "call-record-aggregator.merge.out")
    )
    assert topo.topics_of("merge") == (
        "call-record-aggregator.cdr-generator1.out",
        "call-record-aggregator.cdr-generator2.out",
        "call-record-aggregator.cdr-ingress.out",
        "call-record-aggregator.merge.out",
    )


# --- naming ---------------------------------------------------------------------------------

LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")


@pytest.mark.parametrize("limit", [45, 63, 253])
def test_shorten_is_deterministic_bounded_and_distinct(limit: int) -> None:
    a, b = "x" * 300 + "a", "x" * 300 + "b"
    assert naming.shorten(a, limit) == naming.shorten(a, limit)
    assert len(naming.shorten(a, limit)) <= limit
    assert naming.shorten(a, limit) != naming.shorten(b, limit)
    assert naming.shorten("short", limit) == "short"


@pytest.mark.parametrize(
    ("topic", "expected_same"),
    [
        ("call-record-aggregator.merge.out", True),
        ("Spark_Users", False),
        ("a..b", False),
        ("0.-.0", False),  # found by hypothesis: was '0..0-…', an empty DNS label
        ("a--.b", False),  # was 'a-.b-…', a label ending in '-'
    ],
    ids=[
        "subdomain-kept",
        "upper-and-underscore-sanitised",
        "double-dot-sanitised",
        "dot-dash-dot",
        "dashes-before-a-dot",
    ],
)
def test_topic_resource_names_are_subdomains(topic: str, expected_same: bool) -> None:
    name = naming.topic_resource_name(topic)
    assert naming.is_subdomain(name)
    assert (name == topic) is expected_same


def test_sanitised_topic_names_do_not_collide() -> None:
    assert naming.topic_resource_name("Spark_Users") != naming.topic_resource_name("spark-users")


@pytest.mark.parametrize("value", ["a" * 64, "app.with.dots" * 20, "-x-", "ok"])
def test_label_values_are_valid(value: str) -> None:
    out = naming.label_value(value)
    assert len(out) <= naming.LABEL_MAX and LABEL_VALUE.match(out)


def test_env_port_names() -> None:
    assert naming.env_port("in-0") == "IN_0"


# --- settings -------------------------------------------------------------------------------


def test_example_settings_parse() -> None:
    settings = parse_settings(yaml.safe_load((ROOT / "examples" / "settings.yaml").read_text()))
    default = settings.kafka_cluster("default")
    assert default is not None and default.strimzi_cluster == "pipelines-strimzi"
    legacy = settings.kafka_cluster("legacy")
    assert legacy is not None and legacy.topic_api_version is TopicApiVersion.V1BETA2
    assert settings.flink.default_operator is FlinkPreference.AUTO


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ({"kafkaCluster": []}, "unknown key(s) kafkaCluster"),
        ({"kafkaClusters": [{"name": "a"}]}, "strimziCluster: required"),
        (
            {
                "kafkaClusters": [
                    {"name": "a", "strimziCluster": "s", "namespace": "n", "bootstrapServers": "b"}
                ]
                * 2
            },
            "duplicate cluster name",
        ),
        ({"flink": {"defaultOperator": "spark"}}, "not one of auto, apache, lyft"),
        ({"operator": {"metricsPort": "80"}}, "expected int"),
        ([], "expected a mapping"),
    ],
    ids=["typo", "missing-field", "duplicate", "bad-enum", "bad-type", "not-a-mapping"],
)
def test_bad_settings_say_what_is_wrong(data: Any, fragment: str) -> None:
    with pytest.raises(SettingsError, match=re.escape(fragment)):
        parse_settings(data)
