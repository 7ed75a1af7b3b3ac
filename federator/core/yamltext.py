"""The block-style YAML text of plain manifests, written directly: libyaml's text, without libyaml.

`federator compile` prints thousands of children. Through PyYAML, even with libyaml's emitter,
each of their ~200,000 values became a node object, then an event, with two Python calls back
per scalar to resolve its tag: a quarter of the command's time. The children are plain data
(mappings with string keys, lists, strings, integers, booleans, null) whose keys and most values
repeat, so this module writes the text itself and remembers each string's rendering.

It covers only what it writes byte for byte as `yaml.safe_dump_all(docs, sort_keys=False,
default_flow_style=False)` with libyaml's emitter writes it: block collections, `{}` and `[]`
for empty ones, printable ASCII strings (plain, or single-quoted when plain would read back as
another type or is not allowed there), folded at PyYAML's width of 80 columns as libyaml folds.
Anything else (another type, a non-ASCII or control character, a key that is not a short
string, an object appearing twice, which PyYAML writes as an anchor and alias) makes `stream`
answer None, and the caller writes the whole stream with PyYAML instead.
"""

from __future__ import annotations

import re
from typing import Any

import yaml
from yaml.resolver import Resolver

_WIDTH = 80
"""PyYAML's (and libyaml's) default best width: plain and single-quoted scalars fold at a
single space once the line is past it."""
_MAX_KEY = 128
"""libyaml writes a key of 128 characters or more as a complex key (`? key`)."""
_STR_TAG = Resolver.DEFAULT_SCALAR_TAG


class _Unsupported(Exception):
    """Something this writer does not cover: the stream is written by PyYAML instead."""


_resolve: Any = Resolver().resolve  # PyYAML's own implicit types (int, bool, null, ...)
_PRINTABLE = re.compile(r"[ -~]*").fullmatch
_LEADING_INDICATORS = frozenset("#,[]{}&*!|>'\"%@`")


def _style(text: str) -> str:
    """`''` (plain) or `"'"` (single-quoted) as libyaml chooses them for a block-context string,
    or _Unsupported (double quotes: not covered)."""
    if not _PRINTABLE(text):
        raise _Unsupported  # a line break, a tab, a control or non-ASCII character
    # A printable ASCII string can always be single-quoted; plain when it reads back as a string.
    plain = _block_plain(text) and _resolve(yaml.ScalarNode, text, (True, False)) == _STR_TAG
    return "" if plain else "'"


def _block_plain(text: str) -> bool:
    """PyYAML's and libyaml's `allow_block_plain` of a printable ASCII string (their scalar
    analysis, for the characters it can meet here)."""
    if not text or text[0] == " " or text[-1] == " " or text.startswith(("---", "...")):
        return False
    first = text[0]
    if first in _LEADING_INDICATORS:
        return False
    if first in "?:-" and (len(text) == 1 or text[1] == " "):
        return False
    return not (text[-1] == ":" or ": " in text or " #" in text)


