"""Start and stop a real control plane on loopback: etcd, kube-apiserver, controllers, kwok.

Why: an operator is only proven against a real API server (admission, CEL, RBAC, garbage
collection, real controllers). Like controller-runtime's envtest, with locally built binaries,
plus kube-controller-manager, kube-scheduler and kwok (one fake node) so that Deployments become
Available. Every process gets its own process group and dies with us: on success, failure,
exception, SIGTERM/SIGHUP and Ctrl-C nothing is left running and the temp directory is removed.

The jobs live beside this module: `components` (command lines and the Layout), `credentials`
(tokens, kubeconfigs, the service-account key), `processes` (start, stop, clean up), `kwok`
(the fake node) and `probes` (readiness checks); `ControlPlane` puts them together.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from federator.devcluster import crdfiles, probes, processes
from federator.devcluster.components import (
    COMPONENTS,
    KWOK_STAGES,
    Layout,
    apiserver_args,
    controller_manager_args,
    etcd_args,
    kwok_args,
    scheduler_args,
)
from federator.devcluster.credentials import (
    ADMIN_USER,
    TEST_GROUP,
    TEST_USER,
    Identity,
    generate_sa_key,
    kubeconfig_text,
    token_auth_csv,
)
from federator.devcluster.kwok import FAKE_NODE, fake_node, node_ready
from federator.devcluster.processes import (
    WORKDIR_PREFIX,
    ControlPlaneError,
    Proc,
    free_ports,
    log_tail,
    reap_stale_workdirs,
)

__all__ = ["ControlPlane", "ControlPlaneError", "crd_documents", "running"]

KWOK_STARTS = 3
"""Starts of kwok before the control plane gives up (`ControlPlane._start_kwok`)."""


def crd_documents(paths: Iterable[Path]) -> list[dict[str, Any]]:
    """Every CustomResourceDefinition in the given files/directories (YAML or JSON, multi-doc),
    one per name: where a folder holds two versions of one CRD the current one wins
    (`crdfiles.current_crds`)."""
    try:
        return crdfiles.current_crds(crdfiles.load_crds(paths))
    except crdfiles.CRDFileError as exc:
        raise ControlPlaneError(str(exc)) from None


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
    _procs: list[Proc] = field(default_factory=list, init=False, repr=False)
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
        parent = self.workdir_parent or Path(tempfile.gettempdir())
        reap_stale_workdirs(parent)
        workdir = Path(tempfile.mkdtemp(prefix=WORKDIR_PREFIX, dir=parent))
        ports = free_ports(4)
        self._layout = Layout(workdir, *ports)
        processes.track(self)
        try:
            self._start_all()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop every process we started (TERM, then KILL the group) and delete the temp dir."""
        procs, self._procs = self._procs, []
        processes.stop_procs(procs)
        layout, self._layout = self._layout, None
        if layout is not None:
            shutil.rmtree(layout.workdir, ignore_errors=True)
        processes.untrack(self)

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
                lambda n=name: probes.crd_established(self.request("GET", f"{base}/{n}")[1]),  # type: ignore[misc]
                timeout,
                component="kube-apiserver",
            )
        # Established is not yet usable: the resource's storage may still answer 429.
        for doc in docs:
            path = probes.crd_list_path(doc)
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
        self._procs.append(
            processes.spawn(
                self.bin_dir / name,
                name,
                args,
                log=self.layout.log(name),
                cwd=self.layout.workdir,
                die_with_parent=self.die_with_parent,
            )
        )
        pids = "\n".join(f"{p.name} {p.popen.pid}" for p in self._procs)
        (self.layout.workdir / "pids").write_text(pids + "\n")

    def _start_kwok(self, left: Callable[[], float]) -> None:
        """kwok and its fake node, Ready. kwok v0.8.0 can die as it starts ("fatal error:
        concurrent map writes" in its CEL set-up, seen once in ~100 starts on a loaded machine):
        a kwok that exits before the node is Ready is started again, up to `KWOK_STARTS` times."""
        for attempt in range(1, KWOK_STARTS + 1):
            self._spawn("kwok", kwok_args(self.layout, self.bin_dir / KWOK_STAGES))
            status, body = self.request("POST", "/api/v1/nodes", fake_node())
            if status >= 300 and status != 409:  # 409: created by the previous attempt
                raise ControlPlaneError(
                    f"creating the fake node failed ({status}): {_message(body)}"
                )
            try:
                self._wait(
                    f"node {FAKE_NODE} Ready",
                    lambda: node_ready(self.request("GET", f"/api/v1/nodes/{FAKE_NODE}")[1]),
                    left(),
                    component="kwok",
                )
                return
            except ControlPlaneError:
                kwok = self._procs[-1]
                if attempt == KWOK_STARTS or kwok.popen.poll() is None:
                    raise  # not kwok's start-up crash, or no try left
                self._procs.pop()

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
        generate_sa_key(layout.sa_key)
        layout.token_file.write_text(token_auth_csv([self.admin, self.user]))

        self._spawn("etcd", etcd_args(layout))
        self._wait(
            "etcd /health", lambda: probes.etcd_healthy(layout.etcd_url), left(), component="etcd"
        )
        self._spawn("kube-apiserver", apiserver_args(layout, self.extra_apiserver_args))
        self._wait(
            "kube-apiserver /readyz",
            lambda: probes.readyz(layout.server, self.admin.token),
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
            self._start_kwok(left)
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


def _decode(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return raw.decode(errors="replace")


def _message(body: Any) -> str:
    if isinstance(body, dict):
        return str(body.get("message", body))
    return str(body)


@contextlib.contextmanager
def running(bin_dir: Path, **kwargs: Any) -> Iterator[ControlPlane]:
    """`with running(bin_dir) as cp:` — start a control plane and always stop it."""
    plane = ControlPlane(bin_dir, **kwargs)
    with plane:
        yield plane
