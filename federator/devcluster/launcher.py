"""Start and stop a real control plane on loopback: etcd, kube-apiserver, controllers, kwok.

Why: an operator is only proven against a real API server (admission, CEL, RBAC, garbage
collection, real controllers). Like controller-runtime's envtest, with locally built binaries,
plus kube-controller-manager, kube-scheduler and kwok (one fake node) so that Deployments become
Available. Every process gets its own process group and dies with us: on success, failure,
exception, SIGTERM/SIGHUP and Ctrl-C nothing is left running and the temp directory is removed.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import ctypes
import json
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

import yaml

from federator.devcluster import crdfiles

KWOK_STAGES = "kwok-stages.yaml"  # written next to the binaries by build.py
LOOPBACK = "127.0.0.1"
ADMIN_USER = "federator-admin"
TEST_USER = "federator-test-user"
TEST_GROUP = "federator:testers"
FAKE_NODE = "kwok-node-0"
KWOK_NODE_ANNOTATION = "kwok.x-k8s.io/node"
WORKDIR_PREFIX = "federator-cp-"
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
LOG_TAIL_LINES = 40
STOP_GRACE_SECONDS = 10.0


class ControlPlaneError(RuntimeError):
    """The control plane failed to start or to do what was asked; carries the log tail."""


# ---------------------------------------------------------------- pure helpers (unit-tested)


def free_ports(count: int, host: str = LOOPBACK) -> list[int]:
    """`count` distinct free TCP ports on host (held open together so they differ)."""
    socks: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((host, 0))
            socks.append(sock)
        return [s.getsockname()[1] for s in socks]
    finally:
        for sock in socks:
            sock.close()


@dataclass(frozen=True)
class Identity:
    """A token-authenticated user of the API server."""

    name: str
    token: str
    groups: tuple[str, ...] = ()


def token_auth_csv(identities: Iterable[Identity]) -> str:
    """--token-auth-file content: `token,user,uid,"group1,group2"` per line."""
    lines = []
    for ident in identities:
        line = f"{ident.token},{ident.name},{ident.name}"
        if ident.groups:
            line += ',"' + ",".join(ident.groups) + '"'
        lines.append(line)
    return "\n".join(lines) + "\n"


def kubeconfig_text(server: str, ca_pem: bytes, user: str, token: str) -> str:
    """A kubeconfig (YAML) for one token user, trusting the API server's own CA bundle."""
    name = "federator-local"
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": name,
                "cluster": {
                    "server": server,
                    "certificate-authority-data": base64.b64encode(ca_pem).decode(),
                },
            }
        ],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": f"{user}@{name}", "context": {"cluster": name, "user": user}}],
        "current-context": f"{user}@{name}",
        "preferences": {},
    }
    return yaml.safe_dump(doc, sort_keys=False)


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


# Pods one fake node takes. 110 is the kubelet's default, not a limit of kwok, which runs no
# container: an integration session deploys several hundred pods over its modules (Deployments
# left converged, Spark drivers and executors), and at 110 the later modules' pods stayed
# Pending, so their applications never became Healthy.
FAKE_NODE_PODS = "1000"


def fake_node(name: str = FAKE_NODE) -> dict[str, Any]:
    """One kwok-managed Node, untainted so ordinary pods schedule on it."""
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {KWOK_NODE_ANNOTATION: "fake", "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {
                "type": "kwok",
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "kubernetes.io/role": "agent",
            },
        },
        "spec": {},
        "status": {
            "allocatable": {"cpu": "256", "memory": "2Ti", "pods": FAKE_NODE_PODS},
            "capacity": {"cpu": "256", "memory": "2Ti", "pods": FAKE_NODE_PODS},
        },
    }


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last lines of a log file ('' when absent), for error messages."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def crd_documents(paths: Iterable[Path]) -> list[dict[str, Any]]:
    """Every CustomResourceDefinition in the given files/directories (YAML or JSON, multi-doc),
    one per name: where a folder holds two versions of one CRD the current one wins
    (`crdfiles.current_crds`)."""
    try:
        return crdfiles.current_crds(crdfiles.load_crds(paths))
    except crdfiles.CRDFileError as exc:
        raise ControlPlaneError(str(exc)) from None


# ---------------------------------------------------------------- process lifecycle


