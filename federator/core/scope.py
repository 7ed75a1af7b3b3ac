"""Which namespaces an operator serves, and what that allows it to do. Pure.

An operator started with `-n` (or the settings' `operator.namespaces`) serves those namespaces
only; without either it is cluster-wide. Two operators with disjoint namespace sets may share a
namespace (the Kafka cluster's, where both create topics), so the scope is checked twice:

- on the Application's namespace, before it is reconciled at all: a child event in a shared
  namespace names its Application by annotation, and that Application may be another
  operator's, compiled there with other settings (reconciling it here fought that operator:
  each applied its own rendering and pruned the other's);
- on each child's own namespace, before any write, prune or deletion: a child whose namespace
  is not served (a Kafka cluster namespace left out of `-n`) is refused with a message saying
  so, never written, and never read (the chart's namespaced RBAC would refuse the read).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from federator.core.health import ChildHealth, Health

REASON_NOT_SERVED = "NamespaceNotServed"


@dataclass(frozen=True)
class Scope:
    """The namespaces one operator serves; empty: every namespace (cluster-wide)."""

    namespaces: frozenset[str] = frozenset()

    @classmethod
    def of(cls, namespaces: Iterable[str]) -> Scope:
        return cls(frozenset(n for n in namespaces if n))

    @property
    def clusterwide(self) -> bool:
        return not self.namespaces

    def serves(self, namespace: str) -> bool:
        """Whether this operator may reconcile Applications of, and write into, `namespace`."""
        return self.clusterwide or namespace in self.namespaces

    def _served(self) -> str:
        return ", ".join(sorted(self.namespaces))

    def refuse_write(self, kind: str, namespace: str, name: str) -> ChildHealth | None:
        """Why a desired child is not written (None: its namespace is served). Degraded: it
        will not change until the operator's namespaces or the settings do."""
        if self.serves(namespace):
            return None
        return ChildHealth(
            health=Health.DEGRADED,
            reason=REASON_NOT_SERVED,
            message=f"{kind} {namespace}/{name} is not applied: namespace {namespace} is not "
            f"served by this operator (it serves {self._served()}); add {namespace} to its "
            "namespaces (-n or operator.namespaces) or run it cluster-wide",
        )

    def refuse_delete(self, kind: str, namespace: str, name: str) -> ChildHealth | None:
        """Why an owned child that left the spec is kept, not pruned (None: it may be)."""
        if self.serves(namespace):
            return None
        return ChildHealth(
            health=Health.DEGRADED,
            reason=REASON_NOT_SERVED,
            message=f"{kind} {namespace}/{name} is no longer desired but is not deleted: "
            f"namespace {namespace} is not served by this operator (it serves "
            f"{self._served()}); serve {namespace} and the next reconcile deletes it",
        )


CLUSTERWIDE = Scope()
