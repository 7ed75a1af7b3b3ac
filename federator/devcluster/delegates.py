"""Build (once, cached) the real delegate operators the integration tests run against.

Why: federator's promise is one honest health over the statuses its delegates write; only the
real operators write them. Each delegate is a `Recipe`: its pinned version, its recipe files under
`hack/delegates/<name>/` and an `assemble` step that builds or fetches it from the package
registries (Go module proxy, Maven Central) into a scratch directory. This module owns what all of
them share: the cache key (version + recipe bytes + build format), the cache directory
`${FEDERATOR_CACHE:-~/.cache/federator}/delegates/<product>-<version>-<key>/`, assembly in a
scratch directory renamed into place with a completion marker written last (an interrupted build
leaves nothing half-done), a lock against concurrent builds, logged steps with a heartbeat, and
the CLI. Go's and Maven's own caches are reused.

kubeflow's spark-operator is defined here; other delegates define their `RECIPE` in their own
module, named in `_RECIPE_MODULES`.

Run: `python -m federator.devcluster.delegates build [spark|...|all] [--check] [--print-dir]`.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
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

# Delegates whose recipe lives in their own module (as `RECIPE`), imported only when asked for.
_RECIPE_MODULES: dict[str, str] = {
    "kafka": "federator.devcluster.kafka_broker",
    "flink": "federator.devcluster.flink_operator",
    "argocd": "federator.devcluster.argocd",
}


class DelegateBuildError(RuntimeError):
    """A delegate could not be built (or is missing where building is not allowed)."""


# (scratch, recipe directory, log file, progress stream) -> facts for the completion marker.
Assemble = Callable[[Path, Path, Path, TextIO], Mapping[str, object]]


@dataclass(frozen=True)
class Recipe:
    """How one delegate is built: what the cache key covers and the step that assembles it."""

    name: str  # the CLI's name and the directory under hack/delegates
    product: str  # the cache directory's prefix, e.g. "spark-operator"
    version: str
    files: tuple[str, ...]  # recipe files under hack/delegates/<name>, all in the cache key
    tools: tuple[str, ...]  # executables it needs on PATH
    assemble: Assemble

    @property
    def title(self) -> str:
        return f"{self.product} {self.version}"


def recipe_dir(name: str = "spark") -> Path:
    """hack/delegates/<name> of the checkout (FEDERATOR_DELEGATES_RECIPE_DIR overrides the base).
    Not in the wheel: the real delegates serve the project's own tests, not federator's users."""
    env = os.environ.get("FEDERATOR_DELEGATES_RECIPE_DIR")
    base = Path(env) if env else Path(__file__).resolve().parents[2] / "hack" / "delegates"
    return base / name


def read_recipe(directory: Path, files: Sequence[str] = SPARK_RECIPE_FILES) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for name in files:
        path = directory / name
        if not path.is_file():
            raise DelegateBuildError(f"delegate recipe file missing: {path}")
        out[name] = path.read_bytes()
    return out


def recipe_key(version: str, contents: Mapping[str, bytes]) -> str:
    """A short stable key over the version, the recipe files' bytes and the build format."""
    digest = hashlib.sha256(f"format={BUILD_FORMAT}\nversion={version}\n".encode())
    for name in sorted(contents):
        digest.update(f"{name}\n{len(contents[name])}\n".encode())
        digest.update(contents[name])
    return digest.hexdigest()[:12]


def cache_dir(recipe: Recipe, root: Path | None = None, directory: Path | None = None) -> Path:
    """The cache directory of one delegate, keyed by its version and recipe bytes."""
    files = read_recipe(directory or recipe_dir(recipe.name), recipe.files)
    base = root or build.cache_root()
    return (
        base
        / "delegates"
        / f"{recipe.product}-{recipe.version}-{recipe_key(recipe.version, files)}"
    )


def is_complete(root: Path) -> bool:
    return (root / COMPLETE_MARKER).is_file()


def _say(out: TextIO, text: str) -> None:
    print(text, file=out, flush=True)


