"""Sharding as Flux does it (issue 14, item 3): who serves an Application, and what follows.

Aspects covered:
- a shard's selectors: `federator.io/shard=<name>`, or `!federator.io/shard` for the default;
  its children's selector adds federator's managed-by label; every Application is served by
  exactly one shard whatever the label says;
- shard names are label values; the settings (`sharding.shard`) and `federator run --shard`
  refuse anything else with a clear message;
- children carry their application's shard label on the child only (never on a pod template:
  a move restarts nothing), and the spec-hash does not change with it;
- the plan re-applies a child whose shard label is not its application's, both ways (a child
  moved to the default shard must lose the label);
- kopf's watches get the shard's server-side label selectors; an Application leaving the
  shard's watch is forgotten, one joining it (ADDED with a status) is reconciled afresh.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import kopf
import pytest
import yaml
from kopf._cogs.structs import references

from federator.cli import main as cli_main
from federator.core import compiler, delegates, health, sharding
from federator.core.plan import Observed, in_sync
from federator.core.settings import SettingsError, parse_settings
from federator.operator import sharding as op_sharding

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = parse_settings(yaml.safe_load((ROOT / "examples" / "settings.yaml").read_text()))
HEALTHY = health.ChildHealth(health=health.Health.HEALTHY, reason="Ready")


def app(shard: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = yaml.safe_load(
        (ROOT / "examples" / "call-record-aggregator.yaml").read_text()
    )
    body["metadata"]["uid"] = "0000-uid"
    if shard is not None:
        body["metadata"]["labels"] = {sharding.SHARD_LABEL: shard}
    return body


@pytest.mark.parametrize(
    ("shard", "selector"),
    [(None, "!federator.io/shard"), ("a", "federator.io/shard=a")],
    ids=["default", "named"],
)
def test_selectors(shard: str | None, selector: str) -> None:
    s = sharding.Shard(shard)
    assert s.selector == selector
    assert s.child_selector == f"app.kubernetes.io/managed-by=federator,{selector}"


@pytest.mark.parametrize(
    "labels",
    [None, {}, {"other": "x"}, {sharding.SHARD_LABEL: "a"}, {sharding.SHARD_LABEL: "b"}],
    ids=["no-labels", "empty", "other-label", "shard-a", "shard-b"],
)
def test_every_application_is_served_by_exactly_one_shard(labels: dict[str, str] | None) -> None:
    body = {"metadata": {"labels": labels} if labels is not None else {}}
    shards = [sharding.Shard(None), sharding.Shard("a"), sharding.Shard("b")]
    assert sum(s.serves(body) for s in shards) == 1


@pytest.mark.parametrize("name", ["a", "shard-1", "Team_B.x", "a" * 63])
def test_valid_shard_names(name: str) -> None:
    assert parse_settings({"sharding": {"shard": name}}).sharding.shard == name


@pytest.mark.parametrize("name", ["-a", "a b", "a/b", "a" * 64, "é"])
def test_invalid_shard_names_are_refused_clearly(name: str) -> None:
    with pytest.raises(SettingsError, match=r"settings\.sharding\.shard: .*not a valid shard name"):
        parse_settings({"sharding": {"shard": name}})


def test_settings_default_to_the_default_shard() -> None:
    assert parse_settings({}).sharding.shard is None
    assert parse_settings({"sharding": {"shard": ""}}).sharding.shard is None
    with pytest.raises(SettingsError, match="unknown key"):
        parse_settings({"sharding": {"shards": ["a"]}})


def test_run_refuses_a_bad_shard_name(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main.main(["run", "--shard", "a b"]) == cli_main.EXIT_USAGE
    assert "--shard: 'a b' is not a valid shard name" in capsys.readouterr().err


def test_children_carry_the_shard_label_on_the_child_only() -> None:
    plain = {c.key: c for c in compiler.compile_application(app(), SETTINGS).children}
    labelled = compiler.compile_application(app("a"), SETTINGS).children
    assert len(labelled) == len(plain) == 15
    for child in labelled:
        meta = child.manifest["metadata"]
        assert meta["labels"][sharding.SHARD_LABEL] == "a"
        assert child.spec_hash == plain[child.key].spec_hash  # a move is not a spec change
        assert child.manifest["spec"] == plain[child.key].manifest["spec"]  # pods untouched
        assert sharding.SHARD_LABEL not in plain[child.key].manifest["metadata"]["labels"]


@pytest.mark.parametrize(
    ("desired", "live_shard", "synced"),
    [
        (None, None, True),
        ("a", "a", True),
        ("a", None, False),
        (None, "a", False),
        ("b", "a", False),
    ],
    ids=["default", "same", "joins-a", "back-to-default", "a-to-b"],
)
def test_a_child_follows_its_applications_shard(
    desired: str | None, live_shard: str | None, synced: bool
) -> None:
    for child in compiler.compile_application(app(desired), SETTINGS).children:
        body = copy.deepcopy(dict(child.manifest))
        labels = body["metadata"]["labels"]
        labels.pop(sharding.SHARD_LABEL, None)
        if live_shard is not None:
            labels[sharding.SHARD_LABEL] = live_shard
        assert in_sync(child, Observed.from_body(body, HEALTHY)) is synced


def test_kopf_watches_only_the_shards_objects() -> None:
    settings = kopf.OperatorSettings()
    op_sharding.watch_only(settings, sharding.Shard("a"))
    selectors = settings.watching.label_selectors

    def selector_of(group: str, version: str, plural: str, kind: str) -> list[str]:
        resource = references.Resource(group, version, plural, kind=kind)
        return list(selectors.collect(resource))

    assert selector_of("federator.io", "v1alpha1", "applications", "Application") == [
        "federator.io/shard=a"
    ]
    for d in delegates.ALL:
        assert selector_of(d.group, d.versions[0], d.plural, d.kind) == [
            "app.kubernetes.io/managed-by=federator,federator.io/shard=a"
        ]
    assert selector_of("apps", "v1", "statefulsets", "StatefulSet") == []


class FakeWorkers:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str, bool]] = []

    def kick(self, namespace: str, name: str, *, fresh: bool = False) -> None:
        self.calls.append(("kick", namespace, name, fresh))

    def forget(self, namespace: str, name: str) -> None:
        self.calls.append(("forget", namespace, name, False))


@pytest.mark.parametrize(
    ("event", "body", "expected"),
    [
        ("DELETED", {"metadata": {}}, ("forget", "ns", "x", False)),
        ("ADDED", {"metadata": {}, "status": {"phase": "Healthy"}}, ("kick", "ns", "x", True)),
        ("ADDED", {"metadata": {}}, None),  # new: the ADDED handler or kopf's creation does it
        ("MODIFIED", {"metadata": {}, "status": {"phase": "Healthy"}}, None),
        (None, {"metadata": {}, "status": {"phase": "Healthy"}}, None),  # listing: resume does
        ("ADDED", {"metadata": {"deletionTimestamp": "t"}, "status": {"p": 1}}, None),
    ],
    ids=["left", "joined", "new", "modified", "listed", "being-deleted"],
)
def test_applications_entering_and_leaving_the_watch(
    event: str | None, body: dict[str, Any], expected: tuple[str, str, str, bool] | None
) -> None:
    workers = FakeWorkers()
    op_sharding.on_application_event(workers, {"type": event}, body, "ns", "x")  # type: ignore[arg-type]
    assert workers.calls == ([expected] if expected else [])
