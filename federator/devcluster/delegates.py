"""Build (once, cached) the real delegate operators the integration tests run against.

Why: federator's promise is one honest health over the statuses its delegates write; only the
real operators write them. Today only kubeflow's spark-operator is built here (Flink and Strimzi:
docs/real-delegates.md says why not yet). Everything comes from the package registries:

- the operator binary: `go build ./cmd/operator` inside the pinned module as downloaded from the
  Go module proxy (its go.mod has `replace` lines, so `go install pkg@version` refuses);
- a minimal SPARK_HOME for the spark-submit the operator runs: Spark's jars from Maven Central
  (`hack/delegates/spark/pom.xml`, Spark's parent imported as a BOM) and a `spark-submit` wrapper.

Everything lands in `${FEDERATOR_CACHE:-~/.cache/federator}/delegates/spark-operator-<version>-
<recipe-hash>/`, assembled in a scratch directory and renamed into place (an interrupted build
leaves nothing half-done), serialised by a lock; Go's and Maven's own caches are reused.

Run: `python -m federator.devcluster.delegates build spark [--check] [--print-dir]`.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from federator.devcluster import build

# Bump when the way the cache is assembled changes, so old caches are not reused.
BUILD_FORMAT = "1"
SPARK_OPERATOR_MODULE = "github.com/kubeflow/spark-operator/v2"
SPARK_OPERATOR_VERSION = "v2.5.2"
SPARK_VERSION = "4.0.2"  # must match hack/delegates/spark/pom.xml (checked by a unit test)
SPARK_RECIPE_FILES: tuple[str, ...] = ("pom.xml", "spark-submit", "log4j2.properties")
COMPLETE_MARKER = ".complete"
DELEGATES = ("spark",)


class DelegateBuildError(RuntimeError):
    """A delegate could not be built (or is missing where building is not allowed)."""


@dataclass(frozen=True)
class SparkOperatorBuild:
    """Where one built spark-operator and its SPARK_HOME live."""

    root: Path

    @property
    def binary(self) -> Path:
        return self.root / "bin" / "spark-operator"

    @property
    def spark_home(self) -> Path:
        return self.root / "spark-home"

    @property
    def crds_dir(self) -> Path:
        """The CRDs of this exact operator version (config/crd/bases in its module)."""
        return self.root / "crds"

    @property
    def complete(self) -> bool:
        return (self.root / COMPLETE_MARKER).is_file() and os.access(self.binary, os.X_OK)


def recipe_dir() -> Path:
    """hack/delegates/spark of the checkout (FEDERATOR_DELEGATES_RECIPE_DIR overrides). Not in
    the wheel: the real delegates serve the project's own tests, not federator's users."""
    env = os.environ.get("FEDERATOR_DELEGATES_RECIPE_DIR")
    base = Path(env) if env else Path(__file__).resolve().parents[2] / "hack" / "delegates"
    return base / "spark"


def read_recipe(directory: Path) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for name in SPARK_RECIPE_FILES:
        path = directory / name
        if not path.is_file():
            raise DelegateBuildError(f"spark-operator recipe file missing: {path}")
        out[name] = path.read_bytes()
    return out


def recipe_key(version: str, contents: Mapping[str, bytes]) -> str:
    """A short stable key over the version, the recipe files' bytes and the build format."""
    digest = hashlib.sha256(f"format={BUILD_FORMAT}\nversion={version}\n".encode())
    for name in sorted(contents):
        digest.update(f"{name}\n{len(contents[name])}\n".encode())
        digest.update(contents[name])
    return digest.hexdigest()[:12]


def spark_operator_dir(root: Path | None = None, directory: Path | None = None) -> Path:
    """The cache directory of the pinned spark-operator (keyed by version and recipe)."""
    key = recipe_key(SPARK_OPERATOR_VERSION, read_recipe(directory or recipe_dir()))
    base = root or build.cache_root()
    return base / "delegates" / f"spark-operator-{SPARK_OPERATOR_VERSION}-{key}"


def go_build_argv(output: Path) -> tuple[str, ...]:
    """The operator's build, run inside its downloaded module directory."""
    return (
        "nice",
        "-n",
        "10",
        "go",
        "build",
        "-trimpath",
        "-ldflags",
        "-s -w",
        "-o",
        str(output),
        "./cmd/operator",
    )


def maven_argv(pom: Path, jars: Path) -> tuple[str, ...]:
    """Copy Spark's runtime jars (versions pinned by the BOM in the pom) into `jars`."""
    return (
        "mvn",
        "-B",
        "-q",
        "-f",
        str(pom),
        "dependency:copy-dependencies",
        f"-DoutputDirectory={jars}",
        "-DincludeScope=runtime",
    )


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _say(out: TextIO, text: str) -> None:
    print(text, file=out, flush=True)


