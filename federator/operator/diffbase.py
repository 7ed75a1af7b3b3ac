"""kopf's last-handled configuration as a digest, so it never grows with the spec.

kopf remembers the last spec it handled (its "diff base") to tell a creation from a resume and
a real change from a no-op; by default it stores the whole spec, labels and annotations as JSON
in an annotation. An Application of 3,000 streamlets put about 500 KB there: past the API
server's 256 KiB limit on all annotations of an object, so every PATCH kopf made (its progress,
the finalizer's removal) was refused with a 422, in a loop, and the Application could not even
be deleted (issue 10 §4).

Federator's handlers never read kopf's diffs (a change only kicks the level-based reconcile,
which reads the object itself), so only whether something changed matters. `DigestDiffBase`
stores, per top-level field of kopf's essence (`spec`, `metadata` for labels and annotations),
the SHA-256 of its canonical JSON: about 200 bytes whatever the size of the spec. kopf diffs
two such essences exactly as it diffed the full ones: the `spec` digest changes if and only if
the spec does (so `@kopf.on.update(field="spec")` fires as before), and an unchanged object
compares equal. A full essence stored by an older federator is digested when read, so an
upgrade makes no write and triggers no reconcile of its own.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any, cast

import kopf

DIGEST = "sha256"


def digest(essence: Mapping[str, Any]) -> dict[str, Any]:
    """`{field: {"sha256": hex}}` for each top-level field of a kopf essence."""
    return {
        key: {
            DIGEST: hashlib.sha256(
                json.dumps(value, sort_keys=True, separators=(",", ":")).encode()
            ).hexdigest()
        }
        for key, value in sorted(essence.items())
    }


def is_digest(essence: Mapping[str, Any]) -> bool:
    return all(isinstance(value, Mapping) and set(value) == {DIGEST} for value in essence.values())


class DigestDiffBase(kopf.AnnotationsDiffBaseStorage):
    """`kopf.AnnotationsDiffBaseStorage` holding digests instead of the essence itself."""

    def build(
        self,
        *,
        body: kopf.Body,
        extra_fields: Iterable[Any] | None = None,
    ) -> kopf.BodyEssence:
        essence = cast(dict[str, Any], super().build(body=body, extra_fields=extra_fields))
        # kopf clears its progress annotations (our prefix) from the essence after `build`,
        # which it cannot do inside a digest: leave them out before hashing.
        annotations = (essence.get("metadata") or {}).get("annotations") or {}
        for key in [k for k in annotations if k.startswith(f"{self.prefix}/")]:
            del annotations[key]
        self.remove_empty_stanzas(cast(kopf.BodyEssence, essence))
        return cast(kopf.BodyEssence, digest(essence))

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        stored = super().fetch(body=body)
        if stored is None or is_digest(stored):
            return stored
        # A full essence written by an older federator (or kopf's default storage).
        return cast(kopf.BodyEssence, digest(cast(Mapping[str, Any], stored)))
