"""The Helm chart on the embedded control plane: installed with helm, then the operator runs with
the chart ServiceAccount's own token, so real RBAC on the real API server decides what it may do.

Aspects covered:
- `helm install` (namespaced mode: one watched namespace plus a Kafka namespace) creates the
  Application CRD from the chart's crds/, the ServiceAccount, Roles and the settings ConfigMap;
- `federator run` with the installed ConfigMap's settings and a TokenRequest token of the
  chart's ServiceAccount reconciles the seed example to Healthy (the delegate simulator, as
  admin, plays the delegate operators);
- the same identity is refused what it must not do: reading Secrets anywhere, writing a
  Deployment or a KafkaTopic outside the served namespaces;
- it may impersonate a ServiceAccount of a served namespace (and gets that account's groups),
  never a user, a group, a user extra, or an account of another namespace; an Application
  naming a ServiceAccount reaches Healthy, its streamlets written with that account's rights;
- a cluster-wide HA install: ClusterRole, kopf's peering CRDs and the ClusterKopfPeering hook
  object; after `helm uninstall` every CRD is kept.
"""

from __future__ import annotations

import base64
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from federator.devcluster import crdfiles
from federator.devcluster.credentials import kubeconfig_text
from federator.devcluster.harness import (
    OperatorProcess,
    eventually,
    free_port,
)
from federator.simulator import DelegateSimulator

if TYPE_CHECKING:
    from conftest import Cluster
else:
    Cluster = Any

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "federator"
DELEGATES = crdfiles.delegate_crds_dir()
RELEASE, RELEASE_NS = "fed", "chart-system"
APPS_NS, KAFKA_NS, OUTSIDE_NS = "chart-apps", "chart-kafka", "chart-outside"
SA = "fed-federator"  # the chart's full name for release "fed"
APP = "/apis/federator.io/v1alpha1/namespaces/{ns}/applications"
CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"


