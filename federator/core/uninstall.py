"""What removing federator does to an Application and its children (pure; no I/O).

Why a plan: once the operator is gone, nothing runs an Application's finalizer, so deleting an
Application (or the CRD, which deletes them all) hangs; and the garbage collector deletes every
child that names the Application as its owner. `federator uninstall` therefore either deletes
the Applications while the operator still runs (their finalizers delete the children as each
`deletionPolicy` says), or orphans them: each child's ownerReference to the Application is
dropped first, so the workloads keep running unmanaged, and only then the finalizer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

FINALIZER = "federator.io/finalizer"


def owner_patch(child: Mapping[str, Any], app_uid: str) -> list[dict[str, Any]] | None:
    """A JSON patch that drops `child`'s ownerReferences to the Application `app_uid` and keeps
    every other, guarded by a `test` of the list as read (a concurrent change fails the patch
    instead of being overwritten); None when the child names no such owner."""
    refs = (child.get("metadata") or {}).get("ownerReferences") or []
    kept = [r for r in refs if not (isinstance(r, Mapping) and r.get("uid") == app_uid)]
    if len(kept) == len(refs):
        return None
    path = "/metadata/ownerReferences"
    replace: dict[str, Any] = (
        {"op": "replace", "path": path, "value": kept} if kept else {"op": "remove", "path": path}
    )
    return [{"op": "test", "path": path, "value": list(refs)}, replace]


def finalizer_patch(app: Mapping[str, Any]) -> list[dict[str, Any]] | None:
    """A JSON patch that removes federator's finalizer (and no other), guarded like
    `owner_patch`; None when the Application does not carry it."""
    finalizers: Sequence[Any] = (app.get("metadata") or {}).get("finalizers") or []
    if FINALIZER not in finalizers:
        return None
    path = "/metadata/finalizers"
    return [
        {"op": "test", "path": path, "value": list(finalizers)},
        {"op": "replace", "path": path, "value": [f for f in finalizers if f != FINALIZER]},
    ]
