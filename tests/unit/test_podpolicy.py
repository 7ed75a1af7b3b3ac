"""The pod policy: settings, and every pod of every rendered child checked before any apply.

Aspects covered:
- settings: `podSecurity.level` (default baseline) and `allowedServiceAccounts` (by namespace,
  `*` for all; `default` always allowed), parse errors name the key;
- the reproduced escalation (container and spark blocks) refused at baseline with exact paths
  and rules, before anything is applied (`compile_application` raises InvalidSpec);
- an allow-listed ServiceAccount is accepted; level privileged allows every pod field;
- every example compiles at the default level; at restricted only required hardening is
  missing (federator's templates set nothing forbidden);
- per delegate kind: Deployment (named containers at the user's index), SparkApplication
  (driver/executor fields, sidecars, init containers, sparkConf keys), FlinkDeployment (three
  layered templates, both list merges, serviceAccount, flinkConfiguration keys, the template's
  own ServiceAccount), Lyft FlinkApplication; the table covers every delegate kind;
- `federator validate` and `compile` report them (exit 1);
- property: whatever a runtime block holds, the policy never raises.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import yaml
from hypothesis import assume, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from federator.cli.main import main
from federator.core import blockcheck, compiler, delegates, podpolicy, render, validation
from federator.core.delegates import TargetApis
from federator.core.podsecurity import Level
from federator.core.problems import Code, InvalidSpec
from federator.core.settings import PodSecuritySettings, Settings, SettingsError, parse_settings

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


# -- the policy over rendered children -------------------------------------------------------


EXAMPLES_DIR = Path(__file__).resolve().parents[2] / "examples"
EXAMPLES = sorted(p.name for p in EXAMPLES_DIR.glob("*.yaml") if p.name != "settings.yaml")


def settings_with(**pod_security: Any) -> Settings:
    """examples/settings.yaml (its Kafka clusters) with this pod security."""
    data = yaml.safe_load((EXAMPLES_DIR / "settings.yaml").read_text())
    return dataclasses.replace(
        parse_settings(data), pod_security=PodSecuritySettings(**pod_security)
    )


BASELINE = settings_with()
RESTRICTED = settings_with(level=Level.RESTRICTED)


def app(*streamlets: dict[str, Any], namespace: str = "team-a") -> dict[str, Any]:
    """An Application whose streamlets each write one topic nobody reads."""
    return {
        "apiVersion": "federator.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": "esc", "namespace": namespace},
        "spec": {"streamlets": [{"image": "img", "outlets": ["out"], **s} for s in streamlets]},
    }


def container(name: str = "src", **block: Any) -> dict[str, Any]:
    return {"name": name, "runtime": "container", **({"container": block} if block else {})}


def spark(name: str = "job", **block: Any) -> dict[str, Any]:
    return {
        "name": name,
        "runtime": "spark",
        "spark": {"mainApplicationFile": "local:///app.jar", **block},
    }


def flink(name: str = "job", operator: str = "apache", **block: Any) -> dict[str, Any]:
    required = (
        {"job": {"jarURI": "local:///app.jar"}}
        if operator == "apache"
        else {"jarName": "app.jar", "entryClass": "A"}
    )
    return {
        "name": name,
        "runtime": "flink",
        "flinkOperator": operator,
        "flink": {**required, **block},
    }


def findings(body: dict[str, Any], settings: Settings) -> set[tuple[str, str]]:
    """(Application path, rule) of every finding of the rendered children."""
    result = validation.validate(body, settings)
    assert result.ok, result.problems
    children = render.render(result.topology, settings, TargetApis.offline())
    return {
        (f.problem.path, f.rule)
        for f in podpolicy.findings(children, result.app, settings.pod_security)
    }


# The escalation that was reproduced: a container block and a spark block that would run as a
# powerful ServiceAccount with the node's namespaces, privileges and root file system.
ESCALATION = app(
    container(
        template={
            "spec": {
                "serviceAccountName": "powerful",
                "hostNetwork": True,
                "hostPID": True,
                "hostIPC": True,
                "containers": [
                    {
                        "name": "src",
                        "securityContext": {
                            "privileged": True,
                            "capabilities": {"add": ["SYS_ADMIN"]},
                        },
                        "volumeMounts": [{"name": "root", "mountPath": "/host"}],
                    }
                ],
                "volumes": [{"name": "root", "hostPath": {"path": "/"}}],
            }
        }
    ),
    spark(
        driver={
            "serviceAccount": "powerful",
            "hostNetwork": True,
            "volumeMounts": [{"name": "root", "mountPath": "/host"}],
        },
        volumes=[{"name": "root", "hostPath": {"path": "/"}}],
    ),
)
C = "spec.streamlets[0].container.template.spec"
S = "spec.streamlets[1].spark"
ESCALATION_FINDINGS = {
    (f"{C}.serviceAccountName", "serviceAccount"),
    (f"{C}.hostNetwork", "hostNamespaces"),
    (f"{C}.hostPID", "hostNamespaces"),
    (f"{C}.hostIPC", "hostNamespaces"),
    (f"{C}.containers[0].securityContext.privileged", "privileged"),
    (f"{C}.containers[0].securityContext.capabilities.add[0]", "capabilities_baseline"),
    (f"{C}.volumes[0].hostPath", "hostPathVolumes"),
    (f"{S}.driver.serviceAccount", "serviceAccount"),
    (f"{S}.driver.hostNetwork", "hostNamespaces"),
    (f"{S}.volumes[0].hostPath", "hostPathVolumes"),
}


def test_the_reproduced_escalation_is_refused_at_baseline() -> None:
    assert findings(ESCALATION, BASELINE) == ESCALATION_FINDINGS


def test_compile_refuses_it_with_every_problem_before_anything_is_applied() -> None:
    with pytest.raises(InvalidSpec) as caught:
        compiler.compile_application(ESCALATION, BASELINE)
    problems = caught.value.problems
    assert {p.path for p in problems} == {path for path, _ in ESCALATION_FINDINGS}
    assert {p.code for p in problems} == {Code.POD_SECURITY}
    host_network = next(p for p in problems if p.path == f"{C}.hostNetwork")
    assert str(host_network).startswith(f"{C}.hostNetwork: not allowed at level baseline")


def test_an_allow_listed_service_account_is_accepted() -> None:
    for allowed in ((("team-a", ("powerful",)),), (("*", ("powerful",)),), (("*", ("*",)),)):
        got = findings(ESCALATION, settings_with(allowed_service_accounts=allowed))
        assert got == {f for f in ESCALATION_FINDINGS if f[1] != "serviceAccount"}
    elsewhere = settings_with(allowed_service_accounts=(("team-b", ("powerful",)),))
    assert findings(ESCALATION, elsewhere) == ESCALATION_FINDINGS


def test_level_privileged_allows_every_pod_field() -> None:
    privileged = settings_with(level=Level.PRIVILEGED)
    assert findings(ESCALATION, privileged) == {
        f for f in ESCALATION_FINDINGS if f[1] == "serviceAccount"
    }  # the allow-list is the platform's other, separate control
    open_door = settings_with(level=Level.PRIVILEGED, allowed_service_accounts=(("*", ("*",)),))
    compiler.compile_application(ESCALATION, open_door)


@pytest.mark.parametrize("name", EXAMPLES)
def test_every_example_compiles_at_the_default_level(
    name: str, example_loader: Callable[[str], dict[str, Any]]
) -> None:
    compiler.compile_application(example_loader(name), BASELINE)


@pytest.mark.parametrize("name", EXAMPLES)
def test_at_restricted_the_examples_lack_only_required_hardening(
    name: str, example_loader: Callable[[str], dict[str, Any]]
) -> None:
    """Federator's templates set nothing restricted forbids; what the examples lack is the
    hardening a restricted pod must state (reported, never added silently)."""
    result = validation.validate(example_loader(name), RESTRICTED)
    children = render.render(result.topology, RESTRICTED, TargetApis.offline())
    found = podpolicy.findings(children, result.app, RESTRICTED.pod_security)
    assert found
    assert {f.rule for f in found} <= {
        "allowPrivilegeEscalation",
        "capabilities_restricted",
        "runAsNonRoot",
        "seccompProfile_restricted",
    }
    assert all(f.problem.message.startswith("required at level restricted") for f in found)


HARDENED = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "runAsNonRoot": True,
    "seccompProfile": {"type": "RuntimeDefault"},
}


def test_a_hardened_container_streamlet_passes_restricted() -> None:
    body = app(
        container(template={"spec": {"containers": [{"name": "src", "securityContext": HARDENED}]}})
    )
    assert findings(body, RESTRICTED) == set()


def test_named_containers_are_reported_at_the_users_index() -> None:
    """The block is merged over the template by name: the user's list order is what counts."""
    body = app(
        container(
            template={
                "spec": {
                    "containers": [
                        {"name": "sidecar", "image": "s", "securityContext": {"privileged": True}},
                        {"name": "src", "ports": [{"containerPort": 80, "hostPort": 80}]},
                    ]
                }
            }
        )
    )
    assert findings(body, BASELINE) == {
        (f"{C}.containers[0].securityContext.privileged", "privileged"),
        (f"{C}.containers[1].ports[0].hostPort", "hostPorts"),
    }