def helm(cluster: Cluster, *args: str) -> str:
    proc = subprocess.run(
        [str(cluster.bin_dir / "helm"), "--kubeconfig", str(cluster.kubeconfig), *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, f"helm {' '.join(args)}:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def service_account_token(cluster: Cluster, namespace: str, name: str) -> str:
    """A token of the ServiceAccount from the TokenRequest API (asked as admin)."""
    status, body = cluster.plane.request(
        "POST",
        f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token",
        {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {"expirationSeconds": 3600},
        },
    )
    assert status == 201, body
    return str(body["status"]["token"])


def service_account_kubeconfig(cluster: Cluster, token: str, path: Path) -> Path:
    """The admin kubeconfig's server and CA, with the ServiceAccount's token."""
    admin = yaml.safe_load(cluster.kubeconfig.read_text())
    server = admin["clusters"][0]["cluster"]["server"]
    ca_pem = base64.b64decode(admin["clusters"][0]["cluster"]["certificate-authority-data"])
    path.write_text(
        kubeconfig_text(server, ca_pem, f"system:serviceaccount:{RELEASE_NS}:{SA}", token)
    )
    return path


@pytest.fixture(scope="module")
def installed(
    cluster: Cluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    """The chart installed in namespaced mode; the operator running as its ServiceAccount."""
    cluster.plane.install_crds(*crdfiles.delegate_crd_files(DELEGATES))
    for ns in (RELEASE_NS, APPS_NS, KAFKA_NS, OUTSIDE_NS):
        cluster.ensure_namespace(ns)
    tmp = tmp_path_factory.mktemp("chart")
    values = tmp / "values.yaml"
    values.write_text(
        yaml.safe_dump(
            {
                "watchNamespaces": [APPS_NS],
                "kafkaClusters": [
                    {
                        "name": "default",
                        "strimziCluster": "pipelines-strimzi",
                        "namespace": KAFKA_NS,
                        "bootstrapServers": "pipelines-strimzi-kafka-bootstrap:9092",
                    }
                ],
                "operator": {
                    "metricsPort": free_port(),
                    "livenessPort": free_port(),
                    "resyncSeconds": 30,
                    "statusDebounceSeconds": 0.1,
                },
            }
        )
    )
    notes = helm(
        cluster, "install", RELEASE, str(CHART), "--namespace", RELEASE_NS, "--values", str(values)
    )
    # The settings the operator runs with are the ones the chart installed.
    configmap = yaml.safe_load(
        cluster.plane.kubectl("get", "configmap", "-n", RELEASE_NS, "fed-federator", "-o", "yaml")
    )
    settings = tmp / "settings.yaml"
    settings.write_text(configmap["data"]["settings.yaml"])
    token = service_account_token(cluster, RELEASE_NS, SA)
    kubeconfig = service_account_kubeconfig(cluster, token, tmp / "sa.kubeconfig")
    operator = OperatorProcess(settings, kubeconfig, tmp / "operator.log")
    sim = DelegateSimulator(cluster.api, interval=0.1, namespaces=[APPS_NS, KAFKA_NS])
    sim.run_in_thread()
    try:
        operator.start()
        yield {
            "token": token,
            "notes": notes,
            "log": tmp / "operator.log",
            "kubeconfig": kubeconfig,
            "settings": settings,
        }
    finally:
        operator.stop()
        sim.stop()


def test_install_creates_the_crd_and_namespaced_rbac(
    cluster: Cluster, installed: dict[str, Any]
) -> None:
    status, crd = cluster.plane.request("GET", f"{CRDS}/applications.federator.io")
    assert status == 200, crd
    roles = yaml.safe_load(cluster.plane.kubectl("get", "roles", "-A", "-o", "yaml"))["items"]
    ours = {
        (r["metadata"]["namespace"], r["metadata"]["name"])
        for r in roles
        if r["metadata"].get("labels", {}).get("app.kubernetes.io/instance") == RELEASE
    }
    assert ours == {(APPS_NS, "fed-federator"), (KAFKA_NS, "fed-federator-kafka")}
    assert "Mode: namespaced" in installed["notes"]


def test_operator_with_the_chart_identity_reconciles_the_seed_to_healthy(
    cluster: Cluster, installed: dict[str, Any]
) -> None:
    body = yaml.safe_load((REPO / "examples" / "call-record-aggregator.yaml").read_text())
    body["metadata"] = {"name": "call-record-aggregator", "namespace": APPS_NS}
    status, got = cluster.plane.request("POST", APP.format(ns=APPS_NS), body)
    assert status == 201, got

    def healthy() -> dict[str, Any] | None:
        status, app = cluster.plane.request(
            "GET", f"{APP.format(ns=APPS_NS)}/call-record-aggregator"
        )
        assert status == 200, app
        st = app.get("status") or {}
        ready = next((c for c in st.get("conditions", []) if c["type"] == "Ready"), {})
        if st.get("phase") == "Healthy" and ready.get("status") == "True":
            return dict(app)
        return None

    try:
        app = eventually(healthy, "the seed Application Healthy", 150)
    except AssertionError:
        print(installed["log"].read_text()[-5000:])
        raise
    kinds = {c["kind"] for c in app["status"]["children"]}
    assert "KafkaTopic" in kinds and "SparkApplication" in kinds
    topics = [c for c in app["status"]["children"] if c["kind"] == "KafkaTopic"]
    assert topics and all(c["namespace"] == KAFKA_NS for c in topics)
    assert "Forbidden" not in installed["log"].read_text()


def test_the_chart_identity_trusts_the_watch_cache_only_where_it_may_list(
    installed: dict[str, Any],
) -> None:
    """Priming the child cache with the chart's RBAC: misses are trusted where the identity
    could list, and a namespace it may not read (403) stays read by GET."""
    from kubernetes import config

    from federator.kube.client import Kube
    from federator.kube.discovery import DiscoveryCache
    from federator.operator.reconciler import Reconciler
    from federator.settings_file import load_settings

    kube = Kube(config.new_client_from_config(config_file=str(installed["kubeconfig"])))
    reconciler = Reconciler(
        kube=kube, settings=load_settings(installed["settings"]), discovery=DiscoveryCache(kube)
    )
    reconciler.prime_cache([APPS_NS, KAFKA_NS, OUTSIDE_NS])  # OUTSIDE_NS: 403 for every kind
    lookup = reconciler.cache.lookup
    for ns in (APPS_NS, KAFKA_NS):
        assert lookup(("KafkaTopic", ns, "no-such-topic")) == (True, None)
        assert lookup(("Deployment", ns, "no-such-deployment")) == (True, None)
    assert lookup(("KafkaTopic", OUTSIDE_NS, "no-such-topic")) == (False, None)
    assert lookup(("Deployment", OUTSIDE_NS, "no-such-deployment")) == (False, None)


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        pytest.param("GET", f"/api/v1/namespaces/{APPS_NS}/secrets", None, id="secrets-watched"),
        pytest.param("GET", f"/api/v1/namespaces/{RELEASE_NS}/secrets", None, id="secrets-own"),
        pytest.param("GET", "/api/v1/secrets", None, id="secrets-cluster"),
        pytest.param(
            "POST",
            f"/apis/apps/v1/namespaces/{OUTSIDE_NS}/deployments",
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": "intruder"},
                "spec": {
                    "selector": {"matchLabels": {"app": "intruder"}},
                    "template": {
                        "metadata": {"labels": {"app": "intruder"}},
                        "spec": {"containers": [{"name": "c", "image": "busybox"}]},
                    },
                },
            },
            id="deployment-outside",
        ),
        pytest.param(
            "POST",
            f"/apis/apps/v1/namespaces/{KAFKA_NS}/deployments",
            {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "intruder"}},
            id="deployment-in-kafka-namespace",
        ),
        pytest.param(
            "POST",
            f"/apis/kafka.strimzi.io/v1/namespaces/{OUTSIDE_NS}/kafkatopics",
            {
                "apiVersion": "kafka.strimzi.io/v1",
                "kind": "KafkaTopic",
                "metadata": {"name": "intruder"},
                "spec": {"partitions": 1},
            },
            id="kafkatopic-outside",
        ),
        pytest.param("GET", f"{APP.format(ns=OUTSIDE_NS)}", None, id="applications-outside"),
        pytest.param("GET", "/apis/apps/v1/deployments", None, id="deployments-cluster-wide"),
    ],
)
def test_the_chart_identity_is_refused(
    cluster: Cluster, installed: dict[str, Any], method: str, path: str, body: Any
) -> None:
    status, got = cluster.plane.request(method, path, body, token=installed["token"])
    assert status == 403, got


