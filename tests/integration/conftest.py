"""Integration tests run on a real control plane (etcd, kube-apiserver, controllers, kwok).

Every test in this directory gets the `integration` marker. With CI=true missing binaries FAIL
the session loudly (never a silent skip); locally they are built on demand (the first time
takes minutes, then the cache in ~/.cache/federator is reused).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from federator.devcluster import build
from federator.devcluster.harness import in_ci
from federator.devcluster.launcher import ControlPlane, ControlPlaneError

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark everything under tests/integration as `integration`."""
    for item in items:
        if HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.integration)


@dataclass
class Cluster:
    """What integration tests get: the plane, kubeconfigs and clients (admin and unprivileged)."""

    plane: ControlPlane
    bin_dir: Path
    kubeconfig: Path
    user_kubeconfig: Path
    user_name: str
    api: Any  # kubernetes.client.ApiClient, admin (system:masters)
    user_api: Any  # kubernetes.client.ApiClient, unprivileged user

    def ensure_namespace(self, name: str) -> None:
        status, body = self.plane.request(
            "POST",
            "/api/v1/namespaces",
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}},
        )
        assert status in (201, 409), body


@pytest.fixture(scope="session")
def bin_dir() -> Path:
    """The built binaries; CI never builds here (`make controlplane` did) and never skips."""
    try:
        return build.ensure_binaries(build=not in_ci(), out=sys.__stderr__)
    except build.BuildError as exc:
        pytest.fail(f"control-plane binaries unavailable: {exc}", pytrace=False)


@pytest.fixture(scope="session")
def cluster(bin_dir: Path) -> Iterator[Cluster]:
    """One control plane for the whole session, always stopped at the end."""
    plane = ControlPlane(bin_dir, start_timeout=180.0)
    try:
        plane.start()
    except ControlPlaneError as exc:
        pytest.fail(f"control plane did not start: {exc}", pytrace=False)
    try:
        yield Cluster(
            plane=plane,
            bin_dir=bin_dir,
            kubeconfig=plane.kubeconfig,
            user_kubeconfig=plane.user_kubeconfig,
            user_name=plane.user.name,
            api=plane.api_client("admin"),
            user_api=plane.api_client("user"),
        )
    finally:
        plane.stop()
