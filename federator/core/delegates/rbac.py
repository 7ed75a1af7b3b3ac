"""The chart's view of the registry: the RBAC rules each delegate needs, as the chart reads them
(charts/federator/files/delegates.yaml, written by `python -m federator.core.delegates.rbac`;
a unit test keeps the file equal to this)."""

from __future__ import annotations

import sys
from typing import Any

import yaml

from federator.core.delegates import ALL
from federator.core.delegates.base import READ_VERBS

HEADER = (
    "# GENERATED from federator/core/delegates (one module per delegate kind) by\n"
    "# `python -m federator.core.delegates.rbac > charts/federator/files/delegates.yaml`;\n"
    "# a unit test fails when it differs. The chart's RBAC reads it (templates/_helpers.tpl).\n"
)


def rules() -> list[dict[str, Any]]:
    """One entry per delegate kind: its API group, resource and the operator's verbs on it, and
    the read verbs kopf needs wherever it watches (a Kafka namespace)."""
    return [
        {
            "kind": d.kind,
            "apiGroup": d.group,
            "resource": d.plural,
            "verbs": list(d.verbs),
            "readVerbs": list(READ_VERBS),
        }
        for d in ALL
    ]


def document() -> str:
    return HEADER + yaml.safe_dump({"delegates": rules()}, sort_keys=False)


if __name__ == "__main__":
    sys.stdout.write(document())
