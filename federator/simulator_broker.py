"""Broker mode of the delegate simulator: KafkaTopics reconciled on a REAL Kafka broker.

A DEVELOPMENT TOOL (``federator simulate --kafka-bootstrap HOST:PORT``). No Strimzi topic
operator can run here, but a Kafka broker can; so for every KafkaTopic the simulator does what
Strimzi's topic operator (``BatchingTopicController``) does with it, against the broker, and writes
the broker's answer into the status the way that operator writes it:

- the topic is created when it does not exist (partitions, replicas, config; absent values are
  the broker's defaults), its config is altered to the spec's (keys the spec dropped are deleted
  when they were set on the topic), and its partitions are increased;
- success: ``Ready=True``, ``topicName``, ``topicId`` (the broker's), ``observedGeneration``;
- refusal: ``Ready=False`` with Strimzi's reason and message. A broker error is reason
  ``KafkaError`` with the Java exception's text, e.g. ``org.apache.kafka.common.errors.
  InvalidReplicationFactorException: Unable to replicate the partition 2 time(s): ...``; what the
  topic operator itself refuses is ``NotSupported`` (``Decreasing partitions not supported``,
  ``Replication factor change not supported, but required for partitions [0, 1]``, ``Changing
  spec.topicName is not supported``); a config value it cannot render is ``InternalError``;
- a KafkaTopic that is deleted has its topic deleted on the broker, if this simulator created it
  (remembered in memory: a restarted simulator deletes none of the topics it created before; it
  uses no finalizer, so a stopped simulator never blocks a deletion).

What stays simulated: the pause and unmanaged annotations and injected failures (no broker call,
as in the plain simulator), and there is no Cruise Control, so a replication factor change is
refused as Strimzi refuses it without Cruise Control.

The decisions (``topic_spec``, ``plan``, ``kafka_error``, ``topic_status``) are pure; the
broker is reached only through ``BrokerAdmin`` (``ConfluentAdmin``: confluent-kafka, an optional
dependency, ``pip install 'federator[kafka]'``).
"""

from __future__ import annotations

import importlib
import logging
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from federator.core.delegates.kafkatopic import (
    STRIMZI_MANAGED_ANNOTATION,
    STRIMZI_PAUSE_ANNOTATION,
    kafka_topic_step,
)
from federator.core.delegates.simstep import (
    Failure,
    Step,
    annotations_of,
    condition,
    generation_of,
    name_of,
    status_of,
)
from federator.core.fields import as_int
from federator.core.fields import get as _get

log = logging.getLogger("federator.simulator.broker")

# Strimzi's reasons (TopicOperatorException.Reason).
REASON_KAFKA_ERROR: Final = "KafkaError"
REASON_NOT_SUPPORTED: Final = "NotSupported"
REASON_INTERNAL_ERROR: Final = "InternalError"
BROKER_DEFAULT: Final = -1  # Strimzi's KafkaHandler.DEFAULT_PARTITIONS: the broker decides
JAVA_ERRORS: Final = "org.apache.kafka.common.errors."
INSTALL_HINT: Final = (
    "broker mode needs the Kafka admin client confluent-kafka: "
    "pip install 'federator[kafka]' (or pip install confluent-kafka)"
)
DEFAULT_TIMEOUT: Final = 15.0
DEFAULT_RESYNC_SECONDS: Final = 60.0
DEFAULT_RETRY_SECONDS: Final = 5.0
CREATED_DESCRIBE_ATTEMPTS: Final = 5
CREATED_DESCRIBE_PAUSE: Final = 0.2

# The Java exception Kafka's admin client throws for a broker error code, where its name is not
# the code's name in CamelCase + "Exception" (the rule for every other code).
_EXCEPTION_NAMES: Final[dict[str, str]] = {
    "INVALID_CONFIG": "InvalidConfigurationException",
    "TOPIC_ALREADY_EXISTS": "TopicExistsException",
    "UNKNOWN_TOPIC_OR_PART": "UnknownTopicOrPartitionException",
    "INVALID_TOPIC_EXCEPTION": "InvalidTopicException",
    "TOPIC_AUTHORIZATION_FAILED": "TopicAuthorizationException",
    "CLUSTER_AUTHORIZATION_FAILED": "ClusterAuthorizationException",
    "REQUEST_TIMED_OUT": "TimeoutException",
    "NOT_CONTROLLER": "NotControllerException",
}


