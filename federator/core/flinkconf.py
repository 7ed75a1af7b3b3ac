"""A FlinkDeployment's `flinkConfiguration` read the way the Apache Flink operator reads it.

Why: its CRD (from 1.8 on) keeps the map's nested objects, and the operator flattens them into
dotted keys (`ConfigObjectNode.asFlatMap`): `{kubernetes: {hostnetwork: {enabled: "true"}}}`,
`{"kubernetes.hostnetwork": {enabled: "true"}}` and `{"kubernetes.hostnetwork.enabled": "true"}`
are one option to Flink. Every check of the configuration (where the pods run, what they run
as) must see each option in every form it can be written, and report it where it was written.
Flink reads values as strings: a YAML boolean or number is its text.

Map-typed options (annotations, node selectors) can also be written as one key per entry under
the option's name (`kubernetes.jobmanager.annotations.<name>: <value>`): Flink's prefix-map
form; `map_option` gives both forms as one map.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Entry:
    """One option as Flink sees it: its dotted key, its value, and where it was written."""

    key: str
    value: Any
    path: tuple[str, ...]
    """The keys as written, from the configuration map down (`("kubernetes", "hostnetwork",
    "enabled")` for the nested form)."""


def entries(conf: Any) -> Iterator[Entry]:
    """Every leaf of the configuration as a dotted key, in the order written. A key written in
    two forms yields two entries: a check refuses it wherever it is written."""
    if isinstance(conf, Mapping):
        yield from _walk(conf, (), ())


def _walk(
    node: Mapping[Any, Any], prefix: tuple[str, ...], path: tuple[str, ...]
) -> Iterator[Entry]:
    for raw, value in node.items():
        parts, here = (*prefix, str(raw)), (*path, str(raw))
        if isinstance(value, Mapping) and value:
            yield from _walk(value, parts, here)
        else:
            yield Entry(key=".".join(parts), value=text(value), path=here)


def text(value: Any) -> Any:
    """What Flink reads: booleans lower case, numbers as written; anything else unchanged (a
    list is refused by the schema or stays a list, for a check to report)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


def lookup(conf: Any, key: str) -> list[Entry]:
    """Every entry of `key`, in whatever form it was written."""
    return [e for e in entries(conf) if e.key == key]


def map_option(conf: Any, key: str) -> Iterator[tuple[str, Any, tuple[str, ...]]]:
    """(name, value, path) of each entry of a map-typed option: its `a:b,c:d` string form and its
    prefix-map form (`<key>.<name>: <value>`)."""
    for entry in entries(conf):
        if entry.key == key and isinstance(entry.value, str):
            for pair in entry.value.split(","):
                name, _, value = pair.partition(":")
                if name.strip():
                    yield name.strip(), value.strip(), entry.path
        elif entry.key.startswith(key + "."):
            yield entry.key[len(key) + 1 :], entry.value, entry.path
