"""The pure parts of `make image` (federator/devcluster/image.py): keys, context, recipe, config.

The build itself runs in tests/integration/test_image.py; here: the cache keys change exactly
when something that goes into the image changes, the build context is what .dockerignore lets
in (and what the Dockerfile copies), the base recipe is the one the brief of the image asks for,
the podman configuration is the project's own, and the package index's settings reach the
build only as secrets.

Aspects covered:
- the image key changes with the Dockerfile, a lock, a source file and the base recipe, and not
  with a file outside the context or a bytecode cache inside it;
- the context files are exactly .dockerignore's let-ins (a missing one is an error);
- the base recipe: debootstrap bookworm minbase with Python, venv, pip, python-is-python3 and
  CA certificates; the import sets PATH;
- containers.conf and storage.conf: runc, cgroupfs, host network, explicit ulimits, files for
  events and logs, storage under the cache; podman gets them through the environment only;
- build secrets: the CA bundle and a pip.conf written 0600 with the host's index, never an ARG.
"""

from __future__ import annotations

import shutil
import stat
import tomllib
from pathlib import Path

import pytest

from federator.devcluster import image

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A small checkout: the Dockerfile, .dockerignore, the base recipe and a context."""
    root = tmp_path / "repo"
    (root / "hack" / "image").mkdir(parents=True)
    shutil.copy(REPO / "hack" / "image" / "base.toml", root / "hack" / "image" / "base.toml")
    (root / "Dockerfile").write_text("ARG BASE_IMAGE=x\nFROM ${BASE_IMAGE}\n")
    (root / ".dockerignore").write_text("# context\n*\n!requirements/\n!pkg/\n!pyproject.toml\n")
    (root / "requirements").mkdir()
    (root / "requirements" / "image.lock").write_text("a==1 --hash=sha256:00\n")
    (root / "pkg" / "__pycache__").mkdir(parents=True)
    (root / "pkg" / "mod.py").write_text("x = 1\n")
    (root / "pyproject.toml").write_text('[project]\nversion = "0.1.0"\n')
    (root / "notes.md").write_text("outside the context\n")
    return root


def test_the_image_key_follows_what_goes_into_the_image(repo: Path) -> None:
    key = image.image_key(repo)
    assert key == image.image_key(repo), "stable"
    (repo / "notes.md").write_text("changed, but outside the context\n")
    (repo / "pkg" / "__pycache__" / "mod.cpython-311.pyc").write_bytes(b"\0")
    (repo / "pkg" / "mod.pyc").write_bytes(b"\0")
    assert image.image_key(repo) == key
    seen = {key}
    for path, text in (
        ("pkg/mod.py", "x = 2\n"),
        ("requirements/image.lock", "a==2 --hash=sha256:11\n"),
        ("Dockerfile", "ARG BASE_IMAGE=y\nFROM ${BASE_IMAGE}\n"),
        ("hack/image/base.toml", (repo / "hack/image/base.toml").read_text() + "\n# x\n"),
        ("pkg/new.py", "y = 1\n"),
    ):
        (repo / path).write_text(text)
        new = image.image_key(repo)
        assert new not in seen, f"{path} changed, the key did not"
        seen.add(new)


def test_the_base_key_is_the_recipe_alone(repo: Path) -> None:
    key = image.base_key(repo)
    (repo / "pkg" / "mod.py").write_text("x = 3\n")
    assert image.base_key(repo) == key
    recipe = repo / "hack" / "image" / "base.toml"
    recipe.write_text(recipe.read_text().replace("minbase", "buildd"))
    assert image.base_key(repo) != key


def test_the_context_is_what_dockerignore_lets_in(repo: Path) -> None:
    assert image.context_files(repo) == [
        Path("pkg/mod.py"),
        Path("pyproject.toml"),
        Path("requirements/image.lock"),
    ]
    (repo / ".dockerignore").write_text("*\n!missing/\n")
    with pytest.raises(image.ImageBuildError, match="missing"):
        image.context_files(repo)
    (repo / ".dockerignore").write_text("pkg/\n")
    with pytest.raises(image.ImageBuildError, match="everything first"):
        image.context_files(repo)


def test_the_real_context_holds_the_sources_and_the_locks() -> None:
    files = {p.as_posix() for p in image.context_files(REPO)}
    assert {"requirements/image.lock", "requirements/image-build.lock"} <= files
    assert {"pyproject.toml", "federator/cli/main.py", "hack/image/pip-secrets.sh"} <= files
    assert not any("__pycache__" in f or f.startswith(("tests/", ".venv/")) for f in files)


def test_the_base_recipe() -> None:
    recipe = image.BaseRecipe.parse(image.base_recipe_path(REPO).read_text())
    argv = recipe.debootstrap_argv(Path("/rootfs"), Path("/debs"))
    assert argv[0] == "debootstrap" and "--variant=minbase" in argv
    assert argv[-3:] == ["bookworm", "/rootfs", recipe.mirror]
    included = next(a for a in argv if a.startswith("--include=")).split("=", 1)[1].split(",")
    assert set(included) >= {
        "python3",
        "python3-venv",
        "python3-pip",
        "python-is-python3",
        "ca-certificates",
    }
    changes = recipe.import_changes()
    assert changes[0] == "--change" and any(
        c.startswith("ENV PATH=/usr/local/sbin:") for c in changes
    )
    with pytest.raises(image.ImageBuildError, match="suite"):
        image.BaseRecipe.parse('variant = "minbase"\n')


def test_podman_reads_the_projects_own_configuration(tmp_path: Path) -> None:
    conf = tomllib.loads(image.containers_conf())
    assert conf["containers"]["netns"] == "host"
    assert conf["containers"]["default_ulimits"] == ["nofile=20000:20000", "nproc=4096:4096"]
    assert conf["engine"] == {
        "cgroup_manager": "cgroupfs",
        "events_logger": "file",
        "runtime": "runc",
    }
    storage = tomllib.loads(image.storage_conf(tmp_path / "podman", "overlay"))["storage"]
    assert storage["driver"] == "overlay"
    assert storage["graphroot"].startswith(str(tmp_path))
    assert storage["runroot"].startswith(str(tmp_path))


def test_the_index_reaches_the_build_as_secrets_only(tmp_path: Path) -> None:
    ca = tmp_path / "ca.crt"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    environ = {"FEDERATOR_IMAGE_CA": str(ca), "PIP_INDEX_URL": "https://u:p@index.example/simple"}
    args = image.build_secrets(tmp_path, environ)
    assert args == [
        "--secret",
        f"id=pip-ca,src={ca}",
        "--secret",
        f"id=pip-conf,src={tmp_path / 'pip.conf'}",
    ]
    conf = tmp_path / "pip.conf"
    assert "index-url = https://u:p@index.example/simple" in conf.read_text()
    assert stat.S_IMODE(conf.stat().st_mode) == 0o600
    assert image.build_secrets(tmp_path, {"FEDERATOR_IMAGE_CA": str(tmp_path / "none")}) == []
