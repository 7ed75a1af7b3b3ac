"""On the real API server: the Application CRD, delegate CRDs, compiled children, GC, RBAC."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException

from federator.devcluster import crdfiles

REPO = Path(__file__).resolve().parents[2]
DELEGATE_CRDS = crdfiles.delegate_crds_dir()

APP_CRD = REPO / "crds" / "application.yaml"
APPS = "/apis/federator.io/v1alpha1/namespaces/{ns}/applications"
STRIMZI_CRD_NAME = "kafkatopics.kafka.strimzi.io"
LEGACY_STRIMZI_CRD = DELEGATE_CRDS / "strimzi-kafkatopic-0.51.0-v1beta2.crd.yaml"
EXAMPLES = sorted(
    p
    for p in (REPO / "examples").glob("*.yaml")
    if (yaml.safe_load(p.read_text()) or {}).get("kind") == "Application"
)


if TYPE_CHECKING:
    from conftest import Cluster
else:
    Cluster = Any


def eventually(check: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    """Poll until check() holds (controllers are asynchronous), else fail naming `what`."""
    deadline = time.monotonic() + timeout
    delay = 0.1
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(delay)
        delay = min(delay * 1.5, 1.0)


def current_delegate_crds() -> list[Path]:
    """Every delegate CRD file; of the two Strimzi files the installer keeps the current one
    (the legacy one is tested apart)."""
    return crdfiles.delegate_crd_files(DELEGATE_CRDS)


def federator_env() -> dict[str, str]:
    """Run `python -m federator` from this checkout even without an installed package."""
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path}


def compile_example(path: Path) -> list[dict[str, Any]]:
    """`federator compile EXAMPLE --settings examples/settings.yaml -o json` -> its items."""
    env = federator_env()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "federator",
            "compile",
            str(path),
            "--settings",
            str(REPO / "examples" / "settings.yaml"),
            "-o",
            "json",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, f"federator compile {path.name} failed:\n{proc.stderr}"
    doc = json.loads(proc.stdout)
    assert doc["kind"] == "List"
    items: list[dict[str, Any]] = doc["items"]
    assert items, f"{path.name} compiled to no children"
    return items


def create_items(cluster: Cluster, items: list[dict[str, Any]]) -> None:
    """Server-side dry-run, then a real create, of every item (namespaces made first)."""
    for ns in {i["metadata"].get("namespace") for i in items} - {None}:
        cluster.ensure_namespace(ns)
    payload = json.dumps({"apiVersion": "v1", "kind": "List", "items": items})
    dry = cluster.plane.kubectl(
        "create", "--dry-run=server", "-o", "name", "-f", "-", stdin=payload
    )
    assert len(dry.split()) == len(items), dry
    real = cluster.plane.kubectl("create", "-o", "name", "-f", "-", stdin=payload)
    assert len(real.split()) == len(items), real


@pytest.fixture(scope="module")
def app_crd(cluster: Cluster) -> str:
    assert APP_CRD.is_file(), f"{APP_CRD} missing"
    (name,) = cluster.plane.install_crds(APP_CRD)
    return name


@pytest.fixture(scope="module")
def delegate_crds(cluster: Cluster) -> list[str]:
    return cluster.plane.install_crds(*current_delegate_crds())


def valid_app(name: str = "valid") -> dict[str, Any]:
    return {
        "apiVersion": "federator.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": name},
        "spec": {
            "streamlets": [
                {
                    "name": "ingress",
                    "runtime": "container",
                    "image": "registry.example.com/ingress:1",
                    "outlets": ["out"],
                },
                {
                    "name": "proc",
                    "runtime": "spark",
                    "image": "registry.example.com/proc:1",
                    "inlets": ["in"],
                    "replicas": 2,
                },
            ],
            "connections": [{"from": "ingress.out", "to": ["proc.in"]}],
        },
    }


# ------------------------------------------------------------------ the control plane itself


def test_server_reports_the_built_version(cluster: Cluster) -> None:
    status, body = cluster.plane.request("GET", "/version")
    assert status == 200
    assert body["gitVersion"].startswith("v1.")
    assert body["gitTreeState"] == "clean"
    client_version = cluster.plane.kubectl("version", "--client", "-o", "json")
    assert json.loads(client_version)["clientVersion"]["gitVersion"] == body["gitVersion"]


def test_kubeconfig_works_with_the_python_client(cluster: Cluster) -> None:
    nodes = client.CoreV1Api(cluster.api).list_node().items
    assert [n.metadata.name for n in nodes] == ["kwok-node-0"]


# ------------------------------------------------------------------ the Application CRD


def test_application_crd_installs_and_accepts_a_valid_application(
    cluster: Cluster, app_crd: str
) -> None:
    assert app_crd == "applications.federator.io"
    cluster.ensure_namespace("apps")
    status, body = cluster.plane.request("POST", APPS.format(ns="apps"), valid_app())
    assert status == 201, body
    # Structural defaults from the CRD are applied by the server.
    assert body["spec"]["kafka"] == {"cluster": "default"}
    assert body["spec"]["deletionPolicy"] == "Retain"
    assert body["spec"]["suspend"] is False
    printed = cluster.plane.kubectl("get", "fapp", "-n", "apps", "valid", "-o", "name")
    assert printed.strip() == "application.federator.io/valid"


def test_federator_crd_output_installs(cluster: Cluster, app_crd: str, tmp_path: Path) -> None:
    """What `federator crd` prints is the CRD the server accepts (replaces it in place)."""
    proc = subprocess.run(
        [sys.executable, "-m", "federator", "crd"],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=federator_env(),
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    printed = tmp_path / "crd.yaml"
    printed.write_text(proc.stdout)
    assert cluster.plane.install_crds(printed) == [app_crd]


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_applications_are_accepted(cluster: Cluster, app_crd: str, example: Path) -> None:
    doc = yaml.safe_load(example.read_text())
    ns = doc["metadata"].get("namespace", "default")
    cluster.ensure_namespace(ns)
    status, body = cluster.plane.request("POST", APPS.format(ns=ns) + "?dryRun=All", doc)
    assert status == 201, body


def _streamlet(app: dict[str, Any], index: int) -> dict[str, Any]:
    streamlet: dict[str, Any] = app["spec"]["streamlets"][index]
    return streamlet


def _mutations() -> Iterator[tuple[str, Callable[[dict[str, Any]], None], str]]:
    yield ("bad-name", lambda a: _streamlet(a, 0).update(name="Ingress"), "should match")
    yield ("bad-runtime", lambda a: _streamlet(a, 0).update(runtime="python"), "Unsupported value")
    yield ("no-image", lambda a: _streamlet(a, 0).pop("image"), "Required value")
    yield (
        "flink-operator-on-spark",
        lambda a: _streamlet(a, 1).update(flinkOperator="apache"),
        "flinkOperator is only allowed when runtime is flink",
    )
    yield (
        "spark-block-on-container",
        lambda a: _streamlet(a, 0).update(spark={"mode": "cluster"}),
        "the spark block is only allowed when runtime is spark",
    )
    yield (
        "inlet-is-outlet",
        lambda a: _streamlet(a, 0).update(inlets=["out"]),
        "a port cannot be both an inlet and an outlet of the same streamlet",
    )
    yield (
        "schema-for-unknown-port",
        lambda a: _streamlet(a, 0).update(schemas={"nope": {"format": "json"}}),
        "every key of schemas must be a port declared in inlets or outlets",
    )
    yield (
        "spark-replicas-zero",
        lambda a: _streamlet(a, 1).update(replicas=0),
        "replicas 0 is only allowed for container streamlets",
    )
    yield (
        "unmanaged-topic-with-partitions",
        lambda a: a["spec"].update(
            topics=[{"name": "t", "managed": False, "partitions": 3, "producers": ["ingress.out"]}]
        ),
        "an unmanaged topic (managed: false) cannot set partitions, replicas or config",
    )
    yield (
        "dot-dot-topic",
        lambda a: a["spec"].update(topics=[{"name": "..", "producers": ["ingress.out"]}]),
        "a Kafka topic name cannot be '.' or '..'",
    )
    yield (
        "duplicate-streamlet",
        lambda a: a["spec"]["streamlets"].append(copy.deepcopy(_streamlet(a, 0))),
        "Duplicate value",
    )


MUTATIONS = list(_mutations())


@pytest.mark.parametrize(
    ("mutate", "message"), [m[1:] for m in MUTATIONS], ids=[m[0] for m in MUTATIONS]
)
def test_invalid_applications_are_rejected_at_admission(
    cluster: Cluster, app_crd: str, mutate: Callable[[dict[str, Any]], None], message: str
) -> None:
    cluster.ensure_namespace("apps")
    app = valid_app("invalid")
    mutate(app)
    status, body = cluster.plane.request("POST", APPS.format(ns="apps"), app)
    assert status == 422, body
    assert body["reason"] == "Invalid"
    assert message in body["message"], body["message"]


# ------------------------------------------------------------------ delegate CRDs and children


def test_every_delegate_crd_installs(cluster: Cluster, delegate_crds: list[str]) -> None:
    files = current_delegate_crds()
    names = {d["metadata"]["name"] for _, d in crdfiles.load_crds(files)}
    assert sorted(delegate_crds) == sorted(names)
    assert len(files) > len(names), "the folder holds two versions of the Strimzi CRD"
    # Of the two KafkaTopic CRDs the current one (v1 only) was installed, not the 0.51.0 one.
    status, crd = cluster.plane.request(
        "GET", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{STRIMZI_CRD_NAME}"
    )
    assert status == 200, crd
    assert [v["name"] for v in crd["spec"]["versions"]] == ["v1"]


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_compiled_children_are_accepted(
    cluster: Cluster, delegate_crds: list[str], example: Path
) -> None:
    items = [i for i in compile_example(example) if i["apiVersion"] != "kafka.strimzi.io/v1beta2"]
    create_items(cluster, items)


def test_compiled_v1beta2_topics_are_accepted_by_strimzi_0_51(
    cluster: Cluster, delegate_crds: list[str]
) -> None:
    legacy = [
        i
        for example in EXAMPLES
        for i in compile_example(example)
        if i["apiVersion"] == "kafka.strimzi.io/v1beta2"
    ]
    if not legacy:
        pytest.fail("no example renders kafka.strimzi.io/v1beta2 KafkaTopics (settings: legacy)")
    current = DELEGATE_CRDS / "strimzi-kafkatopic.crd.yaml"
    cluster.plane.delete_crds(STRIMZI_CRD_NAME)
    try:
        cluster.plane.install_crds(LEGACY_STRIMZI_CRD)
        create_items(cluster, legacy)
    finally:
        cluster.plane.delete_crds(STRIMZI_CRD_NAME)
        cluster.plane.install_crds(current)


# Upstream examples that their own CRD rejects (found by this test): name -> expected message.
KNOWN_INVALID_UPSTREAM_EXAMPLES = {
    # flinkConfig values are `type: string` in the Lyft CRD; the example gives a bare number.
    "lyft-flinkapplication-beam-python.example.yaml": "must be of type string",
}


def test_delegate_example_resources_are_accepted(
    cluster: Cluster, delegate_crds: list[str]
) -> None:
    """The operators' own example CRs pass server-side validation (known upstream bugs fail)."""
    cluster.ensure_namespace("delegate-examples")
    checked = 0
    for path in sorted((DELEGATE_CRDS / "examples").glob("*.yaml")):
        if "v1beta2" in path.name:
            continue  # needs the 0.51.0 CRD; the legacy test covers v1beta2 children
        for doc in yaml.safe_load_all(path.read_text()):
            if not isinstance(doc, dict) or "kind" not in doc:
                continue
            doc["metadata"]["namespace"] = "delegate-examples"
            out = cluster.plane.kubectl(
                "create",
                "--dry-run=server",
                "-o",
                "name",
                "-f",
                "-",
                stdin=json.dumps(doc),
                check=False,
            )
            expected = KNOWN_INVALID_UPSTREAM_EXAMPLES.get(path.name)
            if expected is None:
                assert out.strip(), f"{path.name} rejected"
            else:
                assert not out.strip(), f"{path.name} is accepted now: drop it from the list"
            checked += 1
    assert checked >= 8


