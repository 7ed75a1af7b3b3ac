"""The resync queue: each application on its own point of the period, one period apart, as
long as it exists; spread for applications seen together."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter

import pytest

from federator.operator import resync
from federator.operator.resyncs import Resyncs

PERIOD = 300.0


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def queue() -> tuple[Resyncs, Clock, list[tuple[str, str]]]:
    kicks: list[tuple[str, str]] = []
    clock = Clock()
    return Resyncs(PERIOD, lambda ns, n: kicks.append((ns, n)), clock), clock, kicks


def test_an_application_resyncs_at_its_offset_then_every_period() -> None:
    resyncs, clock, kicks = queue()
    resyncs.add("ns", "a", "uid-a")
    first = resync.offset("uid-a", PERIOD)
    assert resyncs.fire() == pytest.approx(first)
    clock.t += first
    assert resyncs.fire() == pytest.approx(PERIOD) and kicks == [("ns", "a")]
    resyncs.add("ns", "a", "uid-a")  # seen again (a change): stays on its grid
    clock.t += PERIOD - 1
    assert resyncs.fire() == pytest.approx(1) and kicks == [("ns", "a")]
    clock.t += 1 + 2.5 * PERIOD  # the loop was busy for two periods: one kick, same grid
    assert resyncs.fire() == pytest.approx(PERIOD / 2)
    assert kicks == [("ns", "a"), ("ns", "a")]


def test_a_removed_application_is_not_kicked_a_new_one_of_its_name_starts_afresh() -> None:
    resyncs, clock, kicks = queue()
    resyncs.add("ns", "a", "old")
    resyncs.remove("ns", "a")
    clock.t += PERIOD
    assert resyncs.fire() is None and kicks == []
    resyncs.add("ns", "a", "old")
    resyncs.add("ns", "a", "new")  # deleted and created again under the same name
    clock.t += PERIOD
    resyncs.fire()
    assert kicks == [("ns", "a")] and len(resyncs) == 1


def test_applications_seen_together_resync_spread_over_the_period() -> None:
    resyncs, clock, kicks = queue()
    for i in range(1000):
        resyncs.add("ns", f"app-{i}", str(uuid.UUID(int=i * 7919 + 1)))
    per_minute: Counter[int] = Counter()
    start = clock.t
    while clock.t < start + PERIOD:
        clock.t += 1.0
        before = len(kicks)
        resyncs.fire()
        per_minute[int((clock.t - start - 1e-9) // 60)] += len(kicks) - before
    assert len(kicks) == 1000
    assert max(per_minute.values()) < 1000 * 60 / PERIOD * 1.5  # no minute far above its share


def test_the_loop_fires_and_wakes_for_a_new_application() -> None:
    async def scenario() -> list[tuple[str, str]]:
        kicks: list[tuple[str, str]] = []
        resyncs = Resyncs(0.05, lambda ns, n: kicks.append((ns, n)))
        task = asyncio.create_task(resyncs.run())
        await asyncio.sleep(0)  # the loop waits with nothing scheduled
        resyncs.add("ns", "a", "uid")
        for _ in range(200):
            if len(kicks) >= 2:
                break
            await asyncio.sleep(0.01)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return kicks

    assert asyncio.run(scenario())[:2] == [("ns", "a"), ("ns", "a")]