class KafkaAdminMissing(RuntimeError):
    """confluent-kafka is not installed: broker mode cannot run."""


# --------------------------------------------------------------------------------------------------
# Pure decisions
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BrokerError:
    """A refusal as Strimzi's topic operator writes it into ``Ready=False``."""

    reason: str
    message: str


class BrokerFailure(Exception):
    """A broker call failed; carries the status Strimzi would write for it."""

    def __init__(self, error: BrokerError, *, unreachable: bool = False) -> None:
        super().__init__(error.message)
        self.error = error
        self.unreachable = unreachable
        """No broker answered (the client's own error): the others would wait for it too."""


@dataclass(frozen=True)
class TopicSpec:
    """What a KafkaTopic asks of the broker (``None``: the broker's default)."""

    name: str
    partitions: int | None
    replicas: int | None
    config: Mapping[str, str]


@dataclass(frozen=True)
class TopicState:
    """A topic as the broker describes it."""

    topic_id: str
    replication_factors: Sequence[int]  # one per partition, in partition order
    config: Mapping[str, str]  # every config value of the topic
    dynamic: frozenset[str]  # the keys set on the topic itself (DYNAMIC_TOPIC_CONFIG)

    @property
    def partitions(self) -> int:
        return len(self.replication_factors)


@dataclass(frozen=True)
class Plan:
    """What to do on the broker for one KafkaTopic, and what to refuse."""

    create: bool = False
    set_config: Mapping[str, str] = field(default_factory=dict)
    delete_config: tuple[str, ...] = ()
    new_partitions: int | None = None
    refusal: BrokerError | None = None


