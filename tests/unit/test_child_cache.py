"""The watch cache of children: what a reconcile may trust, and when it must GET instead."""

from __future__ import annotations

from typing import Any

import pytest

from federator.operator.child_cache import ChildCache

KEY = ("KafkaTopic", "kafka", "app.a.out")


def topic(version: str, ready: bool = False, name: str = "app.a.out") -> dict[str, Any]:
    return {
        "kind": "KafkaTopic",
        "metadata": {"namespace": "kafka", "name": name, "resourceVersion": version},
        "status": {"conditions": [{"type": "Ready", "status": str(ready)}]},
    }


@pytest.fixture
def cache() -> ChildCache:
    return ChildCache()


def test_an_object_never_streamed_is_a_miss(cache: ChildCache) -> None:
    assert cache.get(KEY) is None
    assert len(cache) == 0


@pytest.mark.parametrize("event_type", [None, "ADDED", "MODIFIED"])
def test_the_latest_streamed_version_is_served(cache: ChildCache, event_type: str | None) -> None:
    cache.seen(event_type, topic("1"))
    cache.seen("MODIFIED", topic("2", ready=True))
    assert cache.get(KEY) == topic("2", ready=True)


def test_deleted_or_unlabelled_objects_become_misses(cache: ChildCache) -> None:
    cache.seen("ADDED", topic("1"))
    cache.seen("DELETED", topic("3"))
    assert cache.get(KEY) is None
    assert len(cache) == 0


def test_after_our_write_the_cache_misses_until_its_echo_arrives(cache: ChildCache) -> None:
    cache.seen("ADDED", topic("1"))
    cache.wrote(KEY, topic("5"))  # the apply returned version 5; the stream is still at 1
    assert cache.get(KEY) is None
    cache.seen("MODIFIED", topic("4"))  # an older version still in flight
    assert cache.get(KEY) is None
    cache.seen("MODIFIED", topic("5"))  # the echo
    assert cache.get(KEY) == topic("5")


def test_an_apply_that_changed_nothing_leaves_the_cache_trusted(cache: ChildCache) -> None:
    cache.seen("ADDED", topic("7"))
    cache.wrote(KEY, topic("7"))  # server-side apply without changes keeps the version
    assert cache.get(KEY) == topic("7")


def test_an_echo_and_a_later_write_that_beat_the_apply_response(cache: ChildCache) -> None:
    cache.seen("ADDED", topic("5"))  # the echo of our apply ...
    cache.seen("MODIFIED", topic("6", ready=True))  # ... and the delegate's status after it
    cache.wrote(KEY, topic("5"))  # only now the apply's response is handled
    assert cache.get(KEY) == topic("6", ready=True)


def test_a_deletion_clears_a_pending_write(cache: ChildCache) -> None:
    cache.wrote(KEY, topic("2"))
    cache.seen("DELETED", topic("3"))
    cache.seen("ADDED", topic("9"))  # re-created by someone: the stream is authoritative
    assert cache.get(KEY) == topic("9")


def test_entries_of_kinds_whose_crd_went_away_are_dropped(cache: ChildCache) -> None:
    cache.seen("ADDED", topic("1"))
    cache.wrote(("KafkaTopic", "kafka", "other"), topic("2", name="other"))
    deployment = {"kind": "Deployment", "metadata": {"namespace": "apps", "name": "d"}}
    cache.seen("ADDED", deployment)
    cache.keep_kinds(["Deployment", "SparkApplication"])
    assert cache.get(KEY) is None
    assert cache.get(("Deployment", "apps", "d")) == deployment
    cache.seen("ADDED", topic("3", name="other"))  # no stale pending write survives either
    assert cache.get(("KafkaTopic", "kafka", "other")) == topic("3", name="other")
