"""Children are written with the rights of a ServiceAccount of the application's namespace
(issue 11 §1), offline. The real API server's side is tests/integration/test_impersonation.py.

Aspects covered:
- settings: `impersonation.defaultServiceAccount` and `.requireServiceAccount`, off by default
  (nothing changes for an existing installation); bad values name the key;
- validation: under the lock-down, an Application naming no ServiceAccount (and no default) is
  invalid at `spec.serviceAccountName`; the CRD refuses a name that is not a ServiceAccount's.;
- refusals as data: the API server's RBAC sentence parsed into a `Denial` (create, patch,
  delete, a subresource, impersonation, cluster scope; none in an admission refusal), said in
  `kubectl auth can-i` words, with who can fix it and whether the account exists;
- the impersonating client: only `Impersonate-User` of a ServiceAccount, one per account,
  sharing the connection pool, writes counted on federator's own client.
"""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client

from federator.core.problems import Code
from federator.core.settings import SettingsError, parse_settings
from federator.core.validation import validate
from federator.kube.client import IMPERSONATE_USER, Kube
from federator.kube.forbidden import Denial, explain, split_service_account

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
