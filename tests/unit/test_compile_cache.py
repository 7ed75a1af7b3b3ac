"""The compile cache: an unchanged application is not compiled again, for every application one
process serves, within a byte budget."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from federator.core import compiler
from federator.core.problems import InvalidSpec
from federator.core.resources import examples_dir
from federator.core.settings import Settings
from federator.operator.compile_cache import CompileCache, digest

EXAMPLES = sorted(p.name for p in examples_dir().glob("*.yaml") if p.name != "settings.yaml")


@pytest.mark.parametrize("name", EXAMPLES)
def test_a_hit_is_the_compiled_application_again(
    name: str, example_loader: Callable[[str], dict[str, Any]], example_settings: Settings
) -> None:
    body = example_loader(name)
    calls: list[int] = []

    def compile_() -> compiler.Compiled:
        calls.append(1)
        return compiler.compile_application(body, example_settings)

    cache = CompileCache()
    first = cache.get(b"k", compile_)
    again = cache.get(b"k", compile_)
    assert len(calls) == 1 and (cache.hits, cache.misses) == (1, 1)
    assert again is not first  # each reader has its own copy
    assert again.children == first.children
    assert again.app == first.app
    assert list(again.topology.graph.nodes) == list(first.topology.graph.nodes)
    assert cache.size < 16_000  # compressed: a few KB per application


def test_an_invalid_spec_is_raised_and_not_remembered(example_settings: Settings) -> None:
    cache = CompileCache()
    body = {"apiVersion": "federator.io/v1alpha1", "kind": "Application", "spec": {}}
    for _ in range(2):
        with pytest.raises(InvalidSpec):
            cache.get(b"bad", lambda: compiler.compile_application(body, example_settings))
    assert len(cache) == 0 and cache.misses == 0


def test_the_least_recently_used_go_first_beyond_the_budget(
    example_loader: Callable[[str], dict[str, Any]], example_settings: Settings
) -> None:
    compiled = compiler.compile_application(example_loader(EXAMPLES[0]), example_settings)
    one = CompileCache()
    one.get(b"x", lambda: compiled)
    cache = CompileCache(budget=2 * one.size)
    for key in (b"a", b"b"):
        cache.get(key, lambda: compiled)
    cache.get(b"a", lambda: compiled)  # a is now the most recent
    cache.get(b"c", lambda: compiled)
    assert len(cache) == 2 and cache.size <= cache.budget
    misses = cache.misses
    cache.get(b"a", lambda: compiled)
    cache.get(b"c", lambda: compiled)
    assert cache.misses == misses
    cache.get(b"b", lambda: compiled)
    assert cache.misses == misses + 1


def test_digest_is_equal_for_equal_parts_only() -> None:
    assert digest([{"a": 1, "b": [2]}, "x"]) == digest([{"b": [2], "a": 1}, "x"])
    assert digest([{"a": 1}]) != digest([{"a": 2}])
    assert len(digest(["x" * 100_000])) == 32


def test_one_entry_per_application_none_once_it_is_deleted(
    example_loader: Callable[[str], dict[str, Any]], example_settings: Settings
) -> None:
    """What the process serves, no more: a new generation replaces the old entry, a deleted
    application's goes (create/delete cycles must leave the memory flat)."""
    compiled = compiler.compile_application(example_loader(EXAMPLES[0]), example_settings)
    cache = CompileCache()
    cache.get(b"gen-1", lambda: compiled, owner="ns/app")
    cache.get(b"other", lambda: compiled, owner="ns/other")
    size = cache.size
    cache.get(b"gen-2", lambda: compiled, owner="ns/app")
    assert len(cache) == 2 and cache.size == size
    misses = cache.misses
    cache.get(b"gen-2", lambda: compiled, owner="ns/app")
    assert cache.misses == misses  # the newest is kept
    cache.forget("ns/app")
    cache.forget("ns/unknown")
    assert len(cache) == 1 and cache.size == size // 2
