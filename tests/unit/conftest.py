"""Shared fixtures for the unit tests: the repository, the real delegate CRDs, the examples.

The delegate CRDs are the vendored ones (third_party/delegate-crds, pinned upstream copies that
hack/vendor-delegate-crds.py checks byte for byte), or $FEDERATOR_DELEGATE_CRDS.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from federator.core.settings import Settings, parse_settings
from federator.devcluster import crdfiles

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLES_DIR = REPO_ROOT / "examples"
DELEGATE_CRDS_DIR = crdfiles.delegate_crds_dir()

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
def delegate_crds() -> Path:
    """The real CRDs of Strimzi, Spark and both Flink operators (vendored, pinned)."""
    if not (DELEGATE_CRDS_DIR / "strimzi-kafkatopic.crd.yaml").is_file():
        pytest.fail(f"the delegate CRDs are expected in {DELEGATE_CRDS_DIR}")
    return DELEGATE_CRDS_DIR


@pytest.fixture(scope="session")
def example_settings() -> Settings:
    """examples/settings.yaml: named clusters `default` (pipelines-strimzi) and `legacy`."""
    return load_example_settings()


@pytest.fixture(scope="session")
def example_loader() -> Callable[[str], dict[str, Any]]:
    """`example_loader("mixed-sensors.yaml")` -> a fresh Application body."""
    return load_example
