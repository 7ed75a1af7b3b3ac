"""Children are written with the author's rights, not federator's (issue 11 §1, §3), on the
real API server with real RBAC.

The tenant: user alice, whose Role grants only `applications` in namespace imp-team-a (she acts
through the admin's `Impersonate-User: alice`, as `kubectl --as alice` does). The operator runs
with the platform's lock-down on (`impersonation.requireServiceAccount: true`) and a pod policy
that allows `team-a-jobs` in imp-team-a. The delegate simulator plays the delegate operators.

Aspects covered:
- alice may write Applications and nothing else (`kubectl auth can-i ... --as alice`);
- the issue's escalation replayed as alice, through every runtime: a pod under the powerful
  ServiceAccount is refused before anything is written, even when the Application names a
  ServiceAccount with every right it needs;
- an Application written as a ServiceAccount without rights creates nothing in imp-team-a and
  no pod, through every runtime: its child reads Degraded / ApplyForbidden naming the missing
  permission as `kubectl auth can-i` asks it; a ServiceAccount that does not exist is named;
- under the lock-down, an Application naming no ServiceAccount is Invalid at
  `spec.serviceAccountName`;
- an author whose ServiceAccount has the rights gets a Healthy application on every runtime,
  with a pod running as a ServiceAccount the pod policy allows;
- a prune the ServiceAccount may not delete reads PruneFailed naming the permission;
- the impersonating client is the ServiceAccount, with its own groups and nothing more;
- the operator's default ServiceAccount is impersonated when an Application names none;
- the finalizer leaves a child it may not delete as the ServiceAccount in place (Warning
  Event), rather than deleting it with federator's rights or blocking the deletion.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml
from kubernetes import client

from federator.core.settings import parse_settings
from federator.devcluster import crdfiles
from federator.devcluster.harness import OperatorProcess, eventually, free_port
from federator.kube.client import Kube
from federator.kube.discovery import DiscoveryCache
from federator.operator.reconciler import Reconciler
from federator.simulator import DelegateSimulator

if TYPE_CHECKING:
    from conftest import Cluster
else:
    Cluster = Any

REPO = Path(__file__).resolve().parents[2]
TEAM, KAFKA, OTHER = "imp-team-a", "imp-kafka", "imp-team-b"
APPS = f"/apis/federator.io/v1alpha1/namespaces/{TEAM}/applications"
IMAGE = "registry.example.com/team/app:1.0"
ALICE = {"Impersonate-User": "alice"}

DELEGATE_KINDS = {
    # kind: (API path prefix, plural)
    "Deployment": ("/apis/apps/v1", "deployments"),
    "SparkApplication": ("/apis/sparkoperator.k8s.io/v1beta2", "sparkapplications"),
    "FlinkDeployment": ("/apis/flink.apache.org/v1beta1", "flinkdeployments"),
    "FlinkApplication": ("/apis/flink.k8s.io/v1beta1", "flinkapplications"),
}
WRITE = ["get", "list", "watch", "create", "patch", "update", "delete"]
STREAMLET_RULES = [
    {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": WRITE},
    {"apiGroups": ["sparkoperator.k8s.io"], "resources": ["sparkapplications"], "verbs": WRITE},
    {"apiGroups": ["flink.apache.org"], "resources": ["flinkdeployments"], "verbs": WRITE},
    {"apiGroups": ["flink.k8s.io"], "resources": ["flinkapplications"], "verbs": WRITE},
]


class Api:
    """Raw requests to the control plane as admin (alice: `create_as_alice`, `can_i`)."""

    def __init__(self, cluster: Cluster) -> None:
        self.plane = cluster.plane

    def __call__(self, method: str, path: str, body: Any = None, **kw: Any) -> tuple[int, Any]:
        status, got = self.plane.request(method, path, body, **kw)
        return int(status), got

    def get(self, path: str) -> Any:
        status, got = self(method="GET", path=path)
        assert status == 200, got
        return got

    def exists(self, path: str) -> bool:
        return self("GET", path)[0] == 200

    def create_as_alice(self, body: dict[str, Any]) -> None:
        status, got = self("POST", APPS, body, headers=ALICE)
        assert status == 201, got

    def can_i(self, user: str, verb: str, resource: str, namespace: str = TEAM) -> str:
        """`kubectl auth can-i` as the admin asks it for another user."""
        out = self.plane.kubectl(
            "auth", "can-i", verb, resource, "-n", namespace, "--as", user, check=False
        )
        return str(out).strip()


def role(
    api: Api, namespace: str, name: str, rules: list[dict[str, Any]], subject: dict[str, Any]
) -> None:
    """A Role and its RoleBinding to one subject (a User or a ServiceAccount)."""
    rbac = f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}"
    objects = [
        (
            f"{rbac}/roles",
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "rules": rules},
        ),
        (
            f"{rbac}/rolebindings",
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
                "subjects": [subject],
            },
        ),
    ]
    for path, body in objects:
        body["metadata"] = {"name": name, "namespace": namespace}
        status, got = api("POST", path, body)
        assert status in (201, 409), got


def service_account(
    api: Api, namespace: str, name: str, rules: list[dict[str, Any]] | None = None
) -> None:
    """A ServiceAccount, and a Role with `rules` bound to it."""
    status, got = api(
        "POST",
        f"/api/v1/namespaces/{namespace}/serviceaccounts",
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name}},
    )
    assert status in (201, 409), got
    if rules:
        subject = {"kind": "ServiceAccount", "name": name, "namespace": namespace}
        role(api, namespace, name, rules, subject)


@pytest.fixture(scope="module")
def api(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """The tenant's namespace and accounts, and the operator running under the lock-down."""
    api = Api(cluster)
    cluster.plane.install_crds(REPO / "crds" / "application.yaml")
    cluster.plane.install_crds(*crdfiles.delegate_crd_files())
    for ns in (TEAM, KAFKA, OTHER):
        cluster.ensure_namespace(ns)
    # alice writes Applications in her namespace, and nothing else anywhere.
    role(
        api,
        TEAM,
        "application-author",
        [{"apiGroups": ["federator.io"], "resources": ["applications"], "verbs": WRITE}],
        {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "alice"},
    )
    service_account(api, TEAM, "restricted-sa")  # no rights at all
    service_account(api, TEAM, "deployer", STREAMLET_RULES)
    no_delete = [{**r, "verbs": [v for v in WRITE if v != "delete"]} for r in STREAMLET_RULES]
    service_account(api, TEAM, "no-delete", no_delete)
    service_account(api, TEAM, "team-a-jobs")  # pods may run as it (the pod policy)
    service_account(
        api,
        TEAM,
        "powerful",
        [*STREAMLET_RULES, {"apiGroups": [""], "resources": ["pods", "secrets"], "verbs": WRITE}],
    )
    tmp = tmp_path_factory.mktemp("impersonation")
    settings = tmp / "settings.yaml"
    settings.write_text(
        yaml.safe_dump(
            {
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
                    "resyncSeconds": 600,
                    "statusDebounceSeconds": 0.1,
                },
                "podSecurity": {"allowedServiceAccounts": {TEAM: ["team-a-jobs"]}},
                "impersonation": {"requireServiceAccount": True},
            }
        )
    )
    operator = OperatorProcess(
        settings, cluster.kubeconfig, tmp / "operator.log", namespaces=[TEAM, KAFKA]
    )
    sim = DelegateSimulator(cluster.api, interval=0.1, namespaces=[TEAM, KAFKA, OTHER])
    sim.run_in_thread()
    operator.start()
    try:
        yield api
    finally:
        operator.stop()
        sim.stop()


