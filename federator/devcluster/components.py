"""The control plane's components and their command lines: one Layout of paths and ports.

Pure (no process is started here): what etcd, kube-apiserver, kube-controller-manager,
kube-scheduler and kwok are told, so that the flags can be read and unit-tested in one place.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from federator.devcluster.kwok import KWOK_NODE_ANNOTATION

KWOK_STAGES = "kwok-stages.yaml"  # written next to the binaries by build.py
LOOPBACK = "127.0.0.1"
SERVICE_CIDR = "10.0.0.0/24"
# The controllers federator and its tests rely on (names as in `kube-controller-manager --help`).
CONTROLLERS: tuple[str, ...] = (
    "garbage-collector-controller",
    "namespace-controller",
    "deployment-controller",
    "replicaset-controller",
    "serviceaccount-controller",
    "serviceaccount-token-controller",
    "root-ca-certificate-publisher-controller",
    "clusterrole-aggregation-controller",
)
COMPONENTS: tuple[str, ...] = (
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kwok",
)


@dataclass(frozen=True)
class Layout:
    """Every path and port one control plane uses (all under one temp directory)."""

    workdir: Path
    etcd_client_port: int
    etcd_peer_port: int
    apiserver_port: int
    kwok_port: int

    @property
    def server(self) -> str:
        return f"https://{LOOPBACK}:{self.apiserver_port}"

    @property
    def etcd_url(self) -> str:
        return f"http://{LOOPBACK}:{self.etcd_client_port}"

    @property
    def cert_dir(self) -> Path:
        return self.workdir / "pki"

    @property
    def ca_file(self) -> Path:
        # kube-apiserver writes a self-signed serving cert + its CA here when given no cert.
        return self.cert_dir / "apiserver.crt"

    @property
    def sa_key(self) -> Path:
        return self.workdir / "sa.key"

    @property
    def token_file(self) -> Path:
        return self.workdir / "tokens.csv"

    @property
    def kubeconfig(self) -> Path:
        return self.workdir / "admin.kubeconfig"

    @property
    def user_kubeconfig(self) -> Path:
        return self.workdir / "user.kubeconfig"

    def log(self, component: str) -> Path:
        return self.workdir / "logs" / f"{component}.log"


def etcd_args(layout: Layout) -> list[str]:
    """etcd on loopback; fsync off because tests throw the data away."""
    peer = f"http://{LOOPBACK}:{layout.etcd_peer_port}"
    return [
        "--name=default",
        f"--data-dir={layout.workdir / 'etcd'}",
        f"--listen-client-urls={layout.etcd_url}",
        f"--advertise-client-urls={layout.etcd_url}",
        f"--listen-peer-urls={peer}",
        f"--initial-advertise-peer-urls={peer}",
        f"--initial-cluster=default={peer}",
        "--unsafe-no-fsync=true",
        "--log-level=warn",
    ]


def apiserver_args(layout: Layout, extra: Sequence[str] = ()) -> list[str]:
    """kube-apiserver: secure loopback port, RBAC, token auth, service-account signing."""
    return [
        f"--etcd-servers={layout.etcd_url}",
        f"--cert-dir={layout.cert_dir}",
        f"--bind-address={LOOPBACK}",
        f"--advertise-address={LOOPBACK}",
        f"--secure-port={layout.apiserver_port}",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        f"--service-account-issuer={layout.server}",
        f"--service-account-key-file={layout.sa_key}",
        f"--service-account-signing-key-file={layout.sa_key}",
        f"--token-auth-file={layout.token_file}",
        "--authorization-mode=RBAC",
        # Would taint new nodes not-ready until node-lifecycle-controller (not run) lifts it;
        # kwok reports the fake node Ready itself.
        "--disable-admission-plugins=TaintNodesByCondition",
        "--allow-privileged=true",
        "--profiling=false",
        *extra,
    ]


def controller_manager_args(
    layout: Layout, controllers: Sequence[str] = CONTROLLERS, extra: Sequence[str] = ()
) -> list[str]:
    """kube-controller-manager with only the controllers we need; no serving port."""
    return [
        f"--kubeconfig={layout.kubeconfig}",
        "--leader-elect=false",
        f"--bind-address={LOOPBACK}",
        "--secure-port=0",
        f"--controllers={','.join(controllers)}",
        f"--service-account-private-key-file={layout.sa_key}",
        f"--root-ca-file={layout.ca_file}",
        "--concurrent-gc-syncs=5",
        "--profiling=false",
        *extra,
    ]


def scheduler_args(layout: Layout) -> list[str]:
    """kube-scheduler; no serving port."""
    return [
        f"--kubeconfig={layout.kubeconfig}",
        "--leader-elect=false",
        f"--bind-address={LOOPBACK}",
        "--secure-port=0",
        "--profiling=false",
    ]


def kwok_args(layout: Layout, stages: Path) -> list[str]:
    """kwok managing only the fake node(s) we annotate, and their pods (stages: kwok's own)."""
    return [
        f"--kubeconfig={layout.kubeconfig}",
        f"--config={stages}",
        "--manage-all-nodes=false",
        f"--manage-nodes-with-annotation-selector={KWOK_NODE_ANNOTATION}=fake",
        f"--server-address={LOOPBACK}:{layout.kwok_port}",
        f"--node-ip={LOOPBACK}",
        "--node-lease-duration-seconds=40",
    ]
