"""The schemas of the installed delegate CRDs, for the check before apply (`core.crdcheck`).

Why a cache, and this one: a reconcile must not cost an API call more, and a CRD object is
large (the FlinkDeployment CRD is half a megabyte). So only the CRDs of the delegate kinds
federator writes are read, at most once per `ttl` (like discovery) as metadata only (their
resourceVersion, a few hundred bytes each), and read whole only when that resourceVersion
changed; of the whole object only the parsed schemas are kept. A CRD upgraded or replaced in
the cluster is therefore checked against within `ttl` seconds, without a restart.

A CRD federator may not read (RBAC) or that fails to parse is logged and not checked: the API
server still validates on apply, so nothing worse than before happens.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from federator.core.crdcheck import InstalledCRD
from federator.kube.client import Kube, KubeError

log = logging.getLogger("federator.crdschemas")


@dataclass
class CrdSchemaCache:
    """CRD name -> `InstalledCRD`, refreshed at most once per `ttl` seconds (thread-safe)."""

    kube: Kube
    ttl: float = 10.0
    clock: Callable[[], float] = time.monotonic
    _crds: dict[str, InstalledCRD] = field(default_factory=dict)
    _at: dict[str, float] = field(default_factory=dict)
    _unreadable: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    reads: int = 0
    """Full CRD reads so far (tests and the benchmark prove they happen only on change)."""

    def get(self, names: Iterable[str]) -> Mapping[str, InstalledCRD]:
        """The installed CRDs among `names` (the delegate CRDs discovery found), each at most
        `ttl` seconds old."""
        wanted = sorted(set(names))
        with self._lock:
            now = self.clock()
            for name in wanted:
                if name in self._at and now - self._at[name] <= self.ttl:
                    continue
                self._refresh(name)
                self._at[name] = now
            return {n: self._crds[n] for n in wanted if n in self._crds}

    def invalidate(self) -> None:
        """Look again at the next `get` (a write was refused: the CRD may have changed)."""
        with self._lock:
            self._at.clear()

    def _refresh(self, name: str) -> None:
        known = self._crds.get(name)
        try:
            meta = self.kube.crd(name, metadata_only=True)
            if meta is None:
                self._crds.pop(name, None)
                return
            version = str((meta.get("metadata") or {}).get("resourceVersion") or "")
            if known is not None and version and known.resource_version == version:
                return
            body = self.kube.crd(name)
            self.reads += 1
        except KubeError as exc:
            if name not in self._unreadable:
                log.warning("CRD %s not read, children of its kind are not checked: %s", name, exc)
                self._unreadable.add(name)
            return  # keep what was read before, if anything
        if body is None:
            self._crds.pop(name, None)
            return
        try:
            self._crds[name] = InstalledCRD.from_body(body)
        except Exception as exc:  # a malformed schema must not stop reconciles
            log.warning("CRD %s has a schema federator cannot read: %s", name, exc)
            self._crds.pop(name, None)
            return
        self._unreadable.discard(name)
        log.info("CRD %s read at resourceVersion %s", name, self._crds[name].resource_version)
