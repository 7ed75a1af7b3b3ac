"""One level-based reconcile of one Application (DESIGN §4): observe -> decide -> act -> report.

The shell half: it reads the cluster (observe), hands what it read to the pure `core.decide`
(what to apply, prune, hold; the verdicts), writes what it was told (act), and builds the status
and the `Outcome` the worker turns into Events and metrics (report).

Synchronous on purpose: kopf runs it in a worker thread, tests call it directly. It never
raises for bad input (an invalid spec becomes status); it raises `KubeError`s that are worth a
retry, so the caller can back off.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from federator.core import compiler, crdcheck, decide, delegates, health, model, naming, sharding
from federator.core.delegates.base import Ref
from federator.core.inventory import items as inventory_items
from federator.core.inventory import summarised
from federator.core.keys import Key
from federator.core.plan import (
    InventoryItem,
    Observed,
    contains,
    deletion_plan,
    not_ours,
)
from federator.core.problems import InvalidSpec
from federator.core.render import Child
from federator.core.settings import Settings
from federator.kube import forbidden
from federator.kube.client import (
    FIELD_MANAGER,
    Conflict,
    Forbidden,
    Invalid,
    Kube,
    KubeError,
    NotFound,
    ResourceRef,
    split_api_version,
)
from federator.kube.crdschemas import CrdSchemaCache
from federator.kube.discovery import Discovered, DiscoveryCache
from federator.operator.fairness import FairPool
from federator.operator.status import build_status, child_entry
from federator.operator.watch_cache import WatchCache

log = logging.getLogger("federator.reconcile")

REASON_APPLY_FAILED = "ApplyFailed"
REASON_APPLY_FORBIDDEN = "ApplyForbidden"
REASON_KIND_NOT_SERVED = "KindNotServed"
REASON_APPLY_RETRYING = "ApplyRetrying"
REASON_PRUNE_FAILED = "PruneFailed"


def apply_failure(
    error: KubeError, *, acting_as: str | None = None, account_missing: bool = False
) -> health.ChildHealth:
    """What a failed write of a child means for its health. Every failure reaches the status:
    a transient one (5xx, 429, a conflict, a timeout) as Progressing/ApplyRetrying, retried
    soon; a refusal (4xx) as Degraded with the API server's own words, retried when something
    changes or at the resync (`Outcome.retry` tells the worker which). A 403 names who lacked
    which permission, as `kubectl auth can-i` asks it (`acting_as`: the ServiceAccount user
    the write was made as; `account_missing`: that account does not exist)."""
    if error.retryable:
        return health.ChildHealth(
            health=health.Health.PROGRESSING, reason=REASON_APPLY_RETRYING, message=str(error)
        )
    if isinstance(error, NotFound):
        reason, hint = (
            REASON_KIND_NOT_SERVED,
            (
                "the API server does not serve this kind at this version; check the delegate's CRD "
                "(and the Kafka cluster's topicApiVersion)"
            ),
        )
    elif isinstance(error, Forbidden):
        return health.ChildHealth(
            health=health.Health.DEGRADED,
            reason=REASON_APPLY_FORBIDDEN,
            message=forbidden.explain(
                str(error), error.denial, acting_as=acting_as, account_missing=account_missing
            ),
        )
    else:
        reason, hint = REASON_APPLY_FAILED, ""
    return health.ChildHealth(
        health=health.Health.DEGRADED,
        reason=reason,
        message=f"{error}; {hint}" if hint else str(error),
    )


class DeletionIncomplete(Exception):
    """Finalization tried every deletion and some failed: `left` says which and why;
    `retryable` whether trying again may help (a transient failure among them)."""

    def __init__(self, deleted: tuple[str, ...], left: tuple[tuple[str, KubeError], ...]) -> None:
        self.deleted = deleted
        self.left = left
        self.retryable = any(error.retryable for _, error in left)
        details = "; ".join(f"{name}: {error}" for name, error in left[:5])
        more = f"; and {len(left) - 5} more" if len(left) > 5 else ""
        super().__init__(f"{len(left)} object(s) not deleted: {details}{more}")


def _version(body: Mapping[str, Any]) -> str:
    return str((body.get("metadata") or {}).get("resourceVersion") or "")


_UNASSESSED = health.ChildHealth(health=health.Health.UNKNOWN, reason="Listed")
"""The health of an object found by listing, only ever pruned or deleted (never reported)."""

Account = tuple[str, str]
"""(namespace, name) of the ServiceAccount whose rights write an application's children in its
own namespace (impersonated)."""
COMPILED_CACHE = 256
JUDGED_CACHE = 4096
"""Verdicts of the installed-CRD check kept (by child, spec hash and CRD resourceVersion): a
reconcile of an unchanged application validates nothing again."""
CRD_KINDS = {d.kind: d.crd_name for d in delegates.ALL if not d.builtin}
"""Compiled applications kept (by uid, generation, spec and served versions): a child event
re-reads the application, whose spec has not changed, so it is not compiled again."""
OBSERVERS = 8
"""Concurrent GETs and applies of children (a shared pool, so many applications reconciling at
once never open more connections than this), served to the applications in turn."""
CHUNK = 4 * OBSERVERS
"""Children a reconcile works through before it lets a waiting application's reconcile go first
(`Reconciler.pace`): a few round trips, so a small application waits that long, not for
thousands of another's children."""
T = TypeVar("T")
R = TypeVar("R")


