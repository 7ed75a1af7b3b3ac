"""Kubernetes `Deployment` (apps/v1): a streamlet on plain containers.

Health with `kubectl rollout status` semantics; suspension is zero replicas. The simulator does
not drive it: kube-controller-manager runs it for real (its pods on kwok's fake nodes).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from federator.core import deploymentschema
from federator.core.childpods import POD_TEMPLATE, PodSources
from federator.core.delegates import reading as read
from federator.core.delegates.base import Delegate, Simulation
from federator.core.fields import as_int, as_str, get
from federator.core.health import (
    REASON_MALFORMED,
    ChildHealth,
    Health,
)

REASON_AVAILABLE: Final = "Available"
REASON_ROLLOUT_IN_PROGRESS: Final = "RolloutInProgress"
REASON_PROGRESS_DEADLINE_EXCEEDED: Final = "ProgressDeadlineExceeded"
REASON_PAUSED: Final = "Paused"
REASON_SCALED_TO_ZERO: Final = "ScaledToZero"


# --------------------------------------------------------------------------------------------------
# Health
# --------------------------------------------------------------------------------------------------


def deployment(body: Mapping[str, Any], suspended: bool = False) -> ChildHealth:
    """Health of an ``apps/v1`` Deployment (kubectl rollout status semantics).

    ``suspended``: the application is suspended, so zero replicas is the intended state.
    """
    status = read.status_of(body)
    if isinstance(status, ChildHealth):
        return status
    stale = read.stale(body, as_int(get(status, "observedGeneration")))
    if stale is not None:
        return stale
    progressing = read.conditions(status).get("Progressing")
    if (
        get(progressing, "status") == "False"
        and get(progressing, "reason") == REASON_PROGRESS_DEADLINE_EXCEEDED
    ):
        return read.degraded(
            REASON_PROGRESS_DEADLINE_EXCEEDED,
            as_str(get(progressing, "message")) or "the rollout exceeded its progress deadline",
        )
    if get(body, "spec", "paused") is True:
        return ChildHealth(health=Health.SUSPENDED, reason=REASON_PAUSED, message="rollout paused")
    desired_raw = get(body, "spec", "replicas")
    desired = 1 if desired_raw is None else as_int(desired_raw)
    if desired is None:
        return read.unknown(REASON_MALFORMED, "spec.replicas is not an integer")
    replicas = as_int(get(status, "replicas")) or 0
    updated = as_int(get(status, "updatedReplicas")) or 0
    available = as_int(get(status, "availableReplicas")) or 0

    if desired == 0 and suspended:
        if replicas == 0:
            return ChildHealth(
                health=Health.SUSPENDED,
                reason=REASON_SCALED_TO_ZERO,
                message="suspended: 0 replicas",
            )
        return read.progressing(
            REASON_ROLLOUT_IN_PROGRESS, f"scaling to zero: {replicas} replicas left"
        )
    if updated < desired:
        return read.progressing(
            REASON_ROLLOUT_IN_PROGRESS, f"{updated} of {desired} updated replicas are available"
        )
    if replicas > updated:
        return read.progressing(
            REASON_ROLLOUT_IN_PROGRESS,
            f"{replicas - updated} old replicas are pending termination",
        )
    if available < updated:
        return read.progressing(
            REASON_ROLLOUT_IN_PROGRESS, f"{available} of {updated} updated replicas are available"
        )
    return ChildHealth(
        health=Health.HEALTHY, reason=REASON_AVAILABLE, message=f"{available}/{desired} available"
    )


def _suspend(spec: dict[str, Any]) -> None:
    spec["replicas"] = 0


DEPLOYMENT = Delegate(
    kind="Deployment",
    group="apps",
    versions=("v1",),
    plural="deployments",
    template="deployment.yaml.j2",
    name_limit=63,
    operator="(built into Kubernetes)",
    judge=lambda body, j: deployment(body, j.suspended),
    suspend=_suspend,
    simulation=Simulation(step=lambda body, **_: None),
    pods=PodSources(roles=(POD_TEMPLATE,)),
    spec_schema=deploymentschema.DEPLOYMENT_SPEC,
)
