"""How federator names one Kubernetes object across kinds and namespaces. Pure.

The plan, the reconciler and the watch cache index children by the same triple; one alias
keeps them agreeing on its order.
"""

Key = tuple[str, str, str]
"""(kind, namespace, name) of one object, e.g. ("KafkaTopic", "team-a", "orders")."""