_LIVE: set[ControlPlane] = set()
_LIVE_LOCK = threading.Lock()
_HANDLERS_INSTALLED = False


def _stop_all() -> None:
    """Stop every live control plane (atexit and fatal-signal path)."""
    with _LIVE_LOCK:
        planes = list(_LIVE)
    for plane in planes:
        with contextlib.suppress(Exception):
            plane.stop()


def _on_fatal_signal(signum: int, frame: FrameType | None) -> None:
    """SIGTERM/SIGHUP would kill Python without atexit: clean up, then die by that signal."""
    _stop_all()
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def _install_handlers() -> None:
    """atexit always; SIGTERM/SIGHUP only from the main thread and only if nobody else did."""
    global _HANDLERS_INSTALLED  # noqa: PLW0603
    if _HANDLERS_INSTALLED:
        return
    _HANDLERS_INSTALLED = True
    atexit.register(_stop_all)
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(sig) in (signal.SIG_DFL, None):
            signal.signal(sig, _on_fatal_signal)


def _die_with_parent() -> None:
    """In the child before exec: get SIGKILL if our process dies (even by SIGKILL)."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)


def pid_alive(pid: int) -> bool:
    """True while the process runs; an exited, unreaped zombie does not count."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no procfs: trust kill(0)
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def reap_stale_workdirs(parent: Path) -> list[Path]:
    """Remove temp dirs left by a control plane whose owner was SIGKILLed (best effort)."""
    removed: list[Path] = []
    for path in parent.glob(f"{WORKDIR_PREFIX}*"):
        try:
            owner = int((path / "owner.pid").read_text().strip())
        except (OSError, ValueError):
            continue
        if pid_alive(owner):
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed


def _generate_sa_key(path: Path) -> None:
    """An RSA key for service-account tokens (openssl, else the cryptography package)."""
    openssl = shutil.which("openssl")
    if openssl:
        subprocess.run(
            [openssl, "genrsa", "-out", str(path), "2048"],
            check=True,
            capture_output=True,
        )
        return
    try:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa
    except ImportError as exc:  # pragma: no cover - depends on the machine
        raise ControlPlaneError(
            "need `openssl` or the `cryptography` package to make a service-account key"
        ) from exc
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )


@dataclass
class _Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path


