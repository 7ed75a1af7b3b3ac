"""Locate the package's own data files: CRDs, templates, examples, vendored delegate CRDs and the
control-plane recipe.

They live in the repository (one source of truth, shared with the Helm chart) and are copied
into `federator/_data/` in a wheel (pyproject's force-include names the same mapping as
`_REPO_PATHS`). Reading them is reading code, not environment: nothing here looks outside the
package or its checkout.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent.parent

# Name inside federator/_data (a wheel) -> path in the source checkout (editable install).
_REPO_PATHS: dict[str, str] = {
    "crds": "crds",
    "templates": "templates",
    "examples": "examples",
    "delegate-crds": "third_party/delegate-crds",
    "controlplane": "hack/controlplane",
}


@cache
def data_dir(name: str) -> Path:
    """One of `_REPO_PATHS`: inside the installed package, else in the source checkout."""
    for candidate in (_PACKAGE / "_data" / name, _PACKAGE.parent / _REPO_PATHS[name]):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"federator data directory {name!r} not found; reinstall the package")


def application_crd_path() -> Path:
    return data_dir("crds") / "application.yaml"


def templates_dir() -> Path:
    return data_dir("templates")


def examples_dir() -> Path:
    """The example Applications and operator settings (the demo's seed application)."""
    return data_dir("examples")


def delegate_crds_dir() -> Path:
    """The vendored CRDs of the delegate operators, at pinned upstream versions."""
    return data_dir("delegate-crds")


def controlplane_recipe_dir() -> Path:
    """The pinned Go recipe (go.mod, go.sum, tools.txt) the embedded control plane is built from."""
    return data_dir("controlplane")
