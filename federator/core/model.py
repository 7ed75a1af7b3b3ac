"""The Application spec as frozen dataclasses, built from the raw custom resource body.

`from_body` is lenient on purpose: schema violations are reported by validation (from the CRD's
own schema), so the builder skips what it cannot read instead of raising, and the semantic checks
still run on everything that is readable. That is how one pass reports every problem.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from federator.core import sharding
from federator.core.settings import FlinkOperator

DEFAULT_KAFKA_CLUSTER = "default"
_PORT_REF = re.compile(r"^([^.]+)\.([^.]+)$")


class Runtime(StrEnum):
    SPARK = "spark"
    FLINK = "flink"
    CONTAINER = "container"


RUNTIME_ALIASES: Mapping[str, Runtime] = {"akka": Runtime.CONTAINER}
RUNTIME_NAMES: tuple[str, ...] = (*(r.value for r in Runtime), *RUNTIME_ALIASES)


def parse_runtime(value: object) -> Runtime | None:
    if not isinstance(value, str):
        return None
    if value in RUNTIME_ALIASES:
        return RUNTIME_ALIASES[value]
    try:
        return Runtime(value)
    except ValueError:
        return None


class DeletionPolicy(StrEnum):
    RETAIN = "Retain"
    DELETE = "Delete"


@dataclass(frozen=True, kw_only=True, order=True)
class PortRef:
    """`streamlet.port`, as written in connections and topics."""

    streamlet: str
    port: str

    @classmethod
    def parse(cls, text: object) -> PortRef | None:
        if not isinstance(text, str):
            return None
        match = _PORT_REF.match(text)
        return cls(streamlet=match.group(1), port=match.group(2)) if match else None

    def __str__(self) -> str:
        return f"{self.streamlet}.{self.port}"


@dataclass(frozen=True, kw_only=True)
class Located:
    """A reference with the spec path it was written at, so problems can point at it."""

    ref: PortRef
    path: str


@dataclass(frozen=True, kw_only=True)
class PortSchema:
    format: str
    definition: str | None = None


@dataclass(frozen=True, kw_only=True)
class Streamlet:
    name: str
    runtime: Runtime
    image: str
    inlets: tuple[str, ...] = ()
    outlets: tuple[str, ...] = ()
    schemas: Mapping[str, PortSchema] = field(default_factory=dict)
    replicas: int | None = None
    config: Mapping[str, str] = field(default_factory=dict)
    flink_operator: FlinkOperator | None = None
    flink_session: str | None = None
    """The session FlinkDeployment to run on as a FlinkSessionJob (`flinkSession`)."""
    overrides: Mapping[str, Any] = field(default_factory=dict)
    """The runtime block (`spark`, `flink` or `container`): native delegate spec fields."""
    path: str = ""


@dataclass(frozen=True, kw_only=True)
class Connection:
    source: Located
    targets: tuple[Located, ...]
    path: str


@dataclass(frozen=True, kw_only=True)
class TopicSpec:
    name: str
    producers: tuple[Located, ...] = ()
    consumers: tuple[Located, ...] = ()
    partitions: int | None = None
    replicas: int | None = None
    config: Mapping[str, str] = field(default_factory=dict)
    managed: bool = True
    path: str = ""


@dataclass(frozen=True, kw_only=True)
class TopicDefaults:
    partitions: int | None = None
    replicas: int | None = None
    config: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class Application:
    name: str
    namespace: str
    uid: str | None = None
    generation: int | None = None
    kafka_cluster: str = DEFAULT_KAFKA_CLUSTER
    topic_defaults: TopicDefaults = field(default_factory=TopicDefaults)
    streamlets: tuple[Streamlet, ...] = ()
    connections: tuple[Connection, ...] = ()
    topics: tuple[TopicSpec, ...] = ()
    deletion_policy: DeletionPolicy = DeletionPolicy.RETAIN
    suspend: bool = False
    service_account: str | None = None
    """`spec.serviceAccountName`: the ServiceAccount of the application's namespace whose
    rights write its children there (impersonated); None: the operator's default, if any."""
    shard: str | None = None
    """The `federator.io/shard` label: the shard that serves it; its children carry it too."""
    unreadable_streamlets: frozenset[str] = frozenset()
    """Names of streamlets too malformed to model (already reported by the schema check);
    references to them are not reported again as unknown."""

    def streamlet(self, name: str) -> Streamlet | None:
        for s in self.streamlets:
            if s.name == name:
                return s
        return None


# --- lenient readers: wrong types read as "absent"; the schema check reports them -------------


