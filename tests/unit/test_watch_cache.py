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


def owned_topic(name: str, owner: str = "team/app", version: str = "1") -> dict[str, Any]:
    body = topic(version, name=name)
    body["metadata"]["annotations"] = {"federator.io/application": owner}
    return body


def key_of(name: str) -> Key:
    return ("KafkaTopic", "kafka", name)


def test_only_what_kopfs_streams_delivered_is_confirmed(cache: WatchCache) -> None:
    """Our start-up priming is not a confirmation: an object deleted between it and kopf's own
    listing is never streamed again, so a restart's reconcile must GET what is unconfirmed."""
    cache.seen(None, owned_topic("primed-only"))  # priming
    cache.seen(None, owned_topic("listed-by-kopf"))
    cache.streamed(None, owned_topic("listed-by-kopf"))  # kopf's first listing
    assert not cache.confirmed(key_of("primed-only"))
    assert served(cache, key_of("primed-only"))  # still served to reconciles that trust it
    assert cache.confirmed(key_of("listed-by-kopf"))
    assert cache.listed_at is None  # kopf's first listing is not a re-listing
    cache.streamed("DELETED", owned_topic("listed-by-kopf"))
    assert not cache.confirmed(key_of("listed-by-kopf"))


def test_a_relisting_confirms_only_what_it_delivers_again(cache: WatchCache) -> None:
    """After a broken stream kopf lists again: whatever it does not deliver again was deleted
    meanwhile (no DELETED event comes for it), so it is no longer confirmed."""
    for name in ("a", "b", "c"):
        cache.streamed("ADDED", owned_topic(name))
    for name in ("a", "c"):  # b was deleted while the stream was broken
        cache.streamed(None, owned_topic(name, version="2"))
    assert cache.listed_at is not None
    assert cache.confirmed(key_of("a")) and cache.confirmed(key_of("c"))
    assert not cache.confirmed(key_of("b"))
    cache.streamed("MODIFIED", owned_topic("d"))  # new objects after it are confirmed
    assert cache.confirmed(key_of("d"))
    for name in ("a", "c", "d"):  # a second re-listing
        cache.streamed(None, owned_topic(name, version="3"))
    assert all(cache.confirmed(key_of(n)) for n in ("a", "c", "d"))
    assert not cache.confirmed(key_of("b"))


def test_what_an_application_owns_is_found_where_the_cache_is_trusted(trusted: WatchCache) -> None:
    trusted.seen(None, owned_topic("mine-1"))
    trusted.seen("ADDED", owned_topic("mine-2"))
    trusted.seen("ADDED", owned_topic("theirs", owner="team/other"))
    trusted.seen("ADDED", owned_topic("unowned", owner=""))
    scopes = [("KafkaTopic", "kafka"), ("Deployment", "team")]
    found = trusted.owned("team/app", scopes)
    assert [b["metadata"]["name"] for b in found or []] == ["mine-1", "mine-2"]
    assert trusted.owned("team/app", [("KafkaTopic", "elsewhere")]) is None  # not listed there
    assert trusted.owned("team/app", [("SparkApplication", "team")]) is None  # kind not listed
    trusted.seen("MODIFIED", owned_topic("mine-2", owner="team/other"))  # re-annotated
    trusted.seen("DELETED", owned_topic("mine-1"))
    assert trusted.owned("team/app", scopes) == []
    assert [b["metadata"]["name"] for b in trusted.owned("team/other", scopes) or []] == [
        "mine-2",
        "theirs",
    ]
    trusted.keep_kinds(["Deployment"])  # the KafkaTopic CRD went away
    assert trusted.owned("team/other", [("Deployment", "team")]) == []
