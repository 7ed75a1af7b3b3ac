"""The `container` block's schema: an apps/v1 DeploymentSpec, written out because no CRD has it.

The delegate kinds bring their CRDs (vendored, checked against them); a Deployment is built in,
so the API server alone would judge it, and only when federator applies it (`replicas: "many"`
fails server-side apply and the application sat Progressing 0/3). This schema types the fields
users set in the block, in the CRD dialect `openapi.to_json_schema` reads. DeploymentSpec and the
small stable structures are closed (a typo is an unknown field); PodSpec and Container are open
(`x-kubernetes-preserve-unknown-fields`): Kubernetes adds fields to them every release, and
refusing a field this list does not know yet would be worse than leaving it to the API server.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_INT32_MAX = 2147483647

QUANTITY_PATTERN = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]"
    r"|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)
"""controller-gen's pattern for resource.Quantity, as the delegate CRDs carry it."""
# A quantity is a number (cpu: 0.5) or a string (512Mi).
_QUANTITY: Mapping[str, Any] = {
    "anyOf": [{"type": "number"}, {"type": "string", "pattern": QUANTITY_PATTERN}]
}
_STRING: Mapping[str, Any] = {"type": "string"}
_STRINGS: Mapping[str, Any] = {"type": "array", "items": _STRING}
_STRING_MAP: Mapping[str, Any] = {"type": "object", "additionalProperties": _STRING}
_OBJECT: Mapping[str, Any] = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
_OBJECTS: Mapping[str, Any] = {"type": "array", "items": _OBJECT}
_BOOL: Mapping[str, Any] = {"type": "boolean"}


def _count(minimum: int = 0, maximum: int = _INT32_MAX) -> Mapping[str, Any]:
    return {"type": "integer", "minimum": minimum, "maximum": maximum}


def _object(
    *, open_: bool, required: tuple[str, ...], properties: Mapping[str, Any]
) -> Mapping[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": dict(properties)}
    if required:
        schema["required"] = list(required)
    if open_:
        schema["x-kubernetes-preserve-unknown-fields"] = True
    return schema


def _open(*, required: tuple[str, ...] = (), **properties: Any) -> Mapping[str, Any]:
    """An object whose unknown fields are left to the API server."""
    return _object(open_=True, required=required, properties=properties)


def _closed(*, required: tuple[str, ...] = (), **properties: Any) -> Mapping[str, Any]:
    """An object whose fields are all known: anything else is a typo."""
    return _object(open_=False, required=required, properties=properties)


def _list(item: Mapping[str, Any]) -> Mapping[str, Any]:
    return {"type": "array", "items": item}


_PORT = _count(1, 65535)
_ENV_VAR = _closed(required=("name",), name=_STRING, value=_STRING, valueFrom=_OBJECT)
_CONTAINER_PORT = _closed(
    required=("containerPort",),
    containerPort=_PORT,
    hostPort=_count(0, 65535),
    hostIP=_STRING,
    name=_STRING,
    protocol={"type": "string", "enum": ["TCP", "UDP", "SCTP"]},
)
_RESOURCES = _closed(
    limits={"type": "object", "additionalProperties": _QUANTITY},
    requests={"type": "object", "additionalProperties": _QUANTITY},
    claims=_OBJECTS,
)
_CONTAINER = _open(
    required=("name",),
    name=_STRING,
    image=_STRING,
    imagePullPolicy={"type": "string", "enum": ["Always", "IfNotPresent", "Never"]},
    command=_STRINGS,
    args=_STRINGS,
    workingDir=_STRING,
    env=_list(_ENV_VAR),
    envFrom=_OBJECTS,
    ports=_list(_CONTAINER_PORT),
    resources=_RESOURCES,
    volumeMounts=_list(
        _open(
            required=("name", "mountPath"),
            name=_STRING,
            mountPath=_STRING,
            readOnly=_BOOL,
            subPath=_STRING,
        )
    ),
    livenessProbe=_OBJECT,
    readinessProbe=_OBJECT,
    startupProbe=_OBJECT,
    lifecycle=_OBJECT,
    securityContext=_OBJECT,
)
_POD_SPEC = _open(
    containers=_list(_CONTAINER),
    initContainers=_list(_CONTAINER),
    ephemeralContainers=_list(_CONTAINER),
    volumes=_list(_open(required=("name",), name=_STRING)),
    serviceAccountName=_STRING,
    automountServiceAccountToken=_BOOL,
    nodeSelector=_STRING_MAP,
    tolerations=_list(
        _closed(
            key=_STRING,
            operator={"type": "string", "enum": ["Exists", "Equal"]},
            value=_STRING,
            effect={"type": "string", "enum": ["NoSchedule", "PreferNoSchedule", "NoExecute"]},
            tolerationSeconds={"type": "integer"},
        )
    ),
    affinity=_OBJECT,
    topologySpreadConstraints=_OBJECTS,
    imagePullSecrets=_list(_closed(name=_STRING)),
    securityContext=_OBJECT,
    terminationGracePeriodSeconds={"type": "integer", "minimum": 0},
    priorityClassName=_STRING,
    hostNetwork=_BOOL,
    dnsPolicy={
        "type": "string",
        "enum": ["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"],
    },
    # A Deployment's pods must restart: the API server refuses anything else.
    restartPolicy={"type": "string", "enum": ["Always"]},
    schedulerName=_STRING,
    runtimeClassName=_STRING,
)
_LABEL_SELECTOR = _closed(
    matchLabels=_STRING_MAP,
    matchExpressions=_list(
        _closed(required=("key", "operator"), key=_STRING, operator=_STRING, values=_STRINGS)
    ),
)
_INT_OR_STRING: Mapping[str, Any] = {"x-kubernetes-int-or-string": True}

DEPLOYMENT_SPEC: Mapping[str, Any] = _closed(
    replicas=_count(),
    minReadySeconds=_count(),
    revisionHistoryLimit=_count(),
    progressDeadlineSeconds=_count(1),
    paused=_BOOL,
    strategy=_closed(
        type={"type": "string", "enum": ["RollingUpdate", "Recreate"]},
        rollingUpdate=_closed(maxSurge=_INT_OR_STRING, maxUnavailable=_INT_OR_STRING),
    ),
    selector=_LABEL_SELECTOR,
    template=_closed(
        metadata=_open(labels=_STRING_MAP, annotations=_STRING_MAP),
        spec=_POD_SPEC,
    ),
)
"""apps/v1 DeploymentSpec, as an OpenAPI v3 schema of a CRD (see the module docstring)."""
