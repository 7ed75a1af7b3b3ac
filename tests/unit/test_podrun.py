"""The chart's Deployment -> `podman run` translation, on the real `helm template` output.

The image test (tests/integration/test_image.py) runs the image with these flags, so each field
of the rendered pod spec that changes how the container runs must come out as its podman flag,
and anything the translation cannot reproduce must be refused, never dropped.

Aspects covered:
- the default render: user and group, runAsNonRoot, read-only root without podman's own tmpfs,
  no-new-privileges, every capability dropped, the memory limit in bytes, env, command as the
  entrypoint and args after the image, the settings ConfigMap at its mount path read-only, /tmp
  as a tmpfs of the emptyDir's sizeLimit, the service-account folder at the kubelet's path, the
  probes with their named port resolved, the grace period;
- values change the flags (resources, tmpSizeLimit, a verbose operator's args);
- refusals: runAsNonRoot with uid 0, an env valueFrom, an unknown volume kind, a missing host
  directory, a container field the translation does not know;
- Kubernetes quantities.
"""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from federator.devcluster import build
from federator.devcluster.harness import in_ci
from federator.devcluster.podrun import (
    SERVICE_ACCOUNT_PATH,
    UnsupportedPodSpec,
    cpu_cores,
    deployment,
    quantity_bytes,
    translate,
)

CHART = Path(__file__).resolve().parents[2] / "charts" / "federator"
DIRS = {"volume_dirs": {"settings": "/host/settings"}, "service_account_dir": "/host/sa"}


@pytest.fixture(scope="module")
def helm() -> Path:
    """helm from the control-plane bin directory (CI never builds here, and never skips)."""
    try:
        tools = build.ensure_binaries(build=not in_ci(), names=["helm"], out=sys.__stderr__)
    except build.BuildError as exc:
        pytest.fail(f"helm unavailable: {exc}", pytrace=False)
    return tools / "helm"


def render(helm: Path, *sets: str) -> dict[str, Any]:
    args = [str(helm), "template", "federator", str(CHART), "--namespace", "federator-system"]
    for item in sets:
        args += ["--set", item]
    out = subprocess.run(args, capture_output=True, text=True, timeout=120, check=True).stdout
    return deployment(yaml.safe_load_all(out))  # type: ignore[no-any-return]


def pairs(flags: tuple[str, ...], name: str) -> list[str]:
    return [flags[i + 1] for i, flag in enumerate(flags) if flag == name]


def test_the_default_render(helm: Path) -> None:
    dep = render(helm)
    pod = dep["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    run = translate(dep, **DIRS)  # type: ignore[arg-type]
    flags = run.flags
    assert pairs(flags, "--user") == ["65532:65532"]
    assert run.uid == pod["securityContext"]["runAsUser"] == 65532
    assert run.run_as_non_root
    assert "--read-only" in flags and "--read-only-tmpfs=false" in flags
    assert pairs(flags, "--security-opt") == ["no-new-privileges"]
    assert pairs(flags, "--cap-drop") == ["ALL"]
    assert pairs(flags, "--memory") == [
        str(quantity_bytes(container["resources"]["limits"]["memory"]))
    ]
    assert pairs(flags, "--env") == [f"{e['name']}={e['value']}" for e in container["env"]]
    assert pairs(flags, "--entrypoint") == []  # the image's: tini, then federator
    assert run.args == tuple(container["args"]) and run.args[:1] == ("run",)
    assert pairs(flags, "--volume") == [
        "/host/settings:/etc/federator:ro",
        f"/host/sa:{SERVICE_ACCOUNT_PATH}:ro",
    ]
    assert run.config_maps == {"settings": "federator"}
    size = quantity_bytes(
        next(v for v in pod["volumes"] if v["name"] == "tmp")["emptyDir"]["sizeLimit"]
    )
    assert pairs(flags, "--tmpfs") == [f"/tmp:rw,mode=1777,size={size}"]
    healthz = next(p["containerPort"] for p in container["ports"] if p["name"] == "healthz")
    assert {(p.kind, p.path, p.port) for p in run.probes} == {
        (kind, "/healthz", healthz) for kind in ("startup", "readiness", "liveness")
    }
    assert run.grace_seconds == pod.get("terminationGracePeriodSeconds", 30)
    argv = run.argv("localhost/federator:x", "--detach")
    assert argv[:2] == ["podman", "run"]
    assert argv[argv.index("localhost/federator:x") + 1 :] == list(run.args)


def test_values_change_the_flags(helm: Path) -> None:
    run = translate(
        render(
            helm,
            "resources.limits.memory=1Gi",
            "resources.limits.cpu=500m",
            "tmpSizeLimit=32Mi",
            "operator.verbose=true",
            "operator.livenessPort=18081",
        ),
        **DIRS,  # type: ignore[arg-type]
    )
    assert pairs(run.flags, "--memory") == [str(1 << 30)]
    assert pairs(run.flags, "--cpus") == ["0.5"]
    assert pairs(run.flags, "--tmpfs") == [f"/tmp:rw,mode=1777,size={32 << 20}"]
    assert "--verbose" in run.args
    assert {p.port for p in run.probes} == {18081}


def test_what_cannot_be_reproduced_is_refused(helm: Path) -> None:
    dep = render(helm)

    def changed(edit: Any) -> dict[str, Any]:
        copied = copy.deepcopy(dep)
        edit(copied["spec"]["template"]["spec"])
        return copied

    def root(pod: dict[str, Any]) -> None:
        pod["securityContext"]["runAsUser"] = 0

    def value_from(pod: dict[str, Any]) -> None:
        pod["containers"][0]["env"].append(
            {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}
        )

    def host_path(pod: dict[str, Any]) -> None:
        pod["volumes"][0] = {"name": pod["volumes"][0]["name"], "hostPath": {"path": "/"}}

    def unknown_field(pod: dict[str, Any]) -> None:
        pod["containers"][0]["lifecycle"] = {"preStop": {"exec": {"command": ["true"]}}}

    for edit, words in (
        (root, "runAsNonRoot"),
        (value_from, "literal values"),
        (host_path, "only emptyDir"),
        (unknown_field, "lifecycle"),
    ):
        with pytest.raises(UnsupportedPodSpec, match=words):
            translate(changed(edit), **DIRS)  # type: ignore[arg-type]
    with pytest.raises(UnsupportedPodSpec, match="no host directory"):
        translate(dep, volume_dirs={}, service_account_dir="/sa")
    with pytest.raises(UnsupportedPodSpec, match="service-account"):
        translate(dep, volume_dirs={"settings": "/s"}, service_account_dir=None)


def test_quantities() -> None:
    assert quantity_bytes("512Mi") == 512 << 20
    assert quantity_bytes("1G") == 10**9
    assert quantity_bytes(1048576) == 1 << 20
    assert cpu_cores("250m") == 0.25 and cpu_cores("2") == 2.0
    with pytest.raises(UnsupportedPodSpec):
        quantity_bytes("lots")