def test_spark_sidecars_init_containers_executor_and_conf() -> None:
    body = app(
        spark(
            driver={
                "sidecars": [{"name": "s", "image": "s", "securityContext": {"privileged": True}}],
                "podSecurityContext": {"sysctls": [{"name": "kernel.msgmax", "value": "1"}]},
            },
            executor={
                "initContainers": [
                    {"name": "i", "image": "i", "securityContext": {"procMount": "Unmasked"}}
                ],
                "securityContext": {"capabilities": {"add": ["NET_ADMIN"]}},
                "annotations": {"container.apparmor.security.beta.kubernetes.io/x": "unconfined"},
            },
            sparkConf={
                "spark.kubernetes.authenticate.driver.serviceAccountName": "powerful",
                "spark.kubernetes.executor.volumes.hostPath.root.mount.path": "/host",
                "spark.kubernetes.driver.volumes.emptyDir.tmp.mount.path": "/tmp",
                "spark.sql.shuffle.partitions": "8",
            },
        )
    )
    S0 = "spec.streamlets[0].spark"
    assert findings(body, BASELINE) == {
        (f"{S0}.driver.sidecars[0].securityContext.privileged", "privileged"),
        (f"{S0}.driver.podSecurityContext.sysctls[0].name", "sysctls"),
        (f"{S0}.executor.initContainers[0].securityContext.procMount", "procMount"),
        (f"{S0}.executor.securityContext.capabilities.add[0]", "capabilities_baseline"),
        (
            f"{S0}.executor.annotations.container.apparmor.security.beta.kubernetes.io/x",
            "appArmorProfile",
        ),
        (
            f"{S0}.sparkConf.spark.kubernetes.authenticate.driver.serviceAccountName",
            "serviceAccount",
        ),
        (
            f"{S0}.sparkConf.spark.kubernetes.executor.volumes.hostPath.root.mount.path",
            "hostPathVolumes",
        ),
    }


