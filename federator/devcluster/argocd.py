"""A real Argo CD, built once from the Go module proxy and run out of cluster on loopback.

Why: federator is driven by GitOps and ships Argo CD health checks (charts/federator/argocd); only
a real Argo CD proves them. `RECIPE` builds the multi-call `argocd` binary (application
controller, repo-server and API server by `ARGOCD_BINARY_NAME`) and an in-memory Redis
(miniredis) into a directory cached like the other delegates (`federator.devcluster.delegates`).
`ArgoCD` runs them against a cluster's kubeconfig: no container, no in-cluster install.

Run: `python -m federator.devcluster.delegates build argocd [--check]`.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import socket
import stat
import subprocess
import time
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import yaml

from federator.devcluster import delegates
from federator.devcluster.harness import free_port, stop_group

if TYPE_CHECKING:
    from federator.devcluster.launcher import ControlPlane

ARGOCD_MODULE = "github.com/argoproj/argo-cd/v3"
GITOPS_ENGINE_MODULE = "github.com/argoproj/argo-cd/gitops-engine/v3"
ARGOCD_VERSION = "v3.6.2"
# go.mod of argo-cd v3.6 says `go 1.27.0`: the go command fetches this toolchain from the proxy.
GO_TOOLCHAIN = "go1.27.3"
RECIPE_FILES: tuple[str, ...] = ("miniredis/go.mod", "miniredis/go.sum", "miniredis/main.go")
# The repo-server runs git-verify-wrapper.sh on every manifest generation: without it on its PATH
# every sync fails with a bare "permission denied".
WRAPPER_SCRIPTS: tuple[str, ...] = ("git-verify-wrapper.sh", "gpg-wrapper.sh", "git-ask-pass.sh")
CRD_FILES: tuple[str, ...] = (
    "application-crd.yaml",
    "appproject-crd.yaml",
    "applicationset-crd.yaml",
)
STOP_GRACE_SECONDS = 10.0
COMPONENTS: tuple[str, ...] = ("redis", "repo-server", "controller", "server")  # start order
# The multi-call binary picks its component by this name.
BINARY_NAMES = {
    "repo-server": "argocd-repo-server",
    "controller": "argocd-application-controller",
    "server": "argocd-server",
}


@dataclass(frozen=True)
class ArgoCDBuild:
    """Where one built Argo CD lives: bin/ (argocd, the wrapper scripts, miniredis-server),
    crds/ and config/ (the module's manifests/crds and manifests/base/config)."""

    root: Path

    @property
    def bin_dir(self) -> Path:
        return self.root / "bin"

    @property
    def binary(self) -> Path:
        return self.bin_dir / "argocd"

    @property
    def redis(self) -> Path:
        return self.bin_dir / "miniredis-server"

    @property
    def crds_dir(self) -> Path:
        return self.root / "crds"

    @property
    def config_dir(self) -> Path:
        return self.root / "config"

    @property
    def complete(self) -> bool:
        return delegates.is_complete(self.root) and os.access(self.binary, os.X_OK)


def _go(*args: str, toolchain: str = GO_TOOLCHAIN) -> tuple[str, ...]:
    """A go command with the build's environment spelled out (so the build log shows it)."""
    return (
        "env",
        f"GOTOOLCHAIN={toolchain}",
        "GOFLAGS=-buildvcs=false",
        "CGO_ENABLED=0",
        "nice",
        "-n",
        "10",
        "go",
        *args,
    )


def _writable_copy(source: Path, target: Path) -> None:
    """Copy a (read-only) module directory out of Go's module cache, writable."""
    shutil.copytree(source, target)
    for path in (target, *target.rglob("*")):
        if not path.is_symlink():
            path.chmod(path.stat().st_mode | stat.S_IWUSR)


def _assemble(scratch: Path, directory: Path, log_path: Path, out: TextIO) -> Mapping[str, object]:
    """bin/{argocd, wrapper scripts, miniredis-server}, crds/, config/ into `scratch`."""
    t0 = time.monotonic()
    version = ARGOCD_VERSION.removeprefix("v")

    def say(text: str) -> None:
        print(text, file=out, flush=True)

    def download(spec: str) -> Path:
        argv = _go("mod", "download", "-json", spec)
        text = delegates.run_step(f"downloading {spec}", argv, scratch, log_path, out)
        return Path(json.loads(text)["Dir"])

    say(f"[1/3] go mod download {ARGOCD_MODULE}@{ARGOCD_VERSION} (+ gitops-engine)")
    # `go install` refuses a module with replace directives: build inside a writable copy. Its
    # go.mod replaces gitops-engine with ./gitops-engine, a nested module absent from the zip.
    src = scratch / ".src"
    _writable_copy(download(f"{ARGOCD_MODULE}@{ARGOCD_VERSION}"), src)
    _writable_copy(download(f"{GITOPS_ENGINE_MODULE}@{ARGOCD_VERSION}"), src / "gitops-engine")
    say(f"[2/3] go build ./cmd with {GO_TOOLCHAIN} (about 15 min on a cold Go build cache)")
    bin_dir = scratch / "bin"
    bin_dir.mkdir()
    ldflags = f"-s -w -X github.com/argoproj/argo-cd/v3/common.version={version}"
    build = _go("build", "-p", "2", "-trimpath", "-ldflags", ldflags, "-o", str(bin_dir / "argocd"))
    delegates.run_step("building argocd", (*build, "./cmd"), src, log_path, out)
    for script in WRAPPER_SCRIPTS:
        shutil.copyfile(src / "hack" / script, bin_dir / script)
        (bin_dir / script).chmod(0o755)
    shutil.copytree(src / "manifests" / "crds", scratch / "crds")
    shutil.copytree(src / "manifests" / "base" / "config", scratch / "config")
    shutil.rmtree(src)
    say(f"      done at {time.monotonic() - t0:.0f}s")
    say("[3/3] miniredis-server (Redis for Argo CD's cache)")
    redis_src = scratch / ".miniredis"
    redis_src.mkdir()
    for name in RECIPE_FILES:
        shutil.copyfile(directory / name, redis_src / Path(name).name)
    redis_out = str(bin_dir / "miniredis-server")
    redis = _go("build", "-p", "2", "-trimpath", "-o", redis_out, ".", toolchain="local")
    delegates.run_step("building miniredis-server", redis, redis_src, log_path, out)
    shutil.rmtree(redis_src)
    return {"module": f"{ARGOCD_MODULE}@{ARGOCD_VERSION}", "toolchain": GO_TOOLCHAIN}


RECIPE = delegates.Recipe(
    name="argocd",
    product="argocd",
    version=ARGOCD_VERSION,
    files=RECIPE_FILES,
    tools=("go",),
    assemble=_assemble,
)


def ensure_argocd(*, build_missing: bool = True, out: TextIO | None = None) -> ArgoCDBuild:
    """The built Argo CD, building it if missing (build_missing=False: raise instead)."""
    return ArgoCDBuild(delegates.ensure(RECIPE, build_missing=build_missing, out=out))


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


DEFAULT_PROJECT: dict[str, object] = {
    "apiVersion": "argoproj.io/v1alpha1",
    "kind": "AppProject",
    "metadata": {"name": "default", "namespace": "argocd"},
    "spec": {
        "sourceRepos": ["*"],
        "destinations": [{"server": "*", "namespace": "*"}],
        "clusterResourceWhitelist": [{"group": "*", "kind": "*"}],
    },
}


def commands(
    built: ArgoCDBuild, ports: Mapping[str, int], *, app_resync: int = 10
) -> dict[str, list[str]]:
    """The command line of each component, every listener on loopback (the controller's metrics
    port, which has no address flag, aside)."""
    redis = f"127.0.0.1:{ports['redis']}"
    binary = str(built.binary)
    common = ["--loglevel", "info", "--logformat", "text", "--redis", redis]
    clients = ["--repo-server", f"127.0.0.1:{ports['repo-server']}", "--repo-server-plaintext"]
    namespace = ["--namespace", ArgoCD.NAMESPACE]
    # v3.6 refuses --disable-tls with its default (non-empty) client CA path.
    repo_server = [binary, *common, "--disable-tls", "--client-ca-path="]
    repo_server += ["--address", "127.0.0.1", "--port", str(ports["repo-server"])]
    repo_server += ["--metrics-address", "127.0.0.1", "--metrics-port", str(ports["repo-metrics"])]
    # A branch's head is cached for 3 minutes by default: a new commit would go unseen.
    repo_server += ["--revision-cache-expiration", "1s"]
    # --persist-resource-health: each resource's health in status.resources (since 3.0 it is
    # otherwise kept only in Redis).
    controller = [binary, *common, *namespace, *clients, "--metrics-port", str(ports["controller"])]
    controller += ["--app-resync", str(app_resync), "--app-resync-jitter", "0"]
    controller += ["--self-heal-timeout-seconds", "2", "--persist-resource-health"]
    # The API server (for the resource tree): no UI, no TLS, no auth, no Dex.
    server = [binary, *common, *namespace, *clients, "--insecure", "--disable-auth"]
    server += ["--address", "127.0.0.1", "--port", str(ports["server"])]
    server += ["--metrics-address", "127.0.0.1", "--metrics-port", str(ports["server-metrics"])]
    server += ["--dex-server", "http://127.0.0.1:1", "--dex-server-plaintext"]
    return {
        "redis": [str(built.redis), "-addr", redis],
        "repo-server": repo_server,
        "controller": controller,
        "server": server,
    }


class ArgoCD:
    """Argo CD out of cluster on loopback against `plane`: miniredis, the repo-server, the
    application controller and (optionally) the API server, each in its own process group with
    its log in `workdir`. `ARGOCD_FAKE_IN_CLUSTER=true` makes the in-cluster destination
    (https://kubernetes.default.svc) use $KUBECONFIG, as Argo CD's own dev setup does."""

    NAMESPACE = "argocd"
    IN_CLUSTER = "https://kubernetes.default.svc"

    def __init__(
        self,
        built: ArgoCDBuild,
        plane: ControlPlane,
        workdir: Path,
        *,
        health_config: Path | None = None,
        app_resync: int = 10,
        api_server: bool = True,
    ) -> None:
        self.built, self.plane, self.workdir = built, plane, workdir
        self.health_config = health_config
        self.app_resync = app_resync
        self.api_server = api_server
        self.ports: dict[str, int] = {}
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    # -- installation: what an in-cluster install would have put in the cluster

    def install(self) -> None:
        """Argo CD's CRDs (server-side: the ApplicationSet CRD is too big for the last-applied
        annotation), its namespace, config maps and secret, the `default` AppProject (the API
        server creates it at its first start), `server.secretkey` (without it the controller
        ignores every live argocd-cm change) and the health customizations, if given."""
        crds = [str(self.built.crds_dir / name) for name in CRD_FILES]
        self.plane.install_crds(*crds, timeout=120.0)
        self.plane.kubectl("create", "namespace", self.NAMESPACE, check=False)
        for config in sorted(self.built.config_dir.glob("argocd-*.yaml")):
            self.plane.kubectl("apply", "--server-side", "-n", self.NAMESPACE, "-f", str(config))
        self.plane.kubectl("apply", "--server-side", "-f", "-", stdin=json.dumps(DEFAULT_PROJECT))
        secret = base64.b64encode(secrets.token_bytes(32)).decode()
        self._patch("secrets/argocd-secret", {"stringData": {"server.secretkey": secret}})
        if self.health_config is not None:
            patch = yaml.safe_load(self.health_config.read_text())
            self._patch("configmaps/argocd-cm", {"data": patch["data"]})

    def _patch(self, resource: str, body: Mapping[str, object]) -> None:
        status, got = self.plane.request(
            "PATCH",
            f"/api/v1/namespaces/{self.NAMESPACE}/{resource}",
            body,
            content_type="application/merge-patch+json",
        )
        if status != 200:
            raise RuntimeError(f"patching {resource} failed ({status}): {got}")

    # -- the processes

    def _env(self) -> dict[str, str]:
        run = self.workdir / "run"
        for sub in ("tls", "ssh", "gpg", "tmp"):
            (run / sub).mkdir(parents=True, exist_ok=True)
        # The wrapper scripts, git and helm (the control plane's bin dir) for the repo-server.
        path = os.pathsep.join(
            (str(self.built.bin_dir), str(self.plane.bin_dir), os.environ.get("PATH", ""))
        )
        return {
            **os.environ,
            "PATH": path,
            "KUBECONFIG": str(self.plane.kubeconfig),
            "ARGOCD_FAKE_IN_CLUSTER": "true",
            "TMPDIR": str(run / "tmp"),
            "ARGOCD_TLS_DATA_PATH": str(run / "tls"),
            "ARGOCD_SSH_DATA_PATH": str(run / "ssh"),
            "ARGOCD_GPG_DATA_PATH": str(run / "gpg"),
            "ARGOCD_GPG_ENABLED": "false",
        }

    def _spawn(self, name: str, argv: Sequence[str], env: Mapping[str, str]) -> None:
        with (self.workdir / f"{name}.log").open("ab") as out:
            self.procs[name] = subprocess.Popen(
                list(argv),
                stdout=out,
                stderr=subprocess.STDOUT,
                env=dict(env),
                cwd=self.workdir,
                start_new_session=True,
            )

    def _wait_port(self, name: str, port: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not _port_open(port):
            proc = self.procs[name]
            if proc.poll() is not None or time.monotonic() > deadline:
                why = "exited" if proc.poll() is not None else f"not listening in {timeout:.0f}s"
                tail = self.log_tail(name)
                self.stop()
                raise RuntimeError(f"Argo CD's {name} {why} (port {port}):\n{tail}")
            time.sleep(0.1)

    def start(self, timeout: float = 120.0) -> None:
        """Install, then start redis, repo-server, controller (and API server), each awaited
        on its port."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.install()
        for name in (*COMPONENTS, "repo-metrics", "server-metrics"):
            port = free_port()
            while port in self.ports.values():
                port = free_port()
            self.ports[name] = port
        env = self._env()
        argv = commands(self.built, self.ports, app_resync=self.app_resync)
        for name in COMPONENTS if self.api_server else COMPONENTS[:-1]:
            binary_name = BINARY_NAMES.get(name)
            extra = {"ARGOCD_BINARY_NAME": binary_name} if binary_name else {}
            self._spawn(name, argv[name], {**env, **extra})
            self._wait_port(name, self.ports[name], timeout)

    def stop(self) -> None:
        """The API server and controller first, Redis last; each group SIGTERMed, then
        SIGKILLed after a grace."""
        for name in reversed(COMPONENTS):
            proc = self.procs.pop(name, None)
            if proc is not None:
                stop_group(proc, STOP_GRACE_SECONDS)

    def __enter__(self) -> ArgoCD:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- for tests and failure messages

    def log_tail(self, name: str, lines: int = 30) -> str:
        path = self.workdir / f"{name}.log"
        if not path.is_file():
            return f"(no {name} log)"
        text = path.read_text(errors="replace").splitlines()[-lines:]
        return f"--- {path} (last {len(text)} lines)\n" + "\n".join(text)

    def logs(self, lines: int = 30) -> str:
        """The tail of every component's log, for an assertion's message."""
        return "\n".join(self.log_tail(n, lines) for n in ("controller", "repo-server", "server"))

    def tree(self, app: str) -> dict[str, object]:
        """The API server's resource tree of an Argo CD Application (what its UI draws)."""
        url = f"http://127.0.0.1:{self.ports['server']}/api/v1/applications/{app}/resource-tree"
        with urllib.request.urlopen(url, timeout=10) as resp:
            return dict(json.loads(resp.read()))
