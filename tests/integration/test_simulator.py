"""The delegate simulator on the real control plane, with the real delegate CRDs.

One child of each delegate kind, compiled from the examples, is created in namespaces of this
module's own; the simulator (in a background thread) makes each Healthy as
``federator.core.health.assess`` reads it, a failure injected by API and by annotation makes it
Degraded with the message, recovery makes it Healthy again, and a spec change makes it Progressing
then Healthy. The Strimzi CRD is swapped for the v1beta2-only release to show that the served
version is discovered and a CRD installed later is picked up; `federator simulate` runs as a
process and stops cleanly on SIGTERM.
"""

from __future__ import annotations

import contextlib
import copy
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml
from kubernetes import client

from federator.core import delegates
from federator.core.compiler import compile_application
from federator.core.delegates import TargetApis, assess
from federator.core.delegates.simstep import FAIL_ANNOTATION
from federator.core.health import ChildHealth, Health
from federator.devcluster import crdfiles
from federator.settings_file import load_settings
from federator.simulator import DelegateSimulator

if TYPE_CHECKING:
    from conftest import Cluster
else:
    Cluster = Any

REPO = Path(__file__).resolve().parents[2]
DELEGATE_CRDS = crdfiles.delegate_crds_dir()
LEGACY_STRIMZI_CRD = DELEGATE_CRDS / "strimzi-kafkatopic-0.51.0-v1beta2.crd.yaml"
STRIMZI_CRD_NAME = "kafkatopics.kafka.strimzi.io"
APPS_NS = "sim-apps"
KAFKA_NS = "sim-kafka"
CLI_NS = "sim-cli"
TEST_APP = "simulator-test"
TIMEOUT = 60.0
PLURALS = {
    "KafkaTopic": "kafkatopics",
    "SparkApplication": "sparkapplications",
    "FlinkDeployment": "flinkdeployments",
    "FlinkApplication": "flinkapplications",
}
SOURCES = {
    "KafkaTopic": "call-record-aggregator.yaml",
    "SparkApplication": "call-record-aggregator.yaml",
    "FlinkDeployment": "fraud-detection-flink.yaml",
    "FlinkApplication": "wordcount-lyft.yaml",
}


@dataclass(frozen=True)
class Ref:
    kind: str
    api_version: str
    namespace: str
    name: str

    @property
    def group(self) -> str:
        return self.api_version.split("/")[0]

    @property
    def version(self) -> str:
        return self.api_version.split("/")[1]


def eventually(check: Callable[[], bool], what: str, timeout: float = TIMEOUT) -> None:
    """Poll until check() holds, else fail naming `what` (no fixed sleeps)."""
    deadline = time.monotonic() + timeout
    delay = 0.05
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(delay)
        delay = min(delay * 1.5, 0.5)


def compiled_child(kind: str, namespace: str, name_suffix: str = "") -> dict[str, Any]:
    """The first child of `kind` compiled from its example, moved into `namespace`."""
    settings = load_settings(str(REPO / "examples" / "settings.yaml"))
    body = yaml.safe_load((REPO / "examples" / SOURCES[kind]).read_text())
    compiled = compile_application(body, settings, TargetApis(topic_version="v1"))
    child = next(c for c in compiled.children if c.kind == kind)
    manifest = copy.deepcopy(dict(child.manifest))
    metadata = manifest["metadata"]
    metadata["namespace"] = namespace
    metadata["name"] += name_suffix
    # Not a child of the example's Application: an operator under test elsewhere in the
    # session must never take these for its own.
    for key in ("app.kubernetes.io/part-of", "federator.io/application"):
        if key in metadata.get("labels", {}):
            metadata["labels"][key] = TEST_APP
    metadata.setdefault("annotations", {})["federator.io/application"] = f"{namespace}/{TEST_APP}"
    return manifest


_CREATED: list[tuple[Any, Ref]] = []


def create(cluster: Cluster, manifest: dict[str, Any]) -> Ref:
    api = client.CustomObjectsApi(cluster.api)
    group, version = manifest["apiVersion"].split("/")
    namespace = manifest["metadata"]["namespace"]
    plural = PLURALS[manifest["kind"]]
    name = manifest["metadata"]["name"]
    try:
        api.delete_namespaced_custom_object(group, version, namespace, plural, name)
        ref = Ref(manifest["kind"], manifest["apiVersion"], namespace, name)
        eventually(lambda: _absent(cluster, ref), "the previous copy to be gone")
    except client.exceptions.ApiException as exc:
        assert exc.status == 404, exc
    api.create_namespaced_custom_object(group, version, namespace, plural, manifest)
    ref = Ref(manifest["kind"], manifest["apiVersion"], namespace, name)
    _CREATED.append((cluster, ref))
    return ref


def _absent(cluster: Cluster, ref: Ref) -> bool:
    try:
        get(cluster, ref)
    except client.exceptions.ApiException as exc:
        return bool(exc.status == 404)
    return False