def test_apache_flink_templates_service_account_and_configuration() -> None:
    body = app(
        flink(
            podTemplate={"spec": {"hostIPC": True}},
            jobManager={"podTemplate": {"spec": {"hostNetwork": True}}},
            taskManager={
                "podTemplate": {
                    "spec": {
                        "serviceAccountName": "powerful",
                        "volumes": [{"name": "d", "hostPath": {"path": "/dev"}}],
                    }
                }
            },
            flinkConfiguration={
                "kubernetes.jobmanager.service-account": "powerful",
                "kubernetes.hostnetwork.enabled": "true",
                "kubernetes.taskmanager.annotations": "container.apparmor.security.beta."
                "kubernetes.io/flink-main-container:unconfined",
            },
        )
    )
    F = "spec.streamlets[0].flink"
    assert findings(body, BASELINE) == {
        (f"{F}.podTemplate.spec.hostIPC", "hostNamespaces"),
        (f"{F}.jobManager.podTemplate.spec.hostNetwork", "hostNamespaces"),
        (f"{F}.taskManager.podTemplate.spec.serviceAccountName", "serviceAccount"),
        (f"{F}.taskManager.podTemplate.spec.volumes[0].hostPath", "hostPathVolumes"),
        (f"{F}.flinkConfiguration.kubernetes.jobmanager.service-account", "serviceAccount"),
        (f"{F}.flinkConfiguration.kubernetes.hostnetwork.enabled", "hostNamespaces"),
        (f"{F}.flinkConfiguration.kubernetes.taskmanager.annotations", "appArmorProfile"),
    }


