"""The pods a rendered child will run, per delegate kind, and where each pod field came from.

A delegate builds its pods from several places of its own resource: a Deployment from one pod
template; a SparkApplication from `driver`/`executor` fields that map to pod fields (and from
`sparkConf` keys); a FlinkDeployment by layering `podTemplate` and the JobManager's or
TaskManager's own `podTemplate`, plus `serviceAccount` and `flinkConfiguration` keys. Each
delegate's `Delegate.pods` (in its own module) says which field of the child lands where in which
pod, built from the roles defined here.

Each pod comes with the child path of every field, so a problem found in the pod is reported
where the user wrote it. Two views are given: every layer alone (a forbidden value is refused
wherever it is written, even when another layer might override it) and the merged pods (what
a level requires must hold in the pod that runs). The Flink operator merges lists by position
or, when configured, by name: merged pods are built both ways.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from federator.core import flinkconf

Path = tuple[str | int, ...]
Placement = tuple[Path, Any, bool]
"""(pod path, value, append): a value a configuration key puts into the pod."""


@dataclass(frozen=True, kw_only=True)
class Place:
    """A subtree of the child that becomes part of a pod."""

    source: Path
    """Where in the child (`("spec", "driver", "podSecurityContext")`)."""
    target: Path
    """Where in the pod template (`("spec", "securityContext")`); `()` is the whole template."""
    keys: tuple[str, ...] | None = None
    """Only these keys of the source (the container fields of Spark's `driver`)."""
    name: str | None = None
    """A name the delegate gives the node it builds (Spark's main container)."""
    append: bool = False
    """The source list is appended to the list at `target` (sidecars after the main container)."""


@dataclass(frozen=True, kw_only=True)
class Conf:
    """A string map of delegate configuration whose keys set pod fields."""

    source: Path
    read: Callable[[str, Any], Iterator[Placement]]
    nested: bool = False
    """Nested maps are options too, their keys joined with dots (`flinkconf`)."""


@dataclass(frozen=True, kw_only=True)
class Role:
    """One kind of pod a child runs (`driver`, `jobmanager`), built from layers: later layers
    override earlier ones."""

    name: str
    layers: tuple[tuple[Place, ...], ...]
    conf: tuple[Conf, ...] = ()
    containers: tuple[str, ...] = ()
    """Containers the delegate adds with no field of its own to configure them (Lyft)."""


@dataclass(frozen=True, kw_only=True)
class PodSources:
    roles: tuple[Role, ...]
    own_service_accounts: frozenset[str] = frozenset()
    """ServiceAccounts federator's own template names for this kind (not the author's choice)."""


# -- configuration keys ------------------------------------------------------------------------


def _spark_conf(role: str) -> Callable[[str, Any], Iterator[Placement]]:
    """Spark's own pod settings (spark-submit reads them when it builds the pods)."""
    prefix = f"spark.kubernetes.{role}."

    def read(key: str, value: Any) -> Iterator[Placement]:
        if key == f"spark.kubernetes.authenticate.{role}.serviceAccountName":
            yield ("spec", "serviceAccountName"), value, False
        elif key.startswith(prefix + "annotation."):
            yield ("metadata", "annotations", key[len(prefix + "annotation.") :]), value, False
        elif key.startswith(prefix + "volumes."):
            parts = key[len(prefix + "volumes.") :].split(".")
            if len(parts) >= 2:
                volume = {"name": parts[1], parts[0]: {}}
                yield ("spec", "volumes"), [volume], True

    return read


def _flag(value: Any) -> Any:
    """Flink reads booleans from strings; anything else stays as written (and is refused)."""
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return value


FLINK_POD_OPTIONS: Mapping[str, tuple[str, ...]] = {
    "KUBERNETES_SERVICE_ACCOUNT": ("kubernetes.service-account",),
    "JOB_MANAGER_SERVICE_ACCOUNT": (
        "kubernetes.jobmanager.service-account",
        "kubernetes.service-account",
    ),
    "TASK_MANAGER_SERVICE_ACCOUNT": (
        "kubernetes.taskmanager.service-account",
        "kubernetes.service-account",
    ),
    "KUBERNETES_HOSTNETWORK_ENABLED": ("kubernetes.hostnetwork.enabled",),
    "JOB_MANAGER_ANNOTATIONS": ("kubernetes.jobmanager.annotations",),
    "TASK_MANAGER_ANNOTATIONS": ("kubernetes.taskmanager.annotations",),
}
"""The Flink options that set fields of the JobManager's and TaskManager's pods, by their
`KubernetesConfigOptions` field: the key, then the fallback keys Flink also reads it from. As
Flink 1.17.1 (the real operator's) declares them: an integration test reads them from its jar."""
_ROLE_OPTIONS = {"jobmanager": "JOB_MANAGER", "taskmanager": "TASK_MANAGER"}


def _flink_conf(role: str) -> Callable[[str, Any], Iterator[Placement]]:
    """Flink's native Kubernetes options that set pod fields of the JobManager/TaskManager
    (`FLINK_POD_OPTIONS`), each under every key Flink reads it from: the role's own key and its
    fallback, and a map option in its string and prefix-map forms."""
    field = _ROLE_OPTIONS[role]
    service_account = FLINK_POD_OPTIONS[f"{field}_SERVICE_ACCOUNT"]
    (host_network,) = FLINK_POD_OPTIONS["KUBERNETES_HOSTNETWORK_ENABLED"]
    (annotations,) = FLINK_POD_OPTIONS[f"{field}_ANNOTATIONS"]

    def read(key: str, value: Any) -> Iterator[Placement]:
        if key in service_account:
            yield ("spec", "serviceAccountName"), value, False
        elif key == host_network:
            yield ("spec", "hostNetwork"), _flag(value), False
        elif key == annotations or key.startswith(annotations + "."):
            for name, text, _ in flinkconf.map_option({key: value}, annotations):
                yield ("metadata", "annotations", name), text, False

    return read


# -- the table ---------------------------------------------------------------------------------


def spark_role(role: str) -> Role:
    at: Path = ("spec", role)
    return Role(
        name=role,
        layers=(
            (Place(source=(*at, "template"), target=()),),
            (
                Place(source=(*at, "annotations"), target=("metadata", "annotations")),
                Place(source=(*at, "serviceAccount"), target=("spec", "serviceAccountName")),
                Place(source=(*at, "hostNetwork"), target=("spec", "hostNetwork")),
                Place(source=(*at, "podSecurityContext"), target=("spec", "securityContext")),
                Place(source=("spec", "volumes"), target=("spec", "volumes")),
                Place(source=(*at, "initContainers"), target=("spec", "initContainers")),
                Place(
                    source=at,
                    target=("spec", "containers", 0),
                    keys=("securityContext", "lifecycle", "ports"),
                    name=f"spark-kubernetes-{role}",
                ),
                Place(source=(*at, "sidecars"), target=("spec", "containers"), append=True),
            ),
        ),
        conf=(Conf(source=("spec", "sparkConf"), read=_spark_conf(role)),),
    )


def apache_flink_role(role: str) -> Role:
    return Role(
        name=role.lower(),
        layers=(
            (Place(source=("spec", "podTemplate"), target=()),),
            (Place(source=("spec", role, "podTemplate"), target=()),),
            (Place(source=("spec", "serviceAccount"), target=("spec", "serviceAccountName")),),
        ),
        conf=(
            Conf(
                source=("spec", "flinkConfiguration"), read=_flink_conf(role.lower()), nested=True
            ),
        ),
    )


def lyft_flink_role(role: str) -> Role:
    return Role(
        name=role,
        layers=(
            (
                Place(source=("spec", "serviceAccountName"), target=("spec", "serviceAccountName")),
                Place(source=("spec", "securityContext"), target=("spec", "securityContext")),
                Place(source=("spec", "volumes"), target=("spec", "volumes")),
            ),
        ),
        containers=(role,),
    )


POD_TEMPLATE = Role(name="pod", layers=((Place(source=("spec", "template"), target=()),),))
"""A Deployment's (or any workload's) one pod template at spec.template."""


# -- building pods with their origins ----------------------------------------------------------


@dataclass(frozen=True)
class _Node:
    """A value of the pod with the child path it was written at (None: set by the delegate)."""

    at: Path | None
    value: Any  # dict[str, _Node] | list[_Node] | a scalar


UNREAD = frozenset(
    {"env", "envFrom", "volumeMounts", "resources", "args", "command", "labels", "affinity"}
)
"""Bulky fields no Pod Security Standards control reads (the wiring env is most of a pod):
left out of the pods, which keeps the check cheap."""


def _annotate(value: Any, at: Path | None, *, extend: bool = True) -> _Node:
    def sub(step: str | int) -> Path | None:
        return (*at, step) if at is not None and extend else at

    if isinstance(value, Mapping):
        return _Node(
            at,
            {
                str(k): _annotate(v, sub(str(k)), extend=extend)
                for k, v in value.items()
                if k not in UNREAD
            },
        )
    if isinstance(value, list):
        return _Node(at, [_annotate(v, sub(i), extend=extend) for i, v in enumerate(value)])
    return _Node(at, value)


def _get(manifest: Mapping[str, Any], path: Path) -> Any:
    node: Any = manifest
    for step in path:
        if isinstance(step, str) and isinstance(node, Mapping):
            node = node.get(step)
        elif isinstance(step, int) and isinstance(node, list) and 0 <= step < len(node):
            node = node[step]
        else:
            return None
    return node


def _put(root: _Node, target: Path, node: _Node, *, append: bool) -> _Node:
    """`root` with `node` at `target` (intermediate maps created, lists extended)."""
    if not target:
        return _overlay(root, node, by_name=False)
    step, rest = target[0], target[1:]
    if isinstance(step, int):
        items = list(root.value) if isinstance(root.value, list) else []
        while len(items) <= step:
            items.append(_Node(None, {}))
        items[step] = _put(items[step], rest, node, append=append) if rest else node
        return _Node(root.at, items)
    children = dict(root.value) if isinstance(root.value, dict) else {}
    current = children.get(step)
    if rest:
        children[step] = _put(current or _Node(None, {}), rest, node, append=append)
    elif append and current is not None and isinstance(current.value, list):
        extra = node.value if isinstance(node.value, list) else [node]
        children[step] = _Node(current.at, [*current.value, *extra])
    else:
        children[step] = node
    return _Node(root.at, children)


def _named(items: list[_Node]) -> bool:
    return bool(items) and all(
        isinstance(i.value, dict) and isinstance(_name(i), str) for i in items
    )


def _name(item: _Node) -> Any:
    name = item.value.get("name") if isinstance(item.value, dict) else None
    return name.value if name is not None else None


def _overlay(base: _Node, over: _Node, *, by_name: bool) -> _Node:
    """`over` merged over `base` as the Flink operator merges pod templates: maps key by key;
    lists by position, or by item name when `by_name`; anything else replaced."""
    if isinstance(base.value, dict) and isinstance(over.value, dict):
        merged = dict(base.value)
        for key, value in over.value.items():
            merged[key] = _overlay(merged[key], value, by_name=by_name) if key in merged else value
        return _Node(over.at if over.at is not None else base.at, merged)
    if isinstance(base.value, list) and isinstance(over.value, list):
        if by_name and _named(base.value) and _named(over.value):
            items = list(base.value)
            index = {_name(item): n for n, item in enumerate(items)}
            for item in over.value:
                if _name(item) in index:
                    n = index[_name(item)]
                    items[n] = _overlay(items[n], item, by_name=by_name)
                else:
                    items.append(item)
        else:
            items = [
                _overlay(b, o, by_name=by_name)
                for b, o in zip(base.value, over.value, strict=False)
            ]
            longer = base.value if len(base.value) > len(over.value) else over.value
            items += longer[len(items) :]
        return _Node(over.at if over.at is not None else base.at, items)
    return over


def _plain(node: _Node, at: Path, origins: dict[Path, Path | None]) -> Any:
    origins[at] = node.at
    if isinstance(node.value, dict):
        return {k: _plain(v, (*at, k), origins) for k, v in node.value.items()}
    if isinstance(node.value, list):
        return [_plain(v, (*at, i), origins) for i, v in enumerate(node.value)]
    return node.value


@dataclass(frozen=True, kw_only=True)
class Pod:
    """A pod template (or one layer of it) and the child path of each of its fields."""

    kind: str
    role: str
    template: Mapping[str, Any]
    origins: Mapping[Path, Path | None] = field(repr=False)

    def origin(self, path: Path) -> Path | None:
        """The child path of a pod path: the nearest written ancestor, then the rest of the
        path (where a missing field belongs). None: the delegate sets it, no field of its
        resource does."""
        for n in range(len(path), -1, -1):
            if path[:n] in self.origins:
                at = self.origins[path[:n]]
                return None if at is None else (*at, *path[n:])
        return None


def _pod(kind: str, role: str, root: _Node) -> Pod:
    origins: dict[Path, Path | None] = {}
    template = _plain(root, (), origins)
    return Pod(kind=kind, role=role, template=template, origins=origins)


def _layer(manifest: Mapping[str, Any], places: tuple[Place, ...]) -> _Node | None:
    root: _Node | None = None
    for place in places:
        value = _get(manifest, place.source)
        if value is None:
            continue
        if place.keys is not None:
            value = (
                {k: v for k, v in value.items() if k in place.keys}
                if isinstance(value, Mapping)
                else {}
            )
        node = _annotate(value, place.source)
        if place.name is not None and isinstance(node.value, dict):
            node = _Node(node.at, {"name": _Node(None, place.name), **node.value})
        root = _put(root or _Node(None, {}), place.target, node, append=place.append)
    return root


def _conf_layer(manifest: Mapping[str, Any], role: Role) -> _Node | None:
    root: _Node | None = None
    for conf in role.conf:
        values = _get(manifest, conf.source)
        if not isinstance(values, Mapping):
            continue
        options = (
            [(e.key, e.value, e.path) for e in flinkconf.entries(values)]
            if conf.nested
            else [(str(k), v, (str(k),)) for k, v in values.items()]
        )
        for key, value, written in options:
            for target, placed, append in conf.read(key, value):
                node = _annotate(placed, (*conf.source, *written), extend=False)
                root = _put(root or _Node(None, {}), target, node, append=append)
    return root


def _delegate_layer(role: Role) -> _Node | None:
    if not role.containers:
        return None
    containers = [_Node(None, {"name": _Node(None, name)}) for name in role.containers]
    return _Node(None, {"spec": _Node(None, {"containers": _Node(None, containers)})})


@dataclass(frozen=True, kw_only=True)
class ChildPods:
    layers: tuple[Pod, ...]
    """Each layer alone: where forbidden values and ServiceAccounts are looked for."""
    merged: tuple[Pod, ...]
    """The pods as the delegate merges them (both list merges): where requirements must hold."""


def pods(kind: str, manifest: Mapping[str, Any], sources: PodSources) -> ChildPods:
    """The pods of a rendered child, from the pods its delegate says it makes
    (`Delegate.pods`)."""
    layers: list[Pod] = []
    merged: list[Pod] = []
    for role in sources.roles:
        found = [_layer(manifest, places) for places in role.layers]
        found += [_conf_layer(manifest, role)]
        nodes = [n for n in found if n is not None]
        alone = [_pod(kind, role.name, n) for n in nodes]
        layers += alone
        base = _delegate_layer(role)
        if base is None and len(alone) == 1:
            merged.append(alone[0])  # nothing to merge: the same pod (checked once)
            continue
        for by_name in (False, True):
            root = base or _Node(None, {})
            for node in nodes:
                root = _overlay(root, node, by_name=by_name)
            merged.append(_pod(kind, role.name, root))
    return ChildPods(layers=tuple(layers), merged=tuple(merged))