def ref_of(kind: str, api_version: str, namespace: str, name: str) -> ResourceRef:
    group, version = split_api_version(api_version)
    return ResourceRef(
        group=group,
        version=version,
        plural=delegates.BY_KIND[kind].plural,
        namespace=namespace,
        name=name,
    )


def acting_as(namespace: str, account: Account | None) -> str | None:
    """The user a child in `namespace` is written as: the application's ServiceAccount in the
    application's own namespace; None (federator's own identity) elsewhere, i.e. KafkaTopics in
    a Kafka cluster's namespace, which the naming policy and ownership rules govern, and when
    no ServiceAccount is configured."""
    if account is None or namespace != account[0]:
        return None
    return forbidden.service_account_user(*account)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


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


@dataclass
class Reconciler:
    kube: Kube
    settings: Settings
    discovery: DiscoveryCache
    clock: Callable[[], str] = _now
    _marks: dict[Key, str] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    # resourceVersions of our last write: one per apply, two per create (create, then claim)
    _written: dict[Key, tuple[str, ...]] = field(default_factory=dict)
    _compiled: OrderedDict[tuple[Any, ...], compiler.Compiled] = field(default_factory=OrderedDict)
    cache: WatchCache = field(default_factory=WatchCache)
    on_read: Callable[[str, str], None] | None = None  # (source cache|api, kind), for metrics
    _pool: FairPool = field(default_factory=lambda: FairPool(OBSERVERS, name="observe"))
    pace: Callable[[], None] | None = None
    """Called between chunks of a large reconcile: the worker passes its turn there when
    another application waits (`fairness.Turns.pass_turn`)."""
    schemas: CrdSchemaCache | None = None
    """The installed delegate CRDs' schemas, to check each child against before it is
    applied (None: not checked; the API server's answer alone decides)."""
    _judged: OrderedDict[tuple[Any, ...], health.ChildHealth | None] = field(
        default_factory=OrderedDict
    )

    @property
    def shard(self) -> sharding.Shard:
        """The Applications (and children) this operator process serves."""
        return sharding.Shard(self.settings.sharding.shard)

    def _map(self, owner: str, fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
        """`fn` over `items` on the shared pool in `owner`'s turn, CHUNK at a time, pacing
        between chunks: one application's thousands of children are interleaved with the
        others' few instead of queued before them."""
        out: list[R] = []
        for start in range(0, len(items), CHUNK):
            if start and self.pace is not None:
                self.pace()
            out += self._pool.map(owner, fn, items[start : start + CHUNK])
        return out

    # -- observation

    def _observe(
        self, kind: str, api_version: str, namespace: str, name: str, *, fresh: bool = False
    ) -> Any:
        """A child as last streamed to us, else (a cache miss, or `fresh`) by GET."""
        if not fresh:
            known, hit = self.cache.lookup((kind, namespace, name))
            # A version other than the one we write may differ in shape: GET ours instead.
            if known and (hit is None or hit.get("apiVersion") == api_version):
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
                    items = self.kube.list(
                        delegate.group,
                        version,
                        delegate.plural,
                        namespace=ns,
                        # This shard's children only, as its watches see them: a cache that
                        # held another shard's children would never see them change.
                        label_selector=self.shard.child_selector,
                    )
                except KubeError as exc:
                    log.info("%s in %s read by GET: %s", delegate.kind, ns or "all namespaces", exc)
                    continue
                listed.append(ns)
                for item in items:  # list items may lack kind and apiVersion (built-in kinds)
                    self.cache.seen(
                        None,
                        {
                            **item,
                            "kind": delegate.kind,
                            "apiVersion": delegate.api_version(version),
                        },
                    )
            if listed == [None]:
                self.cache.trust(delegate.kind, None)
            elif listed:
                self.cache.trust(delegate.kind, [ns for ns in listed if ns is not None])

    def own_write(self, kind: str, namespace: str, name: str, resource_version: str) -> bool:
        """Whether this exact version of a child is one our own last write returned: its
        watch event carries nothing the reconcile that wrote it did not already see."""
        with self._lock:
            return bool(resource_version) and resource_version in self._written.get(
                (kind, namespace, name), ()
            )

    def _remember(self, key: Key, *bodies: Mapping[str, Any] | None) -> None:
        """The versions one write produced (a create's two), or forget them (None)."""
        versions = tuple(
            str(v)
            for b in bodies
            if (v := ((b or {}).get("metadata") or {}).get("resourceVersion"))
        )
        with self._lock:
            if versions:
                self._written[key] = versions
            else:
                self._written.pop(key, None)

    def _marks_for(self, keys: Iterable[Key]) -> dict[Key, str]:
        """The apply marks the verdicts of these children read (`decide.verdict`): what
        `_mark_before_apply` recorded at their last spec-changing apply."""
        with self._lock:
            return {key: mark for key in keys if (mark := self._marks.get(key)) is not None}

    def _mark_before_apply(self, child: Child, live: Mapping[str, Any] | None) -> None:
        """Remember the delegate's run identity when a spec change is applied, so the child
        reads Progressing until the delegate has acted on the new spec (DESIGN §5). An apply
        that changes no spec (the same spec-hash, no drift: a child moving to another shard
        gets its new shard label) is not one: the delegate has nothing to act on."""
        if live is None or (
            Observed.from_body(live, _UNASSESSED).spec_hash == child.spec_hash
            and contains(child.manifest.get("spec", {}), live.get("spec"))
        ):
            return
        token = delegates.BY_KIND[child.kind].run_token
        if token is None:
            return
        with self._lock:
            self._marks[child.key] = token(live.get("status") or {})

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
            live=self._read(decide.to_read(compiled.children, inventory, installed), fresh, owner),
            found=self._find_owned(owner, installed, discovered.served) if listing else [],
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

    def _refused(
        self, children: Sequence[Child], discovered: Discovered
    ) -> dict[Key, health.ChildHealth]:
        """The children the installed CRDs refuse, by key. No API call of its own per
        reconcile: the schemas are cached by resourceVersion (`CrdSchemaCache`), and each
        child's verdict by its spec hash and that resourceVersion."""
        restrictions = crdcheck.declared(self.settings)
        if self.schemas is None and not restrictions:
            return {}
        installed = (
            self.schemas.get(n for n in CRD_KINDS.values() if n in discovered.served)
            if self.schemas is not None
            else {}
        )
        out: dict[Key, health.ChildHealth] = {}
        for child in children:
            crd = installed.get(CRD_KINDS.get(child.kind, ""))
            if crd is None and not restrictions:
                continue
            version = crd.resource_version if crd is not None else ""
            key = (
                child.key,
                child.api_version,
                child.spec_hash,
                CRD_KINDS.get(child.kind),
                version,
            )
            with self._lock:
                known = key in self._judged
                verdict = self._judged.get(key)
            if not known:
                try:
                    verdict = crdcheck.verdict(child, crd, restrictions)
                except Exception as exc:  # a schema federator cannot use: not checked
                    log.warning("%s not checked against its CRD: %s", child.key, exc)
                    verdict = None
                with self._lock:
                    self._judged[key] = verdict
                    while len(self._judged) > JUDGED_CACHE:
                        self._judged.popitem(last=False)
            if verdict is not None:
                out[child.key] = verdict
        return out

    def _prune(
        self,
        items: Sequence[InventoryItem],
        uids: Mapping[Key, str | None],
        account: Account | None = None,
    ) -> tuple[list[str], list[tuple[InventoryItem, health.ChildHealth]]]:
        """Delete what left the spec, each with its UID as a precondition (as the application's
        ServiceAccount in its namespace). A failed delete is reported (PruneFailed) and kept in
        the inventory, so it is tried again."""
        pruned: list[str] = []
        errors: list[tuple[InventoryItem, KubeError]] = []
        for item in items:
            self._remember(item.key, None)
            try:
                if self._writer(item.namespace, account).delete(
                    ref_of(item.kind, item.api_version, item.namespace, item.name),
                    item.kind,
                    uid=uids.get(item.key),
                ):
                    pruned.append(f"{item.kind}/{item.name}")
            except KubeError as exc:
                errors.append((item, exc))
        missing = self._account_missing(account, [e for _, e in errors])
        unpruned: list[tuple[InventoryItem, health.ChildHealth]] = []
        for item, error in errors:
            failure = apply_failure(
                error, acting_as=acting_as(item.namespace, account), account_missing=missing
            )
            verdict = health.ChildHealth(
                health=failure.health, reason=REASON_PRUNE_FAILED, message=failure.message
            )
            unpruned.append((item, verdict))
        return pruned, unpruned

    def _account(self, app: model.Application) -> Account | None:
        """The ServiceAccount whose rights write this application's children in its namespace:
        the spec's, else the settings' default; None: federator's own identity (the lock-down
        makes that case invalid before anything is written)."""
        name = self.settings.impersonation.service_account(app.service_account)
        return (app.namespace, name) if name else None

    def _writer(self, namespace: str, account: Account | None) -> Kube:
        """The client that writes (creates, applies, deletes) a child in `namespace`: reads,
        the watch cache and federator's bookkeeping always use its own identity."""
        if account is None or namespace != account[0]:
            return self.kube
        return self.kube.as_service_account(*account)

    def _account_missing(self, account: Account | None, errors: Sequence[KubeError]) -> bool:
        """Whether a refusal of the account's writes is because the account does not exist
        (the API server impersonates a missing account as readily as any other, and then
        refuses everything it asks): looked up once, only when a write was refused."""
        if account is None:
            return False
        user = forbidden.service_account_user(*account)
        refused = [
            e
            for e in errors
            if isinstance(e, Forbidden) and (e.denial is None or e.denial.user == user)
        ]
        return bool(refused) and self.kube.service_account_exists(*account) is False

    def _owned_scopes(self, served: Mapping[str, Sequence[str]], installed: Any) -> Any:
        """(delegate, version, namespace) to list for an application's children: its own
        namespace for every kind, every Kafka cluster's namespace for topics."""
        for delegate in delegates.ALL:
            if not delegate.served(installed):
                continue
            version = delegate.versions[0] if delegate.builtin else served[delegate.crd_name][0]
            if delegate.kind == delegates.KAFKA_TOPIC.kind:
                for namespace in sorted({c.namespace for c in self.settings.kafka_clusters}):
                    yield delegate, version, namespace
            else:
                yield delegate, version, None

    def _find_owned(
        self,
        owner: str,
        installed: Any,
        served: Mapping[str, Sequence[str]],
        *,
        strict: bool = False,
    ) -> list[Observed]:
        """Every object in the cluster that carries this application's labels and owner
        annotation, whether or not the inventory names it (a crash between an apply and the
        status write leaves such children out of status.children). A namespace that cannot be
        listed is logged and skipped, or raised with `strict` (finalization must not forget
        anything it could delete)."""
        # Not filtered by shard: the owner annotation names one application, which one shard
        # serves; children it left labelled for its previous shard are still its own.
        namespace, name = owner.split("/", 1)
        selector = (
            f"{naming.MANAGED_SELECTOR},{naming.APPLICATION_LABEL}={naming.label_value(name)}"
        )
        found: list[Observed] = []
        for delegate, version, scope in self._owned_scopes(served, installed):
            try:
                items = self.kube.list(
                    delegate.group,
                    version,
                    delegate.plural,
                    namespace=scope or namespace,
                    label_selector=selector,
                )
            except KubeError as exc:
                if strict and exc.retryable:
                    raise  # try again later rather than forget a child
                log.warning("%s: cannot list %s: %s", owner, delegate.plural, exc)
                continue
            for item in items:
                body = {**item, "kind": delegate.kind, "apiVersion": delegate.api_version(version)}
                annotations = (item.get("metadata") or {}).get("annotations") or {}
                if annotations.get(naming.APPLICATION_ANNOTATION) == owner:
                    found.append(Observed.from_body(body, _UNASSESSED))
        return found

    def _apply(
        self,
        children: tuple[Child, ...],
        live: dict[Key, dict[str, Any]],
        owner: str = "",
        account: Account | None = None,
    ) -> tuple[list[str], dict[Key, health.ChildHealth]]:
        """Write one wave's children, concurrently (they do not depend on each other; the plan
        only puts children whose topics are ready in it). A refused child is Degraded and the
        rest go on; any other error is raised once all have been tried.

        A child believed absent is created (a create fails on any object of that name, so
        federator never writes onto one it did not make, however stale its view); an existing
        one is server-side applied with its UID as a precondition, its fields claimed from a
        create first. Children in the
        application's namespace are written as its ServiceAccount (`account`), when it has
        one; a read of what holds a name stays federator's own."""
        for child in children:
            self._mark_before_apply(child, live.get(child.key))

        def one(child: Child) -> dict[str, Any] | KubeError | health.ChildHealth:
            ref = ref_of(child.kind, child.api_version, child.namespace, child.name)
            current = live.get(child.key)
            try:
                writer = self._writer(child.namespace, account)
                if current is None:
                    try:
                        # One write: the create's `Update` entry of managedFields is claimed
                        # for the apply manager just before the next apply of this child
                        # (`_apply_existing`), the only write whose field pruning needs it.
                        created = writer.create(ref, child.manifest, child.kind)
                        self._remember(child.key, created)
                        return created
                    except Conflict:  # AlreadyExists: look at it, as the plan would have
                        current = self.kube.get(ref)
                        if current is None:
                            raise
                        seen = Observed.from_body(current, _UNASSESSED)
                        if not seen.owned_by(owner):
                            refusal = not_ours(child, seen, owner)
                            if refusal is not None:
                                return refusal
                return self._apply_existing(writer, ref, child, current)
            except KubeError as exc:
                return exc

        results = self._map(owner, one, children)
        applied: list[str] = []
        failed: dict[Key, health.ChildHealth] = {}
        missing = self._account_missing(account, [r for r in results if isinstance(r, KubeError)])
        for child, got in zip(children, results, strict=True):
            if isinstance(got, health.ChildHealth):
                failed[child.key] = got
            elif isinstance(got, KubeError):
                failed[child.key] = apply_failure(
                    got, acting_as=acting_as(child.namespace, account), account_missing=missing
                )
            else:
                live[child.key] = got
                if not self.own_write(child.kind, child.namespace, child.name, _version(got)):
                    self._remember(child.key, got)  # (a create remembered both its versions)
                self.cache.wrote(child.key, got)
                applied.append(f"{child.kind}/{child.name}")
        if any(isinstance(e, NotFound) for e in results):
            # A delegate's CRD (or the version written) went away since discovery: look again.
            self.discovery.invalidate()
        if self.schemas is not None and any(isinstance(e, Invalid) for e in results):
            # Refused by the API server although our check passed: the CRD may have changed.
            self.schemas.invalidate()
        return applied, failed

    def _apply_existing(
        self, writer: Kube, ref: ResourceRef, child: Child, current: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Server-side apply onto the object federator looked at, never a successor: its UID
        is a precondition (a mismatch is refused, 422). Fields a create left under an
        `Update` entry (a crash between create and claim) are claimed first."""
        meta = current.get("metadata") or {}
        if any(
            m.get("manager") == FIELD_MANAGER and m.get("operation") == "Update"
            for m in meta.get("managedFields") or []
        ):
            writer.claim_fields(ref, current, child.kind)
        manifest: Mapping[str, Any] = child.manifest
        if meta.get("uid"):
            manifest = {**manifest, "metadata": {**manifest["metadata"], "uid": meta["uid"]}}
        return writer.apply(ref, manifest, child.kind)

    def _compile(self, body: Mapping[str, Any]) -> compiler.Compiled:
        """`compile_application`, memoised on everything it reads: the identity, generation
        and spec of the application, and the served delegate versions (the settings are fixed
        for the life of the reconciler). Raises `InvalidSpec` (never cached)."""
        served = self._served(body)
        meta = body.get("metadata") or {}
        key = (
            body.get("apiVersion"),
            body.get("kind"),
            meta.get("namespace"),
            meta.get("name"),
            meta.get("uid"),
            meta.get("generation"),
            sharding.shard_of(body),  # the children's shard label
            json.dumps(body.get("spec"), sort_keys=True, default=str),
            served,
        )
        with self._lock:
            hit = self._compiled.get(key)
            if hit is not None:
                self._compiled.move_to_end(key)
                return hit
        compiled = compiler.compile_application(body, self.settings, served=served)
        with self._lock:
            self._compiled[key] = compiled
            while len(self._compiled) > COMPILED_CACHE:
                self._compiled.popitem(last=False)
        return compiled

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
        unlisted = [i for i in decide.to_read((), inventory, installed) if i.key not in listed]
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

    def finalize(self, body: Mapping[str, Any]) -> tuple[str, ...]:
        """On deletion: delete Delete-policy topics and cross-namespace children (the garbage
        collector handles owned same-namespace children; Retain topics stay). The candidates
        are the inventory and every object found in the cluster with this application's
        owner annotation (a crash may have kept one out of the inventory); only objects that
        carry that annotation now are deleted, each with its UID as a precondition.

        A deletion in the application's namespace (a Delete-policy topic of a Kafka cluster
        that lives there) is made as its ServiceAccount, like every write there; if that
        account may not delete, the object is left in place with a Warning Event naming the
        missing permission: neither deleted with federator's own rights (which the author may
        not have) nor holding the Application's deletion forever.

        Bounded: what the listing found is not read again, the rest is read and deleted
        concurrently. Every deletion is tried; then `DeletionIncomplete` names the failures
        (the handler decides whether they hold the deletion: `handlers.finalize_delay`)."""
        meta = body.get("metadata") or {}
        spec = body.get("spec") or {}
        owner = f"{meta.get('namespace')}/{meta.get('name')}"
        policy = (
            model.DeletionPolicy.DELETE
            if spec.get("deletionPolicy") == "Delete"
            else model.DeletionPolicy.RETAIN
        )
        inventory = inventory_items(body.get("status"))
        discovered = self.discovery.get()
        found = self._find_owned(owner, discovered.installed, discovered.served, strict=True)
        observed: dict[Key, Observed] = {}
        listed = {f.key for f in found}
        unlisted = [
            i
            for i in inventory
            if i.key not in listed and delegates.BY_KIND[i.kind].served(discovered.installed)
        ]
        # Bounded work: only what the listing did not show is read, concurrently.
        for item, live in zip(
            unlisted,
            self._map(
                owner,
                lambda i: self.kube.get(ref_of(i.kind, i.api_version, i.namespace, i.name)),
                unlisted,
            ),
            strict=True,
        ):
            if live is not None:
                observed[item.key] = Observed.from_body(live, _UNASSESSED)
        with self._lock:  # nothing of a deleted application is remembered
            for key in {*(i.key for i in inventory), *(f.key for f in found)}:
                self._written.pop(key, None)
                self._marks.pop(key, None)
        uids = {f.key: f.uid for f in found} | {k: o.uid for k, o in observed.items()}
        account = self._account(model.from_body(body))
        doomed = deletion_plan(
            inventory,
            app_namespace=str(meta.get("namespace")),
            deletion_policy=policy,
            owner=owner,
            observed=observed,
            found=found,
        )

        def delete(item: InventoryItem) -> bool | KubeError:
            user = acting_as(item.namespace, account)
            try:
                return self._writer(item.namespace, account).delete(
                    ref_of(item.kind, item.api_version, item.namespace, item.name),
                    item.kind,
                    uid=uids.get(item.key),
                )
            except Forbidden as exc:
                if user is None:
                    return exc  # federator's own rights: held, retried until granted
                message = (
                    f"{item.kind} {item.namespace}/{item.name} is left in place: "
                    + forbidden.explain(
                        str(exc),
                        exc.denial,
                        acting_as=user,
                        account_missing=self._account_missing(account, [exc]),
                    )
                )
                log.warning("%s: %s", owner, message)
                self.kube.event(body, type_="Warning", reason="DeleteForbidden", message=message)
                return False
            except KubeError as exc:
                return exc

        deleted: list[str] = []
        left: list[tuple[str, KubeError]] = []
        for item, got in zip(doomed, self._map(owner, delete, doomed), strict=True):
            if isinstance(got, KubeError):
                left.append((f"{item.kind}/{item.name}", got))
            elif got:
                deleted.append(f"{item.kind}/{item.name}")
        if left:  # every deletion was tried; say which failed, and whether retrying may help
            raise DeletionIncomplete(tuple(deleted), tuple(left))
        return tuple(deleted)
