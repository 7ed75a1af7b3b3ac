"""The registry of delegates: which template, kind and API each child is written for.

Adding a runtime means adding one entry here and one template; nothing else switches on kinds.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

from federator.core.settings import FlinkOperator, TopicApiVersion


@dataclass(frozen=True, kw_only=True)
class Delegate:
    """A delegate operator's custom resource (or a core kind) that federator renders."""

    kind: str
    group: str
    versions: tuple[str, ...]
    """Versions federator can write, preferred first."""
    plural: str
    template: str
    name_limit: int
    """Longest metadata.name the delegate copes with (names feed its pods, services, labels)."""
    operator: str
    """What to install when the CRD is missing (shown in DelegateNotInstalled messages)."""
    required: tuple[tuple[str, ...], ...] = ()
    """Runtime-block fields the user must set (no sane default exists), as paths in the spec."""

    def api_version(self, version: str | None = None) -> str:
        v = version or self.versions[0]
        return f"{self.group}/{v}" if self.group else v

    @property
    def crd_name(self) -> str:
        return f"{self.plural}.{self.group}"

    @property
    def builtin(self) -> bool:
        """Served by every cluster (no CRD to install)."""
        return self.group in ("", "apps")

    def served(self, installed: Collection[str]) -> bool:
        """Whether the cluster serves this kind, given the names of its installed CRDs."""
        return self.builtin or self.crd_name in installed


KAFKA_TOPIC = Delegate(
    kind="KafkaTopic",
    group="kafka.strimzi.io",
    versions=("v1", "v1beta2"),
    plural="kafkatopics",
    template="kafkatopic.yaml.j2",
    name_limit=253,
    operator="the Strimzi cluster operator with its topic operator (kafkatopics.kafka.strimzi.io)",
)
SPARK_APPLICATION = Delegate(
    kind="SparkApplication",
    group="sparkoperator.k8s.io",
    versions=("v1beta2",),
    plural="sparkapplications",
    template="sparkapplication.yaml.j2",
    name_limit=63,
    operator="the Kubeflow Spark operator (sparkapplications.sparkoperator.k8s.io)",
    required=(("mainApplicationFile",),),
)
FLINK_DEPLOYMENT = Delegate(
    kind="FlinkDeployment",
    group="flink.apache.org",
    versions=("v1beta1",),
    plural="flinkdeployments",
    template="flinkdeployment.yaml.j2",
    # The Apache operator refuses longer FlinkDeployment names (its JobManager service names).
    name_limit=45,
    operator="the Apache Flink Kubernetes operator (flinkdeployments.flink.apache.org)",
    required=(("job", "jarURI"),),
)
FLINK_APPLICATION = Delegate(
    kind="FlinkApplication",
    group="flink.k8s.io",
    versions=("v1beta1",),
    plural="flinkapplications",
    template="flinkapplication.yaml.j2",
    name_limit=45,
    operator="Lyft's flinkk8soperator (flinkapplications.flink.k8s.io)",
    required=(("jarName",), ("entryClass",)),
)
DEPLOYMENT = Delegate(
    kind="Deployment",
    group="apps",
    versions=("v1",),
    plural="deployments",
    template="deployment.yaml.j2",
    name_limit=63,
    operator="(built into Kubernetes)",
)

ALL: tuple[Delegate, ...] = (
    KAFKA_TOPIC,
    SPARK_APPLICATION,
    FLINK_DEPLOYMENT,
    FLINK_APPLICATION,
    DEPLOYMENT,
)
BY_KIND: Mapping[str, Delegate] = {d.kind: d for d in ALL}
FLINK: Mapping[FlinkOperator, Delegate] = {
    FlinkOperator.APACHE: FLINK_DEPLOYMENT,
    FlinkOperator.LYFT: FLINK_APPLICATION,
}


@dataclass(frozen=True, kw_only=True)
class Served:
    """What the target cluster serves: discovered by the operator, or assumed offline."""

    topic_version: str = "v1"
    flink_operators: frozenset[FlinkOperator] = frozenset(FlinkOperator)

    @classmethod
    def offline(cls, pinned: TopicApiVersion = TopicApiVersion.AUTO) -> Served:
        version = "v1" if pinned is TopicApiVersion.AUTO else pinned.value
        return cls(topic_version=version)
