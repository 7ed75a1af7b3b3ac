"""Problems found in a spec: typed, with a path, collected rather than raised one at a time.

A user fixes a spec in one pass when every problem is reported at once (DESIGN §2), so checks
append to a list of `Problem`s; only the caller decides to raise `InvalidSpec` with all of them.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum


class Code(StrEnum):
    """Problem kinds: fixed strings so tests and tools can match on them, not on messages."""

    SCHEMA = "SchemaViolation"
    DUPLICATE_STREAMLET = "DuplicateStreamlet"
    DUPLICATE_PORT = "DuplicatePort"
    UNKNOWN_STREAMLET = "UnknownStreamlet"
    UNKNOWN_PORT = "UnknownPort"
    NOT_AN_OUTLET = "NotAnOutlet"
    NOT_AN_INLET = "NotAnInlet"
    PORT_BOUND_TWICE = "PortBoundTwice"
    UNCONNECTED_INLET = "UnconnectedInlet"
    INVALID_TOPIC_NAME = "InvalidTopicName"
    DUPLICATE_TOPIC = "DuplicateTopic"
    UNKNOWN_RUNTIME = "UnknownRuntime"
    UNKNOWN_KAFKA_CLUSTER = "UnknownKafkaCluster"
    KAFKA_CLUSTER_NOT_ALLOWED = "KafkaClusterNotAllowed"
    TOPIC_PREFIX = "TopicPrefixRequired"
    TOPIC_NOT_SHARED = "TopicNotShared"
    SCHEMA_MISMATCH = "IncompatibleSchemas"
    INVALID_PORT_SCHEMA = "InvalidPortSchema"
    CYCLE = "Cycle"
    RUNTIME_BLOCK = "RuntimeBlockMismatch"
    RUNTIME_FIELD = "InvalidRuntimeField"
    """A runtime block field the delegate's schema refuses (wrong type, unknown field)."""
    CHILD_PLACEMENT = "ChildPlacementOverride"
    """A field that would move a child (or its pods) to another namespace, or rename it."""
    INVALID_IMAGE = "InvalidImageReference"
    UNMANAGED_TOPIC_SETTINGS = "UnmanagedTopicSettings"
    CHILD_SCHEMA = "ChildSchemaViolation"
    POD_SECURITY = "PodSecurity"
    FLINK_JOB = "FlinkJobConfig"
    SERVICE_ACCOUNT_REQUIRED = "ServiceAccountRequired"
    """The platform's lock-down: an Application must name the ServiceAccount it writes as."""
    TOO_MANY_STREAMLETS = "TooManyStreamlets"
    """More streamlets than the operator's `limits.maxStreamlets`."""
    TOO_MANY_CHILDREN = "TooManyChildren"
    """More children (streamlets and managed topics) than the operator's `limits.maxChildren`."""


@dataclass(frozen=True, kw_only=True, order=True)
class Problem:
    """One thing wrong with a spec, where it is and how to fix it."""

    path: str
    code: Code
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class InvalidSpec(Exception):
    """The spec has problems; carries all of them, never just the first."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{len(self.problems)} problem(s) in the spec:\n{lines}")


def format_path(parts: Iterable[str | int]) -> str:
    """`("spec", "streamlets", 3, "inlets", 0)` -> `spec.streamlets[3].inlets[0]`."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


def suggest(name: str, candidates: Iterable[str]) -> str:
    """A ` (did you mean 'x'?)` hint, or `` when nothing is close; sorted so output is stable."""
    pool = sorted(set(candidates))
    close = difflib.get_close_matches(name, pool, n=3, cutoff=0.6)
    if not close:
        return f" (known: {', '.join(pool[:5])}{', ...' if len(pool) > 5 else ''})" if pool else ""
    quoted = " or ".join(f"'{c}'" for c in close)
    return f" (did you mean {quoted}?)"
