"""Never emit a value the installed delegate operator cannot read (issue 13, finding 2), on the
real API server.

The cluster runs the real FlinkDeployment CRD of the Apache Flink Kubernetes Operator 1.7.0
(vendored: third_party/delegate-crds/older/), whose `flinkVersion` enum stops at v1_19, while
federator's default is v1_20. Covered:
- the evidence: the real kube-apiserver itself refuses `flinkVersion: v1_20` under that CRD (422,
  Unsupported value); where a newer CRD is installed it accepts it, and an operator 1.7.0 reading
  it shuts down (the finding), so the server's refusal alone cannot be relied on;
- federator checks each child against the INSTALLED CRD before applying: the FlinkDeployment is
  never written (no create, no apply), it reads Degraded `InvalidForInstalledCRD` with the field,
  the value, the allowed values and the setting to change; a Warning Event says so; the topics
  and the Deployments of the same application are created;
- a per-streamlet override (`flink.flinkVersion`) is applied despite the default;
- a newer CRD installed later is picked up without a restart (cached by resourceVersion);
- restarted with `flink.flinkVersion: v1_17`, federator creates the FlinkDeployment;
- where the installed CRD allows v1_20 (newer than the operator: the server stores it), the
  settings' `flink.supportedVersions` refuse it, a streamlet's own override included.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from federator.devcluster import crdfiles
from federator.devcluster.harness import OperatorProcess, eventually, free_port
from federator.simulator import DelegateSimulator

if TYPE_CHECKING:
    from conftest import Cluster
else:
    Cluster = Any

REPO = Path(__file__).resolve().parents[2]
FLINK_1_7_CRD = (
    REPO / "third_party" / "delegate-crds" / "older" / "apache-flinkdeployment-1.7.0.crd.yaml"
)
TEAM = "crd-team"
KAFKA = "crd-kafka"
APPS = f"/apis/federator.io/v1alpha1/namespaces/{TEAM}/applications"
FLINK = f"/apis/flink.apache.org/v1beta1/namespaces/{TEAM}/flinkdeployments"
DEPLOYMENTS = f"/apis/apps/v1/namespaces/{TEAM}/deployments"
TOPICS = f"/apis/kafka.strimzi.io/v1/namespaces/{KAFKA}/kafkatopics"
EVENTS = f"/api/v1/namespaces/{TEAM}/events"
IMAGE = "registry.example.com/team/app:1.0"


def current_flink_crd() -> list[Path]:
    return [p for p in crdfiles.delegate_crd_files() if p.name.startswith("apache-flinkdeployment")]


SUPPORTED_1_7 = ["v1_13", "v1_14", "v1_15", "v1_16", "v1_17", "v1_18", "v1_19"]


def write_settings(
    path: Path, flink_version: str | None, supported: list[str] | None = None
) -> Path:
    settings: dict[str, Any] = {
        "kafkaClusters": [
            {
                "name": "default",
                "strimziCluster": "pipelines-strimzi",
                "namespace": KAFKA,
                "bootstrapServers": "pipelines-strimzi-kafka-bootstrap:9092",
            }
        ],
        "operator": {
            "metricsPort": free_port(),
            "livenessPort": free_port(),
            "resyncSeconds": 3,  # a CRD changed in the cluster is seen at the next resync
            "statusDebounceSeconds": 0.1,
        },
    }
    if flink_version is not None:
        settings["flink"] = {"flinkVersion": flink_version}
    if supported is not None:
        settings["flink"]["supportedVersions"] = supported
    path.write_text(yaml.safe_dump(settings))
    return path


@pytest.fixture(scope="module")
def env(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    cluster.plane.install_crds(REPO / "crds" / "application.yaml")
    cluster.plane.install_crds(*crdfiles.delegate_crd_files())
    cluster.plane.install_crds(FLINK_1_7_CRD)  # the installed operator's, older than federator's
    for ns in (TEAM, KAFKA):
        cluster.ensure_namespace(ns)
    tmp = tmp_path_factory.mktemp("installed-crd")
    sim = DelegateSimulator(cluster.api, interval=0.1, namespaces=[TEAM, KAFKA])
    sim.run_in_thread()
    operator = OperatorProcess(
        write_settings(tmp / "settings.yaml", None),  # the default flinkVersion: v1_20
        cluster.kubeconfig,
        tmp / "operator.log",
        namespaces=[TEAM, KAFKA],
    )
    operator.start()
    state = {"operator": operator, "tmp": tmp}
    try:
        yield state
    finally:
        state["operator"].stop()
        sim.stop()
        cluster.plane.install_crds(*current_flink_crd())  # leave the session's CRD as found


def application(name: str, flink_block: dict[str, Any] | None = None) -> dict[str, Any]:
    flink = {
        "job": {"jarURI": "local:///opt/flink/usrlib/job.jar", "entryClass": "x.Main"},
        **(flink_block or {}),
    }
    return {
        "apiVersion": "federator.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": name, "namespace": TEAM},
        "spec": {
            "kafka": {"cluster": "default"},
            "streamlets": [
                {"name": "source", "runtime": "container", "image": IMAGE, "outlets": ["out"]},
                {
                    "name": "scorer",
                    "runtime": "flink",
                    "flinkOperator": "apache",
                    "image": IMAGE,
                    "inlets": ["in"],
                    "outlets": ["out"],
                    "flink": flink,
                },
                {"name": "sink", "runtime": "container", "image": IMAGE, "inlets": ["in"]},
            ],
            "connections": [
                {"from": "source.out", "to": ["scorer.in"]},
                {"from": "scorer.out", "to": ["sink.in"]},
            ],
        },
    }


def create(cluster: Cluster, body: dict[str, Any]) -> None:
    code, got = cluster.plane.request("POST", APPS, body)
    assert code == 201, got


def status_of(cluster: Cluster, name: str) -> dict[str, Any]:
    code, body = cluster.plane.request("GET", f"{APPS}/{name}")
    assert code == 200, body
    return body.get("status") or {}  # type: ignore[no-any-return]


def flink_entry(cluster: Cluster, name: str) -> dict[str, Any]:
    entries = status_of(cluster, name).get("children") or []
    return next((c for c in entries if c.get("kind") == "FlinkDeployment"), {})


def names(cluster: Cluster, path: str) -> set[str]:
    code, body = cluster.plane.request("GET", path)
    assert code == 200, body
    return {i["metadata"]["name"] for i in body["items"]}


def flink_deployment(cluster: Cluster, name: str) -> dict[str, Any] | None:
    code, body = cluster.plane.request("GET", f"{FLINK}/{name}")
    return body if code == 200 else None  # type: ignore[no-any-return]


def test_the_real_api_server_refuses_an_out_of_enum_flink_version(
    cluster: Cluster, env: dict[str, Any]
) -> None:
    """The evidence first: with the 1.7.0 CRD installed, the API server's structural schema
    refuses v1_20 (so the apply would fail with 422); federator must not rely on this alone."""
    body = {
        "apiVersion": "flink.apache.org/v1beta1",
        "kind": "FlinkDeployment",
        "metadata": {"name": "direct-v1-20", "namespace": TEAM},
        "spec": {"flinkVersion": "v1_20", "image": IMAGE},
    }
    code, got = cluster.plane.request("POST", FLINK, body)
    assert code == 422, got
    assert "spec.flinkVersion" in got["message"] and "Unsupported value" in got["message"], got
    assert '"v1_19"' in got["message"], got  # the server lists what it allows


def test_a_child_the_installed_crd_refuses_is_reported_and_never_written(
    cluster: Cluster, env: dict[str, Any]
) -> None:
    create(cluster, application("fraud"))
    entry = eventually(
        lambda: (
            (e := flink_entry(cluster, "fraud")).get("reason") == "InvalidForInstalledCRD" and e
        ),
        "the FlinkDeployment reported InvalidForInstalledCRD",
    )
    assert entry["health"] == "Degraded", entry
    message = entry["message"]
    for part in (
        "spec.flinkVersion",
        "'v1_20'",
        "v1_13, v1_14, v1_15, v1_16, v1_17, v1_18, v1_19",
        "flinkdeployments.flink.apache.org",
        "`flink.flinkVersion`",
        "spec.streamlets[].flink.flinkVersion",
    ):
        assert part in message, (part, message)
    # The other children proceed: the topics, then both Deployments once the topics are Ready.
    eventually(
        lambda: {"fraud-source", "fraud-sink"} <= names(cluster, DEPLOYMENTS),
        "the Deployments of the same application",
    )
    assert {"fraud.source.out", "fraud.scorer.out"} <= names(cluster, TOPICS)
    status = eventually(
        lambda: (s := status_of(cluster, "fraud")).get("phase") == "Degraded" and s,
        "the application Degraded",
    )
    assert flink_deployment(cluster, "fraud-scorer") is None
    operator: OperatorProcess = env["operator"]
    assert operator.metric("federator_api_writes_total", kind="FlinkDeployment") == 0
    assert status["summary"] == f"{status['ready']}/{status['total']}"
    eventually(
        lambda: any(
            e.get("reason") == "InvalidForInstalledCRD"
            and e.get("type") == "Warning"
            and e["involvedObject"].get("name") == "fraud"
            and "spec.flinkVersion" in e.get("message", "")
            for e in cluster.plane.request("GET", EVENTS)[1]["items"]
        ),
        "a Warning Event InvalidForInstalledCRD on the application",
    )


def test_a_streamlet_may_override_the_flink_version(cluster: Cluster, env: dict[str, Any]) -> None:
    create(cluster, application("pinned", {"flinkVersion": "v1_18"}))
    created = eventually(
        lambda: flink_deployment(cluster, "pinned-scorer"), "the pinned FlinkDeployment"
    )
    assert created["spec"]["flinkVersion"] == "v1_18"
    assert flink_entry(cluster, "pinned").get("reason") != "InvalidForInstalledCRD"


def test_a_newer_crd_is_picked_up_without_a_restart(cluster: Cluster, env: dict[str, Any]) -> None:
    """The schemas are cached by the CRD's resourceVersion: installing a CRD that allows v1_20
    lets the waiting child through at the next reconcile (here the resync), then the 1.7.0 CRD
    is put back for the next test."""
    assert flink_deployment(cluster, "fraud-scorer") is None
    cluster.plane.install_crds(*current_flink_crd())
    try:
        created = eventually(
            lambda: flink_deployment(cluster, "fraud-scorer"), "the FlinkDeployment, created"
        )
        assert created["spec"]["flinkVersion"] == "v1_20"
    finally:
        code, got = cluster.plane.request("DELETE", f"{APPS}/fraud")
        assert code in (200, 202), got
        eventually(lambda: cluster.plane.request("GET", f"{APPS}/fraud")[0] == 404, "fraud deleted")
        cluster.plane.request("DELETE", f"{FLINK}/fraud-scorer")
        eventually(lambda: flink_deployment(cluster, "fraud-scorer") is None, "its child gone")
        cluster.plane.install_crds(FLINK_1_7_CRD)


def test_restarted_with_a_supported_flink_version_it_is_created(
    cluster: Cluster, env: dict[str, Any]
) -> None:
    create(cluster, application("later"))
    eventually(
        lambda: flink_entry(cluster, "later").get("reason") == "InvalidForInstalledCRD",
        "refused with the default v1_20",
    )
    env["operator"].stop()
    tmp: Path = env["tmp"]
    operator = OperatorProcess(
        write_settings(tmp / "settings-v1_17.yaml", "v1_17", SUPPORTED_1_7),
        cluster.kubeconfig,
        tmp / "operator-v1_17.log",
        namespaces=[TEAM, KAFKA],
    )
    env["operator"] = operator
    operator.start()
    created = eventually(
        lambda: flink_deployment(cluster, "later-scorer"), "the FlinkDeployment with v1_17"
    )
    assert created["spec"]["flinkVersion"] == "v1_17"
    eventually(
        lambda: flink_entry(cluster, "later").get("reason") not in (None, "InvalidForInstalledCRD"),
        "the child's verdict from its own status",
    )


def test_where_the_crd_allows_what_the_operator_cannot_read_the_settings_refuse_it(
    cluster: Cluster, env: dict[str, Any]
) -> None:
    """The spike's case: the current CRD (allows v1_20) under an operator 1.7.0. The API server
    stores v1_20; federator, told the operator's versions, never writes it."""
    cluster.plane.install_crds(*current_flink_crd())
    direct = {
        "apiVersion": "flink.apache.org/v1beta1",
        "kind": "FlinkDeployment",
        "metadata": {"name": "direct-v1-20", "namespace": TEAM},
        "spec": {"flinkVersion": "v1_20", "image": IMAGE},
    }

    def created() -> bool:
        """The API server stores v1_20 (what an operator 1.7.0 would fail to deserialize) once
        it validates with the swapped CRD's schema: until then it refuses it (422, seen once
        in a fresh-clone CI run right after the swap)."""
        code, got = cluster.plane.request("POST", FLINK, direct)
        assert code in (201, 422), got
        return code == 201

    eventually(created, "v1_20 stored under the current CRD", 30)
    code, got = cluster.plane.request("DELETE", f"{FLINK}/direct-v1-20")
    assert code == 200, got
    create(cluster, application("override", {"flinkVersion": "v1_20"}))
    # Until the operator's schema cache sees the CRD swap (at most its 10 s ttl) the 1.7.0 CRD
    # refuses the child; then only the settings do.
    refusal = "spec.flinkVersion: 'v1_20' is not supported (supported: v1_13, v1_14, v1_15"
    entry = eventually(
        lambda: refusal in (e := flink_entry(cluster, "override")).get("message", "") and e,
        "the overridden FlinkDeployment refused by the settings",
    )
    assert entry["reason"] == "InvalidForInstalledCRD" and entry["health"] == "Degraded"
    assert "the operator the settings describe (`flink.supportedVersions`)" in entry["message"]
    assert "the installed CRD" not in entry["message"], entry
    eventually(
        lambda: {"override-source", "override-sink"} <= names(cluster, DEPLOYMENTS),
        "the other children",
    )
    assert flink_deployment(cluster, "override-scorer") is None
