"""Health: the vocabulary every delegate's adapter speaks, and the roll-up to one health.

This module is purely computational: no kopf, no kubernetes client, no clock, no environment, no
I/O. The vocabulary is Argo CD's, ordered Healthy < Suspended < Progressing < Missing < Degraded <
Unknown; the application's phase is the worst child (DESIGN §5). How each delegate's status reads
in this vocabulary lives with the delegate (`federator.core.delegates.<kind>`); a child whose
status does not yet reflect the latest applied spec is Progressing, never Healthy.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from federator.core import fields

# --------------------------------------------------------------------------------------------------
# Vocabulary
# --------------------------------------------------------------------------------------------------


class Health(enum.StrEnum):
    """The health of one child, and of the application (Argo CD's vocabulary).

    A ``str`` enum: members compare equal to, and format as, their values ("Healthy").
    """

    HEALTHY = "Healthy"
    SUSPENDED = "Suspended"
    PROGRESSING = "Progressing"
    MISSING = "Missing"
    DEGRADED = "Degraded"
    UNKNOWN = "Unknown"

    @property
    def priority(self) -> int:
        """Position in the roll-up order: the higher, the worse."""
        return _PRIORITY[self]


# Argo CD's order: an unknown child hides everything, a degraded one everything but unknown.
HEALTH_ORDER: Final[tuple[Health, ...]] = (
    Health.HEALTHY,
    Health.SUSPENDED,
    Health.PROGRESSING,
    Health.MISSING,
    Health.DEGRADED,
    Health.UNKNOWN,
)
_PRIORITY: Final[dict[Health, int]] = {health: index for index, health in enumerate(HEALTH_ORDER)}


def worst(healths: Iterable[Health]) -> Health:
    """The worst of the given healths; Healthy (the neutral element) when there are none."""
    return max(healths, key=lambda health: _PRIORITY[health], default=Health.HEALTHY)


@dataclass(frozen=True, kw_only=True)
class ChildHealth:
    """The health of one child as judged from its delegate's status."""

    health: Health
    reason: str
    """Fixed CamelCase (``StaleGeneration``) or the delegate's own state string (``SUBMITTED``)."""
    message: str = ""
    """Human readable; carries the delegate's own error text when there is one."""


# --------------------------------------------------------------------------------------------------
# Fixed reasons (child level)
# --------------------------------------------------------------------------------------------------

REASON_NOT_FOUND: Final = "NotFound"
REASON_DELEGATE_NOT_INSTALLED: Final = "DelegateNotInstalled"
REASON_UNSUPPORTED_KIND: Final = "UnsupportedKind"
REASON_MALFORMED: Final = "MalformedStatus"
REASON_AWAITING_STATUS: Final = "AwaitingStatus"
REASON_STALE_GENERATION: Final = "StaleGeneration"
REASON_UNRECOGNISED_STATE: Final = "UnrecognisedState"
# Child messages are clipped: a Spark errorMessage can be a whole stack trace.
MAX_CHILD_MESSAGE: Final = 1024
# The API server rejects condition messages over 32768 characters.
MAX_CONDITION_MESSAGE: Final = 32768


def clip(text: str, limit: int = MAX_CHILD_MESSAGE) -> str:
    """At most `limit` characters, an ellipsis marking the cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --------------------------------------------------------------------------------------------------
# Aggregation
# --------------------------------------------------------------------------------------------------

PHASE_INVALID: Final = "Invalid"

CONDITION_READY: Final = "Ready"
CONDITION_RECONCILING: Final = "Reconciling"
CONDITION_STALLED: Final = "Stalled"
CONDITION_COMPILED: Final = "Compiled"
CONDITION_DELEGATES_AVAILABLE: Final = "DelegatesAvailable"
CONDITION_TYPES: Final = (
    CONDITION_READY,
    CONDITION_RECONCILING,
    CONDITION_STALLED,
    CONDITION_COMPILED,
    CONDITION_DELEGATES_AVAILABLE,
)

# Fixed reasons (application level).
REASON_ALL_CHILDREN_HEALTHY: Final = "AllChildrenHealthy"
REASON_WAITING_FOR_CHILDREN: Final = "WaitingForChildren"
REASON_NO_CHILDREN: Final = "NoChildren"
REASON_CHILDREN_DEGRADED: Final = "ChildrenDegraded"
REASON_CHILDREN_MISSING: Final = "ChildrenMissing"
REASON_CHILDREN_UNKNOWN: Final = "ChildrenUnknown"
REASON_SUSPENDED: Final = "Suspended"
REASON_INVALID: Final = "Invalid"
REASON_CONVERGED: Final = "Converged"
REASON_NOT_STALLED: Final = "NotStalled"
REASON_COMPILED: Final = "Compiled"
REASON_ALL_DELEGATES_INSTALLED: Final = "AllDelegatesInstalled"

# How many names a condition message lists before "and N more".
MAX_LISTED_NAMES: Final = 2
# How many degraded children the Stalled message details.
MAX_STALLED_DETAILS: Final = 5
MAX_STALLED_DETAIL_MESSAGE: Final = 300

_READY_REASONS: Final[dict[str, str]] = {
    Health.SUSPENDED.value: REASON_SUSPENDED,
    Health.PROGRESSING.value: REASON_WAITING_FOR_CHILDREN,
    Health.MISSING.value: REASON_CHILDREN_MISSING,
    Health.DEGRADED.value: REASON_CHILDREN_DEGRADED,
    Health.UNKNOWN.value: REASON_CHILDREN_UNKNOWN,
    PHASE_INVALID: REASON_INVALID,
}


@dataclass(frozen=True, kw_only=True)
class ChildReport:
    """One child of an application with its assessed health."""

    kind: str
    name: str
    health: ChildHealth
    streamlet: str | None = None
    topic: str | None = None


@dataclass(frozen=True, kw_only=True)
class Condition:
    """A status condition without timestamps (``merge_conditions`` adds those)."""

    type: str
    status: str
    """"True", "False" or "Unknown"."""
    reason: str
    message: str


@dataclass(frozen=True, kw_only=True)
class AppHealth:
    """The rolled-up health of an application: its status minus timestamps and inventory."""

    phase: str
    """Healthy | Progressing | Degraded | Suspended | Missing | Unknown | Invalid."""
    ready: int
    """Children that are Healthy."""
    total: int
    summary: str
    """``ready/total``, the READY printer column."""
    conditions: tuple[Condition, ...]


def _sorted_worst_first(children: Iterable[ChildReport]) -> list[ChildReport]:
    return sorted(
        children, key=lambda child: (-child.health.health.priority, child.name, child.kind)
    )


def _list_names(names: Sequence[str]) -> str:
    """``a, b and 3 more``: at most ``MAX_LISTED_NAMES`` names."""
    listed = ", ".join(names[:MAX_LISTED_NAMES])
    rest = len(names) - MAX_LISTED_NAMES
    return f"{listed} and {rest} more" if rest > 0 else listed


def _condition(kind: str, status: bool, reason: str, message: str) -> Condition:
    return Condition(
        type=kind,
        status="True" if status else "False",
        reason=reason,
        message=clip(message, MAX_CONDITION_MESSAGE),
    )


def _delegates_condition(children: Sequence[ChildReport]) -> Condition:
    missing: dict[str, str] = {}
    for child in sorted(children, key=lambda child: (child.kind, child.name)):
        if child.health.reason == REASON_DELEGATE_NOT_INSTALLED and child.kind not in missing:
            missing[child.kind] = child.health.message
    if not missing:
        return _condition(CONDITION_DELEGATES_AVAILABLE, True, REASON_ALL_DELEGATES_INSTALLED, "")
    details = "; ".join(
        f"{kind}: {hint}" if hint else kind for kind, hint in sorted(missing.items())
    )
    return _condition(
        CONDITION_DELEGATES_AVAILABLE,
        False,
        REASON_DELEGATE_NOT_INSTALLED,
        f"missing delegate operators: {details}",
    )


def _stalled_message(degraded: Sequence[ChildReport]) -> str:
    details = []
    for child in degraded[:MAX_STALLED_DETAILS]:
        text = child.health.message or child.health.reason
        details.append(f"{child.name}: {clip(text, MAX_STALLED_DETAIL_MESSAGE)}")
    rest = len(degraded) - MAX_STALLED_DETAILS
    more = f"; and {rest} more" if rest > 0 else ""
    return "Degraded: " + "; ".join(details) + more


def aggregate(
    children: Sequence[ChildReport],
    *,
    problems: Sequence[str] = (),
    suspended: bool = False,
) -> AppHealth:
    """Roll children up into the application's phase, counts and all five conditions.

    ``problems``: every problem of the spec; non-empty means it is invalid (phase Invalid).
    ``suspended``: the spec suspends the application.
    """
    ordered = _sorted_worst_first(children)
    total = len(ordered)
    ready = sum(1 for child in ordered if child.health.health is Health.HEALTHY)
    unready = [child for child in ordered if child.health.health is not Health.HEALTHY]
    degraded = [child for child in ordered if child.health.health is Health.DEGRADED]
    worst_child = worst(child.health.health for child in ordered)

    if problems:
        phase = PHASE_INVALID
    elif not ordered:
        phase = Health.PROGRESSING.value
    elif suspended and worst_child.priority <= Health.SUSPENDED.priority:
        phase = Health.SUSPENDED.value
    else:
        phase = worst_child.value

    # Ready: the summary condition kstatus, Flux and Argo CD look at first.
    if phase == Health.HEALTHY.value:
        ready_condition = _condition(
            CONDITION_READY, True, REASON_ALL_CHILDREN_HEALTHY, f"{ready}/{total} children healthy"
        )
    elif phase == PHASE_INVALID:
        ready_condition = _condition(
            CONDITION_READY, False, REASON_INVALID, "the spec is invalid; see Compiled"
        )
    elif not ordered:
        ready_condition = _condition(
            CONDITION_READY, False, REASON_NO_CHILDREN, "no children observed yet"
        )
    elif phase == Health.SUSPENDED.value and suspended:
        # True: suspended is the state the spec asks for, reached. kstatus reads Ready=False as
        # InProgress, so `kubectl wait`, Flux and every kstatus-based tool waited forever on a
        # suspended application; the phase still says Suspended (Argo CD shows it).
        ready_condition = _condition(
            CONDITION_READY,
            True,
            REASON_SUSPENDED,
            f"suspended by spec.suspend: all {total} children suspended or healthy, as asked",
        )
    else:
        ready_condition = _condition(
            CONDITION_READY,
            False,
            _READY_REASONS[phase],
            "Unready: " + _list_names([child.name for child in unready]),
        )

    # Reconciling: kstatus InProgress, while the children converge.
    converging = phase in (Health.PROGRESSING.value, Health.MISSING.value)
    if converging:
        reconciling = _condition(
            CONDITION_RECONCILING,
            True,
            _READY_REASONS[phase] if ordered else REASON_NO_CHILDREN,
            ("Waiting for: " + _list_names([child.name for child in unready]))
            if unready
            else "waiting for children to be observed",
        )
    else:
        reconciling = _condition(
            CONDITION_RECONCILING,
            False,
            _READY_REASONS.get(phase, REASON_CONVERGED),
            "",
        )

    # Stalled: kstatus Failed, progress needs a human.
    if phase == PHASE_INVALID:
        stalled = _condition(
            CONDITION_STALLED, True, REASON_INVALID, f"the spec has {len(problems)} problem(s)"
        )
    elif phase == Health.DEGRADED.value:
        stalled = _condition(
            CONDITION_STALLED, True, REASON_CHILDREN_DEGRADED, _stalled_message(degraded)
        )
    else:
        stalled = _condition(CONDITION_STALLED, False, REASON_NOT_STALLED, "")

    if problems:
        compiled = _condition(
            CONDITION_COMPILED,
            False,
            REASON_INVALID,
            f"{len(problems)} problem(s): " + "; ".join(problems),
        )
    else:
        compiled = _condition(CONDITION_COMPILED, True, REASON_COMPILED, "")

    return AppHealth(
        phase=phase,
        ready=ready,
        total=total,
        summary=f"{ready}/{total}",
        conditions=(ready_condition, reconciling, stalled, compiled, _delegates_condition(ordered)),
    )


# --------------------------------------------------------------------------------------------------
# Status writing helpers (pure: ``now`` is passed in)
# --------------------------------------------------------------------------------------------------


def merge_conditions(
    previous: Sequence[Mapping[str, Any]],
    current: Sequence[Condition],
    *,
    now: str,
    observed_generation: int,
) -> list[dict[str, Any]]:
    """Kubernetes API-convention condition dicts for ``current``, in its order.

    ``lastTransitionTime`` is kept from ``previous`` when a condition's status did not change (so
    unchanged conditions do not churn), else it is ``now``. Previous conditions of types not in
    ``current`` are dropped; malformed previous entries are ignored.
    """
    before: dict[str, Mapping[str, Any]] = {}
    for item in previous if isinstance(previous, Sequence) else ():
        kind = fields.as_str(fields.get(item, "type"))
        if kind is not None:
            before[kind] = item
    merged: list[dict[str, Any]] = []
    for condition in current:
        old = before.get(condition.type)
        old_time = fields.as_str(fields.get(old, "lastTransitionTime"))
        unchanged = old is not None and fields.get(old, "status") == condition.status and old_time
        merged.append(
            {
                "type": condition.type,
                "status": condition.status,
                "reason": condition.reason,
                "message": condition.message,
                "observedGeneration": observed_generation,
                "lastTransitionTime": old_time if unchanged else now,
            }
        )
    return merged


def status_changed(old_status: Mapping[str, Any] | None, new_status: Mapping[str, Any]) -> bool:
    """Whether writing ``new_status`` would change anything in ``old_status``.

    Only the keys of ``new_status`` are compared: fields other writers own (``status.kopf``) are
    not ours to judge. Build ``new_status`` with ``merge_conditions`` so that an unchanged
    condition compares equal.
    """
    if not isinstance(old_status, Mapping):
        return True
    return any(old_status.get(key) != value for key, value in new_status.items())
