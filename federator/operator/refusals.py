"""The children the installed delegate CRDs refuse, found before anything is applied."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from federator.core import crdcheck, delegates, health
from federator.core.keys import Key
from federator.core.render import Child
from federator.kube.discovery import Discovered
from federator.operator.compile_cache import digest
from federator.operator.state import ReconcilerState

log = logging.getLogger("federator.reconcile")

JUDGED_CACHE = 65_536
"""Verdicts of the installed-CRD check kept: one per child (with a digest of its spec hash and the
CRD's resourceVersion, so a change is checked again), forgotten with its application; a reconcile
of an unchanged application validates nothing again, for every child of the applications one
process serves (4,096 made every resync of an operator serving 1,000 applications of 11 children
check them all again)."""
CRD_KINDS = {d.kind: d.crd_name for d in delegates.ALL if not d.builtin}


class Refusing(ReconcilerState):
    """The installed-CRD check of a reconcile, memoised."""

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
            key = digest([child.api_version, child.spec_hash, CRD_KINDS.get(child.kind), version])
            with self._lock:
                entry = self._judged.get(child.key)
                known = entry is not None and entry[0] == key
                verdict = entry[1] if entry is not None else None
                if known:
                    self._judged.move_to_end(child.key)
            if not known:
                try:
                    verdict = crdcheck.verdict(child, crd, restrictions)
                except Exception as exc:  # a schema federator cannot use: not checked
                    log.warning("%s not checked against its CRD: %s", child.key, exc)
                    verdict = None
                with self._lock:
                    self._judged[child.key] = (key, verdict)
                    self._judged.move_to_end(child.key)
                    while len(self._judged) > JUDGED_CACHE:
                        self._judged.popitem(last=False)
            if verdict is not None:
                out[child.key] = verdict
        return out