def get(cluster: Cluster, ref: Ref) -> dict[str, Any]:
    api = client.CustomObjectsApi(cluster.api)
    body: dict[str, Any] = api.get_namespaced_custom_object(
        ref.group, ref.version, ref.namespace, PLURALS[ref.kind], ref.name
    )
    return body


def patch(cluster: Cluster, ref: Ref, body: dict[str, Any]) -> None:
    api = client.CustomObjectsApi(cluster.api)
    api.patch_namespaced_custom_object(
        ref.group,
        ref.version,
        ref.namespace,
        PLURALS[ref.kind],
        ref.name,
        body,
        _content_type="application/merge-patch+json",
    )


def health_of(cluster: Cluster, ref: Ref, mark: str | None = None) -> ChildHealth:
    return assess(ref.kind, get(cluster, ref), mark=mark)


def wait_health(
    cluster: Cluster, ref: Ref, health: Health, mark: str | None = None, message: str = ""
) -> ChildHealth:
    seen: list[ChildHealth] = []

    def check() -> bool:
        verdict = health_of(cluster, ref, mark)
        seen.append(verdict)
        return verdict.health is health and message in verdict.message

    eventually(check, f"{ref.kind} {ref.name} {health} (last: {seen[-1:]})")
    return seen[-1]


@pytest.fixture(scope="module")
def crds(cluster: Cluster) -> Iterator[None]:
    files = [f for f in sorted(DELEGATE_CRDS.glob("*.crd.yaml")) if f != LEGACY_STRIMZI_CRD]
    cluster.plane.install_crds(*files)
    for namespace in (APPS_NS, KAFKA_NS, CLI_NS):
        cluster.ensure_namespace(namespace)
    yield
    # Leave nothing behind for the other tests of the session.
    while _CREATED:
        owner, ref = _CREATED.pop()
        api = client.CustomObjectsApi(owner.api)
        with contextlib.suppress(client.exceptions.ApiException):
            api.delete_namespaced_custom_object(
                ref.group, ref.version, ref.namespace, PLURALS[ref.kind], ref.name
            )


@pytest.fixture
def children(cluster: Cluster, crds: None) -> list[Ref]:
    refs = []
    for kind in PLURALS:
        namespace = KAFKA_NS if kind == "KafkaTopic" else APPS_NS
        refs.append(create(cluster, compiled_child(kind, namespace)))
    return refs


@pytest.fixture
def sim(cluster: Cluster) -> Iterator[DelegateSimulator]:
    simulator = DelegateSimulator(cluster.api, interval=0.1, namespaces=[APPS_NS, KAFKA_NS])
    try:
        yield simulator
    finally:
        simulator.stop()


def test_children_become_healthy_fail_recover_and_follow_spec_changes(
    cluster: Cluster, children: list[Ref], sim: DelegateSimulator
) -> None:
    for ref in children:
        assert health_of(cluster, ref).health is Health.PROGRESSING  # nothing wrote a status
    sim.run_in_thread()
    for ref in children:
        wait_health(cluster, ref, Health.HEALTHY)
    assert set(sim.served) == {d.kind for d in delegates.SIMULATED}  # every vendored kind
    assert sim.served["KafkaTopic"].version == "v1"
    assert all(served.status_subresource for served in sim.served.values())

    # Failure injected through the API: Degraded with the message, until recovered.
    for ref in children:
        message = f"simulated {ref.kind} failure"
        sim.fail(ref.kind, ref.namespace, ref.name, message)
        verdict = wait_health(cluster, ref, Health.DEGRADED, message=message)
        assert verdict.health is Health.DEGRADED
    for ref in children:
        sim.recover(ref.kind, ref.namespace, ref.name)
    for ref in children:
        wait_health(cluster, ref, Health.HEALTHY)

    # Failure injected by a human with an annotation (as `kubectl annotate` does).
    for ref in children:
        patch(cluster, ref, {"metadata": {"annotations": {FAIL_ANNOTATION: "disk full"}}})
    for ref in children:
        wait_health(cluster, ref, Health.DEGRADED, message="disk full")
    for ref in children:
        patch(cluster, ref, {"metadata": {"annotations": {FAIL_ANNOTATION: None}}})
    for ref in children:
        wait_health(cluster, ref, Health.HEALTHY)

    # A spec change: Progressing (as federator judges it, with its apply marks) until the
    # delegate has caught up, then Healthy again.
    sim.stop()
    marks: dict[str, str] = {}
    for ref in children:
        status = get(cluster, ref).get("status") or {}
        if ref.kind == "SparkApplication":
            marks[ref.kind] = status.get("submissionID", "")
        if ref.kind == "FlinkApplication":
            marks[ref.kind] = status.get("deployHash", "")
    spec_changes: dict[str, dict[str, Any]] = {
        "KafkaTopic": {"partitions": 7},
        "SparkApplication": {"executor": {"instances": 3}},
        "FlinkDeployment": {"image": "registry.example.com/payments/scorer:3.2.0"},
        "FlinkApplication": {"image": "registry.example.com/analytics/wordcount:1.0.0"},
    }
    for ref in children:
        patch(cluster, ref, {"spec": spec_changes[ref.kind]})
        assert health_of(cluster, ref, marks.get(ref.kind)).health is Health.PROGRESSING
    sim.step()  # one tick: only the topic operator is done in one step
    for ref in children:
        expected = Health.HEALTHY if ref.kind == "KafkaTopic" else Health.PROGRESSING
        assert health_of(cluster, ref, marks.get(ref.kind)).health is expected, ref
    sim.run_in_thread()
    for ref in children:
        wait_health(cluster, ref, Health.HEALTHY, mark=marks.get(ref.kind))
    spark = get(cluster, next(r for r in children if r.kind == "SparkApplication"))
    assert len(spark["status"]["executorState"]) == 3