def _run(what: str, argv: Sequence[str], cwd: Path, log_path: Path, out: TextIO) -> str:
    """Run one step with a heartbeat, appending to the log; its stdout is returned."""
    t0 = time.monotonic()
    with log_path.open("ab") as log, tempfile.TemporaryFile() as stdout:
        log.write(f"\n$ (cd {cwd} && {' '.join(argv)})\n".encode())
        log.flush()
        proc = subprocess.Popen(argv, cwd=cwd, stdout=stdout, stderr=log)
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
        stdout.seek(0)
        text = stdout.read().decode(errors="replace")
        log.write(text.encode())
    if code != 0:
        tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-30:])
        raise DelegateBuildError(
            f"{what} failed (exit {code}) after {time.monotonic() - t0:.0f}s; "
            f"full log: {log_path}\n{tail}"
        )
    return text


def _assemble(scratch: Path, directory: Path, log_path: Path, out: TextIO) -> None:
    """Everything into `scratch`: bin/spark-operator, crds/, spark-home/{bin,conf,jars}."""
    t0 = time.monotonic()
    spec = f"{SPARK_OPERATOR_MODULE}@{SPARK_OPERATOR_VERSION}"
    _say(out, f"[1/3] go mod download {spec}")
    info = json.loads(
        _run("downloading", ("go", "mod", "download", "-json", spec), scratch, log_path, out)
    )
    module = Path(info["Dir"])
    _say(out, f"[2/3] go build {module.name}/cmd/operator (minutes on a cold Go build cache)")
    (scratch / "bin").mkdir()
    go_build = go_build_argv(scratch / "bin" / "spark-operator")
    _run("building spark-operator", go_build, module, log_path, out)
    (scratch / "crds").mkdir()
    for crd in sorted((module / "config" / "crd" / "bases").glob("*.yaml")):
        shutil.copyfile(crd, scratch / "crds" / crd.name)
    _say(out, f"      done at {time.monotonic() - t0:.0f}s")
    _say(out, f"[3/3] Spark {SPARK_VERSION} jars from Maven Central")
    home = scratch / "spark-home"
    for sub in ("bin", "conf", "jars"):
        (home / sub).mkdir(parents=True)
    pom_dir = scratch / "pom"
    pom_dir.mkdir()
    shutil.copyfile(directory / "pom.xml", pom_dir / "pom.xml")
    maven = maven_argv(pom_dir / "pom.xml", home / "jars")
    _run("fetching Spark jars", maven, pom_dir, log_path, out)
    shutil.rmtree(pom_dir)
    shutil.copyfile(directory / "spark-submit", home / "bin" / "spark-submit")
    (home / "bin" / "spark-submit").chmod(0o755)
    shutil.copyfile(directory / "log4j2.properties", home / "conf" / "log4j2.properties")
    jars = len(list((home / "jars").glob("*.jar")))
    _say(out, f"      {jars} jars; total {time.monotonic() - t0:.0f}s")
    (scratch / COMPLETE_MARKER).write_text(
        json.dumps(
            {
                "module": spec,
                "spark": SPARK_VERSION,
                "jars": jars,
                "seconds": round(time.monotonic() - t0, 1),
            }
        )
        + "\n"
    )


def ensure_spark_operator(
    *, build_missing: bool = True, out: TextIO | None = None
) -> SparkOperatorBuild:
    """The built spark-operator, building it if missing (build_missing=False: raise instead)."""
    stream = out if out is not None else sys.stderr
    directory = recipe_dir()
    result = SparkOperatorBuild(spark_operator_dir(directory=directory))
    if result.complete:
        return result
    if not build_missing:
        raise DelegateBuildError(
            f"spark-operator {SPARK_OPERATOR_VERSION} is not built in {result.root}; build it "
            "with `python -m federator.devcluster.delegates build spark` (or `make delegates`)"
        )
    for tool in ("go", "mvn", "java"):
        if shutil.which(tool) is None:
            raise DelegateBuildError(
                f"`{tool}` is not on PATH; it is needed to build spark-operator"
            )
    parent = result.root.parent
    with _locked(parent / f".{result.root.name}.lock"):
        if result.complete:
            return result
        if result.root.exists():  # an older, incomplete attempt (no marker): start over
            shutil.rmtree(result.root)
        log_path = parent / f"{result.root.name}.build.log"
        what = f"spark-operator {SPARK_OPERATOR_VERSION} into {result.root}; log {log_path}"
        _say(stream, f"federator: building {what}")
        with tempfile.TemporaryDirectory(prefix=".build-", dir=parent) as scratch:
            staged = Path(scratch) / "out"
            staged.mkdir()
            _assemble(staged, directory, log_path, stream)
            os.replace(staged, result.root)
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m federator.devcluster.delegates",
        description="Build (cached) the real delegate operators the integration tests run.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    cmd = sub.add_parser("build", help="build what is missing")
    cmd.add_argument("delegate", choices=DELEGATES)
    cmd.add_argument("--check", action="store_true", help="exit 1 if it is not built")
    cmd.add_argument("--print-dir", action="store_true", help="print the cache directory")
    args = parser.parse_args(argv)
    try:
        if args.print_dir:
            print(spark_operator_dir())
            return 0
        built = ensure_spark_operator(build_missing=not args.check)
    except DelegateBuildError as exc:
        print(f"federator: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("federator: build interrupted", file=sys.stderr)
        return 130
    print(built.root)
    return 0


if __name__ == "__main__":
    sys.exit(main())
