"""YAML to plain data, fast: libyaml parses and composes, one recursive pass builds the values.

PyYAML's safe constructor is generic (generators for every mapping and list, a dispatch per
node, bookkeeping for aliases); for plain data (no alias, no merge key, no unusual tag: every
Kubernetes manifest and CRD) a direct pass builds the same values in about half the time, which
matters for the megabyte-sized delegate CRDs and for 1,000-streamlet Applications. Anything
else is built by PyYAML's own safe constructor, so the result is always what `yaml.safe_load`
gives. Pure: text in, values out.
"""

from __future__ import annotations

from typing import Any

import yaml

_CSafeLoader: Any = getattr(yaml, "CSafeLoader", None)  # absent when PyYAML lacks libyaml
HAVE_LIBYAML = _CSafeLoader is not None

_TAG = "tag:yaml.org,2002:"
_STR, _MAP, _SEQ, _MERGE = (_TAG + t for t in ("str", "map", "seq", "merge"))
_SCALARS = {
    _TAG + t: yaml.SafeLoader.yaml_constructors[_TAG + t]
    for t in ("null", "bool", "int", "float", "binary", "timestamp")
}


class NotPlain(Exception):
    """The document is more than plain data (an alias, a merge key, a set, an unhashable key)."""


class TooDeep(NotPlain):
    """Nested deeper than `PlainLoader.max_depth`."""


class PlainLoader(_CSafeLoader or yaml.SafeLoader):  # type: ignore[misc]
    """`yaml.CSafeLoader` whose documents are built by `construct_plain` when they are plain."""

    max_depth = 200
    """Deeper documents are left to PyYAML's constructor (it does not recurse)."""

    def construct_document(self, node: Any) -> Any:
        try:
            data, _ = self.construct_plain(node)
        except NotPlain:
            return super().construct_document(node)
        return data

    def construct_plain(self, node: Any) -> tuple[Any, int]:
        """The document's value and its number of nodes; `NotPlain` unless it is plain."""
        seen: set[int] = set()
        try:
            return self._plain(node, 1, seen), len(seen)
        except TypeError:  # an unhashable key: PyYAML's constructor words the error
            raise NotPlain from None

    def _plain(self, node: Any, depth: int, seen: set[int]) -> Any:
        if id(node) in seen:
            raise NotPlain  # a second reference to a node: an alias
        seen.add(id(node))
        cls, tag = type(node), node.tag
        if cls is yaml.ScalarNode:
            if tag == _STR:
                return node.value
            scalar = _SCALARS.get(tag)
            if scalar is None:
                raise NotPlain
            return scalar(self, node)
        if depth >= self.max_depth:
            raise TooDeep
        depth += 1
        if cls is yaml.MappingNode and tag == _MAP:
            out = {}
            for key, value in node.value:
                if key.tag == _MERGE:
                    raise NotPlain
                out[self._plain(key, depth, seen)] = self._plain(value, depth, seen)
            return out
        if cls is yaml.SequenceNode and tag == _SEQ:
            return [self._plain(item, depth, seen) for item in node.value]
        raise NotPlain


def load_all(text: str) -> list[Any]:
    """Every document of a stream, as `list(yaml.safe_load_all(text))` gives them."""
    loader = PlainLoader(text)
    try:
        docs = []
        while loader.check_data():
            docs.append(loader.get_data())
        return docs
    finally:
        loader.dispose()


def load(text: str) -> Any:
    """The single document of a stream, as `yaml.safe_load(text)` gives it."""
    loader = PlainLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()