def test_apache_flink_own_service_account_is_federators_not_the_authors() -> None:
    """The template names `flink` (the Apache operator requires a ServiceAccount); the author
    may keep it on a FlinkDeployment, but cannot borrow it for another kind of pod."""
    assert findings(app(flink(serviceAccount="flink")), BASELINE) == set()
    assert (
        findings(
            app(flink(flinkConfiguration={"kubernetes.hostnetwork.enabled": "false"})), BASELINE
        )
        == set()
    )
    borrowed = app(container(template={"spec": {"serviceAccountName": "flink"}}))
    assert findings(borrowed, BASELINE) == {(f"{C}.serviceAccountName", "serviceAccount")}


def test_flink_requirements_hold_in_the_merged_pods_both_list_merges() -> None:
    """Restricted requirements may be met across layered templates; the Flink operator merges
    lists by position (default) or by name, and a pod must pass under either."""
    layered = {
        "podTemplate": {
            "spec": {
                "securityContext": {
                    "runAsNonRoot": True,
                    "seccompProfile": {"type": "RuntimeDefault"},
                },
                "containers": [
                    {
                        "name": "flink-main-container",
                        "securityContext": {
                            "allowPrivilegeEscalation": False,
                            "capabilities": {"drop": ["ALL"]},
                        },
                    }
                ],
            }
        }
    }
    assert findings(app(flink(**layered)), RESTRICTED) == set()
    sidecar = {"podTemplate": {"spec": {"containers": [{"name": "log", "image": "l"}]}}}
    F = "spec.streamlets[0].flink.jobManager.podTemplate.spec.containers[0].securityContext"
    assert findings(app(flink(**layered, jobManager=sidecar)), RESTRICTED) == {
        (f"{F}.allowPrivilegeEscalation", "allowPrivilegeEscalation"),
        (f"{F}.capabilities.drop", "capabilities_restricted"),
    }


def test_lyft_flink_fields_and_the_container_it_builds() -> None:
    body = app(
        flink(
            operator="lyft",
            serviceAccountName="powerful",
            securityContext={
                "runAsUser": 1000,
                "sysctls": [{"name": "vm.swappiness", "value": "1"}],
            },
            volumes=[{"name": "d", "hostPath": {"path": "/"}}],
        )
    )
    F = "spec.streamlets[0].flink"
    assert findings(body, BASELINE) == {
        (f"{F}.serviceAccountName", "serviceAccount"),
        (f"{F}.securityContext.sysctls[0].name", "sysctls"),
        (f"{F}.volumes[0].hostPath", "hostPathVolumes"),
    }
    hardened = app(flink(operator="lyft", securityContext={"runAsNonRoot": True}))
    # Lyft's operator builds the containers with no field for their securityContext, and its
    # CRD's pod securityContext has no seccompProfile: restricted cannot be met, and the
    # findings point at the block.
    assert findings(hardened, RESTRICTED) == {
        (F, "allowPrivilegeEscalation"),
        (F, "capabilities_restricted"),
        (F, "seccompProfile_restricted"),
    }


