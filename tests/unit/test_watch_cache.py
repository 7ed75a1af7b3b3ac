"""The watch cache of children: what a reconcile may trust, and when it must GET instead."""

from __future__ import annotations

from typing import Any

import pytest

from federator.core.keys import Key
from federator.operator.watch_cache import WatchCache, compact

KEY = ("KafkaTopic", "kafka", "app.a.out")


def topic(version: str, ready: bool = False, name: str = "app.a.out") -> dict[str, Any]:
    return {
        "kind": "KafkaTopic",
        "metadata": {"namespace": "kafka", "name": name, "resourceVersion": version},
        "status": {"conditions": [{"type": "Ready", "status": str(ready)}]},
    }


@pytest.fixture
def cache() -> WatchCache:
    return WatchCache()


@pytest.fixture
def trusted() -> WatchCache:
    """Topics listed in namespace kafka, Deployments in every namespace."""
    cache = WatchCache()
    cache.trust("KafkaTopic", ["kafka"])
    cache.trust("Deployment", None)
    return cache


def unknown(cache: WatchCache, key: Key) -> bool:
    return cache.lookup(key) == (False, None)


def absent(cache: WatchCache, key: Key) -> bool:
    return cache.lookup(key) == (True, None)


def served(cache: WatchCache, key: Key) -> Any:
    known, body = cache.lookup(key)
    assert known and body is not None, f"{key} not served from the cache"
    return body


def test_an_object_never_streamed_is_unknown_unless_its_kind_was_listed(
    cache: WatchCache, trusted: WatchCache
) -> None:
    assert unknown(cache, KEY)
    assert absent(trusted, KEY)
    assert absent(trusted, ("Deployment", "any-namespace", "d"))
    assert unknown(trusted, ("KafkaTopic", "not-watched", "t"))
    assert unknown(trusted, ("SparkApplication", "apps", "s"))
    assert len(cache) == 0


@pytest.mark.parametrize("event_type", [None, "ADDED", "MODIFIED"])
def test_the_latest_streamed_version_is_served(cache: WatchCache, event_type: str | None) -> None:
    cache.seen(event_type, topic("1"))
    cache.seen("MODIFIED", topic("2", ready=True))
    assert served(cache, KEY) == topic("2", ready=True)


def test_deleted_or_unlabelled_objects_are_forgotten(
    cache: WatchCache, trusted: WatchCache
) -> None:
    for c in (cache, trusted):
        c.seen("ADDED", topic("1"))
        c.seen("DELETED", topic("3"))
        assert len(c) == 0
    assert unknown(cache, KEY)
    assert absent(trusted, KEY)  # a hand-deleted child is re-created without a GET


def test_after_our_write_the_cache_misses_until_its_echo_arrives(trusted: WatchCache) -> None:
    trusted.seen("ADDED", topic("1"))
    trusted.wrote(KEY, topic("5"))  # the apply returned version 5; the stream is still at 1
    assert unknown(trusted, KEY)
    trusted.seen("MODIFIED", topic("4"))  # an older version still in flight
    assert unknown(trusted, KEY)
    trusted.seen("MODIFIED", topic("5"))  # the echo
    assert served(trusted, KEY) == topic("5")


def test_a_created_child_is_unknown_until_its_echo_even_where_trusted(
    trusted: WatchCache,
) -> None:
    trusted.wrote(KEY, topic("2"))  # created by our apply: never "absent" meanwhile
    assert unknown(trusted, KEY)
    trusted.seen("ADDED", topic("2"))
    assert served(trusted, KEY) == topic("2")


def test_an_apply_that_changed_nothing_leaves_the_cache_trusted(cache: WatchCache) -> None:
    cache.seen("ADDED", topic("7"))
    cache.wrote(KEY, topic("7"))  # server-side apply without changes keeps the version
    assert served(cache, KEY) == topic("7")


def test_an_echo_and_a_later_write_that_beat_the_apply_response(cache: WatchCache) -> None:
    cache.seen("ADDED", topic("5"))  # the echo of our apply ...
    cache.seen("MODIFIED", topic("6", ready=True))  # ... and the delegate's status after it
    cache.wrote(KEY, topic("5"))  # only now the apply's response is handled
    assert served(cache, KEY) == topic("6", ready=True)


def test_a_deletion_clears_a_pending_write(cache: WatchCache) -> None:
    cache.wrote(KEY, topic("2"))
    cache.seen("DELETED", topic("3"))
    cache.seen("ADDED", topic("9"))  # re-created by someone: the stream is authoritative
    assert served(cache, KEY) == topic("9")


def test_kinds_whose_crd_went_away_are_dropped_and_no_longer_trusted(
    trusted: WatchCache,
) -> None:
    trusted.seen("ADDED", topic("1"))
    trusted.wrote(("KafkaTopic", "kafka", "other"), topic("2", name="other"))
    deployment = {"kind": "Deployment", "metadata": {"namespace": "apps", "name": "d"}}
    trusted.seen("ADDED", deployment)
    trusted.keep_kinds(["Deployment", "SparkApplication"])
    assert unknown(trusted, KEY)  # neither cached nor trusted: the CRD may come back
    assert served(trusted, ("Deployment", "apps", "d")) == deployment
    trusted.seen("MODIFIED", topic("4"))  # a late event of the kind that went away
    assert unknown(trusted, KEY)
    trusted.keep_kinds(["Deployment", "KafkaTopic"])  # the CRD is back
    assert unknown(trusted, KEY)
    trusted.seen("ADDED", topic("3", name="other"))  # no stale pending write survives either
    assert served(trusted, ("KafkaTopic", "kafka", "other")) == topic("3", name="other")


def test_managed_fields_are_kept_without_their_field_sets(cache: WatchCache) -> None:
    """Who manages an object and how (what claiming a create's fields reads) stays; the field
    sets, a copy of the whole spec and status, are not kept."""
    body = topic("1")
    body["metadata"]["managedFields"] = [
        {"manager": "federator", "operation": "Update", "fieldsV1": {"f:spec": {"f:x": {}}}},
        {"manager": "strimzi", "operation": "Update", "subresource": "status", "fieldsV1": {}},
    ]
    cache.seen("ADDED", body)
    got = served(cache, KEY)
    assert got["metadata"]["managedFields"] == [
        {"manager": "federator", "operation": "Update"},
        {"manager": "strimzi", "operation": "Update", "subresource": "status"},
    ]
    assert got["status"] == body["status"]
    assert body["metadata"]["managedFields"][0]["fieldsV1"]  # the event's body is not changed


def test_every_lookup_is_the_callers_own_copy(cache: WatchCache) -> None:
    cache.seen("ADDED", topic("1"))
    first = served(cache, KEY)
    first["status"]["conditions"].clear()
    assert served(cache, KEY) == topic("1")


def test_the_stored_text_is_smaller_than_the_body(cache: WatchCache) -> None:
    """What the cache keeps per object: its compact JSON text, not the parsed dicts."""
    body = topic("1")
    body["metadata"]["managedFields"] = [
        {"manager": "m", "fieldsV1": {"f:spec": {}} | {f"f:k{i}": {} for i in range(100)}}
    ]
    assert len(compact(body)) < 200
