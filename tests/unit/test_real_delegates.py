"""The real delegate operators' build recipe and cache, without building anything.

Aspects covered:
- the cache key: stable, changes with the version and with any recipe file;
- the cache directory names the pinned version; the pom pins the Spark version the code names;
- a missing build is an error naming the command that builds it (never a silent skip);
- a build without its completion marker is not used.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from federator.devcluster import delegates

RECIPE = delegates.recipe_dir()


def test_the_cache_key_is_stable_and_covers_version_and_recipe() -> None:
    contents = delegates.read_recipe(RECIPE)
    key = delegates.recipe_key("v2.5.2", contents)
    assert key == delegates.recipe_key("v2.5.2", dict(contents))
    assert key != delegates.recipe_key("v2.5.3", contents)
    for name in delegates.SPARK_RECIPE_FILES:
        changed = {**contents, name: contents[name] + b"\n"}
        assert delegates.recipe_key("v2.5.2", changed) != key, name


def test_the_cache_directory_names_the_pinned_version(tmp_path: Path) -> None:
    root = delegates.spark_operator_dir(root=tmp_path)
    assert root.parent == tmp_path / "delegates"
    assert root.name.startswith(f"spark-operator-{delegates.SPARK_OPERATOR_VERSION}-")


def test_the_pom_pins_the_spark_version_and_imports_sparks_parent_as_a_bom() -> None:
    pom = (RECIPE / "pom.xml").read_text()
    assert f"<spark.version>{delegates.SPARK_VERSION}</spark.version>" in pom
    assert re.search(r"<artifactId>spark-parent_2\.13</artifactId>.*<scope>import</scope>", pom)


def test_a_missing_build_names_the_command_that_builds_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FEDERATOR_CACHE", str(tmp_path))
    with pytest.raises(delegates.DelegateBuildError, match="delegates build spark"):
        delegates.ensure_spark_operator(build_missing=False)


def test_a_build_without_its_marker_is_not_complete(tmp_path: Path) -> None:
    built = delegates.SparkOperatorBuild(tmp_path)
    built.binary.parent.mkdir()
    built.binary.write_text("#!/bin/sh\n")
    built.binary.chmod(0o755)
    assert not built.complete
    (tmp_path / delegates.COMPLETE_MARKER).write_text("{}\n")
    assert built.complete