# ------------------------------------------------------------------ real controllers


def test_deleting_an_owner_garbage_collects_its_child(cluster: Cluster) -> None:
    core = client.CoreV1Api(cluster.api)
    cluster.ensure_namespace("gc")
    owner = core.create_namespaced_config_map("gc", client.V1ConfigMap(metadata={"name": "owner"}))
    ref = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "name": "owner",
        "uid": owner.metadata.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }
    core.create_namespaced_config_map(
        "gc", client.V1ConfigMap(metadata={"name": "child", "ownerReferences": [ref]})
    )
    core.delete_namespaced_config_map("owner", "gc", propagation_policy="Background")

    def child_gone() -> bool:
        try:
            core.read_namespaced_config_map("child", "gc")
        except ApiException as exc:
            return exc.status == 404
        return False

    eventually(child_gone, "the garbage collector to delete the owned ConfigMap")


def test_deleting_an_application_garbage_collects_its_child(cluster: Cluster, app_crd: str) -> None:
    cluster.ensure_namespace("gc-app")
    status, app = cluster.plane.request("POST", APPS.format(ns="gc-app"), valid_app("owner"))
    assert status == 201, app
    ref = {
        "apiVersion": "federator.io/v1alpha1",
        "kind": "Application",
        "name": "owner",
        "uid": app["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }
    core = client.CoreV1Api(cluster.api)
    core.create_namespaced_config_map(
        "gc-app", client.V1ConfigMap(metadata={"name": "child", "ownerReferences": [ref]})
    )
    status, _ = cluster.plane.request("DELETE", APPS.format(ns="gc-app") + "/owner")
    assert status == 200

    def child_gone() -> bool:
        try:
            core.read_namespaced_config_map("child", "gc-app")
        except ApiException as exc:
            return exc.status == 404
        return False

    eventually(child_gone, "the garbage collector to delete the Application's ConfigMap")


def test_deployment_becomes_available_through_controllers_and_kwok(cluster: Cluster) -> None:
    apps = client.AppsV1Api(cluster.api)
    cluster.ensure_namespace("deploy")
    labels = {"app": "web"}
    body = client.V1Deployment(
        metadata=client.V1ObjectMeta(name="web"),
        spec=client.V1DeploymentSpec(
            replicas=2,
            selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels),
                spec=client.V1PodSpec(
                    containers=[client.V1Container(name="web", image="registry.example.com/web:1")]
                ),
            ),
        ),
    )
    apps.create_namespaced_deployment("deploy", body)

    def available() -> bool:
        dep = apps.read_namespaced_deployment("web", "deploy")
        conditions = {c.type: c.status for c in (dep.status.conditions or [])}
        return bool(dep.status.available_replicas == 2 and conditions.get("Available") == "True")

    eventually(available, "Deployment web to become Available", timeout=90)
    pods = client.CoreV1Api(cluster.api).list_namespaced_pod("deploy", label_selector="app=web")
    assert len(pods.items) == 2
    for pod in pods.items:
        assert pod.spec.node_name == "kwok-node-0"
        assert pod.status.phase == "Running"


