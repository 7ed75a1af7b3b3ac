"""Which CRD files a development control plane installs, and which definition wins.

Why one module: the demo, `cluster up --crds`, the tests and the benchmarks all install delegate
CRDs from a folder, and a folder may hold two versions of one CRD (Strimzi's KafkaTopic from main,
serving v1 only, beside the 0.51.0 file that still stores v1beta2). They must all pick the same
one, by a rule about the definitions, not their file names.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from federator.core import resources

ENV_DELEGATE_CRDS = "FEDERATOR_DELEGATE_CRDS"
CRD_KIND = "CustomResourceDefinition"
_KUBE_VERSION = re.compile(r"v(\d+)(?:(alpha|beta)(\d+))?")
_STABILITY = {"alpha": 0, "beta": 1, None: 2}


class CRDFileError(ValueError):
    """A CRD folder or file that cannot be used, with what to do about it."""


def delegate_crds_dir() -> Path:
    """$FEDERATOR_DELEGATE_CRDS if set, else the vendored CRDs shipped with federator."""
    override = os.environ.get(ENV_DELEGATE_CRDS)
    if override:
        path = Path(override).expanduser()
        if not path.is_dir():
            raise CRDFileError(
                f"${ENV_DELEGATE_CRDS}={override} is not a directory; unset it to use the "
                f"CRDs shipped with federator ({resources.delegate_crds_dir()})"
            )
        return path
    return resources.delegate_crds_dir()


def delegate_crd_files(directory: Path | None = None) -> list[Path]:
    """Every `*.crd.yaml` in the folder (default: `delegate_crds_dir()`), sorted."""
    folder = directory or delegate_crds_dir()
    files = sorted(folder.glob("*.crd.yaml"))
    if not files:
        raise CRDFileError(f"no *.crd.yaml file in {folder}")
    return files


def version_priority(version: str) -> tuple[int, int, int, str]:
    """Kubernetes' version order as a sort key (higher is newer): GA over beta over alpha, then
    the higher major and minor; a name outside the scheme ranks below all of them."""
    match = _KUBE_VERSION.fullmatch(version)
    if not match:
        return (-1, 0, 0, version)
    major, stability, minor = match.groups()
    return (_STABILITY[stability], int(major), int(minor or 0), "")


def storage_version(crd: Mapping[str, Any]) -> str:
    for version in (crd.get("spec") or {}).get("versions") or []:
        if isinstance(version, Mapping) and version.get("storage"):
            return str(version.get("name", ""))
    return ""


def load_crds(paths: Iterable[Path]) -> list[tuple[Path, dict[str, Any]]]:
    """Every CustomResourceDefinition in the given files or folders (YAML or JSON, multi-doc,
    `List`s unwrapped), with the file it came from."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files += sorted(
                p for p in path.rglob("*") if p.suffix in {".yaml", ".yml", ".json"} and p.is_file()
            )
        elif path.is_file():
            files.append(path)
        else:
            raise CRDFileError(f"CRD path does not exist: {path}")
    found: list[tuple[Path, dict[str, Any]]] = []
    for file in files:
        try:
            docs = list(yaml.safe_load_all(file.read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise CRDFileError(f"{file}: not readable YAML: {exc}") from None
        for doc in docs:
            if not isinstance(doc, dict):
                continue
            items = doc.get("items") if str(doc.get("kind", "")).endswith("List") else [doc]
            found += [
                (file, d) for d in items or [] if isinstance(d, dict) and d.get("kind") == CRD_KIND
            ]
    return found


def current_crds(found: Iterable[tuple[Path, dict[str, Any]]]) -> list[dict[str, Any]]:
    """One definition per CRD name: the one whose storage version ranks highest. Two different
    definitions with the same storage version are ambiguous and refused, naming both files."""
    best: dict[str, tuple[Path, dict[str, Any]]] = {}
    for file, crd in found:
        name = str((crd.get("metadata") or {}).get("name", ""))
        if not name:
            raise CRDFileError(f"{file}: a CustomResourceDefinition without metadata.name")
        if name not in best:
            best[name] = (file, crd)
            continue
        kept_file, kept = best[name]
        if kept == crd:
            continue
        ours, theirs = (
            version_priority(storage_version(crd)),
            version_priority(storage_version(kept)),
        )
        if ours == theirs:
            raise CRDFileError(
                f"CRD {name} is defined twice with storage version "
                f"{storage_version(crd) or '(none)'}: in {kept_file} and in {file}; keep one"
            )
        if ours > theirs:
            best[name] = (file, crd)
    return [crd for _, crd in best.values()]