@dataclass(eq=False)
class ControlPlane:
    """A control plane on loopback in a temp dir; use as a context manager (or start/stop).

    `components` picks a subset (etcd and kube-apiserver are always started). Children run in
    their own process groups (stop() kills whole groups) and, on Linux, get SIGKILL if this
    process dies without cleaning up; a directory left by such a death is removed by the next
    start in the same parent directory.
    """

    bin_dir: Path
    components: Sequence[str] = COMPONENTS
    start_timeout: float = 120.0
    extra_apiserver_args: Sequence[str] = ()
    # e.g. a higher --kube-api-qps for benches with thousands of Deployments (bench/peer.py)
    extra_controller_manager_args: Sequence[str] = ()
    workdir_parent: Path | None = None
    user_name: str = TEST_USER
    # PR_SET_PDEATHSIG fires when the *thread* that started the plane ends: start it from a
    # long-lived thread (the main one), or set this False and rely on stop()/atexit.
    die_with_parent: bool = True
    admin: Identity = field(init=False)
    user: Identity = field(init=False)
    _layout: Layout | None = field(default=None, init=False, repr=False)
    _procs: list[_Proc] = field(default_factory=list, init=False, repr=False)
    _ca_pem: bytes = field(default=b"", init=False, repr=False)
    # Measured on start(): until kube-apiserver's /readyz, and until everything is usable.
    readyz_seconds: float = field(default=0.0, init=False)
    startup_seconds: float = field(default=0.0, init=False)

    def __post_init__(self) -> None:
        self.bin_dir = Path(self.bin_dir)
        self.admin = Identity(ADMIN_USER, secrets.token_hex(24), ("system:masters",))
        self.user = Identity(self.user_name, secrets.token_hex(24), (TEST_GROUP,))

    # -- public surface

    @property
    def layout(self) -> Layout:
        if self._layout is None:
            raise ControlPlaneError("control plane not started")
        return self._layout

    @property
    def workdir(self) -> Path:
        return self.layout.workdir

    @property
    def server(self) -> str:
        return self.layout.server

    @property
    def kubeconfig(self) -> Path:
        """Admin (system:masters) kubeconfig."""
        return self.layout.kubeconfig

    @property
    def user_kubeconfig(self) -> Path:
        """Kubeconfig of the unprivileged user (no RBAC grants until a test adds some)."""
        return self.layout.user_kubeconfig

    @property
    def pids(self) -> dict[str, int]:
        return {p.name: p.popen.pid for p in self._procs}

    @property
    def running(self) -> bool:
        return bool(self._procs) and all(p.popen.poll() is None for p in self._procs)

    def __enter__(self) -> ControlPlane:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Start every component and wait until usable; on any failure stop all and raise."""
        if self._layout is not None:
            raise ControlPlaneError("control plane already started")
        missing = [n for n in self._binaries_needed() if not os.access(self.bin_dir / n, os.X_OK)]
        if "kwok" in self.components and not (self.bin_dir / KWOK_STAGES).is_file():
            missing.append(KWOK_STAGES)
        if missing:
            raise ControlPlaneError(
                f"binaries missing in {self.bin_dir}: {', '.join(missing)} "
                "(run `python -m federator.devcluster.build`)"
            )
        _install_handlers()
        parent = self.workdir_parent or Path(tempfile.gettempdir())
        reap_stale_workdirs(parent)
        workdir = Path(tempfile.mkdtemp(prefix=WORKDIR_PREFIX, dir=parent))
        ports = free_ports(4)
        self._layout = Layout(workdir, *ports)
        with _LIVE_LOCK:
            _LIVE.add(self)
        try:
            self._start_all()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop every process we started (TERM, then KILL the group) and delete the temp dir."""
        procs, self._procs = self._procs, []
        # API clients first, etcd last, so nothing logs storms about a vanished store.
        for group in (
            [p for p in procs if p.name != "etcd"],
            [p for p in procs if p.name == "etcd"],
        ):
            for proc in group:
                _signal_group(proc.popen, signal.SIGTERM)
            deadline = time.monotonic() + STOP_GRACE_SECONDS
            for proc in group:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.popen.wait(timeout=max(0.1, deadline - time.monotonic()))
                _signal_group(proc.popen, signal.SIGKILL)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.popen.wait(timeout=5)
        layout, self._layout = self._layout, None
        if layout is not None:
            shutil.rmtree(layout.workdir, ignore_errors=True)
        with _LIVE_LOCK:
            _LIVE.discard(self)

    def api_client(self, user: str = "admin") -> Any:
        """A kubernetes.client.ApiClient for 'admin' or the unprivileged 'user'."""
        from federator.kube import connect

        path = self.kubeconfig if user == "admin" else self.user_kubeconfig
        return connect.api_client(path)

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        token: str | None = None,
        content_type: str = "application/json",
        headers: Mapping[str, str] | None = None,
    ) -> tuple[int, Any]:
        """One raw API request (admin unless token given); returns (status, decoded JSON).
        `headers` adds request headers, e.g. `Impersonate-User` to act as a test identity."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.server + path, data=data, method=method)
        req.add_header("Authorization", f"Bearer {token or self.admin.token}")
        for name, value in (headers or {}).items():
            req.add_header(name, value)
        req.add_header("Accept", "application/json")
        if data is not None:
            req.add_header("Content-Type", content_type)
        context = ssl.create_default_context(cadata=self._ca_pem.decode())
        # 429 (e.g. "storage is (re)initializing" right after a CRD appears): retry like
        # client-go does, honouring Retry-After, for a bounded time.
        deadline = time.monotonic() + 30.0
        while True:
            try:
                with urllib.request.urlopen(req, context=context, timeout=30) as resp:
                    return resp.status, _decode(resp.read())
            except urllib.error.HTTPError as err:
                if err.code != 429 or time.monotonic() > deadline:
                    return err.code, _decode(err.read())
                retry_after = err.headers.get("Retry-After", "1")
                time.sleep(min(float(retry_after) if retry_after.isdigit() else 1.0, 2.0))

    def install_crds(self, *paths: Path | str, timeout: float = 60.0) -> list[str]:
        """Create or replace every CRD in files/directories; wait until all are Established."""
        docs = crd_documents(Path(p) for p in paths)
        base = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
        names: list[str] = []
        for doc in docs:
            name = doc["metadata"]["name"]
            status, body = self.request("POST", base, doc)
            if status == 409:
                _, current = self.request("GET", f"{base}/{name}")
                meta = {
                    **doc["metadata"],
                    "resourceVersion": current["metadata"]["resourceVersion"],
                }
                status, body = self.request("PUT", f"{base}/{name}", {**doc, "metadata": meta})
            if status >= 300:
                raise ControlPlaneError(
                    f"installing CRD {name} failed ({status}): {_message(body)}"
                )
            names.append(name)
        for name in names:
            self._wait(
                f"CRD {name} Established",
                lambda n=name: _crd_established(self.request("GET", f"{base}/{n}")[1]),  # type: ignore[misc]
                timeout,
                component="kube-apiserver",
            )
        # Established is not yet usable: the resource's storage may still answer 429.
        for doc in docs:
            path = _crd_list_path(doc)
            self._wait(
                f"{path} to be served",
                lambda p=path: self.request("GET", p + "?limit=1")[0] == 200,  # type: ignore[misc]
                timeout,
                component="kube-apiserver",
            )
        return names

    def delete_crds(self, *names: str, timeout: float = 60.0) -> None:
        """Delete CRDs by name and wait until they are gone (to swap versions of one CRD)."""
        base = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
        for name in names:
            self.request("DELETE", f"{base}/{name}")
        for name in names:
            self._wait(
                f"CRD {name} deleted",
                lambda n=name: self.request("GET", f"{base}/{n}")[0] == 404,  # type: ignore[misc]
                timeout,
                component="kube-apiserver",
            )

    def kubectl(
        self, *args: str, user: str = "admin", check: bool = True, stdin: str | None = None
    ) -> str:
        """Run the built kubectl against this control plane; return stdout."""
        path = self.kubeconfig if user == "admin" else self.user_kubeconfig
        proc = subprocess.run(
            [str(self.bin_dir / "kubectl"), f"--kubeconfig={path}", *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if check and proc.returncode != 0:
            raise ControlPlaneError(f"kubectl {' '.join(args)} failed: {proc.stderr.strip()}")
        return proc.stdout

    # -- internals

    def _binaries_needed(self) -> list[str]:
        return ["etcd", "kube-apiserver", *(c for c in self.components if c in COMPONENTS[2:])]

    def _spawn(self, name: str, args: Sequence[str]) -> None:
        log = self.layout.log(name)
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as handle:
            popen = subprocess.Popen(
                [str(self.bin_dir / name), *args],
                stdin=subprocess.DEVNULL,
                stdout=handle,
                stderr=subprocess.STDOUT,
                cwd=self.layout.workdir,
                start_new_session=True,  # own process group: we can kill all it forks
                preexec_fn=_die_with_parent if self.die_with_parent else None,  # noqa: PLW1509
            )
        self._procs.append(_Proc(name, popen, log))
        pids = "\n".join(f"{p.name} {p.popen.pid}" for p in self._procs)
        (self.layout.workdir / "pids").write_text(pids + "\n")

    def _check_alive(self) -> None:
        for proc in self._procs:
            code = proc.popen.poll()
            if code is not None:
                raise ControlPlaneError(
                    f"{proc.name} exited with code {code}; last lines of {proc.log}:\n"
                    f"{log_tail(proc.log)}"
                )

    def _wait(
        self, what: str, ready: Callable[[], bool], timeout: float, *, component: str
    ) -> None:
        """Poll `ready` (no fixed sleeps beyond a short backoff) until true or the deadline."""
        deadline = time.monotonic() + timeout
        delay = 0.05
        last_error = ""
        while True:
            self._check_alive()
            try:
                if ready():
                    return
            except (OSError, ValueError, KeyError, TypeError, ssl.SSLError) as exc:
                last_error = f"{type(exc).__name__}: {exc}"
            if time.monotonic() >= deadline:
                log = self.layout.log(component)
                raise ControlPlaneError(
                    f"timed out after {timeout:.0f}s waiting for {what}"
                    + (f" (last error: {last_error})" if last_error else "")
                    + f"; last lines of {log}:\n{log_tail(log)}"
                )
            time.sleep(delay)
            delay = min(delay * 1.5, 0.5)

    def _start_all(self) -> None:
        layout = self.layout
        started = time.monotonic()
        deadline = started + self.start_timeout

        def left() -> float:
            return max(1.0, deadline - time.monotonic())

        (layout.workdir / "owner.pid").write_text(f"{os.getpid()}\n")
        layout.cert_dir.mkdir(parents=True)
        _generate_sa_key(layout.sa_key)
        layout.token_file.write_text(token_auth_csv([self.admin, self.user]))

        self._spawn("etcd", etcd_args(layout))
        self._wait("etcd /health", lambda: _etcd_healthy(layout.etcd_url), left(), component="etcd")
        self._spawn("kube-apiserver", apiserver_args(layout, self.extra_apiserver_args))
        self._wait(
            "kube-apiserver /readyz",
            lambda: _readyz(layout.server, self.admin.token),
            left(),
            component="kube-apiserver",
        )
        self.readyz_seconds = time.monotonic() - started
        self._ca_pem = layout.ca_file.read_bytes()
        layout.kubeconfig.write_text(
            kubeconfig_text(layout.server, self._ca_pem, self.admin.name, self.admin.token)
        )
        layout.user_kubeconfig.write_text(
            kubeconfig_text(layout.server, self._ca_pem, self.user.name, self.user.token)
        )
        if "kube-controller-manager" in self.components:
            self._spawn(
                "kube-controller-manager",
                controller_manager_args(layout, extra=self.extra_controller_manager_args),
            )
        if "kube-scheduler" in self.components:
            self._spawn("kube-scheduler", scheduler_args(layout))
        if "kwok" in self.components:
            self._spawn("kwok", kwok_args(layout, self.bin_dir / KWOK_STAGES))
            status, body = self.request("POST", "/api/v1/nodes", fake_node())
            if status >= 300:
                raise ControlPlaneError(
                    f"creating the fake node failed ({status}): {_message(body)}"
                )
            self._wait(
                f"node {FAKE_NODE} Ready",
                lambda: _node_ready(self.request("GET", f"/api/v1/nodes/{FAKE_NODE}")[1]),
                left(),
                component="kwok",
            )
        if "kube-controller-manager" in self.components:
            self._wait(
                "the default ServiceAccount (controllers running)",
                lambda: (
                    self.request("GET", "/api/v1/namespaces/default/serviceaccounts/default")[0]
                    == 200
                ),
                left(),
                component="kube-controller-manager",
            )
        self.startup_seconds = time.monotonic() - started


def _signal_group(popen: subprocess.Popen[bytes], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(popen.pid, sig)


def _decode(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return raw.decode(errors="replace")


def _message(body: Any) -> str:
    if isinstance(body, dict):
        return str(body.get("message", body))
    return str(body)


def _insecure_context() -> ssl.SSLContext:
    """Only for polling our own loopback server before its CA file exists."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def _etcd_healthy(url: str) -> bool:
    with urllib.request.urlopen(f"{url}/health", timeout=2) as resp:
        return bool(json.loads(resp.read()).get("health") == "true")


def _readyz(server: str, token: str) -> bool:
    req = urllib.request.Request(f"{server}/readyz")
    req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, context=_insecure_context(), timeout=2) as resp:
            return bool(resp.status == 200)
    except urllib.error.HTTPError:
        return False


def _node_ready(node: Any) -> bool:
    conditions = (node or {}).get("status", {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def _crd_list_path(crd: dict[str, Any]) -> str:
    """The cluster-wide list URL of a CRD's resource, at its storage (else first served) version."""
    spec = crd["spec"]
    versions = [v for v in spec["versions"] if v.get("served", True)]
    version = next((v for v in versions if v.get("storage")), versions[0])["name"]
    return f"/apis/{spec['group']}/{version}/{spec['names']['plural']}"


def _crd_established(crd: Any) -> bool:
    conditions = (crd or {}).get("status", {}).get("conditions") or []
    return any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions)


@contextlib.contextmanager
def running(bin_dir: Path, **kwargs: Any) -> Iterator[ControlPlane]:
    """`with running(bin_dir) as cp:` — start a control plane and always stop it."""
    plane = ControlPlane(bin_dir, **kwargs)
    with plane:
        yield plane