SELF = "/apis/authentication.k8s.io/v1/selfsubjectreviews"
REVIEW = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}


def test_the_chart_identity_may_impersonate_a_service_account_it_serves(
    cluster: Cluster, installed: dict[str, Any]
) -> None:
    user = f"system:serviceaccount:{APPS_NS}:deployer"
    status, got = cluster.plane.request(
        "POST", SELF, REVIEW, token=installed["token"], headers={"Impersonate-User": user}
    )
    assert status == 201, got
    info = got["status"]["userInfo"]
    assert info["username"] == user
    assert sorted(info["groups"]) == sorted(
        ["system:serviceaccounts", f"system:serviceaccounts:{APPS_NS}", "system:authenticated"]
    )


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({"Impersonate-User": "alice"}, id="a-user"),
        pytest.param({"Impersonate-User": "system:admin"}, id="an-admin-user"),
        pytest.param(
            {
                "Impersonate-User": f"system:serviceaccount:{APPS_NS}:deployer",
                "Impersonate-Group": "system:masters",
            },
            id="a-group",
        ),
        pytest.param(
            {
                "Impersonate-User": f"system:serviceaccount:{APPS_NS}:deployer",
                "Impersonate-Extra-Scopes": "everything",
            },
            id="a-user-extra",
        ),
        pytest.param(
            {"Impersonate-User": f"system:serviceaccount:{OUTSIDE_NS}:default"},
            id="an-account-outside",
        ),
        pytest.param(
            {"Impersonate-User": f"system:serviceaccount:{KAFKA_NS}:default"},
            id="an-account-of-the-kafka-namespace",
        ),
        pytest.param(
            {"Impersonate-User": f"system:serviceaccount:{RELEASE_NS}:{SA}"},
            id="its-own-namespace",
        ),
    ],
)
def test_the_chart_identity_impersonates_nothing_else(
    cluster: Cluster, installed: dict[str, Any], headers: dict[str, str]
) -> None:
    status, got = cluster.plane.request(
        "POST", SELF, REVIEW, token=installed["token"], headers=headers
    )
    assert status == 403, got
    assert "cannot impersonate" in got["message"]


