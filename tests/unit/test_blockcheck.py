"""Runtime blocks and images, checked before anything is rendered or applied (Issue 10 §5).

Aspects covered:
- one table row per problem, with its code, exact path and a fragment of its message: wrong
  types and unknown fields in spark, flink (Apache and Lyft) and container blocks, checked
  against the vendored CRDs and the written-out Deployment schema; fields that would move a
  child or its pods to another namespace, or rename the child; invalid images, the streamlet's
  own and every image field inside a block; the issue's three cases among them;
- what stays valid: partial blocks (fields federator renders are never required of the user),
  pod fields the Deployment schema leaves open, a Ceph volume's `rbd.image`, every example;
- every problem at once, and a placement problem is not echoed as an unknown field;
- render never drops a user value: with validation bypassed, a value of the wrong type where
  federator wires the streamlet is refused at its path; and (hypothesis) whatever a block puts
  at a wired path is either refused by validation or reaches the child as written;
- every delegate a block can target has a schema (a guard for the vendored CRDs).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from federator.core import blockcheck, compiler, delegates, render, validation
from federator.core.delegates import TargetApis
from federator.core.problems import Code, InvalidSpec
from federator.core.resources import examples_dir
from federator.core.settings import Settings, parse_settings

SETTINGS = parse_settings(
    {
        "kafkaClusters": [
            {
                "name": "default",
                "strimziCluster": "strimzi",
                "namespace": "kafka",
                "bootstrapServers": "kafka:9092",
            }
        ]
    }
)
IMAGE = "registry.example.com/team/proc:1.0.0"
# The fields each delegate requires, merged under a test's block unless it sets them itself.
REQUIRED: dict[str, dict[str, Any]] = {
    "spark": {"mainApplicationFile": "local:///opt/app.jar"},
    "apache": {"job": {"jarURI": "local:///opt/flink/usrlib/job.jar"}},
    "lyft": {"jarName": "job.jar", "entryClass": "org.example.Job"},
    "container": {},
}


def app(runtime: str, block: Any = None, *, image: str = IMAGE, **spec: Any) -> dict[str, Any]:
    """An Application with one streamlet `proc` reading from `src` (so it has wiring)."""
    proc: dict[str, Any] = {"name": "proc", "image": image, "inlets": ["in"]}
    key = {"apache": "flink", "lyft": "flink", "akka": "container"}.get(runtime, runtime)
    proc["runtime"] = {"apache": "flink", "lyft": "flink"}.get(runtime, runtime)
    if runtime in ("apache", "lyft"):
        proc["flinkOperator"] = runtime
    required = REQUIRED["container" if runtime == "akka" else runtime]
    if isinstance(block, dict):
        proc[key] = {**copy.deepcopy(required), **block}
    elif block is not None:
        proc[key] = block
    elif required:
        proc[key] = copy.deepcopy(required)
    return {
        "apiVersion": "federator.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": "app", "namespace": "team"},
        "spec": {
            "streamlets": [
                {"name": "src", "runtime": "container", "image": IMAGE, "outlets": ["out"]},
                proc,
            ],
            "connections": [{"from": "src.out", "to": ["proc.in"]}],
            **spec,
        },
    }


P = "spec.streamlets[1]"
CASES: list[tuple[str, str, Any, str, Code, str]] = [
    # id, runtime, block, path, code, a fragment of the message users rely on
    # --- the issue's cases
    (
        "issue-spark-namespace",
        "spark",
        {"namespace": "team-b"},
        f"{P}.spark.namespace",
        Code.CHILD_PLACEMENT,
        "in the Application's namespace 'team' (topics in their Kafka cluster's namespace)",
    ),
    (
        "issue-container-replicas-many",
        "container",
        {"replicas": "many"},
        f"{P}.container.replicas",
        Code.RUNTIME_FIELD,
        "Deployment spec.replicas must be an integer, not the string 'many'",
    ),
    (
        "issue-spark-driver-abc",
        "spark",
        {"driver": "abc"},
        f"{P}.spark.driver",
        Code.RUNTIME_FIELD,
        "SparkApplication spec.driver must be an object (a mapping of fields), not the string",
    ),
    # --- types and fields, against the vendored CRDs
    (
        "spark-quoted-number",
        "spark",
        {"executor": {"cores": "2"}},
        f"{P}.spark.executor.cores",
        Code.RUNTIME_FIELD,
        "must be an integer, not the string '2'; write the number without quotes",
    ),
    (
        "spark-unknown-field-suggests",
        "spark",
        {"driver": {"memroy": "1g"}},
        f"{P}.spark.driver.memroy",
        Code.RUNTIME_FIELD,
        "SparkApplication spec.driver has no field 'memroy' (did you mean 'memory'?)",
    ),
    (
        "spark-enum",
        "spark",
        {"restartPolicy": {"type": "Sometimes"}},
        f"{P}.spark.restartPolicy.type",
        Code.RUNTIME_FIELD,
        "'Sometimes' is not one of",
    ),
    (
        "apache-job-not-an-object",
        "apache",
        {"job": ["x"]},
        f"{P}.flink.job",
        Code.RUNTIME_FIELD,
        "FlinkDeployment spec.job must be an object",
    ),
    (
        "container-container-needs-a-name",
        "container",
        {"template": {"spec": {"containers": [{"image": "sidecar:1"}]}}},
        f"{P}.container.template.spec.containers[0].name",
        Code.RUNTIME_FIELD,
        "needs 'name'",
    ),
    (
        "apache-jobmanager-replicas",
        "apache",
        {"jobManager": {"replicas": "two"}},
        f"{P}.flink.jobManager.replicas",
        Code.RUNTIME_FIELD,
        "must be an integer",
    ),
    (
        "lyft-parallelism-type",
        "lyft",
        {"parallelism": "4"},
        f"{P}.flink.parallelism",
        Code.RUNTIME_FIELD,
        "FlinkApplication spec.parallelism must be an integer",
    ),
    (
        "lyft-typo-suggests",
        "lyft",
        {"paralelism": 4},
        f"{P}.flink.paralelism",
        Code.RUNTIME_FIELD,
        "FlinkApplication spec has no field 'paralelism' (did you mean 'parallelism'?)",
    ),
    (
        "lyft-another-operators-field",
        "lyft",
        {"sidecarContainers": [{"name": "envoy", "image": "envoy:1"}]},
        f"{P}.flink.sidecarContainers",
        Code.RUNTIME_FIELD,
        "FlinkApplication spec has no field 'sidecarContainers'",
    ),
    (
        "lyft-nested-typo-suggests",
        "lyft",
        {"taskManagerConfig": {"taskSlot": 2}},
        f"{P}.flink.taskManagerConfig.taskSlot",
        Code.RUNTIME_FIELD,
        "did you mean 'taskSlots'?",
    ),
    # --- types and fields, against the Deployment schema
    (
        "container-unknown-field-suggests",
        "container",
        {"replica": 2},
        f"{P}.container.replica",
        Code.RUNTIME_FIELD,
        "did you mean 'replicas'",
    ),
    (
        "container-negative-replicas",
        "container",
        {"replicas": -1},
        f"{P}.container.replicas",
        Code.RUNTIME_FIELD,
        "less than the minimum of 0",
    ),
    (
        "container-port-quoted",
        "container",
        {
            "template": {
                "spec": {"containers": [{"name": "proc", "ports": [{"containerPort": "80"}]}]}
            }
        },
        f"{P}.container.template.spec.containers[0].ports[0].containerPort",
        Code.RUNTIME_FIELD,
        "write the number without quotes",
    ),
    (
        "container-quantity",
        "container",
        {
            "template": {
                "spec": {
                    "containers": [{"name": "proc", "resources": {"limits": {"memory": "1g"}}}]
                }
            }
        },
        f"{P}.container.template.spec.containers[0].resources.limits.memory",
        Code.RUNTIME_FIELD,
        "must be a Kubernetes quantity such as 500m, 2, 1.5, 512Mi or 4Gi, not '1g'",
    ),
    (
        "container-env-not-a-list",
        "container",
        {"template": {"spec": {"containers": [{"name": "proc", "env": "A=1"}]}}},
        f"{P}.container.template.spec.containers[0].env",
        Code.RUNTIME_FIELD,
        "must be a list",
    ),
    (
        "container-restart-policy",
        "akka",
        {"template": {"spec": {"restartPolicy": "Never"}}},
        f"{P}.container.template.spec.restartPolicy",
        Code.RUNTIME_FIELD,
        "'Never' is not one of ['Always']",
    ),
    (
        "container-strategy-closed",
        "container",
        {"strategy": {"type": "Recreate", "rollingupdate": {}}},
        f"{P}.container.strategy.rollingupdate",
        Code.RUNTIME_FIELD,
        "did you mean 'rollingUpdate'",
    ),
    # --- placement
    (
        "spark-name",
        "spark",
        {"name": "other"},
        f"{P}.spark.name",
        Code.CHILD_PLACEMENT,
        "it is always 'app-proc' (<application>-<streamlet>)",
    ),
    (
        "spark-metadata",
        "spark",
        {"metadata": {"namespace": "team-b"}},
        f"{P}.spark.metadata",
        Code.CHILD_PLACEMENT,
        "the child's metadata is federator's (name 'app-proc', namespace 'team')",
    ),
    (
        "spark-conf-namespace",
        "spark",
        {"sparkConf": {"spark.kubernetes.namespace": "team-b"}},
        f"{P}.spark.sparkConf.spark.kubernetes.namespace",
        Code.CHILD_PLACEMENT,
        "would run the SparkApplication's pods in another namespace",
    ),
    (
        "apache-pod-template-namespace",
        "apache",
        {"podTemplate": {"metadata": {"namespace": "team-b"}}},
        f"{P}.flink.podTemplate.metadata.namespace",
        Code.CHILD_PLACEMENT,
        "pods cannot be moved to another namespace",
    ),
    (
        "apache-jobmanager-pod-template-namespace",
        "apache",
        {"jobManager": {"podTemplate": {"metadata": {"namespace": "team-b"}}}},
        f"{P}.flink.jobManager.podTemplate.metadata.namespace",
        Code.CHILD_PLACEMENT,
        "pods cannot be moved to another namespace",
    ),
    (
        "apache-flink-configuration-namespace",
        "apache",
        {"flinkConfiguration": {"kubernetes.namespace": "team-b"}},
        f"{P}.flink.flinkConfiguration.kubernetes.namespace",
        Code.CHILD_PLACEMENT,
        "would run the FlinkDeployment's pods in another namespace",
    ),
    (
        "apache-flink-configuration-nested-namespace",
        "apache",
        {"flinkConfiguration": {"kubernetes": {"namespace": "team-b"}}},
        f"{P}.flink.flinkConfiguration.kubernetes.namespace",
        Code.CHILD_PLACEMENT,
        "another namespace",
    ),
    (
        "lyft-namespace",
        "lyft",
        {"namespace": "team-b"},  # Lyft's spec keeps unknown fields: only this check sees it
        f"{P}.flink.namespace",
        Code.CHILD_PLACEMENT,
        "cannot choose the FlinkApplication's namespace ('team-b')",
    ),
    (
        "lyft-flink-config-namespace",
        "lyft",
        {"flinkConfig": {"kubernetes.namespace": "team-b"}},
        f"{P}.flink.flinkConfig.kubernetes.namespace",
        Code.CHILD_PLACEMENT,
        "another namespace",
    ),
    (
        "container-pod-template-namespace",
        "container",
        {"template": {"metadata": {"namespace": "team-b"}}},
        f"{P}.container.template.metadata.namespace",
        Code.CHILD_PLACEMENT,
        "federator creates every child of an Application in the Application's namespace",
    ),
    # --- images
    (
        "streamlet-image-uppercase",
        "container",
        None,
        f"{P}.image",
        Code.INVALID_IMAGE,
        "the repository name must be lower case; write [registry[:port]/]repository[:tag]",
    ),
    (
        "spark-executor-image",
        "spark",
        {"executor": {"image": "registry.example.com/spark:3.5 "}},
        f"{P}.spark.executor.image",
        Code.INVALID_IMAGE,
        "white space",
    ),
    (
        "spark-sidecar-image",
        "spark",
        {"driver": {"sidecars": [{"name": "proxy", "image": "envoy:.1"}]}},
        f"{P}.spark.driver.sidecars[0].image",
        Code.INVALID_IMAGE,
        "tag '.1'",
    ),
    (
        "apache-pod-template-image",
        "apache",
        {
            "podTemplate": {
                "spec": {"containers": [{"name": "flink-main-container", "image": "a//b"}]}
            }
        },
        f"{P}.flink.podTemplate.spec.containers[0].image",
        Code.INVALID_IMAGE,
        "empty path component",
    ),
    (
        "spark-conf-image",
        "spark",
        {"sparkConf": {"spark.kubernetes.executor.container.image": "Spark:3"}},
        f"{P}.spark.sparkConf.spark.kubernetes.executor.container.image",
        Code.INVALID_IMAGE,
        "lower case",
    ),
    (
        "apache-flink-configuration-image",
        "apache",
        {"flinkConfiguration": {"kubernetes.container.image.ref": "flink:"}},
        f"{P}.flink.flinkConfiguration.kubernetes.container.image.ref",
        Code.INVALID_IMAGE,
        "not a valid image reference",
    ),
    (
        "lyft-image-digest",
        "lyft",
        {"image": "flink@sha256:abc"},
        f"{P}.flink.image",
        Code.INVALID_IMAGE,
        "digest 'sha256:abc' must be sha256:<64 hexadecimal digits>",
    ),
    (
        "container-init-container-image",
        "container",
        {"template": {"spec": {"initContainers": [{"name": "init", "image": "Init:1"}]}}},
        f"{P}.container.template.spec.initContainers[0].image",
        Code.INVALID_IMAGE,
        "lower case",
    ),
    (
        "container-image-volume",
        "container",
        {"template": {"spec": {"volumes": [{"name": "v", "image": {"reference": "Bad Ref"}}]}}},
        f"{P}.container.template.spec.volumes[0].image.reference",
        Code.INVALID_IMAGE,
        "white space",
    ),
]


def _body(runtime: str, block: Any, case_id: str) -> dict[str, Any]:
    if case_id == "streamlet-image-uppercase":
        return app(runtime, block, image="registry.example.com/Team/proc:1")
    return app(runtime, block)


@pytest.mark.parametrize(
    ("body", "path", "code", "fragment"),
    [(_body(runtime, block, case_id), *rest) for case_id, runtime, block, *rest in CASES],
    ids=[c[0] for c in CASES],
)
def test_each_problem_has_code_path_and_message(
    body: dict[str, Any], path: str, code: Code, fragment: str
) -> None:
    problems = validation.validate(body, SETTINGS).problems
    matching = [p for p in problems if p.code is code and p.path == path]
    assert matching, f"expected {code.value} at {path}, got: {[str(p) for p in problems]}"
    assert any(fragment in p.message for p in matching), [p.message for p in matching]


VALID: dict[str, tuple[str, Any]] = {
    # Fields federator renders are never required of the user's partial block.
    "spark-partial-driver": ("spark", {"driver": {"cores": 2}, "executor": {"memory": "2g"}}),
    "apache-pod-spec-without-containers": (
        "apache",
        {"podTemplate": {"spec": {"serviceAccountName": "flink"}}},
    ),
    "apache-nested-flink-configuration": (
        "apache",
        {"flinkConfiguration": {"state": {"backend": {"type": "rocksdb"}}}},
    ),
    # Fields Lyft's operator reads that its CRD does not declare.
    "lyft-undeclared-operator-fields": (
        "lyft",
        {"uiPort": 8081, "forceRollback": False, "tearDownVersionHash": "abc"},
    ),
    "lyft-declared-fields": (
        "lyft",
        {
            "parallelism": 4,
            "fallbackWithoutState": True,
            "jobManagerConfig": {"nodeSelector": {"pool": "flink"}},
        },
    ),
    "container-open-pod-fields": (
        "container",
        {
            "template": {
                "spec": {
                    "shareProcessNamespace": True,
                    "containers": [
                        {"name": "proc", "stdin": True, "resources": {"limits": {"cpu": 0.5}}}
                    ],
                }
            }
        },
    ),
    "container-rbd-image-is-a-volume-name": (
        "container",
        {
            "template": {
                "spec": {
                    "volumes": [
                        {"name": "ceph", "rbd": {"image": "Not An Image", "monitors": ["m:6789"]}}
                    ]
                }
            }
        },
    ),
    "container-digest-image": (
        "container",
        {
            "template": {
                "spec": {
                    "containers": [
                        {"name": "sidecar", "image": f"localhost:5000/envoy@sha256:{'0' * 64}"}
                    ]
                }
            }
        },
    ),
    "container-full-deployment-spec": (
        "container",
        {
            "replicas": 3,
            "minReadySeconds": 5,
            "revisionHistoryLimit": 2,
            "progressDeadlineSeconds": 600,
            "paused": False,
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%"}},
            "template": {"metadata": {"labels": {"tier": "stream"}, "annotations": {"a": "b"}}},
        },
    ),
}


@pytest.mark.parametrize(("runtime", "block"), list(VALID.values()), ids=list(VALID))
def test_valid_blocks_compile(runtime: str, block: Any) -> None:
    body = app(runtime, block)
    assert validation.validate(body, SETTINGS).problems == ()
    compiler.compile_application(body, SETTINGS)


EXAMPLES = sorted(p.name for p in examples_dir().glob("*.yaml") if p.name != "settings.yaml")


@pytest.mark.parametrize("name", EXAMPLES)
def test_every_example_still_validates(
    name: str, example_loader: Callable[[str], dict[str, Any]], example_settings: Settings
) -> None:
    assert validation.validate(example_loader(name), example_settings).problems == ()


def test_every_problem_of_every_block_at_once() -> None:
    body = app("container", {"replicas": "many", "template": {"metadata": {"namespace": "x"}}})
    body["spec"]["streamlets"][0]["image"] = "Bad Image"
    body["spec"]["streamlets"].append(
        {"name": "sp", "runtime": "spark", "image": IMAGE, "spark": {"driver": "abc"}}
    )
    found = {(p.path, p.code) for p in validation.validate(body, SETTINGS).problems}
    assert {
        ("spec.streamlets[0].image", Code.INVALID_IMAGE),
        (f"{P}.container.replicas", Code.RUNTIME_FIELD),
        (f"{P}.container.template.metadata.namespace", Code.CHILD_PLACEMENT),
        ("spec.streamlets[2].spark.driver", Code.RUNTIME_FIELD),
        ("spec.streamlets[2].spark.mainApplicationFile", Code.SCHEMA),
    } <= found


def test_a_placement_problem_is_not_echoed_as_an_unknown_field() -> None:
    problems = validation.validate(app("spark", {"namespace": "team-b"}), SETTINGS).problems
    assert [(p.path, p.code) for p in problems] == [(f"{P}.spark.namespace", Code.CHILD_PLACEMENT)]


def test_a_missing_or_empty_image_is_reported_once() -> None:
    body = app("container")
    del body["spec"]["streamlets"][1]["image"]
    problems = validation.validate(body, SETTINGS).problems
    assert [(p.path, p.code) for p in problems] == [(f"{P}.image", Code.SCHEMA)]


@pytest.mark.parametrize(
    "delegate", [d for d in delegates.ALL if d is not delegates.KAFKA_TOPIC], ids=lambda d: d.kind
)
def test_every_streamlet_delegate_has_a_spec_schema(delegate: delegates.Delegate) -> None:
    schema = blockcheck.spec_schema(delegate)
    assert schema.get("type") == "object" and schema.get("properties")


# --- render never drops a user value ------------------------------------------------------------

BYPASSED: dict[str, tuple[str, Any, str, dict[str, Any]]] = {
    # id: runtime, block, path of the refusal, extra spec
    "spark-driver-string": ("spark", {"driver": "abc"}, f"{P}.spark.driver", {}),
    "container-containers-mapping": (
        "container",
        {"template": {"spec": {"containers": {"name": "proc"}}}},
        f"{P}.container.template.spec.containers",
        {},
    ),
    "container-env-string": (
        "container",
        {"template": {"spec": {"containers": [{"name": "sidecar"}, {"name": "proc", "env": "x"}]}}},
        f"{P}.container.template.spec.containers[1].env",
        {},
    ),
    "lyft-env-config-null": (
        "lyft",
        {"jobManagerConfig": {"envConfig": None}},
        f"{P}.flink.jobManagerConfig.envConfig",
        {},
    ),
    "apache-suspended-job-list": ("apache", {"job": ["x"]}, f"{P}.flink.job", {"suspend": True}),
}


@pytest.mark.parametrize(
    ("runtime", "block", "path", "extra"), list(BYPASSED.values()), ids=list(BYPASSED)
)
def test_render_refuses_what_validation_refuses(
    runtime: str, block: Any, path: str, extra: dict[str, Any]
) -> None:
    """Even with validation bypassed, a wrong type is refused at its path, never replaced."""
    body = app(runtime, block, **extra)
    result = validation.validate(body, SETTINGS)
    assert any(p.path == path for p in result.problems), result.problems
    with pytest.raises(InvalidSpec) as raised:
        render.render(result.topology, SETTINGS, TargetApis.offline())
    assert [(p.path, p.code) for p in raised.value.problems] == [(path, Code.RUNTIME_FIELD)]


WIRED_PATHS: dict[str, list[tuple[str, ...]]] = {
    "spark": [("driver",), ("executor",), ("driver", "env"), ("executor", "env")],
    "apache": [("podTemplate",), ("podTemplate", "spec"), ("podTemplate", "spec", "containers")],
    "lyft": [
        ("jobManagerConfig",),
        ("taskManagerConfig", "envConfig"),
        ("jobManagerConfig", "envConfig", "env"),
    ],
    "container": [("template",), ("template", "spec"), ("template", "spec", "containers")],
}
_scalar = st.none() | st.booleans() | st.integers(-2, 3) | st.text(max_size=4)
_values = _scalar | st.lists(_scalar | st.fixed_dictionaries({"name": st.just("x")}), max_size=2)


@hsettings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    where=st.sampled_from([(r, p) for r, paths in WIRED_PATHS.items() for p in paths]),
    value=_values,
)
def test_a_value_at_a_wired_path_is_refused_or_kept(
    where: tuple[str, tuple[str, ...]], value: Any
) -> None:
    runtime, path = where
    block: dict[str, Any] = {}
    node = block
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = value
    body = app(runtime, block)
    result = validation.validate(body, SETTINGS)
    key = "flink" if runtime in ("apache", "lyft") else runtime
    user_path = ".".join((f"{P}.{key}", *path))
    if not result.ok:
        assert any(p.path.startswith(user_path) for p in result.problems), result.problems
        return
    children = compiler.compile_application(body, SETTINGS).children
    (child,) = [c for c in children if c.streamlet == "proc"]
    rendered: Any = child.manifest["spec"]
    for key in path:
        rendered = rendered[key]
    if isinstance(value, list):
        assert all(item in rendered for item in value)  # wiring may be added, nothing dropped
    else:
        assert rendered == value


LYFT_SPEC_FIELDS = frozenset(
    [
        "image",
        "imagePullPolicy",
        "imagePullSecrets",
        "serviceAccountName",
        "securityContext",
        "flinkConfig",
        "flinkVersion",
        "taskManagerConfig",
        "jobManagerConfig",
        "jarName",
        "parallelism",
        "entryClass",
        "programArgs",
        "savepointInfo",
        "savepointPath",
        "savepointDisabled",
        "deploymentMode",
        "rpcPort",
        "blobPort",
        "queryPort",
        "uiPort",
        "metricsQueryPort",
        "volumes",
        "volumeMounts",
        "restartNonce",
        "deleteMode",
        "scaleMode",
        "allowNonRestoredState",
        "forceRollback",
        "maxCheckpointRestoreAgeSeconds",
        "tearDownVersionHash",
        "fallbackWithoutState",
    ]
)
"""The JSON names of the Lyft operator's FlinkApplicationSpec (lyft/flinkk8soperator
pkg/apis/app/v1beta1/types.go at 2099cc0, the commit the vendored CRD comes from)."""


def test_a_lyft_block_is_checked_against_exactly_the_fields_its_operator_reads() -> None:
    lyft = delegates.FLINK_APPLICATION
    declared = set(blockcheck.spec_schema(lyft)["properties"])
    assert set(lyft.undeclared_spec_fields or {}).isdisjoint(declared)
    assert declared | set(lyft.undeclared_spec_fields or {}) == LYFT_SPEC_FIELDS
    for field in LYFT_SPEC_FIELDS - {"jarName", "entryClass", "image"}:
        body = app("lyft", {field: None})
        unknown = [
            p for p in validation.validate(body, SETTINGS).problems if "no field" in p.message
        ]
        assert unknown == [], field
