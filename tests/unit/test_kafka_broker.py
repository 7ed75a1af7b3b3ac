"""The real Kafka broker's recipe and harness, without building or starting anything.

Aspects covered:
- `kafka` is a delegate of `python -m federator.devcluster.delegates build`, version-pinned;
- the pom pins the Kafka version the code names and the slf4j-api 2.x the broker needs to log;
- a missing build is an error naming the command that builds it;
- the broker listens on loopback only and creates no topic by itself.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from federator.devcluster import delegates, kafka_broker

RECIPE_DIR = delegates.recipe_dir("kafka")


def test_kafka_is_a_delegate_of_the_build_cli() -> None:
    assert "kafka" in delegates.names()
    recipe = delegates.recipe("kafka")
    assert recipe is kafka_broker.RECIPE
    assert (recipe.product, recipe.version) == ("kafka", "4.4.0")
    assert delegates.read_recipe(RECIPE_DIR, recipe.files).keys() == set(recipe.files)


def test_the_pom_pins_kafka_and_slf4j_2() -> None:
    pom = (RECIPE_DIR / "pom.xml").read_text()
    assert f"<kafka.version>{kafka_broker.KAFKA_VERSION}</kafka.version>" in pom
    for artifact in ("kafka_2.13", "kafka-tools", "log4j-slf4j2-impl", "log4j-core"):
        assert f"<artifactId>{artifact}</artifactId>" in pom
    assert "<artifactId>slf4j-api</artifactId><version>2." in pom


def test_a_missing_build_names_the_command_that_builds_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FEDERATOR_CACHE", str(tmp_path))
    with pytest.raises(delegates.DelegateBuildError, match="delegates build kafka"):
        kafka_broker.ensure_kafka(build_missing=False)
    root = delegates.cache_dir(kafka_broker.RECIPE, root=tmp_path)
    assert root.name.startswith("kafka-4.4.0-")
    assert not kafka_broker.KafkaBuild(root).complete


def test_the_broker_listens_on_loopback_and_creates_no_topic_by_itself(tmp_path: Path) -> None:
    text = kafka_broker.server_properties(19092, 19093, tmp_path / "data")
    props = dict(line.split("=", 1) for line in text.splitlines())
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093"
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:19092"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:19093"
    assert props["auto.create.topics.enable"] == "false"
    assert props["log.dirs"] == str(tmp_path / "data")


def test_the_broker_runs_with_a_small_heap() -> None:
    argv = kafka_broker.java_argv(kafka_broker.KafkaBuild(Path("/k")), "kafka.Kafka", "p")
    assert "-Xmx512m" in argv and "-XX:+UseSerialGC" in argv
    assert argv[-2:] == ["kafka.Kafka", "p"]
    assert len(kafka_broker.cluster_id()) == 22
