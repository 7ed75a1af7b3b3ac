"""Port schema compatibility: what one port writes, every port on the same topic must read.

Avro definitions are checked with the Apache `avro` package's own reader/writer compatibility
checker (the same rules as the Confluent registry's BACKWARD check), not a hand-written one.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import avro.errors
import avro.schema
from avro.compatibility import ReaderWriterCompatibilityChecker, SchemaCompatibilityType

from federator.core.model import PortSchema


@dataclass(frozen=True, kw_only=True)
class Endpoint:
    """A port on a topic with the schema it declares and where it was declared."""

    port: str  # "streamlet.port"
    schema: PortSchema
    path: str
    writes: bool


class BadSchema(ValueError):
    """A port's schema definition cannot be parsed in its own format."""


@lru_cache(maxsize=1024)
def _avro(definition: str) -> avro.schema.Schema:
    try:
        return avro.schema.parse(definition)
    except (avro.errors.AvroException, ValueError, TypeError) as exc:  # json errors are ValueError
        raise BadSchema(f"invalid Avro schema: {exc}") from None


def parse_check(schema: PortSchema) -> str | None:
    """Why a declared definition is unreadable, or None when it is fine (or absent)."""
    if schema.definition is None:
        return None
    try:
        if schema.format == "avro":
            _avro(schema.definition)
        elif schema.format == "json":
            json.loads(schema.definition)
    except BadSchema as exc:
        return str(exc)
    except ValueError as exc:
        return f"invalid JSON schema: {exc}"
    return None


def _same_definition(a: PortSchema, b: PortSchema) -> bool:
    if a.definition is None or b.definition is None:
        return True  # an undeclared definition constrains nothing beyond the format
    if a.format == "json":
        try:
            return bool(json.loads(a.definition) == json.loads(b.definition))
        except ValueError:
            return False
    return a.definition.strip() == b.definition.strip()


def _avro_incompatibility(reader: PortSchema, writer: PortSchema) -> str | None:
    if reader.definition is None or writer.definition is None:
        return None
    checker = ReaderWriterCompatibilityChecker()  # type: ignore[no-untyped-call]
    result = checker.get_compatibility(_avro(reader.definition), _avro(writer.definition))
    if result.compatibility is SchemaCompatibilityType.compatible:
        return None
    kinds = ", ".join(sorted(str(i.value) for i in result.incompatibilities))
    where = ", ".join(sorted(result.locations))
    return f"{kinds} at {where}" if where else kinds


def incompatibilities(endpoints: Sequence[Endpoint]) -> list[tuple[Endpoint, str]]:
    """Pairs that cannot talk, each reported on the later-declared endpoint with the reason."""
    found: list[tuple[Endpoint, str]] = []
    declared = [e for e in endpoints if parse_check(e.schema) is None]
    if not declared:
        return found
    first = declared[0]
    for other in declared[1:]:
        if other.schema.format != first.schema.format:
            found.append(
                (
                    other,
                    f"format {other.schema.format!r} of {other.port} does not match format "
                    f"{first.schema.format!r} of {first.port} on the same topic",
                )
            )
    if found:
        return found
    if first.schema.format == "avro":
        writers = [e for e in declared if e.writes]
        readers = [e for e in declared if not e.writes]
        for reader in readers:
            for writer in writers:
                reason = _avro_incompatibility(reader.schema, writer.schema)
                if reason:
                    found.append(
                        (
                            reader,
                            f"Avro schema of {reader.port} cannot read what {writer.port} "
                            f"writes ({reason})",
                        )
                    )
    else:
        for other in declared[1:]:
            if not _same_definition(first.schema, other.schema):
                found.append(
                    (
                        other,
                        f"{other.schema.format} definition of {other.port} differs from the one "
                        f"of {first.port} on the same topic",
                    )
                )
    return found