def test_only_children_managed_by_federator_are_driven(
    cluster: Cluster, crds: None, sim: DelegateSimulator
) -> None:
    manifest = compiled_child("SparkApplication", APPS_NS, "-unmanaged")
    manifest["metadata"]["labels"] = {"app": "someone-else"}
    unmanaged = create(cluster, manifest)
    managed = create(cluster, compiled_child("SparkApplication", APPS_NS, "-managed"))
    # Driven by hand, tick by tick: "" -> SUBMITTED -> RUNNING.
    states = [[t.state for t in sim.step() if t.name == managed.name] for _ in range(3)]
    assert states == [["SUBMITTED"], ["RUNNING"], []]
    assert health_of(cluster, managed).health is Health.HEALTHY
    assert "status" not in get(cluster, unmanaged)


def test_strimzi_v1beta2_is_discovered_and_a_crd_installed_later_is_picked_up(
    cluster: Cluster, crds: None, sim: DelegateSimulator, tmp_path: Path
) -> None:
    current = DELEGATE_CRDS / "strimzi-kafkatopic.crd.yaml"
    cluster.plane.delete_crds(STRIMZI_CRD_NAME)
    try:
        sim.step()
        assert "KafkaTopic" not in sim.served  # no CRD: skipped, and no error
        cluster.plane.install_crds(LEGACY_STRIMZI_CRD)  # 0.51: v1 served, v1beta2 storage
        manifest = compiled_child("KafkaTopic", KAFKA_NS, "-legacy")
        manifest["apiVersion"] = "kafka.strimzi.io/v1beta2"
        ref = create(cluster, manifest)
        sim.run_in_thread()
        wait_health(cluster, ref, Health.HEALTHY)
        assert sim.served["KafkaTopic"].version == "v1"  # the best version it serves
        sim.stop()
        # An older Strimzi that serves only v1beta2.
        cluster.plane.delete_crds(STRIMZI_CRD_NAME)
        v1beta2_only = _serving_only(LEGACY_STRIMZI_CRD, "v1beta2", tmp_path)
        cluster.plane.install_crds(v1beta2_only)
        ref = create(cluster, manifest)
        sim.run_in_thread()
        wait_health(cluster, ref, Health.HEALTHY)
        assert sim.served["KafkaTopic"].version == "v1beta2"
    finally:
        sim.stop()
        cluster.plane.delete_crds(STRIMZI_CRD_NAME)
        cluster.plane.install_crds(current)


def _serving_only(path: Path, version: str, directory: Path) -> Path:
    """A temporary variant of a CRD that serves only `version` (as Strimzi 0.4x did)."""
    docs = [d for d in yaml.safe_load_all(path.read_text()) if isinstance(d, dict)]
    crd = docs[0]
    crd["spec"]["versions"] = [v for v in crd["spec"]["versions"] if v["name"] == version]
    crd["spec"]["versions"][0]["storage"] = True
    out = directory / f"kafkatopic-{version}-only.crd.yaml"
    out.write_text(yaml.safe_dump(crd))
    return out


CLI_SCRIPT = """
import argparse, sys
from federator.cli import simulate_cmd
parser = argparse.ArgumentParser(prog="federator")
simulate_cmd.register(parser.add_subparsers())
args = parser.parse_args(sys.argv[1:])
sys.exit(args.func(args))
"""


def test_simulate_command_runs_until_sigterm(cluster: Cluster, crds: None) -> None:
    ref = create(cluster, compiled_child("FlinkDeployment", CLI_NS))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    args = ["simulate", "--kubeconfig", str(cluster.kubeconfig), "--interval", "0.1"]
    proc = subprocess.Popen(
        [sys.executable, "-c", CLI_SCRIPT, *args, "-n", CLI_NS],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_health(cluster, ref, Health.HEALTHY)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "development tool" in out
    assert "FlinkDeployment sim-cli/" in out and "STABLE" in out
    assert out.rstrip().endswith("stopped")
