"""flinkConfiguration read as the Apache Flink operator reads it (nested maps are dotted keys),
by the pod check and the placement check alike.

The property: every option federator refuses is refused the same way whether it is written
flat (`kubernetes.hostnetwork.enabled`), nested (`kubernetes: {hostnetwork: {enabled: ...}}`)
or partly nested at any split of its key, and the problem names the key as it was written."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from test_podpolicy import BASELINE, app, findings, flink

from federator.core import flinkconf, validation
from federator.core.problems import Code

APPARMOR = "container.apparmor.security.beta.kubernetes.io/flink-main-container"
F = "spec.streamlets[0].flink.flinkConfiguration"

# (dotted key, value) -> the rule the pod policy refuses it by; None: the placement check.
REFUSED: dict[tuple[str, Any], str | None] = {
    ("kubernetes.hostnetwork.enabled", "true"): "hostNamespaces",
    ("kubernetes.hostnetwork.enabled", True): "hostNamespaces",
    ("kubernetes.service-account", "powerful"): "serviceAccount",
    ("kubernetes.jobmanager.service-account", "powerful"): "serviceAccount",
    ("kubernetes.taskmanager.service-account", "powerful"): "serviceAccount",
    ("kubernetes.taskmanager.annotations", f"{APPARMOR}:unconfined"): "appArmorProfile",
    (f"kubernetes.jobmanager.annotations.{APPARMOR}", "unconfined"): "appArmorProfile",
    ("kubernetes.namespace", "team-b"): None,
}


def nest(key: str, value: Any, cuts: list[bool]) -> tuple[dict[str, Any], list[str]]:
    """`key` written nested at the dots where `cuts` is True: the map and its written path."""
    parts = key.split(".")
    segments, current = [], [parts[0]]
    for part, cut in zip(parts[1:], cuts, strict=False):
        if cut:
            segments.append(".".join(current))
            current = [part]
        else:
            current.append(part)
    segments.append(".".join(current))
    node: Any = value
    for segment in reversed(segments):
        node = {segment: node}
    return node, segments


def verdict(conf: dict[str, Any]) -> tuple[set[str], set[str]]:
    """(pod-policy rules, problem codes of validation) for a FlinkDeployment with `conf`."""
    body = app(flink(flinkConfiguration=conf))
    result = validation.validate(body, BASELINE)
    if not result.ok:
        return set(), {p.code.value for p in result.problems}
    return {rule for _, rule in findings(body, BASELINE)}, set()


@hsettings(max_examples=120, deadline=None)
@given(
    option=st.sampled_from(sorted(REFUSED, key=str)),
    cuts=st.lists(st.booleans(), min_size=12, max_size=12),
)
def test_every_form_of_a_refused_option_is_refused_alike(
    option: tuple[str, Any], cuts: list[bool]
) -> None:
    key, value = option
    flat = verdict({key: value})
    conf, written = nest(key, value, cuts)
    assert verdict(conf) == flat
    rule = REFUSED[option]
    if rule is None:
        assert flat == (set(), {Code.CHILD_PLACEMENT.value})
    else:
        assert rule in flat[0]
        body = app(flink(flinkConfiguration=conf))
        paths = {path for path, r in findings(body, BASELINE) if r == rule}
        assert paths == {".".join([F, *written])}


def test_entries_flatten_every_form() -> None:
    conf = {
        "kubernetes": {"hostnetwork": {"enabled": True}, "jobmanager.cpu": 2},
        "kubernetes.service-account": "a",
        "state.checkpoints": {"dir": "s3://x"},
        "empty": {},
    }
    assert [(e.key, e.value, e.path) for e in flinkconf.entries(conf)] == [
        ("kubernetes.hostnetwork.enabled", "true", ("kubernetes", "hostnetwork", "enabled")),
        ("kubernetes.jobmanager.cpu", "2", ("kubernetes", "jobmanager.cpu")),
        ("kubernetes.service-account", "a", ("kubernetes.service-account",)),
        ("state.checkpoints.dir", "s3://x", ("state.checkpoints", "dir")),
        ("empty", {}, ("empty",)),
    ]
    assert flinkconf.entries(None) is not None and list(flinkconf.entries(["x"])) == []


def test_map_option_string_and_prefix_forms() -> None:
    conf = {
        "kubernetes.jobmanager.annotations": "a:1, b : 2,,",
        "kubernetes": {"jobmanager": {"annotations": {"c.d/e": "3"}}},
    }
    assert sorted(
        (name, value)
        for name, value, _ in flinkconf.map_option(conf, "kubernetes.jobmanager.annotations")
    ) == [("a", "1"), ("b", "2"), ("c.d/e", "3")]


def test_allowed_options_stay_allowed_in_every_form() -> None:
    for conf in (
        {"kubernetes.hostnetwork.enabled": "false"},
        {"kubernetes": {"hostnetwork": {"enabled": False}}},
        {"kubernetes.jobmanager": {"annotations": {"prometheus.io/scrape": "true"}}},
        {"taskmanager.numberOfTaskSlots": "2"},
    ):
        assert verdict(conf) == (set(), set()), conf


def test_every_pod_option_key_is_in_the_property() -> None:
    """Every key Flink reads a pod option from (`FLINK_POD_OPTIONS`, checked against Flink's jars
    by an integration test) is among the refused options written in every form above."""
    from federator.core.childpods import FLINK_POD_OPTIONS

    written = {key.split(f".{APPARMOR}")[0] for key, _ in REFUSED}
    assert {key for keys in FLINK_POD_OPTIONS.values() for key in keys} <= written
