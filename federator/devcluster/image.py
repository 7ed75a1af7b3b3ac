"""Build (once, cached) federator's container image with podman, from Debian packages only.

Why: the image is what users run, so the tests must run it too, and this machine (like CI) has
no Docker engine and no registry serving python:3.11-slim-bookworm. Everything here comes from
the package registries: podman and buildah are Debian packages (installed by `ensure_tools`),
the base image is bootstrapped from Debian packages (hack/image/base.toml) and imported, and the
Dockerfile is built on it (`--build-arg BASE_IMAGE=...`), pip reaching the index through a build
secret (the host's CA bundle), never through a file left in the image.

Caching follows the control plane's and the delegates' conventions, under
`${FEDERATOR_CACHE:-~/.cache/federator}/image/`:
- `base-<key>/`: the base image, keyed by the bytes of its recipe;
- `federator-<key>/`: the image, keyed by everything that goes into it (the Dockerfile,
  .dockerignore, the locks, the build context's files, the base's key);
each directory is assembled in a scratch directory and renamed into place, its completion
marker (with the image id and size) written last, under one lock. A marker whose image is gone
from podman's storage is rebuilt. podman reads only the project's own configuration files,
written under `image/podman/` (CONTAINERS_CONF, CONTAINERS_STORAGE_CONF): nothing
system-wide changes.

Run: `python -m federator.devcluster.image build [--check] [--print-tag]`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from federator.devcluster import build

# Bump when the way images are built changes, so old caches are not reused.
BUILD_FORMAT = "1"
COMPLETE_MARKER = ".complete"
REPO = Path(__file__).resolve().parents[2]
# Debian packages of the daemonless builder and the base image's bootstrap.
TOOL_PACKAGES: tuple[str, ...] = (
    "podman",
    "buildah",
    "runc",
    "fuse-overlayfs",
    "uidmap",
    "debootstrap",
)
TOOLS: tuple[str, ...] = ("podman", "buildah", "runc", "debootstrap")
# pip inside the build reaches the index with this CA bundle (a build secret), when present.
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
IMAGE_NAME = "localhost/federator"
BASE_NAME = "localhost/federator-base"
# Built images kept (the newest ones): several checkouts share the cache.
KEEP_IMAGES = 3


class ImageBuildError(RuntimeError):
    """The image could not be built (or is missing where building is not allowed)."""


@dataclass(frozen=True)
class BaseRecipe:
    """hack/image/base.toml: a Debian release bootstrapped with Python, imported as an image."""

    suite: str
    variant: str
    mirror: str
    packages: tuple[str, ...]
    trim: tuple[str, ...]
    env: tuple[str, ...]
    cmd: tuple[str, ...]

    @classmethod
    def parse(cls, text: str) -> BaseRecipe:
        data = tomllib.loads(text)
        try:
            return cls(
                suite=str(data["suite"]),
                variant=str(data["variant"]),
                mirror=str(data["mirror"]),
                packages=tuple(data["packages"]),
                trim=tuple(data.get("trim", ())),
                env=tuple(data.get("env", ())),
                cmd=tuple(data.get("cmd", ())),
            )
        except KeyError as exc:
            raise ImageBuildError(f"hack/image/base.toml lacks {exc}") from None

    def debootstrap_argv(self, target: Path, debs: Path) -> list[str]:
        return [
            "debootstrap",
            f"--variant={self.variant}",
            f"--include={','.join(self.packages)}",
            f"--cache-dir={debs}",
            self.suite,
            str(target),
            self.mirror,
        ]

    def import_changes(self) -> list[str]:
        """`podman import --change` arguments: an imported tarball has no configuration."""
        changes = [f"ENV {item}" for item in self.env]
        if self.cmd:
            changes.append(f"CMD {json.dumps(list(self.cmd))}")
        return [arg for change in changes for arg in ("--change", change)]


# ---- keys ---------------------------------------------------------------------------------------


def _digest(parts: Mapping[str, bytes]) -> str:
    digest = hashlib.sha256(f"format={BUILD_FORMAT}\n".encode())
    for name in sorted(parts):
        digest.update(f"{name}\n{len(parts[name])}\n".encode())
        digest.update(parts[name])
    return digest.hexdigest()[:16]


def base_recipe_path(repo: Path = REPO) -> Path:
    return repo / "hack" / "image" / "base.toml"


def base_key(repo: Path = REPO) -> str:
    """The base image's key: its recipe's bytes (and the build format)."""
    return _digest({"base.toml": base_recipe_path(repo).read_bytes()})


def dockerignore_roots(text: str) -> list[str]:
    """The paths a `*`-first .dockerignore lets back in (`!path`), in order."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    if not lines or lines[0] != "*":
        raise ImageBuildError(".dockerignore must exclude everything first (`*`)")
    return [ln[1:].rstrip("/") for ln in lines if ln.startswith("!")]


