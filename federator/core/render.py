"""Render child manifests from templates/ in a sandboxed Jinja environment.

Injection is impossible by construction, not by escaping: the `data` filter does not print a
value, it prints an opaque token; the YAML text is parsed, and each token is then replaced by
the value itself. A template cannot splice raw text either: `finalize` refuses any expression
output that is not a token. So no name or config value can add keys, end a document or run
template code. Parsed skeletons are cached by text, which also makes rendering fast.
"""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import jinja2
import yaml
from jinja2.sandbox import ImmutableSandboxedEnvironment

from federator.core import appkind, delegates, naming, sharding
from federator.core.delegates import Delegate, TargetApis
from federator.core.delegates.base import SpecShape
from federator.core.model import Application, PortRef, Runtime, Streamlet
from federator.core.problems import Code, InvalidSpec, Problem, format_path
from federator.core.resources import templates_dir
from federator.core.settings import FlinkOperator, FlinkPreference, KafkaCluster, Settings
from federator.core.topology import Topic, Topology

APP_API_VERSION = appkind.API_VERSION
APP_KIND = appkind.KIND
TOPIC_WAVE = 0
STREAMLET_WAVE = 1

_TOKEN_PREFIX = "\x00federator-value-"  # a NUL never survives a YAML text of ours unnoticed
_TOKEN_JSON = json.dumps(_TOKEN_PREFIX)[:-1]  # the token as a JSON string, without its end
_SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class TemplateError(Exception):
    """A template is broken (a bug in federator, never caused by user input)."""


@dataclass(frozen=True, kw_only=True)
class Child:
    """One rendered child manifest and what federator knows about it."""

    kind: str
    api_version: str
    name: str
    namespace: str
    wave: int
    manifest: Mapping[str, Any]
    spec_hash: str
    streamlet: str | None = None
    topic: str | None = None
    topics: tuple[str, ...] = field(default=())
    """The topics a streamlet child waits for before it is applied (DESIGN §4)."""

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.kind, self.namespace, self.name)


class _Tokens:
    """Per-render table of values behind the tokens a template printed."""

    def __init__(self) -> None:
        self.values: list[Any] = []

    def token(self, value: Any) -> str:
        self.values.append(value)
        return f'{_TOKEN_JSON}{len(self.values) - 1}"'  # json.dumps of the token, done once


_local = threading.local()


def _data(value: Any) -> _TokenText:
    tokens: _Tokens = _local.tokens
    return _TokenText(tokens.token(value))


class _TokenText(str):
    """Marks expression output that is a token, the only output `finalize` lets through."""


def _finalize(value: Any) -> Any:
    if isinstance(value, _TokenText):
        return value
    raise TemplateError(
        f"template printed {type(value).__name__} {value!r} without `| data`; "
        "every value must enter a manifest as data"
    )


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    env = ImmutableSandboxedEnvironment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        finalize=_finalize,
        auto_reload=False,  # package data: no stat of the file for each of thousands of children
    )
    env.filters["data"] = _data
    return env


@lru_cache(maxsize=256)
def _skeleton(text: str) -> Any:
    return yaml.load(text, Loader=_SafeLoader)


_SCALARS = (str, int, float, bool, type(None))


def _copy(value: Any) -> Any:
    """`copy.deepcopy` for the JSON-like values templates print, several times faster on them
    (this runs for every token of every child); anything else still goes to `deepcopy`."""
    cls = type(value)
    if cls is dict:
        return {k: _copy(v) for k, v in value.items()}
    if cls is list:
        return [_copy(v) for v in value]
    if cls in _SCALARS:
        return value
    return copy.deepcopy(value)


def _substitute(node: Any, values: Sequence[Any]) -> Any:
    cls = type(node)  # the skeleton's plain types first, without the isinstance chain
    if cls is dict:
        return {k: _substitute(v, values) for k, v in node.items()}
    if cls is list:
        return [_substitute(v, values) for v in node]
    if cls is str and not node.startswith(_TOKEN_PREFIX):
        return node
    if isinstance(node, str):
        if node.startswith(_TOKEN_PREFIX):
            return _copy(values[int(node[len(_TOKEN_PREFIX) :])])
        return node
    if isinstance(node, dict):
        return {k: _substitute(v, values) for k, v in node.items()}
    if isinstance(node, list):
        return [_substitute(v, values) for v in node]
    return node


