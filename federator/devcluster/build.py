"""Build (once, cached) the control-plane binaries from the pinned recipe in hack/controlplane/.

Why: there is no Docker and no cluster here, only Go and its module proxy. The binaries land in
`${FEDERATOR_CACHE:-~/.cache/federator}/controlplane/<recipe-hash>/bin`, outside the repo, keyed
by a hash of the recipe files so that a recipe change rebuilds; only missing binaries are built,
and Go's own module and build caches are reused.

Run: `python -m federator.devcluster.build [--check] [--print-bin-dir]`.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from federator.core import resources

# Bump when the way binaries are built changes (flags), so old caches are not reused.
BUILD_FORMAT = "1"
RECIPE_FILES: tuple[str, ...] = ("go.mod", "go.sum", "tools.txt")
# Built from the recipe module (hack/controlplane/go.mod), in this order (most needed first).
KUBE_BINARIES: tuple[str, ...] = (
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kubectl",
)
ETCD = "etcd"
ETCD_PACKAGE = "go.etcd.io/etcd/server/v3"
KUBERNETES_MODULE = "k8s.io/kubernetes"
VERSION_PACKAGES: tuple[str, ...] = (
    "k8s.io/component-base/version",
    "k8s.io/client-go/pkg/version",
)
HEARTBEAT_SECONDS = 60.0
# kwok ships its default stages as YAML in its module (kwokctl embeds them); the launcher hands
# the same files, from the pinned kwok version, to the bare `kwok` binary.
KWOK_STAGES = "kwok-stages.yaml"
KWOK_STAGE_FILES: tuple[str, ...] = (
    "kustomize/stage/node/fast/node-initialize.yaml",
    "kustomize/stage/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml",
    "kustomize/stage/pod/fast/pod-ready.yaml",
    "kustomize/stage/pod/fast/pod-complete.yaml",
    "kustomize/stage/pod/fast/pod-delete.yaml",
)


class BuildError(RuntimeError):
    """The control plane could not be built (or is missing where building is not allowed)."""


@dataclass(frozen=True)
class BuildStep:
    """One binary and the command that produces it in a scratch directory `out_dir`."""

    name: str
    argv: tuple[str, ...]
    cwd: Path
    env: Mapping[str, str]


def recipe_dir() -> Path:
    """Where the pinned Go recipe lives: hack/controlplane in a checkout, package data in a
    wheel; FEDERATOR_RECIPE_DIR overrides (to try another recipe)."""
    env = os.environ.get("FEDERATOR_RECIPE_DIR")
    return Path(env) if env else resources.controlplane_recipe_dir()


def cache_root() -> Path:
    """Root of federator's caches, outside the repo so clones and `git clean` keep it."""
    env = os.environ.get("FEDERATOR_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "federator"


def recipe_hash(contents: Mapping[str, bytes]) -> str:
    """A short stable key over the recipe files' names and bytes (and the build format)."""
    digest = hashlib.sha256(f"format={BUILD_FORMAT}\n".encode())
    for name in sorted(contents):
        digest.update(f"{name}\n{len(contents[name])}\n".encode())
        digest.update(contents[name])
    return digest.hexdigest()[:16]


def read_recipe(directory: Path) -> dict[str, bytes]:
    """The recipe files' bytes; a missing file is a clear BuildError."""
    out: dict[str, bytes] = {}
    for name in RECIPE_FILES:
        path = directory / name
        if not path.is_file():
            raise BuildError(f"control-plane recipe file missing: {path}")
        out[name] = path.read_bytes()
    return out


def bin_dir(directory: Path | None = None, root: Path | None = None) -> Path:
    """The per-recipe binary directory; FEDERATOR_CONTROLPLANE_BIN points at prebuilt ones."""
    env = os.environ.get("FEDERATOR_CONTROLPLANE_BIN")
    if env:
        return Path(env).expanduser()
    key = recipe_hash(read_recipe(directory or recipe_dir()))
    return (root or cache_root()) / "controlplane" / key / "bin"


def parse_tools(text: str) -> dict[str, str]:
    """`name package@version` lines of tools.txt (comments and blanks ignored)."""
    tools: dict[str, str] = {}
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) != 2 or "@" not in parts[1]:
            raise BuildError(f"tools.txt:{lineno}: expected 'name package@version', got {raw!r}")
        tools[parts[0]] = parts[1]
    return tools


def module_version(go_mod: str, module: str) -> str:
    """The required version of `module` in go.mod text (e.g. 'v1.35.4')."""
    match = re.search(rf"^\s*(?:require\s+)?{re.escape(module)}\s+(v\S+)", go_mod, re.MULTILINE)
    if not match:
        raise BuildError(f"go.mod does not require {module}")
    return match.group(1)


