"""One level-based reconcile of one Application (DESIGN §4): observe -> decide -> act -> report.

The shell half: it reads the cluster (observe), hands what it read to the pure `core.decide`
(what to apply, prune, hold; the verdicts), writes what it was told (act), and builds the status
and the `Outcome` the worker turns into Events and metrics (report).

Synchronous on purpose: kopf runs it in a worker thread, tests call it directly. It never
raises for bad input (an invalid spec becomes status); it raises `KubeError`s that are worth a
retry, so the caller can back off.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from federator.core import compiler, decide, delegates, health, model, sharding
from federator.core.delegates.base import Ref
from federator.core.inventory import items as inventory_items
from federator.core.inventory import summarised
from federator.core.keys import Key
from federator.core.plan import InventoryItem, Observed
from federator.core.problems import InvalidSpec
from federator.kube.discovery import Discovered
from federator.operator.apply import Applying, apply_failure
from federator.operator.compile_cache import digest
from federator.operator.finalizer import DeletionIncomplete, Finalizing
from federator.operator.observe import Observing
from federator.operator.refusals import Refusing
from federator.operator.state import CHUNK, OBSERVERS, ref_of
from federator.operator.status import build_status, child_entry

__all__ = [
    "CHUNK",
    "OBSERVERS",
    "DeletionIncomplete",
    "Observation",
    "Outcome",
    "Reconciler",
    "apply_failure",
    "ref_of",
]


@dataclass(frozen=True, kw_only=True)
class Outcome:
    status: dict[str, Any]
    result: str  # success | invalid
    app_health: health.AppHealth
    reports: tuple[health.ChildReport, ...] = ()
    applied: tuple[str, ...] = ()
    pruned: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()
    retry: bool = False
    """A transient failure (of an apply or a prune) that should be retried soon, with backoff;
    the status was still written."""
    failures: tuple[str, ...] = ()
    """Writes that failed, for an Event: `Kind/name: message`."""
    refused: tuple[str, ...] = ()
    """Children not written because the installed CRD refuses them, for an Event (each
    message names the child)."""


@dataclass(frozen=True, kw_only=True)
class Observation:
    """What one reconcile read (step 1), for `decide`."""

    discovered: Discovered
    live: dict[Key, dict[str, Any]]
    """The children that exist, by key; `_apply` adds what its writes return."""
    found: list[Observed]
    """This application's objects listed in the cluster (empty when it did not list)."""
    refused: dict[Key, health.ChildHealth]
    """The children the installed CRDs refuse."""
    external: list[tuple[InventoryItem, dict[str, Any] | None]]
    """The KafkaTopic of each `managed: false` topic, None when there is none."""
    related: dict[Ref, dict[str, Any] | None]
    """The objects the children's health depends on (`decide.related_refs`), None: absent."""