def run_step(what: str, argv: Sequence[str], cwd: Path, log_path: Path, out: TextIO) -> str:
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


def maven_argv(pom: Path, jars: Path) -> tuple[str, ...]:
    """Copy a pom's runtime dependencies (versions pinned in the pom) into `jars`."""
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


def maven_jars(
    what: str, pom: Path, jars: Path, *, scratch: Path, log_path: Path, out: TextIO
) -> int:
    """Fetch a recipe pom's runtime jars from Maven Central into `jars`; returns how many.
    The pom is copied into scratch first so Maven writes nothing into the checkout."""
    jars.mkdir(parents=True, exist_ok=True)
    pom_dir = scratch / ".pom"
    pom_dir.mkdir()
    shutil.copyfile(pom, pom_dir / "pom.xml")
    run_step(what, maven_argv(pom_dir / "pom.xml", jars), pom_dir, log_path, out)
    shutil.rmtree(pom_dir)
    return len(list(jars.glob("*.jar")))


def ensure(recipe: Recipe, *, build_missing: bool = True, out: TextIO | None = None) -> Path:
    """The built delegate's cache directory, building it if missing (build_missing=False: raise
    instead, naming the command that builds it)."""
    stream = out if out is not None else sys.stderr
    directory = recipe_dir(recipe.name)
    root = cache_dir(recipe, directory=directory)
    if is_complete(root):
        return root
    if not build_missing:
        raise DelegateBuildError(
            f"{recipe.title} is not built in {root}; build it with "
            f"`python -m federator.devcluster.delegates build {recipe.name}` (or `make delegates`)"
        )
    for tool in recipe.tools:
        if shutil.which(tool) is None:
            raise DelegateBuildError(
                f"`{tool}` is not on PATH; it is needed to build {recipe.title}"
            )
    parent = root.parent
    with build._locked(parent / f".{root.name}.lock"):
        if is_complete(root):
            return root
        if root.exists():  # an older, incomplete attempt (no marker): start over
            shutil.rmtree(root)
        log_path = parent / f"{root.name}.build.log"
        _say(stream, f"federator: building {recipe.title} into {root}; log {log_path}")
        t0 = time.monotonic()
        with tempfile.TemporaryDirectory(prefix=".build-", dir=parent) as scratch:
            staged = Path(scratch) / "out"
            staged.mkdir()
            facts = dict(recipe.assemble(staged, directory, log_path, stream))
            facts.update(product=recipe.product, version=recipe.version)
            facts["seconds"] = round(time.monotonic() - t0, 1)
            (staged / COMPLETE_MARKER).write_text(json.dumps(facts, sort_keys=True) + "\n")
            os.replace(staged, root)
        _say(stream, f"federator: built {recipe.title} in {time.monotonic() - t0:.0f}s")
    return root


# ---- kubeflow spark-operator -------------------------------------------------------------------


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
        return is_complete(self.root) and os.access(self.binary, os.X_OK)


def go_build_argv(output: Path, package: str = "./cmd/operator") -> tuple[str, ...]:
    """A Go delegate's build, run inside its downloaded module directory (niced: a shared
    machine)."""
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
        package,
    )


def go_module(spec: str, scratch: Path, log_path: Path, out: TextIO) -> Path:
    """`go mod download` of `module@version` from the Go module proxy; its directory. Modules
    with `replace` lines refuse `go install pkg@version`, so delegates are built in there."""
    download = ("go", "mod", "download", "-json", spec)
    return Path(json.loads(run_step("downloading", download, scratch, log_path, out))["Dir"])


