"""The container image, built from the Dockerfile and started as the chart's Deployment says.

`make image` builds it (podman from Debian packages, on a base made from Debian packages,
see federator/devcluster/image.py); CI builds it before pytest, and a missing image FAILS here.
Every flag of the run comes from `helm template charts/federator` (federator/devcluster/podrun.py
translates the rendered Deployment): user and group, runAsNonRoot, read-only root, /tmp as a
tmpfs of the emptyDir's sizeLimit, dropped capabilities, no-new-privileges, the memory limit,
env, command and args, the settings ConfigMap at its mount path. The pod's identity is the
kubelet's: the chart's ServiceAccount and RBAC applied to the control plane, a TokenRequest
token, `ca.crt` (the kube-root-ca.crt ConfigMap) and `namespace` at the service-account path,
KUBERNETES_SERVICE_HOST/PORT at the embedded API server (host network); no kubeconfig. The
delegate simulator stands in for Strimzi, Spark and Flink.

Aspects covered, in order, on one container:
- the image holds no build secret (no host CA bundle file, no pip index settings);
- the container runs as the rendered pod says (uid/gid, read-only root, /tmp writable, no
  capabilities, no kubeconfig, the token readable at the kubelet's path);
- the startup, readiness and liveness probes' endpoint answers (path and port as rendered);
- the seed example reaches Healthy;
- a Spark child failing makes it Degraded, its recovery Healthy; a deleted child is restored;
- SIGTERM (`podman stop` with the rendered grace period) ends the operator with exit code 0.
"""

from __future__ import annotations

import json
import re
import secrets
import subprocess
import sys
import tarfile
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from federator.devcluster import crdfiles, image
from federator.devcluster.harness import eventually, free_port, in_ci
from federator.devcluster.podrun import (
    SERVICE_ACCOUNT_PATH,
    PodmanRun,
    deployment,
    quantity_bytes,
    translate,
)
from federator.simulator import DelegateSimulator

if TYPE_CHECKING:
    from conftest import Cluster
else:
    Cluster = Any

pytestmark = pytest.mark.image

REPO = Path(__file__).resolve().parents[2]
RELEASE = "img-federator"
SYSTEM_NS = "img-system"
APPS_NS = "img-apps"
KAFKA_NS = "img-kafka"
NAME = "call-record-aggregator"
APP = f"/apis/federator.io/v1alpha1/namespaces/{APPS_NS}/applications"
HOST_CA = image.HOST_CA_BUNDLE
# Deadlines (s) on a loaded 2-core machine.
START = 120.0
CONVERGE = 180.0


@pytest.fixture(scope="module")
def built() -> image.BuiltImage:
    """The image `make image` built; CI never builds here, and never skips."""
    try:
        return image.ensure_image(build_missing=not in_ci(), out=sys.__stderr__)
    except image.ImageBuildError as exc:
        pytest.fail(f"the federator image is unavailable: {exc}", pytrace=False)


