"""Build (once, cached) kro, the peer the side-by-side bench (bench/peer.py) measures against.

Why a `delegates.Recipe` and not bench-only code: the cache key, the scratch-then-rename
assembly, the lock against concurrent builds and the heartbeat are the ones every delegate build
needs, and the control plane's and spark-operator's caches already live there. Why NOT in
`delegates._RECIPE_MODULES`: kro is not a delegate federator reads; only the peer bench uses it,
so `make test` and `delegates build all` never build it (CI time).

The build is `go mod download` of `github.com/kubernetes-sigs/kro@KRO_VERSION` from the Go module
proxy, `go build ./cmd/controller`, and a copy of the module's own CRDs (`helm/crds`: the
ResourceGraphDefinition and GraphRevision CRDs of that exact version) into
`~/.cache/federator/delegates/kro-<version>-<key>/{bin/kro,crds/}`.

Run: `python -m federator.devcluster.kro [--check] [--print-dir]`.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from federator.devcluster import delegates

KRO_MODULE = "github.com/kubernetes-sigs/kro"
KRO_VERSION = "v0.9.3"
RGD_CRD = "kro.run_resourcegraphdefinitions.yaml"


def _assemble(scratch: Path, directory: Path, log_path: Path, out: TextIO) -> Mapping[str, object]:
    """bin/kro and crds/ (the module's helm/crds) into `scratch`."""
    del directory  # no recipe files: the version is the whole recipe
    spec = f"{KRO_MODULE}@{KRO_VERSION}"
    print(f"[1/2] go mod download {spec}", file=out, flush=True)
    module = delegates.go_module(spec, scratch, log_path, out)
    print(f"[2/2] go build {module.name}/cmd/controller", file=out, flush=True)
    (scratch / "bin").mkdir()
    go_build = delegates.go_build_argv(scratch / "bin" / "kro", "./cmd/controller")
    delegates.run_step("building kro", go_build, module, log_path, out)
    (scratch / "crds").mkdir()
    crds = sorted((module / "helm" / "crds").glob("*.yaml"))
    if not any(c.name == RGD_CRD for c in crds):
        raise delegates.DelegateBuildError(f"{spec} has no helm/crds/{RGD_CRD}")
    for crd in crds:
        shutil.copyfile(crd, scratch / "crds" / crd.name)
    return {"module": spec, "crds": [c.name for c in crds]}


RECIPE = delegates.Recipe(
    name="kro",
    product="kro",
    version=KRO_VERSION,
    files=(),
    tools=("go",),
    assemble=_assemble,
)


@dataclass(frozen=True)
class KroBuild:
    """Where one built kro lives."""

    root: Path

    @property
    def binary(self) -> Path:
        return self.root / "bin" / "kro"

    @property
    def crds_dir(self) -> Path:
        return self.root / "crds"

    @property
    def crd_files(self) -> list[Path]:
        return sorted(self.crds_dir.glob("*.yaml"))


def ensure_kro(*, build_missing: bool = True, out: TextIO | None = None) -> KroBuild:
    """The built kro, building it if missing (build_missing=False: raise instead)."""
    return KroBuild(delegates.ensure(RECIPE, build_missing=build_missing, out=out))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m federator.devcluster.kro",
        description=f"Build (cached) kro {KRO_VERSION} for the peer bench.",
    )
    parser.add_argument("--check", action="store_true", help="exit 1 if it is not built")
    parser.add_argument("--print-dir", action="store_true", help="print the cache directory")
    args = parser.parse_args(argv)
    try:
        if args.print_dir:
            print(delegates.cache_dir(RECIPE))
            return 0
        print(ensure_kro(build_missing=not args.check).root)
    except delegates.DelegateBuildError as exc:
        print(f"federator: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