class Reconciler(Observing, Refusing, Applying, Finalizing):
    """Reconciles Applications and finalizes their deletion: the one entry point the operator
    and the tests use. Its fields are `state.ReconcilerState`'s; the jobs it is made of live in
    modules of their own (`observe`, `refusals`, `apply`, `owned`, `impersonation`,
    `finalizer`), this one keeps the reconcile itself."""

    # -- the reconcile: observe -> decide -> act -> report

    def reconcile(self, body: Mapping[str, Any], *, fresh: bool = False) -> Outcome:
        """`fresh`: GET every child instead of trusting the watch cache (the resync)."""
        meta = body.get("metadata") or {}
        owner = f"{meta.get('namespace')}/{meta.get('name')}"
        previous = body.get("status") or {}
        inventory = inventory_items(previous)
        generation = int(meta.get("generation") or 0)
        try:
            compiled = self._compile(body)
        except InvalidSpec as exc:
            return self._invalid(body, previous, inventory, exc, generation, fresh=fresh)
        app = compiled.app
        # 1. observe (I/O)
        seen = self._observe_app(compiled, inventory, previous, generation, owner, fresh=fresh)
        # 2. decide (pure)
        decision = decide.decide(
            compiled,
            seen.live,
            inventory,
            owner=owner,
            installed=seen.discovered.installed,
            now=self.clock(),
            found=seen.found,
            marks=self._marks_for(seen.live),
            refused=seen.refused,
            related=seen.related,
            scope=self.scope,
        )
        # 3. act (I/O): `live` takes what the writes returned
        account = self._account(app)
        applied, failed = self._apply(decision.apply, seen.live, owner, account)
        pruned, unpruned = self._prune(decision.prune, decision.uids, account)
        # 4. report (pure): the verdicts after the writes; the status
        report = decide.report(
            compiled,
            decision,
            seen.live,
            now=self.clock(),
            failed=failed,
            unpruned=unpruned,
            external=seen.external,
            marks=self._marks_for(c.key for c in compiled.children),
            related=seen.related,
        )
        return Outcome(
            status=self._status(previous, report, generation),
            result="success",
            app_health=report.app_health,
            reports=report.reports,
            applied=tuple(applied),
            pruned=tuple(pruned),
            retry=report.retry,
            failures=report.failures,
            refused=report.refused,
        )

    def _observe_app(
        self,
        compiled: compiler.Compiled,
        inventory: Sequence[InventoryItem],
        previous: Mapping[str, Any],
        generation: int,
        owner: str,
        *,
        fresh: bool,
    ) -> Observation:
        """What a reconcile reads: the served kinds, the desired and inventoried children
        (watch cache, else GET), this application's objects found by listing (when
        `decide.lists_owned`), what the installed CRDs refuse, the unmanaged topics."""
        discovered = self.discovery.get()
        installed = discovered.installed
        self.cache.keep_kinds(d.kind for d in delegates.ALL if d.served(installed))
        listing = decide.lists_owned(previous, generation, fresh=fresh)
        cluster = self.settings.kafka_cluster(compiled.app.kafka_cluster)
        return Observation(
            discovered=discovered,
            live=self._read(
                decide.to_read(compiled.children, inventory, installed, self.scope), fresh, owner
            ),
            found=self._owned(owner, installed, discovered.served, fresh=fresh) if listing else [],
            refused=self._refused(compiled.children, discovered),
            external=[
                (i, self.kube.get(ref_of(i.kind, i.api_version, i.namespace, i.name)))
                for i in decide.unmanaged_topics(compiled, discovered.served, cluster)
            ],
            related={
                ref: self._get_related(ref, api_version, installed)
                for ref, api_version in decide.related_refs(compiled.children)
            },
        )

    def _status(
        self, previous: Mapping[str, Any], report: decide.Report, generation: int
    ) -> dict[str, Any]:
        """The status a report writes (conditions keep their lastTransitionTime where they did
        not change)."""
        entries = [
            child_entry(e.item, e.health, e.spec_hash, owned=e.owned) for e in report.entries
        ]
        return build_status(
            previous, report.app_health, entries, generation=generation, now=self.clock()
        )

    def _compile(self, body: Mapping[str, Any]) -> compiler.Compiled:
        """`compile_application`, memoised (`compile_cache`) on everything it reads: the
        identity, generation and spec of the application, its shard, and the served delegate
        versions (the settings are fixed for the life of the reconciler). Raises `InvalidSpec`
        (never cached)."""
        served = self._served(body)
        meta = body.get("metadata") or {}
        key = (
            digest(
                [
                    body.get("apiVersion"),
                    body.get("kind"),
                    meta.get("namespace"),
                    meta.get("name"),
                    meta.get("uid"),
                    meta.get("generation"),
                    sharding.shard_of(body),  # the children's shard label
                    body.get("spec"),
                ]
            ),
            served,
        )
        return self.compiled.get(
            key,
            lambda: compiler.compile_application(body, self.settings, served=served),
            owner=f"{meta.get('namespace')}/{meta.get('name')}",
        )

    def _served(self, body: Mapping[str, Any]) -> Any:
        app = model.from_body(body)
        return self.discovery.get().for_cluster(self.settings.kafka_cluster(app.kafka_cluster))

    def _invalid(
        self,
        body: Mapping[str, Any],
        previous: Mapping[str, Any],
        inventory: list[InventoryItem],
        exc: InvalidSpec,
        generation: int,
        *,
        fresh: bool,
    ) -> Outcome:
        """Invalid spec: nothing applied, nothing deleted; the previous children keep running
        and their health is still reported (all of them: a summarised inventory lists only
        some, so they are listed in the cluster, and the status stays summarised)."""
        discovered = self.discovery.get()
        installed = discovered.installed
        meta = body.get("metadata") or {}
        owner = f"{meta.get('namespace')}/{meta.get('name')}"
        listed: dict[Key, Mapping[str, Any]] = {}
        if summarised(previous):
            found = self._find_owned(owner, installed, discovered.served)
            listed = {f.key: f.body for f in found}
            known = {i.key for i in inventory}
            inventory = inventory + [
                InventoryItem.from_body(f.body) for f in found if f.key not in known
            ]
        unlisted = [
            i for i in decide.to_read((), inventory, installed, self.scope) if i.key not in listed
        ]
        live = {**self._read(unlisted, fresh, owner), **listed}
        problems = tuple(str(p) for p in exc.problems)
        report = decide.report_invalid(
            inventory,
            live,
            installed=installed,
            previous=previous,
            problems=problems,
            suspended=(body.get("spec") or {}).get("suspend") is True,
            now=self.clock(),
        )
        return Outcome(
            status=self._status(previous, report, generation),
            result="invalid",
            app_health=report.app_health,
            reports=report.reports,
            problems=problems,
        )
