"""Validate an Application body: the CRD's own schema, its CEL rules, then the semantics.

Every problem of a spec is reported at once, each with its path. The schema comes from
`crds/application.yaml`, the same file the API server enforces, so offline validation and
admission can never disagree on shape. The CEL rules of that file are mirrored here (the API
server evaluates CEL; we cannot), and the cross-item checks the API server cannot make
(references, one topic per port, schema compatibility, cycles) follow.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from federator.core import (
    blockcheck,
    limits,
    model,
    openapi,
    plainyaml,
    quickcheck,
    topicpolicy,
    topology,
)
from federator.core.appkind import API_VERSION, KIND
from federator.core.delegates import FLINK_APPLICATION, FLINK_DEPLOYMENT, TargetApis
from federator.core.model import Application, Runtime
from federator.core.problems import Code, Problem, format_path, suggest
from federator.core.resources import application_crd_path
from federator.core.settings import FlinkOperator, Settings

if TYPE_CHECKING:
    import jsonschema
    from jsonschema.protocols import Validator

_SESSION_NAME_MAX = FLINK_DEPLOYMENT.name_limit
_SESSION_NAME = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
"""A session cluster's FlinkDeployment name: what `flinkSession` must be to name one."""
_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


@dataclass(frozen=True, kw_only=True)
class Result:
    """The outcome of validation: the problems and, when readable, the model and topology."""

    problems: tuple[Problem, ...]
    app: Application
    topology: topology.Topology

    @property
    def ok(self) -> bool:
        return not self.problems


@lru_cache(maxsize=1)
def application_crd() -> Mapping[str, Any]:
    crd: Mapping[str, Any] = plainyaml.load(application_crd_path().read_text(encoding="utf-8"))
    return crd


@lru_cache(maxsize=1)
def _json_schema() -> Mapping[str, Any]:
    (schema,) = openapi.crd_versions(application_crd()).values()
    converted: Mapping[str, Any] = openapi.to_json_schema(schema)
    return converted


@lru_cache(maxsize=1)
def _validator() -> Validator:
    return openapi.json_schema_validator(_json_schema())


def _schema_problem(error: jsonschema.ValidationError) -> Problem:
    parts = list(error.absolute_path)
    path = format_path(parts) or "(root)"
    if error.validator == "required":
        missing = re.match(r"'([^']+)'", error.message)
        if missing:
            return Problem(
                path=format_path([*parts, missing.group(1)]),
                code=Code.SCHEMA,
                message="required field is missing",
            )
    if error.validator == "additionalProperties":
        known = error.schema.get("properties", {}) if isinstance(error.schema, Mapping) else {}
        extra = sorted(set(error.instance) - set(known)) if isinstance(error.instance, dict) else []
        if extra:
            field = extra[0]
            return Problem(
                path=format_path([*parts, field]),
                code=Code.SCHEMA,
                message=f"unknown field {field!r}"
                + suggest(field, known)
                + ("" if len(extra) == 1 else f" (also unknown: {', '.join(extra[1:])})"),
            )
    if parts and parts[-1] == "runtime" and error.validator == "enum":
        return Problem(
            path=path,
            code=Code.UNKNOWN_RUNTIME,
            message=f"unknown runtime {error.instance!r}"
            + suggest(str(error.instance), model.RUNTIME_NAMES),
        )
    if len(parts) >= 3 and parts[0:2] == ["spec", "topics"] and parts[-1] == "name":
        return Problem(
            path=path,
            code=Code.INVALID_TOPIC_NAME,
            message=f"{error.instance!r} is not a valid Kafka topic name "
            "(1-249 characters of [a-zA-Z0-9._-])",
        )
    return Problem(path=path, code=Code.SCHEMA, message=error.message)


@lru_cache(maxsize=1)
def _certainly_valid() -> quickcheck.Check | None:
    return quickcheck.compile(_json_schema())


def schema_problems(body: Mapping[str, Any]) -> list[Problem]:
    """Shape problems against the CRD schema (status is the operator's, never validated here).
    A valid body, the common case, is recognised by `quickcheck` at a tenth of the cost."""
    subject = {k: v for k, v in body.items() if k != "status"}
    quick = _certainly_valid()
    if quick is not None and quick(subject):
        return []
    errors = sorted(_validator().iter_errors(subject), key=lambda e: list(map(str, e.path)))
    return [_schema_problem(e) for e in errors]


