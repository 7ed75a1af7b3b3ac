"""The operator's settings: one nested, frozen dataclass tree (pure data, parsed from a mapping).

Platform teams declare Kafka clusters once (Helm values -> ConfigMap -> this tree); applications
only name them, so an Application can never choose an arbitrary namespace for a child (DESIGN §2).
Reading the file and the environment is the shell's job (`federator.settings_file`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum, StrEnum
from typing import Any

from federator.core import limits as app_limits
from federator.core import sharding, topicpolicy
from federator.core.podsecurity import Level

FLINK_VERSION = re.compile(r"v[0-9]+_[0-9]+")
"""A FlinkVersion enum name of the Apache Flink operator (`v1_19`)."""


class TopicApiVersion(StrEnum):
    """Which Strimzi API serves KafkaTopics; `auto` asks the API server (v1 when offline)."""

    AUTO = "auto"
    V1 = "v1"
    V1BETA2 = "v1beta2"


class FlinkOperator(StrEnum):
    """The Flink operator a streamlet's child is written for."""

    APACHE = "apache"  # flink.apache.org FlinkDeployment
    LYFT = "lyft"  # flink.k8s.io FlinkApplication


class FlinkPreference(StrEnum):
    """Settings-level choice; `auto` picks whichever Flink CRD the cluster serves (apache first)."""

    AUTO = "auto"
    APACHE = "apache"
    LYFT = "lyft"


class SettingsError(ValueError):
    """The settings document is wrong; the message says which key and why."""


@dataclass(frozen=True, kw_only=True)
class KafkaCluster:
    """A named Kafka cluster that applications refer to by `spec.kafka.cluster`."""

    name: str
    """The name applications use (`spec.kafka.cluster`)."""
    strimzi_cluster: str
    """The Strimzi `Kafka` resource name: the `strimzi.io/cluster` label on every KafkaTopic."""
    namespace: str
    """Where the Strimzi topic operator watches KafkaTopics; topics are created there."""
    bootstrap_servers: str
    """Handed to every streamlet as FEDERATOR_KAFKA_BOOTSTRAP_SERVERS."""
    topic_api_version: TopicApiVersion = TopicApiVersion.AUTO
    """Pin the KafkaTopic API version, or `auto` to discover it."""
    topic_policy: topicpolicy.TopicPolicy = field(default_factory=topicpolicy.TopicPolicy)
    """Which namespaces may use the cluster and the prefix of their topics (`allowedNamespaces`,
    `topicPrefix`); the default allows every namespace and adds no prefix."""


@dataclass(frozen=True, kw_only=True)
class FlinkSettings:
    default_operator: FlinkPreference = FlinkPreference.AUTO
    """Used when a flink streamlet does not set `flinkOperator`."""
    flink_version: str = "v1_20"
    """Apache FlinkDeployment `spec.flinkVersion` (FlinkVersion enum of the operator): one the
    installed operator reads (1.7.0 stops at v1_19; an unknown value shut it down). Checked
    against the installed CRD before every apply (`crdcheck`)."""
    supported_versions: tuple[str, ...] = ()
    """The `flinkVersion` values the running Apache Flink operator reads (its Java enum), for a
    cluster whose FlinkDeployment CRD allows more (a CRD newer than the operator: the API server
    stores the object, the operator cannot read it and shuts down). Empty: what the installed
    CRD allows. Checked before every apply, streamlet overrides included."""


@dataclass(frozen=True, kw_only=True)
class OperatorSettings:
    namespaces: tuple[str, ...] = ()
    """Namespaces watched for Applications; empty means all namespaces."""
    resync_seconds: float = 300.0
    """Seconds between level-based resyncs of every Application (drift repair)."""
    metrics_port: int = 8080
    """Prometheus metrics port (0 disables the endpoint)."""
    liveness_port: int = 8081
    """kopf's liveness endpoint port."""
    status_debounce_seconds: float = 0.2
    """The longest a child event waits before its application is reconciled: events closer
    together than 10 ms coalesce into one reconcile (and at most one status write) for up to
    this long; an isolated event is acted on at once."""
    metrics_per_application: bool = False
    """Also serve per-Application metric series (phase, children by kind and health, status
    writes). Off by default: they grow with the number of Applications (850 made a 2.5 MB
    scrape), and each Application's status already says the same; the totals by phase and by
    kind and health are always served."""