def test_an_application_written_as_its_service_account_reaches_healthy(
    cluster: Cluster, installed: dict[str, Any]
) -> None:
    """The chart identity, impersonating the Application's ServiceAccount, whose Role may
    write the streamlet kinds of the seed (KafkaTopics stay federator's own, in the Kafka
    namespace)."""
    writer = ["get", "list", "watch", "create", "patch", "update", "delete"]
    rbac = f"/apis/rbac.authorization.k8s.io/v1/namespaces/{APPS_NS}"
    for path, body in (
        (
            f"/api/v1/namespaces/{APPS_NS}/serviceaccounts",
            {"apiVersion": "v1", "kind": "ServiceAccount"},
        ),
        (
            f"{rbac}/roles",
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "Role",
                "rules": [
                    {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": writer},
                    {
                        "apiGroups": ["sparkoperator.k8s.io"],
                        "resources": ["sparkapplications"],
                        "verbs": writer,
                    },
                ],
            },
        ),
        (
            f"{rbac}/rolebindings",
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "Role",
                    "name": "deployer",
                },
                "subjects": [{"kind": "ServiceAccount", "name": "deployer", "namespace": APPS_NS}],
            },
        ),
    ):
        status, got = cluster.plane.request(
            "POST", path, {**body, "metadata": {"name": "deployer", "namespace": APPS_NS}}
        )
        assert status == 201, got
    body = yaml.safe_load((REPO / "examples" / "call-record-aggregator.yaml").read_text())
    body["metadata"] = {"name": "as-deployer", "namespace": APPS_NS}
    body["spec"]["serviceAccountName"] = "deployer"
    status, got = cluster.plane.request("POST", APP.format(ns=APPS_NS), body)
    assert status == 201, got

    def healthy() -> dict[str, Any] | None:
        status, app = cluster.plane.request("GET", f"{APP.format(ns=APPS_NS)}/as-deployer")
        assert status == 200, app
        return dict(app) if (app.get("status") or {}).get("phase") == "Healthy" else None

    try:
        app = eventually(healthy, "the Application written as deployer Healthy", 150)
    except AssertionError:
        print(installed["log"].read_text()[-5000:])
        raise
    assert {c["kind"] for c in app["status"]["children"]} >= {"SparkApplication", "Deployment"}


def test_cluster_wide_ha_install_and_uninstall_keeps_the_crds(
    cluster: Cluster, installed: dict[str, Any]
) -> None:
    """Cluster-wide mode with peering: the peering CRDs and object install in one release."""
    cluster.ensure_namespace("chart-ha")
    helm(
        cluster,
        "install",
        "ha",
        str(CHART),
        "--namespace",
        "chart-ha",
        "--set",
        "replicaCount=2",
        "--set",
        "peering.enabled=true",
        # The peering CRDs are the release's own templates and its post-install hook creates
        # a ClusterKopfPeering: --wait holds the hooks until the CRDs are established (without
        # it, a hook run before the new kind was served failed the install once, on a loaded
        # machine: "no matches for kind ClusterKopfPeering"). docs/install.md says the same.
        "--wait",
        "--timeout",
        "3m",
    )
    status, peering = cluster.plane.request(
        "GET", "/apis/kopf.dev/v1/clusterkopfpeerings/federator"
    )
    assert status == 200, peering
    token = service_account_token(cluster, "chart-ha", "ha-federator")
    for path in (f"{APP.format(ns=OUTSIDE_NS)}", "/apis/federator.io/v1alpha1/applications"):
        status, got = cluster.plane.request("GET", path, token=token)
        assert status == 200, got  # cluster-wide: every namespace
    status, got = cluster.plane.request("GET", "/api/v1/secrets", token=token)
    assert status == 403, got
    helm(cluster, "uninstall", "ha", "--namespace", "chart-ha")
    for name in ("applications.federator.io", "clusterkopfpeerings.kopf.dev"):
        status, got = cluster.plane.request("GET", f"{CRDS}/{name}")
        assert status == 200, (name, got)
    status, _ = cluster.plane.request(
        "GET", "/apis/rbac.authorization.k8s.io/v1/clusterroles/ha-federator"
    )
    assert status == 404
