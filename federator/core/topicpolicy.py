"""The platform's topic naming policy for one Kafka cluster: who may use it, and the prefix.

Every team's KafkaTopics live in the cluster's one namespace, so two applications of the same
name in two namespaces render the same implicit topic `<app>.<streamlet>.<outlet>`, and an
explicit topic may name another team's topic. The platform team declares, per named cluster,
which namespaces may use it and a prefix template (`{namespace}.`): implicit names get the
prefix, explicit (managed) names must carry it. Without either key nothing changes: every
namespace may use the cluster and names stay the seed's Cloudflow-compatible ones.

Pure: parsing checks the template once (at settings time); validation asks `implicit_prefix`
(handed to topology, which names implicit topics) and `problems`; render prefixes consumer
group ids with `TopicPolicy.prefix`.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from federator.core.problems import Code, Problem

if TYPE_CHECKING:  # settings imports this module; these are for annotations only
    from federator.core.model import Application, TopicSpec
    from federator.core.settings import Settings

PLACEHOLDERS = ("namespace", "application")
"""What a prefix template may contain: the Application's namespace and its name."""
TOPIC_MAX = 249
"""Kafka's limit on a topic name."""
_FRAGMENT = re.compile(r"^[a-zA-Z0-9._-]*$")
_NAMESPACE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_SEPARATORS = (".", "_")
"""Characters a namespace never contains: after `{namespace}`, they end it unambiguously."""


class PolicyError(ValueError):
    """A policy key of the settings is wrong: `key` (e.g. `topicPrefix`) and why."""

    def __init__(self, key: str, reason: str) -> None:
        self.key = key
        self.reason = reason
        super().__init__(f"{key}: {reason}")


ACCESS = ("read", "readwrite")
"""What a shared topic allows the namespaces it is shared with: consuming it, or also producing
into it."""


@dataclass(frozen=True, kw_only=True)
class SharedTopic:
    """The platform's consent that Applications of other namespaces may use one topic."""

    name: str
    namespaces: tuple[str, ...]
    access: str = "read"


@dataclass(frozen=True, kw_only=True)
class TopicPolicy:
    """The naming policy of one named Kafka cluster (`kafkaClusters[]` in the settings)."""

    allowed_namespaces: tuple[str, ...] = ()
    """Namespaces whose Applications may use the cluster; empty means every namespace."""
    topic_prefix: str = ""
    """Prefix template of every topic federator creates on the cluster, e.g. `{namespace}.`;
    empty means no prefix (the seed's names)."""

    shared: tuple[SharedTopic, ...] = ()
    """Topics applications may use outside their own prefix (`managed: false`), and who."""

    def allows(self, namespace: str) -> bool:
        return not self.allowed_namespaces or namespace in self.allowed_namespaces

    def prefix(self, namespace: str, application: str) -> str:
        """The template with the application's values (checked at parse time, so only the
        known placeholders, without format specs, can be in it)."""
        if not self.topic_prefix:
            return ""
        return self.topic_prefix.format(namespace=namespace, application=application)

    def own(self, topic: str, namespace: str, application: str) -> bool:
        """Whether `topic` is within what the prefix gives `namespace`: the template up to its
        `{application}` placeholder (a team's applications may share topics among themselves),
        or the whole prefix when the template does not name the namespace."""
        if "{namespace}" in self.topic_prefix:
            mine = self.topic_prefix.split("{application}")[0].format(namespace=namespace)
        else:
            mine = self.prefix(namespace, application)
        return topic.startswith(mine)

    def sharing(self, topic: str, namespace: str) -> SharedTopic | None:
        """The consent that shares `topic` with `namespace`, if any."""
        return next((s for s in self.shared if s.name == topic and namespace in s.namespaces), None)


