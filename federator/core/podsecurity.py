"""The Pod Security Standards, checked over a pod template given as plain data.

A pure rendition of the upstream definitions (kubernetes.io "Pod Security Standards" and the
reference implementation, k8s.io/pod-security-admission `policy/check_*.go`) at their latest
released version, Kubernetes v1.36: one function per upstream check, named by the upstream
check ID, registered at the upstream level, with the upstream overrides (a restricted check
replaces the baseline check it tightens).

Where upstream reads typed Go structs, we read whatever a user wrote: a value is allowed only
if it is one of the documented allowed values, so a mistyped `privileged: "true"` is refused
rather than slipping through. Every offending field is reported (not only the first), with its
path in the pod template (`spec.hostNetwork`, `metadata.annotations[...]`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from typing import Any

KUBERNETES_VERSION = "1.36"
"""The policy version implemented (pod-security-admission v0.36, the latest release)."""


class Level(StrEnum):
    """The three cumulative Pod Security Standards levels."""

    PRIVILEGED = "privileged"  # no restriction at all
    BASELINE = "baseline"  # prevents known privilege escalations
    RESTRICTED = "restricted"  # current pod hardening best practice


Path = tuple[str | int, ...]


@dataclass(frozen=True, kw_only=True, order=True)
class Violation:
    """One field of a pod template that the level does not allow, or that it requires."""

    path: Path
    """Where, in the pod template: ("spec", "containers", 0, "securityContext", "privileged")."""
    rule: str
    """The upstream check ID (`hostNamespaces`, `capabilities_restricted`, ...)."""
    message: str
    """What is wrong, naming the container or volume."""
    allowed: str
    """The allowed values, as the standard words them."""
    required: bool = False
    """True when a value the level requires is missing (restricted), False when a value that
    is set is forbidden."""


# -- reading plain data ------------------------------------------------------------------------


def _map(value: Any) -> Mapping[str, Any]:
    if type(value) is dict:  # the common case, without the ABC check (runs per field read)
        return value
    if value is None:  # the next most common: an unset field
        return {}
    return value if isinstance(value, Mapping) else {}


def _items(value: Any) -> Sequence[Any]:
    return value if isinstance(value, list) else ()


def _unset_or_false(value: Any) -> bool:
    return value is None or value is False


def _unset_or_empty(value: Any) -> bool:
    return value is None or value == ""


def _show(value: Any) -> str:
    """A value as the user wrote it in YAML/JSON (`true`, `"SYS_ADMIN"`), not as Python."""
    return json.dumps(value, default=str)


def _among(value: Any, allowed: frozenset[str]) -> bool:
    """`value in allowed` for anything a user may write (a dict is unhashable, not allowed)."""
    return isinstance(value, str) and value in allowed


def _is_int(value: Any, wanted: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value == wanted


@dataclass(frozen=True)
class _Container:
    path: Path
    name: str
    body: Mapping[str, Any]

    @property
    def security(self) -> Mapping[str, Any]:
        return _map(self.body.get("securityContext"))

    def at(self, *rest: str | int) -> Path:
        return (*self.path, *rest)

    def __str__(self) -> str:
        return f"container {_show(self.name)}"


def _containers(spec: Mapping[str, Any]) -> Sequence[_Container]:
    """Every container the pod runs, in upstream's order: init, regular, ephemeral."""
    if type(spec) is _Spec:
        return spec.containers
    return [
        _Container(("spec", field, i), str(body.get("name", f"#{i}")), body)
        for field in ("initContainers", "containers", "ephemeralContainers")
        for i, body in enumerate(map(_map, _items(spec.get(field))))
    ]


class _Spec(dict[str, Any]):
    """A pod spec read by `check`, with its containers listed once: each of the checks walks
    them, and a compile checks thousands of pods."""

    containers: Sequence[_Container] = ()


def _pod_security(spec: Mapping[str, Any]) -> Mapping[str, Any]:
    return _map(spec.get("securityContext"))


def _windows(spec: Mapping[str, Any]) -> bool:
    """Windows pods are exempt from the Linux-only restricted checks (upstream, 1.25+)."""
    return _map(spec.get("os")).get("name") == "windows"


def _user_namespace(spec: Mapping[str, Any]) -> bool:
    """`hostUsers: false` relaxes runAsNonRoot, runAsUser and baseline procMount (1.35+)."""
    return spec.get("hostUsers") is False


