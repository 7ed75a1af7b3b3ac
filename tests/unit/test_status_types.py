"""The typed status: `Phase` and `ChildEntry` (federator.core.status_types).

Aspects covered:
- vocabulary: the phases are the child healths plus Invalid, exactly the CRD's enum, in order;
  parsing a phase that is absent or not one gives None; which phases alarm;
- child entries: what the operator writes reads back equal (every optional key), and a hand-
  edited entry (wrong types, unknown health, missing keys) reads without raising.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from federator.core import health as h
from federator.core.plan import InventoryItem
from federator.core.status_types import ChildEntry, Phase
from federator.operator.status import child_entry

CRD = Path(__file__).parents[2] / "crds" / "application.yaml"


def test_phases_are_the_healths_and_invalid() -> None:
    assert {p.value for p in Phase} == {x.value for x in h.Health} | {h.PHASE_INVALID}


def test_phases_are_the_crds_enum_in_its_order() -> None:
    crd = yaml.safe_load(CRD.read_text(encoding="utf-8"))
    (version,) = crd["spec"]["versions"]
    status = version["schema"]["openAPIV3Schema"]["properties"]["status"]
    assert [p.value for p in Phase] == status["properties"]["phase"]["enum"]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("Healthy", Phase.HEALTHY), ("Invalid", Phase.INVALID), (None, None), ("healthy", None)],
    ids=["healthy", "invalid", "absent", "not-a-phase"],
)
def test_parse(raw: Any, expected: Phase | None) -> None:
    assert Phase.parse(raw) is expected


def test_only_degraded_and_invalid_alarm() -> None:
    assert {p for p in Phase if p.alarming} == {Phase.DEGRADED, Phase.INVALID}


ITEM = InventoryItem(
    kind="KafkaTopic", api_version="kafka.strimzi.io/v1beta2", namespace="ns", name="t"
)


@pytest.mark.parametrize(
    ("item", "spec_hash", "owned"),
    [
        (ITEM, None, True),
        (
            InventoryItem(
                kind="Deployment",
                api_version="apps/v1",
                namespace="ns",
                name="d",
                topic="orders",
                streamlet="s",
            ),
            "abc",
            False,
        ),
    ],
    ids=["minimal", "every-key"],
)
def test_what_the_operator_writes_reads_back(
    item: InventoryItem, spec_hash: str | None, owned: bool
) -> None:
    verdict = h.ChildHealth(health=h.Health.DEGRADED, reason="Failed", message="boom")
    written = child_entry(item, verdict, spec_hash, owned=owned)
    entry = ChildEntry.from_status(written)
    assert entry.to_status() == written
    assert (entry.health, entry.spec_hash, entry.owned) == (h.Health.DEGRADED, spec_hash, owned)


@pytest.mark.parametrize(
    "raw",
    [{}, {"health": "Fine", "kind": 3}, {"health": None, "owned": "no", "topic": 1}],
    ids=["empty", "unknown-health", "wrong-types"],
)
def test_a_hand_edited_entry_reads_without_raising(raw: dict[str, Any]) -> None:
    entry = ChildEntry.from_status(raw)
    assert entry.health is h.Health.UNKNOWN
    assert entry.kind == ""
    assert entry.topic is None
    assert entry.owned is True
