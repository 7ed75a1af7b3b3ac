"""The resync of every Application, as one paced queue (issue 14).

Each application is resynced every `period` seconds, on its own point of the period
(`resync.offset` of its uid, from when the operator first saw it), so applications created or
resumed together resync spread evenly over the period. One heap of due times and one task serve
them all: kopf's timers, which this replaces, kept a task and a parsed copy of its body
(`live_fresh_body`) per application, some 40 KB each, and each timer's task woke on its own.

What is scheduled follows kopf's watch of the Applications (`add` on every event, `remove` on
its deletion): a shard only resyncs the applications its watch delivers.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import time
from collections.abc import Callable

from federator.operator import resync

AppKey = tuple[str, str]


class Resyncs:
    """Not thread-safe: used on the event loop only."""

    def __init__(
        self,
        period: float,
        kick: Callable[[str, str], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.period = period
        self._kick = kick
        self._clock = clock
        self._due: list[tuple[float, str, str, str]] = []  # (when, namespace, name, uid)
        self._uids: dict[AppKey, str] = {}
        self._wake: asyncio.Event | None = None

    def __len__(self) -> int:
        return len(self._uids)

    def add(self, namespace: str, name: str, uid: str | None) -> None:
        """An application seen (created, changed, listed): scheduled at its offset from now,
        unless it already is (the same uid: a new object of the same name starts afresh)."""
        key = (namespace, name)
        ident = uid or f"{namespace}/{name}"
        if self._uids.get(key) == ident:
            return
        self._uids[key] = ident
        when = self._clock() + resync.offset(ident, self.period)
        heapq.heappush(self._due, (when, namespace, name, ident))
        if self._wake is not None:
            self._wake.set()

    def remove(self, namespace: str, name: str) -> None:
        """An application deleted (or no longer this shard's): its entries are dropped when due."""
        self._uids.pop((namespace, name), None)

    def fire(self) -> float | None:
        """Kick every application due now and schedule its next resync one period later (on its
        own grid, skipping periods missed while the loop was busy). Returns the seconds until
        the next one is due (None: nothing scheduled)."""
        now = self._clock()
        while self._due and self._due[0][0] <= now:
            when, namespace, name, ident = heapq.heappop(self._due)
            if self._uids.get((namespace, name)) != ident:
                continue  # deleted, or replaced by a new object of that name
            self._kick(namespace, name)
            while when <= now:
                when += self.period
            heapq.heappush(self._due, (when, namespace, name, ident))
        return self._due[0][0] - now if self._due else None

    async def run(self) -> None:
        """Fire resyncs as they fall due, until cancelled."""
        self._wake = asyncio.Event()
        while True:
            wait = self.fire()
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait)