def config_value(key: str, value: Any) -> str:
    """A spec config value as the topic operator sends it (``configValueAsString``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    if isinstance(value, list):
        return ",".join(config_value(key, item) for item in value)
    raise ValueError(f"Invalid value for topic config '{key}': {value}")


def topic_spec(body: Mapping[str, Any]) -> TopicSpec | BrokerError:
    """The broker-facing spec of a KafkaTopic, or the error Strimzi reports for it."""
    spec = _get(body, "spec")
    spec = spec if isinstance(spec, Mapping) else {}
    name = spec.get("topicName") or name_of(body)
    config = spec.get("config")
    rendered: dict[str, str] = {}
    if isinstance(config, Mapping):
        try:
            for key, value in config.items():
                if value is not None:
                    rendered[str(key)] = config_value(str(key), value)
        except ValueError as exc:
            # Strimzi: InvalidResourceException -> TopicOperatorException.InternalError.
            return BrokerError(REASON_INTERNAL_ERROR, f"InvalidResourceException: {exc}")
    return TopicSpec(
        name=str(name),
        partitions=as_int(spec.get("partitions")),
        replicas=as_int(spec.get("replicas")),
        config=rendered,
    )


def plan(spec: TopicSpec, state: TopicState | None) -> Plan:
    """What the topic operator does for ``spec`` given the topic on the broker (pure).

    Strimzi's order: create a missing topic; otherwise alter config, increase partitions, and
    refuse a partition decrease or a replication factor change (no Cruise Control here).
    """
    if state is None:
        return Plan(create=True)
    set_config = {
        key: value for key, value in spec.config.items() if state.config.get(key) != value
    }
    delete_config = tuple(sorted(state.dynamic - set(spec.config)))
    requested = spec.partitions if spec.partitions is not None else BROKER_DEFAULT
    new_partitions = requested if requested > state.partitions else None
    refusal: BrokerError | None = None
    if requested != BROKER_DEFAULT and requested < state.partitions:
        refusal = BrokerError(REASON_NOT_SUPPORTED, "Decreasing partitions not supported")
    elif spec.replicas is not None:
        different = [
            index for index, rf in enumerate(state.replication_factors) if rf != spec.replicas
        ]
        if different:
            refusal = BrokerError(
                REASON_NOT_SUPPORTED,
                "Replication factor change not supported, but required for partitions "
                f"[{', '.join(map(str, different))}]",
            )
    return Plan(
        set_config=set_config,
        delete_config=delete_config,
        new_partitions=new_partitions,
        refusal=refusal,
    )


def java_exception(name: str) -> str:
    """The simple name of the Java exception for a Kafka error code name."""
    if name in _EXCEPTION_NAMES:
        return _EXCEPTION_NAMES[name]
    words = [word for word in name.strip("_").split("_") if word]
    return "".join(word.capitalize() for word in words) + "Exception"


def kafka_error(name: str, text: str, *, local: bool = False) -> BrokerError:
    """The status Strimzi writes for an admin-client error: ``KafkaError`` with the Java
    exception's ``toString()``. ``local``: the client's own error (no broker answered), which the
    Java client raises as a TimeoutException."""
    exception = "TimeoutException" if local else java_exception(name)
    return BrokerError(REASON_KAFKA_ERROR, f"{JAVA_ERRORS}{exception}: {text}")


def topic_status(
    body: Mapping[str, Any],
    *,
    topic_name: str,
    topic_id: str | None,
    error: BrokerError | None,
    now: str,
) -> Step | None:
    """The status Strimzi's topic operator writes after a reconcile (None: unchanged)."""
    old = status_of(body)
    generation = generation_of(body)
    if error is None:
        conditions = [condition(old, "Ready", "True", now=now)]
        state = "Ready"
    else:
        conditions = [
            condition(old, "Ready", "False", now=now, reason=error.reason, message=error.message)
        ]
        state = f"Ready=False ({error.reason})"
        # Strimzi keeps the topic name it reconciled before (a spec.topicName change is refused).
        topic_name = str(old.get("topicName") or topic_name)
    new: dict[str, Any] = {"topicName": topic_name, "conditions": conditions}
    if topic_id:
        new["topicId"] = topic_id
    new["observedGeneration"] = generation
    if new == old:
        return None
    return Step(status=new, state=state, generation=generation)


def _switched_off(body: Mapping[str, Any]) -> bool:
    """Paused or unmanaged: the topic operator leaves the broker alone."""
    annotations = annotations_of(body)
    return (
        str(annotations.get(STRIMZI_PAUSE_ANNOTATION, "")).lower() == "true"
        or str(annotations.get(STRIMZI_MANAGED_ANNOTATION, "")).lower() == "false"
    )


# --------------------------------------------------------------------------------------------------
# The broker (I/O)
# --------------------------------------------------------------------------------------------------


class BrokerAdmin(Protocol):
    """The admin calls the topic operator makes; errors raise ``BrokerFailure``."""

    def describe(self, name: str) -> TopicState | None:
        """The topic, or None when the broker does not know it."""

    def create(self, spec: TopicSpec) -> None: ...

    def alter_config(self, name: str, set_: Mapping[str, str], delete: Sequence[str]) -> None: ...

    def create_partitions(self, name: str, total: int) -> None: ...

    def delete(self, name: str) -> None:
        """Delete the topic; an unknown topic is not an error."""

    def close(self) -> None: ...


def _failure(exc: Exception) -> BrokerFailure:
    """A confluent-kafka exception as the status Strimzi writes for it."""
    error: Any = exc.args[0] if exc.args else None
    name = getattr(error, "name", None)
    text = getattr(error, "str", None)
    if callable(name) and callable(text):
        code = error.code() if callable(getattr(error, "code", None)) else 0
        local = isinstance(code, int) and code < 0  # librdkafka's own errors are negative
        return BrokerFailure(kafka_error(str(name()), str(text()), local=local), unreachable=local)
    return BrokerFailure(BrokerError(REASON_INTERNAL_ERROR, f"{type(exc).__name__}: {exc}"))


