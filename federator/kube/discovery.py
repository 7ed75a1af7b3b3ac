"""Which delegate CRDs the cluster serves, and at which versions (DESIGN §3).

Asked through the discovery API (small responses; the CRD objects themselves are megabytes),
and cached for a few seconds: a CRD installed later is picked up on the next reconcile after
the cache expires, without a restart.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from kubernetes import client

from federator.core import delegates
from federator.core.delegates import TargetApis
from federator.core.settings import FlinkOperator, KafkaCluster, TopicApiVersion
from federator.kube.client import Kube, KubeError, translated


@dataclass(frozen=True, kw_only=True)
class Discovered:
    """CRD name -> versions the cluster serves, for the delegate kinds federator writes."""

    served: dict[str, tuple[str, ...]]

    @property
    def installed(self) -> frozenset[str]:
        return frozenset(self.served)

    def for_cluster(self, cluster: KafkaCluster | None) -> TargetApis:
        """What to render for an application on `cluster`: pinned or discovered versions."""
        topic_versions = self.served.get(delegates.KAFKA_TOPIC.crd_name, ())
        pinned = cluster.topic_api_version if cluster else TopicApiVersion.AUTO
        if pinned is not TopicApiVersion.AUTO:
            topic_version = pinned.value
        else:
            topic_version = next(
                (v for v in delegates.KAFKA_TOPIC.versions if v in topic_versions), "v1"
            )
        flink = frozenset(
            op for op, delegate in delegates.FLINK.items() if delegate.crd_name in self.served
        )
        return TargetApis(
            topic_version=topic_version,
            flink_operators=flink or frozenset({FlinkOperator.APACHE}),
        )


def discover(kube: Kube) -> Discovered:
    """One group listing, then one resource listing per delegate group-version present."""
    with translated("discover API groups"):
        groups = client.ApisApi(kube.api).get_api_versions(_request_timeout=(5.0, 30.0)).groups
    versions = {g.name: {v.version for v in g.versions} for g in groups}
    served: dict[str, tuple[str, ...]] = {}
    for delegate in delegates.ALL:
        if delegate.builtin:
            continue
        found = []
        for version in delegate.versions:
            if version not in versions.get(delegate.group, set()):
                continue
            try:
                with translated(f"discover {delegate.group}/{version}"):
                    resources = kube.custom.get_api_resources(
                        delegate.group, version, _request_timeout=(5.0, 30.0)
                    )
            except KubeError:
                continue
            if any(r.name == delegate.plural for r in resources.resources):
                found.append(version)
        if found:
            served[delegate.crd_name] = tuple(found)
    return Discovered(served=served)


@dataclass
class DiscoveryCache:
    """`discover`, at most once per `ttl` seconds (thread-safe)."""

    kube: Kube
    ttl: float = 10.0
    clock: Callable[[], float] = time.monotonic
    _value: Discovered | None = None
    _at: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self) -> Discovered:
        with self._lock:
            if self._value is None or self.clock() - self._at > self.ttl:
                self._value = discover(self.kube)
                self._at = self.clock()
            return self._value

    def invalidate(self) -> None:
        with self._lock:
            self._value = None