def version_ldflags(git_version: str) -> str:
    """-ldflags so `--version` reports the real release (no git checkout to read it from)."""
    match = re.fullmatch(r"v(\d+)\.(\d+)\.\d+.*", git_version)
    if not match:
        raise BuildError(f"not a Kubernetes release version: {git_version!r}")
    major, minor = match.groups()
    flags = ["-s", "-w"]
    for pkg in VERSION_PACKAGES:
        flags += [
            f"-X {pkg}.gitVersion={git_version}",
            f"-X {pkg}.gitMajor={major}",
            f"-X {pkg}.gitMinor={minor}",
            f"-X {pkg}.gitTreeState=clean",
        ]
    return " ".join(flags)


def go_env(base: Mapping[str, str], jobs: int) -> dict[str, str]:
    """Environment for `go`: static binaries, read-only pinned modules, bounded parallelism."""
    env = dict(base)
    env["CGO_ENABLED"] = "0"
    # -mod=readonly: the committed go.mod/go.sum are the recipe; never rewrite them.
    env["GOFLAGS"] = f"-mod=readonly -buildvcs=false -p={jobs}"
    return env


def build_steps(
    directory: Path, out_dir: Path, base_env: Mapping[str, str], jobs: int
) -> list[BuildStep]:
    """Every binary's build command, writing into out_dir (moved into place after success)."""
    go_mod = (directory / "go.mod").read_text()
    kube_version = module_version(go_mod, KUBERNETES_MODULE)
    env = go_env(base_env, jobs)
    steps = [
        BuildStep(
            name,
            (
                "go",
                "build",
                "-trimpath",
                "-ldflags",
                version_ldflags(kube_version),
                "-o",
                str(out_dir / name),
                f"{KUBERNETES_MODULE}/cmd/{name}",
            ),
            directory,
            env,
        )
        for name in KUBE_BINARIES
    ]
    steps.append(
        BuildStep(
            ETCD,
            (
                "go",
                "build",
                "-trimpath",
                "-ldflags",
                "-s -w",
                "-o",
                str(out_dir / ETCD),
                ETCD_PACKAGE,
            ),
            directory,
            env,
        )
    )
    tools = parse_tools((directory / "tools.txt").read_text())
    for name, spec in tools.items():
        tool_env = dict(env)
        tool_env["GOBIN"] = str(out_dir)
        # Outside any module: `go install pkg@version` uses the tool's own go.mod.
        tool_env["GOFLAGS"] = f"-buildvcs=false -p={jobs}"
        steps.append(
            BuildStep(
                name,
                ("go", "install", "-trimpath", "-ldflags", "-s -w", spec),
                out_dir,
                tool_env,
            )
        )
    return steps


def all_binaries(directory: Path | None = None) -> list[str]:
    """Names of every binary the recipe produces."""
    tools = parse_tools(((directory or recipe_dir()) / "tools.txt").read_text())
    return [*KUBE_BINARIES, ETCD, *tools]


def missing_binaries(target: Path, names: Sequence[str]) -> list[str]:
    """Names not yet present (as executables) in the target directory."""
    return [n for n in names if not os.access(target / n, os.X_OK)]


def module_of(spec: str) -> str:
    """`sigs.k8s.io/kwok/cmd/kwok@v0.8.0` -> `sigs.k8s.io/kwok@v0.8.0` (module of a tool)."""
    package, version = spec.split("@", 1)
    parts = package.split("/")
    if "cmd" in parts:
        parts = parts[: parts.index("cmd")]
    return "/".join(parts) + "@" + version


def write_kwok_stages(target: Path, kwok_spec: str, env: Mapping[str, str]) -> Path:
    """Concatenate kwok's default node/pod stages from its (downloaded) module source."""
    proc = subprocess.run(
        ["go", "mod", "download", "-json", module_of(kwok_spec)],
        capture_output=True,
        text=True,
        env=dict(env),
        cwd=target,
        check=False,
    )
    if proc.returncode != 0:
        raise BuildError(f"go mod download {module_of(kwok_spec)} failed: {proc.stderr.strip()}")
    source = Path(json.loads(proc.stdout)["Dir"])
    docs = [(source / rel).read_text().strip() for rel in KWOK_STAGE_FILES]
    out = target / KWOK_STAGES
    tmp = out.with_suffix(".tmp")
    tmp.write_text("\n---\n".join(docs) + "\n")
    os.replace(tmp, out)
    return out