class _Writer:
    """One stream's texts of keys and scalars, remembered by string (the children of one
    Application repeat their keys and most of their values)."""

    def __init__(self) -> None:
        self.keys: dict[str, str] = {}
        """key -> its text and the colon."""
        self.strings: dict[str, tuple[str, bool]] = {}
        """string -> (its unfolded text, whether it has a space where it may fold)."""
        self.seen: set[int] = set()
        """The collections of the current document, by id."""

    def key(self, key: Any) -> str:
        if type(key) is not str or not key or len(key) >= _MAX_KEY:
            raise _Unsupported
        text = self.keys[key] = _quoted(key, _style(key)) + ":"
        return text

    def string(self, value: str) -> tuple[str, bool]:
        entry = self.strings[value] = (_quoted(value, _style(value)), " " in value)
        return entry

    def scalar(self, value: Any, column: int, indent: int) -> str:
        """The text of a scalar starting at `column`, its continuation lines at `indent`."""
        cls = type(value)
        if cls is str:
            body, spaced = self.strings.get(value) or self.string(value)
            if spaced and column + len(body) > _WIDTH:
                return _fold(value, column, indent)
            return body
        if cls is int:
            return str(value)
        if cls is bool:
            return "true" if value else "false"
        if value is None:
            return "null"
        raise _Unsupported

    def mapping(self, node: dict[Any, Any], indent: int, out: list[str], inline: bool) -> None:
        """A non-empty mapping whose keys start at `indent`; `inline`: the first key follows a
        `- ` already written."""
        pad = " " * indent
        keys, strings, seen, append = self.keys, self.strings, self.seen, out.append
        for k, v in node.items():
            key = keys.get(k) if type(k) is str else None
            if key is None:
                key = self.key(k)
            head = key if inline else pad + key
            inline = False
            cls = type(v)
            if cls is str:  # the common case, inline
                body, spaced = strings.get(v) or self.string(v)
                if spaced and indent + len(key) + 1 + len(body) > _WIDTH:
                    body = _fold(v, indent + len(key) + 1, indent + 2)
                append(f"{head} {body}\n")
            elif cls is dict or cls is list:
                if id(v) in seen:
                    raise _Unsupported  # PyYAML writes it as an anchor and an alias
                seen.add(id(v))
                if not v:
                    append(head + (" {}\n" if cls is dict else " []\n"))
                elif cls is dict:
                    append(head + "\n")
                    self.mapping(v, indent + 2, out, False)
                else:
                    append(head + "\n")
                    self.sequence(v, indent, out, False)  # PyYAML does not indent it
            else:
                append(f"{head} {self.scalar(v, indent + len(key) + 1, indent + 2)}\n")

    def sequence(self, node: list[Any], indent: int, out: list[str], inline: bool) -> None:
        """A non-empty sequence whose dashes are at `indent`; `inline`: the first dash follows
        a `- ` already written."""
        dash = " " * indent + "- "
        seen, append = self.seen, out.append
        for item in node:
            head = "- " if inline else dash
            inline = False
            cls = type(item)
            if cls is dict or cls is list:
                if id(item) in seen:
                    raise _Unsupported
                seen.add(id(item))
                if not item:
                    append(head + ("{}\n" if cls is dict else "[]\n"))
                    continue
                append(head)
                if cls is dict:
                    self.mapping(item, indent + 2, out, True)
                else:
                    self.sequence(item, indent + 2, out, True)
            else:
                # The dash leaves the emitter after whitespace: no space before the scalar.
                append(f"{head}{self.scalar(item, indent + 2, indent + 2)}\n")


def _quoted(text: str, style: str) -> str:
    return text if not style else "'" + text.replace("'", "''") + "'"


def _fold(text: str, column: int, indent: int) -> str:
    """libyaml's plain and single-quoted writers for printable ASCII (no line breaks): a single
    space between two other characters becomes a line break indented to `indent` when the line
    is already past the width; `column` is where the scalar starts."""
    quoted = _style(text) == "'"
    words = (text.replace("'", "''") if quoted else text).split(" ")
    out = ["'"] if quoted else []
    col = column + 1 if quoted else column
    previous = ""
    for i, word in enumerate(words):
        if i:
            if col > _WIDTH and previous and word:
                out.append("\n" + " " * indent)
                col = indent
            else:
                out.append(" ")
                col += 1
        out.append(word)
        col += len(word)
        previous = word
    if quoted:
        out.append("'")
    return "".join(out)


def stream(documents: list[Any]) -> str | None:
    """The YAML stream of `documents`, or None when one of them is not covered."""
    writer = _Writer()
    out: list[str] = []
    try:
        for n, doc in enumerate(documents):
            if type(doc) is not dict or not doc:
                return None
            if n:
                out.append("---\n")
            writer.seen = {id(doc)}
            writer.mapping(doc, 0, out, False)
    except _Unsupported:
        return None
    return "".join(out)