def render_template(name: str, context: Mapping[str, Any]) -> dict[str, Any]:
    """Render one template with `context`; user values come back as the values themselves."""
    tokens = _Tokens()
    _local.tokens = tokens
    try:
        text = environment().get_template(name).render(**context)
    except jinja2.TemplateError as exc:
        raise TemplateError(f"template {name}: {exc}") from exc
    finally:
        _local.tokens = None
    try:
        skeleton = _skeleton(text)
    except yaml.YAMLError as exc:
        raise TemplateError(f"template {name} rendered invalid YAML: {exc}") from exc
    result = _substitute(skeleton, tokens.values)
    if not isinstance(result, dict):
        raise TemplateError(f"template {name} did not render a mapping")
    return result


# --- deep merge of runtime blocks -------------------------------------------------------------


def _named(items: Sequence[Any]) -> bool:
    return bool(items) and all(isinstance(i, Mapping) and "name" in i for i in items)


def deep_merge(base: Any, override: Any) -> Any:
    """Merge `override` over `base`: maps recursively, lists of named items by name (like a
    strategic merge patch: `containers`, `env`), any other value replaced."""
    if isinstance(base, Mapping) and isinstance(override, Mapping):
        out = dict(base)
        for key, value in override.items():
            out[key] = deep_merge(base[key], value) if key in base else copy.deepcopy(value)
        return out
    if isinstance(base, list) and isinstance(override, list) and _named(base) and _named(override):
        merged = [copy.deepcopy(i) for i in base]
        index = {item["name"]: n for n, item in enumerate(merged)}
        for item in override:
            if item["name"] in index:
                merged[index[item["name"]]] = deep_merge(merged[index[item["name"]]], item)
            else:
                merged.append(copy.deepcopy(item))
        return merged
    return copy.deepcopy(override)


# --- wiring -------------------------------------------------------------------------------------


def wiring(topology: Topology, streamlet: Streamlet, cluster: KafkaCluster) -> list[dict[str, str]]:
    """The env vars every runtime gets, identical across runtimes (DESIGN §3)."""
    app = topology.app.name
    prefix = cluster.topic_policy.prefix(topology.app.namespace, app)  # groups, as topics
    inlets = {}
    outlets = {}
    env = [
        {"name": "FEDERATOR_APPLICATION", "value": app},
        {"name": "FEDERATOR_STREAMLET", "value": streamlet.name},
        {"name": "FEDERATOR_KAFKA_BOOTSTRAP_SERVERS", "value": cluster.bootstrap_servers},
    ]
    for port in streamlet.inlets:
        topic = topology.inlet_topics.get(PortRef(streamlet=streamlet.name, port=port), "")
        group = f"{prefix}{app}.{streamlet.name}.{port}"
        inlets[port] = {"topic": topic, "groupId": group}
        env.append({"name": f"FEDERATOR_INLET_{naming.env_port(port)}_TOPIC", "value": topic})
        env.append({"name": f"FEDERATOR_INLET_{naming.env_port(port)}_GROUP_ID", "value": group})
    for port in streamlet.outlets:
        topic = topology.outlet_topics.get(PortRef(streamlet=streamlet.name, port=port), "")
        outlets[port] = {"topic": topic}
        env.append({"name": f"FEDERATOR_OUTLET_{naming.env_port(port)}_TOPIC", "value": topic})
    context = {
        "application": app,
        "streamlet": streamlet.name,
        "kafkaBootstrapServers": cluster.bootstrap_servers,
        "inlets": inlets,
        "outlets": outlets,
        "config": dict(streamlet.config),
    }
    env.append({"name": "FEDERATOR_CONTEXT", "value": json.dumps(context, sort_keys=True)})
    return env


Step = str | tuple[str, Any]  # a mapping key, or ("name", value) selecting a named list item


def _env_paths(node: Any, ours: Mapping[str, Any], at: tuple[Step, ...] = ()) -> list[Any]:
    """Where the template put the wiring: paths to every `env` list holding our variables."""
    found: list[Any] = []
    if isinstance(node, Mapping):
        for key, value in node.items():
            if (
                key == "env"
                and isinstance(value, list)
                and any(isinstance(e, Mapping) and e.get("name") in ours for e in value)
            ):
                found.append((*at, key))
            else:
                found += _env_paths(value, ours, (*at, key))
    elif isinstance(node, list):
        for item in node:
            if isinstance(item, Mapping) and "name" in item:
                found += _env_paths(item, ours, (*at, ("name", item["name"])))
    return found


class _Replaced(Exception):
    """A runtime block put a value of another type where the wiring needs a mapping or a list.
    Validation refuses that first (`blockcheck`); render refuses it too rather than drop it."""

    def __init__(self, steps: tuple[Step, ...], value: Any, expected: type) -> None:
        super().__init__(steps, value)
        self.steps = steps
        self.value = value
        self.expected = "a list" if expected is list else "an object (a mapping)"