def test_the_own_service_account_table_matches_the_template() -> None:
    result = validation.validate(app(flink()), BASELINE)
    children = render.render(result.topology, BASELINE, TargetApis.offline())
    (child,) = [c for c in children if c.kind == "FlinkDeployment"]
    assert {
        child.manifest["spec"]["serviceAccount"]
    } == delegates.FLINK_DEPLOYMENT.pods.own_service_accounts


def test_an_unknown_kind_is_refused_not_trusted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(delegates, "BY_KIND", {})
    result = validation.validate(app(container()), BASELINE)
    children = render.render(result.topology, BASELINE, TargetApis.offline())
    (finding,) = podpolicy.findings(children, result.app, BASELINE.pod_security)
    assert (finding.problem.path, finding.rule) == ("spec.streamlets[0]", "unknownPods")


@pytest.mark.parametrize("command", ["validate", "compile"])
def test_the_cli_reports_pod_security_problems(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "escalation.yaml"
    path.write_text(yaml.safe_dump(ESCALATION))
    code = main([command, str(path), "--settings", str(EXAMPLES_DIR / "settings.yaml")])
    out, err = capsys.readouterr()
    assert code == 1
    assert f"{C}.hostNetwork: not allowed at level baseline" in out + err
    assert "[PodSecurity]" in out + err


_KEYS = st.sampled_from(
    [
        "name",
        "spec",
        "metadata",
        "annotations",
        "containers",
        "initContainers",
        "sidecars",
        "securityContext",
        "podSecurityContext",
        "capabilities",
        "add",
        "drop",
        "volumes",
        "hostPath",
        "hostNetwork",
        "serviceAccount",
        "serviceAccountName",
        "ports",
        "hostPort",
        "podTemplate",
        "template",
        "seccompProfile",
        "type",
        "sysctls",
        "lifecycle",
        "preStop",
        "httpGet",
        "host",
        "kubernetes.hostnetwork.enabled",
        "kubernetes.jobmanager.annotations",
        "spark.kubernetes.driver.volumes.hostPath.x.mount.path",
    ]
)
_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-1, 2) | st.sampled_from(["", "ALL", "x", "a:b,c"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_KEYS, inner, max_size=4),
    max_leaves=20,
)


@hsettings(max_examples=150, deadline=None)
@given(
    block=st.dictionaries(_KEYS, _VALUES, max_size=5),
    kind=st.sampled_from(["container", "spark", "apache", "lyft"]),
)
def test_any_runtime_block_is_checked_without_crashing(block: dict[str, Any], kind: str) -> None:
    """Whatever a block holds, the policy reports problems or none; it never raises. The
    runtime-block type check (validation's, before the policy) is switched off here: the
    policy must hold on its own, even for values validation would refuse."""
    streamlet = {
        "container": lambda: container(**block),
        "spark": lambda: spark(**block),
        "apache": lambda: flink(**block),
        "lyft": lambda: flink(operator="lyft", **block),
    }[kind]()
    body = app(streamlet)
    with mock.patch.object(blockcheck, "problems", return_value=[]):
        result = validation.validate(body, BASELINE)
    assume(result.ok)
    try:
        children = render.render(result.topology, BASELINE, TargetApis.offline())
    except (InvalidSpec, TypeError, KeyError, AttributeError, ValueError):
        assume(False)  # the renderer's own refusals are not this test's subject
        return
    for level in Level:
        policy = PodSecuritySettings(level=level)
        for finding in podpolicy.findings(children, result.app, policy):
            assert finding.problem.path.startswith("spec.streamlets[0]")
