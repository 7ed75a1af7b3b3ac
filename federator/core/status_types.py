"""The Application's status, typed: its phase and the entries of `status.children`. Pure.

The status is JSON on the wire; code that decides on it (which Event to post, what metrics to
move, which children to list first) reads it through these types instead of comparing strings,
so a typo is a type error, not a branch that never runs. `health.py` keeps the vocabulary of a
child's health and the roll-up; this module adds what the status adds to it.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from federator.core.health import PHASE_INVALID, Health


class Phase(enum.StrEnum):
    """`status.phase`: the application's rolled-up health, or Invalid when its spec is.

    A ``str`` enum (members equal their values), in the order of the CRD's enum.
    """

    HEALTHY = Health.HEALTHY.value
    PROGRESSING = Health.PROGRESSING.value
    DEGRADED = Health.DEGRADED.value
    SUSPENDED = Health.SUSPENDED.value
    MISSING = Health.MISSING.value
    UNKNOWN = Health.UNKNOWN.value
    INVALID = PHASE_INVALID

    @classmethod
    def parse(cls, value: object) -> Phase | None:
        """The phase a status names; None when absent or not one (an older or foreign writer)."""
        try:
            return cls(value) if isinstance(value, str) else None
        except ValueError:
            return None

    @property
    def alarming(self) -> bool:
        """Whether entering this phase deserves a Warning: something needs a human."""
        return self in (Phase.DEGRADED, Phase.INVALID)


@dataclass(frozen=True, kw_only=True)
class ChildEntry:
    """One entry of `status.children`: a child and its verdict, as the operator reports it."""

    kind: str
    api_version: str
    namespace: str
    name: str
    health: Health
    reason: str
    message: str = ""
    topic: str | None = None
    streamlet: str | None = None
    spec_hash: str | None = None
    """What federator last applied (`federator.io/spec-hash`); None when it did not apply it."""
    owned: bool = True
    """False for an object reported but not this application's: never pruned nor deleted."""

    @classmethod
    def from_status(cls, entry: Mapping[str, Any]) -> ChildEntry:
        """Read one entry leniently (a status is anyone's to edit): a missing text reads "",
        a health that is not one reads Unknown."""

        def text(key: str) -> str:
            value = entry.get(key)
            return value if isinstance(value, str) else ""

        def optional(key: str) -> str | None:
            value = entry.get(key)
            return value if isinstance(value, str) else None

        raw_health = entry.get("health")
        try:
            health = Health(raw_health) if isinstance(raw_health, str) else Health.UNKNOWN
        except ValueError:
            health = Health.UNKNOWN
        return cls(
            kind=text("kind"),
            api_version=text("apiVersion"),
            namespace=text("namespace"),
            name=text("name"),
            health=health,
            reason=text("reason"),
            message=text("message"),
            topic=optional("topic"),
            streamlet=optional("streamlet"),
            spec_hash=optional("specHash"),
            owned=entry.get("owned") is not False,
        )

    def to_status(self) -> dict[str, Any]:
        """The entry as written to the status (optional keys only when set)."""
        entry: dict[str, Any] = {
            "kind": self.kind,
            "apiVersion": self.api_version,
            "namespace": self.namespace,
            "name": self.name,
            "health": self.health.value,
            "reason": self.reason,
            "message": self.message,
        }
        if self.topic is not None:
            entry["topic"] = self.topic
        if self.streamlet is not None:
            entry["streamlet"] = self.streamlet
        if self.spec_hash is not None:
            entry["specHash"] = self.spec_hash
        if not self.owned:
            entry["owned"] = False
        return entry