def _rewire(spec: Any, template: Any, path: tuple[Step, ...], wiring_env: Sequence[Any]) -> None:
    """Make the env list at `path` start with our wiring, re-creating what a runtime block
    removed on the way (a replaced container list, an emptied env): a block may add env vars
    but can never silently disconnect a streamlet from its topics. A user value of another type
    on the way is never replaced: `_Replaced`."""
    node, original = spec, template
    for n, step in enumerate(path[:-1]):
        if isinstance(step, tuple):
            original = next(i for i in original if i.get("name") == step[1])
            match = next(
                (i for i in node if isinstance(i, dict) and i.get("name") == step[1]), None
            )
            if match is None:
                match = copy.deepcopy(original)
                node.append(match)
            node = match
        else:
            original = original[step]
            kind = list if isinstance(original, list) else dict
            if step not in node:
                node[step] = kind()
            elif not isinstance(node[step], kind):
                raise _Replaced(path[: n + 1], node[step], kind)
            node = node[step]
    ours = {e["name"] for e in wiring_env}
    if not isinstance(node.get("env", []), list):
        raise _Replaced(path, node["env"], list)
    current = node.get("env", [])
    kept = [e for e in current if not (isinstance(e, Mapping) and e.get("name") in ours)]
    node["env"] = [dict(e) for e in wiring_env] + kept


def _enforce_wiring(spec: Any, template: Any, wiring_env: Sequence[Mapping[str, str]]) -> Any:
    ours = {e["name"]: e for e in wiring_env}
    for path in _env_paths(template, ours):
        _rewire(spec, template, path, wiring_env)
    return spec


def _refusal(streamlet: Streamlet, replaced: _Replaced) -> InvalidSpec:
    """The problem at the user's path (named list items by their index in the block)."""
    parts: list[str | int] = [streamlet.path, streamlet.runtime.value]
    node: Any = streamlet.overrides
    for step in replaced.steps:
        if isinstance(step, tuple):
            items = node if isinstance(node, list) else []
            index = next(
                (
                    i
                    for i, item in enumerate(items)
                    if isinstance(item, Mapping) and item.get("name") == step[1]
                ),
                None,
            )
            if index is None:
                break
            parts.append(index)
            node = items[index]
        else:
            parts.append(step)
            node = node.get(step) if isinstance(node, Mapping) else None
    problem = Problem(
        path=format_path(parts),
        code=Code.RUNTIME_FIELD,
        message=f"must be {replaced.expected}, not {replaced.value!r}: federator sets the "
        "streamlet's wiring (or suspension) inside it and never replaces a value of yours",
    )
    return InvalidSpec([problem])


# --- children -----------------------------------------------------------------------------------


def flink_operator(streamlet: Streamlet, settings: Settings, served: TargetApis) -> FlinkOperator:
    """The streamlet's `flinkOperator`, else the settings' preference, else what is served."""
    if streamlet.flink_operator is not None:
        return streamlet.flink_operator
    if settings.flink.default_operator is not FlinkPreference.AUTO:
        return FlinkOperator(settings.flink.default_operator.value)
    for candidate in (FlinkOperator.APACHE, FlinkOperator.LYFT):
        if candidate in served.flink_operators:
            return candidate
    return FlinkOperator.APACHE


def delegate_for(streamlet: Streamlet, settings: Settings, served: TargetApis) -> Delegate:
    """The delegate a streamlet field selects (`Delegate.selects`), else its runtime's."""
    for delegate in delegates.ALL:
        if delegate.selects is not None and delegate.selects(streamlet):
            return delegate
    if streamlet.runtime is Runtime.SPARK:
        return delegates.SPARK_APPLICATION
    if streamlet.runtime is Runtime.FLINK:
        return delegates.FLINK[flink_operator(streamlet, settings, served)]
    return delegates.DEPLOYMENT


def _annotations(app: Application) -> dict[str, str]:
    return {naming.APPLICATION_ANNOTATION: f"{app.namespace}/{app.name}"}