# -- the application alice writes


def pipeline(name: str, job: dict[str, Any], account: str | None) -> dict[str, Any]:
    """`job` (the runtime under test) writes a topic a container sink reads."""
    spec: dict[str, Any] = {
        "streamlets": [
            {"name": "job", "image": IMAGE, "outlets": ["out"], **job},
            {"name": "sink", "runtime": "container", "image": IMAGE, "inlets": ["in"]},
        ],
        "connections": [{"from": "job.out", "to": ["sink.in"]}],
    }
    if account is not None:
        spec["serviceAccountName"] = account
    return {
        "apiVersion": "federator.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": name, "namespace": TEAM},
        "spec": spec,
    }


RUNTIMES: dict[str, dict[str, Any]] = {
    "container": {"runtime": "container"},
    "spark": {
        "runtime": "spark",
        "spark": {"mainClass": "x.Main", "mainApplicationFile": "local:///opt/app.jar"},
    },
    "flink": {
        "runtime": "flink",
        "flinkOperator": "apache",
        "flink": {"job": {"jarURI": "local:///opt/flink/usrlib/job.jar"}},
    },
    "lyft": {
        "runtime": "flink",
        "flinkOperator": "lyft",
        "flink": {"jarName": "job.jar", "entryClass": "x.Main"},
    },
}
CHILD_KIND = {
    "container": "Deployment",
    "spark": "SparkApplication",
    "flink": "FlinkDeployment",
    "lyft": "FlinkApplication",
}
# Where each runtime's block names the ServiceAccount its pods run as (the issue's escalation).
AS_POWERFUL: dict[str, dict[str, Any]] = {
    "container": {"container": {"template": {"spec": {"serviceAccountName": "powerful"}}}},
    "spark": {"spark": {"driver": {"serviceAccount": "powerful"}}},
    "flink": {"flink": {"serviceAccount": "powerful"}},
    "lyft": {"flink": {"serviceAccountName": "powerful"}},
}


