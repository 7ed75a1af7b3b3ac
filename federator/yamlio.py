"""Reading user YAML safely: no arbitrary objects, no alias bombs, no huge documents.

A Kubernetes object is at most ~1.5 MiB in etcd, so a bigger input is a mistake or an attack;
we fail fast on size, on alias count (billion laughs) and on nesting depth, with a clear message.

Two loaders, one verdict. libyaml (PyYAML's C parser and composer) reads a document about ten
times faster than the pure-Python composer, which was half of `federator compile`'s time on a
1,000-streamlet application. It composes without expanding aliases (a bomb stays a small graph),
so the limits are checked on the composed graph before anything is constructed. Whatever the
fast path refuses or fails on is read again by the pure-Python loader, whose messages (with
their line marks and the offending line quoted) stay the only ones a user sees.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from yaml.events import AliasEvent

from federator.core import plainyaml, yamltext

MAX_BYTES = 3 * 1024 * 1024
MAX_ALIASES = 100
MAX_NODES = 200_000
"""The size a document may expand to once aliases are followed (a billion laughs stays small in
aliases and text, but not in expanded nodes)."""
FAST_MAX_DEPTH = 200
"""Deeper documents take the pure-Python loader, whose recursion limit (about 300 levels) decides
what "nested too deeply" means; Kubernetes objects and CRD schemas nest far less."""


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


class _Refused(Exception):
    """The fast path declines; the pure-Python loader reads the stream and says why."""


class _FastLoader(plainyaml.PlainLoader):
    """libyaml composes; a plain document (every Kubernetes manifest) is built in one pass that
    counts its nodes and depth; any other is checked on its composed graph (aliases, expanded
    size, depth) before PyYAML's safe constructor builds it."""

    aliases_seen = 0
    max_depth = FAST_MAX_DEPTH

    def construct_document(self, node: Any) -> Any:
        try:
            data, nodes = self.construct_plain(node)
        except plainyaml.TooDeep:
            raise _Refused from None
        except plainyaml.NotPlain:
            self.aliases_seen += _check_composed(node, MAX_ALIASES - self.aliases_seen)
            return super(plainyaml.PlainLoader, self).construct_document(node)
        if nodes > MAX_NODES:
            raise _Refused
        return data


def _check_composed(root: Any, aliases_left: int) -> int:
    """The alias references, depth and expanded size of a composed document, without recursion;
    `_Refused` past any limit. An alias is a second reference to an already composed node."""
    seen: set[int] = set()
    aliases = 0
    stack = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        if id(node) in seen:
            aliases += 1
            if aliases > aliases_left:
                raise _Refused
            continue
        seen.add(id(node))
        if depth > FAST_MAX_DEPTH:
            raise _Refused
        if isinstance(node, yaml.SequenceNode):
            stack += [(child, depth + 1) for child in node.value]
        elif isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                stack += [(key, depth + 1), (value, depth + 1)]
    if len(seen) > MAX_NODES:
        raise _Refused
    if aliases:
        try:
            _check_expanded_size(root)
        except InputError:
            raise _Refused from None
    return aliases


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
    """Every non-empty document of a YAML stream, safely: through libyaml when it is there and
    the stream is within every limit, else through the pure-Python loader and its messages."""
    if plainyaml.HAVE_LIBYAML:
        try:
            return _load_fast(text)
        except (_Refused, yaml.YAMLError, RecursionError):
            pass  # read again below: same verdict, the pure-Python loader's words
    return _load_bounded(text, source)


def _load_fast(text: str) -> list[Any]:
    loader = _FastLoader(text)
    docs = []
    try:
        while loader.check_data():
            doc = loader.get_data()
            if doc is not None:
                docs.append(doc)
    finally:
        loader.dispose()
    return docs


def _load_bounded(text: str, source: str) -> list[Any]:
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


# --- writing -------------------------------------------------------------------------------------

_CSafeDumper: Any = getattr(yaml, "CSafeDumper", None)
_STR, _INT, _BOOL, _NULL, _MAP, _SEQ = (
    f"tag:yaml.org,2002:{t}" for t in ("str", "int", "bool", "null", "map", "seq")
)


class _FastDumper(_CSafeDumper or yaml.SafeDumper):  # type: ignore[misc]
    """`yaml.SafeDumper`'s text, written faster: libyaml's emitter; the representer's common
    cases (dict, list, str, int, bool, None) without its per-value type dispatch; and the
    implicit-tag resolution of each scalar remembered (manifests repeat their keys thousands
    of times). Anything else, and every alias, is PyYAML's own code."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._tags: dict[str, Any] = {}

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        if kind is not yaml.ScalarNode or self.yaml_path_resolvers:
            return super().resolve(kind, value, implicit)
        if not implicit[0]:
            return self.DEFAULT_SCALAR_TAG  # what PyYAML answers without path resolvers
        # With implicit[0], the answer depends on the value only (a matching implicit resolver's
        # tag, else the default scalar tag): remember it per value.
        tag = self._tags.get(value)
        if tag is None:
            tag = self._tags[value] = super().resolve(kind, value, implicit)
        return tag

    def represent_data(self, data: Any) -> Any:
        cls = type(data)
        if cls is str:
            return yaml.ScalarNode(_STR, data)
        if cls is dict or cls is list:
            node = self.represented_objects.get(id(data))
            if node is not None:
                return node  # the same object twice: PyYAML's anchor and alias
            self.object_keeper.append(data)
            if cls is dict:
                node = yaml.MappingNode(_MAP, [], flow_style=False)
                self.represented_objects[id(data)] = node
                node.value = [
                    (self.represent_data(k), self.represent_data(v)) for k, v in data.items()
                ]
            else:
                node = yaml.SequenceNode(_SEQ, [], flow_style=False)
                self.represented_objects[id(data)] = node
                node.value = [self.represent_data(item) for item in data]
            return node
        if cls is int:
            return yaml.ScalarNode(_INT, str(data))
        if cls is bool:
            return yaml.ScalarNode(_BOOL, "true" if data else "false")
        if data is None:
            return yaml.ScalarNode(_NULL, "null")
        return super().represent_data(data)


def dump_all(documents: list[Any], stream: Any) -> None:
    """A YAML stream of plain data, block style, keys in their order: exactly the text of
    `yaml.safe_dump_all(documents, stream, sort_keys=False, default_flow_style=False)`. Plain
    manifests are written by `yamltext` (a quarter of `federator compile`'s time went into
    PyYAML's nodes and events); anything it does not cover, by PyYAML with libyaml."""
    text = yamltext.stream(documents)
    if text is not None:
        stream.write(text)
        return
    yaml.dump_all(documents, stream, Dumper=_FastDumper, sort_keys=False, default_flow_style=False)
