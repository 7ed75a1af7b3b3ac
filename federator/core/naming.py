"""Child names, labels and annotations: valid for Kubernetes whatever the user's names are.

Names and label values over their limit are shortened deterministically: a prefix plus a hash
of the full value, so two long names never collide and a re-render gives the same name.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any

LABEL_MAX = 63
SUBDOMAIN_MAX = 253
_HASH_LEN = 8

MANAGED_BY = "app.kubernetes.io/managed-by"
PART_OF = "app.kubernetes.io/part-of"
APPLICATION_LABEL = "federator.io/application"
STREAMLET_LABEL = "federator.io/streamlet"
APPLICATION_ANNOTATION = "federator.io/application"
ADOPT_ANNOTATION = "federator.io/adopt"
"""Set by an object's owner to `<namespace>/<application>`: consent that this application may
take the object over (federator never touches an object it did not create without it)."""
SPEC_HASH_ANNOTATION = "federator.io/spec-hash"
TOPIC_ANNOTATION = "federator.io/topic"
STRIMZI_CLUSTER_LABEL = "strimzi.io/cluster"
MANAGER = "federator"
MANAGED_SELECTOR = f"{MANAGED_BY}={MANAGER}"
"""The label selector of every object federator renders (its watches, lists, the simulator)."""

_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")


def digest(value: str, length: int = _HASH_LEN) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:length]


def shorten(name: str, limit: int) -> str:
    """`name` if it fits, else a prefix and `-<hash of name>` in exactly `limit` characters."""
    if len(name) <= limit:
        return name
    prefix = name[: limit - _HASH_LEN - 1].rstrip("-._")
    return f"{prefix}-{digest(name)}"


def is_subdomain(name: str) -> bool:
    return len(name) <= SUBDOMAIN_MAX and bool(_SUBDOMAIN.match(name))


def child_name(app: str, streamlet: str, limit: int = LABEL_MAX) -> str:
    """`<app>-<streamlet>`, shortened to the delegate's limit (a DNS-1123 label).

    An app name may be a dotted subdomain, but delegates derive Service names (DNS-1035 labels)
    from the child's name: dots become dashes, with a hash so `a.b` and `a-b` stay distinct.
    """
    name = f"{app}-{streamlet}"
    if "." in name:
        name = f"{name.replace('.', '-')[: limit - _HASH_LEN - 1]}-{digest(name)}"
    return shorten(name, limit)


def topic_resource_name(topic: str) -> str:
    """KafkaTopic `metadata.name`: the topic name when it is a valid DNS-1123 subdomain.

    Otherwise a sanitised name with a hash of the real name, so `Spark_Users` and `spark-users`
    never map to one resource (`spec.topicName` always carries the real name).
    """
    if is_subdomain(topic):
        return topic
    cleaned = re.sub(r"[^a-z0-9.-]+", "-", topic.lower())
    # Any run of dots and dashes holding a dot becomes one dot: no empty label ('0.-.0' gave
    # '0..0' when the two were collapsed one after the other) and no label ending in '-'.
    cleaned = re.sub(r"-*\.[-.]*", ".", cleaned).strip("-.") or "topic"
    return f"{cleaned[: SUBDOMAIN_MAX - _HASH_LEN - 1].rstrip('-.')}-{digest(topic)}"


def label_value(value: str) -> str:
    """A valid label value for `value`: as is when it fits, else shortened with its hash."""
    if len(value) <= LABEL_MAX and _LABEL_VALUE.match(value):
        return value
    cleaned = re.sub(r"[^A-Za-z0-9_.-]+", "-", value).strip("-_.")
    if len(cleaned) > LABEL_MAX or cleaned != value:
        cleaned = f"{cleaned[: LABEL_MAX - _HASH_LEN - 1].rstrip('-_.')}-{digest(value)}"
    return cleaned.lstrip("-_.")


def labels(app: str, streamlet: str | None = None) -> dict[str, str]:
    """The labels every child carries; never `app.kubernetes.io/instance` (Argo CD tracking)."""
    out = {
        MANAGED_BY: MANAGER,
        PART_OF: label_value(app),
        APPLICATION_LABEL: label_value(app),
    }
    if streamlet is not None:
        out[STREAMLET_LABEL] = label_value(streamlet)
    return out


def spec_hash(manifest: Mapping[str, Any]) -> str:
    """A stable hash of what we apply, so unchanged children are never written again."""
    canonical = json.dumps(manifest, sort_keys=True, separators=(",", ":"), default=str)
    return digest(canonical, 16)


def env_port(port: str) -> str:
    """`in-0` -> `IN_0` for env var names (upper-cased, non-alphanumerics become `_`)."""
    return re.sub(r"[^A-Z0-9]", "_", port.upper())
