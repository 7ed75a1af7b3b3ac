"""The latest version of every managed child that kopf's watch streams delivered, so a
reconcile reads its children from memory instead of one GET each (the observe step of DESIGN
§4 was up to 15 GETs per reconcile of the seed application, on every child event).

Only what a watch stream delivered is stored, in stream order per object, so an entry is never
older than what the stream has already said. Anything else is a miss, and the reconciler GETs
it:
- an object the stream has not shown (just after a start, a namespace not watched, an object
  without our label);
- an object deleted, or that lost our label (both arrive as DELETED);
- an object our own apply wrote whose echo has not arrived yet (the cached version would be
  older than the one we wrote; see `wrote`).

What a watch can still miss (an object deleted while a watch was re-listing) is bounded by the
resync: a resync reconcile bypasses the cache and GETs every child.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any

Key = tuple[str, str, str]  # (kind, namespace, name)
RECENT = 16
"""Versions of an object remembered as already streamed: the echo of our apply, and even a
delegate's next status write, can be delivered before the apply's own response is parsed."""


def _key(body: Mapping[str, Any]) -> Key:
    meta = body.get("metadata") or {}
    return (str(body.get("kind") or ""), str(meta.get("namespace") or ""), str(meta.get("name")))


def _version(body: Mapping[str, Any] | None) -> str:
    return str(((body or {}).get("metadata") or {}).get("resourceVersion") or "")


class ChildCache:
    """Thread-safe: fed on the event loop, read from reconcile threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._bodies: dict[Key, Mapping[str, Any]] = {}
        self._pending: dict[Key, str] = {}  # our latest write, until its echo arrives
        self._recent: dict[Key, deque[str]] = {}  # versions streamed lately, newest last

    def __len__(self) -> int:
        with self._lock:
            return len(self._bodies)

    def seen(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        """A watch event (kopf's initial listing has no type)."""
        key = _key(body)
        with self._lock:
            if event_type == "DELETED":
                self._bodies.pop(key, None)
                self._pending.pop(key, None)
                self._recent.pop(key, None)
                return
            self._bodies[key] = body
            version = _version(body)
            self._recent.setdefault(key, deque(maxlen=RECENT)).append(version)
            if self._pending.get(key) == version:
                del self._pending[key]

    def wrote(self, key: Key, body: Mapping[str, Any] | None) -> None:
        """Our apply returned `body`: until the stream delivers that version, the cached one may
        be older (e.g. the spec before the change), so `get` misses. Nothing is pending when
        the stream already delivered it (an apply that changed nothing returns the version
        already cached; a fast echo, or the next write after it, can beat the response)."""
        version = _version(body)
        with self._lock:
            if version and version not in self._recent.get(key, ()):
                self._pending[key] = version
            else:
                self._pending.pop(key, None)

    def get(self, key: Key) -> Mapping[str, Any] | None:
        """The latest streamed version, or None for a miss (GET it)."""
        with self._lock:
            if key in self._pending:
                return None
            return self._bodies.get(key)

    def keep_kinds(self, kinds: Iterable[str]) -> None:
        """Drop every entry of another kind: a delegate CRD that went away took its objects
        with it, whether or not their DELETED events arrived."""
        keep = set(kinds)
        with self._lock:
            for key in [k for k in self._bodies if k[0] not in keep]:
                del self._bodies[key]
            for key in [k for k in self._pending if k[0] not in keep]:
                del self._pending[key]
            for key in [k for k in self._recent if k[0] not in keep]:
                del self._recent[key]
