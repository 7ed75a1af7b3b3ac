"""Compiled applications, remembered so that a reconcile whose application did not change (a
child's status event, a resync) does not compile it again.

Every application served, not the 256 most recent: above that, resyncs recompiled (issue 14).
What makes that affordable is the form: each `Compiled` is kept pickled and compressed (about
4 KB for an application of 11 children, against about 90 KB of live objects), and unpickled on
a hit in about a tenth of a millisecond, some thirty times less than compiling it again. The key
holds a digest of the application (32 bytes whatever the spec's size) and the served delegate
versions.
One entry per application (its newest compile: an older generation is not needed again), and
none once it is deleted (`forget`): the cache holds what the process serves, no more. Bounded by
bytes too (least recently used out first), so no spec can make it grow without limit.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import threading
import zlib
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

from federator.core.compiler import Compiled

BUDGET = 64 * 2**20
"""Bytes of compressed entries kept: some 16,000 applications of 11 children, far beyond what
one operator process serves (see docs/PERFORMANCE.md, sharding)."""


def digest(parts: Any) -> bytes:
    """A key for `parts` (JSON data): equal parts, equal keys."""
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).digest()


class CompileCache:
    """Thread-safe: reconciles run in worker threads."""

    def __init__(self, budget: int = BUDGET) -> None:
        self.budget = budget
        self._lock = threading.Lock()
        self._entries: OrderedDict[Hashable, bytes] = OrderedDict()
        self._keys: dict[str, Hashable] = {}  # owner -> its entry's key
        self._owners: dict[Hashable, str] = {}
        self._bytes = 0
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    @property
    def size(self) -> int:
        """Bytes held."""
        with self._lock:
            return self._bytes

    def get(self, key: Hashable, compile_: Callable[[], Compiled], owner: str = "") -> Compiled:
        """The remembered `Compiled` for `key`, else `compile_()`, remembered (as `owner`'s
        one entry, replacing its previous one). What `compile_` raises (an invalid spec) is
        raised and not remembered."""
        with self._lock:
            packed = self._entries.get(key)
            if packed is not None:
                self._entries.move_to_end(key)
                self.hits += 1
        if packed is not None:
            compiled: Compiled = pickle.loads(zlib.decompress(packed))
            return compiled
        compiled = compile_()
        packed = zlib.compress(pickle.dumps(compiled, protocol=pickle.HIGHEST_PROTOCOL), 1)
        with self._lock:
            self.misses += 1
            self._drop(key)
            if owner:
                self._drop(self._keys.get(owner))
            if len(packed) <= self.budget:
                self._entries[key] = packed
                self._bytes += len(packed)
                if owner:
                    self._keys[owner] = key
                    self._owners[key] = owner
            while self._bytes > self.budget:
                self._drop(next(iter(self._entries)))
        return compiled

    def forget(self, owner: str) -> None:
        """`owner` (namespace/name) was deleted: drop its entry."""
        with self._lock:
            self._drop(self._keys.get(owner))

    def _drop(self, key: Hashable | None) -> None:
        """Remove `key`'s entry (under the lock); None or unknown: nothing."""
        if key is None:
            return
        packed = self._entries.pop(key, None)
        if packed is not None:
            self._bytes -= len(packed)
        owner = self._owners.pop(key, None)
        if owner is not None and self._keys.get(owner) == key:
            del self._keys[owner]