Check = Callable[[Mapping[str, Any], Mapping[str, Any]], Iterator[Violation]]
"""(pod metadata, pod spec) -> violations."""


# -- baseline ----------------------------------------------------------------------------------


def windows_host_process(meta: Mapping[str, Any], spec: Mapping[str, Any]) -> Iterator[Violation]:
    """HostProcess containers give privileged access to the Windows node."""
    allowed = "false or unset"
    pod = _map(_pod_security(spec).get("windowsOptions")).get("hostProcess")
    if not _unset_or_false(pod):
        path: Path = ("spec", "securityContext", "windowsOptions", "hostProcess")
        yield Violation(
            path=path,
            rule="windowsHostProcess",
            message=f"pod sets hostProcess={_show(pod)}",
            allowed=allowed,
        )
    for c in _containers(spec):
        value = _map(c.security.get("windowsOptions")).get("hostProcess")
        if not _unset_or_false(value):
            yield Violation(
                path=c.at("securityContext", "windowsOptions", "hostProcess"),
                rule="windowsHostProcess",
                message=f"{c} sets hostProcess={_show(value)}",
                allowed=allowed,
            )


def host_namespaces(meta: Mapping[str, Any], spec: Mapping[str, Any]) -> Iterator[Violation]:
    """Sharing the host's network, PID or IPC namespace must be disallowed."""
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if not _unset_or_false(spec.get(field)):
            yield Violation(
                path=("spec", field),
                rule="hostNamespaces",
                message=f"{field}={_show(spec[field])} shares the node's namespace",
                allowed="false or unset",
            )


def privileged(meta: Mapping[str, Any], spec: Mapping[str, Any]) -> Iterator[Violation]:
    """Privileged containers disable most security mechanisms."""
    for c in _containers(spec):
        if not _unset_or_false(c.security.get("privileged")):
            yield Violation(
                path=c.at("securityContext", "privileged"),
                rule="privileged",
                message=f"{c} sets privileged={_show(c.security['privileged'])}",
                allowed="false or unset",
            )


BASELINE_CAPABILITIES = frozenset(
    {
        "AUDIT_WRITE",
        "CHOWN",
        "DAC_OVERRIDE",
        "FOWNER",
        "FSETID",
        "KILL",
        "MKNOD",
        "NET_BIND_SERVICE",
        "SETFCAP",
        "SETGID",
        "SETPCAP",
        "SETUID",
        "SYS_CHROOT",
    }
)
"""The container runtimes' default set: adding one of these changes nothing."""


def _added(c: _Container, allowed: frozenset[str], rule: str, words: str) -> Iterator[Violation]:
    add = _map(c.security.get("capabilities")).get("add")
    if add is not None and not isinstance(add, list):
        path = c.at("securityContext", "capabilities", "add")
        yield Violation(path=path, rule=rule, message=f"{c} adds {_show(add)}", allowed=words)
        return
    for j, cap in enumerate(_items(add)):
        if not _among(cap, allowed):
            yield Violation(
                path=c.at("securityContext", "capabilities", "add", j),
                rule=rule,
                message=f"{c} adds capability {_show(cap)}",
                allowed=words,
            )


def capabilities_baseline(meta: Mapping[str, Any], spec: Mapping[str, Any]) -> Iterator[Violation]:
    """Capabilities beyond the runtime's default set must not be added."""
    words = "unset, or from " + ", ".join(sorted(BASELINE_CAPABILITIES))
    for c in _containers(spec):
        yield from _added(c, BASELINE_CAPABILITIES, "capabilities_baseline", words)


def host_path_volumes(meta: Mapping[str, Any], spec: Mapping[str, Any]) -> Iterator[Violation]:
    """HostPath volumes give access to the node's file system."""
    for i, volume in enumerate(_items(spec.get("volumes"))):
        source = _map(volume).get("hostPath")
        if source is not None:
            yield Violation(
                path=("spec", "volumes", i, "hostPath"),
                rule="hostPathVolumes",
                message=f"volume {_show(_map(volume).get('name'))} mounts the node's "
                f"{_show(_map(source).get('path', ''))}",
                allowed="unset",
            )


