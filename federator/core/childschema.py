"""Check rendered children against their delegates' CRD schemas before anything is applied.

Offline the CRDs come from files (`--schemas DIR`); in a cluster, from the live CRDs. Unknown
fields are errors: the API server would prune them silently and a setting would vanish.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from federator.core import openapi
from federator.core.problems import Code, Problem, format_path
from federator.core.render import Child

if TYPE_CHECKING:
    from jsonschema.protocols import Validator

CORE_GROUPS = frozenset({"", "apps"})  # built-in kinds: validated by the API server itself


@dataclass(kw_only=True)
class SchemaIndex:
    """Validators by (group, version, kind), built lazily from CRD documents."""

    schemas: dict[tuple[str, str, str], Mapping[str, Any]] = field(default_factory=dict)
    _validators: dict[tuple[str, str, str], Validator] = field(default_factory=dict)

    @classmethod
    def from_documents(cls, documents: Iterable[Any]) -> SchemaIndex:
        index = cls()
        for doc in documents:
            if isinstance(doc, Mapping) and doc.get("kind") == "CustomResourceDefinition":
                index.schemas.update(openapi.crd_versions(doc))
        return index

    def validator(self, key: tuple[str, str, str]) -> Validator | None:
        if key not in self._validators and key in self.schemas:
            self._validators[key] = openapi.validator_for(self.schemas[key])
        return self._validators.get(key)


def _gvk(child: Child) -> tuple[str, str, str]:
    group, _, version = child.api_version.rpartition("/")
    return (group, version, child.kind)


def check(children: Iterable[Child], index: SchemaIndex) -> list[Problem]:
    problems = []
    for child in children:
        where = f"{child.kind}/{child.namespace}/{child.name}"
        key = _gvk(child)
        validator = index.validator(key)
        if validator is None:
            if key[0] in CORE_GROUPS:
                continue
            problems.append(
                Problem(
                    path=where,
                    code=Code.CHILD_SCHEMA,
                    message=f"no CRD serves {child.api_version} {child.kind}; "
                    "add its CRD to the schema directory",
                )
            )
            continue
        for error in sorted(validator.iter_errors(child.manifest), key=lambda e: list(e.path)):
            problems.append(
                Problem(
                    path=f"{where} {format_path(list(error.absolute_path)) or '(root)'}",
                    code=Code.CHILD_SCHEMA,
                    message=error.message,
                )
            )
    return problems
