"""The delegate simulator's broker mode, against an in-memory one-broker Kafka (no I/O).

Aspects covered:
- a KafkaTopic's spec as the topic operator sends it (config values rendered like Strimzi's),
  for the KafkaTopics federator renders (v1 and v1beta2 alike);
- the plan: create, alter config (set and delete), increase partitions, refuse a decrease or a
  replication factor change with Strimzi's reason and text;
- broker errors written as Strimzi writes them (KafkaError + the Java exception's text);
- the status sequence through BrokerTopics (replicas 2 on one broker -> Ready=False; fixed ->
  Ready=True with the broker's topicId) and what federator's health adapter reads from it;
- when the broker is called (new generation, retry after a refusal, resync) and when not; an
  unreachable broker is not waited for once per topic; an unexpected error is a status;
- deletion: only topics the simulator created, only once the KafkaTopic is confirmed gone;
- the `--kafka-bootstrap` option and a clear error without confluent-kafka.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from federator import simulator_broker as sb
from federator.cli import main as cli
from federator.core import delegates, health
from federator.core.compiler import compile_application
from federator.core.settings import Settings
from federator.simulator import Failure

NOW = "2026-11-29T18:00:00Z"
IRF_TEXT = (
    "Unable to replicate the partition 2 time(s): The target replication factor of 2 cannot "
    "be reached because only 1 broker(s) are registered or some brokers have all their log "
    "directories cordoned."
)


@dataclass
class FakeBroker:
    """One Kafka broker in memory, answering like the real one for what the tests use."""

    topics: dict[str, sb.TopicState] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)
    counter: int = 0

    def describe(self, name: str) -> sb.TopicState | None:
        self.calls.append(f"describe {name}")
        return self.topics.get(name)

    def create(self, spec: sb.TopicSpec) -> None:
        self.calls.append(f"create {spec.name}")
        if (spec.replicas or 1) > 1:
            raise sb.BrokerFailure(sb.kafka_error("INVALID_REPLICATION_FACTOR", IRF_TEXT))
        self.counter += 1
        self.topics[spec.name] = sb.TopicState(
            topic_id=f"id-{self.counter}",
            replication_factors=[1] * (spec.partitions or 1),
            config={"cleanup.policy": "delete", **spec.config},
            dynamic=frozenset(spec.config),
        )

    def alter_config(self, name: str, set_: Mapping[str, str], delete: Sequence[str]) -> None:
        self.calls.append(f"alter {name} {sorted(set_)} -{sorted(delete)}")
        old = self.topics[name]
        config = {k: v for k, v in old.config.items() if k not in delete} | dict(set_)
        dynamic = (old.dynamic - set(delete)) | set(set_)
        self.topics[name] = sb.TopicState(old.topic_id, old.replication_factors, config, dynamic)

    def create_partitions(self, name: str, total: int) -> None:
        self.calls.append(f"partitions {name} {total}")
        old = self.topics[name]
        rfs = [*old.replication_factors, *[1] * (total - old.partitions)]
        self.topics[name] = sb.TopicState(old.topic_id, rfs, old.config, old.dynamic)

    def delete(self, name: str) -> None:
        self.calls.append(f"delete {name}")
        self.topics.pop(name, None)

    def close(self) -> None:
        pass


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def kafka_topic(
    generation: int = 1,
    *,
    name: str = "orders",
    uid: str = "uid-1",
    status: dict[str, Any] | None = None,
    annotations: dict[str, str] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "kafka.strimzi.io/v1",
        "kind": "KafkaTopic",
        "metadata": {
            "name": name,
            "namespace": "kafka",
            "uid": uid,
            "generation": generation,
            "annotations": annotations or {},
        },
        "spec": {"topicName": name, **spec},
    }
    if status is not None:
        body["status"] = status
    return body


def state(partitions: int = 3, rf: int = 1, **config: str) -> sb.TopicState:
    return sb.TopicState(
        "id", [rf] * partitions, {"cleanup.policy": "delete", **config}, frozenset(config)
    )


# --- the spec and the plan -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({"retention.ms": 7200000}, {"retention.ms": "7200000"}),
        ({"retention.ms": "7200000"}, {"retention.ms": "7200000"}),
        ({"preallocate": True}, {"preallocate": "true"}),
        ({"cleanup.policy": ["compact", "delete"]}, {"cleanup.policy": "compact,delete"}),
        ({"retention.ms": None}, {}),
    ],
    ids=["int", "string", "bool-lowercase", "list-comma-joined", "null-ignored"],
)
def test_config_values_are_rendered_like_strimzis(
    config: dict[str, Any], expected: dict[str, str]
) -> None:
    spec = sb.topic_spec(kafka_topic(partitions=3, config=config))
    assert isinstance(spec, sb.TopicSpec)
    assert dict(spec.config) == expected


@pytest.mark.parametrize(
    ("cluster", "api_version"),
    [("default", "kafka.strimzi.io/v1"), ("legacy", "kafka.strimzi.io/v1beta2")],
    ids=["v1", "v1beta2"],
)
def test_kafkatopics_as_federator_renders_them_are_read_alike(
    cluster: str,
    api_version: str,
    example_loader: Callable[[str], dict[str, Any]],
    example_settings: Settings,
) -> None:
    body = example_loader("call-record-aggregator.yaml")
    body["spec"]["kafka"] = {"cluster": cluster}
    body["spec"]["topicDefaults"]["config"] = {"retention.ms": "7200000"}
    children = compile_application(body, example_settings).children
    topics = [c.manifest for c in children if c.kind == "KafkaTopic"]
    assert len(topics) == 7
    for manifest in topics:
        assert manifest["apiVersion"] == api_version
        spec = sb.topic_spec(manifest)
        assert spec == sb.TopicSpec(
            manifest["spec"]["topicName"], 53, 2, {"retention.ms": "7200000"}
        )
        assert sb.plan(spec, None) == sb.Plan(create=True)


def test_a_config_value_that_cannot_be_rendered_is_an_internal_error() -> None:
    error = sb.topic_spec(kafka_topic(config={"retention.ms": {"nested": 1}}))
    assert isinstance(error, sb.BrokerError)
    assert error.reason == "InternalError"
    assert "Invalid value for topic config 'retention.ms'" in error.message


def test_the_topic_name_defaults_to_the_kafkatopics_name() -> None:
    body = kafka_topic()
    del body["spec"]["topicName"]
    spec = sb.topic_spec(body)
    assert isinstance(spec, sb.TopicSpec)
    assert (spec.name, spec.partitions, spec.replicas) == ("orders", None, None)


@pytest.mark.parametrize(
    ("spec", "current", "expected"),
    [
        (sb.TopicSpec("t", 3, 1, {}), None, sb.Plan(create=True)),
        (sb.TopicSpec("t", 3, 1, {}), state(3), sb.Plan()),
        (sb.TopicSpec("t", None, None, {}), state(3), sb.Plan()),
        (sb.TopicSpec("t", 5, 1, {}), state(3), sb.Plan(new_partitions=5)),
        (
            sb.TopicSpec("t", 3, 1, {"retention.ms": "1000"}),
            state(3, **{"retention.ms": "7200000", "segment.ms": "1"}),
            sb.Plan(set_config={"retention.ms": "1000"}, delete_config=("segment.ms",)),
        ),
        (
            sb.TopicSpec("t", 3, 1, {"cleanup.policy": "delete"}),
            state(3),
            sb.Plan(),
        ),
        (
            sb.TopicSpec("t", 2, 1, {"retention.ms": "1"}),
            state(3),
            sb.Plan(
                set_config={"retention.ms": "1"},
                refusal=sb.BrokerError("NotSupported", "Decreasing partitions not supported"),
            ),
        ),
        (
            sb.TopicSpec("t", 3, 2, {}),
            state(3),
            sb.Plan(
                refusal=sb.BrokerError(
                    "NotSupported",
                    "Replication factor change not supported, but required for partitions "
                    "[0, 1, 2]",
                )
            ),
        ),
    ],
    ids=[
        "missing-create",
        "in-sync",
        "broker-defaults",
        "partition-increase",
        "config-set-and-delete-dropped-dynamic",
        "default-value-equal-no-change",
        "partition-decrease-refused-config-still-set",
        "replication-factor-change-refused",
    ],
)
def test_the_plan_is_the_topic_operators(
    spec: sb.TopicSpec, current: sb.TopicState | None, expected: sb.Plan
) -> None:
    assert sb.plan(spec, current) == expected


@pytest.mark.parametrize(
    ("name", "local", "exception"),
    [
        ("INVALID_REPLICATION_FACTOR", False, "InvalidReplicationFactorException"),
        ("INVALID_PARTITIONS", False, "InvalidPartitionsException"),
        ("INVALID_CONFIG", False, "InvalidConfigurationException"),
        ("POLICY_VIOLATION", False, "PolicyViolationException"),
        ("TOPIC_ALREADY_EXISTS", False, "TopicExistsException"),
        ("UNKNOWN_TOPIC_OR_PART", False, "UnknownTopicOrPartitionException"),
        ("_TRANSPORT", True, "TimeoutException"),
    ],
    ids=str,
)
def test_broker_errors_read_as_strimzis_kafka_error(name: str, local: bool, exception: str) -> None:
    error = sb.kafka_error(name, "the broker's text", local=local)
    assert error == sb.BrokerError(
        "KafkaError", f"org.apache.kafka.common.errors.{exception}: the broker's text"
    )


# --- the status sequence -------------------------------------------------------------------------


def advance(topics: sb.BrokerTopics, body: dict[str, Any], **kw: Any) -> dict[str, Any]:
    """One reconcile: the status written (or the old one when unchanged)."""
    step = topics.step(body, now=NOW, **kw)
    if step is not None:
        body["status"] = step.status
    return body


def test_replicas_two_on_one_broker_is_ready_false_then_fixing_it_is_ready() -> None:
    broker = FakeBroker()
    topics = sb.BrokerTopics(broker)
    body = advance(topics, kafka_topic(1, partitions=3, replicas=2))
    ready = body["status"]["conditions"][0]
    assert (ready["type"], ready["status"], ready["reason"]) == ("Ready", "False", "KafkaError")
    assert ready["message"] == (
        f"org.apache.kafka.common.errors.InvalidReplicationFactorException: {IRF_TEXT}"
    )
    assert body["status"]["observedGeneration"] == 1
    assert body["status"]["topicName"] == "orders"
    assert "topicId" not in body["status"]
    verdict = delegates.assess("KafkaTopic", body)
    assert (verdict.health, verdict.reason) == (health.Health.DEGRADED, "KafkaError")
    assert verdict.message == f"InvalidReplicationFactorException: {IRF_TEXT}"
    assert "orders" not in broker.topics

    body = advance(topics, kafka_topic(2, status=body["status"], partitions=3, replicas=1))
    assert body["status"]["conditions"] == [
        {"type": "Ready", "status": "True", "lastTransitionTime": NOW}
    ]
    assert body["status"]["topicId"] == broker.topics["orders"].topic_id
    assert body["status"]["observedGeneration"] == 2
    assert delegates.assess("KafkaTopic", body).health is health.Health.HEALTHY


def test_spec_changes_reach_the_broker_and_a_decrease_is_refused() -> None:
    broker = FakeBroker()
    topics = sb.BrokerTopics(broker)
    body = advance(topics, kafka_topic(1, partitions=3, replicas=1, config={"retention.ms": 1}))
    body = advance(topics, kafka_topic(2, status=body["status"], partitions=6, replicas=1))
    assert broker.topics["orders"].partitions == 6
    assert "retention.ms" not in broker.topics["orders"].config  # dropped from the spec
    assert body["status"]["conditions"][0]["status"] == "True"
    body = advance(topics, kafka_topic(3, status=body["status"], partitions=2, replicas=1))
    ready = body["status"]["conditions"][0]
    assert (ready["status"], ready["reason"], ready["message"]) == (
        "False",
        "NotSupported",
        "Decreasing partitions not supported",
    )
    assert broker.topics["orders"].partitions == 6
    assert body["status"]["topicId"] == broker.topics["orders"].topic_id


def test_the_broker_is_called_for_a_new_generation_a_retry_or_a_resync_only() -> None:
    broker, clock = FakeBroker(), Clock()
    topics = sb.BrokerTopics(broker, resync_seconds=60, retry_seconds=5, monotonic=clock)
    body = advance(topics, kafka_topic(1, partitions=3, replicas=2))
    calls = len(broker.calls)
    assert topics.step(body, now=NOW) is None  # settled: no broker call, no status write
    assert len(broker.calls) == calls
    clock.t += 5
    topics.step(body, now=NOW)  # a refusal is retried
    assert len(broker.calls) > calls
    body = advance(topics, kafka_topic(2, status=body["status"], partitions=3, replicas=1))
    calls = len(broker.calls)
    clock.t += 30
    assert topics.step(body, now=NOW) is None
    assert len(broker.calls) == calls
    del broker.topics["orders"]  # drift: deleted behind the operator's back
    clock.t += 30
    topics.step(body, now=NOW)
    assert "orders" in broker.topics


def test_a_creation_the_brokers_metadata_lags_is_described_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sb, "CREATED_DESCRIBE_PAUSE", 0.0)
    broker, clock = FakeBroker(), Clock()
    lagging = {"left": 99}
    real_describe = broker.describe

    def describe(name: str) -> sb.TopicState | None:
        if name in broker.topics and lagging["left"] > 0:
            lagging["left"] -= 1
            return None
        return real_describe(name)

    monkeypatch.setattr(broker, "describe", describe)
    topics = sb.BrokerTopics(broker, retry_seconds=5, monotonic=clock)
    body = advance(topics, kafka_topic(partitions=1, replicas=1))
    assert body["status"]["conditions"][0]["status"] == "True"
    assert "topicId" not in body["status"]  # Ready, the id still unknown
    lagging["left"] = 0
    clock.t += 5  # fetched again like a refusal, not only at the next resync
    body = advance(topics, body)
    assert body["status"]["topicId"] == broker.topics["orders"].topic_id


def test_an_unreachable_broker_is_not_waited_for_once_per_topic(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    broker, clock = FakeBroker(), Clock()
    down = sb.kafka_error("_TRANSPORT", "Failed to connect", local=True)

    def describe(name: str) -> sb.TopicState | None:
        broker.calls.append(f"describe {name}")
        raise sb.BrokerFailure(down, unreachable=True)

    monkeypatch.setattr(broker, "describe", describe)
    topics = sb.BrokerTopics(broker, retry_seconds=5, monotonic=clock)
    first = advance(topics, kafka_topic(name="a", uid="a", partitions=1, replicas=1))
    second = advance(topics, kafka_topic(name="b", uid="b", partitions=1, replicas=1))
    assert broker.calls == ["describe a"]
    for body in (first, second):
        ready = body["status"]["conditions"][0]
        assert (ready["status"], ready["reason"]) == ("False", "KafkaError")
        assert ready["message"] == (
            "org.apache.kafka.common.errors.TimeoutException: Failed to connect"
        )
    monkeypatch.undo()
    clock.t += 5
    advance(topics, second)
    assert second["status"]["conditions"][0]["status"] == "True"


def test_an_unexpected_error_is_a_status_not_a_crash(monkeypatch: pytest.MonkeyPatch) -> None:
    broker = FakeBroker()

    def create(spec: sb.TopicSpec) -> None:
        raise ValueError("bad argument")

    monkeypatch.setattr(broker, "create", create)
    body = advance(sb.BrokerTopics(broker), kafka_topic(partitions=1, replicas=1))
    ready = body["status"]["conditions"][0]
    assert (ready["status"], ready["reason"], ready["message"]) == (
        "False",
        "ValueError",
        "bad argument",
    )


def test_a_topic_name_change_is_refused_and_the_old_name_kept() -> None:
    broker = FakeBroker()
    topics = sb.BrokerTopics(broker)
    body = advance(topics, kafka_topic(1, partitions=1, replicas=1))
    changed = kafka_topic(2, status=body["status"], partitions=1, replicas=1)
    changed["spec"]["topicName"] = "renamed"
    body = advance(topics, changed)
    ready = body["status"]["conditions"][0]
    assert (ready["reason"], ready["message"]) == (
        "NotSupported",
        "Changing spec.topicName is not supported",
    )
    assert body["status"]["topicName"] == "orders"
    assert "renamed" not in broker.topics


@pytest.mark.parametrize(
    ("annotations", "failure", "condition"),
    [
        ({"strimzi.io/pause-reconciliation": "true"}, None, "ReconciliationPaused"),
        ({"strimzi.io/managed": "false"}, None, "Unmanaged"),
        ({}, Failure("injected"), "Ready"),
    ],
    ids=["paused", "unmanaged", "injected-failure"],
)
def test_paused_unmanaged_and_injected_failures_leave_the_broker_alone(
    annotations: dict[str, str], failure: Failure | None, condition: str
) -> None:
    broker = FakeBroker()
    step = sb.BrokerTopics(broker).step(
        kafka_topic(partitions=1, annotations=annotations), failure=failure, now=NOW
    )
    assert step is not None
    assert step.status["conditions"][0]["type"] == condition
    assert broker.calls == []


# --- deletion ------------------------------------------------------------------------------------


def test_a_deleted_kafkatopic_deletes_the_topic_it_created_only() -> None:
    broker = FakeBroker()
    broker.create(sb.TopicSpec("existing", 1, 1, {}))
    topics = sb.BrokerTopics(broker)
    advance(topics, kafka_topic(name="mine", uid="u-mine", partitions=1, replicas=1))
    advance(topics, kafka_topic(name="existing", uid="u-old", partitions=1, replicas=1))
    assert topics.deleted("kafka", "existing", "u-old")
    assert topics.deleted("kafka", "mine", "u-mine")
    assert set(broker.topics) == {"existing"}


@pytest.mark.parametrize(
    ("exists", "deleted"),
    [(True, False), (None, False), (False, True)],
    ids=["still-there-eg-label-removed", "cannot-tell", "confirmed-gone"],
)
def test_the_sweep_deletes_only_once_the_kafkatopic_is_confirmed_gone(
    exists: bool | None, deleted: bool
) -> None:
    broker = FakeBroker()
    topics = sb.BrokerTopics(broker)
    advance(topics, kafka_topic(partitions=1, replicas=1))
    asked: list[tuple[str, str, str]] = []

    def still_exists(namespace: str, name: str, uid: str) -> bool | None:
        asked.append((namespace, name, uid))
        return exists

    topics.sweep({"uid-1"}, still_exists)
    assert asked == []  # listed: nothing to confirm
    topics.sweep(set(), still_exists)
    assert asked == [("kafka", "orders", "uid-1")]
    assert ("orders" not in broker.topics) is deleted


def test_a_topic_taken_over_by_a_recreated_kafkatopic_is_not_deleted() -> None:
    broker = FakeBroker()
    topics = sb.BrokerTopics(broker)
    advance(topics, kafka_topic(uid="old", partitions=1, replicas=1))
    advance(topics, kafka_topic(uid="new", partitions=1, replicas=1))
    topics.sweep({"new"}, lambda namespace, name, uid: False)
    assert "orders" in broker.topics


# --- the command line ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value", ["localhost", "127.0.0.1:", "127.0.0.1:99999", "a b:1", ""], ids=repr
)
def test_a_bad_bootstrap_is_a_usage_error(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["simulate", "--kafka-bootstrap", value])
    assert exc.value.code == 2
    assert "HOST:PORT" in capsys.readouterr().err


def test_a_bootstrap_list_is_accepted() -> None:
    assert sb.check_bootstrap("127.0.0.1:9092, broker-1.kafka:9093") == (
        "127.0.0.1:9092,broker-1.kafka:9093"
    )


def test_without_confluent_kafka_broker_mode_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = importlib.import_module

    def no_kafka(name: str, package: str | None = None) -> Any:
        if name.startswith("confluent_kafka"):
            raise ImportError(f"No module named {name!r}")
        return real(name, package)

    monkeypatch.setattr(sb.importlib, "import_module", no_kafka)
    with pytest.raises(sb.KafkaAdminMissing, match=r"pip install 'federator\[kafka\]'"):
        sb.broker_topics("127.0.0.1:9092")


def test_simulate_without_confluent_kafka_exits_with_the_install_hint(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        "clusters: [{name: c, cluster: {server: 'https://127.0.0.1:1'}}]\n"
        "users: [{name: u, user: {token: t}}]\n"
        "contexts: [{name: c, context: {cluster: c, user: u}}]\n"
    )
    monkeypatch.setattr(sb, "_kafka", _raise_missing)
    code = cli.main(
        ["simulate", "--kubeconfig", str(kubeconfig), "--kafka-bootstrap", "127.0.0.1:9092"]
    )
    assert code == 2
    assert "pip install 'federator[kafka]'" in capsys.readouterr().err


def _raise_missing() -> Any:
    raise sb.KafkaAdminMissing(sb.INSTALL_HINT)


@pytest.mark.parametrize(
    ("reason", "message", "expected"),
    [
        (
            "KafkaError",
            f"org.apache.kafka.common.errors.InvalidReplicationFactorException: {IRF_TEXT}",
            ("KafkaError", f"InvalidReplicationFactorException: {IRF_TEXT}"),
        ),
        (
            "NotSupported",
            "Decreasing partitions not supported",
            ("NotSupported", "Decreasing partitions not supported"),
        ),
        (
            "InternalError",
            "java.lang.RuntimeException: boom",
            ("InternalError", "java.lang.RuntimeException: boom"),
        ),
        ("", "", ("NotReady", "the topic operator reports Ready=False")),
    ],
    ids=["kafka-error-package-dropped", "not-supported", "internal-error-kept", "bare"],
)
def test_the_health_adapter_surfaces_the_topic_operators_refusal(
    reason: str, message: str, expected: tuple[str, str]
) -> None:
    condition = {"type": "Ready", "status": "False", "reason": reason, "message": message}
    body = kafka_topic(status={"observedGeneration": 1, "conditions": [condition]})
    verdict = delegates.assess("KafkaTopic", body)
    assert verdict.health is health.Health.DEGRADED
    assert (verdict.reason, verdict.message) == expected
