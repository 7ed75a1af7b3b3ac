"""When each Application is resynced, and whether that resync reads its children by GET
(issue 14).

Spread: an application's first resync comes `offset(uid)` seconds after the operator first
sees it (its creation, or the operator's start), then every period: a deterministic point in
the period, hashed from its uid, so applications created or resumed together resync spread
evenly over the period instead of all at once (768 resyncs in one minute at 1,000
applications, when every timer started `resyncSeconds` after its creation).

Cheap: a resync reads the children from the watch cache, as every other reconcile does; a GET
only for what the cache does not know (a kind not listed at start-up, a namespace not watched,
our own write not echoed yet). Only when a watch re-listed within the last period does a
resync GET every child and list the application's owned objects: kopf re-lists after a broken
stream ("410 Gone", rare with watch bookmarks) or a pause under peering, and a deletion made
in between is not streamed, so each application's next resync (within one period of the
re-listing) looks at the cluster itself, which bounds what a watch may have missed to one
period, as before. (kopf's first listing, right after our priming, is not a re-listing: the
restart's own reconciles GET every child.)

Pure: no clock, no I/O; the handlers pass the times in.
"""

from __future__ import annotations

import hashlib


def offset(key: str, period: float) -> float:
    """A point in [0, period) from `key` (an application's uid): stable for the life of the
    application, uniform over keys (SHA-256, not Python's per-process salted hash)."""
    digest = hashlib.sha256(key.encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 * period


def fresh(listed_at: float | None, now: float, period: float) -> bool:
    """Whether a resync at `now` must GET every child instead of trusting the watch cache: a
    watch re-listed at `listed_at` (None: never), within the last period, so this may be the
    application's first resync since then."""
    return listed_at is not None and now - listed_at < period