def template_error(template: str) -> str | None:
    """Why `template` cannot be a topic prefix, or None when it can."""
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as exc:
        return f"{template!r} is not a template ({exc}); write placeholders as {{namespace}}"
    fields = [name for _, name, _, _ in parts if name is not None]
    for _, name, spec, conversion in parts:
        if name is not None and name not in PLACEHOLDERS:
            known = ", ".join(f"{{{p}}}" for p in PLACEHOLDERS)
            return f"unknown placeholder {{{name}}} in {template!r}; known: {known}"
        if spec or conversion:
            return f"{template!r}: placeholders take no conversion or format spec ({{{name}}})"
    literal = "".join(text for text, _, _, _ in parts)
    if not _FRAGMENT.match(literal):
        return (
            f"{template!r} renders characters Kafka refuses in a topic name; use only "
            "[a-zA-Z0-9._-] around the placeholders"
        )
    if len(literal) + len(fields) >= TOPIC_MAX:
        return f"{template!r} leaves no room for a topic name (Kafka allows {TOPIC_MAX})"
    if "namespace" in fields:
        first = next(i for i, (_, name, _, _) in enumerate(parts) if name is not None)
        after = parts[first + 1][0] if first + 1 < len(parts) else ""
        if parts[first][1] != "namespace" or not after.startswith(_SEPARATORS):
            return (
                f"{template!r}: {{namespace}} must be the first placeholder and be followed by "
                "'.' or '_' (a namespace never contains them), or one team's prefix could begin "
                "another's names (with `{namespace}-`, team-a's prefix team-a- begins every "
                "name of team-a-b)"
            )
    return None


def parse(raw: Mapping[str, Any]) -> TopicPolicy:
    """The policy keys of one `kafkaClusters[]` item; raises `PolicyError` naming the key."""
    namespaces = raw.get("allowedNamespaces")
    if namespaces is None:
        namespaces = []
    if not isinstance(namespaces, list) or not all(
        isinstance(n, str) and len(n) <= 63 and _NAMESPACE.match(n) for n in namespaces
    ):
        raise PolicyError(
            "allowedNamespaces", f"expected a list of namespace names, got {namespaces!r}"
        )
    template = raw.get("topicPrefix")
    if template is None:
        template = ""
    if not isinstance(template, str):
        raise PolicyError(
            "topicPrefix", f"expected a string such as '{{namespace}}.', got {template!r}"
        )
    reason = template_error(template)
    if reason:
        raise PolicyError("topicPrefix", reason)
    return TopicPolicy(
        allowed_namespaces=tuple(namespaces),
        topic_prefix=template,
        shared=_shared(raw.get("sharedTopics")),
    )