@dataclass(frozen=True, kw_only=True)
class PodSecuritySettings:
    """What the pods of every Application must meet before anything is applied (DESIGN §3)."""

    level: Level = Level.BASELINE
    """The Pod Security Standards level: privileged (no check), baseline or restricted."""
    allowed_service_accounts: tuple[tuple[str, tuple[str, ...]], ...] = ()
    """ServiceAccounts pods may run as besides `default`, by namespace (`*`: every namespace);
    the name `*` allows any. Pairs rather than a dict keep the settings tree hashable."""

    def service_account_allowed(self, namespace: str, name: str) -> bool:
        """`default` (what a pod gets when it names none) always; others when listed."""
        if name == "default":
            return True
        return any(
            where in ("*", namespace) and (name in names or "*" in names)
            for where, names in self.allowed_service_accounts
        )

    def allowed_in(self, namespace: str) -> tuple[str, ...]:
        """The ServiceAccounts allowed in `namespace`, for messages."""
        names = {
            n
            for where, ns in self.allowed_service_accounts
            if where in ("*", namespace)
            for n in ns
        }
        return ("default", *sorted(names - {"default"}))


@dataclass(frozen=True, kw_only=True)
class ImpersonationSettings:
    """Whose rights write an Application's children in its own namespace (DESIGN §3, tenancy):
    a ServiceAccount of that namespace, impersonated, as Flux's kustomize-controller does. The
    defaults change nothing for an existing installation: without a ServiceAccount named by
    the spec or here, children are written with federator's own identity."""

    default_service_account: str = ""
    """The ServiceAccount (of the Application's namespace) impersonated when the spec names
    none (`spec.serviceAccountName`); empty: none."""
    require_service_account: bool = False
    """The lock-down: an Application naming no ServiceAccount, when there is no default, is
    invalid (`spec.serviceAccountName`) instead of being written with federator's identity."""

    def service_account(self, requested: str | None) -> str | None:
        """The ServiceAccount to impersonate: the spec's, else the default, else None
        (federator's own identity, or a problem under the lock-down)."""
        return requested or self.default_service_account or None


@dataclass(frozen=True, kw_only=True)
class ShardingSettings:
    """Which Applications this operator process serves (docs/sharding.md)."""

    shard: str | None = None
    """This process's shard: it serves the Applications labelled `federator.io/shard: <shard>`
    and their children. None (the default shard) serves those without the label."""


@dataclass(frozen=True, kw_only=True)
class Settings:
    kafka_clusters: tuple[KafkaCluster, ...] = field(default_factory=tuple)
    flink: FlinkSettings = field(default_factory=FlinkSettings)
    operator: OperatorSettings = field(default_factory=OperatorSettings)
    pod_security: PodSecuritySettings = field(default_factory=PodSecuritySettings)
    impersonation: ImpersonationSettings = field(default_factory=ImpersonationSettings)
    limits: app_limits.Limits = field(default_factory=app_limits.Limits)
    """How big one Application may be (`limits.maxStreamlets`, `limits.maxChildren`)."""
    sharding: ShardingSettings = field(default_factory=ShardingSettings)

    def kafka_cluster(self, name: str) -> KafkaCluster | None:
        for cluster in self.kafka_clusters:
            if cluster.name == name:
                return cluster
        return None

    @property
    def kafka_cluster_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.kafka_clusters)


def _get(data: Mapping[str, Any], key: str, kind: type, where: str, default: Any = None) -> Any:
    value = data.get(key, default)
    if value is None:
        return default
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise SettingsError(f"{where}.{key}: expected {kind.__name__}, got {value!r}")
    return value