def _ignored(rel: Path) -> bool:
    """The .dockerignore's never-inside patterns (caches and bytecode)."""
    caches = {"__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache"}
    return bool(caches & set(rel.parts)) or rel.suffix in {".pyc", ".pyo", ".pyd"}


def context_files(repo: Path = REPO) -> list[Path]:
    """Every file of the build context (relative), as .dockerignore lets it in."""
    files: list[Path] = []
    for root in dockerignore_roots((repo / ".dockerignore").read_text()):
        path = repo / root
        if path.is_file():
            files.append(Path(root))
        elif path.is_dir():
            files += [
                p.relative_to(repo)
                for p in path.rglob("*")
                if p.is_file() and not _ignored(p.relative_to(repo))
            ]
        else:
            raise ImageBuildError(f".dockerignore lets in {root}, which does not exist")
    return sorted(set(files))


def image_key(repo: Path = REPO) -> str:
    """The image's key: the Dockerfile, .dockerignore, every context file and the base's key."""
    parts = {
        "Dockerfile": (repo / "Dockerfile").read_bytes(),
        ".dockerignore": (repo / ".dockerignore").read_bytes(),
        "base": base_key(repo).encode(),
    }
    for rel in context_files(repo):
        parts[f"context/{rel.as_posix()}"] = (repo / rel).read_bytes()
    return _digest(parts)


def project_version(repo: Path = REPO) -> str:
    with (repo / "pyproject.toml").open("rb") as handle:
        return str(tomllib.load(handle)["project"]["version"])


# ---- podman, configured by the project's own files ----------------------------------------------


def image_cache(root: Path | None = None) -> Path:
    return (root or build.cache_root()) / "image"


def containers_conf(nofile: int = 20000) -> str:
    """containers.conf for this kind of machine; each line replaced a failure:
    - explicit ulimits: podman's rootful defaults need CAP_SYS_RESOURCE, which a sandbox may
      drop (`crun: setrlimit RLIMIT_NOFILE: Operation not permitted`);
    - runc and cgroupfs: crun refuses a hybrid cgroup layout, there is no systemd as PID 1, and
      runc does not accept `--cgroups=disabled` (limits are enforced on cgroup v1 and v2);
    - host network: no bridge or CNI is needed, the embedded API server listens on loopback;
    - events and container logs to files: there is no journald."""
    return (
        "[containers]\n"
        'netns = "host"\n'
        'cgroups = "enabled"\n'
        f'default_ulimits = ["nofile={nofile}:{nofile}", "nproc=4096:4096"]\n'
        'log_driver = "k8s-file"\n'
        "\n[engine]\n"
        'cgroup_manager = "cgroupfs"\n'
        'events_logger = "file"\n'
        'runtime = "runc"\n'
    )


def storage_conf(directory: Path, driver: str) -> str:
    """storage.conf: podman's images and containers under the cache, not /var/lib/containers."""
    return (
        "[storage]\n"
        f'driver = "{driver}"\n'
        f'graphroot = "{directory / "storage"}"\n'
        f'runroot = "{directory / "run"}"\n'
    )


