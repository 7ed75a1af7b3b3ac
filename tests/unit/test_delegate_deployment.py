"""The Deployment adapter's state table (federator/core/delegates/deployment.py):
one row per state its real operator writes, with the health, reason and message federator reads
from it. The delegate contract test (test_delegate_contract.py) requires this file and TABLE."""

from __future__ import annotations

from typing import Any

import pytest
from delegate_tables import (
    check,
    deployment,
    row,
)

from federator.core import delegates
from federator.core.delegates.deployment import deployment as judge_deployment
from federator.core.health import Health

# --------------------------------------------------------------------------------------------------
# Deployment
# --------------------------------------------------------------------------------------------------

TABLE = [
    row(deployment(), Health.HEALTHY, "Available", "2/2"),
    row(deployment(status=...), Health.PROGRESSING, "AwaitingStatus"),
    row(deployment(metadata__generation=5), Health.PROGRESSING, "StaleGeneration"),
    row(
        deployment(status__updatedReplicas=1, status__availableReplicas=1),
        Health.PROGRESSING,
        "RolloutInProgress",
        "1 of 2 updated replicas",
    ),
    row(
        deployment(status__replicas=3),
        Health.PROGRESSING,
        "RolloutInProgress",
        "1 old replicas are pending termination",
    ),
    row(
        deployment(status__availableReplicas=1),
        Health.PROGRESSING,
        "RolloutInProgress",
        "1 of 2 updated replicas are available",
    ),
    row(
        deployment(
            status__availableReplicas=1,
            status__conditions=[
                {
                    "type": "Progressing",
                    "status": "False",
                    "reason": "ProgressDeadlineExceeded",
                    "message": 'ReplicaSet "cdr-ingress-7f8b9c" has timed out progressing.',
                }
            ],
        ),
        Health.DEGRADED,
        "ProgressDeadlineExceeded",
        "has timed out progressing",
    ),
    row(deployment(spec__paused=True), Health.SUSPENDED, "Paused"),
    row(
        deployment(
            spec__replicas=0,
            status__replicas=...,
            status__updatedReplicas=...,
            status__availableReplicas=...,
        ),
        Health.HEALTHY,
        "Available",
        "0/0",
    ),
    row(deployment(spec__replicas="two"), Health.UNKNOWN, "MalformedStatus"),
]
IDS = [
    "available",
    "no-status",
    "stale-generation",
    "rollout-updating",
    "old-replicas-terminating",
    "not-all-available",
    "progress-deadline-exceeded",
    "paused",
    "scaled-to-zero-not-suspended",
    "replicas-not-an-int",
]


EXAMPLE_STREAMLET: dict[str, Any] = {
    "name": "src",
    "runtime": "container",
    "image": "img",
    "outlets": ["out"],
}
"""A streamlet of an Application that renders this delegate (the contract test renders it)."""


class TestDeployment:
    @pytest.mark.parametrize(("body", "expected", "reason", "msg"), TABLE, ids=IDS)
    def test_table(self, body: dict[str, Any], expected: Health, reason: str, msg: str) -> None:
        check(judge_deployment(body), expected, reason, msg)

    @pytest.mark.parametrize(
        ("status_replicas", "expected", "reason"),
        [(0, Health.SUSPENDED, "ScaledToZero"), (2, Health.PROGRESSING, "RolloutInProgress")],
        ids=["scaled-down", "still-scaling-down"],
    )
    def test_suspended(self, status_replicas: int, expected: Health, reason: str) -> None:
        body = deployment(
            spec__replicas=0,
            status__replicas=status_replicas,
            status__updatedReplicas=status_replicas,
            status__availableReplicas=status_replicas,
        )
        result = delegates.assess("Deployment", body, suspended=True)
        assert (result.health, result.reason) == (expected, reason)