def _enum(enum: type[Enum], value: Any, where: str) -> Any:
    try:
        return enum(value)
    except ValueError:
        allowed = ", ".join(str(m.value) for m in enum)
        raise SettingsError(f"{where}: {value!r} is not one of {allowed}") from None


def _reject_unknown(data: Mapping[str, Any], known: set[str], where: str) -> None:
    unknown = sorted(set(data) - known)
    if unknown:
        raise SettingsError(f"{where}: unknown key(s) {', '.join(unknown)}")


_SA_NAME = re.compile(r"^(\*|[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*)$")


def _pod_security(data: Mapping[str, Any]) -> PodSecuritySettings:
    where = "settings.podSecurity"
    raw = _get(data, "podSecurity", Mapping, "settings", {})
    _reject_unknown(raw, {"level", "allowedServiceAccounts"}, where)
    level = _enum(Level, raw.get("level", "baseline"), f"{where}.level")
    allowed = []
    accounts = _get(raw, "allowedServiceAccounts", Mapping, where, {})
    for namespace, names in accounts.items():
        at = f"{where}.allowedServiceAccounts.{namespace}"
        if not isinstance(namespace, str) or not _SA_NAME.match(namespace):
            raise SettingsError(f"{at}: expected a namespace name or '*'")
        if not isinstance(names, list) or not all(
            isinstance(n, str) and _SA_NAME.match(n) for n in names
        ):
            raise SettingsError(f"{at}: expected a list of ServiceAccount names (or '*' for any)")
        allowed.append((namespace, tuple(names)))
    return PodSecuritySettings(level=level, allowed_service_accounts=tuple(allowed))


_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


def _impersonation(data: Mapping[str, Any]) -> ImpersonationSettings:
    where = "settings.impersonation"
    raw = _get(data, "impersonation", Mapping, "settings", {})
    _reject_unknown(raw, {"defaultServiceAccount", "requireServiceAccount"}, where)
    default = _get(raw, "defaultServiceAccount", str, where, "")
    if default and (len(default) > 253 or not _SUBDOMAIN.fullmatch(default)):
        raise SettingsError(
            f"{where}.defaultServiceAccount: {default!r} is not a ServiceAccount name "
            "(a DNS-1123 subdomain), or empty for none"
        )
    return ImpersonationSettings(
        default_service_account=default,
        require_service_account=_get(raw, "requireServiceAccount", bool, where, False),
    )


