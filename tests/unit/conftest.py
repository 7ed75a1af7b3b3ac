"""Shared fixtures for the unit tests: the repository, the real delegate CRDs, the examples.

The delegate CRDs are read from `../shared/delegate-crds` next to the repository, never from a
copy: a test that validates children against a stale copy proves nothing about the operators.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from federator.core.settings import Settings, parse_settings

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLES_DIR = REPO_ROOT / "examples"
SHARED_CRDS_DIR = REPO_ROOT.parent / "shared" / "delegate-crds"

# The Application examples (every YAML file in examples/ except the operator settings).
EXAMPLE_NAMES: tuple[str, ...] = tuple(
    sorted(p.name for p in EXAMPLES_DIR.glob("*.yaml") if p.name != "settings.yaml")
)


def load_example(name: str) -> dict[str, Any]:
    """One Application body from examples/, as a fresh dict (tests may mutate it)."""
    with (EXAMPLES_DIR / name).open(encoding="utf-8") as handle:
        body = yaml.safe_load(handle)
    assert isinstance(body, dict), f"examples/{name} is not a mapping"
    return body


def load_example_settings() -> Settings:
    with (EXAMPLES_DIR / "settings.yaml").open(encoding="utf-8") as handle:
        return parse_settings(yaml.safe_load(handle))


def load_crd_documents(path: Path) -> list[Mapping[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        return [d for d in yaml.safe_load_all(handle) if isinstance(d, Mapping)]


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def examples_dir() -> Path:
    return EXAMPLES_DIR


@pytest.fixture(scope="session")
def shared_crds() -> Path:
    """`../shared/delegate-crds`: the real CRDs of Strimzi, Spark and both Flink operators."""
    if not (SHARED_CRDS_DIR / "strimzi-kafkatopic.crd.yaml").is_file():
        pytest.fail(
            f"the real delegate CRDs are expected in {SHARED_CRDS_DIR} (next to the repository); "
            "tests never use copies of them"
        )
    return SHARED_CRDS_DIR


@pytest.fixture(scope="session")
def example_settings() -> Settings:
    """examples/settings.yaml: named clusters `default` (pipelines-strimzi) and `legacy`."""
    return load_example_settings()


@pytest.fixture(scope="session")
def example_loader() -> Callable[[str], dict[str, Any]]:
    """`example_loader("mixed-sensors.yaml")` -> a fresh Application body."""
    return load_example