def _write_if_changed(path: Path, text: str) -> None:
    if path.is_file() and path.read_text() == text:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def podman_env(root: Path | None = None, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment every podman call gets: the project's configuration files only.

    The storage driver is overlay (kernel overlayfs) unless FEDERATOR_PODMAN_STORAGE_DRIVER says
    otherwise (`vfs` works everywhere, slowly); it is fixed once storage exists, since podman
    cannot read storage written by another driver."""
    directory = image_cache(root) / "podman"
    driver_file = directory / "driver"
    if driver_file.is_file():
        driver = driver_file.read_text().strip()
    else:
        driver = os.environ.get("FEDERATOR_PODMAN_STORAGE_DRIVER", "overlay")
    conf, storage = directory / "containers.conf", directory / "storage.conf"
    _write_if_changed(conf, containers_conf())
    _write_if_changed(storage, storage_conf(directory, driver))
    env = dict(os.environ if base is None else base)
    env["CONTAINERS_CONF"] = str(conf)
    env["CONTAINERS_STORAGE_CONF"] = str(storage)
    if not driver_file.is_file():
        probe = subprocess.run(
            ["podman", "info", "--format", "{{.Store.GraphDriverName}}"],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if probe.returncode != 0 and driver == "overlay":
            driver = "vfs"  # no usable overlayfs here: the slow, always-working fallback
            _write_if_changed(storage, storage_conf(directory, driver))
        _write_if_changed(driver_file, driver + "\n")
    return env


def podman(
    *args: str, root: Path | None = None, check: bool = True, timeout: float | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `podman ARGS` with the project's configuration; a failure names its stderr."""
    proc = subprocess.run(
        ["podman", *args],
        env=podman_env(root),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and proc.returncode != 0:
        raise ImageBuildError(f"podman {' '.join(args)} failed ({proc.returncode}): {proc.stderr}")
    return proc


def image_exists(tag: str, root: Path | None = None) -> bool:
    return podman("image", "exists", tag, root=root, check=False).returncode == 0


def image_size(tag: str, root: Path | None = None) -> int:
    """The image's uncompressed size in bytes, as podman reports it."""
    return int(podman("image", "inspect", "--format", "{{.Size}}", tag, root=root).stdout)


def missing_tools() -> list[str]:
    return [tool for tool in TOOLS if shutil.which(tool) is None]


def ensure_tools(out: TextIO) -> None:
    """podman, buildah and debootstrap from Debian packages (apt-get, as root), if missing."""
    missing = missing_tools()
    if not missing:
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise ImageBuildError(
            f"{', '.join(missing)} missing; install the Debian packages "
            f"{' '.join(TOOL_PACKAGES)} (apt-get, as root)"
        )
    _say(out, f"federator: installing {' '.join(TOOL_PACKAGES)} (apt-get)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for argv in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", *TOOL_PACKAGES]):
        proc = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise ImageBuildError(f"{' '.join(argv)} failed: {proc.stdout[-2000:]}{proc.stderr}")
    if missing_tools():
        raise ImageBuildError(f"still missing after apt-get: {', '.join(missing_tools())}")


# ---- building -----------------------------------------------------------------------------------


def _say(out: TextIO, text: str) -> None:
    print(text, file=out, flush=True)


def _run(what: str, argv: Sequence[str], log_path: Path, out: TextIO, **kw: object) -> None:
    """One build step with a heartbeat, logged; a failure shows the log's tail."""
    t0 = time.monotonic()
    with log_path.open("ab") as log:
        log.write(f"\n$ {' '.join(argv)}\n".encode())
        log.flush()
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, **kw)  # type: ignore[call-overload]
        try:
            while True:
                try:
                    code = proc.wait(timeout=build.HEARTBEAT_SECONDS)
                    break
                except subprocess.TimeoutExpired:
                    _say(out, f"  ... still {what} ({time.monotonic() - t0:.0f}s)")
        except BaseException:
            proc.kill()
            proc.wait()
            raise
    if code != 0:
        tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-30:])
        raise ImageBuildError(f"{what} failed (exit {code}); full log: {log_path}\n{tail}")


@dataclass(frozen=True)
class BuiltImage:
    """One built image: its tag and the facts of its completion marker."""

    tag: str
    directory: Path
    facts: Mapping[str, object]

    @property
    def size(self) -> int:
        return int(str(self.facts["size"]))


