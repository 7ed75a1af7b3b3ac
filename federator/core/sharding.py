"""Sharding, as Flux does it: each operator process serves the Applications carrying its shard
label, so users who outgrow one operator run several (DESIGN §6; docs/sharding.md).

A shard named `a` serves the Applications labelled `federator.io/shard: a`; the default shard
(no name) serves those without the label, as Flux's main controllers serve those without
`sharding.fluxcd.io/key`. An Application is therefore served by exactly one shard, whatever
shards run, and a change of its label moves it. Its children carry its shard label (on the
child, not on pod templates: a move restarts nothing) so that every watch and list of a shard
is filtered by the API server to its own objects; the label is not part of the spec-hash.
Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from federator.core import naming

SHARD_LABEL = "federator.io/shard"
_LABEL_VALUE = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")


class ShardError(ValueError):
    """A shard name that cannot be a label value."""


def check_name(name: str) -> str:
    """`name` if it can be the label's value (what a user writes on an Application)."""
    if not _LABEL_VALUE.match(name):
        raise ShardError(
            f"{name!r} is not a valid shard name: a label value (at most 63 characters, "
            "alphanumerics, '-', '_' or '.', starting and ending with an alphanumeric)"
        )
    return name


def shard_of(body: Mapping[str, Any]) -> str | None:
    """The shard an object names (its `federator.io/shard` label), None for the default."""
    labels = (body.get("metadata") or {}).get("labels") or {}
    value = labels.get(SHARD_LABEL) if isinstance(labels, Mapping) else None
    return value if isinstance(value, str) and value else None


@dataclass(frozen=True)
class Shard:
    """One operator process's share of the Applications."""

    name: str | None = None
    """None: the default shard (Applications without the label)."""

    @property
    def selector(self) -> str:
        """The label selector of the Applications this shard serves (and of their children)."""
        return f"{SHARD_LABEL}={self.name}" if self.name else f"!{SHARD_LABEL}"

    @property
    def child_selector(self) -> str:
        """The children this shard watches and lists: federator's, of its applications."""
        return f"{naming.MANAGED_SELECTOR},{self.selector}"

    @property
    def identity(self) -> str:
        """How this shard names itself where a reader must tell shards apart (the Events it
        posts, its logs): `federator` for the default, `federator/<name>` otherwise."""
        return f"federator/{self.name}" if self.name else "federator"

    def serves(self, body: Mapping[str, Any]) -> bool:
        """Whether this shard serves the object (an Application, or a child by its label)."""
        return shard_of(body) == self.name


DEFAULT = Shard()
