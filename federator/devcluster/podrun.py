"""The chart's Deployment as a `podman run`: what a kubelet would do with the operator's pod.

Why: the image test must start the container exactly as the rendered chart says, not as a hand
copy that drifts. This module reads the Deployment from `helm template` output and translates
every field that changes how the container runs (user and group, runAsNonRoot, read-only root,
capabilities, no-new-privileges, seccomp, memory and CPU limits, env, command and args, the
volumes, the probes, the grace period) into podman flags. A field it does not know how to
translate is an error, never silently dropped: a chart change that the test cannot reproduce
must fail the test.

Pure: no podman, no files; the caller provides the host directories that stand in for the
pod's volumes (a ConfigMap's files, the projected service-account token).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

SERVICE_ACCOUNT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
# The API server's default when a pod spec leaves it out.
DEFAULT_GRACE_SECONDS = 30
# Kubernetes quantity suffixes (binary and decimal) -> multiplier.
_SUFFIXES: dict[str, int] = {
    "Ki": 1 << 10,
    "Mi": 1 << 20,
    "Gi": 1 << 30,
    "Ti": 1 << 40,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "": 1,
}
# Container fields that change nothing in how podman runs it here (the image is given, probes
# are returned to the caller, ports are the host's on the host network).
_HANDLED_CONTAINER_FIELDS = {
    "name",
    "image",
    "imagePullPolicy",
    "command",
    "args",
    "env",
    "ports",
    "startupProbe",
    "livenessProbe",
    "readinessProbe",
    "resources",
    "securityContext",
    "volumeMounts",
}
_HANDLED_SECURITY_FIELDS = {
    "runAsUser",
    "runAsGroup",
    "runAsNonRoot",
    "readOnlyRootFilesystem",
    "allowPrivilegeEscalation",
    "capabilities",
    "seccompProfile",
    "privileged",
}


class UnsupportedPodSpec(ValueError):
    """The Deployment asks for something this translation cannot reproduce."""


def quantity_bytes(quantity: str | int) -> int:
    """A Kubernetes memory quantity ('512Mi', '1G', '1048576') in bytes."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|k|M|G|T|)", str(quantity).strip())
    if not match:
        raise UnsupportedPodSpec(f"not a memory quantity: {quantity!r}")
    return int(float(match[1]) * _SUFFIXES[match[2]])


def cpu_cores(quantity: str | int | float) -> float:
    """A Kubernetes CPU quantity ('500m', '2') in cores."""
    text = str(quantity).strip()
    return int(text[:-1]) / 1000 if text.endswith("m") else float(text)


@dataclass(frozen=True)
class Probe:
    """An httpGet probe with its named port resolved to the container's port number."""

    kind: str  # startup, readiness, liveness
    path: str
    port: int


@dataclass(frozen=True)
class PodmanRun:
    """`podman run [flags] IMAGE [args]` for the operator container, plus what a test checks."""

    flags: tuple[str, ...]
    args: tuple[str, ...]
    uid: int
    gid: int
    run_as_non_root: bool
    probes: tuple[Probe, ...]
    grace_seconds: int
    config_maps: Mapping[str, str] = field(default_factory=dict)  # volume name -> ConfigMap

    def argv(self, image: str, *extra_flags: str) -> list[str]:
        return ["podman", "run", *self.flags, *extra_flags, image, *self.args]


def deployment(docs: Iterable[Mapping[str, Any] | None], name: str | None = None) -> Any:
    """The one Deployment (or the one named `name`) among rendered manifests."""
    found = [
        d
        for d in docs
        if d and d.get("kind") == "Deployment" and name in (None, d["metadata"]["name"])
    ]
    if len(found) != 1:
        raise UnsupportedPodSpec(
            f"expected one Deployment{f' {name}' if name else ''}, found {len(found)}"
        )
    return found[0]


def _probe(kind: str, spec: Mapping[str, Any], ports: Mapping[str, int]) -> Probe:
    if set(spec) - {
        "httpGet",
        "periodSeconds",
        "timeoutSeconds",
        "failureThreshold",
        "successThreshold",
        "initialDelaySeconds",
    }:
        raise UnsupportedPodSpec(f"{kind}Probe: only httpGet probes are translated: {dict(spec)}")
    get = spec["httpGet"]
    port = get["port"]
    if isinstance(port, str):
        if port not in ports:
            raise UnsupportedPodSpec(f"{kind}Probe names port {port!r}, not a container port")
        port = ports[port]
    return Probe(kind=kind, path=str(get.get("path", "/")), port=int(port))


