"""The kro ResourceGraphDefinition equivalent to an Application: same children, same gates.

Pure: an Application body and settings in, one RGD (a dict) out. Used by bench/peer.py so that
kro and federator create the very same objects, and unit-tested in tests/unit/test_peer_rgd.py.

How: the Application is compiled by federator's own compiler under SENTINEL names (application
and namespace), so every place the name or namespace appears in a child (names, labels,
annotations, env, the JSON context) can be turned into kro's `${schema.metadata.name}` /
`${schema.metadata.namespace}` by a plain string replacement. Each child becomes one resource:

- a KafkaTopic gets `readyWhen` its Ready condition is True: kro creates a resource's
  dependents only once it is ready, which is DESIGN §4's rule (a streamlet waits for its topics);
- a streamlet child refers to each of its topics that the application creates (annotation
  `federator.io/topics`, one CEL reference per topic), which is how kro learns the dependency;
  its `readyWhen` is its health, so kro's `Ready` means what federator's `Healthy` means;
- `ownerReferences` are dropped (kro tracks its children itself); the KafkaTopics keep the Kafka
  cluster's namespace as a literal.

The instance status carries one field per child with its health (`Healthy`, `Degraded`,
`Progressing`, computed in CEL from the delegate's status as federator.core.delegates does for the
states the simulator writes) and `health`, the roll-up (any Degraded -> Degraded, all Healthy ->
Healthy, else Progressing).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from typing import Any

from federator.core.compiler import compile_application
from federator.core.render import Child
from federator.core.settings import Settings

SENTINEL_NAME = "zpeerappz"
SENTINEL_NAMESPACE = "zpeernsz"
NAME_REF = "${schema.metadata.name}"
NAMESPACE_REF = "${schema.metadata.namespace}"
TOPICS_ANNOTATION = "federator.io/topics"
RGD_API_VERSION = "kro.run/v1alpha1"
HEALTH_FIELD = "health"
MANAGED_BY = "app.kubernetes.io/managed-by"

SPARK_HEALTHY = ("RUNNING", "COMPLETED")
SPARK_DEGRADED = ("FAILED", "SUBMISSION_FAILED", "FAILING", "UNKNOWN", "INVALIDATING")


class RgdError(ValueError):
    """The Application cannot be expressed as an RGD by this generator (says why)."""


def kind_name(app_name: str) -> str:
    """`call-record-aggregator` -> `CallRecordAggregator` (the instance kind kro serves)."""
    parts = [p for p in re.split(r"[^A-Za-z0-9]+", app_name) if p]
    if not parts or not parts[0][0].isalpha():
        raise RgdError(f"cannot make a Kubernetes kind out of {app_name!r}")
    return "".join(p[0].upper() + p[1:] for p in parts)


def plural(kind: str) -> str:
    return kind.lower() + "s"


def resource_id(child: Child, taken: set[str]) -> str:
    """A CEL identifier for a child: `t` + the topic's port, or the kind's initial + streamlet,
    lowerCamelCase (kro ids must be valid CEL identifiers), unique within the graph."""
    if child.topic is not None:
        base, stem = "topic", child.topic.split(".", 1)[-1]
    else:
        base, stem = child.kind[0].lower() + child.kind[1:], child.streamlet or child.name
    words = [w for w in re.split(r"[^A-Za-z0-9]+", stem) if w]
    ident = base + "".join(w[0].upper() + w[1:] for w in words)
    out, n = ident, 2
    while out in taken:
        out, n = f"{ident}{n}", n + 1
    taken.add(out)
    return out


def _templated(value: Any) -> Any:
    """Every string with the sentinel name/namespace made a kro template."""
    if isinstance(value, str):
        return value.replace(SENTINEL_NAMESPACE, NAMESPACE_REF).replace(SENTINEL_NAME, NAME_REF)
    if isinstance(value, Mapping):
        return {k: _templated(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_templated(v) for v in value]
    return value


def health_cel(kind: str, ref: str) -> str:
    """A CEL string expression: the child's health from its delegate's status."""
    if kind == "KafkaTopic":
        conds = f"{ref}.status.?conditions.orValue([])"
        return (
            f"{conds}.exists(c, c.type == 'Ready' && c.status == 'True') ? 'Healthy' : "
            f"({conds}.exists(c, c.type == 'Ready' && c.status == 'False') ? 'Degraded' "
            ": 'Progressing')"
        )
    if kind == "SparkApplication":
        state = f"{ref}.status.?applicationState.?state.orValue('')"
        return (
            f"{state} in {list(SPARK_HEALTHY)} ? 'Healthy' : "
            f"({state} in {list(SPARK_DEGRADED)} ? 'Degraded' : 'Progressing')"
        )
    if kind == "Deployment":
        return (
            f"{ref}.status.?availableReplicas.orValue(0) >= {ref}.spec.?replicas.orValue(1) "
            f"&& {ref}.status.?observedGeneration.orValue(0) >= {ref}.metadata.generation "
            "? 'Healthy' : 'Progressing'"
        )
    if kind == "FlinkDeployment":
        life = f"{ref}.status.?lifecycleState.orValue('')"
        return (
            f"{life} == 'STABLE' ? 'Healthy' : "
            f"({life} in ['FAILED', 'ROLLED_BACK'] ? 'Degraded' : 'Progressing')"
        )
    if kind == "FlinkApplication":
        phase = f"{ref}.status.?phase.orValue('')"
        return (
            f"{phase} == 'Running' ? 'Healthy' : "
            f"({phase} in ['DeployFailed', 'RollingBackJob'] ? 'Degraded' : 'Progressing')"
        )
    raise RgdError(f"no health expression for kind {kind!r}")


def resource_for(child: Child, rid: str, topic_ids: Mapping[str, str]) -> dict[str, Any]:
    """One kro resource for one compiled child."""
    manifest = copy.deepcopy(dict(child.manifest))
    metadata = dict(manifest.get("metadata") or {})
    metadata.pop("ownerReferences", None)
    labels = {k: v for k, v in (metadata.get("labels") or {}).items() if k != MANAGED_BY}
    metadata["labels"] = labels  # kro labels its children managed-by=kro itself
    if child.topic is None:
        # A topic the application does not create (not in the graph) is not gated on: kro
        # would need an externalRef to read it; the bench's applications create all theirs.
        own = [t for t in child.topics if t in topic_ids]
        if own:
            annotations = dict(metadata.get("annotations") or {})
            annotations[TOPICS_ANNOTATION] = ",".join(
                "${" + topic_ids[t] + ".metadata.name}" for t in own
            )
            metadata["annotations"] = annotations
    manifest["metadata"] = metadata
    return {
        "id": rid,
        "template": _templated(manifest),
        "readyWhen": ["${(" + health_cel(child.kind, rid) + ") == 'Healthy'}"],
    }


def generate(
    body: Mapping[str, Any], settings: Settings, *, kind: str | None = None
) -> dict[str, Any]:
    """The RGD for `body`'s children; instances of `kind` (default: from the name) named like
    Applications produce the same children in their namespace as the Application would."""
    name = (body.get("metadata") or {}).get("name")
    if not isinstance(name, str) or not name:
        raise RgdError("the Application has no metadata.name")
    instance_kind = kind or kind_name(name)
    sentinel = {
        **body,
        "metadata": {
            **(body.get("metadata") or {}),
            "name": SENTINEL_NAME,
            "namespace": SENTINEL_NAMESPACE,
            "uid": "peer-bench",
            "generation": 1,
        },
    }
    children = compile_application(sentinel, settings).children
    taken: set[str] = set()
    ids = {c.key: resource_id(c, taken) for c in children}
    topic_ids = {c.topic: ids[c.key] for c in children if c.topic is not None}
    resources = [resource_for(c, ids[c.key], topic_ids) for c in children]
    healths = {ids[c.key]: health_cel(c.kind, ids[c.key]) for c in children}
    status: dict[str, Any] = {rid: "${" + expr + "}" for rid, expr in healths.items()}
    degraded = " || ".join(f"({e}) == 'Degraded'" for e in healths.values())
    healthy = " && ".join(f"({e}) == 'Healthy'" for e in healths.values())
    status[HEALTH_FIELD] = (
        "${" + f"{degraded} ? 'Degraded' : ({healthy} ? 'Healthy' : 'Progressing')" + "}"
    )
    return {
        "apiVersion": RGD_API_VERSION,
        "kind": "ResourceGraphDefinition",
        "metadata": {"name": f"{plural(instance_kind)}.peer.federator.io"},
        "spec": {
            "schema": {
                "apiVersion": "v1alpha1",
                "kind": instance_kind,
                "scope": "Namespaced",
                "spec": {"note": 'string | default=""'},
                "status": status,
            },
            "resources": resources,
        },
    }


def instance(kind: str, name: str, namespace: str) -> dict[str, Any]:
    """An instance of the generated kind (kro's counterpart of POSTing the Application)."""
    return {
        "apiVersion": "kro.run/v1alpha1",
        "kind": kind,
        "metadata": {"name": name, "namespace": namespace},
        "spec": {},
    }


def status_fields(rgd: Mapping[str, Any], instance_name: str) -> dict[str, str]:
    """child name (for an instance named `instance_name`) -> the status field of its health."""
    out = {}
    for resource in rgd["spec"]["resources"]:
        name = resource["template"]["metadata"]["name"].replace(NAME_REF, instance_name)
        out[name] = resource["id"]
    return out
