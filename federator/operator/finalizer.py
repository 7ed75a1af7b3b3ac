"""Deleting an application: what federator must delete itself (Delete-policy topics,
cross-namespace children), and `DeletionIncomplete` when some of it could not be."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from federator.core import delegates, model
from federator.core.inventory import items as inventory_items
from federator.core.keys import Key
from federator.core.plan import InventoryItem, Observed, deletion_plan
from federator.kube import forbidden
from federator.kube.client import Forbidden, KubeError
from federator.operator.impersonation import acting_as
from federator.operator.owned import Owning
from federator.operator.state import UNASSESSED, ref_of

log = logging.getLogger("federator.reconcile")


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


class Finalizing(Owning):
    """The deletion handler's work (`Reconciler.finalize`)."""

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
            if i.key not in listed
            and delegates.BY_KIND[i.kind].served(discovered.installed)
            and self.scope.serves(i.namespace)
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
                observed[item.key] = Observed.from_body(live, UNASSESSED)
        with self._lock:  # nothing of a deleted application is remembered
            for key in {*(i.key for i in inventory), *(f.key for f in found)}:
                self._written.pop(key, None)
                self._marks.pop(key, None)
                self._judged.pop(key, None)
        self.compiled.forget(owner)
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
        # Nothing is deleted in a namespace this operator does not serve (nor read there, so
        # `deletion_plan` never names it): what it would have deleted is named in an Event.
        for item in inventory:
            retained = (
                item.kind == delegates.KAFKA_TOPIC.kind and policy is model.DeletionPolicy.RETAIN
            )
            refusal = self.scope.refuse_delete(item.kind, item.namespace, item.name)
            if refusal is not None and not retained:
                log.warning("%s: %s", owner, refusal.message)
                self.kube.event(
                    body, type_="Warning", reason=refusal.reason, message=refusal.message
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