def _security_flags(
    pod_sc: Mapping[str, Any], sc: Mapping[str, Any]
) -> tuple[list[str], int, int, bool]:
    """User, groups, read-only root, privileges, capabilities, seccomp: (flags, uid, gid,
    runAsNonRoot)."""
    unknown = (
        set(sc) | (set(pod_sc) - {"fsGroup", "supplementalGroups"})
    ) - _HANDLED_SECURITY_FIELDS
    if unknown:
        raise UnsupportedPodSpec(f"securityContext fields not translated: {sorted(unknown)}")

    def security(key: str, default: Any = None) -> Any:
        """The container's setting, else the pod's (the kubelet's precedence)."""
        return sc.get(key, pod_sc.get(key, default))

    uid, gid = security("runAsUser"), security("runAsGroup")
    if uid is None:
        raise UnsupportedPodSpec("runAsUser unset: the image's USER would decide")
    gid = uid if gid is None else gid
    non_root = bool(security("runAsNonRoot", False))
    if non_root and int(uid) == 0:
        raise UnsupportedPodSpec("runAsNonRoot with runAsUser 0: the kubelet refuses to start it")
    flags: list[str] = ["--user", f"{uid}:{gid}"]
    for group in pod_sc.get("supplementalGroups") or []:
        flags += ["--group-add", str(group)]
    if pod_sc.get("fsGroup") is not None:
        flags += ["--group-add", str(pod_sc["fsGroup"])]
    if security("privileged", False):
        raise UnsupportedPodSpec("privileged containers are not translated")
    if security("readOnlyRootFilesystem", False):
        # Without podman's own tmpfs on /tmp, /run, /var/tmp: only the pod's volumes are writable.
        flags += ["--read-only", "--read-only-tmpfs=false"]
    if security("allowPrivilegeEscalation") is False:
        flags += ["--security-opt", "no-new-privileges"]
    caps = sc.get("capabilities") or {}
    for cap in caps.get("drop") or []:
        flags += ["--cap-drop", str(cap)]
    for cap in caps.get("add") or []:
        flags += ["--cap-add", str(cap)]
    seccomp = (security("seccompProfile") or {}).get("type", "RuntimeDefault")
    if seccomp == "Unconfined":
        flags += ["--security-opt", "seccomp=unconfined"]
    elif seccomp != "RuntimeDefault":  # RuntimeDefault: podman's default profile
        raise UnsupportedPodSpec(f"seccompProfile {seccomp} is not translated")
    return flags, int(uid), int(gid), non_root


def _volume_flags(
    pod: Mapping[str, Any],
    container: Mapping[str, Any],
    volume_dirs: Mapping[str, str],
    service_account_dir: str | None,
) -> tuple[list[str], dict[str, str]]:
    """The container's volume mounts and the projected service-account folder: (flags,
    {volume name: ConfigMap name})."""
    flags: list[str] = []
    volumes = {v["name"]: v for v in pod.get("volumes") or []}
    config_maps: dict[str, str] = {}
    for mount in container.get("volumeMounts") or []:
        volume = volumes[mount["name"]]
        path = mount["mountPath"]
        if "emptyDir" in volume:
            size = (volume["emptyDir"] or {}).get("sizeLimit")
            options = "rw,mode=1777" + (f",size={quantity_bytes(size)}" if size else "")
            flags += ["--tmpfs", f"{path}:{options}"]
        elif "configMap" in volume or "secret" in volume:
            if mount["name"] not in volume_dirs:
                raise UnsupportedPodSpec(f"volume {mount['name']}: no host directory given")
            if "configMap" in volume:
                config_maps[mount["name"]] = volume["configMap"]["name"]
            mode = "ro" if mount.get("readOnly") else "rw"
            flags += ["--volume", f"{volume_dirs[mount['name']]}:{path}:{mode}"]
        else:
            raise UnsupportedPodSpec(f"volume {mount['name']}: only emptyDir/configMap/secret")
    if pod.get("automountServiceAccountToken", True):
        if service_account_dir is None:
            raise UnsupportedPodSpec("the pod mounts its service-account token: give its dir")
        flags += ["--volume", f"{service_account_dir}:{SERVICE_ACCOUNT_PATH}:ro"]
    return flags, config_maps


def translate(
    dep: Mapping[str, Any],
    *,
    volume_dirs: Mapping[str, str],
    service_account_dir: str | None,
    pod_name: str | None = None,
) -> PodmanRun:
    """The podman flags of the Deployment's single container.

    `volume_dirs`: host directory for each ConfigMap/Secret volume by volume name (its keys as
    files, as the kubelet writes them); `service_account_dir`: the host directory holding the
    projected token, ca.crt and namespace (required when the pod automounts its token)."""
    pod = dep["spec"]["template"]["spec"]
    containers = pod["containers"]
    if len(containers) != 1 or pod.get("initContainers"):
        raise UnsupportedPodSpec("exactly one container and no init containers are translated")
    (container,) = containers
    unknown = set(container) - _HANDLED_CONTAINER_FIELDS
    if unknown:
        raise UnsupportedPodSpec(f"container fields not translated: {sorted(unknown)}")
    name = pod_name or f"{dep['metadata']['name']}-0"
    security, uid, gid, non_root = _security_flags(
        pod.get("securityContext") or {}, container.get("securityContext") or {}
    )
    flags: list[str] = ["--name", name, "--hostname", name, *security]

    limits = (container.get("resources") or {}).get("limits") or {}
    if "memory" in limits:
        flags += ["--memory", str(quantity_bytes(limits["memory"]))]
    if "cpu" in limits:
        flags += ["--cpus", f"{cpu_cores(limits['cpu']):g}"]

    for env in container.get("env") or []:
        if "value" not in env:
            raise UnsupportedPodSpec(f"env {env['name']}: only literal values are translated")
        flags += ["--env", f"{env['name']}={env['value']}"]

    volumes, config_maps = _volume_flags(pod, container, volume_dirs, service_account_dir)
    flags += volumes

    command = container.get("command") or []
    if command:  # replaces the image's ENTRYPOINT, and its CMD with the args (or none)
        flags += ["--entrypoint", json.dumps([str(c) for c in command])]

    ports = {
        p["name"]: int(p["containerPort"]) for p in container.get("ports") or [] if "name" in p
    }
    probes = tuple(
        _probe(kind, container[f"{kind}Probe"], ports)
        for kind in ("startup", "readiness", "liveness")
        if container.get(f"{kind}Probe")
    )
    return PodmanRun(
        flags=tuple(flags),
        args=tuple(str(a) for a in container.get("args") or []),
        uid=uid,
        gid=gid,
        run_as_non_root=non_root,
        probes=probes,
        grace_seconds=int(pod.get("terminationGracePeriodSeconds", DEFAULT_GRACE_SECONDS)),
        config_maps=config_maps,
    )
