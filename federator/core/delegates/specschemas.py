"""The `spec` schemas of the vendored delegate CRDs, extracted once into a small JSON file.

`blockcheck` checks each runtime block against the `spec` of the CRD that receives it. Reading
them from `third_party/delegate-crds` meant parsing 1.4 MB of YAML on every `federator compile`
(0.15 s of a 1.4 s command); the schemas federator uses are a fraction of that and change only
when the vendored CRDs do. So they are generated into `spec_schemas.json` beside this module
(`python -m federator.core.delegates.specschemas > federator/core/delegates/spec_schemas.json`),
shipped in the package like any module, and a unit test fails when the file differs from what
this module extracts from the vendored CRDs: the file can never silently go stale.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

from federator.core import openapi, plainyaml
from federator.core.delegates import ALL
from federator.core.delegates.base import Delegate

FILE = Path(__file__).with_name("spec_schemas.json")


def key(delegate: Delegate) -> str:
    """The entry of a delegate: the API version federator writes and the kind."""
    return f"{delegate.api_version()} {delegate.kind}"


def extract(crd_files: Iterable[Path]) -> dict[str, Any]:
    """`key(delegate)` -> the `spec` schema of every delegate without a schema of its own, from
    the CRD files that name its CRD (several files may serve one CRD's versions)."""
    files = sorted(crd_files)
    out: dict[str, Any] = {}
    for delegate in ALL:
        if delegate.spec_schema is not None:
            continue
        schema = _crd_schemas(files, delegate.crd_name).get(
            (delegate.group, delegate.versions[0], delegate.kind)
        )
        spec = schema.get("properties", {}).get("spec") if schema else None
        if isinstance(spec, Mapping):
            out[key(delegate)] = spec
    return out


def _crd_schemas(
    files: Iterable[Path], crd_name: str
) -> dict[tuple[str, str, str], Mapping[str, Any]]:
    # Only files naming that CRD are parsed: the folder holds megabytes of other kinds.
    named = re.compile(rf"^\s*name:\s*([\"']?){re.escape(crd_name)}\1\s*$", re.MULTILINE)
    out: dict[tuple[str, str, str], Mapping[str, Any]] = {}
    for path in files:
        text = path.read_text(encoding="utf-8")
        if not named.search(text):
            continue
        for doc in plainyaml.load_all(text):
            if isinstance(doc, Mapping) and doc.get("metadata", {}).get("name") == crd_name:
                out.update(openapi.crd_versions(doc))
    return out


def document(crd_dir: Path) -> str:
    """The text of `spec_schemas.json` for the CRDs in `crd_dir` (its top-level `*.crd.yaml`)."""
    return json.dumps(extract(crd_dir.glob("*.crd.yaml")), indent=1, ensure_ascii=False) + "\n"


@cache
def load() -> Mapping[str, Any]:
    """The generated schemas, by `key(delegate)`."""
    loaded: Mapping[str, Any] = json.loads(FILE.read_text(encoding="utf-8"))
    return loaded


if __name__ == "__main__":
    from federator.core.resources import delegate_crds_dir

    sys.stdout.write(document(delegate_crds_dir()))