def _assemble_spark(
    scratch: Path, directory: Path, log_path: Path, out: TextIO
) -> Mapping[str, object]:
    """bin/spark-operator, crds/, spark-home/{bin,conf,jars} into `scratch`."""
    t0 = time.monotonic()
    spec = f"{SPARK_OPERATOR_MODULE}@{SPARK_OPERATOR_VERSION}"
    _say(out, f"[1/3] go mod download {spec}")
    module = go_module(spec, scratch, log_path, out)
    _say(out, f"[2/3] go build {module.name}/cmd/operator (minutes on a cold Go build cache)")
    (scratch / "bin").mkdir()
    go_build = go_build_argv(scratch / "bin" / "spark-operator")
    run_step("building spark-operator", go_build, module, log_path, out)
    (scratch / "crds").mkdir()
    for crd in sorted((module / "config" / "crd" / "bases").glob("*.yaml")):
        shutil.copyfile(crd, scratch / "crds" / crd.name)
    _say(out, f"      done at {time.monotonic() - t0:.0f}s")
    _say(out, f"[3/3] Spark {SPARK_VERSION} jars from Maven Central")
    home = scratch / "spark-home"
    for sub in ("bin", "conf"):
        (home / sub).mkdir(parents=True)
    jars = maven_jars(
        "fetching Spark jars",
        directory / "pom.xml",
        home / "jars",
        scratch=scratch,
        log_path=log_path,
        out=out,
    )
    shutil.copyfile(directory / "spark-submit", home / "bin" / "spark-submit")
    (home / "bin" / "spark-submit").chmod(0o755)
    shutil.copyfile(directory / "log4j2.properties", home / "conf" / "log4j2.properties")
    _say(out, f"      {jars} jars")
    return {"module": spec, "spark": SPARK_VERSION, "jars": jars}


SPARK = Recipe(
    name="spark",
    product="spark-operator",
    version=SPARK_OPERATOR_VERSION,
    files=SPARK_RECIPE_FILES,
    tools=("go", "mvn", "java"),
    assemble=_assemble_spark,
)


def spark_operator_dir(root: Path | None = None, directory: Path | None = None) -> Path:
    """The cache directory of the pinned spark-operator (keyed by version and recipe)."""
    return cache_dir(SPARK, root=root, directory=directory)


def ensure_spark_operator(
    *, build_missing: bool = True, out: TextIO | None = None
) -> SparkOperatorBuild:
    """The built spark-operator, building it if missing (build_missing=False: raise instead)."""
    return SparkOperatorBuild(ensure(SPARK, build_missing=build_missing, out=out))


# ---- the registry and the CLI ------------------------------------------------------------------


def names() -> tuple[str, ...]:
    """Every delegate this module can build, in build order."""
    return ("spark", *_RECIPE_MODULES)


def recipe(name: str) -> Recipe:
    """The recipe of one delegate by its CLI name."""
    if name == "spark":
        return SPARK
    if name not in _RECIPE_MODULES:
        raise DelegateBuildError(f"unknown delegate {name!r}; known: {', '.join(names())}")
    found = importlib.import_module(_RECIPE_MODULES[name]).RECIPE
    if not isinstance(found, Recipe):
        raise DelegateBuildError(f"{_RECIPE_MODULES[name]}.RECIPE is not a Recipe")
    return found


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m federator.devcluster.delegates",
        description="Build (cached) the real delegate operators the integration tests run.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    cmd = sub.add_parser("build", help="build what is missing")
    cmd.add_argument("delegate", nargs="+", choices=(*names(), "all"))
    cmd.add_argument("--check", action="store_true", help="exit 1 if one is not built")
    cmd.add_argument("--print-dir", action="store_true", help="print the cache directories")
    args = parser.parse_args(argv)
    wanted = names() if "all" in args.delegate else tuple(dict.fromkeys(args.delegate))
    try:
        for name in wanted:
            chosen = recipe(name)
            if args.print_dir:
                print(cache_dir(chosen))
                continue
            print(ensure(chosen, build_missing=not args.check))
    except DelegateBuildError as exc:
        print(f"federator: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("federator: build interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    # Run the importable module's main: under `python -m` this file is `__main__`, and the
    # recipe modules import `federator.devcluster.delegates`, whose `Recipe` is another class.
    from federator.devcluster import delegates as _module  # noqa: PLW0406

    sys.exit(_module.main())
