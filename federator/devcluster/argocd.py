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
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from federator.devcluster import delegates
from federator.devcluster.harness import free_port, stop_group

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