def podman(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    try:
        return image.podman(*args, check=check, timeout=300)
    except image.ImageBuildError as exc:
        pytest.fail(str(exc), pytrace=False)


def render(cluster: Cluster, tmp: Path, built: image.BuiltImage) -> list[dict[str, Any]]:
    """`helm template` of the chart, namespaced, on free ports, naming the built image."""
    repository, _, tag = built.tag.rpartition(":")
    values = {
        "image": {"repository": repository, "tag": tag, "pullPolicy": "Never"},
        "watchNamespaces": [APPS_NS],
        "kafkaClusters": [
            {
                "name": "default",
                "strimziCluster": "pipelines-strimzi",
                "namespace": KAFKA_NS,
                "bootstrapServers": "pipelines-strimzi-kafka-bootstrap:9092",
            }
        ],
        # Host network: the ports must be free on this machine.
        "operator": {"metricsPort": free_port(), "livenessPort": free_port()},
    }
    values_file = tmp / "values.yaml"
    values_file.write_text(yaml.safe_dump(values))
    out = subprocess.run(
        [
            str(cluster.bin_dir / "helm"),
            "template",
            RELEASE,
            str(REPO / "charts" / "federator"),
            "--namespace",
            SYSTEM_NS,
            "--values",
            str(values_file),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    (tmp / "rendered.yaml").write_text(out.stdout)
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def kubectl(cluster: Cluster, *args: str, stdin: str | None = None) -> str:
    proc = subprocess.run(
        [str(cluster.bin_dir / "kubectl"), "--kubeconfig", str(cluster.kubeconfig), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, f"kubectl {' '.join(args)}: {proc.stderr}"
    return proc.stdout


def write_files(directory: Path, files: dict[str, str]) -> None:
    """A volume as the kubelet writes it: readable by the pod's non-root user."""
    directory.mkdir(mode=0o755)
    directory.chmod(0o755)
    for name, text in files.items():
        (directory / name).write_text(text)
        (directory / name).chmod(0o644)


def root_ca(cluster: Cluster) -> str | None:
    """The cluster CA as the root-ca publisher hands it to every namespace."""
    status, body = cluster.plane.request(
        "GET", f"/api/v1/namespaces/{SYSTEM_NS}/configmaps/kube-root-ca.crt"
    )
    return str(body["data"]["ca.crt"]) if status == 200 else None


def container_state(name: str) -> dict[str, Any]:
    out = podman("container", "inspect", "--format", "{{json .State}}", name).stdout
    return json.loads(out)  # type: ignore[no-any-return]


def http_ok(port: int, path: str) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as resp:
            return int(resp.status) == 200
    except OSError:
        return False


@pytest.fixture(scope="module")
def pod(
    cluster: Cluster, built: image.BuiltImage, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    """The operator container, started as the rendered Deployment says, with the simulator."""
    tmp = tmp_path_factory.mktemp("image")
    cluster.plane.install_crds(REPO / "crds" / "application.yaml")
    cluster.plane.install_crds(*crdfiles.delegate_crd_files(crdfiles.delegate_crds_dir()))
    for ns in (SYSTEM_NS, APPS_NS, KAFKA_NS):
        cluster.ensure_namespace(ns)
    docs = render(cluster, tmp, built)
    dep = deployment(docs)
    # The chart's ServiceAccount, RBAC and settings on the API server (not the Deployment and
    # its Service: no kubelet runs pods here, podman does).
    others = [d for d in docs if d["kind"] not in ("Deployment", "Service")]
    kubectl(cluster, "apply", "-f", "-", stdin=yaml.safe_dump_all(others))

    pod_spec = dep["spec"]["template"]["spec"]
    (container,) = pod_spec["containers"]
    assert container["image"] == built.tag, "the Deployment names the image that was built"
    account = pod_spec["serviceAccountName"]
    sa_dir = tmp / "serviceaccount"
    token = kubectl(cluster, "-n", SYSTEM_NS, "create", "token", account, "--duration=2h")
    ca = eventually(lambda: root_ca(cluster), "the kube-root-ca.crt ConfigMap", 60)
    write_files(sa_dir, {"token": token.strip(), "ca.crt": ca, "namespace": SYSTEM_NS})
    config_maps = {(d["metadata"]["name"]): d for d in docs if d["kind"] == "ConfigMap"}
    volume_dirs: dict[str, str] = {}
    for volume in pod_spec["volumes"]:
        if "configMap" in volume:
            directory = tmp / f"volume-{volume['name']}"
            write_files(directory, dict(config_maps[volume["configMap"]["name"]]["data"]))
            volume_dirs[volume["name"]] = str(directory)
    server = yaml.safe_load(cluster.kubeconfig.read_text())["clusters"][0]["cluster"]["server"]
    host, port = server.removeprefix("https://").rsplit(":", 1)

    def podman_run(name: str) -> tuple[PodmanRun, list[str]]:
        """The `podman run` of the rendered Deployment, as container `name`."""
        run = translate(
            dep, volume_dirs=volume_dirs, service_account_dir=str(sa_dir), pod_name=name
        )
        argv = run.argv(
            container["image"],
            "--detach",
            "--pull=never",
            "--network=host",
            "--env",
            f"KUBERNETES_SERVICE_HOST={host.strip('[]')}",
            "--env",
            f"KUBERNETES_SERVICE_PORT={port}",
        )
        return run, argv

    name = f"{dep['metadata']['name']}-{secrets.token_hex(3)}"
    run, argv = podman_run(name)
    (tmp / "podman-run.txt").write_text(" ".join(argv) + "\n")
    sim = DelegateSimulator(cluster.api, interval=0.1, namespaces=[APPS_NS, KAFKA_NS])
    sim.run_in_thread()
    try:
        podman(*argv[1:])
        yield {
            "run": run,
            "name": name,
            "sim": sim,
            "tmp": tmp,
            "container": container,
            "podman_run": podman_run,
        }
    finally:
        sim.stop()
        logs = podman("logs", name, check=False)
        (tmp / "operator.log").write_text(logs.stdout + logs.stderr)
        podman("rm", "--force", "--time", "0", name, check=False)
        # No operator is left to run its finalizer: take it off, then delete (the garbage
        # collector removes the owned children).
        cluster.plane.request(
            "PATCH",
            f"{APP}/{NAME}",
            {"metadata": {"finalizers": None}},
            content_type="application/merge-patch+json",
        )
        status, _ = cluster.plane.request("DELETE", f"{APP}/{NAME}")
        assert status in (200, 202, 404)


def logs_of(pod: dict[str, Any]) -> str:
    out = podman("logs", "--tail", "60", pod["name"], check=False)
    return (out.stdout + out.stderr)[-4000:]


def running(pod: dict[str, Any]) -> bool:
    state = container_state(pod["name"])
    if not state.get("Running"):
        raise AssertionError(f"the container stopped: {state}\n{logs_of(pod)}")
    return True


def app(cluster: Cluster) -> dict[str, Any]:
    status, body = cluster.plane.request("GET", f"{APP}/{NAME}")
    assert status == 200, body
    return body  # type: ignore[no-any-return]


def phase_is(cluster: Cluster, pod: dict[str, Any], phase: str) -> dict[str, Any] | None:
    running(pod)
    body = app(cluster)
    status = body.get("status") or {}
    if status.get("phase") != phase:
        return None
    if status.get("observedGeneration") != body["metadata"]["generation"]:
        return None
    return body


# ---- the image -----------------------------------------------------------------------------------


def host_only_certificates(tag: str) -> set[str]:
    """The PEM bodies of the host's CA bundle that the image's own bundle lacks (a
    TLS-intercepting proxy's CA): the ones that must not leak into the image."""
    if not HOST_CA.is_file():
        return set()
    mine = podman(
        "run", "--rm", "--pull=never", "--entrypoint", '["cat"]', tag, str(HOST_CA), check=False
    ).stdout

    def bodies(text: str) -> set[str]:
        return {
            "".join(block.split("-----")[0].split())
            for block in text.split("-----BEGIN CERTIFICATE-----")[1:]
        }

    return bodies(HOST_CA.read_text()) - bodies(mine)


def test_the_image_holds_no_build_secret(built: image.BuiltImage, tmp_path: Path) -> None:
    config = json.loads(
        podman("image", "inspect", "--format", "{{json .Config}}", built.tag).stdout
    )
    for env in config.get("Env") or []:
        assert not env.startswith(
            ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_CERT", "PIP_CONFIG_FILE")
        ), env
    history = podman("image", "history", "--no-trunc", "--format", "{{.CreatedBy}}", built.tag)
    assert not re.search(r"PIP_(INDEX_URL|EXTRA_INDEX_URL|CERT|CONFIG_FILE)=", history.stdout)
    # Every file of the image's filesystem: the host's CA bundle is not there, nor any
    # certificate only the host trusts, nor a pip configuration.
    leaked = host_only_certificates(built.tag)
    host_bundle = HOST_CA.read_bytes() if HOST_CA.is_file() else None
    box = f"img-secrets-{secrets.token_hex(3)}"
    podman("create", "--pull=never", "--name", box, built.tag)
    try:
        export = tmp_path / "rootfs.tar"
        podman("export", "--output", str(export), box)
    finally:
        podman("rm", "--force", box, check=False)
    files = 0
    with tarfile.open(export) as tar:
        for member in tar:
            if not member.isfile():
                continue
            files += 1
            assert Path(member.name).name not in ("pip.conf", "pip-ca", "pip-conf", ".netrc"), (
                member.name
            )
            handle = tar.extractfile(member)
            assert handle is not None
            data = handle.read()
            assert data != host_bundle, f"the host's CA bundle is in the image: {member.name}"
            if leaked and b"CERTIFICATE" in data:
                flat = "".join(data.decode(errors="replace").split())
                assert not any(cert in flat for cert in leaked), (
                    f"a certificate only the host trusts is in the image: {member.name}"
                )
    assert files > 1000, "the export holds the image's filesystem"
    assert built.size > 0


# ---- the running container -----------------------------------------------------------------------


# Run inside the container (python -c): what the process sees of its own confinement.
INSIDE = """
import json, os, sys


def writable(path):
    try:
        open(os.path.join(path, ".probe"), "w").close()
        os.remove(os.path.join(path, ".probe"))
        return True
    except OSError:
        return False


def memory_limit():
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        if os.path.exists(path):
            return open(path).read().strip()
    return None


status = dict(
    line.split(":\\t", 1) for line in open("/proc/1/status").read().splitlines() if ":\\t" in line
)
mounts = {fields[1]: fields for fields in (m.split() for m in open("/proc/mounts"))}
sa = sys.argv[1]
print(json.dumps({
    "uid": os.getuid(),
    "gid": os.getgid(),
    "root_writable": writable("/"),
    "opt_writable": writable("/opt"),
    "tmp_writable": writable("/tmp"),
    "tmp_mount": mounts.get("/tmp", [None] * 4)[2:4],
    "cap_eff": status["CapEff"].strip(),
    "no_new_privs": status["NoNewPrivs"].strip(),
    "token": os.access(sa + "/token", os.R_OK),
    "namespace": open(sa + "/namespace").read(),
    "kubeconfig": "KUBECONFIG" in os.environ or os.path.exists(os.path.expanduser("~/.kube")),
    "settings": os.listdir("/etc/federator"),
    "pid1": open("/proc/1/cmdline").read().rstrip("\\0").split("\\0"),
    "pid1_env": dict(
        item.split("=", 1) for item in open("/proc/1/environ").read().split("\\0") if "=" in item
    ),
    "memory_limit": memory_limit(),
}))
"""


def test_the_container_runs_as_the_deployment_says(
    built: image.BuiltImage, pod: dict[str, Any]
) -> None:
    run: PodmanRun = pod["run"]
    container = pod["container"]
    eventually(lambda: running(pod), "the container running", 30)
    out = podman(
        "exec", pod["name"], "/opt/federator/bin/python", "-c", INSIDE, SERVICE_ACCOUNT_PATH
    )
    facts = json.loads(out.stdout)
    assert (facts["uid"], facts["gid"]) == (run.uid, run.gid) == (65532, 65532)
    # runAsNonRoot: the kubelet would refuse a root user; the image's own USER is non-root too.
    user = podman("image", "inspect", "--format", "{{.Config.User}}", built.tag).stdout.strip()
    assert run.run_as_non_root and facts["uid"] != 0 and user.split(":")[0] not in ("", "0")
    assert not facts["root_writable"] and not facts["opt_writable"], "read-only root filesystem"
    assert facts["tmp_writable"], "/tmp, the emptyDir, is writable"
    tmp_limit = next(f for f in run.flags if f.startswith("/tmp:")).split("size=")[1]
    fstype, options = facts["tmp_mount"]
    assert fstype == "tmpfs" and f"size={int(tmp_limit) // 1024}k" in options.split(","), options
    assert facts["cap_eff"] == "0000000000000000", "every capability dropped"
    assert facts["no_new_privs"] == "1"
    assert facts["token"] and facts["namespace"] == SYSTEM_NS
    assert not facts["kubeconfig"], "in-cluster credentials only"
    assert facts["settings"] == ["settings.yaml"]
    # PID 1 is the image's entrypoint, tini, with the Deployment's args (it sets no command).
    args = container["args"]
    assert "command" not in container
    assert facts["pid1"] == ["/usr/bin/tini", "-e", "143", "--", "federator", *args]
    for env in container["env"]:
        assert facts["pid1_env"].get(env["name"]) == env["value"], env
    limit = quantity_bytes(container["resources"]["limits"]["memory"])
    assert facts["memory_limit"] == str(limit), "the cgroup enforces the memory limit"
    host = json.loads(
        podman("container", "inspect", "--format", "{{json .HostConfig}}", pod["name"]).stdout
    )
    assert host["Memory"] == limit
    assert host["ReadonlyRootfs"] is True


def test_the_probes_answer(pod: dict[str, Any]) -> None:
    run: PodmanRun = pod["run"]
    assert {p.kind for p in run.probes} == {"startup", "readiness", "liveness"}
    for probe in run.probes:
        eventually(
            lambda probe=probe: running(pod) and http_ok(probe.port, probe.path),
            f"the {probe.kind} probe GET :{probe.port}{probe.path}",
            START,
        )


def test_the_seed_example_reaches_healthy(cluster: Cluster, pod: dict[str, Any]) -> None:
    body = yaml.safe_load((REPO / "examples" / "call-record-aggregator.yaml").read_text())
    body["metadata"] = {"name": NAME, "namespace": APPS_NS}
    status, got = cluster.plane.request("POST", APP, body)
    assert status == 201, got
    healthy = eventually(
        lambda: phase_is(cluster, pod, "Healthy"), "the seed example Healthy", CONVERGE
    )
    ready = {c["type"]: c["status"] for c in healthy["status"]["conditions"]}["Ready"]
    assert ready == "True"


def test_a_failed_child_degrades_and_recovers(cluster: Cluster, pod: dict[str, Any]) -> None:
    sim: DelegateSimulator = pod["sim"]
    child = f"{NAME}-cdr-aggregator"
    sim.fail("SparkApplication", APPS_NS, child, "Job aborted: OutOfMemoryError")
    body = eventually(lambda: phase_is(cluster, pod, "Degraded"), "Degraded", CONVERGE)
    spark = next(
        c
        for c in body["status"]["children"]
        if c["kind"] == "SparkApplication" and c.get("streamlet") == "cdr-aggregator"
    )
    assert spark["health"] == "Degraded" and "OutOfMemoryError" in spark["message"]
    sim.recover("SparkApplication", APPS_NS, child)
    eventually(lambda: phase_is(cluster, pod, "Healthy"), "Healthy again", CONVERGE)
    # A child deleted by hand is restored by the operator in the container.
    path = f"/apis/sparkoperator.k8s.io/v1beta2/namespaces/{APPS_NS}/sparkapplications/{child}"
    uid = cluster.plane.request("GET", path)[1]["metadata"]["uid"]
    status, _ = cluster.plane.request("DELETE", path)
    assert status in (200, 202)

    def restored() -> bool:
        running(pod)
        code, got = cluster.plane.request("GET", path)
        return code == 200 and got["metadata"]["uid"] != uid

    eventually(restored, "the deleted SparkApplication restored", CONVERGE)
    eventually(lambda: phase_is(cluster, pod, "Healthy"), "Healthy after the restore", CONVERGE)


def test_sigterm_ends_the_operator_with_exit_code_0(pod: dict[str, Any]) -> None:
    run: PodmanRun = pod["run"]
    eventually(lambda: running(pod), "the container running", 30)
    # podman stop: SIGTERM, then SIGKILL after the grace period (exit code 137 if it came to it).
    podman("stop", "--time", str(run.grace_seconds), pod["name"])
    state = container_state(pod["name"])
    assert state["Status"] == "exited", state
    assert state["ExitCode"] == 0, f"{state}\n{logs_of(pod)}"
    assert not state.get("OOMKilled"), state


def test_sigterm_right_at_start_is_not_lost(pod: dict[str, Any]) -> None:
    """A SIGTERM as soon as the container runs, before the interpreter has its own handlers:
    tini, PID 1, hands it on; the operator ends at once (143, reported as 0), instead of the
    signal being dropped and the container killed at the end of the grace period."""
    run, argv = pod["podman_run"](f"{pod['name']}-early")
    name = argv[argv.index("--name") + 1]
    try:
        podman(*argv[1:])
        podman("stop", "--time", str(run.grace_seconds), name)
        state = container_state(name)
        assert state["Status"] == "exited", state
        assert state["ExitCode"] == 0, state
    finally:
        podman("rm", "--force", "--time", "0", name, check=False)
