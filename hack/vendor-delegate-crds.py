#!/usr/bin/env python3
"""Take (or check) the vendored delegate CRDs in third_party/delegate-crds/.

Why: federator installs, validates and tests against the CRDs of the operators it delegates to,
so it carries pinned copies of them. SOURCES.tsv beside the files names, for each one, the
upstream repository, the pinned ref (tag or commit), the path at that ref and the git blob id of
the file's bytes. This script is how the files were taken, and how they are checked:

    # check every vendored file against its recorded blob id (offline; the tests run this)
    python hack/vendor-delegate-crds.py --verify

    # take them again from local clones of the upstream repositories, one per repository,
    # named owner+name (e.g. `git clone --bare https://github.com/kubeflow/spark-operator
    # CLONES/kubeflow+spark-operator`), then check them
    python hack/vendor-delegate-crds.py --from CLONES

To move a delegate to another upstream version: change its ref (and blob id, printed by
`git -C CLONE rev-parse REF:PATH`) in SOURCES.tsv, run `--from`, run the tests.
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

VENDOR_DIR = Path(__file__).resolve().parent.parent / "third_party" / "delegate-crds"
MANIFEST = "SOURCES.tsv"
# Files in the folder that are ours, not upstream's.
OWN_FILES = frozenset({MANIFEST, "README.md", "LICENSE"})


@dataclass(frozen=True)
class Source:
    file: str
    repo: str
    ref: str
    path: str
    blob: str
    licence: str


def read_manifest(directory: Path) -> list[Source]:
    rows: list[Source] = []
    for lineno, line in enumerate((directory / MANIFEST).read_text().splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        cells = line.split("\t")
        if len(cells) != 6:
            raise SystemExit(f"{MANIFEST}:{lineno}: expected 6 tab-separated cells: {line!r}")
        rows.append(Source(*cells))
    return rows


def blob_id(data: bytes) -> str:
    """What `git hash-object` prints for these bytes."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def verify(directory: Path, sources: list[Source]) -> list[str]:
    """Every problem: a listed file missing or changed, a file in the folder not listed."""
    problems: list[str] = []
    for src in sources:
        target = directory / src.file
        if not target.is_file():
            problems.append(f"{src.file}: missing")
        elif (got := blob_id(target.read_bytes())) != src.blob:
            problems.append(
                f"{src.file}: blob {got} differs from {src.repo}@{src.ref}:{src.path} "
                f"({src.blob}); take it again with --from, or update {MANIFEST}"
            )
    listed = {src.file for src in sources} | OWN_FILES
    for path in sorted(directory.rglob("*")):
        rel = path.relative_to(directory).as_posix()
        if path.is_file() and rel not in listed:
            problems.append(f"{rel}: not listed in {MANIFEST} (where does it come from?)")
    return problems


def clone_dir(clones: Path, repo: str) -> Path:
    base = clones / repo.replace("/", "+")
    return base / "repo" if (base / "repo").is_dir() else base


def take(directory: Path, sources: list[Source], clones: Path) -> None:
    for src in sources:
        data = subprocess.run(
            ["git", "-C", str(clone_dir(clones, src.repo)), "show", f"{src.ref}:{src.path}"],
            check=True,
            capture_output=True,
        ).stdout
        target = directory / src.file
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        print(f"{src.file} <- {src.repo}@{src.ref}:{src.path}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--verify", action="store_true", help="check the files (the default)")
    mode.add_argument(
        "--from",
        dest="clones",
        type=Path,
        metavar="CLONES",
        help="take the files from local clones named owner+name, then check",
    )
    parser.add_argument("--dir", type=Path, default=VENDOR_DIR, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    sources = read_manifest(args.dir)
    if args.clones:
        take(args.dir, sources, args.clones)
    problems = verify(args.dir, sources)
    for problem in problems:
        print(f"vendor-delegate-crds: {problem}", file=sys.stderr)
    if not problems:
        print(f"vendor-delegate-crds: {len(sources)} files match their pinned upstream blobs")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
