"""Children are written with the rights of a ServiceAccount of the application's namespace
(issue 11 §1), offline. The real API server's side is tests/integration/test_impersonation.py.

Aspects covered:
- settings: `impersonation.defaultServiceAccount` and `.requireServiceAccount`, off by default
  (nothing changes for an existing installation); bad values name the key;
- validation: under the lock-down, an Application naming no ServiceAccount (and no default) is
  invalid at `spec.serviceAccountName`; the CRD refuses a name that is not a ServiceAccount's;
- refusals as data: the API server's RBAC sentence parsed into a `Denial` (create, patch,
  delete, a subresource, impersonation, cluster scope; none in an admission refusal), said in
  `kubectl auth can-i` words, with who can fix it and whether the account exists;
- the impersonating client: only `Impersonate-User` of a ServiceAccount, one per account,
  sharing the connection pool, writes counted on federator's own client;
- the reconciler: children in the application's namespace are created, applied and pruned as
  its ServiceAccount, topics in a Kafka namespace with federator's own identity, reads always
  its own; the finalizer leaves what the account may not delete (a Warning Event) and retries
  what federator's own identity may not.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from kubernetes import client

from federator.core.problems import Code
from federator.core.render import Child
from federator.core.settings import SettingsError, parse_settings
from federator.core.validation import validate
from federator.kube.client import (
    IMPERSONATE_USER,
    Forbidden,
    Kube,
    ResourceRef,
)
from federator.kube.forbidden import Denial, explain, split_service_account
from federator.operator.reconciler import DeletionIncomplete, Reconciler, apply_failure

# -- settings


def test_impersonation_is_off_by_default() -> None:
    for settings in (
        parse_settings(None),
        parse_settings({}),
        parse_settings({"impersonation": {}}),
    ):
        policy = settings.impersonation
        assert (policy.default_service_account, policy.require_service_account) == ("", False)
        assert policy.service_account(None) is None  # federator's own identity, as before
        assert policy.service_account("deployer") == "deployer"


def test_the_spec_names_the_account_before_the_default() -> None:
    policy = parse_settings(
        {"impersonation": {"defaultServiceAccount": "reconciler", "requireServiceAccount": True}}
    ).impersonation
    assert policy.service_account(None) == "reconciler"
    assert policy.service_account("deployer") == "deployer"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param(
            {"defaultServiceAcount": "x"},
            "settings.impersonation: unknown key(s) defaultServiceAcount",
            id="typo",
        ),
        pytest.param(
            {"defaultServiceAccount": "team-a:deployer"},
            "settings.impersonation.defaultServiceAccount: 'team-a:deployer' is not a "
            "ServiceAccount name",
            id="not-a-name",
        ),
        pytest.param(
            {"defaultServiceAccount": "Deployer"},
            "settings.impersonation.defaultServiceAccount: 'Deployer' is not",
            id="upper-case",
        ),
        pytest.param(
            {"requireServiceAccount": "yes"},
            "settings.impersonation.requireServiceAccount: expected bool, got 'yes'",
            id="not-a-boolean",
        ),
    ],
)
def test_bad_impersonation_settings_name_the_key(data: dict[str, Any], message: str) -> None:
    with pytest.raises(SettingsError) as caught:
        parse_settings({"impersonation": data})
    assert str(caught.value).startswith(message)


# -- validation


def application(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "federator.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": "app", "namespace": "team-a"},
        "spec": {
            "streamlets": [{"name": "job", "runtime": "container", "image": "registry/x:1"}],
            **spec,
        },
    }


CLUSTER = {"name": "default", "strimziCluster": "s", "namespace": "kafka", "bootstrapServers": "b"}


@pytest.mark.parametrize(
    ("impersonation", "spec", "problem"),
    [
        pytest.param({}, {}, False, id="off"),
        pytest.param({"requireServiceAccount": True}, {}, True, id="locked-none-named"),
        pytest.param(
            {"requireServiceAccount": True}, {"serviceAccountName": "deployer"}, False, id="named"
        ),
        pytest.param(
            {"requireServiceAccount": True, "defaultServiceAccount": "reconciler"},
            {},
            False,
            id="locked-with-a-default",
        ),
    ],
)
def test_the_lock_down_refuses_an_application_naming_no_account(
    impersonation: dict[str, Any], spec: dict[str, Any], problem: bool
) -> None:
    settings = parse_settings({"kafkaClusters": [CLUSTER], "impersonation": impersonation})
    result = validate(application(**spec), settings)
    found = [p for p in result.problems if p.code is Code.SERVICE_ACCOUNT_REQUIRED]
    assert len(found) == int(problem), result.problems
    if problem:
        assert found[0].path == "spec.serviceAccountName"
        assert "team-a" in found[0].message  # which namespace the account must live in
    assert result.ok is not problem


@pytest.mark.parametrize("name", ["Deployer", "team-a:deployer", "", "a" * 254, "x_y"])
def test_the_crd_refuses_what_is_not_a_service_account_name(name: str) -> None:
    result = validate(
        application(serviceAccountName=name), parse_settings({"kafkaClusters": [CLUSTER]})
    )
    assert {p.path for p in result.problems} == {"spec.serviceAccountName"}
    assert result.problems[0].code is Code.SCHEMA


def test_the_model_reads_the_account() -> None:
    result = validate(
        application(serviceAccountName="deployer"), parse_settings({"kafkaClusters": [CLUSTER]})
    )
    assert result.ok and result.app.service_account == "deployer"
    assert (
        validate(application(), parse_settings({"kafkaClusters": [CLUSTER]})).app.service_account
        is None
    )


# -- refusals, as the API server words them (k8s.io/apiserver responsewriters.forbiddenMessage)

SA = "system:serviceaccount:team-a:deployer"
FEDERATOR = "system:serviceaccount:federator-system:federator"


@pytest.mark.parametrize(
    ("message", "denial", "can_i"),
    [
        pytest.param(
            f'deployments.apps is forbidden: User "{SA}" cannot create resource "deployments" '
            'in API group "apps" in the namespace "team-a"',
            Denial(
                user=SA, verb="create", resource="deployments", group="apps", namespace="team-a"
            ),
            f"kubectl auth can-i create deployments.apps -n team-a --as {SA}",
            id="create",
        ),
        pytest.param(
            f'sparkapplications.sparkoperator.k8s.io "app-job" is forbidden: User "{SA}" cannot '
            'patch resource "sparkapplications" in API group "sparkoperator.k8s.io" in the '
            'namespace "team-a"',
            Denial(
                user=SA,
                verb="patch",
                resource="sparkapplications",
                group="sparkoperator.k8s.io",
                namespace="team-a",
                name="app-job",
            ),
            "kubectl auth can-i patch sparkapplications.sparkoperator.k8s.io/app-job -n team-a "
            f"--as {SA}",
            id="patch-named",
        ),
        pytest.param(
            f'serviceaccounts "deployer" is forbidden: User "{FEDERATOR}" cannot impersonate '
            'resource "serviceaccounts" in API group "" in the namespace "team-a"',
            Denial(
                user=FEDERATOR,
                verb="impersonate",
                resource="serviceaccounts",
                group="",
                namespace="team-a",
                name="deployer",
            ),
            f"kubectl auth can-i impersonate serviceaccounts/deployer -n team-a --as {FEDERATOR}",
            id="impersonate",
        ),
        pytest.param(
            'deployments.apps "app-job" is forbidden: cannot set blockOwnerDeletion if an '
            "ownerReference refers to a resource you can't set finalizers on: User "
            f'"{SA}" cannot update resource "applications/finalizers" in API group '
            '"federator.io" in the namespace "team-a", <nil>',
            Denial(
                user=SA,
                verb="update",
                resource="applications/finalizers",
                group="federator.io",
                namespace="team-a",
                name="app-job",
            ),
            # The object named is the Deployment, not the Application: can-i asks of the type.
            "kubectl auth can-i update applications.federator.io/app-job "
            f"--subresource=finalizers -n team-a --as {SA}",
            id="owner-reference-admission",
        ),
        pytest.param(
            'customresourcedefinitions.apiextensions.k8s.io is forbidden: User "alice" cannot '
            'list resource "customresourcedefinitions" in API group "apiextensions.k8s.io" at '
            "the cluster scope",
            Denial(
                user="alice",
                verb="list",
                resource="customresourcedefinitions",
                group="apiextensions.k8s.io",
                namespace=None,
            ),
            "kubectl auth can-i list customresourcedefinitions.apiextensions.k8s.io --as alice",
            id="cluster-scope",
        ),
    ],
)
def test_the_servers_refusal_is_parsed_and_asked_again(
    message: str, denial: Denial, can_i: str
) -> None:
    assert Denial.parse(message) == denial
    assert denial.can_i() == can_i


def test_an_admission_refusal_has_no_denial() -> None:
    quota = (
        'deployments.apps "app-job" is forbidden: exceeded quota: compute, requested: '
        "pods=1, used: pods=10, limited: pods=10"
    )
    assert Denial.parse(quota) is None
    assert explain(f"create x: {quota}", None, acting_as=SA) == f"create x: {quota}"


def test_service_account_users_split() -> None:
    assert split_service_account(SA) == ("team-a", "deployer")
    for user in ("alice", "system:serviceaccount:team-a", "system:serviceaccount::x", "x:y:z"):
        assert split_service_account(user) is None


CREATE = Denial(user=SA, verb="create", resource="deployments", group="apps", namespace="team-a")


@pytest.mark.parametrize(
    ("denial", "acting_as", "missing", "expected"),
    [
        pytest.param(
            CREATE,
            SA,
            False,
            "ServiceAccount team-a/deployer may not create deployments.apps in namespace team-a "
            f"(kubectl auth can-i create deployments.apps -n team-a --as {SA}): grant it to the "
            "ServiceAccount (a Role and RoleBinding in namespace team-a), or name another one "
            "in spec.serviceAccountName",
            id="the-account-lacks-it",
        ),
        pytest.param(
            CREATE,
            SA,
            True,
            "ServiceAccount team-a/deployer does not exist: create it, or name an existing one "
            "in spec.serviceAccountName (ServiceAccount team-a/deployer may not create",
            id="the-account-does-not-exist",
        ),
        pytest.param(
            Denial(
                user=FEDERATOR,
                verb="impersonate",
                resource="serviceaccounts",
                group="",
                namespace="team-a",
                name="deployer",
            ),
            SA,
            False,
            "federator may not act as ServiceAccount team-a/deployer: ServiceAccount "
            "federator-system/federator may not impersonate ServiceAccount team-a/deployer "
            f"(kubectl auth can-i impersonate serviceaccounts/deployer -n team-a --as {FEDERATOR}"
            "); the platform team grants federator impersonate on serviceaccounts",
            id="federator-may-not-impersonate",
        ),
        pytest.param(
            Denial(
                user=FEDERATOR,
                verb="create",
                resource="kafkatopics",
                group="kafka.strimzi.io",
                namespace="kafka",
            ),
            None,
            False,
            "ServiceAccount federator-system/federator may not create "
            "kafkatopics.kafka.strimzi.io in namespace kafka (kubectl auth can-i create "
            f"kafkatopics.kafka.strimzi.io -n kafka --as {FEDERATOR}): federator's own identity "
            "lacks this permission; the platform team grants it (the Helm chart's RBAC)",
            id="federators-own-identity",
        ),
    ],
)
def test_a_refusal_says_who_lacks_what_and_who_can_fix_it(
    denial: Denial, acting_as: str | None, missing: bool, expected: str
) -> None:
    got = explain("the error", denial, acting_as=acting_as, account_missing=missing)
    assert got.startswith(expected), got


def test_a_forbidden_write_is_the_childs_verdict_in_those_words() -> None:
    error = Forbidden("create deployments.apps/team-a/x: ...", 403, CREATE)
    verdict = apply_failure(error, acting_as=SA)
    assert (verdict.health.value, verdict.reason) == ("Degraded", "ApplyForbidden")
    assert verdict.message.startswith("ServiceAccount team-a/deployer may not create")


# -- the impersonating client


def own_client() -> Kube:
    configuration = client.Configuration()
    configuration.host = "https://127.0.0.1:6443"
    return Kube(client.ApiClient(configuration))


def test_the_impersonating_client_sends_only_the_service_account_user() -> None:
    kube = own_client()
    view = kube.as_service_account("team-a", "deployer")
    headers = view.api.default_headers
    assert headers[IMPERSONATE_USER] == SA
    assert [h for h in headers if h.startswith("Impersonate")] == [IMPERSONATE_USER]
    assert view.acting_as == SA and kube.acting_as is None
    assert IMPERSONATE_USER not in kube.api.default_headers
    assert view.api.configuration is kube.api.configuration
    assert view.api.rest_client is kube.api.rest_client  # one connection pool
    assert kube.as_service_account("team-a", "deployer") is view
    assert view.as_service_account("team-a", "deployer") is view
    assert kube.as_service_account("team-b", "deployer") is not view


@pytest.mark.parametrize(("namespace", "name"), [("team-a", ""), ("", "x"), ("team-a", "a:b")])
def test_only_a_service_account_can_be_impersonated(namespace: str, name: str) -> None:
    with pytest.raises(ValueError):
        own_client().as_service_account(namespace, name)


def test_writes_as_an_account_are_counted_on_federators_client() -> None:
    kube = own_client()
    seen: list[tuple[str, str]] = []
    kube.on_write = lambda verb, kind: seen.append((verb, kind))
    kube.as_service_account("team-a", "deployer")._count("create", "Deployment")
    assert kube.writes[("create", "Deployment")] == 1 and seen == [("create", "Deployment")]


# -- the reconciler: whose identity writes what


class Identity:
    """A stand-in API client: records (identity, verb, name); `refuse` makes an identity's
    writes fail with a 403 naming it."""

    def __init__(self, log: list[tuple[str, str, str]], user: str | None, refuse: set[str]) -> None:
        self.log, self.acting_as, self.refuse = log, user, refuse
        self.events: list[dict[str, Any]] = []
        self._views: dict[tuple[str, str], Identity] = {}
        self._lock = threading.Lock()

    def as_service_account(self, namespace: str, name: str) -> Identity:
        with self._lock:
            key = (namespace, name)
            if key not in self._views:
                user = f"system:serviceaccount:{namespace}:{name}"
                self._views[key] = Identity(self.log, user, self.refuse)
            return self._views[key]

    def _write(self, verb: str, ref: ResourceRef, manifest: Any = None) -> dict[str, Any]:
        who = self.acting_as or "federator"
        with self._lock:
            self.log.append((who, verb, ref.name))
        if who in self.refuse:
            user = self.acting_as or FEDERATOR
            raise Forbidden(
                f"{verb} {ref}: forbidden",
                403,
                Denial(
                    user=user,
                    verb=verb,
                    resource=ref.plural,
                    group=ref.group,
                    namespace=ref.namespace,
                    name=ref.name,
                ),
            )
        meta = (manifest or {}).get("metadata", {})
        return {**(manifest or {}), "metadata": {**meta, "resourceVersion": "7"}}

    def create(self, ref: ResourceRef, manifest: Any, kind: str) -> dict[str, Any]:
        return self._write("create", ref, manifest)

    def claim_fields(self, ref: ResourceRef, body: Any, kind: str) -> dict[str, Any]:
        return self._write("claim", ref, body)

    def apply(self, ref: ResourceRef, manifest: Any, kind: str) -> dict[str, Any]:
        return self._write("apply", ref, manifest)

    def delete(self, ref: ResourceRef, kind: str, *, uid: str | None = None) -> bool:
        self._write("delete", ref)
        return True

    def get(self, ref: ResourceRef) -> dict[str, Any] | None:
        return None

    def service_account_exists(self, namespace: str, name: str) -> bool | None:
        return name != "ghost"

    def event(self, app: Any, *, type_: str, reason: str, message: str) -> None:
        self.events.append({"type": type_, "reason": reason, "message": message})


def child(kind: str, api_version: str, namespace: str, name: str) -> Child:
    return Child(
        kind=kind,
        api_version=api_version,
        name=name,
        namespace=namespace,
        wave=0,
        manifest={"apiVersion": api_version, "kind": kind, "metadata": {"name": name}},
        spec_hash="h",
    )


TOPIC = child("KafkaTopic", "kafka.strimzi.io/v1", "kafka", "app.job.out")
JOB = child("Deployment", "apps/v1", "team-a", "app-job")
LOCAL_TOPIC = child("KafkaTopic", "kafka.strimzi.io/v1", "team-a", "app.local")


def reconciler(refuse: frozenset[str] = frozenset()) -> tuple[Reconciler, list[Any]]:
    log: list[tuple[str, str, str]] = []
    kube = Identity(log, None, set(refuse))
    settings = parse_settings({})
    return Reconciler(kube=kube, settings=settings, discovery=None), log  # type: ignore[arg-type]


def test_children_in_the_namespace_are_written_as_the_account_topics_elsewhere_as_federator() -> (
    None
):
    r, log = reconciler()
    applied, failed = r._apply((TOPIC, JOB, LOCAL_TOPIC), {}, "team-a/app", ("team-a", "deployer"))
    assert failed == {} and len(applied) == 3
    assert sorted(log) == sorted(
        [
            ("federator", "create", "app.job.out"),
            (SA, "create", "app-job"),
            (SA, "create", "app.local"),  # a Kafka cluster in the application's namespace
        ]
    )


def test_without_an_account_everything_is_written_as_federator() -> None:
    r, log = reconciler()
    r._apply((TOPIC, JOB), {}, "team-a/app", None)
    assert {who for who, _, _ in log} == {"federator"}


def test_an_existing_child_is_applied_as_the_account() -> None:
    r, log = reconciler()
    live = {JOB.key: {"metadata": {"name": "app-job", "uid": "u1", "resourceVersion": "3"}}}
    r._apply((JOB,), live, "team-a/app", ("team-a", "deployer"))
    assert log == [(SA, "apply", "app-job")]


@pytest.mark.parametrize(
    ("account", "start"),
    [
        pytest.param("deployer", "ServiceAccount team-a/deployer may not create", id="lacks"),
        pytest.param("ghost", "ServiceAccount team-a/ghost does not exist", id="missing"),
    ],
)
def test_a_refused_write_names_the_account_and_the_permission(account: str, start: str) -> None:
    user = f"system:serviceaccount:team-a:{account}"
    r, _ = reconciler(frozenset({user}))
    applied, failed = r._apply((TOPIC, JOB), {}, "team-a/app", ("team-a", account))
    assert applied == ["KafkaTopic/app.job.out"]  # federator's own write went through
    verdict = failed[JOB.key]
    assert verdict.reason == "ApplyForbidden" and verdict.message.startswith(start)


def test_a_prune_is_made_as_the_account_and_a_refusal_names_it() -> None:
    from federator.core.plan import InventoryItem

    r, log = reconciler(frozenset({SA}))
    items = [InventoryItem.from_child(JOB), InventoryItem.from_child(TOPIC)]
    pruned, unpruned = r._prune(items, {}, ("team-a", "deployer"))
    assert pruned == ["KafkaTopic/app.job.out"]
    ((item, verdict),) = unpruned
    assert item.name == "app-job" and verdict.reason == "PruneFailed"
    assert verdict.message.startswith("ServiceAccount team-a/deployer may not delete")
    assert (SA, "delete", "app-job") in log


def application_body(account: str | None) -> dict[str, Any]:
    spec: dict[str, Any] = {"deletionPolicy": "Delete", "streamlets": []}
    if account:
        spec["serviceAccountName"] = account
    inventory = [
        {"kind": c.kind, "apiVersion": c.api_version, "namespace": c.namespace, "name": c.name}
        for c in (TOPIC, LOCAL_TOPIC)
    ]
    return {
        "apiVersion": "federator.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": "app", "namespace": "team-a", "uid": "app-uid"},
        "spec": spec,
        "status": {"children": inventory},
    }


class Discovered:
    installed = frozenset({"kafkatopics.kafka.strimzi.io"})
    served = {"kafkatopics.kafka.strimzi.io": ("v1",)}


class Discovery:
    def get(self) -> Discovered:
        return Discovered()


def finalizer(refuse: set[str]) -> tuple[Reconciler, Identity]:
    log: list[tuple[str, str, str]] = []
    kube = Identity(log, None, refuse)
    owned = {
        "metadata": {
            "uid": "u",
            "labels": {},
            "annotations": {"federator.io/application": "team-a/app"},
        }
    }
    kube.get = lambda ref: {**owned, "kind": "KafkaTopic", "apiVersion": "kafka.strimzi.io/v1"}  # type: ignore[method-assign]
    kube.list = lambda *a, **k: []  # type: ignore[attr-defined]
    r = Reconciler(kube=kube, settings=parse_settings({}), discovery=Discovery())  # type: ignore[arg-type]
    return r, kube


def test_the_finalizer_leaves_what_the_account_may_not_delete() -> None:
    r, kube = finalizer({SA})
    deleted = r.finalize(application_body("deployer"))
    assert deleted == ("KafkaTopic/app.job.out",)  # federator's, in the Kafka namespace
    (event,) = kube.events
    assert (event["type"], event["reason"]) == ("Warning", "DeleteForbidden")
    assert event["message"].startswith(
        "KafkaTopic team-a/app.local is left in place: ServiceAccount team-a/deployer may not "
        "delete kafkatopics.kafka.strimzi.io"
    )


def test_the_finalizer_names_what_federators_own_identity_may_not_delete() -> None:
    """Federator's own refusal is a platform misconfiguration: every deletion is tried, then
    DeletionIncomplete names what was left (not retryable: it does not hold the deletion
    forever; the handler posts it as a Warning Event)."""
    r, _ = finalizer({"federator"})
    with pytest.raises(DeletionIncomplete) as caught:
        r.finalize(application_body(None))
    assert caught.value.left and not caught.value.retryable
