"""Reading children: the watch cache, else GET (concurrently, in the application's turn), and
priming that cache at start-up."""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from typing import Any

from federator.core import delegates
from federator.core.delegates.base import Ref
from federator.core.keys import Key
from federator.core.plan import InventoryItem
from federator.kube.client import KubeError
from federator.operator.state import ReconcilerState, ref_of

log = logging.getLogger("federator.reconcile")

PRIME_PAGE = 500
"""Objects per page of the start-up listing (the API server's own default chunk size)."""


class Observing(ReconcilerState):
    """The reads of a reconcile (`Reconciler._observe_app` puts them together)."""

    def _observe(
        self, kind: str, api_version: str, namespace: str, name: str, *, fresh: bool = False
    ) -> Any:
        """A child as last streamed to us, else (a cache miss) by GET. `fresh` (a restart, the
        resync after a re-listing): only what kopf's streams have delivered since their latest
        listing is trusted (`WatchCache.confirmed`), the rest is read by GET: at a restart,
        what only our priming listed, which kopf's listing has not confirmed yet or which was
        deleted in between."""
        key = (kind, namespace, name)
        known, hit = self.cache.lookup(key)
        # A version other than the one we write may differ in shape: GET ours instead.
        usable = known and (hit is None or hit.get("apiVersion") == api_version)
        if usable and (not fresh or hit is None or self.cache.confirmed(key)):
            if self.on_read is not None:
                self.on_read("cache", kind)
            return hit
        if self.on_read is not None:
            self.on_read("api", kind)
        return self.kube.get(ref_of(kind, api_version, namespace, name))

    def _observe_all(
        self, wanted: list[tuple[str, str, str, str]], *, fresh: bool, owner: str = ""
    ) -> list[Any]:
        """Every child; the GETs of the cache misses run concurrently (one round trip of
        latency instead of one per child), in `owner`'s turn."""
        return self._map(owner, lambda w: self._observe(*w, fresh=fresh), wanted)

    def prime_cache(self, namespaces: Sequence[str]) -> None:
        """List the managed children of every installed delegate kind (in `namespaces`, or all
        when empty) into the cache, and trust its misses where they were listed. Called once at
        start-up, before kopf's watches start; a kind that cannot be listed in a namespace
        (RBAC: e.g. the chart grants only KafkaTopics in a Kafka namespace; an API error) stays
        read by GET there."""
        try:
            discovered = self.discovery.get()
        except KubeError as exc:
            log.warning("child cache not primed, children are read by GET: %s", exc)
            return
        scopes: list[str | None] = list(namespaces) or [None]
        for delegate in delegates.ALL:
            if not delegate.served(discovered.installed):
                continue
            version = (
                delegate.versions[0]
                if delegate.builtin
                else discovered.served[delegate.crd_name][0]
            )
            listed: list[str | None] = []
            for ns in scopes:
                try:
                    # In pages, each kept as compact text before the next is read: 11,000
                    # children parsed at once made a restart's memory peak 170 MiB higher.
                    for items in self.kube.pages(
                        delegate.group,
                        version,
                        delegate.plural,
                        namespace=ns,
                        # This shard's children only, as its watches see them: a cache that
                        # held another shard's children would never see them change.
                        label_selector=self.shard.child_selector,
                        page_size=PRIME_PAGE,
                    ):
                        for item in items:  # items may lack kind and apiVersion (built-ins)
                            self.cache.seen(
                                None,
                                {
                                    **item,
                                    "kind": delegate.kind,
                                    "apiVersion": delegate.api_version(version),
                                },
                            )
                except KubeError as exc:
                    log.info("%s in %s read by GET: %s", delegate.kind, ns or "all namespaces", exc)
                    continue
                listed.append(ns)
            if listed == [None]:
                self.cache.trust(delegate.kind, None)
            elif listed:
                self.cache.trust(delegate.kind, [ns for ns in listed if ns is not None])

    def _get_related(
        self, ref: Ref, api_version: str, installed: Collection[str]
    ) -> dict[str, Any] | None:
        """One object a child's health depends on, by GET (None: absent, or its kind is not
        served). A read error is not absence: it fails the reconcile, which is retried."""
        if not delegates.BY_KIND[ref[0]].served(installed):
            return None
        return self.kube.get(ref_of(ref[0], api_version, ref[1], ref[2]))

    def _read(
        self, items: Sequence[InventoryItem], fresh: bool, owner: str
    ) -> dict[Key, dict[str, Any]]:
        """The objects of `items` that exist, by key (`_observe_all`)."""
        got = self._observe_all(
            [(i.kind, i.api_version, i.namespace, i.name) for i in items], fresh=fresh, owner=owner
        )
        return {i.key: b for i, b in zip(items, got, strict=True) if b is not None}