def merged(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        else:
            out[key] = value
    return out


def status_of(api: Api, name: str, namespace: str = TEAM) -> dict[str, Any]:
    got = api.get(f"/apis/federator.io/v1alpha1/namespaces/{namespace}/applications/{name}")
    return got.get("status") or {}  # type: ignore[no-any-return]


def children_in_team(api: Api, app: str) -> list[str]:
    """Every object of a streamlet kind, and every pod, in imp-team-a that belongs to `app`."""
    found = []
    for kind, (prefix, plural) in DELEGATE_KINDS.items():
        items = api.get(f"{prefix}/namespaces/{TEAM}/{plural}")["items"]
        found += [
            f"{kind}/{i['metadata']['name']}"
            for i in items
            if i["metadata"]["name"].startswith(f"{app}-")
        ]
    pods = api.get(f"/api/v1/namespaces/{TEAM}/pods")["items"]
    found += [
        f"Pod/{p['metadata']['name']}" for p in pods if p["metadata"]["name"].startswith(f"{app}-")
    ]
    return found


def entry(status: dict[str, Any], kind: str) -> dict[str, Any] | None:
    return next((c for c in status.get("children", []) if c["kind"] == kind), None)


def condition(status: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(c for c in status["conditions"] if c["type"] == kind)


def phase(api: Api, name: str, wanted: str) -> dict[str, Any] | None:
    """The status once its phase is `wanted` for the current generation."""
    body = api.get(f"{APPS}/{name}")
    status = body.get("status") or {}
    current = status.get("observedGeneration") == body["metadata"]["generation"]
    return status if current and status.get("phase") == wanted else None


# -- alice, through the operator


@pytest.mark.parametrize(
    "resource",
    [
        "deployments.apps",
        "pods",
        "sparkapplications.sparkoperator.k8s.io",
        "flinkdeployments.flink.apache.org",
        "flinkapplications.flink.k8s.io",
        "kafkatopics.kafka.strimzi.io",
    ],
)
def test_alice_may_write_applications_and_nothing_else(api: Api, resource: str) -> None:
    assert api.can_i("alice", "create", "applications.federator.io") == "yes"
    assert api.can_i("alice", "create", resource) == "no"
    assert api.can_i("alice", "create", resource, KAFKA) == "no"


@pytest.mark.parametrize("runtime", sorted(RUNTIMES))
def test_a_pod_under_the_powerful_account_is_refused_before_anything_is_written(
    api: Api, runtime: str
) -> None:
    """The escalation of the issue, replayed as alice: the block runs the pods as `powerful`.
    Even written as a ServiceAccount that may create the child, nothing is applied."""
    name = f"escalate-{runtime}"
    job = merged(RUNTIMES[runtime], AS_POWERFUL[runtime])
    api.create_as_alice(pipeline(name, job, "deployer"))
    status = eventually(lambda: phase(api, name, "Invalid"), f"{name} Invalid")
    compiled = condition(status, "Compiled")
    assert compiled["status"] == "False"
    assert 'ServiceAccount "powerful" is not allowed' in compiled["message"]
    assert children_in_team(api, name) == []


@pytest.mark.parametrize("runtime", sorted(RUNTIMES))
def test_an_account_without_rights_creates_nothing_and_says_which_permission(
    api: Api, runtime: str
) -> None:
    name = f"restricted-{runtime}"
    api.create_as_alice(pipeline(name, RUNTIMES[runtime], "restricted-sa"))
    kind = CHILD_KIND[runtime]

    def refused() -> dict[str, Any] | None:
        child = entry(status_of(api, name), kind)
        return child if child and child["reason"] == "ApplyForbidden" else None

    child = eventually(refused, f"{name}: the {kind} refused", 60)
    assert child["health"] == "Degraded"
    prefix, plural = DELEGATE_KINDS[kind]
    resource = f"{plural}.{prefix.split('/')[2]}"
    user = f"system:serviceaccount:{TEAM}:restricted-sa"
    assert child["message"].startswith(
        f"ServiceAccount {TEAM}/restricted-sa may not create {resource} in namespace {TEAM} "
        f"(kubectl auth can-i create {resource} -n {TEAM} --as {user})"
    ), child["message"]
    assert api.can_i(user, "create", resource) == "no"  # the command the message gives agrees
    status = status_of(api, name)
    assert status["phase"] == "Degraded"
    assert condition(status, "Stalled")["status"] == "True"
    assert children_in_team(api, name) == []


def test_an_account_that_does_not_exist_is_named(api: Api) -> None:
    api.create_as_alice(pipeline("ghost", RUNTIMES["container"], "ghost"))

    def refused() -> dict[str, Any] | None:
        child = entry(status_of(api, "ghost"), "Deployment")
        return child if child and child["reason"] == "ApplyForbidden" else None

    child = eventually(refused, "ghost: the Deployment refused", 60)
    assert child["message"].startswith(
        f"ServiceAccount {TEAM}/ghost does not exist: create it, or name an existing one in "
        "spec.serviceAccountName"
    ), child["message"]
    assert children_in_team(api, "ghost") == []


def test_the_lock_down_refuses_an_application_naming_no_account(api: Api) -> None:
    api.create_as_alice(pipeline("anonymous", RUNTIMES["container"], None))
    status = eventually(lambda: phase(api, "anonymous", "Invalid"), "anonymous Invalid")
    compiled = condition(status, "Compiled")
    assert compiled["status"] == "False"
    assert "spec.serviceAccountName: " in compiled["message"]
    assert children_in_team(api, "anonymous") == []
    topics = api.get(f"/apis/kafka.strimzi.io/v1/namespaces/{KAFKA}/kafkatopics")["items"]
    assert not [t for t in topics if t["metadata"]["name"].startswith("anonymous.")]


def test_an_author_whose_account_has_the_rights_gets_a_healthy_application(api: Api) -> None:
    """Every runtime at once, and a container whose pods run as `team-a-jobs`, which the pod
    policy allows in this namespace."""
    jobs = {"container": {"template": {"spec": {"serviceAccountName": "team-a-jobs"}}}}
    body = {
        "apiVersion": "federator.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": "allowed", "namespace": TEAM},
        "spec": {
            "serviceAccountName": "deployer",
            "streamlets": [
                {"name": "src", "image": IMAGE, "outlets": ["out"], **RUNTIMES["spark"]},
                {"name": "score", "image": IMAGE, "inlets": ["in"], "outlets": ["out"]}
                | RUNTIMES["flink"],
                {"name": "lyft", "image": IMAGE, "inlets": ["in"], **RUNTIMES["lyft"]},
                {"name": "sink", "runtime": "container", "image": IMAGE, "inlets": ["in"], **jobs},
            ],
            "connections": [
                {"from": "src.out", "to": ["score.in"]},
                {"from": "score.out", "to": ["lyft.in", "sink.in"]},
            ],
        },
    }
    api.create_as_alice(body)
    status = eventually(lambda: phase(api, "allowed", "Healthy"), "allowed Healthy", 150)
    assert {c["kind"] for c in status["children"]} == {"KafkaTopic", *CHILD_KIND.values()}
    deployment = api.get(f"/apis/apps/v1/namespaces/{TEAM}/deployments/allowed-sink")
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == "team-a-jobs"

    def pods() -> list[dict[str, Any]]:
        items = api.get(f"/api/v1/namespaces/{TEAM}/pods")["items"]
        return [p for p in items if p["metadata"]["name"].startswith("allowed-sink-")]

    for pod in eventually(pods, "the sink's pod"):
        assert pod["spec"]["serviceAccountName"] == "team-a-jobs"


def test_a_prune_the_account_may_not_delete_names_the_permission(api: Api) -> None:
    body = pipeline("keeper", RUNTIMES["container"], "no-delete")
    body["spec"]["streamlets"].append(
        {"name": "extra", "runtime": "container", "image": IMAGE, "inlets": ["in"]}
    )
    body["spec"]["connections"][0]["to"].append("extra.in")
    api.create_as_alice(body)
    eventually(lambda: phase(api, "keeper", "Healthy"), "keeper Healthy", 120)
    spec = copy.deepcopy(body["spec"])
    spec["streamlets"] = spec["streamlets"][:2]
    spec["connections"][0]["to"] = ["sink.in"]
    code, got = api(
        "PATCH",
        f"{APPS}/keeper",
        {"spec": spec},
        content_type="application/merge-patch+json",
        headers=ALICE,
    )
    assert code == 200, got

    def prune_failed() -> dict[str, Any] | None:
        for child in status_of(api, "keeper").get("children", []):
            if child["name"] == "keeper-extra" and child["reason"] == "PruneFailed":
                return dict(child)
        return None

    child = eventually(prune_failed, "keeper-extra PruneFailed", 60)
    user = f"system:serviceaccount:{TEAM}:no-delete"
    assert child["message"].startswith(
        f"ServiceAccount {TEAM}/no-delete may not delete deployments.apps in namespace {TEAM} "
        f"(kubectl auth can-i delete deployments.apps/keeper-extra -n {TEAM} --as {user})"
    ), child["message"]
    assert "Deployment/keeper-extra" in children_in_team(api, "keeper")


# -- the kube layer and in-process reconciles (namespace imp-team-b: no operator serves it)


def review(kube: Kube) -> Any:
    body = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
    return client.AuthenticationV1Api(kube.api).create_self_subject_review(body).status.user_info


def test_the_impersonating_client_is_the_account_with_its_own_groups(
    cluster: Cluster, api: Api
) -> None:
    kube = Kube(cluster.api)
    view = kube.as_service_account(TEAM, "deployer")
    assert kube.as_service_account(TEAM, "deployer") is view  # one client per account
    info = review(view)
    assert info.username == f"system:serviceaccount:{TEAM}:deployer"
    assert sorted(info.groups) == sorted(
        ["system:serviceaccounts", f"system:serviceaccounts:{TEAM}", "system:authenticated"]
    )
    assert review(kube).username != info.username  # federator's own client is untouched


def in_process(cluster: Cluster, settings: dict[str, Any]) -> Reconciler:
    kube = Kube(cluster.api)
    return Reconciler(kube=kube, settings=parse_settings(settings), discovery=DiscoveryCache(kube))


def create_in_other(api: Api, body: dict[str, Any]) -> dict[str, Any]:
    code, created = api(
        "POST", f"/apis/federator.io/v1alpha1/namespaces/{OTHER}/applications", body
    )
    assert code == 201, created
    return created  # type: ignore[no-any-return]


def test_the_default_account_is_impersonated_when_the_application_names_none(
    cluster: Cluster, api: Api
) -> None:
    service_account(api, OTHER, "restricted-sa")
    kafka = {"name": "default", "strimziCluster": "s", "namespace": KAFKA, "bootstrapServers": "b"}
    reconciler = in_process(
        cluster,
        {"kafkaClusters": [kafka], "impersonation": {"defaultServiceAccount": "restricted-sa"}},
    )
    created = create_in_other(
        api,
        {
            "apiVersion": "federator.io/v1alpha1",
            "kind": "Application",
            "metadata": {"name": "lonely", "namespace": OTHER},
            "spec": {"streamlets": [{"name": "job", "runtime": "container", "image": IMAGE}]},
        },
    )
    (report,) = reconciler.reconcile(created).reports
    assert (report.kind, report.health.reason) == ("Deployment", "ApplyForbidden")
    assert report.health.message.startswith(
        f"ServiceAccount {OTHER}/restricted-sa may not create deployments.apps"
    )
    assert not api.exists(f"/apis/apps/v1/namespaces/{OTHER}/deployments/lonely-job")


def test_the_finalizer_leaves_what_the_account_may_not_delete(cluster: Cluster, api: Api) -> None:
    """A Kafka cluster whose namespace is the application's: its Delete-policy topic is written
    as the application's ServiceAccount, which may create topics there but not delete them."""
    topics = {
        "apiGroups": ["kafka.strimzi.io"],
        "resources": ["kafkatopics"],
        "verbs": [v for v in WRITE if v != "delete"],
    }
    service_account(api, OTHER, "topic-maker", [topics])
    kafka = {"name": "local", "strimziCluster": "s", "namespace": OTHER, "bootstrapServers": "b"}
    reconciler = in_process(cluster, {"kafkaClusters": [kafka]})
    created = create_in_other(
        api,
        {
            "apiVersion": "federator.io/v1alpha1",
            "kind": "Application",
            "metadata": {"name": "local-topics", "namespace": OTHER},
            "spec": {
                "kafka": {"cluster": "local"},
                "serviceAccountName": "topic-maker",
                "deletionPolicy": "Delete",
                "streamlets": [
                    {"name": "job", "runtime": "container", "image": IMAGE, "outlets": ["out"]}
                ],
            },
        },
    )
    outcome = reconciler.reconcile(created)
    assert outcome.applied == ("KafkaTopic/local-topics.job.out",)  # written as topic-maker
    topic = f"/apis/kafka.strimzi.io/v1/namespaces/{OTHER}/kafkatopics/local-topics.job.out"
    assert api.exists(topic)
    assert (
        reconciler.finalize(
            api.get(f"/apis/federator.io/v1alpha1/namespaces/{OTHER}/applications/local-topics")
        )
        == ()
    )
    assert api.exists(topic)  # left in place
    events = api.get(f"/api/v1/namespaces/{OTHER}/events")["items"]
    (event,) = [e for e in events if e["reason"] == "DeleteForbidden"]
    assert event["type"] == "Warning"
    assert (
        "kubectl auth can-i delete kafkatopics.kafka.strimzi.io/local-topics.job.out"
        in (event["message"])
    )
