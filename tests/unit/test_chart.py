"""The Helm chart, offline: `helm lint`, `helm template` and kubeconform, and render-and-assert.

No API server: the binaries `helm` and `kubeconform` come from the control-plane bin directory
(built on demand locally, prebuilt in CI by `make controlplane`). kubeconform validates against
JSON schemas made here, offline: the built-in kinds from the OpenAPI document of the very
Kubernetes version the embedded control plane runs (k8s.io/kubernetes from the Go module cache,
the module the control plane is built from), and the custom kinds from their CRDs (ours, and
kopf's peering CRDs as the chart renders them).

Aspects covered:
- `helm lint --strict` and `helm template | kubeconform -strict` for every value set
  (defaults, namespaced with two namespaces, HA cluster-wide and namespaced, ServiceMonitor,
  custom Kafka clusters, a long release name); the examples validate against our CRD's schema;
- the CRD the chart installs is a copy of crds/application.yaml, kept equal (`make chart-crd`);
- the Deployment: restricted security context, probes on kopf's liveness endpoint, /tmp, args;
- RBAC: no Secrets, no '*' anywhere; the exact rule set; namespaced mode uses Roles for the
  delegate kinds and writes only KafkaTopics in the Kafka namespaces; `impersonate` on
  serviceaccounts only (never users, groups or extras), and not in Kafka-only namespaces;
- the ConfigMap's settings parse with federator.core.settings.parse_settings; the multi-team
  naming policy values.yaml recommends (a namespace prefix, an allow-list) reaches them as
  documented, and the schema's topicPrefix pattern agrees with the operator's own check; the pod
  security level (default baseline) and ServiceAccount allow-list reach them; so do the
  impersonation values (default ServiceAccount, lock-down; off by default); the per-application
  size limits reach them, their defaults are the operator's, and the schema's ceiling is the CRD's;
- values.schema.json: additionalProperties false everywhere, a typo fails `helm template`;
  cross-field mistakes fail loudly (replicas without peering, duplicate Kafka cluster names);
- sharding: one Deployment, metrics Service and kopf peering per shard (`--shard NAME`) besides
  the default shard's, which renders exactly as an unsharded install; no two Deployments select
  each other's pods; the ServiceMonitor scrapes every shard;
- values.yaml documents every key.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from federator.core import delegates, limits
from federator.core.settings import parse_settings
from federator.core.topicpolicy import SharedTopic, TopicPolicy, template_error
from federator.devcluster import build
from federator.devcluster.harness import in_ci

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "federator"
CRD = REPO / "crds" / "application.yaml"
GO_MOD = REPO / "hack" / "controlplane" / "go.mod"
RELEASE, NAMESPACE = "fed", "federator-system"
RELEASE_FULLNAME = "fed-federator"


def recommended_multi_team() -> dict[str, Any]:
    """The setting values.yaml recommends for a cluster several teams share: the indented YAML
    in the comment block that follows 'Recommended when several teams share a cluster'."""
    lines = (CHART / "values.yaml").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("# Recommended when several"))
    block = []
    for line in lines[start + 1 :]:
        if line.startswith("#   "):
            block.append(line[4:])
        elif block:
            break
    values: dict[str, Any] = yaml.safe_load("\n".join(block))
    return values


# The built-in kinds the chart renders (kubeconform gets a schema for each).
BUILTIN_KINDS: tuple[tuple[str, str], ...] = (
    ("v1", "ServiceAccount"),
    ("v1", "ConfigMap"),
    ("v1", "Service"),
    ("apps/v1", "Deployment"),
    ("rbac.authorization.k8s.io/v1", "ClusterRole"),
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"),
    ("rbac.authorization.k8s.io/v1", "Role"),
    ("rbac.authorization.k8s.io/v1", "RoleBinding"),
    ("apiextensions.k8s.io/v1", "CustomResourceDefinition"),
)
SERVICE_MONITOR = "monitoring.coreos.com/v1/ServiceMonitor"  # Prometheus Operator's; skipped

VALUE_SETS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "namespaced": {"watchNamespaces": ["team-a", "team-b"]},
    "ha": {"replicaCount": 3, "peering": {"enabled": True}},
    "ha-namespaced": {
        "replicaCount": 2,
        "peering": {"enabled": True, "name": "federator-ha"},
        "watchNamespaces": ["team-a"],
    },
    "servicemonitor": {"serviceMonitor": {"enabled": True, "labels": {"release": "prometheus"}}},
    "kafka-clusters": {
        "watchNamespaces": ["pipelines", "kafka-main"],
        "kafkaClusters": [
            {
                "name": "default",
                "strimziCluster": "main",
                "namespace": "kafka-main",
                "bootstrapServers": "main-kafka-bootstrap.kafka-main.svc:9092",
            },
            {
                "name": "legacy",
                "strimziCluster": "old",
                "namespace": "kafka-legacy",
                "bootstrapServers": "old-kafka-bootstrap.kafka-legacy.svc:9093",
                "topicApiVersion": "v1beta2",
            },
        ],
        "flink": {"defaultOperator": "lyft"},
        "operator": {"resyncSeconds": 60, "metricsPort": 9090, "livenessPort": 9091},
    },
    "multi-team": recommended_multi_team(),
    "pod-security": {
        "podSecurity": {
            "level": "restricted",
            "allowedServiceAccounts": {"*": ["spark"], "team-a": ["team-a-jobs", "flink"]},
        }
    },
    "impersonation": {
        "impersonation": {"defaultServiceAccount": "deployer", "requireServiceAccount": True},
        "watchNamespaces": ["team-a"],
    },
    "limits": {"limits": {"maxStreamlets": 200, "maxChildren": 600}},
    "sharded": {"sharding": {"shards": ["a", "b"]}, "serviceMonitor": {"enabled": True}},
    "sharded-ha-namespaced": {
        "sharding": {"shards": ["a"]},
        "peering": {"enabled": True},
        "replicaCount": 2,
        "watchNamespaces": ["team-a", "team-b"],
    },
    "long-names": {
        "fullnameOverride": "f" * 70,
        "watchNamespaces": ["team-a"],
        "image": {"digest": "sha256:" + "0" * 64},
    },
}

# What the operator may do in a namespace it serves: (apiGroup, resource) -> verbs.
DELEGATE_WRITE = {"get", "list", "watch", "create", "patch", "update", "delete"}
OPERATOR_RULES: dict[tuple[str, str], set[str]] = {
    ("federator.io", "applications"): {"get", "list", "watch", "patch", "update"},
    ("federator.io", "applications/status"): {"get", "patch", "update"},
    ("federator.io", "applications/finalizers"): {"update"},
    # One rule per registered delegate (files/delegates.yaml is generated from the registry).
    **{(d.group, d.plural): DELEGATE_WRITE for d in delegates.ALL},
    ("", "events"): {"create"},
    ("events.k8s.io", "events"): {"create"},
    ("", "serviceaccounts"): {"impersonate", "get"},
}
CRD_READ = {("apiextensions.k8s.io", "customresourcedefinitions"): {"get", "list", "watch"}}


CLUSTER_VALUES = {"name": "a", "strimziCluster": "s", "namespace": "k", "bootstrapServers": "b"}

# -- tools and rendering


@pytest.fixture(scope="session")
def tools() -> Path:
    """The bin directory with helm and kubeconform (CI never builds here, and never skips)."""
    try:
        return build.ensure_binaries(
            build=not in_ci(), names=["helm", "kubeconform"], out=sys.__stderr__
        )
    except build.BuildError as exc:
        pytest.fail(f"helm/kubeconform unavailable: {exc}", pytrace=False)


def helm(tools: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [str(tools / "helm"), *args], capture_output=True, text=True, timeout=120, check=False
    )
    if check:
        assert proc.returncode == 0, f"helm {' '.join(args)}:\n{proc.stderr}"
    return proc


def values_file(tmp: Path, values: Mapping[str, Any]) -> Path:
    path = tmp / "values.yaml"
    path.write_text(yaml.safe_dump(dict(values)))
    return path


def template(tools: Path, tmp: Path, values: Mapping[str, Any], *extra: str) -> str:
    return helm(
        tools,
        "template",
        RELEASE,
        str(CHART),
        "--namespace",
        NAMESPACE,
        "--include-crds",
        "--values",
        str(values_file(tmp, values)),
        *extra,
    ).stdout


def docs(text: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(text) if d]


@pytest.fixture(scope="module")
def rendered(tools: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Every value set rendered once: name -> the YAML stream."""
    out = {}
    for name, values in VALUE_SETS.items():
        out[name] = template(tools, tmp_path_factory.mktemp(name), values)
    return out


