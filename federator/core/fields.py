"""Reading untrusted JSON bodies: a wrong type reads as absent, never as an exception.

Child statuses are written by other operators and Application statuses by us or by hand; every
reader (health adapters, `federator status`) needs the same three careful accessors.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def get(value: Any, *path: str) -> Any:
    """``value[path[0]][path[1]]...`` or ``None`` as soon as a step is not a mapping or absent."""
    for key in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def as_str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def as_int(value: Any) -> int | None:
    # bool is an int in Python but never a generation or a count in Kubernetes.
    return value if isinstance(value, int) and not isinstance(value, bool) else None
