"""What an application owns in the cluster: finding its children by label and owner annotation,
and pruning those that left its spec."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from federator.core import delegates, health, naming
from federator.core.keys import Key
from federator.core.plan import InventoryItem, Observed
from federator.kube.client import KubeError
from federator.operator.apply import REASON_PRUNE_FAILED, apply_failure
from federator.operator.impersonation import Account, Impersonating, acting_as
from federator.operator.state import UNASSESSED, ref_of

log = logging.getLogger("federator.reconcile")


class Owning(Impersonating):
    """Listing and pruning an application's children."""

    def _owned_scopes(self, served: Mapping[str, Sequence[str]], installed: Any) -> Any:
        """(delegate, version, namespace) to list for an application's children: its own
        namespace for every kind, every Kafka cluster's namespace for topics, among the
        namespaces this operator serves."""
        for delegate in delegates.ALL:
            if not delegate.served(installed):
                continue
            version = delegate.versions[0] if delegate.builtin else served[delegate.crd_name][0]
            if delegate.kind == delegates.KAFKA_TOPIC.kind:
                for namespace in sorted({c.namespace for c in self.settings.kafka_clusters}):
                    if self.scope.serves(namespace):
                        yield delegate, version, namespace
            else:
                yield delegate, version, None

    def _owned(
        self, owner: str, installed: Any, served: Mapping[str, Sequence[str]], *, fresh: bool
    ) -> list[Observed]:
        """`_find_owned`, for a `fresh` reconcile (a restart, the resync after a re-listing)
        from the watch cache when it holds every kind and namespace to look in (listed at
        start-up and watched since, as under the chart's RBAC). What a crash left out of the
        inventory was created before this process started, so the start-up listing has it.
        One LIST per kind and namespace per application (six kinds, two namespaces) made a
        restart with 1,000 applications filter the API server's cache some 10,000 times.
        Otherwise (a spec change of an application whose inventory is summarised: a child it
        created a moment ago may not have been streamed yet) and in the finalizer (a deletion
        looks at the cluster itself) it lists."""
        if not fresh:
            return self._find_owned(owner, installed, served)
        namespace = owner.split("/", 1)[0]
        scopes = [
            (delegate.kind, scope or namespace)
            for delegate, _version, scope in self._owned_scopes(served, installed)
        ]
        bodies = self.cache.owned(owner, scopes)
        if bodies is None:
            return self._find_owned(owner, installed, served)
        return [Observed.from_body(b, UNASSESSED) for b in bodies]

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
                    found.append(Observed.from_body(body, UNASSESSED))
        return found

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