def _complete(directory: Path, tag: str, root: Path | None) -> dict[str, object] | None:
    """The marker's facts when the directory is complete and its image still in storage."""
    marker = directory / COMPLETE_MARKER
    if not marker.is_file() or not image_exists(tag, root):
        return None
    facts: dict[str, object] = json.loads(marker.read_text())
    return facts


def _install(staged: Path, directory: Path, facts: Mapping[str, object]) -> None:
    """Marker last, then rename into place (an interrupted build leaves nothing half-done)."""
    (staged / COMPLETE_MARKER).write_text(json.dumps(dict(facts), sort_keys=True) + "\n")
    if directory.exists():
        shutil.rmtree(directory)
    os.replace(staged, directory)


def _ensure_base(repo: Path, root: Path | None, out: TextIO) -> str:
    """The base image (debootstrap + import), built if missing; returns its tag."""
    key = base_key(repo)
    tag = f"{BASE_NAME}:{key}"
    cache = image_cache(root)
    directory = cache / f"base-{key}"
    if _complete(directory, tag, root) is not None:
        return tag
    recipe = BaseRecipe.parse(base_recipe_path(repo).read_text())
    log_path = cache / f"base-{key}.build.log"
    _say(
        out,
        f"federator: bootstrapping the base image {tag} (Debian {recipe.suite}); log {log_path}",
    )
    t0 = time.monotonic()
    debs = cache / "debs"  # debootstrap's package cache, shared by every base recipe
    debs.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".build-", dir=cache) as scratch:
        rootfs, staged = Path(scratch) / "rootfs", Path(scratch) / "out"
        staged.mkdir()
        _run(
            "bootstrapping Debian", ["nice", *recipe.debootstrap_argv(rootfs, debs)], log_path, out
        )
        for rel in recipe.trim:
            target = rootfs / rel
            if target.is_dir():
                for child in target.iterdir():
                    if child.is_dir() and not child.is_symlink():
                        shutil.rmtree(child)
                    else:
                        child.unlink()
        tarball = Path(scratch) / "rootfs.tar"
        _run(
            "packing the root filesystem",
            ["tar", "--numeric-owner", "-C", str(rootfs), "-cf", str(tarball), "."],
            log_path,
            out,
        )
        _run(
            "importing the base image",
            ["podman", "import", *recipe.import_changes(), str(tarball), tag],
            log_path,
            out,
            env=podman_env(root),
        )
        facts = {
            "tag": tag,
            "suite": recipe.suite,
            "size": image_size(tag, root),
            "seconds": round(time.monotonic() - t0, 1),
        }
        _install(staged, directory, facts)
    _say(out, f"federator: base image {tag} ready in {time.monotonic() - t0:.0f}s")
    return tag


def build_secrets(scratch: Path, environ: Mapping[str, str]) -> list[str]:
    """`--secret` arguments: the host's CA bundle (FEDERATOR_IMAGE_CA overrides) and, when the
    host names a package index (PIP_INDEX_URL, PIP_EXTRA_INDEX_URL), a pip.conf saying so."""
    args: list[str] = []
    ca = Path(environ.get("FEDERATOR_IMAGE_CA", str(HOST_CA_BUNDLE)))
    if ca.is_file():
        args += ["--secret", f"id=pip-ca,src={ca}"]
    lines = [
        f"{key} = {environ[var]}"
        for var, key in (("PIP_INDEX_URL", "index-url"), ("PIP_EXTRA_INDEX_URL", "extra-index-url"))
        if environ.get(var)
    ]
    if lines:
        conf = scratch / "pip.conf"
        conf.touch(mode=0o600)
        conf.write_text("[global]\n" + "\n".join(lines) + "\n")
        args += ["--secret", f"id=pip-conf,src={conf}"]
    return args