def _unknown_topic(exc: Exception) -> bool:
    error = exc.args[0] if exc.args else None
    name = getattr(error, "name", None)
    return callable(name) and name() in ("UNKNOWN_TOPIC_OR_PART", "UNKNOWN_TOPIC_ID")


def _kafka() -> Any:
    """confluent_kafka.admin (untyped here: its stubs do not re-export what it exports)."""
    try:
        return importlib.import_module("confluent_kafka.admin")
    except ImportError:
        raise KafkaAdminMissing(INSTALL_HINT) from None


class ConfluentAdmin:
    """``BrokerAdmin`` over confluent-kafka's AdminClient (librdkafka)."""

    def __init__(self, bootstrap: str, timeout: float = DEFAULT_TIMEOUT) -> None:
        self._k = _kafka()
        self.timeout = timeout
        self._client = self._k.AdminClient(
            {
                "bootstrap.servers": bootstrap,
                "client.id": "federator-simulator",
                # librdkafka's log lines go to Python logging, not straight to stderr.
                "logger": logging.getLogger("federator.simulator.librdkafka"),
            }
        )

    def _wait(self, future: Any) -> Any:
        try:
            return future.result(timeout=self.timeout + 5)
        except Exception as exc:
            raise _failure(exc) from None

    def describe(self, name: str) -> TopicState | None:
        k = self._k
        topics = importlib.import_module("confluent_kafka").TopicCollection([name])
        futures = self._client.describe_topics(topics, request_timeout=self.timeout)
        try:
            described = futures[name].result(timeout=self.timeout + 5)
        except Exception as exc:
            if _unknown_topic(exc):
                return None
            raise _failure(exc) from None
        resource = k.ConfigResource(k.ResourceType.TOPIC, name)
        entries = self._wait(
            self._client.describe_configs([resource], request_timeout=self.timeout)[resource]
        )
        dynamic = k.ConfigSource.DYNAMIC_TOPIC_CONFIG.value
        return TopicState(
            topic_id=str(described.topic_id),
            replication_factors=[
                len(p.replicas) for p in sorted(described.partitions, key=lambda p: p.id)
            ],
            config={key: entry.value for key, entry in entries.items() if entry.value is not None},
            dynamic=frozenset(key for key, entry in entries.items() if entry.source == dynamic),
        )

    def create(self, spec: TopicSpec) -> None:
        topic = self._k.NewTopic(
            spec.name,
            num_partitions=spec.partitions if spec.partitions is not None else BROKER_DEFAULT,
            replication_factor=spec.replicas if spec.replicas is not None else BROKER_DEFAULT,
            config=dict(spec.config),
        )
        futures = self._client.create_topics(
            [topic], operation_timeout=self.timeout, request_timeout=self.timeout
        )
        self._wait(futures[spec.name])

    def alter_config(self, name: str, set_: Mapping[str, str], delete: Sequence[str]) -> None:
        k = self._k
        ops = [
            k.ConfigEntry(key, value, incremental_operation=k.AlterConfigOpType.SET)
            for key, value in set_.items()
        ] + [
            k.ConfigEntry(key, None, incremental_operation=k.AlterConfigOpType.DELETE)
            for key in delete
        ]
        resource = k.ConfigResource(k.ResourceType.TOPIC, name, incremental_configs=ops)
        futures = self._client.incremental_alter_configs([resource], request_timeout=self.timeout)
        for future in futures.values():
            self._wait(future)

    def create_partitions(self, name: str, total: int) -> None:
        futures = self._client.create_partitions(
            [self._k.NewPartitions(name, total)],
            operation_timeout=self.timeout,
            request_timeout=self.timeout,
        )
        self._wait(futures[name])

    def delete(self, name: str) -> None:
        futures = self._client.delete_topics(
            [name], operation_timeout=self.timeout, request_timeout=self.timeout
        )
        try:
            futures[name].result(timeout=self.timeout + 5)
        except Exception as exc:
            if not _unknown_topic(exc):
                raise _failure(exc) from None

    def close(self) -> None:
        """Nothing to release: librdkafka's handle goes with the object."""


