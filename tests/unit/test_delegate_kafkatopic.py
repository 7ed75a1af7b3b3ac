"""The KafkaTopic adapter's state table (federator/core/delegates/kafkatopic.py):
one row per state its real operator writes, with the health, reason and message federator reads
from it. The delegate contract test (test_delegate_contract.py) requires this file and TABLE."""

from __future__ import annotations

from typing import Any

import pytest
from delegate_tables import (
    T0,
    check,
    kafka_topic,
    row,
)

from federator.core import delegates
from federator.core.delegates.kafkatopic import kafka_topic as judge_kafka_topic
from federator.core.health import Health

KAFKA_NOT_READY = {
    "type": "Ready",
    "status": "False",
    "reason": "KafkaError",
    "message": "org.apache.kafka.common.errors.InvalidReplicationFactorException: "
    "Replication factor: 3 larger than available brokers: 1.",
    "lastTransitionTime": "2024-05-01T10:00:01.0Z",
}


EXAMPLE_STREAMLET: dict[str, Any] = {
    "name": "src",
    "runtime": "container",
    "image": "img",
    "outlets": ["out"],
}
"""A streamlet of an Application that renders this delegate (the contract test renders it)."""


TABLE = [
    row(kafka_topic(), Health.HEALTHY, "Ready"),
    row(
        kafka_topic(
            status__conditions=[
                {"type": "Unmanaged", "status": "True", "lastTransitionTime": T0},
            ]
        ),
        Health.HEALTHY,
        "Unmanaged",
    ),
    row(kafka_topic(status=...), Health.PROGRESSING, "AwaitingStatus"),
    row(kafka_topic(status={}), Health.PROGRESSING, "AwaitingStatus"),
    row(
        kafka_topic(metadata__generation=4),
        Health.PROGRESSING,
        "StaleGeneration",
        "observedGeneration 3, spec is generation 4",
    ),
    row(
        kafka_topic(status__observedGeneration=...),
        Health.PROGRESSING,
        "StaleGeneration",
        "no observedGeneration",
    ),
    row(
        # A stale failure belongs to the previous spec: wait for the operator, not Degraded.
        kafka_topic(metadata__generation=4, status__conditions=[KAFKA_NOT_READY]),
        Health.PROGRESSING,
        "StaleGeneration",
    ),
    row(
        kafka_topic(status__replicasChange={"targetReplicas": 3, "state": "pending"}),
        Health.PROGRESSING,
        "ReplicasChange",
        "replication factor change to 3 is pending",
    ),
    row(
        kafka_topic(
            status__replicasChange={
                "targetReplicas": 3,
                "state": "ongoing",
                "sessionId": "8911ca89-351f-888-8d0f-9aade00e098h",
            }
        ),
        Health.PROGRESSING,
        "ReplicasChange",
        "is ongoing",
    ),
    row(
        kafka_topic(status__conditions=[KAFKA_NOT_READY]),
        Health.DEGRADED,
        "KafkaError",
        "Replication factor: 3 larger than available brokers: 1.",
    ),
    row(
        kafka_topic(
            status__conditions=[
                {"type": "ReconciliationPaused", "status": "True", "lastTransitionTime": T0}
            ],
            metadata__generation=9,
        ),
        Health.SUSPENDED,
        "ReconciliationPaused",
    ),
    row(
        kafka_topic(status__conditions=[{"type": "Ready", "status": "Unknown"}]),
        Health.PROGRESSING,
        "AwaitingReady",
    ),
    row(kafka_topic(status__conditions=[]), Health.PROGRESSING, "AwaitingReady"),
]
IDS = [
    "ready",
    "unmanaged",
    "no-status",
    "empty-status",
    "stale-generation",
    "no-observed-generation",
    "stale-generation-with-old-failure",
    "replicas-change-pending",
    "replicas-change-ongoing",
    "ready-false",
    "reconciliation-paused",
    "ready-unknown",
    "no-conditions",
]


class TestKafkaTopic:
    @pytest.mark.parametrize(("body", "expected", "reason", "msg"), TABLE, ids=IDS)
    def test_table(self, body: dict[str, Any], expected: Health, reason: str, msg: str) -> None:
        check(judge_kafka_topic(body), expected, reason, msg)

    def test_v1beta2_has_the_same_status(self) -> None:
        body = kafka_topic(apiVersion="kafka.strimzi.io/v1beta2")
        assert delegates.assess("KafkaTopic", body).health is Health.HEALTHY


# --------------------------------------------------------------------------------------------------
# SparkApplication
# --------------------------------------------------------------------------------------------------
