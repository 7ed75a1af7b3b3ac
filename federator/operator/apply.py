"""Writing children: create or server-side apply each child of a wave, record the apply marks
and our own writes, and say what a failed write means for the child's health."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from federator.core import delegates, health
from federator.core.keys import Key
from federator.core.plan import Observed, contains, not_ours
from federator.core.render import Child
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
)
from federator.operator.impersonation import Account, Impersonating, acting_as
from federator.operator.state import UNASSESSED, ref_of

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


def _version(body: Mapping[str, Any]) -> str:
    return str((body.get("metadata") or {}).get("resourceVersion") or "")


class Applying(Impersonating):
    """The act step's writes (`Reconciler._apply`)."""

    def _mark_before_apply(self, child: Child, live: Mapping[str, Any] | None) -> None:
        """Remember the delegate's run identity when a spec change is applied, so the child
        reads Progressing until the delegate has acted on the new spec (DESIGN §5). An apply
        that changes no spec (the same spec-hash, no drift: a child moving to another shard
        gets its new shard label) is not one: the delegate has nothing to act on."""
        if live is None or (
            Observed.from_body(live, UNASSESSED).spec_hash == child.spec_hash
            and contains(child.manifest.get("spec", {}), live.get("spec"))
        ):
            return
        token = delegates.BY_KIND[child.kind].run_token
        if token is None:
            return
        with self._lock:
            self._marks[child.key] = token(live.get("status") or {})

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
                        seen = Observed.from_body(current, UNASSESSED)
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
