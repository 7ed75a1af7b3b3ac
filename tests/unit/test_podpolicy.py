"""The pod policy: settings, and every pod of every rendered child checked before any apply.

Aspects covered:
- settings: `podSecurity.level` (default baseline) and `allowedServiceAccounts` (by namespace,
  `*` for all; `default` always allowed), parse errors name the key;
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from federator.core.podsecurity import Level
from federator.core.settings import PodSecuritySettings, SettingsError, parse_settings

# -- settings ----------------------------------------------------------------------------------


def test_default_is_baseline_with_only_the_default_service_account() -> None:
    for settings in (parse_settings(None), parse_settings({}), parse_settings({"podSecurity": {}})):
        policy = settings.pod_security
        assert policy.level is Level.BASELINE
        assert policy.allowed_service_accounts == ()
        assert policy.service_account_allowed("team-a", "default")
        assert not policy.service_account_allowed("team-a", "powerful")


@pytest.mark.parametrize(
    ("data", "level", "allowed"),
    [
        pytest.param({"level": "restricted"}, Level.RESTRICTED, (), id="restricted"),
        pytest.param({"level": "privileged"}, Level.PRIVILEGED, (), id="privileged"),
        pytest.param(
            {"allowedServiceAccounts": {"*": ["spark"], "team-a": ["flink-jobs", "x.y"]}},
            Level.BASELINE,
            (("*", ("spark",)), ("team-a", ("flink-jobs", "x.y"))),
            id="by-namespace",
        ),
        pytest.param(
            {"allowedServiceAccounts": {"team-a": []}}, Level.BASELINE, (("team-a", ()),), id="none"
        ),
    ],
)
def test_pod_security_settings_parse(
    data: dict[str, Any], level: Level, allowed: tuple[Any, ...]
) -> None:
    policy = parse_settings({"podSecurity": data}).pod_security
    assert (policy.level, policy.allowed_service_accounts) == (level, allowed)


@pytest.mark.parametrize(
    ("namespace", "name", "allowed"),
    [
        ("team-a", "default", True),
        ("team-a", "spark", True),  # "*"
        ("team-b", "spark", True),
        ("team-a", "flink-jobs", True),
        ("team-b", "flink-jobs", False),  # only in team-a
        ("team-c", "anything", True),  # "*" name in team-c
        ("team-b", "powerful", False),
    ],
)
def test_service_account_allow_list(namespace: str, name: str, allowed: bool) -> None:
    policy = PodSecuritySettings(
        allowed_service_accounts=(
            ("*", ("spark",)),
            ("team-a", ("flink-jobs",)),
            ("team-c", ("*",)),
        )
    )
    assert policy.service_account_allowed(namespace, name) is allowed


def test_allowed_in_lists_default_first() -> None:
    policy = PodSecuritySettings(allowed_service_accounts=(("*", ("z",)), ("team-a", ("a",))))
    assert policy.allowed_in("team-a") == ("default", "a", "z")
    assert policy.allowed_in("team-b") == ("default", "z")


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        pytest.param(
            {"levle": "baseline"}, "settings.podSecurity: unknown key(s) levle", id="typo"
        ),
        pytest.param(
            {"level": "strict"},
            "settings.podSecurity.level: 'strict' is not one of privileged, baseline, restricted",
            id="bad-level",
        ),
        pytest.param(
            {"allowedServiceAccounts": ["spark"]},
            "settings.podSecurity.allowedServiceAccounts: expected Mapping",
            id="not-a-map",
        ),
        pytest.param(
            {"allowedServiceAccounts": {"team-a": "spark"}},
            "settings.podSecurity.allowedServiceAccounts.team-a: expected a list",
            id="not-a-list",
        ),
        pytest.param(
            {"allowedServiceAccounts": {"team-a": ["Spark"]}},
            "settings.podSecurity.allowedServiceAccounts.team-a: expected a list of "
            "ServiceAccount names",
            id="not-a-name",
        ),
        pytest.param(
            {"allowedServiceAccounts": {"Team A": ["spark"]}},
            "settings.podSecurity.allowedServiceAccounts.Team A: expected a namespace name",
            id="not-a-namespace",
        ),
    ],
)
def test_bad_pod_security_settings_name_the_key(data: Any, fragment: str) -> None:
    with pytest.raises(SettingsError, match=re.escape(fragment)):
        parse_settings({"podSecurity": data})


def test_pod_security_must_be_a_mapping() -> None:
    with pytest.raises(SettingsError, match=re.escape("settings.podSecurity: expected Mapping")):
        parse_settings({"podSecurity": "baseline"})
