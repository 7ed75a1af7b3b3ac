"""The direct YAML writer (federator.core.yamltext) writes exactly what PyYAML with libyaml writes.

Aspects: compiled children of generated applications and the examples; strings made of every
character that decides a scalar's style (indicators, quotes, spaces, digits, booleans' words),
as keys and values, at every depth, in lists and nested lists, long enough to fold; what it
does not cover (floats, tuples, non-ASCII, control characters, non-string and long keys, empty
keys, an object met twice) is left to PyYAML, so the text is unchanged there too.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from federator import yamlio
from federator.core import plainyaml, yamltext
from federator.core.compiler import compile_application
from federator.core.settings import parse_settings

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "bench"))
import compile as bench_compile  # noqa: E402

pytestmark = pytest.mark.skipif(not plainyaml.HAVE_LIBYAML, reason="PyYAML without libyaml")


def libyaml(docs: list[Any]) -> str:
    """What `federator compile` wrote before this writer: PyYAML's representer, libyaml's
    emitter."""
    return yaml.dump_all(docs, Dumper=yaml.CSafeDumper, sort_keys=False, default_flow_style=False)


def pure_python(docs: list[Any]) -> str:
    return yaml.safe_dump_all(docs, sort_keys=False, default_flow_style=False)


SETTINGS = parse_settings(yaml.safe_load((REPO / "examples" / "settings.yaml").read_text()))


@pytest.mark.parametrize("size", [10, 300])
def test_compiled_children_are_written_as_libyaml_writes_them(size: int) -> None:
    compiled = compile_application(bench_compile.generate(size, seed=size), SETTINGS)
    manifests = [dict(c.manifest) for c in compiled.children]
    text = yamltext.stream(manifests)
    assert text is not None
    assert text == libyaml(manifests) == pure_python(manifests)


def test_the_examples_children_are_written_as_libyaml_writes_them() -> None:
    written = 0
    for path in sorted((REPO / "examples").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if not isinstance(doc, dict) or doc.get("kind") != "Application":
                continue
            try:
                compiled = compile_application(doc, SETTINGS)
            except Exception:  # an example of an invalid Application
                continue
            manifests = [dict(c.manifest) for c in compiled.children]
            assert yamltext.stream(manifests) == libyaml(manifests), path.name
            written += 1
    assert written >= 2


# Every character the style of a scalar depends on, and words that read back as other types.
ALPHABET = " :#-?'\"{}[],&*!|>%@`.~=/_aZ019"
WORDS = ["true", "no", "null", "~", "0x1f", "012", "1e3", "1.5", "-1", "2024-01-02", ":", "-"]
STRINGS = st.one_of(
    st.text(alphabet=ALPHABET, max_size=12),
    st.lists(st.sampled_from([*WORDS, "a", " ", "'", ": ", " #", "x" * 9]), max_size=40).map(
        "".join
    ),
    st.sampled_from(WORDS),
)
SCALARS = st.one_of(STRINGS, st.integers(), st.booleans(), st.none())
KEYS = st.one_of(st.text(alphabet=ALPHABET, min_size=1, max_size=20), st.sampled_from(WORDS))
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(KEYS, inner, max_size=4)),
    max_leaves=25,
)
DOCUMENTS = st.lists(st.dictionaries(KEYS, VALUES, min_size=1, max_size=5), min_size=1, max_size=3)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(DOCUMENTS)
def test_any_covered_stream_is_written_as_libyaml_writes_it(docs: list[Any]) -> None:
    text = yamltext.stream(docs)
    expected = libyaml(docs)
    if text is not None:
        assert text == expected
    out = io.StringIO()
    yamlio.dump_all(docs, out)
    assert out.getvalue() == expected


@pytest.mark.parametrize("width", range(60, 100, 3))
@pytest.mark.parametrize("depth", [0, 1, 3])
def test_long_strings_fold_where_libyaml_folds_them(width: int, depth: int) -> None:
    words = '{"a": \'b c\',  "d": x y z} ' * 6
    value: Any = {"plain": "w" * (width - 50) + " word" * 12, "quoted": words[: width + 20]}
    value["list"] = [value["plain"], [value["quoted"]], {"k": value["plain"]}]
    for _ in range(depth):
        value = {"nested": value, "items": [value.get("plain", "x")]}
    docs = [{"doc": value}]
    assert yamltext.stream(docs) == libyaml(docs)


NOT_COVERED = {
    "float": {"a": 1.5},
    "tuple": {"a": (1, 2)},
    "non-ascii": {"a": "é"},
    "line-break": {"a": "x\ny"},
    "tab": {"a": "x\ty"},
    "integer-key": {1: "a"},
    "empty-key": {"": "a"},
    "long-key": {"k" * 128: "a"},
    "empty-document": {},
}


@pytest.mark.parametrize("doc", list(NOT_COVERED.values()), ids=list(NOT_COVERED))
def test_what_it_does_not_cover_is_left_to_pyyaml(doc: dict[Any, Any]) -> None:
    docs = [{"first": "document"}, doc]
    assert yamltext.stream(docs) is None
    out = io.StringIO()
    yamlio.dump_all(docs, out)
    assert out.getvalue() == libyaml(docs)


def test_an_object_met_twice_keeps_pyyamls_anchor_and_alias() -> None:
    shared = {"x": 1}
    docs = [{"p": shared, "q": [shared]}]
    assert yamltext.stream(docs) is None
    out = io.StringIO()
    yamlio.dump_all(docs, out)
    assert "&id001" in out.getvalue()
    assert out.getvalue() == libyaml(docs)


def test_one_object_in_two_documents_is_written_twice_without_an_alias() -> None:
    shared = {"x": [1, 2]}
    docs = [{"a": shared}, {"b": shared}]
    assert yamltext.stream(docs) == libyaml(docs)
    assert "&" not in (yamltext.stream(docs) or "")