def parse_settings(data: Mapping[str, Any] | None) -> Settings:
    """Build Settings from a camelCase mapping (the YAML file / Helm values shape)."""
    if data is None:
        return Settings()
    if not isinstance(data, Mapping):
        raise SettingsError("settings: expected a mapping at the top level")
    _reject_unknown(
        data,
        {
            "kafkaClusters",
            "flink",
            "operator",
            "podSecurity",
            "impersonation",
            "limits",
            "sharding",
        },
        "settings",
    )
    clusters = []
    seen: set[str] = set()
    for i, raw in enumerate(_get(data, "kafkaClusters", list, "settings", [])):
        where = f"settings.kafkaClusters[{i}]"
        if not isinstance(raw, Mapping):
            raise SettingsError(f"{where}: expected a mapping")
        _reject_unknown(
            raw,
            {
                "name",
                "strimziCluster",
                "namespace",
                "bootstrapServers",
                "topicApiVersion",
                "allowedNamespaces",
                "topicPrefix",
                "sharedTopics",
            },
            where,
        )
        for required in ("name", "strimziCluster", "namespace", "bootstrapServers"):
            if not isinstance(raw.get(required), str) or not raw[required]:
                raise SettingsError(f"{where}.{required}: required non-empty string")
        if raw["name"] in seen:
            raise SettingsError(f"{where}.name: duplicate cluster name {raw['name']!r}")
        seen.add(raw["name"])
        try:
            policy = topicpolicy.parse(raw)
        except topicpolicy.PolicyError as exc:
            raise SettingsError(f"{where}.{exc}") from None
        clusters.append(
            KafkaCluster(
                name=raw["name"],
                strimzi_cluster=raw["strimziCluster"],
                namespace=raw["namespace"],
                bootstrap_servers=raw["bootstrapServers"],
                topic_api_version=_enum(
                    TopicApiVersion, raw.get("topicApiVersion", "auto"), f"{where}.topicApiVersion"
                ),
                topic_policy=policy,
            )
        )
    flink_raw = _get(data, "flink", Mapping, "settings", {})
    _reject_unknown(
        flink_raw, {"defaultOperator", "flinkVersion", "supportedVersions"}, "settings.flink"
    )
    flink_version = _get(flink_raw, "flinkVersion", str, "settings.flink", "v1_20")
    supported = _get(flink_raw, "supportedVersions", list, "settings.flink", [])
    if not all(isinstance(v, str) and FLINK_VERSION.fullmatch(v) for v in supported):
        raise SettingsError(
            f"settings.flink.supportedVersions: expected FlinkVersion names like v1_19, "
            f"got {supported!r}"
        )
    if supported and flink_version not in supported:
        raise SettingsError(
            f"settings.flink.flinkVersion: {flink_version!r} is not one of "
            f"settings.flink.supportedVersions ({', '.join(supported)}): the Flink operator "
            "could not read the FlinkDeployments federator renders"
        )
    flink = FlinkSettings(
        default_operator=_enum(
            FlinkPreference,
            flink_raw.get("defaultOperator", "auto"),
            "settings.flink.defaultOperator",
        ),
        flink_version=flink_version,
        supported_versions=tuple(supported),
    )
    op_raw = _get(data, "operator", Mapping, "settings", {})
    where = "settings.operator"
    _reject_unknown(
        op_raw,
        {
            "namespaces",
            "resyncSeconds",
            "metricsPort",
            "livenessPort",
            "statusDebounceSeconds",
            "metricsPerApplication",
        },
        where,
    )
    namespaces = _get(op_raw, "namespaces", list, where, [])
    if not all(isinstance(n, str) and n for n in namespaces):
        raise SettingsError(f"{where}.namespaces: expected a list of namespace names")
    operator = OperatorSettings(
        namespaces=tuple(namespaces),
        resync_seconds=_get(op_raw, "resyncSeconds", float, where, 300.0),
        metrics_port=_get(op_raw, "metricsPort", int, where, 8080),
        liveness_port=_get(op_raw, "livenessPort", int, where, 8081),
        status_debounce_seconds=_get(op_raw, "statusDebounceSeconds", float, where, 0.2),
        metrics_per_application=_get(op_raw, "metricsPerApplication", bool, where, False),
    )
    return Settings(
        kafka_clusters=tuple(clusters),
        flink=flink,
        operator=operator,
        pod_security=_pod_security(data),
        impersonation=_impersonation(data),
        limits=_limits(data),
        sharding=_sharding(data),
    )


def _sharding(data: Mapping[str, Any]) -> ShardingSettings:
    where = "settings.sharding"
    raw = _get(data, "sharding", Mapping, "settings", {})
    _reject_unknown(raw, {"shard"}, where)
    shard = _get(raw, "shard", str, where, "") or None
    if shard is not None:
        try:
            sharding.check_name(shard)
        except sharding.ShardError as exc:
            raise SettingsError(f"{where}.shard: {exc}") from None
    return ShardingSettings(shard=shard)


def _limits(data: Mapping[str, Any]) -> app_limits.Limits:
    try:
        return app_limits.parse(_get(data, "limits", Mapping, "settings", {}))
    except app_limits.LimitsError as exc:
        where = "settings.limits" + (f".{exc.key}" if exc.key else "")
        raise SettingsError(f"{where}: {exc}") from None
