"""kwok's fake nodes: a Node kwok manages, so that pods schedule and report Running without a
kubelet or a container runtime.
"""

from __future__ import annotations

from typing import Any

FAKE_NODE = "kwok-node-0"
KWOK_NODE_ANNOTATION = "kwok.x-k8s.io/node"

# Pods one fake node takes. 110 is the kubelet's default, not a limit of kwok, which runs no
# container: an integration session deploys several hundred pods over its modules (Deployments
# left converged, Spark drivers and executors), and at 110 the later modules' pods stayed
# Pending, so their applications never became Healthy.
FAKE_NODE_PODS = "1000"


def fake_node(name: str = FAKE_NODE) -> dict[str, Any]:
    """One kwok-managed Node, untainted so ordinary pods schedule on it."""
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {KWOK_NODE_ANNOTATION: "fake", "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {
                "type": "kwok",
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "kubernetes.io/role": "agent",
            },
        },
        "spec": {},
        "status": {
            "allocatable": {"cpu": "256", "memory": "2Ti", "pods": FAKE_NODE_PODS},
            "capacity": {"cpu": "256", "memory": "2Ti", "pods": FAKE_NODE_PODS},
        },
    }


def node_ready(node: Any) -> bool:
    """Whether a Node (as JSON) reports Ready: kwok has taken it over."""
    conditions = (node or {}).get("status", {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
