"""The operator side of sharding (`federator.core.sharding` decides who serves what).

- Every watch of a shard is filtered by the API server with its label selector: the
  Applications it serves, the children of those (kopf's `settings.watching.label_selectors`;
  the start-up listing of children uses the same selector, `Reconciler.prime_cache`), so a
  shard holds and handles only its own share.
- An Application relabelled to another shard leaves this shard's watch (a DELETED event while
  it still exists): its worker is forgotten, and a reconcile that was already due does nothing
  (`Workers._once` checks the shard on the body it reconciles).
- It enters the other shard's watch as ADDED with a status: kopf runs no handler for it (its
  last-handled configuration is already there, and resume handlers run only at start-up), so
  it is kicked here with a fresh read of every child, which relabels them for this shard.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import kopf

from federator.core import appkind, delegates
from federator.core.sharding import Shard

if TYPE_CHECKING:
    from federator.operator.workers import Workers

APPLICATIONS = (appkind.GROUP, appkind.PLURAL)
log = logging.getLogger("federator.sharding")


def watch_only(settings: kopf.OperatorSettings, shard: Shard) -> None:
    """Server-side label selectors on every watch (and kopf's initial listing)."""
    settings.watching.label_selectors[APPLICATIONS] = shard.selector
    for delegate in delegates.ALL:
        settings.watching.label_selectors[delegate.group, delegate.plural] = shard.child_selector


def on_application_event(
    workers: Workers, event: Any, body: Mapping[str, Any], namespace: str, name: str
) -> None:
    """React to an Application entering or leaving this shard's watch (see the module doc)."""
    kind = (event or {}).get("type")
    meta = body.get("metadata") or {}
    if kind == "DELETED" and not meta.get("deletionTimestamp"):
        log.info("application %s/%s left this shard (relabelled or deleted)", namespace, name)
        workers.forget(namespace, name)
    elif kind == "ADDED" and body.get("status") and not meta.get("deletionTimestamp"):
        log.info("application %s/%s joined this shard", namespace, name)
        workers.kick(namespace, name, fresh=True)