# ------------------------------------------------------------------ RBAC


def test_unprivileged_user_is_refused_until_a_role_grants(cluster: Cluster) -> None:
    cluster.ensure_namespace("rbac")
    cluster.ensure_namespace("rbac-other")
    user_core = client.CoreV1Api(cluster.user_api)

    def status_of(call: Callable[[], object]) -> int:
        try:
            call()
        except ApiException as exc:
            return int(exc.status)
        return 200

    assert status_of(lambda: user_core.list_namespaced_config_map("rbac")) == 403
    assert status_of(user_core.list_node) == 403

    rbac = client.RbacAuthorizationV1Api(cluster.api)
    rbac.create_namespaced_role(
        "rbac",
        client.V1Role(
            metadata=client.V1ObjectMeta(name="cm-reader"),
            rules=[
                client.V1PolicyRule(
                    api_groups=[""], resources=["configmaps"], verbs=["get", "list", "watch"]
                )
            ],
        ),
    )
    rbac.create_namespaced_role_binding(
        "rbac",
        client.V1RoleBinding(
            metadata=client.V1ObjectMeta(name="cm-reader"),
            role_ref=client.V1RoleRef(
                api_group="rbac.authorization.k8s.io", kind="Role", name="cm-reader"
            ),
            subjects=[
                client.RbacV1Subject(
                    kind="User", name=cluster.user_name, api_group="rbac.authorization.k8s.io"
                )
            ],
        ),
    )
    eventually(
        lambda: status_of(lambda: user_core.list_namespaced_config_map("rbac")) == 200,
        "the RoleBinding to grant list configmaps",
        timeout=30,
    )
    # Only what the Role grants: no writes, no other namespace, no cluster scope.
    assert (
        status_of(
            lambda: user_core.create_namespaced_config_map(
                "rbac", client.V1ConfigMap(metadata={"name": "x"})
            )
        )
        == 403
    )
    assert status_of(lambda: user_core.list_namespaced_config_map("rbac-other")) == 403
    assert status_of(user_core.list_node) == 403
    can_i = cluster.plane.kubectl("auth", "can-i", "list", "configmaps", "-n", "rbac", user="user")
    assert can_i.strip() == "yes"
