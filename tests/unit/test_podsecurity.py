"""The Pod Security Standards checks, as a table from the Kubernetes documentation.

Aspects covered:
- one or more rows per control of the baseline and restricted policies (kubernetes.io "Pod
  Security Standards", v1.36): a refused value and an allowed value, with the rules and the
  paths reported at baseline and at restricted; `privileged` allows every row;
- the restricted relaxations: pod-level settings cover containers, `hostUsers: false`, Windows;
- values of the wrong type are refused (never a crash, never let through);
- the registry: each level's controls and the upstream overrides.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from federator.core import podsecurity
from federator.core.podsecurity import Level
from federator.core.problems import format_path

# A container that meets restricted; rows change one thing of it (or of the pod around it).
HARDENED: dict[str, Any] = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "runAsNonRoot": True,
    "seccompProfile": {"type": "RuntimeDefault"},
}
C0 = "spec.containers[0]"
SC = f"{C0}.securityContext"


def _merge(base: Any, extra: Any) -> Any:
    if isinstance(base, dict) and isinstance(extra, dict):
        out = dict(base)
        for key, value in extra.items():
            out[key] = _merge(base[key], value) if key in base else value
        return out
    return copy.deepcopy(extra)


def pod(
    *,
    security: dict[str, Any] | None = None,
    container: dict[str, Any] | None = None,
    spec: dict[str, Any] | None = None,
    meta: dict[str, Any] | None = None,
    hardened: bool = True,
) -> dict[str, Any]:
    """A one-container pod template: hardened (restricted) unless told, plus the changes."""
    sc = _merge(HARDENED if hardened else {}, security or {})
    body = _merge({"name": "app", "securityContext": sc}, container or {})
    return {"metadata": meta or {}, "spec": _merge({"containers": [body]}, spec or {})}


Found = set[tuple[str, str]]
# (id, pod template, violations at baseline, violations at restricted): (rule, path)
ROWS: list[tuple[str, dict[str, Any], Found, Found]] = [
    ("hardened-pod", pod(), set(), set()),
    # -- baseline: HostProcess
    (
        "hostProcess-pod-true",
        pod(spec={"securityContext": {"windowsOptions": {"hostProcess": True}}}),
        {("windowsHostProcess", "spec.securityContext.windowsOptions.hostProcess")},
        {("windowsHostProcess", "spec.securityContext.windowsOptions.hostProcess")},
    ),
    (
        "hostProcess-container-true",
        pod(security={"windowsOptions": {"hostProcess": True}}),
        {("windowsHostProcess", f"{SC}.windowsOptions.hostProcess")},
        {("windowsHostProcess", f"{SC}.windowsOptions.hostProcess")},
    ),
    ("hostProcess-false", pod(security={"windowsOptions": {"hostProcess": False}}), set(), set()),
    # -- baseline: host namespaces
    *(
        (
            f"{field}-true",
            pod(spec={field: True}),
            {("hostNamespaces", f"spec.{field}")},
            {("hostNamespaces", f"spec.{field}")},
        )
        for field in ("hostNetwork", "hostPID", "hostIPC")
    ),
    ("hostNetwork-false", pod(spec={"hostNetwork": False, "hostPID": False}), set(), set()),
    # -- baseline: privileged containers
    (
        "privileged-true",
        pod(security={"privileged": True}),
        {("privileged", f"{SC}.privileged")},
        {("privileged", f"{SC}.privileged")},
    ),
    ("privileged-false", pod(security={"privileged": False}), set(), set()),
    (
        "privileged-init-container",
        pod(spec={"initContainers": [{"name": "init", "securityContext": {"privileged": True}}]}),
        {("privileged", "spec.initContainers[0].securityContext.privileged")},
        {
            ("privileged", "spec.initContainers[0].securityContext.privileged"),
            (
                "allowPrivilegeEscalation",
                "spec.initContainers[0].securityContext.allowPrivilegeEscalation",
            ),
            ("capabilities_restricted", "spec.initContainers[0].securityContext.capabilities.drop"),
            ("runAsNonRoot", "spec.initContainers[0].securityContext.runAsNonRoot"),
            (
                "seccompProfile_restricted",
                "spec.initContainers[0].securityContext.seccompProfile.type",
            ),
        },
    ),
    # -- baseline: capabilities beyond the default set; restricted: only NET_BIND_SERVICE
    (
        "capabilities-SYS_ADMIN",
        pod(security={"capabilities": {"add": ["SYS_ADMIN"]}}),
        {("capabilities_baseline", f"{SC}.capabilities.add[0]")},
        {("capabilities_restricted", f"{SC}.capabilities.add[0]")},
    ),
    (
        "capabilities-NET_RAW",
        pod(security={"capabilities": {"add": ["NET_BIND_SERVICE", "NET_RAW"]}}),
        {("capabilities_baseline", f"{SC}.capabilities.add[1]")},
        {("capabilities_restricted", f"{SC}.capabilities.add[1]")},
    ),
    (
        "capabilities-default-set-CHOWN",
        pod(security={"capabilities": {"add": ["CHOWN"]}}),
        set(),
        {("capabilities_restricted", f"{SC}.capabilities.add[0]")},
    ),
    (
        "capabilities-NET_BIND_SERVICE",
        pod(security={"capabilities": {"add": ["NET_BIND_SERVICE"]}}),
        set(),
        set(),
    ),
    (
        "capabilities-lower-case-is-not-the-default-set",
        pod(security={"capabilities": {"add": ["chown"]}}),
        {("capabilities_baseline", f"{SC}.capabilities.add[0]")},
        {("capabilities_restricted", f"{SC}.capabilities.add[0]")},
    ),
    # -- baseline: hostPath volumes; restricted: volume types
    (
        "hostPath-volume",
        pod(spec={"volumes": [{"name": "root", "hostPath": {"path": "/"}}]}),
        {("hostPathVolumes", "spec.volumes[0].hostPath")},
        {("restrictedVolumes", "spec.volumes[0].hostPath")},
    ),
    *(
        (
            f"volume-{kind}",
            pod(spec={"volumes": [{"name": "v", kind: {}}]}),
            set(),
            {("restrictedVolumes", f"spec.volumes[0].{kind}")},
        )
        for kind in ("nfs", "gitRepo", "iscsi", "rbd", "cephfs", "awsElasticBlockStore")
    ),
    (
        "volume-allowed-kinds",
        pod(
            spec={
                "volumes": [
                    {"name": kind, kind: {}}
                    for kind in sorted(podsecurity.RESTRICTED_VOLUME_SOURCES)
                ]
            }
        ),
        set(),
        set(),
    ),
    # -- baseline: host ports
    (
        "hostPort-8080",
        pod(container={"ports": [{"containerPort": 80, "hostPort": 8080}]}),
        {("hostPorts", f"{C0}.ports[0].hostPort")},
        {("hostPorts", f"{C0}.ports[0].hostPort")},
    ),
    ("hostPort-0", pod(container={"ports": [{"containerPort": 80, "hostPort": 0}]}), set(), set()),
    # -- baseline: AppArmor
    (
        "appArmor-Unconfined",
        pod(security={"appArmorProfile": {"type": "Unconfined"}}),
        {("appArmorProfile", f"{SC}.appArmorProfile.type")},
        {("appArmorProfile", f"{SC}.appArmorProfile.type")},
    ),
    (
        "appArmor-pod-Unconfined",
        pod(spec={"securityContext": {"appArmorProfile": {"type": "Unconfined"}}}),
        {("appArmorProfile", "spec.securityContext.appArmorProfile.type")},
        {("appArmorProfile", "spec.securityContext.appArmorProfile.type")},
    ),
    (
        "appArmor-RuntimeDefault-Localhost",
        pod(
            security={"appArmorProfile": {"type": "Localhost", "localhostProfile": "p"}},
            spec={"securityContext": {"appArmorProfile": {"type": "RuntimeDefault"}}},
        ),
        set(),
        set(),
    ),
    (
        "appArmor-annotation-unconfined",
        pod(
            meta={
                "annotations": {"container.apparmor.security.beta.kubernetes.io/app": "unconfined"}
            }
        ),
        {
            (
                "appArmorProfile",
                "metadata.annotations.container.apparmor.security.beta.kubernetes.io/app",
            )
        },
        {
            (
                "appArmorProfile",
                "metadata.annotations.container.apparmor.security.beta.kubernetes.io/app",
            )
        },
    ),
    (
        "appArmor-annotation-allowed",
        pod(
            meta={
                "annotations": {
                    "container.apparmor.security.beta.kubernetes.io/app": "runtime/default",
                    "container.apparmor.security.beta.kubernetes.io/b": "localhost/profile",
                }
            }
        ),
        set(),
        set(),
    ),
    # -- baseline: SELinux
    (
        "seLinux-type-spc_t",
        pod(security={"seLinuxOptions": {"type": "spc_t"}}),
        {("seLinuxOptions", f"{SC}.seLinuxOptions.type")},
        {("seLinuxOptions", f"{SC}.seLinuxOptions.type")},
    ),
    (
        "seLinux-user-and-role",
        pod(spec={"securityContext": {"seLinuxOptions": {"user": "root", "role": "sysadm_r"}}}),
        {
            ("seLinuxOptions", "spec.securityContext.seLinuxOptions.user"),
            ("seLinuxOptions", "spec.securityContext.seLinuxOptions.role"),
        },
        {
            ("seLinuxOptions", "spec.securityContext.seLinuxOptions.user"),
            ("seLinuxOptions", "spec.securityContext.seLinuxOptions.role"),
        },
    ),
    (
        "seLinux-allowed-types",
        pod(
            security={"seLinuxOptions": {"type": "container_init_t", "level": "s0:c1"}},
            spec={"securityContext": {"seLinuxOptions": {"type": "container_engine_t"}}},
        ),
        set(),
        set(),
    ),
    # -- baseline: /proc mount type
    (
        "procMount-Unmasked",
        pod(security={"procMount": "Unmasked"}),
        {("procMount", f"{SC}.procMount")},
        {("procMount_restricted", f"{SC}.procMount")},
    ),
    (
        "procMount-Unmasked-in-user-namespace",
        pod(security={"procMount": "Unmasked"}, spec={"hostUsers": False}),
        set(),
        {("procMount_restricted", f"{SC}.procMount")},
    ),
    ("procMount-Default", pod(security={"procMount": "Default"}), set(), set()),
    # -- baseline: seccomp not Unconfined; restricted: RuntimeDefault or Localhost required
    (
        "seccomp-Unconfined",
        pod(security={"seccompProfile": {"type": "Unconfined"}}),
        {("seccompProfile_baseline", f"{SC}.seccompProfile.type")},
        {("seccompProfile_restricted", f"{SC}.seccompProfile.type")},
    ),
    (
        "seccomp-pod-Unconfined",
        pod(spec={"securityContext": {"seccompProfile": {"type": "Unconfined"}}}),
        {("seccompProfile_baseline", "spec.securityContext.seccompProfile.type")},
        {("seccompProfile_restricted", "spec.securityContext.seccompProfile.type")},
    ),
    (
        "seccomp-Localhost",
        pod(security={"seccompProfile": {"type": "Localhost", "localhostProfile": "p.json"}}),
        set(),
        set(),
    ),
    (
        "seccomp-unset",
        pod(hardened=False, security={k: v for k, v in HARDENED.items() if k != "seccompProfile"}),
        set(),
        {("seccompProfile_restricted", f"{SC}.seccompProfile.type")},
    ),
    (
        "seccomp-unset-on-container-set-on-pod",
        pod(
            hardened=False,
            security={k: v for k, v in HARDENED.items() if k != "seccompProfile"},
            spec={"securityContext": {"seccompProfile": {"type": "RuntimeDefault"}}},
        ),
        set(),
        set(),
    ),
    # -- baseline: sysctls
    (
        "sysctl-unsafe",
        pod(spec={"securityContext": {"sysctls": [{"name": "kernel.msgmax", "value": "1"}]}}),
        {("sysctls", "spec.securityContext.sysctls[0].name")},
        {("sysctls", "spec.securityContext.sysctls[0].name")},
    ),
    (
        "sysctl-safe-set",
        pod(
            spec={
                "securityContext": {
                    "sysctls": [{"name": n, "value": "1"} for n in sorted(podsecurity.SAFE_SYSCTLS)]
                }
            }
        ),
        set(),
        set(),
    ),
    # -- baseline: probe and lifecycle hosts (1.34)
    (
        "probe-host",
        pod(
            container={
                "livenessProbe": {"httpGet": {"host": "10.0.0.1", "port": 80}},
                "lifecycle": {"preStop": {"tcpSocket": {"host": "node", "port": 1}}},
            }
        ),
        {
            ("hostProbesAndHostLifecycle", f"{C0}.livenessProbe.httpGet.host"),
            ("hostProbesAndHostLifecycle", f"{C0}.lifecycle.preStop.tcpSocket.host"),
        },
        {
            ("hostProbesAndHostLifecycle", f"{C0}.livenessProbe.httpGet.host"),
            ("hostProbesAndHostLifecycle", f"{C0}.lifecycle.preStop.tcpSocket.host"),
        },
    ),
    (
        "probe-no-host",
        pod(container={"readinessProbe": {"httpGet": {"host": "", "port": 80}}}),
        set(),
        set(),
    ),
    # -- restricted: privilege escalation
    (
        "allowPrivilegeEscalation-true",
        pod(security={"allowPrivilegeEscalation": True}),
        set(),
        {("allowPrivilegeEscalation", f"{SC}.allowPrivilegeEscalation")},
    ),
    (
        "allowPrivilegeEscalation-unset",
        pod(
            hardened=False,
            security={k: v for k, v in HARDENED.items() if k != "allowPrivilegeEscalation"},
        ),
        set(),
        {("allowPrivilegeEscalation", f"{SC}.allowPrivilegeEscalation")},
    ),
    # -- restricted: running as non-root
    (
        "runAsNonRoot-false",
        pod(security={"runAsNonRoot": False}),
        set(),
        {("runAsNonRoot", f"{SC}.runAsNonRoot")},
    ),
    (
        "runAsNonRoot-pod-false",
        pod(spec={"securityContext": {"runAsNonRoot": False}}),
        set(),
        {("runAsNonRoot", "spec.securityContext.runAsNonRoot")},
    ),
    (
        "runAsNonRoot-unset",
        pod(hardened=False, security={k: v for k, v in HARDENED.items() if k != "runAsNonRoot"}),
        set(),
        {("runAsNonRoot", f"{SC}.runAsNonRoot")},
    ),
    (
        "runAsNonRoot-set-on-pod",
        pod(
            hardened=False,
            security={k: v for k, v in HARDENED.items() if k != "runAsNonRoot"},
            spec={"securityContext": {"runAsNonRoot": True}},
        ),
        set(),
        set(),
    ),
    (
        "runAsNonRoot-unset-in-user-namespace",
        pod(
            hardened=False,
            security={k: v for k, v in HARDENED.items() if k != "runAsNonRoot"},
            spec={"hostUsers": False},
        ),
        set(),
        set(),
    ),
    # -- restricted: non-root user
    (
        "runAsUser-0",
        pod(security={"runAsUser": 0}, spec={"securityContext": {"runAsUser": 0}}),
        set(),
        {("runAsUser", f"{SC}.runAsUser"), ("runAsUser", "spec.securityContext.runAsUser")},
    ),
    ("runAsUser-1000", pod(security={"runAsUser": 1000}), set(), set()),
    (
        "runAsUser-0-in-user-namespace",
        pod(security={"runAsUser": 0}, spec={"hostUsers": False}),
        set(),
        set(),
    ),
    # -- restricted: capabilities drop ALL
    (
        "capabilities-drop-missing-ALL",
        pod(hardened=False, security={**HARDENED, "capabilities": {"drop": ["NET_RAW"]}}),
        set(),
        {("capabilities_restricted", f"{SC}.capabilities.drop")},
    ),
    # -- restricted: Windows pods are exempt from the Linux-only controls
    (
        "windows-pod",
        pod(hardened=False, security={"runAsNonRoot": True}, spec={"os": {"name": "windows"}}),
        set(),
        set(),
    ),
    # -- values of the wrong type are refused, never let through
    (
        "privileged-string",
        pod(security={"privileged": "true"}),
        {("privileged", f"{SC}.privileged")},
        {("privileged", f"{SC}.privileged")},
    ),
    (
        "capability-not-a-string",
        pod(security={"capabilities": {"add": [{"SYS_ADMIN": True}]}}),
        {("capabilities_baseline", f"{SC}.capabilities.add[0]")},
        {("capabilities_restricted", f"{SC}.capabilities.add[0]")},
    ),
    (
        "hostPort-bool",
        pod(container={"ports": [{"containerPort": 80, "hostPort": True}]}),
        {("hostPorts", f"{C0}.ports[0].hostPort")},
        {("hostPorts", f"{C0}.ports[0].hostPort")},
    ),
]


def found(template: dict[str, Any], level: Level) -> Found:
    return {(v.rule, format_path(v.path)) for v in podsecurity.check(template, level)}


@pytest.mark.parametrize(
    ("template", "baseline", "restricted"),
    [pytest.param(t, b, r, id=i) for i, t, b, r in ROWS],
)
def test_baseline_and_restricted(
    template: dict[str, Any], baseline: Found, restricted: Found
) -> None:
    assert found(template, Level.BASELINE) == baseline
    assert found(template, Level.RESTRICTED) == restricted


@pytest.mark.parametrize("template", [pytest.param(t, id=i) for i, t, _, _ in ROWS])
def test_privileged_allows_everything(template: dict[str, Any]) -> None:
    assert podsecurity.check(template, Level.PRIVILEGED) == []


def test_required_values_are_marked_required() -> None:
    bare = pod(hardened=False)
    violations = podsecurity.check(bare, Level.RESTRICTED)
    assert {v.rule for v in violations} == {
        "allowPrivilegeEscalation",
        "capabilities_restricted",
        "runAsNonRoot",
        "seccompProfile_restricted",
    }
    assert all(v.required for v in violations)
    assert not any(
        v.required for v in podsecurity.check(pod(spec={"hostPID": True}), Level.BASELINE)
    )


@pytest.mark.parametrize(
    "template",
    [
        pytest.param({}, id="empty"),
        pytest.param({"spec": "x", "metadata": 3}, id="not-mappings"),
        pytest.param({"spec": {"containers": "x", "volumes": [None, 1]}}, id="not-lists"),
        pytest.param({"spec": {"containers": [None, {"securityContext": []}]}}, id="bad-items"),
    ],
)
def test_any_shape_is_checked_without_crashing(template: dict[str, Any]) -> None:
    for level in Level:
        podsecurity.check(template, level)


def test_each_level_runs_the_upstream_controls() -> None:
    baseline = {c.id for c in podsecurity.controls(Level.BASELINE)}
    restricted = {c.id for c in podsecurity.controls(Level.RESTRICTED)}
    assert podsecurity.controls(Level.PRIVILEGED) == ()
    assert baseline == {
        "windowsHostProcess",
        "hostNamespaces",
        "privileged",
        "capabilities_baseline",
        "hostPathVolumes",
        "hostPorts",
        "appArmorProfile",
        "seLinuxOptions",
        "procMount",
        "seccompProfile_baseline",
        "sysctls",
        "hostProbesAndHostLifecycle",
    }
    # Restricted tightens four baseline checks (upstream's OverrideCheckIDs) and adds three.
    assert restricted == (
        baseline
        - {"capabilities_baseline", "hostPathVolumes", "procMount", "seccompProfile_baseline"}
    ) | {
        "capabilities_restricted",
        "restrictedVolumes",
        "procMount_restricted",
        "seccompProfile_restricted",
        "allowPrivilegeEscalation",
        "runAsNonRoot",
        "runAsUser",
    }