def _map(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _str(value: object, default: str = "") -> str:
    return value if isinstance(value, str) else default


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _str_map(value: object) -> dict[str, str]:
    """Kafka configs and streamlet configs are string maps; numbers are stringified for users."""
    out: dict[str, str] = {}
    for key, item in _map(value).items():
        if (
            isinstance(key, str)
            and isinstance(item, str | int | float)
            and not isinstance(item, bool)
        ):
            out[key] = str(item)
        elif isinstance(key, str) and isinstance(item, bool):
            out[key] = "true" if item else "false"
    return out


def _names(value: object) -> tuple[str, ...]:
    return tuple(v for v in _list(value) if isinstance(v, str))


def _refs(value: object, path: str) -> tuple[Located, ...]:
    out = []
    for i, text in enumerate(_list(value)):
        ref = PortRef.parse(text)
        if ref is not None:
            out.append(Located(ref=ref, path=f"{path}[{i}]"))
    return tuple(out)


def _streamlet(raw: Mapping[str, Any], path: str) -> Streamlet | None:
    name = raw.get("name")
    runtime = parse_runtime(raw.get("runtime"))
    if not isinstance(name, str) or runtime is None:
        return None
    schemas = {
        port: PortSchema(
            format=_str(_map(s).get("format"), "bytes"),
            definition=_map(s).get("definition")
            if isinstance(_map(s).get("definition"), str)
            else None,
        )
        for port, s in _map(raw.get("schemas")).items()
        if isinstance(port, str)
    }
    flink_operator = None
    if isinstance(raw.get("flinkOperator"), str):
        try:
            flink_operator = FlinkOperator(raw["flinkOperator"])
        except ValueError:
            flink_operator = None
    return Streamlet(
        name=name,
        runtime=runtime,
        image=_str(raw.get("image")),
        inlets=_names(raw.get("inlets")),
        outlets=_names(raw.get("outlets")),
        schemas=schemas,
        replicas=_int(raw.get("replicas")),
        config=_str_map(raw.get("config")),
        flink_operator=flink_operator,
        flink_session=raw["flinkSession"] if isinstance(raw.get("flinkSession"), str) else None,
        overrides=_map(raw.get(runtime.value)),
        path=path,
    )


def from_body(body: Mapping[str, Any]) -> Application:
    """Read what is readable of an Application body; never raises on a malformed body."""
    metadata = _map(body.get("metadata"))
    spec = _map(body.get("spec"))
    defaults = _map(spec.get("topicDefaults"))
    streamlets = []
    unreadable = set()
    for i, raw in enumerate(_list(spec.get("streamlets"))):
        if isinstance(raw, Mapping):
            s = _streamlet(raw, f"spec.streamlets[{i}]")
            if s is not None:
                streamlets.append(s)
            elif isinstance(raw.get("name"), str):
                unreadable.add(raw["name"])
    connections = []
    for i, raw in enumerate(_list(spec.get("connections"))):
        path = f"spec.connections[{i}]"
        source = PortRef.parse(_map(raw).get("from"))
        if source is not None:
            connections.append(
                Connection(
                    source=Located(ref=source, path=f"{path}.from"),
                    targets=_refs(_map(raw).get("to"), f"{path}.to"),
                    path=path,
                )
            )
    topics = []
    for i, raw in enumerate(_list(spec.get("topics"))):
        path = f"spec.topics[{i}]"
        raw_map = _map(raw)
        name = raw_map.get("name")
        if not isinstance(name, str):
            continue
        managed = raw_map.get("managed", True)
        topics.append(
            TopicSpec(
                name=name,
                producers=_refs(raw_map.get("producers"), f"{path}.producers"),
                consumers=_refs(raw_map.get("consumers"), f"{path}.consumers"),
                partitions=_int(raw_map.get("partitions")),
                replicas=_int(raw_map.get("replicas")),
                config=_str_map(raw_map.get("config")),
                managed=managed if isinstance(managed, bool) else True,
                path=path,
            )
        )
    policy = spec.get("deletionPolicy")
    return Application(
        name=_str(metadata.get("name")),
        namespace=_str(metadata.get("namespace"), "default"),
        uid=metadata.get("uid") if isinstance(metadata.get("uid"), str) else None,
        generation=_int(metadata.get("generation")),
        shard=sharding.shard_of(body),
        kafka_cluster=_str(_map(spec.get("kafka")).get("cluster"), DEFAULT_KAFKA_CLUSTER),
        topic_defaults=TopicDefaults(
            partitions=_int(defaults.get("partitions")),
            replicas=_int(defaults.get("replicas")),
            config=_str_map(defaults.get("config")),
        ),
        streamlets=tuple(streamlets),
        connections=tuple(connections),
        topics=tuple(topics),
        deletion_policy=DeletionPolicy.DELETE if policy == "Delete" else DeletionPolicy.RETAIN,
        suspend=spec.get("suspend") is True,
        service_account=_str(spec.get("serviceAccountName")) or None,
        unreadable_streamlets=frozenset(unreadable),
    )
