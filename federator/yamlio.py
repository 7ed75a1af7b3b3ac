"""Reading user YAML safely: no arbitrary objects, no alias bombs, no huge documents.

A Kubernetes object is at most ~1.5 MiB in etcd, so a bigger input is a mistake or an attack;
we fail fast on size, on alias count (billion laughs) and on nesting depth, with a clear message.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from yaml.events import AliasEvent

MAX_BYTES = 3 * 1024 * 1024
MAX_ALIASES = 100
MAX_NODES = 200_000
"""The size a document may expand to once aliases are followed (a billion laughs stays small in
aliases and text, but not in expanded nodes)."""


class InputError(Exception):
    """Input that cannot be read as YAML documents; the message says what and where."""


class _BoundedLoader(yaml.SafeLoader):
    aliases_seen = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(AliasEvent):
            self.aliases_seen += 1
            if self.aliases_seen > MAX_ALIASES:
                mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
                raise InputError(
                    f"more than {MAX_ALIASES} YAML aliases (line {mark.line + 1}); "
                    "refusing a possible alias bomb: expand the anchors in the file"
                )
        return super().compose_node(parent, index)

    def compose_document(self) -> Any:
        node = super().compose_document()
        _check_expanded_size(node)
        return node


def _check_expanded_size(root: Any) -> None:
    """Count nodes as the constructor would materialise them, memoised per shared node."""
    sizes: dict[int, int] = {}

    def size(node: Any) -> int:
        known = sizes.get(id(node))
        if known is not None:
            return known
        total = 1
        if isinstance(node, yaml.SequenceNode):
            total += sum(size(child) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            total += sum(size(k) + size(v) for k, v in node.value)
        if total > MAX_NODES:
            raise InputError(
                f"the document expands to more than {MAX_NODES} YAML nodes through its aliases; "
                "refusing a possible alias bomb: expand the anchors in the file"
            )
        sizes[id(node)] = total
        return total

    size(root)


def read_text(source: str) -> str:
    """`-` reads stdin; anything else is a path. Size-limited before parsing."""
    try:
        if source == "-":
            data = sys.stdin.buffer.read(MAX_BYTES + 1)
        else:
            path = Path(source)
            if path.is_dir():
                raise InputError(f"{source}: is a directory, expected a YAML file")
            with path.open("rb") as handle:
                data = handle.read(MAX_BYTES + 1)
    except OSError as exc:
        raise InputError(f"{source}: cannot read: {exc.strerror or exc}") from None
    if len(data) > MAX_BYTES:
        raise InputError(
            f"{source}: larger than {MAX_BYTES // (1024 * 1024)} MiB; a Kubernetes object "
            "cannot be that big"
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{source}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def load_all(text: str, source: str = "<input>") -> list[Any]:
    """Every non-empty document of a YAML stream, safely."""
    loader = _BoundedLoader(text)
    docs = []
    try:
        while loader.check_data():  # type: ignore[no-untyped-call]
            doc = loader.get_data()
            if doc is not None:
                docs.append(doc)
    except InputError as exc:
        raise InputError(f"{source}: {exc}") from None
    except yaml.YAMLError as exc:
        raise InputError(f"{source}: invalid YAML: {exc}") from None
    except RecursionError:
        raise InputError(f"{source}: YAML nested too deeply") from None
    finally:
        loader.dispose()
    return docs


def iter_documents(source: str) -> Iterator[Any]:
    yield from load_all(read_text(source), source)