def ensure_image(
    *, build_missing: bool = True, out: TextIO | None = None, root: Path | None = None
) -> BuiltImage:
    """The built image, building it (and its base) if missing; build_missing=False raises
    instead, naming the command that builds it (CI builds in `make test`, never in a test)."""
    stream = out if out is not None else sys.stderr
    repo = REPO
    key = image_key(repo)
    tag = f"{IMAGE_NAME}:{key}"
    cache = image_cache(root)
    directory = cache / f"federator-{key}"
    if missing_tools() and not build_missing:
        raise ImageBuildError(
            f"{', '.join(missing_tools())} not installed; `make image` installs them and builds "
            "the image"
        )
    if not missing_tools():
        facts = _complete(directory, tag, root)
        if facts is not None:
            return BuiltImage(tag, directory, facts)
    if not build_missing:
        raise ImageBuildError(
            f"the image {tag} is not built; build it with `make image` "
            "(python -m federator.devcluster.image build)"
        )
    ensure_tools(stream)
    with build._locked(cache / ".lock"):
        facts = _complete(directory, tag, root)
        if facts is not None:
            return BuiltImage(tag, directory, facts)
        base = _ensure_base(repo, root, stream)
        log_path = cache / f"federator-{key}.build.log"
        _say(stream, f"federator: building the image {tag} on {base}; log {log_path}")
        t0 = time.monotonic()
        with tempfile.TemporaryDirectory(prefix=".build-", dir=cache) as scratch:
            staged = Path(scratch) / "out"
            staged.mkdir()
            argv = [
                "nice",
                "podman",
                "build",
                "--pull=never",
                "--network=host",
                "--layers",
                "--build-arg",
                f"BASE_IMAGE={base}",
                "--build-arg",
                f"VERSION={project_version(repo)}",
                *build_secrets(Path(scratch), os.environ),
                "--file",
                str(repo / "Dockerfile"),
                "--tag",
                tag,
                str(repo),
            ]
            _run("building the image", argv, log_path, stream, env=podman_env(root))
            facts = {
                "tag": tag,
                "base": base,
                "size": image_size(tag, root),
                "seconds": round(time.monotonic() - t0, 1),
            }
            _install(staged, directory, facts)
        for old in prune(root=root):
            _say(stream, f"federator: removed the older image {old}")
        _say(
            stream,
            f"federator: image {tag} built in {time.monotonic() - t0:.0f}s, "
            f"{int(str(facts['size'])) / 1e6:.0f} MB",
        )
    return BuiltImage(tag, directory, facts)


def prune(keep: int = KEEP_IMAGES, root: Path | None = None) -> list[str]:
    """Remove all but the `keep` newest built images (and their cache directories): each source
    change builds a new one. An image a container still uses is left alone (podman refuses),
    so a test running from another checkout is never pulled from under it."""
    cache = image_cache(root)
    built = sorted(
        (d for d in cache.glob("federator-*") if (d / COMPLETE_MARKER).is_file()),
        key=lambda d: (d / COMPLETE_MARKER).stat().st_mtime,
        reverse=True,
    )
    removed: list[str] = []
    for directory in built[keep:]:
        tag = str(json.loads((directory / COMPLETE_MARKER).read_text())["tag"])
        if image_exists(tag, root) and podman("rmi", tag, root=root, check=False).returncode:
            continue
        shutil.rmtree(directory, ignore_errors=True)
        (cache / f"{directory.name}.build.log").unlink(missing_ok=True)
        removed.append(tag)
    return removed


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: build what is missing, or just check / print the tag."""
    parser = argparse.ArgumentParser(
        prog="python -m federator.devcluster.image",
        description="Build (cached) federator's container image with podman.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    cmd = sub.add_parser("build", help="build the image if it is not built yet")
    cmd.add_argument("--check", action="store_true", help="exit 1 if the image is not built")
    cmd.add_argument("--print-tag", action="store_true", help="print the tag the image gets")
    args = parser.parse_args(argv)
    try:
        if args.print_tag:
            print(f"{IMAGE_NAME}:{image_key()}")
            return 0
        t0 = time.monotonic()
        built = ensure_image(build_missing=not args.check)
    except ImageBuildError as exc:
        print(f"federator: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("federator: build interrupted", file=sys.stderr)
        return 130
    print(
        f"{built.tag} {built.size / 1e6:.0f} MB (ready in {time.monotonic() - t0:.1f}s)",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