def _envelope_problems(body: Mapping[str, Any]) -> list[Problem]:
    out = []
    if body.get("apiVersion") != API_VERSION or body.get("kind") != KIND:
        out.append(
            Problem(
                path="(root)",
                code=Code.SCHEMA,
                message=f"expected apiVersion {API_VERSION} and kind {KIND}, got "
                f"{body.get('apiVersion')!r} / {body.get('kind')!r}",
            )
        )
    metadata = body.get("metadata")
    name = metadata.get("name") if isinstance(metadata, Mapping) else None
    if not isinstance(name, str) or not _SUBDOMAIN.match(name) or len(name) > 253:
        out.append(
            Problem(
                path="metadata.name",
                code=Code.SCHEMA,
                message=f"{name!r} is not a valid name (a DNS-1123 subdomain: lower-case "
                "letters, digits, '-' and '.', at most 253 characters)",
            )
        )
    if not isinstance(body.get("spec"), Mapping):
        out.append(Problem(path="spec", code=Code.SCHEMA, message="spec is required"))
    return out


def _cel_mirror(app: Application) -> Iterable[Problem]:
    """The CRD's per-item CEL rules, as the API server would report them (S1, S6, S7, S8; the
    runtime-block rules S2-S4 need the raw body, S5 and the topic rules live in topology)."""
    for s in app.streamlets:
        if s.flink_operator is not None and s.runtime is not Runtime.FLINK:
            yield Problem(
                path=f"{s.path}.flinkOperator",
                code=Code.RUNTIME_BLOCK,
                message="flinkOperator is only allowed when runtime is flink",
            )
        if s.flink_session is not None and (
            s.runtime is not Runtime.FLINK or s.flink_operator not in (None, FlinkOperator.APACHE)
        ):
            yield Problem(
                path=f"{s.path}.flinkSession",
                code=Code.RUNTIME_BLOCK,
                message="flinkSession is only allowed for flink streamlets on the Apache Flink "
                "operator (a FlinkSessionJob)",
            )
        session = s.flink_session
        if session is not None and (
            len(session) > _SESSION_NAME_MAX or not _SESSION_NAME.fullmatch(session)
        ):
            yield Problem(
                path=f"{s.path}.flinkSession",
                code=Code.SCHEMA,
                message=f"{session!r} cannot name a Flink session cluster: a "
                "FlinkDeployment name is a DNS-1035 label (lower-case letters, digits and '-', "
                "starting with a letter and ending with a letter or digit; its Services are "
                f"named after it) of at most {_SESSION_NAME_MAX} characters",
            )
        ports = {*s.inlets, *s.outlets}
        for port in sorted(set(s.schemas) - ports):
            yield Problem(
                path=f"{s.path}.schemas.{port}",
                code=Code.INVALID_PORT_SCHEMA,
                message=f"schema for {port!r}, which is not a port of {s.name!r}"
                + suggest(port, ports),
            )
        if s.replicas == 0 and s.runtime is not Runtime.CONTAINER:
            yield Problem(
                path=f"{s.path}.replicas",
                code=Code.SCHEMA,
                message="replicas 0 is only allowed for container streamlets; use spec.suspend "
                "to stop spark or flink streamlets",
            )


def _runtime_block_problems(body: Mapping[str, Any]) -> Iterable[Problem]:
    spec = body.get("spec")
    streamlets = spec.get("streamlets") if isinstance(spec, Mapping) else None
    if not isinstance(streamlets, list):
        return
    for i, raw in enumerate(streamlets):
        if not isinstance(raw, Mapping):
            continue
        runtime = model.parse_runtime(raw.get("runtime"))
        for block in ("spark", "flink", "container"):
            if block in raw and runtime is not None and runtime.value != block:
                yield Problem(
                    path=f"spec.streamlets[{i}].{block}",
                    code=Code.RUNTIME_BLOCK,
                    message=f"the {block} block is only allowed when runtime is {block}"
                    + (" or akka" if block == "container" else "")
                    + f"; this streamlet's runtime is {raw.get('runtime')!r}",
                )


