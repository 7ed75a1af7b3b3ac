"""The registry of delegates: every kind federator renders, each in its own module.

Adding a delegate means one module here (see `base.Delegate` for what it must say), its
template, its vendored CRD and its tests; the contract test (tests/unit/test_delegate_contract.py)
fails until each part is there. Nothing else in federator switches on a kind.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from federator.core.delegates.base import Delegate, Judging, Ref
from federator.core.delegates.deployment import DEPLOYMENT
from federator.core.delegates.flinkapplication import FLINK_APPLICATION
from federator.core.delegates.flinkdeployment import FLINK_DEPLOYMENT
from federator.core.delegates.flinksessionjob import FLINK_SESSION_JOB
from federator.core.delegates.kafkatopic import KAFKA_TOPIC
from federator.core.delegates.sparkapplication import SPARK_APPLICATION
from federator.core.health import (
    REASON_DELEGATE_NOT_INSTALLED,
    REASON_MALFORMED,
    REASON_NOT_FOUND,
    REASON_UNSUPPORTED_KIND,
    ChildHealth,
    Health,
)
from federator.core.settings import FlinkOperator, TopicApiVersion

ALL: Final[tuple[Delegate, ...]] = (
    KAFKA_TOPIC,
    SPARK_APPLICATION,
    FLINK_DEPLOYMENT,
    FLINK_APPLICATION,
    FLINK_SESSION_JOB,
    DEPLOYMENT,
)
BY_KIND: Final[Mapping[str, Delegate]] = {d.kind: d for d in ALL}
FLINK: Final[Mapping[FlinkOperator, Delegate]] = {
    FlinkOperator.APACHE: FLINK_DEPLOYMENT,
    FlinkOperator.LYFT: FLINK_APPLICATION,
}
SIMULATED: Final[tuple[Delegate, ...]] = tuple(d for d in ALL if not d.builtin)
"""The kinds the delegate simulator drives (kube-controller-manager runs the built-in ones)."""


def not_installed(delegate: Delegate) -> ChildHealth:
    """The one verdict for a kind whose CRD the cluster does not serve."""
    return ChildHealth(
        health=Health.MISSING,
        reason=REASON_DELEGATE_NOT_INSTALLED,
        message=f"the cluster does not serve {delegate.kind} ({delegate.crd_name}): install "
        f"{delegate.operator}",
    )


def assess(
    kind: str,
    body: Mapping[str, Any] | None,
    *,
    mark: str | None = None,
    suspended: bool = False,
    delegate_installed: bool = True,
    now: str | None = None,
    related: Mapping[Ref, Mapping[str, Any] | None] | None = None,
) -> ChildHealth:
    """The health of one child of the given kind from its observed body.

    ``body``: the child as read from the API server, ``None`` when it does not exist.
    ``mark``: the run token recorded at the last spec-changing apply (`Delegate.run_token`).
    ``suspended``: the application is suspended (spec.suspend).
    ``delegate_installed``: whether the API server serves the delegate's CRD.
    ``now``: the current time (RFC 3339) for the adapters that judge how long a state lasted
    (SparkApplication: RUNNING without any executor); ``None`` judges no duration.
    ``related``: the objects its health depends on (`Delegate.related`), None when not observed.
    """
    delegate = BY_KIND.get(kind)
    if delegate is None:
        return ChildHealth(
            health=Health.UNKNOWN,
            reason=REASON_UNSUPPORTED_KIND,
            message=f"no health adapter for kind {kind!r}",
        )
    if not delegate_installed:
        return not_installed(delegate)
    if body is None:
        return ChildHealth(
            health=Health.MISSING, reason=REASON_NOT_FOUND, message=f"{kind} not found"
        )
    if not isinstance(body, Mapping):
        return ChildHealth(
            health=Health.UNKNOWN,
            reason=REASON_MALFORMED,
            message=f"the {kind} is a {type(body).__name__}, not an object",
        )
    return delegate.judge(body, Judging(mark=mark, suspended=suspended, now=now, related=related))


@dataclass(frozen=True, kw_only=True)
class TargetApis:
    """The API choices render makes for the target cluster (the KafkaTopic version, which Flink
    operators are there): discovered by the operator, or assumed offline. (`Discovered.served`
    is the CRD -> versions map it comes from; `Delegate.served` whether one kind is there.)"""

    topic_version: str = "v1"
    flink_operators: frozenset[FlinkOperator] = frozenset(FlinkOperator)

    @classmethod
    def offline(cls, pinned: TopicApiVersion = TopicApiVersion.AUTO) -> TargetApis:
        version = "v1" if pinned is TopicApiVersion.AUTO else pinned.value
        return cls(topic_version=version)


__all__ = [
    "ALL",
    "BY_KIND",
    "DEPLOYMENT",
    "FLINK",
    "FLINK_APPLICATION",
    "FLINK_DEPLOYMENT",
    "FLINK_SESSION_JOB",
    "KAFKA_TOPIC",
    "SIMULATED",
    "SPARK_APPLICATION",
    "Delegate",
    "TargetApis",
    "assess",
    "not_installed",
]