def objects(
    rendered: Mapping[str, str], name: str, kind: str | None = None
) -> list[dict[str, Any]]:
    return [d for d in docs(rendered[name]) if kind is None or d["kind"] == kind]


def one(rendered: Mapping[str, str], name: str, kind: str) -> dict[str, Any]:
    found = objects(rendered, name, kind)
    assert len(found) == 1, [d["metadata"]["name"] for d in found]
    return found[0]


def settings_of(rendered: Mapping[str, str], name: str) -> dict[str, Any]:
    configmap = one(rendered, name, "ConfigMap")
    data: dict[str, Any] = yaml.safe_load(configmap["data"]["settings.yaml"])
    return data


def rules_of(role: Mapping[str, Any]) -> dict[tuple[str, str], set[str]]:
    """A Role's rules as (apiGroup, resource) -> verbs (one group and resource per rule here)."""
    out: dict[tuple[str, str], set[str]] = {}
    for rule in role["rules"]:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                out.setdefault((group, resource), set()).update(rule["verbs"])
    return out


# -- kubeconform schemas (offline)


def _kind_suffix(api_version: str) -> str:
    """kubeconform's {{.KindSuffix}}: "-<first label of the group>[-<version>]"."""
    parts = api_version.split("/")
    suffix = "-" + parts[0].split(".")[0].lower()
    if len(parts) > 1:
        suffix += "-" + parts[1].lower()
    return suffix


def schema_file(directory: Path, api_version: str, kind: str) -> Path:
    """The file kubeconform opens for `<dir>/{{.ResourceKind}}{{.KindSuffix}}.json`."""
    return directory / f"{kind.lower()}{_kind_suffix(api_version)}.json"


