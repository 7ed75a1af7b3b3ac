"""The latest version of every object that kopf's watch streams delivered: the managed
children, so a reconcile reads them from memory instead of one GET each (the observe step of
DESIGN §4 was up to 15 GETs per reconcile of the seed application, on every child event), as a
controller-runtime client reads from its informers; and the Applications themselves, so a
reconcile does not GET the very object whose event triggered it.

Only what was listed or streamed is stored, in stream order per object, so an entry is never
older than what the stream has already said. A kind listed at start-up (`trust`, before kopf's
watches start) is known completely in the namespaces listed: a miss there means "no managed
object of that name" (an unlabelled object is taken over by the apply either way). Anything
else is unknown, and the reconciler GETs it:
- a kind that could not be listed at start-up, or whose CRD appeared later, or a namespace not
  watched;
- an object our own apply wrote whose echo has not arrived yet (the cached version would be
  older than the one we wrote; see `wrote`).

What a watch can still miss (an object deleted while a watch was re-listing) is bounded by the
resync: the first resync of each application after a re-listing (`listed_at`) bypasses the
cache and GETs every child (see `resync`).

Compact (issue 14: memory): each object is kept as its JSON text, without the `fieldsV1` of its
managedFields (the field sets, a second copy of the spec and status; the reconciler reads only
who manages an object and how, never the fields). A parsed body costs about five times its
text in Python objects: at 1,000 applications of 11 children the cached bodies were most of the
operator's memory. A lookup parses the text again (tens of microseconds for a child), which
also hands every reader its own copy.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any

from federator.core.keys import Key
from federator.core.naming import APPLICATION_ANNOTATION

RECENT = 16
"""Versions of an object remembered as already streamed: the echo of our apply, and even a
delegate's next status write, can be delivered before the apply's own response is parsed."""


def _key(body: Mapping[str, Any]) -> Key:
    meta = body.get("metadata") or {}
    return (str(body.get("kind") or ""), str(meta.get("namespace") or ""), str(meta.get("name")))


def _version(body: Mapping[str, Any] | None) -> str:
    return str(((body or {}).get("metadata") or {}).get("resourceVersion") or "")


def compact(body: Mapping[str, Any]) -> bytes:
    """`body` as stored: JSON without the field sets of its managedFields."""
    meta = body.get("metadata")
    fields = meta.get("managedFields") if isinstance(meta, Mapping) else None
    if isinstance(fields, list) and fields:
        slim = [
            {k: v for k, v in m.items() if k != "fieldsV1"} if isinstance(m, Mapping) else m
            for m in fields
        ]
        body = {**body, "metadata": {**meta, "managedFields": slim}}  # type: ignore[dict-item]
    return json.dumps(body, separators=(",", ":"), default=str).encode()


class WatchCache:
    """Thread-safe: fed on the event loop, read from reconcile threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._bodies: dict[Key, bytes] = {}  # `compact` text
        self._pending: dict[Key, str] = {}  # our latest write, until its echo arrives
        self._recent: dict[Key, deque[str]] = {}  # versions streamed lately, newest last
        self._trusted: dict[str, frozenset[str] | None] = {}  # kind -> namespaces (None: all)
        self._kinds: frozenset[str] | None = None  # what keep_kinds last kept
        # What kopf's streams delivered (and did not delete), with the listing epoch of its
        # (kind, namespace) when they did: `confirmed`.
        self._streamed: dict[Key, int] = {}
        self._epoch: dict[tuple[str, str], int] = {}
        self._relisted: float | None = None  # time.monotonic() of the latest re-listed object
        self._owners: dict[str, set[Key]] = {}  # owner annotation -> the objects carrying it
        self._owner_of: dict[Key, str] = {}

    @property
    def listed_at(self) -> float | None:
        """When (`time.monotonic()`) kopf last re-listed an object it had already streamed: its
        stream broke ("410 Gone", a pause under peering) and it listed again, which does not
        say what was deleted in between; None: never (kopf's first listing after our priming
        is not one: the restart's reconciles GET every child anyway)."""
        return self._relisted

    def streamed(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        """An event of kopf's watch streams (`seen`), noting re-listings (`listed_at`). A
        re-listing that finds no object at all (everything deleted meanwhile) goes unnoticed;
        the restart is then what looks again."""
        key = _key(body)
        scope = (key[0], key[1])
        with self._lock:
            epoch = self._epoch.get(scope, 0)
            if event_type is None and key in self._streamed:
                self._relisted = time.monotonic()
                if self._streamed[key] == epoch:  # the first object of a new listing
                    epoch = self._epoch[scope] = epoch + 1
            if event_type == "DELETED":
                self._streamed.pop(key, None)
            else:
                self._streamed[key] = epoch
        self.seen(event_type, body)

    def confirmed(self, key: Key) -> bool:
        """Whether kopf's streams delivered `key` (and not its deletion) since their latest
        listing of its kind and namespace began: then the cached version is the current one,
        as far as a watch can tell. Not confirmed: what only our priming listed (kopf's own
        listing may not have reached it yet, or it was deleted between the two listings), and
        what a re-listing has not delivered again (deleted while the stream was broken).
        `lookup` serves both; a reconcile that must not trust a stale entry (a restart, the
        resync after a re-listing) GETs the unconfirmed ones."""
        with self._lock:
            return self._streamed.get(key) == self._epoch.get((key[0], key[1]), 0)

    def owned(self, owner: str, scopes: Iterable[tuple[str, str]]) -> list[dict[str, Any]] | None:
        """The cached objects whose owner annotation is `owner`, of the (kind, namespace)
        `scopes`; None unless every scope is trusted (listed at start-up and watched since), so
        that what an application owns is found without one LIST per kind and namespace."""
        scopes = set(scopes)
        with self._lock:
            for kind, namespace in scopes:
                if kind not in self._trusted:
                    return None
                namespaces = self._trusted[kind]
                if namespaces is not None and namespace not in namespaces:
                    return None
            texts = [
                self._bodies[k]
                for k in sorted(self._owners.get(owner, ()))
                if (k[0], k[1]) in scopes and k in self._bodies
            ]
        return [json.loads(t) for t in texts]

    def _index_owner(self, key: Key, body: Mapping[str, Any] | None) -> None:
        """Keep `_owners` current (under the lock); None: forget `key`."""
        meta = (body or {}).get("metadata") or {}
        annotations = meta.get("annotations") if isinstance(meta, Mapping) else None
        owner = (annotations or {}).get(APPLICATION_ANNOTATION) if body is not None else None
        previous = self._owner_of.get(key)
        if previous == owner:
            return
        if previous is not None:
            keys = self._owners.get(previous)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._owners[previous]
            del self._owner_of[key]
        if isinstance(owner, str) and owner:
            self._owners.setdefault(owner, set()).add(key)
            self._owner_of[key] = owner

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
                self._index_owner(key, None)
                return
            if self._kinds is not None and key[0] not in self._kinds:
                return  # a kind the cluster no longer serves (see keep_kinds)
            self._bodies[key] = compact(body)
            self._index_owner(key, body)
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

    def trust(self, kind: str, namespaces: Iterable[str] | None) -> None:
        """Every managed object of `kind` in `namespaces` (None: all) has been listed, and the
        watches keep them current: from now on, a miss there means absent."""
        with self._lock:
            self._trusted[kind] = None if namespaces is None else frozenset(namespaces)

    def lookup(self, key: Key) -> tuple[bool, dict[str, Any] | None]:
        """(known, body): the latest streamed version (the caller's own copy, without the field
        sets of its managedFields); (True, None) for an object known to be absent; (False,
        None) when unknown (GET it)."""
        with self._lock:
            if key in self._pending:
                return False, None
            text = self._bodies.get(key)
            if text is None:
                kind, namespace, _name = key
                if kind not in self._trusted:
                    return False, None
                namespaces = self._trusted[kind]
                return namespaces is None or namespace in namespaces, None
        body: dict[str, Any] = json.loads(text)  # outside the lock: the event loop waits on it
        return True, body

    def keep_kinds(self, kinds: Iterable[str]) -> None:
        """Drop every entry of another kind, and stop trusting its misses: a delegate CRD that
        went away took its objects with it, whether or not their DELETED events arrived.
        Called on every reconcile, so it only scans the cache when the kinds changed."""
        keep = frozenset(kinds)
        with self._lock:
            if keep == self._kinds:
                return
            self._kinds = keep
            for key in [k for k in self._bodies if k[0] not in keep]:
                del self._bodies[key]
                self._index_owner(key, None)
            for key in [k for k in self._pending if k[0] not in keep]:
                del self._pending[key]
            for key in [k for k in self._recent if k[0] not in keep]:
                del self._recent[key]
            for kind in [k for k in self._trusted if k not in keep]:
                del self._trusted[kind]  # a CRD installed again is not listed again