def _missing(target: Path, wanted: Sequence[str]) -> list[str]:
    """Missing binaries, plus kwok's stage file when kwok is wanted."""
    missing = missing_binaries(target, wanted)
    if "kwok" in wanted and not (target / KWOK_STAGES).is_file():
        missing.append(KWOK_STAGES)
    return missing


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Serialise concurrent builds of one recipe (two test sessions, CLI and tests)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _run_step(step: BuildStep, log_path: Path, out: TextIO) -> None:
    """Run one build with a heartbeat; raise BuildError with the log tail on failure."""
    t0 = time.monotonic()
    with log_path.open("ab") as log:
        log.write(f"\n$ {' '.join(step.argv)}\n".encode())
        log.flush()
        proc = subprocess.Popen(
            step.argv, cwd=step.cwd, env=dict(step.env), stdout=log, stderr=subprocess.STDOUT
        )
        try:
            while True:
                try:
                    code = proc.wait(timeout=HEARTBEAT_SECONDS)
                    break
                except subprocess.TimeoutExpired:
                    _say(out, f"  ... still building {step.name} ({time.monotonic() - t0:.0f}s)")
        except BaseException:
            proc.kill()
            proc.wait()
            raise
    if code != 0:
        tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-30:])
        raise BuildError(
            f"building {step.name} failed (exit {code}) after {time.monotonic() - t0:.0f}s; "
            f"full log: {log_path}\n{tail}"
        )


def _say(out: TextIO, text: str) -> None:
    print(text, file=out, flush=True)


def ensure_binaries(
    *, build: bool = True, names: Sequence[str] | None = None, out: TextIO | None = None
) -> Path:
    """Return the bin directory with every binary present, building only what is missing.

    With build=False a missing binary raises BuildError instead (CI must never silently skip).
    """
    stream = out if out is not None else sys.stderr
    directory = recipe_dir()
    target = bin_dir(directory)
    wanted = list(names) if names is not None else all_binaries(directory)
    if not _missing(target, wanted):
        return target
    if os.environ.get("FEDERATOR_CONTROLPLANE_BIN"):
        raise BuildError(f"FEDERATOR_CONTROLPLANE_BIN={target} lacks {_missing(target, wanted)}")
    if not build:
        raise BuildError(
            f"control-plane binaries missing in {target}: "
            f"{', '.join(_missing(target, wanted))}; build them with "
            "`python -m federator.devcluster.build` (or `make controlplane`)"
        )
    if shutil.which("go") is None:
        raise BuildError(
            "the Go toolchain (`go`) is not on PATH; it is needed to build the binaries"
        )
    with _locked(target.parent / ".lock"):
        todo = missing_binaries(target, wanted)
        if not _missing(target, wanted):
            return target
        jobs = max(1, os.cpu_count() or 1)
        target.mkdir(parents=True, exist_ok=True)
        log_path = target.parent / "build.log"
        started = time.monotonic()
        _say(stream, f"federator: building {len(todo)} control-plane binaries into {target}")
        if not todo:
            _say(stream, "federator: binaries present; only kwok's stage file is missing")
        _say(stream, f"federator: recipe {directory}; log {log_path}; go -p={jobs}")
        with tempfile.TemporaryDirectory(prefix=".build-", dir=target.parent) as scratch:
            scratch_dir = Path(scratch)
            # Build from a copy: an installed package's data may be read-only, and go reads
            # only these files (-mod=readonly).
            module_dir = scratch_dir / "recipe"
            module_dir.mkdir()
            for name, data in read_recipe(directory).items():
                (module_dir / name).write_bytes(data)
            steps = {s.name: s for s in build_steps(module_dir, scratch_dir, os.environ, jobs)}
            for index, name in enumerate(todo, 1):
                step = steps[name]
                _say(stream, f"[{index}/{len(todo)}] {name}: building")
                t0 = time.monotonic()
                _run_step(step, log_path, stream)
                # Atomic: a killed build never leaves a half-written binary in bin/.
                os.replace(scratch_dir / name, target / name)
                _say(
                    stream,
                    f"[{index}/{len(todo)}] {name}: done in {time.monotonic() - t0:.1f}s "
                    f"(total {time.monotonic() - started:.1f}s)",
                )
        if "kwok" in wanted and not (target / KWOK_STAGES).is_file():
            tools = parse_tools((directory / "tools.txt").read_text())
            write_kwok_stages(target, tools["kwok"], go_env(os.environ, jobs))
        _say(stream, f"federator: control plane ready in {time.monotonic() - started:.1f}s")
    return target


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point: build what is missing, or just check / print the bin directory."""
    parser = argparse.ArgumentParser(
        prog="python -m federator.devcluster.build",
        description="Build (cached) the embedded control plane's binaries from hack/controlplane.",
    )
    parser.add_argument("--check", action="store_true", help="exit 1 if any binary is missing")
    parser.add_argument("--print-bin-dir", action="store_true", help="print the bin directory")
    args = parser.parse_args(argv)
    try:
        if args.print_bin_dir:
            print(bin_dir())
            return 0
        target = ensure_binaries(build=not args.check)
    except BuildError as exc:
        print(f"federator: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("federator: build interrupted", file=sys.stderr)
        return 130
    print(target)
    return 0


if __name__ == "__main__":
    sys.exit(main())
