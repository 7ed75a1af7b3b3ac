"""Reading and writing YAML fast without changing a value or a message (issue 14, item 5).

Aspects: libyaml's path gives exactly the pure-Python loader's values (manifests, the examples,
anchors, merge keys, tags, timestamps); everything the fast path refuses or fails on is read by
the pure-Python loader, so errors keep their line marks and the quoted line; the limits hold on
the fast path (aliases, expanded size, depth); the writer's text is `yaml.safe_dump_all`'s.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from federator import yamlio
from federator.core import plainyaml

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "bench"))
import compile as bench_compile  # noqa: E402

pytestmark = pytest.mark.skipif(not plainyaml.HAVE_LIBYAML, reason="PyYAML without libyaml")

SAME_VALUES = {
    "anchors-and-aliases": "a: &x {b: 1, c: [1, 2]}\nd: *x\ne: *x\n",
    "merge-key": "base: &b {x: 1, y: 2}\nderived:\n  <<: *b\n  y: 3\n",
    "scalars": "a: yes\nb: 0x1f\nc: 1.5e3\nd: ~\ne: 2024-01-02\nf: '012'\ng: !!binary aGk=\n",
    "set-and-omap": "s: !!set {a, b}\no: !!omap [{a: 1}, {b: 2}]\n",
    "duplicate-keys": "a: 1\na: 2\n",
    "several-documents": "a: 1\n---\n---\n- 2\n",
    "empty": "",
    "non-string-keys": "1: a\ntrue: b\nnull: c\n",
}


@pytest.mark.parametrize("text", list(SAME_VALUES.values()), ids=list(SAME_VALUES))
def test_fast_path_gives_the_pure_python_values(text: str) -> None:
    assert yamlio.load_all(text) == [d for d in yaml.safe_load_all(text) if d is not None]
    assert plainyaml.load_all(text) == list(yaml.load_all(text, Loader=yaml.SafeLoader))


def test_examples_and_a_large_application_read_alike() -> None:
    texts = [p.read_text() for p in sorted((REPO / "examples").glob("*.yaml"))]
    texts.append(yaml.safe_dump(bench_compile.generate(300), sort_keys=False))
    for text in texts:
        assert yamlio._load_fast(text) == yamlio._load_bounded(text, "x")


def test_a_plain_document_never_touches_the_pure_python_loader(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def refuse(text: str, source: str) -> list[Any]:
        raise AssertionError("the slow path was taken")

    monkeypatch.setattr(yamlio, "_load_bounded", refuse)
    text = (REPO / "examples" / "call-record-aggregator.yaml").read_text()
    assert yamlio.load_all(text)[0]["kind"] == "Application"


ERRORS = {
    "unclosed-flow": "a: [1, 2\nb: {",
    "tab": "a:\n\tb: 1\n",
    "python-tag": "!!python/object/apply:os.system ['true']\n",
    "bad-indentation": "a:\n  b: 1\n c: 2\n",
    "unhashable-key": "? [a]\n: 1\n",
}


@pytest.mark.parametrize("text", list(ERRORS.values()), ids=list(ERRORS))
def test_errors_are_the_pure_python_loaders_with_line_marks(text: str) -> None:
    with pytest.raises(yamlio.InputError) as fast:
        yamlio.load_all(text, "app.yaml")
    with pytest.raises(yamlio.InputError) as slow:
        yamlio._load_bounded(text, "app.yaml")
    assert str(fast.value) == str(slow.value)
    assert "line" in str(fast.value)


def test_alias_limit_is_exact_and_names_the_line() -> None:
    ok = "a: &x 1\n" + "".join(f"b{i}: *x\n" for i in range(yamlio.MAX_ALIASES))
    assert len(yamlio.load_all(ok)[0]) == yamlio.MAX_ALIASES + 1
    over = ok + "z: *x\n"
    with pytest.raises(yamlio.InputError, match=rf"line {yamlio.MAX_ALIASES + 2}\b.*alias bomb"):
        yamlio.load_all(over, "app.yaml")


def test_aliases_count_across_the_documents_of_a_stream() -> None:
    doc = "a: &x 1\n" + "".join(f"b{i}: *x\n" for i in range(60))
    with pytest.raises(yamlio.InputError, match="alias bomb"):
        yamlio.load_all(doc + "---\n" + doc, "app.yaml")


def test_expanded_size_is_limited_on_the_fast_path() -> None:
    items = ", ".join(["1"] * 2500)
    text = f"a: &a [{items}]\n" + "".join(f"b{i}: *a\n" for i in range(99))
    with pytest.raises(yamlio.InputError, match="expands to more than"):
        yamlio.load_all(text, "app.yaml")


@pytest.mark.parametrize("depth", [150, yamlio.FAST_MAX_DEPTH + 50])
def test_deep_documents_get_the_pure_python_verdict(depth: int) -> None:
    text = "".join(f"{' ' * i}k{i}:\n" for i in range(depth)) + " " * depth + "v\n"
    try:
        expected: Any = yamlio._load_bounded(text, "deep.yaml")
    except yamlio.InputError as exc:
        expected = str(exc)
    try:
        got: Any = yamlio.load_all(text, "deep.yaml")
    except yamlio.InputError as exc:
        got = str(exc)
    assert got == expected


WRITTEN: list[Any] = [
    {"a": 1, "b": [1, 2, {"c": None}], "d": True, "e": 1.5, "f": [], "g": {}},
    {"quoted": ["yes", "012", "1e3", "null", "", " x", "a: b", "#", "é", "line\nbreak"]},
    {"long": "word " * 40, "tuple": (1, 2)},
]


def test_writer_is_safe_dump_all() -> None:
    shared = {"x": 1}
    docs = [*WRITTEN, {"p": shared, "q": shared}]
    out = io.StringIO()
    yamlio.dump_all(docs, out)
    assert out.getvalue() == yaml.safe_dump_all(docs, sort_keys=False, default_flow_style=False)


def test_writer_is_safe_dump_all_on_compiled_children() -> None:
    from federator.core.compiler import compile_application
    from federator.core.settings import parse_settings

    settings = parse_settings(yaml.safe_load((REPO / "examples" / "settings.yaml").read_text()))
    compiled = compile_application(bench_compile.generate(100), settings)
    manifests = [dict(c.manifest) for c in compiled.children]
    out = io.StringIO()
    yamlio.dump_all(manifests, out)
    assert out.getvalue() == yaml.safe_dump_all(
        manifests, sort_keys=False, default_flow_style=False
    )