def host_ports(meta: Mapping[str, Any], spec: Mapping[str, Any]) -> Iterator[Violation]:
    """HostPorts bind the node's ports."""
    for c in _containers(spec):
        for j, port in enumerate(_items(c.body.get("ports"))):
            value = _map(port).get("hostPort")
            if value is not None and not _is_int(value, 0):
                yield Violation(
                    path=c.at("ports", j, "hostPort"),
                    rule="hostPorts",
                    message=f"{c} uses hostPort {_show(value)}",
                    allowed="0 or unset",
                )


APPARMOR_ANNOTATION_PREFIX = "container.apparmor.security.beta.kubernetes.io/"
APPARMOR_TYPES = frozenset({"RuntimeDefault", "Localhost"})


def _apparmor_annotation_allowed(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    return value in ("", "runtime/default") or value.startswith("localhost/")


def app_armor_profile(meta: Mapping[str, Any], spec: Mapping[str, Any]) -> Iterator[Violation]:
    """The runtime's default AppArmor profile must not be overridden or disabled."""
    allowed = "RuntimeDefault, Localhost or unset"
    profile = _pod_security(spec).get("appArmorProfile")
    if profile is not None and not _among(_map(profile).get("type"), APPARMOR_TYPES):
        yield Violation(
            path=("spec", "securityContext", "appArmorProfile", "type"),
            rule="appArmorProfile",
            message=f"pod sets AppArmor profile type {_show(_map(profile).get('type'))}",
            allowed=allowed,
        )
    for c in _containers(spec):
        profile = c.security.get("appArmorProfile")
        if profile is not None and not _among(_map(profile).get("type"), APPARMOR_TYPES):
            yield Violation(
                path=c.at("securityContext", "appArmorProfile", "type"),
                rule="appArmorProfile",
                message=f"{c} sets AppArmor profile type {_show(_map(profile).get('type'))}",
                allowed=allowed,
            )
    for key, value in sorted(_map(meta.get("annotations")).items()):
        if str(key).startswith(APPARMOR_ANNOTATION_PREFIX) and not _apparmor_annotation_allowed(
            value
        ):
            yield Violation(
                path=("metadata", "annotations", key),
                rule="appArmorProfile",
                message=f"annotation {key}={_show(value)}",
                allowed="runtime/default, localhost/*, empty or unset",
            )


SELINUX_TYPES = frozenset(
    {"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"}
)


def _selinux(options: Any, at: Path, who: str) -> Iterator[Violation]:
    if options is None:
        return
    opts = _map(options)
    kind = opts.get("type")
    if kind is not None and not _among(kind, SELINUX_TYPES):
        yield Violation(
            path=(*at, "type"),
            rule="seLinuxOptions",
            message=f"{who} sets SELinux type {_show(kind)}",
            allowed="unset, " + ", ".join(sorted(SELINUX_TYPES - {""})),
        )
    for field in ("user", "role"):
        if not _unset_or_empty(opts.get(field)):
            yield Violation(
                path=(*at, field),
                rule="seLinuxOptions",
                message=f"{who} sets SELinux {field} {_show(opts[field])}",
                allowed="unset",
            )


def se_linux_options(meta: Mapping[str, Any], spec: Mapping[str, Any]) -> Iterator[Violation]:
    """Setting the SELinux type is restricted; a custom SELinux user or role is forbidden."""
    yield from _selinux(
        _pod_security(spec).get("seLinuxOptions"),
        ("spec", "securityContext", "seLinuxOptions"),
        "pod",
    )
    for c in _containers(spec):
        yield from _selinux(
            c.security.get("seLinuxOptions"), c.at("securityContext", "seLinuxOptions"), str(c)
        )


def _proc_mount(spec: Mapping[str, Any], rule: str) -> Iterator[Violation]:
    for c in _containers(spec):
        value = c.security.get("procMount")
        if value is not None and value != "Default":
            yield Violation(
                path=c.at("securityContext", "procMount"),
                rule=rule,
                message=f"{c} sets procMount {_show(value)} (unmasks /proc)",
                allowed="Default or unset",
            )


def proc_mount(meta: Mapping[str, Any], spec: Mapping[str, Any]) -> Iterator[Violation]:
    """The default /proc masks are required, unless the pod is in a user namespace."""
    if not _user_namespace(spec):
        yield from _proc_mount(spec, "procMount")


SECCOMP_TYPES = frozenset({"RuntimeDefault", "Localhost"})


def seccomp_profile_baseline(
    meta: Mapping[str, Any], spec: Mapping[str, Any]
) -> Iterator[Violation]:
    """A seccomp profile, when set, must not be Unconfined."""
    allowed = "RuntimeDefault, Localhost or unset"
    profile = _pod_security(spec).get("seccompProfile")
    if profile is not None and not _among(_map(profile).get("type"), SECCOMP_TYPES):
        yield Violation(
            path=("spec", "securityContext", "seccompProfile", "type"),
            rule="seccompProfile_baseline",
            message=f"pod sets seccomp profile type {_show(_map(profile).get('type'))}",
            allowed=allowed,
        )
    for c in _containers(spec):
        profile = c.security.get("seccompProfile")
        if profile is not None and not _among(_map(profile).get("type"), SECCOMP_TYPES):
            yield Violation(
                path=c.at("securityContext", "seccompProfile", "type"),
                rule="seccompProfile_baseline",
                message=f"{c} sets seccomp profile type {_show(_map(profile).get('type'))}",
                allowed=allowed,
            )


SAFE_SYSCTLS = frozenset(
    {
        "kernel.shm_rmid_forced",
        "net.ipv4.ip_local_port_range",
        "net.ipv4.tcp_syncookies",
        "net.ipv4.ping_group_range",
        "net.ipv4.ip_unprivileged_port_start",
        "net.ipv4.ip_local_reserved_ports",  # 1.27
        "net.ipv4.tcp_keepalive_time",  # 1.29
        "net.ipv4.tcp_fin_timeout",
        "net.ipv4.tcp_keepalive_intvl",
        "net.ipv4.tcp_keepalive_probes",
        "net.ipv4.tcp_rmem",  # 1.32
        "net.ipv4.tcp_wmem",
    }
)
"""Namespaced sysctls, isolated from other pods on the node (the 1.32+ set, current in 1.36)."""


def sysctls(meta: Mapping[str, Any], spec: Mapping[str, Any]) -> Iterator[Violation]:
    """Sysctls outside the safe set can disable security mechanisms or affect the node."""
    for i, item in enumerate(_items(_pod_security(spec).get("sysctls"))):
        name = _map(item).get("name")
        if not _among(name, SAFE_SYSCTLS):
            yield Violation(
                path=("spec", "securityContext", "sysctls", i, "name"),
                rule="sysctls",
                message=f"pod sets sysctl {_show(name)}",
                allowed=", ".join(sorted(SAFE_SYSCTLS)),
            )


_PROBES = ("livenessProbe", "readinessProbe", "startupProbe")
_HANDLERS = ("postStart", "preStop")


def host_probes_and_host_lifecycle(
    meta: Mapping[str, Any], spec: Mapping[str, Any]
) -> Iterator[Violation]:
    """Probes and lifecycle handlers must not reach another host (1.34+)."""
    for c in _containers(spec):
        handlers: list[tuple[Path, Any]] = [(c.at(p), c.body.get(p)) for p in _PROBES]
        lifecycle = _map(c.body.get("lifecycle"))
        handlers += [(c.at("lifecycle", h), lifecycle.get(h)) for h in _HANDLERS]
        for at, handler in handlers:
            for action in ("httpGet", "tcpSocket"):
                host = _map(_map(handler).get(action)).get("host")
                if not _unset_or_empty(host):
                    yield Violation(
                        path=(*at, action, "host"),
                        rule="hostProbesAndHostLifecycle",
                        message=f"{c} probes or calls host {_show(host)}",
                        allowed="empty or unset",
                    )


# -- restricted --------------------------------------------------------------------------------

RESTRICTED_VOLUME_SOURCES = frozenset(
    {
        "configMap",
        "csi",
        "downwardAPI",
        "emptyDir",
        "ephemeral",
        "image",
        "persistentVolumeClaim",
        "projected",
        "secret",
    }
)


def restricted_volumes(meta: Mapping[str, Any], spec: Mapping[str, Any]) -> Iterator[Violation]:
    """Only inline volume sources that cannot reach the node or the network directly."""
    allowed = ", ".join(sorted(RESTRICTED_VOLUME_SOURCES))
    for i, volume in enumerate(_items(spec.get("volumes"))):
        body = _map(volume)
        sources = [k for k, v in body.items() if k != "name" and v is not None]
        bad = [k for k in sources if not _among(k, RESTRICTED_VOLUME_SOURCES)]
        for kind in bad:
            yield Violation(
                path=("spec", "volumes", i, kind),
                rule="restrictedVolumes",
                message=f"volume {_show(body.get('name'))} uses volume type {_show(kind)}",
                allowed=allowed,
            )
        if not sources:
            yield Violation(
                path=("spec", "volumes", i),
                rule="restrictedVolumes",
                message=f"volume {_show(body.get('name'))} names no volume source",
                allowed=allowed,
            )


def allow_privilege_escalation(
    meta: Mapping[str, Any], spec: Mapping[str, Any]
) -> Iterator[Violation]:
    """Privilege escalation (set-user-ID binaries, ...) must be turned off explicitly."""
    if _windows(spec):
        return
    for c in _containers(spec):
        value = c.security.get("allowPrivilegeEscalation")
        if value is not False:
            yield Violation(
                path=c.at("securityContext", "allowPrivilegeEscalation"),
                rule="allowPrivilegeEscalation",
                message=f"{c} must set securityContext.allowPrivilegeEscalation=false"
                + ("" if value is None else f", not {_show(value)}"),
                allowed="false",
                required=value is None,
            )


def run_as_non_root(meta: Mapping[str, Any], spec: Mapping[str, Any]) -> Iterator[Violation]:
    """Containers must run as non-root users (the pod may say so for all of them)."""
    if _user_namespace(spec):
        return
    pod = _pod_security(spec).get("runAsNonRoot")
    if pod is not None and pod is not True:
        yield Violation(
            path=("spec", "securityContext", "runAsNonRoot"),
            rule="runAsNonRoot",
            message=f"pod sets runAsNonRoot={_show(pod)}",
            allowed="true",
        )
    for c in _containers(spec):
        value = c.security.get("runAsNonRoot")
        if value is None and pod is True:
            continue
        if value is not True:
            yield Violation(
                path=c.at("securityContext", "runAsNonRoot"),
                rule="runAsNonRoot",
                message=(
                    f"{c} (or the pod) must set securityContext.runAsNonRoot=true"
                    if value is None
                    else f"{c} sets runAsNonRoot={_show(value)}"
                ),
                allowed="true (on the container, or on the pod for all its containers)",
                required=value is None,
            )


def run_as_user(meta: Mapping[str, Any], spec: Mapping[str, Any]) -> Iterator[Violation]:
    """Containers must not run as user 0 (root)."""
    if _user_namespace(spec):
        return
    allowed = "non-zero or unset"
    if _is_int(_pod_security(spec).get("runAsUser"), 0):
        path: Path = ("spec", "securityContext", "runAsUser")
        yield Violation(
            path=path, rule="runAsUser", message="pod sets runAsUser=0", allowed=allowed
        )
    for c in _containers(spec):
        if _is_int(c.security.get("runAsUser"), 0):
            yield Violation(
                path=c.at("securityContext", "runAsUser"),
                rule="runAsUser",
                message=f"{c} sets runAsUser=0",
                allowed=allowed,
            )


def seccomp_profile_restricted(
    meta: Mapping[str, Any], spec: Mapping[str, Any]
) -> Iterator[Violation]:
    """A RuntimeDefault or Localhost seccomp profile is required (on the pod, or on each
    container)."""
    if _windows(spec):
        return
    allowed = "RuntimeDefault or Localhost (on the container, or on the pod for all)"
    rule = "seccompProfile_restricted"
    profile = _pod_security(spec).get("seccompProfile")
    pod_set = False
    if profile is not None:
        if _among(_map(profile).get("type"), SECCOMP_TYPES):
            pod_set = True
        else:
            yield Violation(
                path=("spec", "securityContext", "seccompProfile", "type"),
                rule=rule,
                message=f"pod sets seccomp profile type {_show(_map(profile).get('type'))}",
                allowed=allowed,
            )
    for c in _containers(spec):
        profile = c.security.get("seccompProfile")
        if profile is not None:
            if not _among(_map(profile).get("type"), SECCOMP_TYPES):
                yield Violation(
                    path=c.at("securityContext", "seccompProfile", "type"),
                    rule=rule,
                    message=f"{c} sets seccomp profile type {_show(_map(profile).get('type'))}",
                    allowed=allowed,
                )
        elif not pod_set:
            yield Violation(
                path=c.at("securityContext", "seccompProfile", "type"),
                rule=rule,
                message=f"{c} (or the pod) must set securityContext.seccompProfile.type",
                allowed=allowed,
                required=True,
            )


def capabilities_restricted(
    meta: Mapping[str, Any], spec: Mapping[str, Any]
) -> Iterator[Violation]:
    """Containers must drop ALL capabilities and may add back only NET_BIND_SERVICE."""
    if _windows(spec):
        return
    rule = "capabilities_restricted"
    for c in _containers(spec):
        drop = _map(c.security.get("capabilities")).get("drop")
        if "ALL" not in _items(drop):
            yield Violation(
                path=c.at("securityContext", "capabilities", "drop"),
                rule=rule,
                message=f'{c} must set securityContext.capabilities.drop=["ALL"]',
                allowed='a list including "ALL"',
                required=drop is None,
            )
        yield from _added(c, frozenset({"NET_BIND_SERVICE"}), rule, "NET_BIND_SERVICE or unset")


def proc_mount_restricted(meta: Mapping[str, Any], spec: Mapping[str, Any]) -> Iterator[Violation]:
    """The default /proc masks are required, user namespace or not."""
    yield from _proc_mount(spec, "procMount_restricted")


# -- the registry ------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Control:
    """One upstream check: its ID, level, function and the baseline checks it replaces."""

    id: str
    level: Level
    check: Check
    overrides: tuple[str, ...] = ()


CONTROLS: tuple[Control, ...] = (
    Control(id="windowsHostProcess", level=Level.BASELINE, check=windows_host_process),
    Control(id="hostNamespaces", level=Level.BASELINE, check=host_namespaces),
    Control(id="privileged", level=Level.BASELINE, check=privileged),
    Control(id="capabilities_baseline", level=Level.BASELINE, check=capabilities_baseline),
    Control(id="hostPathVolumes", level=Level.BASELINE, check=host_path_volumes),
    Control(id="hostPorts", level=Level.BASELINE, check=host_ports),
    Control(id="appArmorProfile", level=Level.BASELINE, check=app_armor_profile),
    Control(id="seLinuxOptions", level=Level.BASELINE, check=se_linux_options),
    Control(id="procMount", level=Level.BASELINE, check=proc_mount),
    Control(id="seccompProfile_baseline", level=Level.BASELINE, check=seccomp_profile_baseline),
    Control(id="sysctls", level=Level.BASELINE, check=sysctls),
    Control(
        id="hostProbesAndHostLifecycle",
        level=Level.BASELINE,
        check=host_probes_and_host_lifecycle,
    ),
    Control(
        id="restrictedVolumes",
        level=Level.RESTRICTED,
        check=restricted_volumes,
        overrides=("hostPathVolumes",),
    ),
    Control(
        id="allowPrivilegeEscalation", level=Level.RESTRICTED, check=allow_privilege_escalation
    ),
    Control(id="runAsNonRoot", level=Level.RESTRICTED, check=run_as_non_root),
    Control(id="runAsUser", level=Level.RESTRICTED, check=run_as_user),
    Control(
        id="seccompProfile_restricted",
        level=Level.RESTRICTED,
        check=seccomp_profile_restricted,
        overrides=("seccompProfile_baseline",),
    ),
    Control(
        id="capabilities_restricted",
        level=Level.RESTRICTED,
        check=capabilities_restricted,
        overrides=("capabilities_baseline",),
    ),
    Control(
        id="procMount_restricted",
        level=Level.RESTRICTED,
        check=proc_mount_restricted,
        overrides=("procMount",),
    ),
)


@cache
def controls(level: Level) -> tuple[Control, ...]:
    """The checks a level runs: none for privileged; baseline's; restricted's plus the
    baseline checks no restricted check replaces. (Remembered: asked once per pod.)"""
    if level is Level.PRIVILEGED:
        return ()
    chosen = [c for c in CONTROLS if c.level is Level.BASELINE or level is Level.RESTRICTED]
    replaced = {o for c in chosen for o in c.overrides}
    return tuple(c for c in chosen if c.id not in replaced)


def check(template: Mapping[str, Any], level: Level) -> list[Violation]:
    """Every violation of `level` in a pod template (`{"metadata": ..., "spec": ...}`, as in a
    Deployment's `spec.template`), ordered by path."""
    meta = _map(template.get("metadata"))
    raw = _map(template.get("spec"))
    spec = _Spec(raw)
    spec.containers = _containers(raw)
    found = [v for control in controls(level) for v in control.check(meta, spec)]
    return sorted(set(found), key=lambda v: (tuple(map(str, v.path)), v.rule))
