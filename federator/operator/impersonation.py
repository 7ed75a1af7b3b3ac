"""Who writes a child: the application's ServiceAccount in its own namespace (impersonated),
federator's own identity elsewhere; and why a refused write was refused."""

from __future__ import annotations

from collections.abc import Sequence

from federator.core import model
from federator.kube import forbidden
from federator.kube.client import Forbidden, Kube, KubeError
from federator.operator.state import ReconcilerState

Account = tuple[str, str]
"""(namespace, name) of the ServiceAccount whose rights write an application's children in its
own namespace (impersonated)."""


def acting_as(namespace: str, account: Account | None) -> str | None:
    """The user a child in `namespace` is written as: the application's ServiceAccount in the
    application's own namespace; None (federator's own identity) elsewhere, i.e. KafkaTopics in
    a Kafka cluster's namespace, which the naming policy and ownership rules govern, and when
    no ServiceAccount is configured."""
    if account is None or namespace != account[0]:
        return None
    return forbidden.service_account_user(*account)


class Impersonating(ReconcilerState):
    """The account and the client a child is written with."""

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