def owner_reference(app: Application) -> dict[str, Any]:
    return {
        "apiVersion": APP_API_VERSION,
        "kind": APP_KIND,
        "name": app.name,
        "uid": app.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def _finish(
    manifest: dict[str, Any], app: Application, *, owned: bool
) -> tuple[dict[str, Any], str]:
    """Add ownership (same-namespace children only), the spec-hash annotation, and the shard
    label of the serving shard (after the hash: which shard serves a child is not a change of
    what it runs; the plan compares the label on its own)."""
    metadata = manifest.setdefault("metadata", {})
    if owned and app.uid and metadata.get("namespace") == app.namespace:
        metadata["ownerReferences"] = [owner_reference(app)]
    digest = naming.spec_hash(manifest)
    metadata.setdefault("annotations", {})[naming.SPEC_HASH_ANNOTATION] = digest
    if app.shard:
        metadata["labels"] = {**(metadata.get("labels") or {}), sharding.SHARD_LABEL: app.shard}
    return manifest, digest


def render_topic(
    topic: Topic, app: Application, cluster: KafkaCluster, served: TargetApis
) -> Child:
    delegate = delegates.KAFKA_TOPIC
    name = naming.topic_resource_name(topic.name)
    labels = {
        **naming.labels(app.name),
        naming.STRIMZI_CLUSTER_LABEL: naming.label_value(cluster.strimzi_cluster),
    }
    annotations = _annotations(app)
    if name != topic.name:
        annotations[naming.TOPIC_ANNOTATION] = topic.name
    manifest = render_template(
        delegate.template,
        {
            "api_version": delegate.api_version(served.topic_version),
            "name": name,
            "namespace": cluster.namespace,
            "labels": labels,
            "annotations": annotations,
            "topic": {
                "name": topic.name,
                "partitions": topic.partitions,
                "replicas": topic.replicas,
                "config": dict(sorted(topic.config.items())),
            },
        },
    )
    # Topics never carry ownerReferences: Retain topics outlive the Application, Delete topics
    # are removed by the finalizer, and cross-namespace owners would be garbage-collected.
    manifest, digest = _finish(manifest, app, owned=False)
    return Child(
        kind=delegate.kind,
        api_version=manifest["apiVersion"],
        name=name,
        namespace=cluster.namespace,
        wave=TOPIC_WAVE,
        manifest=manifest,
        spec_hash=digest,
        topic=topic.name,
    )


def render_streamlet(
    topology: Topology,
    streamlet: Streamlet,
    settings: Settings,
    cluster: KafkaCluster,
    served: TargetApis,
) -> Child:
    app = topology.app
    delegate = delegate_for(streamlet, settings, served)
    name = naming.child_name(app.name, streamlet.name, delegate.name_limit)
    labels = naming.labels(app.name, streamlet.name)
    env = wiring(topology, streamlet, cluster)
    replicas = streamlet.replicas if streamlet.replicas is not None else 1
    if app.suspend and delegate is delegates.DEPLOYMENT:
        replicas = 0
    context = {
        "api_version": delegate.api_version(),
        "name": name,
        "namespace": app.namespace,
        "labels": labels,
        "annotations": _annotations(app),
        "selector": {
            naming.APPLICATION_LABEL: labels[naming.APPLICATION_LABEL],
            naming.STREAMLET_LABEL: labels[naming.STREAMLET_LABEL],
        },
        "container_name": streamlet.name,
        "streamlet": {"name": streamlet.name, "image": streamlet.image},
        "replicas": replicas,
        "env": env,
        "suspend": app.suspend,
        "job_state": "suspended" if app.suspend else "running",
        "flink_version": settings.flink.flink_version,
    }
    if delegate.context is not None:
        context.update(delegate.context(streamlet, env))
    manifest = render_template(delegate.template, context)
    if streamlet.overrides:
        template_spec = manifest["spec"]
        manifest["spec"] = deep_merge(template_spec, streamlet.overrides)
        try:
            manifest["spec"] = _enforce_wiring(manifest["spec"], template_spec, env)
            if delegate.wire is not None:
                try:
                    delegate.wire(manifest["spec"], env)
                except SpecShape as shape:
                    raise _Replaced(shape.steps, shape.value, shape.expected) from None
            if app.suspend and delegate.suspend is not None:
                try:
                    delegate.suspend(manifest["spec"])
                except SpecShape as shape:
                    raise _Replaced(shape.steps, shape.value, shape.expected) from None
        except _Replaced as replaced:
            raise _refusal(streamlet, replaced) from None
    manifest, digest = _finish(manifest, app, owned=True)
    return Child(
        kind=delegate.kind,
        api_version=manifest["apiVersion"],
        name=name,
        namespace=app.namespace,
        wave=STREAMLET_WAVE,
        manifest=manifest,
        spec_hash=digest,
        streamlet=streamlet.name,
        topics=topology.topics_of(streamlet.name),
    )


def render(topology: Topology, settings: Settings, served: TargetApis) -> tuple[Child, ...]:
    """Every child, ordered by wave (topics, then streamlets upstream-first)."""
    cluster = settings.kafka_cluster(topology.app.kafka_cluster)
    if cluster is None:
        raise ValueError(f"unknown Kafka cluster {topology.app.kafka_cluster!r}")  # validated
    topics = [render_topic(t, topology.app, cluster, served) for t in topology.topics if t.managed]
    streamlets = [
        render_streamlet(topology, s, settings, cluster, served) for s in topology.streamlets
    ]
    return (*topics, *streamlets)
