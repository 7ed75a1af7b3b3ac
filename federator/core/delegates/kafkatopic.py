"""Strimzi `KafkaTopic` (kafka.strimzi.io v1, v1beta2): a topic on the platform's Kafka cluster.

Status: conditions `Ready`, `Unmanaged`, `ReconciliationPaused`; `observedGeneration`;
`replicasChange.state` pending|ongoing (Strimzi's KafkaTopicStatus). No real topic operator runs
here (Strimzi is on no registry reachable): the simulator's step stands in, on a real broker in
broker mode.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

from federator.core.childpods import PodSources
from federator.core.delegates import reading as read
from federator.core.delegates import simstep as sim
from federator.core.delegates.base import Delegate, Simulation
from federator.core.delegates.simstep import Failure, Step
from federator.core.fields import as_int, as_str, get
from federator.core.health import (
    ChildHealth,
    Health,
)

REASON_READY: Final = "Ready"
REASON_UNMANAGED: Final = "Unmanaged"
REASON_NOT_READY: Final = "NotReady"
REASON_AWAITING_READY: Final = "AwaitingReady"
REASON_RECONCILIATION_PAUSED: Final = "ReconciliationPaused"
REASON_REPLICAS_CHANGE: Final = "ReplicasChange"
# Strimzi's KafkaError messages start with the Kafka client exception's class name, e.g.
# "org.apache.kafka.common.errors.InvalidReplicationFactorException: Unable to replicate ...".
KAFKA_ERRORS_PACKAGE: Final = "org.apache.kafka.common.errors."
# Strimzi's own annotations (the topic operator honours them).
STRIMZI_PAUSE_ANNOTATION: Final = "strimzi.io/pause-reconciliation"
STRIMZI_MANAGED_ANNOTATION: Final = "strimzi.io/managed"
KAFKA_DEFAULT_FAILURE_REASON: Final = "KafkaError"


# --------------------------------------------------------------------------------------------------
# Health
# --------------------------------------------------------------------------------------------------


def kafka_topic(body: Mapping[str, Any]) -> ChildHealth:
    """Health of a Strimzi ``KafkaTopic`` (v1 and v1beta2 share the status schema)."""
    status = read.status_of(body)
    if isinstance(status, ChildHealth):
        return status
    conditions = read.conditions(status)
    # A paused topic is not reconciled, so its generation legitimately lags: check this first.
    if read.condition_is(conditions, "ReconciliationPaused", "True"):
        return ChildHealth(
            health=Health.SUSPENDED,
            reason=REASON_RECONCILIATION_PAUSED,
            message="reconciliation is paused (strimzi.io/pause-reconciliation)",
        )
    stale = read.stale(body, as_int(get(status, "observedGeneration")))
    if stale is not None:
        return stale
    if read.condition_is(conditions, "Ready", "False"):
        ready = conditions["Ready"]
        message = as_str(get(ready, "message")) or ""
        return read.degraded(
            as_str(get(ready, "reason")) or REASON_NOT_READY,
            # Strimzi writes a broker error as the Java exception's text; its package is noise.
            message.removeprefix(KAFKA_ERRORS_PACKAGE) or "the topic operator reports Ready=False",
        )
    replicas_change = get(status, "replicasChange")
    if isinstance(replicas_change, Mapping) and replicas_change:
        target = as_int(get(replicas_change, "targetReplicas"))
        state = as_str(get(replicas_change, "state")) or "pending"
        text = f"replication factor change to {target} is {state}"
        detail = as_str(get(replicas_change, "message"))
        return read.progressing(REASON_REPLICAS_CHANGE, f"{text}: {detail}" if detail else text)
    if read.condition_is(conditions, "Ready", "True"):
        return ChildHealth(health=Health.HEALTHY, reason=REASON_READY)
    if read.condition_is(conditions, "Unmanaged", "True"):
        return ChildHealth(
            health=Health.HEALTHY,
            reason=REASON_UNMANAGED,
            message="the topic is not managed by the topic operator (strimzi.io/managed: false)",
        )
    return read.progressing(REASON_AWAITING_READY, "waiting for the topic operator to report Ready")


# --------------------------------------------------------------------------------------------------
# Simulator step
# --------------------------------------------------------------------------------------------------


def kafka_topic_step(
    body: Mapping[str, Any],
    *,
    failure: Failure | None = None,
    now: str,
    new_id: Callable[[], str] = sim.new_uuid,
) -> Step | None:
    """Strimzi's topic operator: Ready for the current generation, or Ready=False on failure."""
    old = sim.status_of(body)
    generation = sim.generation_of(body)
    annotations = sim.annotations_of(body)
    name = sim.name_of(body)
    topic_name = get(body, "spec", "topicName") or name
    topic_id = old.get("topicId") or sim.kafka_topic_id(new_id())
    new: dict[str, Any] = {"topicName": topic_name, "topicId": topic_id}
    if failure is not None:
        reason = failure.state or KAFKA_DEFAULT_FAILURE_REASON
        new["conditions"] = [
            sim.condition(old, "Ready", "False", now=now, reason=reason, message=failure.message)
        ]
        new["observedGeneration"] = generation
        state = f"Ready=False ({reason})"
    elif str(annotations.get(STRIMZI_PAUSE_ANNOTATION, "")).lower() == "true":
        # Paused: not reconciled, so the observed generation stays where it was.
        new["conditions"] = [sim.condition(old, "ReconciliationPaused", "True", now=now)]
        if "observedGeneration" in old:
            new["observedGeneration"] = old["observedGeneration"]
        state = "ReconciliationPaused"
    elif str(annotations.get(STRIMZI_MANAGED_ANNOTATION, "")).lower() == "false":
        new["conditions"] = [sim.condition(old, "Unmanaged", "True", now=now)]
        new["observedGeneration"] = generation
        state = "Unmanaged"
    else:
        new["conditions"] = [sim.condition(old, "Ready", "True", now=now)]
        new["observedGeneration"] = generation
        state = "Ready"
    # A pending ``replicasChange`` is left out: the simulated change completes at once.
    if new == old:
        return None
    return Step(status=new, state=state, generation=generation)


KAFKA_TOPIC = Delegate(
    kind="KafkaTopic",
    group="kafka.strimzi.io",
    versions=("v1", "v1beta2"),
    plural="kafkatopics",
    template="kafkatopic.yaml.j2",
    name_limit=253,
    operator="the Strimzi cluster operator with its topic operator (kafkatopics.kafka.strimzi.io)",
    judge=lambda body, _: kafka_topic(body),
    simulation=Simulation(step=kafka_topic_step),
    pods=PodSources(roles=()),
)
