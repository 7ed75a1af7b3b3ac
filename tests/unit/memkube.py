"""An in-memory stand-in for the API, enough for whole reconciles and finalizations in unit
tests: objects by (plural, namespace, name) with uids and resourceVersions; create refuses an
existing name, delete honours a uid precondition, list filters by `k=v` label selectors. Errors
can be injected per verb and object name. The integration tests run the real API server."""

from __future__ import annotations

import copy
import itertools
import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any

from federator.core import delegates
from federator.kube.client import Conflict, KubeError, ResourceRef
from federator.kube.discovery import Discovered


class MemKube:
    def __init__(self) -> None:
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.calls: Counter[str] = Counter()
        self.fail: dict[tuple[str, str], KubeError] = {}  # (verb, name) -> error
        self._versions = itertools.count(1)
        self._lock = threading.Lock()

    def _check(self, verb: str, name: str) -> None:
        with self._lock:
            self.calls[verb] += 1
        error = self.fail.get((verb, name))
        if error is not None:
            raise error

    def _stamp(self, body: dict[str, Any]) -> dict[str, Any]:
        body["metadata"]["resourceVersion"] = str(next(self._versions))
        return copy.deepcopy(body)

    def get(self, ref: ResourceRef) -> dict[str, Any] | None:
        self._check("get", ref.name)
        found = self.objects.get((ref.plural, ref.namespace, ref.name))
        return copy.deepcopy(found) if found is not None else None

    def list(
        self,
        group: str,
        version: str,
        plural: str,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
    ) -> list[dict[str, Any]]:
        self._check("list", plural)
        wanted = dict(p.split("=", 1) for p in (label_selector or "").split(",") if "=" in p)
        return [
            copy.deepcopy(body)
            for (kind_plural, ns, _), body in sorted(self.objects.items())
            if kind_plural == plural
            and (namespace is None or ns == namespace)
            and wanted.items() <= (body["metadata"].get("labels") or {}).items()
        ]

    def pages(
        self,
        group: str,
        version: str,
        plural: str,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        page_size: int | None = None,
    ) -> Iterator[list[dict[str, Any]]]:
        items = self.list(
            group, version, plural, namespace=namespace, label_selector=label_selector
        )
        step = page_size or max(1, len(items))
        for start in range(0, max(1, len(items)), step):
            yield items[start : start + step]

    def create(self, ref: ResourceRef, manifest: Any, kind: str) -> dict[str, Any]:
        self._check("create", ref.name)
        key = (ref.plural, ref.namespace, ref.name)
        if key in self.objects:
            raise Conflict(f"create {ref}: already exists", 409)
        body = copy.deepcopy(dict(manifest))
        body["metadata"] = {**body["metadata"], "namespace": ref.namespace, "uid": f"uid-{key}"}
        self.objects[key] = body
        return self._stamp(body)

    def claim_fields(self, ref: ResourceRef, body: Any, kind: str) -> dict[str, Any]:
        return dict(body)

    def apply(self, ref: ResourceRef, manifest: Any, kind: str) -> dict[str, Any]:
        self._check("apply", ref.name)
        key = (ref.plural, ref.namespace, ref.name)
        current = self.objects[key]
        current.update({k: copy.deepcopy(v) for k, v in manifest.items() if k != "metadata"})
        current["metadata"].update(copy.deepcopy(manifest["metadata"]))
        return self._stamp(current)

    def delete(self, ref: ResourceRef, kind: str, *, uid: str | None = None) -> bool:
        self._check("delete", ref.name)
        key = (ref.plural, ref.namespace, ref.name)
        current = self.objects.get(key)
        if current is None or (uid is not None and current["metadata"].get("uid") != uid):
            return False
        del self.objects[key]
        return True

    def put(self, body: dict[str, Any]) -> None:
        """An object as if created earlier (by federator or anybody)."""
        meta = body["metadata"]
        plural = delegates.BY_KIND[body["kind"]].plural
        key = (plural, meta["namespace"], meta["name"])
        meta.setdefault("uid", f"uid-{key}")
        self.objects[key] = copy.deepcopy(body)

    def names(self, kind: str) -> set[str]:
        plural = delegates.BY_KIND[kind].plural
        return {name for (p, _, name) in self.objects if p == plural}


class AllServed:
    """Discovery: every delegate CRD served at its first version, but the kinds `missing`."""

    def __init__(self, *missing: str) -> None:
        self.discovered = Discovered(
            served={
                d.crd_name: d.versions
                for d in delegates.ALL
                if not d.builtin and d.kind not in missing
            }
        )

    def get(self) -> Discovered:
        return self.discovered

    def invalidate(self) -> None:
        pass
