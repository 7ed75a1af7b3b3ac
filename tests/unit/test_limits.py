"""Per-application size limits (issue 10 §4): settings, the CRD's ceiling, validation.

Aspects covered:
- `limits.maxStreamlets` / `limits.maxChildren` parse with their defaults; bad values and a
  streamlet limit above the CRD's ceiling are refused, naming the key;
- the CRD's maxItems on streamlets, connections and topics is the ceiling, and the defaults
  stay under it;
- the defaults fit what etcd stores: the largest allowed application of the benchmark's
  realistic mix leaves the spec, its managedFields copy and the status within one request;
- validation reports too many streamlets (alone: nothing else is checked, it would cost what
  the limit protects) and too many children, at spec.streamlets, naming the count, the limit
  and the setting; compile refuses them, so nothing is ever applied.
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import sys
from dataclasses import replace
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from federator.core import limits, validation
from federator.core.compiler import compile_application
from federator.core.problems import Code, InvalidSpec
from federator.core.settings import Settings, SettingsError, parse_settings

BENCH = Path(__file__).resolve().parents[2] / "bench" / "compile.py"


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("federator_bench_compile_limits", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


CLUSTER = {"name": "default", "strimziCluster": "s", "namespace": "kafka", "bootstrapServers": "b"}


def with_limits(**raw: int) -> Settings:
    return parse_settings({"kafkaClusters": [CLUSTER], "limits": raw})


def chain(streamlets: int, outlets: int = 1, **extra: Any) -> dict[str, Any]:
    """`streamlets` container streamlets in a line, each with `outlets` outlets (the first
    feeds the next streamlet): `streamlets * (1 + outlets)` children."""
    names = [f"s{i:04d}" for i in range(streamlets)]
    ports = [f"o{j}" for j in range(outlets)]
    return {
        "apiVersion": "federator.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": "big", "namespace": "team-a", "uid": "u", "generation": 1},
        "spec": {
            "streamlets": [
                {
                    "name": name,
                    "runtime": "container",
                    "image": "registry.example.com/team/app:1.0",
                    **({"inlets": ["in"]} if i else {}),
                    "outlets": ports,
                    **extra,
                }
                for i, name in enumerate(names)
            ],
            "connections": [
                {"from": f"{a}.o0", "to": [f"{b}.in"]} for a, b in itertools.pairwise(names)
            ],
        },
    }


# -- settings


def test_defaults() -> None:
    settings = parse_settings({})
    assert settings.limits == limits.Limits(max_streamlets=1000, max_children=3000)
    assert parse_settings({"limits": {}}).limits == settings.limits


def test_limits_parse() -> None:
    got = parse_settings({"limits": {"maxStreamlets": 200, "maxChildren": 500}}).limits
    assert (got.max_streamlets, got.max_children) == (200, 500)


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ({"maxStreamlets": 0}, "settings.limits.maxStreamlets"),
        ({"maxStreamlets": "100"}, "settings.limits.maxStreamlets"),
        ({"maxChildren": True}, "settings.limits.maxChildren"),
        ({"maxChildren": -1}, "settings.limits.maxChildren"),
        ({"maxStreamlet": 10}, "settings.limits: unknown key(s) maxStreamlet"),
        ({"maxStreamlets": limits.STREAMLETS_CEILING + 1}, "CRD's maxItems"),
        ("many", "settings.limits: expected Mapping"),
    ],
    ids=["zero", "string", "bool", "negative", "typo", "over-the-crd", "not-a-map"],
)
def test_bad_limits_are_refused_naming_the_key(raw: Any, key: str) -> None:
    with pytest.raises(SettingsError, match=key.replace("(", r"\(").replace(")", r"\)")):
        parse_settings({"limits": raw})


def test_the_crd_maxitems_is_the_ceiling_and_the_defaults_stay_under_it() -> None:
    spec = validation.application_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    lists = spec["properties"]["spec"]["properties"]
    for name in ("streamlets", "connections", "topics"):
        assert lists[name]["maxItems"] == limits.STREAMLETS_CEILING, name
    assert lists["streamlets"]["maxItems"] >= limits.DEFAULT_MAX_STREAMLETS
    # Every streamlet is a child, and each may add one topic per outlet.
    outlets = lists["streamlets"]["items"]["properties"]["outlets"]["maxItems"]
    assert limits.DEFAULT_MAX_STREAMLETS <= limits.DEFAULT_MAX_CHILDREN
    assert lists["streamlets"]["maxItems"] * (1 + outlets) >= limits.DEFAULT_MAX_CHILDREN


def test_the_largest_allowed_application_fits_in_one_etcd_request() -> None:
    """The derivation in core/limits.py, on the benchmark's realistic mix (runtime blocks,
    config maps, fan-in and fan-out, explicit topics with Avro schemas): the spec, a copy of it
    in managedFields (server-side apply), the status and the rest of the metadata fit in
    etcd's 1.5 MiB, with room to spare for larger streamlets."""
    body = _bench().generate(limits.DEFAULT_MAX_STREAMLETS)
    spec = len(json.dumps(body["spec"], separators=(",", ":")).encode())
    room = limits.OBJECT_BYTES - limits.STATUS_BYTES - limits.METADATA_BYTES
    assert 2 * spec <= room * 0.75, (spec, room)
    # The smallest useful streamlets stop fitting at the ceiling (which is why it is there).
    smallest = chain(limits.STREAMLETS_CEILING)
    small = len(json.dumps(smallest["spec"], separators=(",", ":")).encode())
    assert 2 * small > room


# -- validation


def test_too_many_streamlets_is_the_only_problem_reported() -> None:
    settings = with_limits(maxStreamlets=10)
    body = chain(11)
    body["spec"]["streamlets"][3]["runtime"] = "sprak"  # not looked at: over the limit
    problems = validation.validate(body, settings).problems
    assert [(p.path, p.code) for p in problems] == [("spec.streamlets", Code.TOO_MANY_STREAMLETS)]
    message = problems[0].message
    assert "11 streamlets" in message and "limit of 10" in message
    assert "limits.maxStreamlets" in message
    with pytest.raises(InvalidSpec) as raised:
        compile_application(body, settings)
    assert raised.value.problems == problems


def test_at_the_limits_nothing_is_reported() -> None:
    settings = with_limits(maxStreamlets=10, maxChildren=20)
    assert validation.validate(chain(10), settings).problems == ()


def test_too_many_children() -> None:
    settings = with_limits(maxStreamlets=10, maxChildren=25)
    problems = validation.validate(chain(10, outlets=2), settings).problems
    assert [(p.path, p.code) for p in problems] == [("spec.streamlets", Code.TOO_MANY_CHILDREN)]
    message = problems[0].message
    assert "30 children (10 streamlets and 20 KafkaTopics)" in message
    assert "limit of 25" in message and "limits.maxChildren" in message


def test_unmanaged_topics_are_not_children() -> None:
    body = chain(2)
    body["spec"]["connections"] = []
    body["spec"]["topics"] = [
        {"name": "shared.in", "managed": False, "consumers": ["s0001.in"]},
    ]
    settings = with_limits(maxChildren=4)
    assert validation.validate(body, settings).problems == ()  # 2 streamlets + 2 outlet topics
    tight = replace(settings, limits=limits.Limits(max_children=3))
    assert [p.code for p in validation.validate(body, tight).problems] == [Code.TOO_MANY_CHILDREN]


def test_the_default_limits_hold_offline() -> None:
    """`federator validate` without settings applies the defaults too."""
    problems = validation.validate(chain(1001), with_limits()).problems
    assert [p.code for p in problems] == [Code.TOO_MANY_STREAMLETS]