def _required_runtime_fields(app: Application, settings: Settings) -> Iterable[Problem]:
    from federator.core.render import delegate_for  # render imports validation's neighbours

    served = TargetApis.offline()
    for s in app.streamlets:
        delegate = delegate_for(s, settings, served)
        block = s.runtime.value
        for field_path in delegate.required:
            node: Any = s.overrides
            for part in field_path:
                node = node.get(part) if isinstance(node, Mapping) else None
            if node in (None, ""):
                yield Problem(
                    path=f"{s.path}.{block}.{'.'.join(field_path)}",
                    code=Code.SCHEMA,
                    message=f"required for {delegate.kind} ({delegate.group}): set "
                    f"{block}.{'.'.join(field_path)} on this streamlet",
                )
        if app.suspend and delegate is FLINK_APPLICATION:
            yield Problem(
                path="spec.suspend",
                code=Code.RUNTIME_BLOCK,
                message=f"streamlet {s.name!r} runs on Lyft's FlinkApplication, which cannot be "
                "suspended; use flinkOperator: apache or remove spec.suspend",
            )


def _cluster_problems(app: Application, settings: Settings) -> Iterable[Problem]:
    if settings.kafka_cluster(app.kafka_cluster) is None:
        names = settings.kafka_cluster_names
        yield Problem(
            path="spec.kafka.cluster",
            code=Code.UNKNOWN_KAFKA_CLUSTER,
            message=f"unknown Kafka cluster {app.kafka_cluster!r}"
            + (suggest(app.kafka_cluster, names) if names else "; the settings declare none")
            + "; the platform team declares named clusters in the operator settings",
        )


def _service_account_problems(app: Application, settings: Settings) -> Iterable[Problem]:
    """Under the platform's lock-down (`impersonation.requireServiceAccount`), children are
    never written with federator's own identity: an Application must name a ServiceAccount
    of its namespace, unless the settings give a default."""
    policy = settings.impersonation
    if policy.require_service_account and policy.service_account(app.service_account) is None:
        yield Problem(
            path="spec.serviceAccountName",
            code=Code.SERVICE_ACCOUNT_REQUIRED,
            message="this installation writes every application's children with the rights of "
            f"a ServiceAccount of its namespace ({app.namespace}), and this application names "
            "none: set spec.serviceAccountName to a ServiceAccount whose Role allows creating, "
            "patching and deleting its children (Deployments, SparkApplications, "
            "FlinkDeployments or FlinkApplications)",
        )


# ASCII digits only: str.isdigit() also accepts '²', which int() refuses (found by hypothesis).
_NUM = re.compile(r"([0-9]+)")


def _order_key(problem: Problem) -> tuple[Any, ...]:
    parts = _NUM.split(problem.path)
    numbered = (int(p) if i % 2 else p for i, p in enumerate(parts))
    return tuple(numbered), problem.code.value, problem.message


def validate(body: Mapping[str, Any], settings: Settings) -> Result:
    """Every problem of `body`, plus the model and topology built from what is readable."""
    if not isinstance(body, Mapping):
        body = {}
    problems = _envelope_problems(body)
    if oversized := limits.streamlet_problems(body, settings.limits):
        empty = model.from_body({"metadata": body.get("metadata")})
        return Result(
            problems=tuple(problems + oversized), app=empty, topology=topology.build(empty)[0]
        )
    problems += schema_problems(body)
    app = model.from_body(body)
    problems += _cel_mirror(app)
    problems += _runtime_block_problems(body)
    topo, semantic = topology.build(app, topicpolicy.implicit_prefix(app, settings))
    problems += semantic
    problems += limits.children_problems(
        len(app.streamlets), sum(1 for t in topo.topics if t.managed), settings.limits
    )
    problems += _cluster_problems(app, settings)
    problems += topicpolicy.problems(app, settings)
    problems += _required_runtime_fields(app, settings)
    problems += blockcheck.problems(app, settings)
    problems += _service_account_problems(app, settings)
    # One report per place: a schema problem at a path hides semantic echoes of it.
    schema_paths = {p.path for p in problems if p.code in (Code.SCHEMA, Code.INVALID_TOPIC_NAME)}
    unique: dict[tuple[str, str], Problem] = {}
    for p in problems:
        if p.code not in (Code.SCHEMA, Code.INVALID_TOPIC_NAME) and p.path in schema_paths:
            continue
        # The schema and the topology both check topic names: one report per name.
        key = p.message if p.code is not Code.INVALID_TOPIC_NAME else p.code.value
        unique.setdefault((p.path, key), p)
    return Result(problems=tuple(sorted(unique.values(), key=_order_key)), app=app, topology=topo)
