"""The project is complete on its own: the vendored delegate CRDs, their provenance, the package
data a wheel carries, and nothing that reads a folder beside the checkout.

- every file of third_party/delegate-crds matches the git blob of its pinned upstream source
  (hack/vendor-delegate-crds.py --verify), and a changed or unlisted file is caught;
- every kind and API version federator renders is served by a vendored CRD;
- resources.py and pyproject's force-include name the same data folders;
- no tracked file reads the `shared` folder that sits beside the checkout on developer machines.
"""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from federator.core import delegates, openapi, resources

REPO = Path(__file__).resolve().parents[2]
VENDORED = REPO / "third_party" / "delegate-crds"
VENDOR_SCRIPT = REPO / "hack" / "vendor-delegate-crds.py"


def vendor(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(VENDOR_SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_vendored_crds_match_their_pinned_upstream_blobs() -> None:
    result = vendor("--verify")
    assert result.returncode == 0, result.stderr
    assert "match their pinned upstream blobs" in result.stdout


def test_a_changed_or_unlisted_vendored_file_is_caught(tmp_path: Path) -> None:
    copy = tmp_path / "crds"
    shutil.copytree(VENDORED, copy)
    crd = copy / "sparkoperator-sparkapplication.crd.yaml"
    crd.write_text(crd.read_text().replace("SparkApplication", "SparkApp", 1))
    (copy / "stray.crd.yaml").write_text("kind: CustomResourceDefinition\n")
    result = vendor("--verify", "--dir", str(copy))
    assert result.returncode == 1
    assert "sparkoperator-sparkapplication.crd.yaml: blob" in result.stderr
    assert "kubeflow/spark-operator@38082f33" in result.stderr
    assert "stray.crd.yaml: not listed in SOURCES.tsv" in result.stderr


def test_every_vendored_file_names_its_source_in_the_readme() -> None:
    readme = (VENDORED / "README.md").read_text()
    manifest = (VENDORED / "SOURCES.tsv").read_text()
    for path in VENDORED.glob("*.crd.yaml"):
        assert path.name in manifest and path.name in readme, path.name
    assert "Apache License" in (VENDORED / "LICENSE").read_text()


@functools.cache
def _served_by_vendored() -> set[tuple[str, str, str]]:
    served: set[tuple[str, str, str]] = set()
    for path in VENDORED.glob("*.crd.yaml"):
        for doc in yaml.safe_load_all(path.read_text()):
            if isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition":
                served |= set(openapi.crd_versions(doc))
    return served


@pytest.mark.parametrize(
    ("kind", "api_version"),
    [(d.kind, d.api_version(v)) for d in delegates.ALL if not d.builtin for v in d.versions],
)
def test_every_rendered_kind_and_version_is_served_by_a_vendored_crd(
    kind: str, api_version: str
) -> None:
    group, _, version = api_version.rpartition("/")
    assert (group, version, kind) in _served_by_vendored(), (
        f"{kind} {api_version}: federator renders it, but no CRD in third_party/delegate-crds "
        "serves it; vendor the delegate's CRD (hack/vendor-delegate-crds.py)"
    )


def test_the_shipped_delegate_crds_are_the_vendored_ones() -> None:
    assert resources.delegate_crds_dir().resolve() == VENDORED.resolve()


def test_resources_and_the_wheel_name_the_same_data_folders() -> None:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    force = pyproject["tool"]["hatch"]["build"]["targets"]["wheel"]["force-include"]
    expected = {source: f"federator/_data/{name}" for name, source in resources._REPO_PATHS.items()}
    assert force == expected
    for name in resources._REPO_PATHS:
        assert resources.data_dir(name).is_dir(), name
    assert (resources.controlplane_recipe_dir() / "go.mod").is_file()
    assert (resources.examples_dir() / "call-record-aggregator.yaml").is_file()


# The folder beside the checkout exists on developer machines only; nothing may read it.
# (Spelled in pieces so that this file does not match its own patterns.)
_SHARED = "sha" + "red"
FORBIDDEN = re.compile(
    "|".join(
        (
            re.escape("../" + _SHARED),
            r"""parents?\b[^\n]*/\s*["']""" + _SHARED + r"""["']""",
            r"""["']""" + _SHARED + r"""["']\s*/\s*["']delegate-crds""",
            re.escape(_SHARED + "/delegate-crds"),
        )
    )
)


def _tracked_files() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPO,
        capture_output=True,
        check=False,
    )
    if listed.returncode != 0:  # not a git checkout: every file but caches
        return [
            p
            for p in REPO.rglob("*")
            if p.is_file() and not any(part.startswith(".") for part in p.relative_to(REPO).parts)
        ]
    return [REPO / name for name in listed.stdout.decode().split("\0") if name]


def test_nothing_reads_the_folder_beside_the_checkout() -> None:
    offenders = []
    for path in _tracked_files():
        if path.suffix in {".png", ".whl", ".gz"} or not path.is_file():
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        for lineno, line in enumerate(text.splitlines(), 1):
            if FORBIDDEN.search(line):
                offenders.append(f"{path.relative_to(REPO)}:{lineno}: {line.strip()}")
    assert not offenders, "reads outside the project:\n" + "\n".join(offenders)


@pytest.mark.parametrize(
    "line",
    [
        'DELEGATES = REPO.parent / "' + _SHARED + '" / "delegate-crds"',
        "cp ../" + _SHARED + "/delegate-crds/*.yaml crds/",
        "SHARED = Path(__file__).parents[2] / '" + _SHARED + "'",
    ],
)
def test_the_guard_catches_a_read_of_that_folder(line: str) -> None:
    assert FORBIDDEN.search(line), line