def _shared(raw: Any) -> tuple[SharedTopic, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise PolicyError("sharedTopics", f"expected a list, got {raw!r}")
    out = []
    for i, item in enumerate(raw):
        where = f"sharedTopics[{i}]"
        if not isinstance(item, Mapping):
            raise PolicyError(where, f"expected a map with name and namespaces, got {item!r}")
        unknown = sorted(set(item) - {"name", "namespaces", "access"})
        if unknown:
            raise PolicyError(
                f"{where}.{unknown[0]}", "unknown key; known: name, namespaces, access"
            )
        name = item.get("name")
        if not isinstance(name, str) or not name or not _FRAGMENT.match(name):
            raise PolicyError(f"{where}.name", f"expected a topic name, got {name!r}")
        namespaces = item.get("namespaces")
        if (
            not isinstance(namespaces, list)
            or not namespaces
            or not all(
                isinstance(n, str) and len(n) <= 63 and _NAMESPACE.match(n) for n in namespaces
            )
        ):
            raise PolicyError(
                f"{where}.namespaces", f"expected a list of namespace names, got {namespaces!r}"
            )
        access = item.get("access", "read")
        if access not in ACCESS:
            raise PolicyError(
                f"{where}.access", f"expected one of {', '.join(ACCESS)}, got {access!r}"
            )
        out.append(SharedTopic(name=name, namespaces=tuple(namespaces), access=access))
    return tuple(out)


def implicit_prefix(app: Application, settings: Settings) -> str:
    """The prefix of `app`'s implicit topics ('' when its cluster is unknown: reported apart)."""
    cluster = settings.kafka_cluster(app.kafka_cluster)
    return cluster.topic_policy.prefix(app.namespace, app.name) if cluster else ""


def problems(app: Application, settings: Settings) -> Iterable[Problem]:
    """What `app` breaks of its cluster's policy: its namespace is not allowed to use the
    cluster, a managed explicit topic lacks the prefix, or an unmanaged topic outside the
    namespace's prefix was not shared with it (or only for reading, and the app produces)."""
    cluster = settings.kafka_cluster(app.kafka_cluster)
    if cluster is None:
        return
    policy = cluster.topic_policy
    if not policy.allows(app.namespace):
        others = [c.name for c in settings.kafka_clusters if c.topic_policy.allows(app.namespace)]
        yield Problem(
            path="spec.kafka.cluster",
            code=Code.KAFKA_CLUSTER_NOT_ALLOWED,
            message=f"namespace {app.namespace!r} may not use Kafka cluster {cluster.name!r}"
            + (f" (it may use: {', '.join(others)})" if others else "")
            + "; the platform team lists the namespaces allowed to use a cluster in "
            "kafkaClusters[].allowedNamespaces of the operator settings",
        )
    prefix = policy.prefix(app.namespace, app.name)
    if len(prefix) >= TOPIC_MAX:
        yield Problem(
            path="metadata.name",
            code=Code.TOPIC_PREFIX,
            message=f"Kafka cluster {cluster.name!r} prefixes this application's topics with "
            f"{prefix!r} ({len(prefix)} characters), which leaves no room for a topic name "
            f"(Kafka allows {TOPIC_MAX}); shorten the application name",
        )
        return
    for topic in app.topics:
        if prefix and not topic.managed:
            yield from _unmanaged(topic, app, cluster.name, policy)
        if prefix and topic.managed and not topic.name.startswith(prefix):
            fixed = prefix + topic.name
            yield Problem(
                path=f"{topic.path}.name",
                code=Code.TOPIC_PREFIX,
                message=f"topic {topic.name!r} must start with {prefix!r}: the naming policy of "
                f"Kafka cluster {cluster.name!r} ({policy.topic_prefix!r}) gives every topic of "
                "this application that prefix, so teams sharing the cluster never collide"
                + (f"; rename it to {fixed!r}" if len(fixed) <= TOPIC_MAX else "")
                + " (to use a topic that exists outside this application, set managed: false)",
            )


def _unmanaged(
    topic: TopicSpec, app: Application, cluster: str, policy: TopicPolicy
) -> Iterable[Problem]:
    """An unmanaged topic outside the namespace's prefix is another team's (or the platform's):
    its streamlets would read or write it with nothing but Kafka's ACLs in the way, so the
    platform must have shared it with this namespace (`kafkaClusters[].sharedTopics`), for
    writing if this application produces into it."""
    if policy.own(topic.name, app.namespace, app.name):
        return
    consent = policy.sharing(topic.name, app.namespace)
    where = f"kafkaClusters[{cluster}].sharedTopics of the operator settings"
    if consent is None:
        yield Problem(
            path=f"{topic.path}.name",
            code=Code.TOPIC_NOT_SHARED,
            message=f"topic {topic.name!r} is outside this namespace's names "
            f"({policy.topic_prefix!r} on Kafka cluster {cluster!r}) and the platform team has "
            f"not shared it with namespace {app.namespace!r}: ask them to list it in {where}",
        )
    elif topic.producers and consent.access != "readwrite":
        yield Problem(
            path=f"{topic.path}.producers",
            code=Code.TOPIC_NOT_SHARED,
            message=f"topic {topic.name!r} is shared with namespace {app.namespace!r} for "
            f"reading only: this application may consume it, not produce into it (access: "
            f"readwrite in {where})",
        )
