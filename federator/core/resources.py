"""Locate the package's own data files: the Application CRD and the child templates.

They live at the top of the repository (one source of truth, shared with the Helm chart) and
are copied into `federator/_data/` in a wheel. Reading them is reading code, not environment.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent.parent


@cache
def data_dir(name: str) -> Path:
    """`crds` or `templates`: inside the installed package, else at the repository root."""
    for candidate in (_PACKAGE / "_data" / name, _PACKAGE.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"federator data directory {name!r} not found; reinstall the package")


def application_crd_path() -> Path:
    return data_dir("crds") / "application.yaml"


def templates_dir() -> Path:
    return data_dir("templates")