def strict(node: Any) -> Any:
    """openapi2jsonschema --strict: objects with properties reject unknown fields."""
    if isinstance(node, dict):
        node = {k: strict(v) for k, v in node.items()}
        if (
            "properties" in node
            and "additionalProperties" not in node
            and not node.get("x-kubernetes-preserve-unknown-fields")
        ):
            node["additionalProperties"] = False
        return node
    if isinstance(node, list):
        return [strict(v) for v in node]
    return node


def kubernetes_openapi() -> dict[str, Any]:
    """The swagger document of the Kubernetes version the control plane is built from."""
    match = re.search(r"^\s*k8s\.io/kubernetes (v\S+)", GO_MOD.read_text(), re.MULTILINE)
    assert match, f"{GO_MOD} pins no k8s.io/kubernetes version"
    if shutil.which("go") is None:
        pytest.fail("`go` is needed to locate k8s.io/kubernetes' OpenAPI document", pytrace=False)
    proc = subprocess.run(
        ["go", "mod", "download", "-json", f"k8s.io/kubernetes@{match.group(1)}"],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=GO_MOD.parent,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    swagger = Path(json.loads(proc.stdout)["Dir"]) / "api" / "openapi-spec" / "swagger.json"
    doc: dict[str, Any] = json.loads(swagger.read_text())
    return doc


def _reachable(definitions: Mapping[str, Any], root: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    todo = [root]
    while todo:
        name = todo.pop()
        if name in out:
            continue
        out[name] = definitions[name]
        text = json.dumps(definitions[name])
        todo += re.findall(r'"#/definitions/([^"]+)"', text)
    return out


def builtin_schemas(directory: Path) -> None:
    definitions = copy.deepcopy(kubernetes_openapi()["definitions"])
    # JSON has no int-or-string or quantity type: say what the API server accepts.
    definitions["io.k8s.apimachinery.pkg.util.intstr.IntOrString"] = {
        "oneOf": [{"type": "string"}, {"type": "integer"}]
    }
    definitions["io.k8s.apimachinery.pkg.api.resource.Quantity"] = {
        "oneOf": [{"type": "string"}, {"type": "number"}]
    }
    by_gvk = {}
    for name, definition in definitions.items():
        for gvk in definition.get("x-kubernetes-group-version-kind", []):
            api_version = f"{gvk['group']}/{gvk['version']}" if gvk["group"] else gvk["version"]
            by_gvk[(api_version, gvk["kind"])] = name
    for api_version, kind in BUILTIN_KINDS:
        name = by_gvk[(api_version, kind)]
        schema = {
            "$ref": f"#/definitions/{name}",
            "definitions": strict(_reachable(definitions, name)),
        }
        schema_file(directory, api_version, kind).write_text(json.dumps(schema))


def crd_schemas(directory: Path, crds: list[dict[str, Any]]) -> None:
    for crd in crds:
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            schema = strict(copy.deepcopy(version["schema"]["openAPIV3Schema"]))
            props = schema.setdefault("properties", {})
            props.setdefault("apiVersion", {"type": "string"})
            props.setdefault("kind", {"type": "string"})
            props.setdefault("metadata", {"type": "object"})
            schema["additionalProperties"] = False
            path = schema_file(directory, f"{group}/{version['name']}", kind)
            path.write_text(json.dumps(schema))


@pytest.fixture(scope="module")
def schemas(tools: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("schemas")
    builtin_schemas(directory)
    crds = docs(CRD.read_text())
    peering = subprocess.run(  # kopf's peering CRDs exactly as the chart renders them
        [
            str(tools / "helm"),
            "template",
            RELEASE,
            str(CHART),
            "--set",
            "peering.enabled=true",
            "--show-only",
            "templates/peering-crds.yaml",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    crd_schemas(directory, crds + docs(peering))
    return directory


def kubeconform(tools: Path, schemas: Path, stream: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            str(tools / "kubeconform"),
            "-strict",
            "-summary",
            "-schema-location",
            str(schemas / "{{.ResourceKind}}{{.KindSuffix}}.json"),
            "-skip",
            SERVICE_MONITOR,
            "-",
        ],
        input=stream,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


# -- lint, template, kubeconform


@pytest.mark.parametrize("name", sorted(VALUE_SETS))
def test_helm_lint_strict(tools: Path, tmp_path: Path, name: str) -> None:
    proc = helm(
        tools,
        "lint",
        "--strict",
        str(CHART),
        "--namespace",
        NAMESPACE,
        "--values",
        str(values_file(tmp_path, VALUE_SETS[name])),
    )
    assert "0 chart(s) failed" in proc.stdout, proc.stdout


@pytest.mark.parametrize("name", sorted(VALUE_SETS))
def test_template_validates_with_kubeconform(
    tools: Path, schemas: Path, rendered: dict[str, str], name: str
) -> None:
    proc = kubeconform(tools, schemas, rendered[name])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    summary = proc.stdout.strip().splitlines()[-1]
    assert re.search(r"Invalid: 0, Errors: 0", summary), summary
    kinds = {d["kind"] for d in docs(rendered[name])}
    skipped = 1 if "ServiceMonitor" in kinds else 0
    assert f"Skipped: {skipped}" in summary, summary  # nothing else went unchecked


def test_kubeconform_rejects_an_unknown_field(
    tools: Path, schemas: Path, rendered: dict[str, str]
) -> None:
    """The strict schemas bite (a validator that accepts everything proves nothing)."""
    broken = rendered["defaults"].replace("readOnlyRootFilesystem:", "readOnlyRootFileSystem:")
    proc = kubeconform(tools, schemas, broken)
    assert proc.returncode != 0 and "readOnlyRootFileSystem" in proc.stdout, proc.stdout


def test_examples_validate_against_our_crd_schema(tools: Path, schemas: Path) -> None:
    stream = "\n---\n".join(
        p.read_text()
        for p in sorted((REPO / "examples").glob("*.yaml"))
        if p.name != "settings.yaml"
    )
    proc = kubeconform(tools, schemas, stream)
    assert proc.returncode == 0, proc.stdout
    assert "Skipped: 0" in proc.stdout, proc.stdout
    bad = stream.replace("deletionPolicy: Retain", "deletionPolicy: Forever", 1)
    assert "Forever" in bad
    assert kubeconform(tools, schemas, bad).returncode != 0


# -- the CRD


def test_chart_crd_is_the_repository_crd(rendered: dict[str, str]) -> None:
    """A file of the chart's own, not a link out of it (a chart copied or packaged alone kept
    a dangling link and lost its CRD), equal byte for byte to crds/application.yaml."""
    copy = CHART / "crds" / "application.yaml"
    assert not copy.is_symlink(), "charts/federator/crds/application.yaml must be a file"
    assert copy.read_bytes() == CRD.read_bytes(), (
        "charts/federator/crds/application.yaml differs from crds/application.yaml: "
        "run `make chart-crd`"
    )
    crds = [
        d
        for d in objects(rendered, "defaults", "CustomResourceDefinition")
        if d["metadata"]["name"] == "applications.federator.io"
    ]
    assert crds == docs(CRD.read_text())


def test_packaged_chart_is_self_contained(tools: Path, tmp_path: Path) -> None:
    """`helm package` (what `make chart` runs) gives a .tgz that carries the CRD and renders
    exactly as the chart folder does: nothing in it points outside itself."""
    import tarfile

    helm(tools, "package", str(CHART), "--destination", str(tmp_path))
    version = yaml.safe_load((CHART / "Chart.yaml").read_text())["version"]
    package = tmp_path / f"federator-{version}.tgz"
    with tarfile.open(package) as tar:
        crd = tar.extractfile("federator/crds/application.yaml")
        assert crd is not None and crd.read() == CRD.read_bytes()
        assert not [m.name for m in tar.getmembers() if m.issym() or m.islnk()]
    from_dir = helm(tools, "template", "federator", str(CHART), "--include-crds").stdout
    from_tgz = helm(tools, "template", "federator", str(package), "--include-crds").stdout
    assert from_tgz == from_dir


def test_peering_crds_only_with_peering_and_kept(rendered: dict[str, str]) -> None:
    def kopf_crds(name: str) -> list[dict[str, Any]]:
        return [
            d
            for d in objects(rendered, name, "CustomResourceDefinition")
            if d["spec"]["group"] == "kopf.dev"
        ]

    assert kopf_crds("defaults") == []
    found = kopf_crds("ha")
    assert {d["metadata"]["name"] for d in found} == {
        "clusterkopfpeerings.kopf.dev",
        "kopfpeerings.kopf.dev",
    }
    assert all(d["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep" for d in found)


# -- the Deployment


def container(rendered: dict[str, str], name: str) -> dict[str, Any]:
    deployment = one(rendered, name, "Deployment")
    (only,) = deployment["spec"]["template"]["spec"]["containers"]
    return dict(only)


def test_deployment_restricted_security_context(rendered: dict[str, str]) -> None:
    pod = one(rendered, "defaults", "Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    sc = container(rendered, "defaults")["securityContext"]
    assert sc["runAsNonRoot"] is True
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert not pod.get("hostNetwork") and not pod.get("hostPID")
    tmp = [v for v in pod["volumes"] if v["name"] == "tmp"]
    assert tmp and "emptyDir" in tmp[0]
    mounts = {m["mountPath"]: m for m in container(rendered, "defaults")["volumeMounts"]}
    assert mounts["/tmp"]["name"] == "tmp"
    assert mounts["/etc/federator"]["readOnly"] is True


@pytest.mark.parametrize("name", ["defaults", "kafka-clusters"])
def test_deployment_probes_and_ports(rendered: dict[str, str], name: str) -> None:
    c = container(rendered, name)
    settings = settings_of(rendered, name)["operator"]
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports == {"metrics": settings["metricsPort"], "healthz": settings["livenessPort"]}
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert c[probe]["httpGet"] == {"path": "/healthz", "port": "healthz"}, probe
    assert c["resources"]["requests"] and c["resources"]["limits"]["memory"]
    service = one(rendered, name, "Service")
    assert service["spec"]["ports"][0]["port"] == settings["metricsPort"]
    assert service["spec"]["ports"][0]["targetPort"] == "metrics"


def test_deployment_runs_federator_with_the_settings(rendered: dict[str, str]) -> None:
    c = container(rendered, "defaults")
    # No command: the image's entrypoint (tini as PID 1, then federator) takes the args.
    assert "command" not in c
    assert c["args"] == ["run", "--settings", "/etc/federator/settings.yaml"]
    assert c["image"] == "ghcr.io/federator/federator:" + chart_meta()["appVersion"]
    pinned = container(rendered, "long-names")["image"]
    assert pinned == "ghcr.io/federator/federator@sha256:" + "0" * 64
    deployment = one(rendered, "defaults", "Deployment")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    sa = one(rendered, "defaults", "ServiceAccount")["metadata"]["name"]
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == sa


def chart_meta() -> dict[str, Any]:
    meta: dict[str, Any] = yaml.safe_load((CHART / "Chart.yaml").read_text())
    return meta


def test_names_are_cut_to_63_characters(rendered: dict[str, str]) -> None:
    for doc in objects(rendered, "long-names"):
        assert len(doc["metadata"]["name"]) <= 63, doc["metadata"]["name"]
        assert not doc["metadata"]["name"].endswith("-")
        for value in doc["metadata"].get("labels", {}).values():
            assert len(value) <= 63


# -- RBAC


def roles(rendered: dict[str, str], name: str) -> Iterator[dict[str, Any]]:
    for doc in objects(rendered, name):
        if doc["kind"] in ("Role", "ClusterRole"):
            yield doc


@pytest.mark.parametrize("name", sorted(VALUE_SETS))
def test_rbac_never_secrets_never_wildcards(rendered: dict[str, str], name: str) -> None:
    found = list(roles(rendered, name))
    assert found
    for role in found:
        for rule in role["rules"]:
            everything = [*rule["apiGroups"], *rule["resources"], *rule["verbs"]]
            everything += rule.get("resourceNames", []) + rule.get("nonResourceURLs", [])
            assert not any("*" in item for item in everything), rule
            assert not {"secrets", "configmaps", "pods"} & set(rule["resources"]), rule
            assert not {"escalate", "bind"} & set(rule["verbs"]), rule
            # Impersonation of ServiceAccounts only, in a rule of its own: never of users,
            # groups, user extras or uids (each would let federator act as anyone).
            if "impersonate" in rule["verbs"] or "serviceaccounts" in rule["resources"]:
                assert rule == {
                    "apiGroups": [""],
                    "resources": ["serviceaccounts"],
                    "verbs": ["impersonate", "get"],
                }, rule
            assert not {"users", "groups", "userextras", "uids"} & set(rule["resources"]), rule
    for binding in objects(rendered, name):
        if binding["kind"] in ("RoleBinding", "ClusterRoleBinding"):
            assert binding["subjects"] == [
                {
                    "kind": "ServiceAccount",
                    "name": one(rendered, name, "ServiceAccount")["metadata"]["name"],
                    "namespace": NAMESPACE,
                }
            ]


def test_cluster_wide_rbac_is_exactly_what_the_operator_uses(rendered: dict[str, str]) -> None:
    assert not list(objects(rendered, "defaults", "Role"))
    (role,) = roles(rendered, "defaults")
    assert rules_of(role) == {**OPERATOR_RULES, **CRD_READ}
    binding = one(rendered, "defaults", "ClusterRoleBinding")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]


def test_namespaced_rbac_uses_roles_for_the_delegate_kinds(rendered: dict[str, str]) -> None:
    cluster_roles = objects(rendered, "namespaced", "ClusterRole")
    assert [rules_of(r) for r in cluster_roles] == [
        {**CRD_READ, ("", "namespaces"): {"list", "watch"}}
    ]
    by_ns = {
        r["metadata"]["namespace"]: rules_of(r) for r in objects(rendered, "namespaced", "Role")
    }
    assert set(by_ns) == {"team-a", "team-b", "kafka"}
    assert by_ns["team-a"] == by_ns["team-b"] == OPERATOR_RULES
    # The Kafka namespace: KafkaTopics written, everything kopf watches there only read; no
    # Applications live there, so no ServiceAccount of it is ever impersonated.
    kafka = by_ns["kafka"]
    assert ("", "serviceaccounts") not in kafka
    writers = {key for key, verbs in kafka.items() if verbs - {"get", "list", "watch"}}
    assert writers == {
        ("kafka.strimzi.io", "kafkatopics"),
        ("", "events"),
        ("events.k8s.io", "events"),
    }
    bindings = {
        (b["metadata"]["namespace"], b["roleRef"]["kind"], b["roleRef"]["name"])
        for b in objects(rendered, "namespaced", "RoleBinding")
    }
    roles_named = {
        (r["metadata"]["namespace"], "Role", r["metadata"]["name"])
        for r in objects(rendered, "namespaced", "Role")
    }
    assert bindings == roles_named


def test_kafka_namespace_that_is_also_watched_gets_the_full_role(rendered: dict[str, str]) -> None:
    by_ns = {
        r["metadata"]["namespace"]: rules_of(r) for r in objects(rendered, "kafka-clusters", "Role")
    }
    assert set(by_ns) == {"pipelines", "kafka-main", "kafka-legacy"}
    assert by_ns["kafka-main"] == OPERATOR_RULES
    assert ("apps", "deployments") in by_ns["kafka-legacy"]
    assert by_ns["kafka-legacy"][("apps", "deployments")] == {"get", "list", "watch"}


def test_rbac_for_peering_only_with_peering(rendered: dict[str, str]) -> None:
    (role,) = roles(rendered, "ha")
    assert rules_of(role) == {
        **OPERATOR_RULES,
        **CRD_READ,
        ("kopf.dev", "clusterkopfpeerings"): {"get", "list", "watch", "patch"},
    }
    for role in objects(rendered, "ha-namespaced", "Role"):
        assert rules_of(role)[("kopf.dev", "kopfpeerings")] == {"get", "list", "watch", "patch"}


def test_rbac_create_false_renders_no_rbac(tools: Path, tmp_path: Path) -> None:
    out = docs(template(tools, tmp_path, {"rbac": {"create": False}}))
    assert not [d for d in out if d["apiVersion"].startswith("rbac.")]


# -- settings


def test_default_settings_parse(rendered: dict[str, str]) -> None:
    settings = parse_settings(settings_of(rendered, "defaults"))
    assert settings.operator.namespaces == ()  # cluster-wide
    assert settings.kafka_cluster_names == ("default",)
    assert settings.operator.metrics_port == 8080 and settings.operator.liveness_port == 8081


def test_namespaced_settings_serve_the_watched_and_kafka_namespaces(
    rendered: dict[str, str],
) -> None:
    settings = parse_settings(settings_of(rendered, "namespaced"))
    assert settings.operator.namespaces == ("team-a", "team-b", "kafka")


def test_custom_kafka_clusters_reach_the_settings(rendered: dict[str, str]) -> None:
    settings = parse_settings(settings_of(rendered, "kafka-clusters"))
    legacy = settings.kafka_cluster("legacy")
    assert legacy is not None and legacy.namespace == "kafka-legacy"
    assert legacy.topic_api_version.value == "v1beta2"
    assert legacy.bootstrap_servers == "old-kafka-bootstrap.kafka-legacy.svc:9093"
    assert settings.flink.default_operator.value == "lyft"
    assert settings.operator.resync_seconds == 60.0
    assert settings.operator.namespaces == ("pipelines", "kafka-main", "kafka-legacy")


def test_the_recommended_multi_team_policy_reaches_the_settings(rendered: dict[str, str]) -> None:
    cluster = parse_settings(settings_of(rendered, "multi-team")).kafka_cluster("default")
    assert cluster is not None
    assert cluster.topic_policy == TopicPolicy(
        allowed_namespaces=("team-a", "team-b"),
        topic_prefix="{namespace}.",
        shared=(SharedTopic(name="team-b.orders.w.out", namespaces=("team-a",), access="read"),),
    )
    defaults = parse_settings(settings_of(rendered, "defaults")).kafka_cluster("default")
    assert defaults is not None and defaults.topic_policy == TopicPolicy()  # the seed's names


@pytest.mark.parametrize(
    "template",
    [
        "",
        "{namespace}.",
        "{namespace}_",
        "{namespace}.{application}.",
        "kafka.{namespace}.",
        "{application}.",
        "shared.",
        "{namespace}",
        "{namespace}-",
        "{application}.{namespace}.",
        "{team}.",
        "{}.",
        "{namespace!r}.",
        "{{namespace}}.",
        "team/{namespace}.",
        "{namespace",
    ],
)
def test_schema_topic_prefix_pattern_agrees_with_the_operator(template: str) -> None:
    """The chart refuses at install what the operator would refuse at start (bar the length)."""
    schema = json.loads((CHART / "values.schema.json").read_text())
    cluster = schema["properties"]["kafkaClusters"]["items"]["properties"]["topicPrefix"]
    assert bool(re.match(cluster["pattern"], template)) is (template_error(template) is None)


def test_pod_security_defaults_to_baseline_and_reaches_the_settings(
    rendered: dict[str, str],
) -> None:
    default = parse_settings(settings_of(rendered, "defaults")).pod_security
    assert (default.level.value, default.allowed_service_accounts) == ("baseline", ())
    policy = parse_settings(settings_of(rendered, "pod-security")).pod_security
    assert policy.level.value == "restricted"
    assert policy.allowed_service_accounts == (
        ("*", ("spark",)),
        ("team-a", ("team-a-jobs", "flink")),
    )


def test_impersonation_is_off_by_default_and_reaches_the_settings(
    rendered: dict[str, str],
) -> None:
    default = parse_settings(settings_of(rendered, "defaults")).impersonation
    assert (default.default_service_account, default.require_service_account) == ("", False)
    locked = parse_settings(settings_of(rendered, "impersonation")).impersonation
    assert (locked.default_service_account, locked.require_service_account) == ("deployer", True)
    # Impersonation is granted where Applications are served: the watched namespace only.
    by_ns = {
        r["metadata"]["namespace"]: rules_of(r) for r in objects(rendered, "impersonation", "Role")
    }
    assert by_ns["team-a"][("", "serviceaccounts")] == {"impersonate", "get"}
    assert ("", "serviceaccounts") not in by_ns["kafka"]


def test_size_limits_reach_the_settings(rendered: dict[str, str]) -> None:
    default = parse_settings(settings_of(rendered, "defaults")).limits
    assert default == limits.Limits()  # the chart's defaults are the operator's
    assert parse_settings(settings_of(rendered, "limits")).limits == limits.Limits(
        max_streamlets=200, max_children=600
    )
    schema = json.loads((CHART / "values.schema.json").read_text())
    ceiling = schema["properties"]["limits"]["properties"]["maxStreamlets"]["maximum"]
    assert ceiling == limits.STREAMLETS_CEILING


def test_settings_change_rolls_the_pods(tools: Path, tmp_path: Path) -> None:
    def checksum(values: dict[str, Any]) -> str:
        (deployment,) = [
            d for d in docs(template(tools, tmp_path, values)) if d["kind"] == "Deployment"
        ]
        return str(deployment["spec"]["template"]["metadata"]["annotations"]["checksum/settings"])

    assert checksum({}) != checksum({"operator": {"resyncSeconds": 10}})


# -- HA


def test_ha_runs_with_peering(rendered: dict[str, str]) -> None:
    deployment = one(rendered, "ha", "Deployment")
    assert deployment["spec"]["replicas"] == 3
    assert "strategy" not in deployment["spec"]
    args = container(rendered, "ha")["args"]
    assert args[args.index("--peering") + 1] == "federator"
    peering = one(rendered, "ha", "ClusterKopfPeering")
    assert peering["metadata"]["name"] == "federator"
    assert "post-install" in peering["metadata"]["annotations"]["helm.sh/hook"]


def test_ha_namespaced_has_a_kopfpeering_per_served_namespace(rendered: dict[str, str]) -> None:
    found = objects(rendered, "ha-namespaced", "KopfPeering")
    assert {(p["metadata"]["namespace"], p["metadata"]["name"]) for p in found} == {
        ("team-a", "federator-ha"),
        ("kafka", "federator-ha"),
    }
    assert not objects(rendered, "ha-namespaced", "ClusterKopfPeering")


def test_service_monitor_only_when_enabled(rendered: dict[str, str]) -> None:
    assert not objects(rendered, "defaults", "ServiceMonitor")
    monitor = one(rendered, "servicemonitor", "ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    service = one(rendered, "servicemonitor", "Service")
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics"


# -- sharding


def test_one_deployment_per_shard_and_the_default_unchanged(rendered: dict[str, str]) -> None:
    deployments = {d["metadata"]["name"]: d for d in objects(rendered, "sharded", "Deployment")}
    default = one(rendered, "defaults", "Deployment")
    assert set(deployments) == {RELEASE_FULLNAME, *(f"{RELEASE_FULLNAME}-shard-{s}" for s in "ab")}
    # The default shard is the Deployment of an unsharded install (it upgrades in place).
    assert deployments[RELEASE_FULLNAME]["spec"] == default["spec"]
    selectors = []
    for name, deployment in deployments.items():
        (only,) = deployment["spec"]["template"]["spec"]["containers"]
        shard = name.removeprefix(f"{RELEASE_FULLNAME}-shard-") if "-shard-" in name else None
        assert (["--shard", shard] == only["args"][-2:]) if shard else "--shard" not in only["args"]
        selector = deployment["spec"]["selector"]["matchLabels"]
        assert selector.items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
        selectors.append(selector)
    # No Deployment selects another's pods.
    for mine in selectors:
        for theirs in selectors:
            assert mine is theirs or not mine.items() <= theirs.items()
    services = objects(rendered, "sharded", "Service")
    assert sorted(s["spec"]["selector"]["app.kubernetes.io/component"] for s in services) == [
        "operator",
        "operator-shard-a",
        "operator-shard-b",
    ]
    monitor = one(rendered, "sharded", "ServiceMonitor")
    (expression,) = monitor["spec"]["selector"]["matchExpressions"]
    assert expression["values"] == ["operator", "operator-shard-a", "operator-shard-b"]
    # One settings file for every shard: the shard is the Deployment's `--shard`.
    assert "sharding" not in settings_of(rendered, "sharded")


def test_each_shard_has_its_own_peering(rendered: dict[str, str]) -> None:
    peerings = {
        (p["metadata"]["namespace"], p["metadata"]["name"])
        for p in objects(rendered, "sharded-ha-namespaced", "KopfPeering")
    }
    assert peerings == {
        (ns, n) for ns in ("team-a", "team-b", "kafka") for n in ("federator", "federator-a")
    }
    for deployment in objects(rendered, "sharded-ha-namespaced", "Deployment"):
        (only,) = deployment["spec"]["template"]["spec"]["containers"]
        peering = only["args"][only["args"].index("--peering") + 1]
        assert peering == (
            "federator-a" if "-shard-a" in deployment["metadata"]["name"] else "federator"
        )


# -- values: schema and documentation


@pytest.mark.parametrize(
    ("values", "message"),
    [
        pytest.param({"operator": {"metricPort": 1}}, "metricPort", id="nested-typo"),
        pytest.param({"replicas": 2}, "replicas", id="top-level-typo"),
        pytest.param(
            {
                "kafkaClusters": [
                    {
                        "name": "a",
                        "strimziCluster": "s",
                        "namespace": "k",
                        "bootstrapServer": "b:9092",
                    }
                ]
            },
            "bootstrapServer",
            id="kafka-cluster-typo",
        ),
        pytest.param({"watchNamespaces": "team-a"}, "watchNamespaces", id="wrong-type"),
        pytest.param({"flink": {"defaultOperator": "ververica"}}, "defaultOperator", id="enum"),
        pytest.param({"securityContext": {"privilegd": True}}, "privilegd", id="security-typo"),
        pytest.param({"replicaCount": 2}, "peering.enabled", id="replicas-without-peering"),
        pytest.param(
            {
                "kafkaClusters": [
                    {"name": "a", "strimziCluster": "s", "namespace": "k", "bootstrapServers": "b"},
                    {"name": "a", "strimziCluster": "t", "namespace": "l", "bootstrapServers": "c"},
                ]
            },
            "duplicate cluster name",
            id="duplicate-kafka-cluster",
        ),
        pytest.param(
            {"serviceAccount": {"create": False}}, "serviceAccount.name", id="no-service-account"
        ),
        pytest.param({"sharding": {"shards": ["a", "a"]}}, "shards", id="duplicate-shard"),
        pytest.param({"sharding": {"shards": ["Team_A"]}}, "shards", id="bad-shard-name"),
        pytest.param({"sharding": {"shard": "a"}}, "shard", id="sharding-typo"),
        pytest.param(
            {"kafkaClusters": [{**CLUSTER_VALUES, "topicPrefix": "{team}."}]},
            "topicPrefix",
            id="unknown-topic-prefix-placeholder",
        ),
        pytest.param(
            {"kafkaClusters": [{**CLUSTER_VALUES, "topicPrefix": "{namespace}-"}]},
            "topicPrefix",
            id="ambiguous-topic-prefix",
        ),
        pytest.param(
            {"kafkaClusters": [{**CLUSTER_VALUES, "allowedNamespaces": ["Team_A"]}]},
            "allowedNamespaces",
            id="bad-allowed-namespace",
        ),
        pytest.param({"podSecurity": {"level": "strict"}}, "podSecurity/level", id="pss-level"),
        pytest.param(
            {"limits": {"maxStreamlets": limits.STREAMLETS_CEILING + 1}},
            "maxStreamlets",
            id="limit-over-the-crd",
        ),
        pytest.param({"limits": {"maxChildren": 0}}, "maxChildren", id="no-children"),
        pytest.param({"limits": {"maxStreamlet": 10}}, "maxStreamlet", id="limits-typo"),
        pytest.param(
            {"podSecurity": {"allowedServiceAccounts": {"team-a": ["Powerful"]}}},
            "allowedServiceAccounts",
            id="pss-service-account-name",
        ),
        pytest.param(
            {"podSecurity": {"allowedServiceAccounts": {"team-a": "spark"}}},
            "allowedServiceAccounts",
            id="pss-service-accounts-not-a-list",
        ),
        pytest.param(
            {"impersonation": {"defaultServiceAccount": "team-a:deployer"}},
            "defaultServiceAccount",
            id="impersonation-not-a-service-account-name",
        ),
        pytest.param(
            {"impersonation": {"requireServiceAccount": "yes"}},
            "requireServiceAccount",
            id="impersonation-lock-down-not-a-boolean",
        ),
        pytest.param(
            {"impersonation": {"defaultServiceAcount": "deployer"}},
            "defaultServiceAcount",
            id="impersonation-typo",
        ),
    ],
)
def test_bad_values_fail_template(
    tools: Path, tmp_path: Path, values: dict[str, Any], message: str
) -> None:
    proc = helm(
        tools,
        "template",
        RELEASE,
        str(CHART),
        "--values",
        str(values_file(tmp_path, values)),
        check=False,
    )
    assert proc.returncode != 0
    assert message in proc.stderr, proc.stderr


def _objects_in(schema: Any, path: str = "$") -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(schema, dict):
        if "properties" in schema:
            yield path, schema
        for key, value in schema.items():
            yield from _objects_in(value, f"{path}.{key}")
    elif isinstance(schema, list):
        for i, value in enumerate(schema):
            yield from _objects_in(value, f"{path}[{i}]")


def test_schema_rejects_unknown_keys_everywhere() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    found = list(_objects_in(schema))
    assert len(found) > 10
    for path, node in found:
        assert node.get("additionalProperties") is False, path
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert set(values) <= set(schema["properties"])


# Keys whose children are a Kubernetes object or a list item documented by the parent's comment.
DOCUMENTED_BY_PARENT = {"kafkaClusters", "resources", "podSecurityContext", "securityContext"}


def test_values_yaml_documents_every_key() -> None:
    lines = (CHART / "values.yaml").read_text().splitlines()
    stack: list[tuple[int, str]] = []  # (indent, key) of the enclosing keys
    undocumented = []
    previous = ""
    for line in lines:
        match = re.match(r"^(\s*)(- )?([A-Za-z][\w.-]*):", line)
        if match:
            indent = len(match.group(1))
            while stack and stack[-1][0] >= indent:
                stack.pop()
            covered = any(key in DOCUMENTED_BY_PARENT for _, key in stack)
            if not covered and not previous.lstrip().startswith("#"):
                undocumented.append(line.strip())
            stack.append((indent, match.group(3)))
        if line.strip():
            previous = line
    assert undocumented == []