# --------------------------------------------------------------------------------------------------
# The topic operator's loop, one KafkaTopic per call
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Outcome:
    generation: int
    topic_name: str
    topic_id: str | None
    error: BrokerError | None
    at: float


@dataclass(frozen=True)
class _Created:
    namespace: str
    name: str
    topic: str


# (namespace, name, uid) -> True: it still exists, False: it is gone, None: cannot tell now.
StillExists = Callable[[str, str, str], bool | None]


@dataclass(eq=False)
class BrokerTopics:
    """Reconciles KafkaTopics on a broker the way Strimzi's topic operator does.

    A KafkaTopic is reconciled when its generation is new to it, again ``retry_seconds`` after
    a refusal, and every ``resync_seconds`` (drift on the broker); in between, its status is
    rewritten from the last outcome (a lost status write costs no broker call).
    """

    admin: BrokerAdmin
    resync_seconds: float = DEFAULT_RESYNC_SECONDS
    retry_seconds: float = DEFAULT_RETRY_SECONDS
    monotonic: Callable[[], float] = time.monotonic
    _outcomes: dict[str, _Outcome] = field(default_factory=dict, init=False, repr=False)
    _created: dict[str, _Created] = field(default_factory=dict, init=False, repr=False)
    _topic_ids: dict[str, str] = field(default_factory=dict, init=False, repr=False)
    _unreachable: tuple[float, BrokerError] | None = field(default=None, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def step(
        self, body: Mapping[str, Any], *, failure: Failure | None = None, now: str
    ) -> Step | None:
        """The KafkaTopic's next status, after reconciling it on the broker when due."""
        if failure is not None or _switched_off(body):
            return kafka_topic_step(body, failure=failure, now=now)
        uid = str(_get(body, "metadata", "uid") or "")
        generation = generation_of(body)
        with self._lock:
            outcome = self._outcomes.get(uid)
            # A refusal is retried soon, and so is a success without the topic's id (the
            # broker's metadata lags a creation); a success is resynced to catch drift.
            unfinished = outcome is not None and (outcome.error or not outcome.topic_id)
            due = (
                outcome is None
                or outcome.generation != generation
                or self.monotonic() - outcome.at
                >= (self.retry_seconds if unfinished else self.resync_seconds)
            )
            if due:
                outcome = self._reconcile(body, uid, generation)
                self._outcomes[uid] = outcome
        assert outcome is not None
        return topic_status(
            body,
            topic_name=outcome.topic_name,
            topic_id=outcome.topic_id,
            error=outcome.error,
            now=now,
        )

    def _reconcile(self, body: Mapping[str, Any], uid: str, generation: int) -> _Outcome:
        wanted = topic_spec(body)
        if isinstance(wanted, BrokerError):
            return _Outcome(generation, name_of(body), None, wanted, self.monotonic())
        name = wanted.name
        error: BrokerError | None = None
        previous = status_of(body).get("topicName")
        try:
            if previous and previous != name:
                error = BrokerError(
                    REASON_NOT_SUPPORTED, "Changing spec.topicName is not supported"
                )
            elif self._unreachable is not None and self.monotonic() < self._unreachable[0]:
                # The broker did not answer a moment ago: do not wait for it once per topic.
                error = self._unreachable[1]
            else:
                error = self._apply(body, uid, wanted)
                self._unreachable = None
        except BrokerFailure as exc:
            error = exc.error
            if exc.unreachable:
                self._unreachable = (self.monotonic() + self.retry_seconds, error)
        except Exception as exc:  # as Strimzi: an unexpected error's class is the reason
            log.exception("KafkaTopic %s: reconcile failed", name_of(body))
            error = BrokerError(type(exc).__name__, str(exc) or type(exc).__name__)
        if error is not None:
            log.info("KafkaTopic %s: %s: %s", name_of(body), error.reason, error.message)
        return _Outcome(generation, name, self._topic_ids.get(name), error, self.monotonic())

    def _apply(self, body: Mapping[str, Any], uid: str, wanted: TopicSpec) -> BrokerError | None:
        name = wanted.name
        state = self.admin.describe(name)
        steps = plan(wanted, state)
        if steps.create:
            self.admin.create(wanted)
            self._created[uid] = _Created(
                str(_get(body, "metadata", "namespace") or ""), name_of(body), name
            )
            log.info("created topic %s on the broker", name)
            state = self._describe_created(name)
        else:
            if steps.set_config or steps.delete_config:
                self.admin.alter_config(name, steps.set_config, steps.delete_config)
            if steps.new_partitions is not None:
                self.admin.create_partitions(name, steps.new_partitions)
        if state is not None:
            self._topic_ids[name] = state.topic_id
        return steps.refusal

    def _describe_created(self, name: str) -> TopicState | None:
        """The topic just created: the broker's metadata can lag the controller's a moment."""
        for _ in range(CREATED_DESCRIBE_ATTEMPTS - 1):
            state = self.admin.describe(name)
            if state is not None:
                return state
            time.sleep(CREATED_DESCRIBE_PAUSE)
        return self.admin.describe(name)

    def deleted(self, namespace: str, name: str, uid: str) -> bool:
        """The KafkaTopic is gone (or being deleted): delete the topic this simulator created
        for it. False when the broker refused (retried on the next sweep)."""
        with self._lock:
            created = self._created.get(uid)
            self._outcomes.pop(uid, None)
            if created is None:
                return True
            try:
                self.admin.delete(created.topic)
            except BrokerFailure as exc:
                log.warning(
                    "deleting topic %s of KafkaTopic %s/%s failed: %s",
                    created.topic,
                    namespace,
                    name,
                    exc.error.message,
                )
                return False
            del self._created[uid]
            self._topic_ids.pop(created.topic, None)
        log.info("deleted topic %s (KafkaTopic %s/%s is gone)", created.topic, namespace, name)
        return True

    def sweep(self, live: set[str], still_exists: StillExists) -> None:
        """Delete the topics of KafkaTopics not listed any more, once the API server confirms
        they are gone (a failed or filtered listing must never delete a topic)."""
        with self._lock:
            vanished = {uid: c for uid, c in self._created.items() if uid not in live}
            for uid in set(self._outcomes) - live - set(self._created):
                del self._outcomes[uid]
        for uid, created in vanished.items():
            if still_exists(created.namespace, created.name, uid) is not False:
                continue
            with self._lock:
                # Another KafkaTopic (e.g. one recreated under the same name) has the topic now.
                shared = any(
                    o.topic_name == created.topic for u, o in self._outcomes.items() if u != uid
                )
                if shared:
                    self._created.pop(uid, None)
                    self._outcomes.pop(uid, None)
            if not shared:
                self.deleted(created.namespace, created.name, uid)

    def close(self) -> None:
        self.admin.close()


BOOTSTRAP_PATTERN: Final = re.compile(r"^[A-Za-z0-9.\-\[\]:]+:[0-9]{1,5}$")


def check_bootstrap(text: str) -> str:
    """A ``HOST:PORT[,HOST:PORT...]`` bootstrap list, or ValueError saying what is wrong."""
    parts = [part.strip() for part in text.split(",")]
    for part in parts:
        if not BOOTSTRAP_PATTERN.match(part) or not 0 < int(part.rsplit(":", 1)[1]) < 65536:
            raise ValueError(f"not HOST:PORT: {part!r} (e.g. 127.0.0.1:9092)")
    return ",".join(parts)


def broker_topics(bootstrap: str, **options: Any) -> BrokerTopics:
    """BrokerTopics over confluent-kafka; KafkaAdminMissing when it is not installed."""
    return BrokerTopics(ConfluentAdmin(check_bootstrap(bootstrap)), **options)
