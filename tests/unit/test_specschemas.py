"""The generated `spec` schemas of the delegates (federator/core/delegates/spec_schemas.json).

Aspects: the file is exactly what `specschemas` extracts from the vendored CRDs (it can never go
stale unnoticed); every delegate without a schema of its own has one there, and blockcheck uses
it. (The wheel carries it like any file of the package: tests/unit/test_wheel*.)
"""

from __future__ import annotations

from federator.core import blockcheck, delegates
from federator.core.delegates import specschemas
from federator.core.resources import delegate_crds_dir


def test_the_file_is_what_the_generator_extracts_from_the_vendored_crds() -> None:
    assert specschemas.FILE.read_text(encoding="utf-8") == specschemas.document(
        delegate_crds_dir()
    ), (
        "regenerate: python -m federator.core.delegates.specschemas > "
        "federator/core/delegates/spec_schemas.json"
    )


def test_every_delegate_without_its_own_schema_has_one_in_the_file() -> None:
    loaded = specschemas.load()
    for delegate in delegates.ALL:
        if delegate.spec_schema is None:
            spec = loaded[specschemas.key(delegate)]
            assert spec.get("type") == "object" and spec.get("properties"), delegate.kind
            assert blockcheck.spec_schema(delegate) is spec
