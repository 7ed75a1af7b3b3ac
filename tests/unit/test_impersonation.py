"""Children are written with the rights of a ServiceAccount of the application's namespace
(issue 11 §1), offline. The real API server's side is tests/integration/test_impersonation.py.

Aspects covered:
- settings: `impersonation.defaultServiceAccount` and `.requireServiceAccount`, off by default
  (nothing changes for an existing installation); bad values name the key;
- validation: under the lock-down, an Application naming no ServiceAccount (and no default) is
  invalid at `spec.serviceAccountName`; the CRD refuses a name that is not a ServiceAccount's.
"""

from __future__ import annotations

from typing import Any

import pytest

from federator.core.problems import Code
from federator.core.settings import SettingsError, parse_settings
from federator.core.validation import validate

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
