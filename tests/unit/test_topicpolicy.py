"""The topic naming policy of a shared Kafka cluster (issue 10 §2): settings, names, problems.

Aspects covered:
- settings: `allowedNamespaces` and `topicPrefix` of a Kafka cluster parse; bad values fail with
  a SettingsError naming the key (unknown placeholders, format specs, characters Kafka refuses,
  a prefix one team's could begin another's, no room left for a name, wrong types);
- defaults unchanged: without the keys (or with them empty) every example compiles to exactly
  the same children, with the seed's Cloudflow names for topics and consumer groups;
- the prefix starts every implicit topic (`spec.topicName` and the KafkaTopic's name) and every
  consumer group id;
- a managed explicit topic without the prefix is a problem at `spec.topics[i].name` naming the
  expected prefix; unmanaged topics are exempt; a namespace not allowed to use the cluster is a
  problem at `spec.kafka.cluster` naming the clusters it may use;
- with the recommended setting two teams cannot collide: the issue's case, and hypothesis over
  namespaces, application and topic names (Kafka's '.'/'_' equivalence included);
- naming limits: prefixed names stay valid Kafka and Kubernetes names, or are a clear problem;
- a topic owned by another application is held, naming its owner.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from federator.core import compiler, delegates, health, naming, validation
from federator.core.model import DeletionPolicy
from federator.core.plan import REASON_OWNED_ELSEWHERE, Observed, Plan, make_plan
from federator.core.problems import Code, InvalidSpec
from federator.core.render import Child
from federator.core.settings import Settings, SettingsError, parse_settings
from federator.core.topicpolicy import TopicPolicy, template_error

EXAMPLES_DIR = Path(__file__).resolve().parents[2] / "examples"
EXAMPLES = tuple(sorted(p.name for p in EXAMPLES_DIR.glob("*.yaml") if p.name != "settings.yaml"))
CLUSTER = {
    "name": "default",
    "strimziCluster": "main",
    "namespace": "kafka",
    "bootstrapServers": "main-kafka-bootstrap.kafka.svc:9092",
}
RECOMMENDED = {"topicPrefix": "{namespace}.", "allowedNamespaces": ["team-a", "team-b"]}
"""What the chart's values.yaml recommends when several teams share a cluster."""


def settings_with(**policy: Any) -> Settings:
    """One cluster `default` with `policy`, and an unrestricted `open` cluster."""
    other = {**CLUSTER, "name": "open", "namespace": "kafka-open"}
    return parse_settings({"kafkaClusters": [{**CLUSTER, **policy}, other]})


def app(name: str = "orders", namespace: str = "team-a", **spec: Any) -> dict[str, Any]:
    """`src.out` -> `sink.in`, through the implicit topic unless `spec` says otherwise."""
    body: dict[str, Any] = {
        "apiVersion": "federator.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": name, "namespace": namespace, "uid": f"uid-{namespace}-{name}"},
        "spec": {
            "streamlets": [
                {"name": "src", "runtime": "container", "image": "i", "outlets": ["out"]},
                {"name": "sink", "runtime": "container", "image": "i", "inlets": ["in"]},
            ],
            "connections": [{"from": "src.out", "to": ["sink.in"]}],
        },
    }
    body["spec"].update(spec)
    return body


def explicit(topic: str, **extra: Any) -> dict[str, Any]:
    """The issue's explicit topic: `src.out` -> `sink.in` through `topic`, 1 partition."""
    return {
        "connections": [],
        "topics": [
            {
                "name": topic,
                "producers": ["src.out"],
                "consumers": ["sink.in"],
                "partitions": 1,
                "config": {"retention.ms": "1"},
                **extra,
            }
        ],
    }


def topic_names(children: tuple[Child, ...]) -> set[str]:
    return {c.manifest["spec"]["topicName"] for c in children if c.kind == "KafkaTopic"}


def contexts(node: Any) -> Iterator[dict[str, Any]]:
    """Every FEDERATOR_CONTEXT a manifest hands its streamlet, wherever the template put it."""
    if isinstance(node, Mapping):
        if node.get("name") == "FEDERATOR_CONTEXT" and isinstance(node.get("value"), str):
            yield json.loads(node["value"])
        for value in node.values():
            yield from contexts(value)
    elif isinstance(node, list):
        for item in node:
            yield from contexts(item)


def group_ids(children: tuple[Child, ...]) -> set[str]:
    return {
        inlet["groupId"]
        for c in children
        for ctx in contexts(c.manifest)
        for inlet in ctx["inlets"].values()
    }


# --- settings ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        ({}, TopicPolicy()),
        ({"topicPrefix": "", "allowedNamespaces": []}, TopicPolicy()),
        ({"topicPrefix": None, "allowedNamespaces": None}, TopicPolicy()),
        (
            RECOMMENDED,
            TopicPolicy(topic_prefix="{namespace}.", allowed_namespaces=("team-a", "team-b")),
        ),
        ({"topicPrefix": "{namespace}_{application}."}, None),
        ({"topicPrefix": "kafka.{namespace}."}, None),
        ({"topicPrefix": "{application}."}, None),
        ({"topicPrefix": "shared."}, None),
    ],
    ids=[
        "absent",
        "empty",
        "null",
        "recommended",
        "namespace-and-application",
        "literal-first",
        "application-only",
        "fixed",
    ],
)
def test_policy_settings_parse(policy: dict[str, Any], expected: TopicPolicy | None) -> None:
    """`None`: the template as given, every namespace allowed."""
    cluster = settings_with(**policy).kafka_cluster("default")
    assert cluster is not None
    assert cluster.topic_policy == (expected or TopicPolicy(topic_prefix=policy["topicPrefix"]))
    assert template_error(cluster.topic_policy.topic_prefix) is None


BAD_POLICIES = [
    ({"topicPrefix": "{team}."}, "topicPrefix: unknown placeholder {team}", "unknown-placeholder"),
    ({"topicPrefix": "{}."}, "topicPrefix: unknown placeholder {}", "positional"),
    ({"topicPrefix": "{namespace.x}."}, "unknown placeholder {namespace.x}", "attribute"),
    ({"topicPrefix": "{namespace!r}."}, "no conversion or format spec", "conversion"),
    ({"topicPrefix": "{namespace:>9}."}, "no conversion or format spec", "format-spec"),
    ({"topicPrefix": "{namespace"}, "topicPrefix: '{namespace' is not a template", "unclosed"),
    ({"topicPrefix": "team/{namespace}."}, "characters Kafka refuses", "slash"),
    ({"topicPrefix": "{{namespace}}."}, "characters Kafka refuses", "escaped-braces"),
    ({"topicPrefix": "{namespace}"}, "{namespace} must be the first placeholder", "no-separator"),
    ({"topicPrefix": "{namespace}-"}, "followed by '.' or '_'", "dash-separator"),
    ({"topicPrefix": "{application}.{namespace}."}, "must be the first", "application-first"),
    ({"topicPrefix": "k" * 249}, "leaves no room for a topic name", "too-long"),
    ({"topicPrefix": 7}, "topicPrefix: expected a string", "not-a-string"),
    ({"allowedNamespaces": "team-a"}, "allowedNamespaces: expected a list", "not-a-list"),
    ({"allowedNamespaces": ["Team_A"]}, "allowedNamespaces: expected a list", "not-a-namespace"),
    ({"allowedNamespace": ["team-a"]}, "unknown key(s) allowedNamespace", "typo"),
]


@pytest.mark.parametrize(
    ("policy", "fragment"), [p[:2] for p in BAD_POLICIES], ids=[p[2] for p in BAD_POLICIES]
)
def test_bad_policy_settings_name_the_key(policy: dict[str, Any], fragment: str) -> None:
    with pytest.raises(SettingsError) as raised:
        settings_with(**policy)
    assert str(raised.value).startswith("settings.kafkaClusters[0]")
    assert fragment in str(raised.value)


# --- defaults unchanged -------------------------------------------------------------------------


def cloudflow_topics(body: Mapping[str, Any]) -> set[str]:
    """The seed's names: explicit managed topics, else `<app>.<streamlet>.<outlet>`."""
    spec = body["spec"]
    topics = spec.get("topics", [])
    produced = {p for t in topics for p in t.get("producers", [])}
    implicit = {
        f"{body['metadata']['name']}.{s['name']}.{o}"
        for s in spec["streamlets"]
        for o in s.get("outlets", [])
        if f"{s['name']}.{o}" not in produced
    }
    return implicit | {t["name"] for t in topics if t.get("managed", True)}


@pytest.mark.parametrize("example", EXAMPLES)
def test_without_a_policy_examples_keep_the_seed_names(
    example: str, example_loader: Callable[[str], dict[str, Any]], example_settings: Settings
) -> None:
    body = example_loader(example)
    settings = example_settings
    assert all(c.topic_policy == TopicPolicy() for c in settings.kafka_clusters)
    children = compiler.compile_application(copy.deepcopy(body), settings).children
    assert topic_names(children) == cloudflow_topics(body)
    name = body["metadata"]["name"]
    expected_groups = {
        f"{name}.{s['name']}.{i}" for s in body["spec"]["streamlets"] for i in s.get("inlets", [])
    }
    assert group_ids(children) == expected_groups
    # Spelling the defaults out changes nothing at all.
    spelled = parse_settings(
        {
            "kafkaClusters": [
                {
                    "name": c.name,
                    "strimziCluster": c.strimzi_cluster,
                    "namespace": c.namespace,
                    "bootstrapServers": c.bootstrap_servers,
                    "topicApiVersion": c.topic_api_version.value,
                    "allowedNamespaces": [],
                    "topicPrefix": "",
                }
                for c in settings.kafka_clusters
            ]
        }
    )
    again = compiler.compile_application(copy.deepcopy(body), spelled).children
    assert [c.manifest for c in again] == [c.manifest for c in children]


# --- the prefix on implicit names -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "topic", "group"),
    [
        ("", "orders.src.out", "orders.sink.in"),
        ("{namespace}.", "team-a.orders.src.out", "team-a.orders.sink.in"),
        ("{namespace}_", "team-a_orders.src.out", "team-a_orders.sink.in"),
        (
            "{namespace}.{application}.",
            "team-a.orders.orders.src.out",
            "team-a.orders.orders.sink.in",
        ),
        ("kafka.{namespace}.", "kafka.team-a.orders.src.out", "kafka.team-a.orders.sink.in"),
        ("shared.", "shared.orders.src.out", "shared.orders.sink.in"),
    ],
    ids=["none", "namespace-dot", "namespace-underscore", "with-application", "literal", "fixed"],
)
def test_the_prefix_starts_implicit_topics_and_consumer_groups(
    template: str, topic: str, group: str
) -> None:
    compiled = compiler.compile_application(app(), settings_with(topicPrefix=template))
    (kafka_topic,) = [c for c in compiled.children if c.kind == "KafkaTopic"]
    assert kafka_topic.topic == kafka_topic.manifest["spec"]["topicName"] == topic
    assert kafka_topic.name == naming.topic_resource_name(topic)
    sink = next(c for c in compiled.children if c.streamlet == "sink")
    src = next(c for c in compiled.children if c.streamlet == "src")
    assert sink.topics == src.topics == (topic,)  # what the streamlets wait for
    (ctx,) = set(map(json.dumps, contexts(sink.manifest)))
    assert json.loads(ctx)["inlets"]["in"] == {"topic": topic, "groupId": group}
    (ctx,) = set(map(json.dumps, contexts(src.manifest)))
    assert json.loads(ctx)["outlets"]["out"] == {"topic": topic}


def test_an_unknown_cluster_gets_no_prefix_and_one_problem() -> None:
    result = validation.validate(
        app(kafka={"cluster": "nope"}), settings_with(topicPrefix="{namespace}.")
    )
    assert [(p.path, p.code) for p in result.problems] == [
        ("spec.kafka.cluster", Code.UNKNOWN_KAFKA_CLUSTER)
    ]
    assert [t.name for t in result.topology.topics] == ["orders.src.out"]


# --- explicit names and the allow-list --------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (explicit("orders.src.out"), [("spec.topics[0].name", "'team-a.'")]),
        (explicit("team-b.orders.src.out"), [("spec.topics[0].name", "'team-a.'")]),
        (explicit("team-a_orders"), [("spec.topics[0].name", "'team-a.'")]),
        (explicit("team-a.orders.src.out"), []),
        (explicit("team-a.anything"), []),
        (
            {
                "topics": [
                    {"name": "team-a.own", "producers": ["src.out"]},
                    {"name": "team-a.events", "consumers": ["sink.in"], "managed": False},
                    {"name": "mine"},
                ],
                "connections": [],
            },
            [("spec.topics[2].name", "'team-a.'")],
        ),
    ],
    ids=[
        "other-teams-implicit-name",
        "other-teams-prefix",
        "underscore-is-not-the-prefix",
        "prefixed",
        "any-prefixed-name",
        "unmanaged-own-topic-is-exempt",
    ],
)
def test_explicit_topics_must_carry_the_prefix(
    spec: dict[str, Any], expected: list[tuple[str, str]]
) -> None:
    result = validation.validate(app(**spec), settings_with(**RECOMMENDED))
    got = [p for p in result.problems if p.code is Code.TOPIC_PREFIX]
    assert [p.path for p in got] == [path for path, _ in expected]
    assert result.ok is not expected
    for problem, (_, prefix) in zip(got, expected, strict=True):
        assert f"must start with {prefix}" in problem.message
        assert "naming policy of Kafka cluster 'default'" in problem.message
        name = spec["topics"][int(problem.path[len("spec.topics[")])]["name"]
        assert f"rename it to 'team-a.{name}'" in problem.message


def test_the_suggested_rename_compiles() -> None:
    (problem,) = validation.validate(app(**explicit("x")), settings_with(**RECOMMENDED)).problems
    fixed = re.search(r"rename it to '([^']+)'", problem.message)
    assert fixed is not None
    compiled = compiler.compile_application(
        app(**explicit(fixed.group(1))), settings_with(**RECOMMENDED)
    )
    assert topic_names(compiled.children) == {"team-a.x"}


@pytest.mark.parametrize(
    ("namespace", "cluster", "allowed", "may_use"),
    [
        ("team-a", "default", True, None),
        ("team-b", "default", True, None),
        ("team-c", "default", False, "(it may use: open)"),
        ("team-c", "open", True, None),
    ],
    ids=["listed", "listed-too", "not-listed", "unrestricted-cluster"],
)
def test_only_allowed_namespaces_may_use_a_cluster(
    namespace: str, cluster: str, allowed: bool, may_use: str | None
) -> None:
    body = app(namespace=namespace, kafka={"cluster": cluster})
    result = validation.validate(body, settings_with(**RECOMMENDED))
    if allowed:
        assert result.ok, result.problems
        return
    (problem,) = result.problems
    assert (problem.path, problem.code) == ("spec.kafka.cluster", Code.KAFKA_CLUSTER_NOT_ALLOWED)
    assert f"namespace {namespace!r} may not use Kafka cluster 'default'" in problem.message
    assert may_use is not None and may_use in problem.message
    assert "allowedNamespaces" in problem.message  # who can change it, and where


def test_no_cluster_left_says_so_without_a_list() -> None:
    only = parse_settings({"kafkaClusters": [{**CLUSTER, **RECOMMENDED}]})
    (problem,) = validation.validate(app(namespace="team-c"), only).problems
    assert "may use" not in problem.message


def test_all_policy_problems_are_reported_at_once() -> None:
    body = app(namespace="team-c", **explicit("orders.src.out"))
    with pytest.raises(InvalidSpec) as raised:
        compiler.compile_application(body, settings_with(**RECOMMENDED))
    assert [(p.path, p.code) for p in raised.value.problems] == [
        ("spec.kafka.cluster", Code.KAFKA_CLUSTER_NOT_ALLOWED),
        ("spec.topics[0].name", Code.TOPIC_PREFIX),
    ]


# --- two teams ------------------------------------------------------------------------------------


def test_the_issues_case_cannot_collide_with_the_recommended_setting() -> None:
    """team-b's implicit `orders.src.out`, team-a's explicit topic of that very name."""
    recommended = settings_with(**RECOMMENDED)
    team_b = compiler.compile_application(app(namespace="team-b"), recommended)
    assert topic_names(team_b.children) == {"team-b.orders.src.out"}
    refused = validation.validate(app(**explicit("orders.src.out")), recommended)
    assert [p.code for p in refused.problems] == [Code.TOPIC_PREFIX]
    team_a = compiler.compile_application(app(), recommended)
    assert topic_names(team_a.children) == {"team-a.orders.src.out"}
    keys_a = {c.key for c in team_a.children if c.kind == "KafkaTopic"}
    keys_b = {c.key for c in team_b.children if c.kind == "KafkaTopic"}
    assert keys_a.isdisjoint(keys_b)
    assert group_ids(team_a.children).isdisjoint(group_ids(team_b.children))


NAMESPACE = st.from_regex(r"[a-z0-9]([-a-z0-9]{0,8}[a-z0-9])?", fullmatch=True)
APP_NAME = st.from_regex(r"[a-z0-9]([-a-z0-9]{0,6}[a-z0-9])?(\.[a-z0-9]{1,4})?", fullmatch=True)
TOPIC_TAIL = st.from_regex(r"[a-zA-Z0-9._-]{1,12}", fullmatch=True)


@pytest.mark.parametrize(
    "template", ["{namespace}.", "{namespace}_", "x.{namespace}.{application}_"]
)
@given(data=st.data())
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_two_namespaces_never_share_a_topic(template: str, data: st.DataObject) -> None:
    """Whatever two teams name their applications and explicit topics (even with the other
    team's prefix), the topics of their valid applications are distinct, also for Kafka, which
    treats '.' and '_' alike."""
    policy = settings_with(topicPrefix=template)
    namespaces = data.draw(st.lists(NAMESPACE, min_size=2, max_size=2, unique=True))
    same_name = data.draw(APP_NAME)
    names = []
    for ns in namespaces:
        name = data.draw(st.one_of(st.just(same_name), APP_NAME))
        stolen = data.draw(st.sampled_from(namespaces))  # try either team's prefix
        prefix = policy.kafka_clusters[0].topic_policy.prefix(stolen, name)
        topic = data.draw(st.one_of(TOPIC_TAIL, TOPIC_TAIL.map(lambda t, p=prefix: p + t)))
        spec = data.draw(st.sampled_from([{}, explicit(topic)]))
        result = validation.validate(app(name, ns, **spec), policy)
        if result.ok:
            names.append({t.name for t in result.topology.topics})
    if len(names) == 2:
        a, b = names
        assert a.isdisjoint(b)
        assert {t.replace(".", "_") for t in a}.isdisjoint({t.replace(".", "_") for t in b})


# --- naming limits ------------------------------------------------------------------------------


def long_app(name: str, namespace: str) -> dict[str, Any]:
    body = app(name, namespace)
    body["spec"]["streamlets"][0]["name"] = "s" * 63
    body["spec"]["streamlets"][0]["outlets"] = ["o" * 63]
    body["spec"]["connections"] = [{"from": f"{'s' * 63}.{'o' * 63}", "to": ["sink.in"]}]
    return body


def test_a_prefixed_implicit_name_of_249_fits() -> None:
    namespace = "n" * 63  # the longest namespace: a 64-character prefix
    body = long_app("a" * 57, namespace)  # 64 + 57 + 63 + 63 + 2 = 249
    children = compiler.compile_application(
        body, settings_with(topicPrefix="{namespace}.")
    ).children
    (topic,) = [c for c in children if c.kind == "KafkaTopic"]
    assert len(topic.manifest["spec"]["topicName"]) == 249
    assert topic.name == topic.topic and naming.is_subdomain(topic.name)
    assert len(topic.name) <= delegates.KAFKA_TOPIC.name_limit


def test_a_prefix_that_pushes_an_implicit_name_over_249_is_a_problem() -> None:
    body = long_app("a" * 58, "n" * 63)  # 250 with the prefix; 186 without
    assert validation.validate(body, settings_with()).ok
    (problem,) = validation.validate(body, settings_with(topicPrefix="{namespace}.")).problems
    assert (problem.path, problem.code) == (
        "spec.streamlets[0].outlets[0]",
        Code.INVALID_TOPIC_NAME,
    )
    assert f"'{'n' * 63}.{'a' * 58}." in problem.message  # the name as the policy made it
    assert "explicit topic" in problem.message


def test_a_prefix_with_a_long_application_leaves_no_room() -> None:
    name = "a" * 253
    body = app(name, **explicit("x"))
    result = validation.validate(body, settings_with(topicPrefix="{namespace}.{application}."))
    (problem,) = [p for p in result.problems if p.code is Code.TOPIC_PREFIX]
    assert problem.path == "metadata.name"
    assert "shorten the application name" in problem.message


def test_an_upper_case_prefix_keeps_kubernetes_names_valid_and_distinct() -> None:
    policy = settings_with(topicPrefix="Kafka_{namespace}.")
    topics = [
        next(
            c
            for c in compiler.compile_application(app(namespace=ns), policy).children
            if c.kind == "KafkaTopic"
        )
        for ns in ("team-a", "team-b")
    ]
    assert [t.topic for t in topics] == [
        "Kafka_team-a.orders.src.out",
        "Kafka_team-b.orders.src.out",
    ]
    assert all(naming.is_subdomain(t.name) and t.name != t.topic for t in topics)
    assert topics[0].name != topics[1].name
    assert all(
        t.manifest["metadata"]["annotations"][naming.TOPIC_ANNOTATION] == t.topic for t in topics
    )


# --- ownership ----------------------------------------------------------------------------------


HEALTHY = health.ChildHealth(health=health.Health.HEALTHY, reason="Ready")


def team_a_beside_team_b() -> tuple[tuple[Child, ...], Plan]:
    """Without a policy, team-a's explicit topic is the KafkaTopic team-b's application owns
    (Healthy): team-a's plan."""
    default = settings_with()
    team_b = compiler.compile_application(app(namespace="team-b"), default).children
    team_a = compiler.compile_application(app(**explicit("orders.src.out")), default).children
    (theirs,) = [c for c in team_b if c.kind == "KafkaTopic"]
    observed = {theirs.key: Observed.from_body(theirs.manifest, HEALTHY)}
    return team_a, make_plan(
        team_a,
        observed,
        (),
        owner="team-a/orders",
        installed=frozenset(d.crd_name for d in delegates.ALL),
        deletion_policy=DeletionPolicy.RETAIN,
    )


def test_a_topic_owned_by_another_application_is_held_naming_the_owner() -> None:
    team_a, plan = team_a_beside_team_b()
    (topic,) = [c for c in team_a if c.kind == "KafkaTopic"]
    held = next(h.health for h in plan.held if h.child.key == topic.key)
    assert (held.health, held.reason) == (health.Health.DEGRADED, REASON_OWNED_ELSEWHERE)
    assert "already belongs to application team-b/orders" in held.message
    assert topic.key not in {c.key for c in plan.apply}  # nor claimed: test_decide.py


def test_streamlets_do_not_start_on_a_topic_owned_by_another_application() -> None:
    _, plan = team_a_beside_team_b()
    assert [c.streamlet for c in plan.apply if c.streamlet] == []


# --- topics of other teams: only by the platform's consent --------------------------------------


def unmanaged(topic: str, *, produce: bool = False) -> dict[str, Any]:
    """`sink.in` reads `topic` (and with `produce`, `src.out` writes it), which exists outside."""
    return {
        "connections": [],
        "topics": [
            {
                "name": topic,
                "consumers": ["sink.in"],
                **({"producers": ["src.out"]} if produce else {}),
                "managed": False,
            }
        ],
    }


def shared(*items: dict[str, Any]) -> Settings:
    return settings_with(**RECOMMENDED, sharedTopics=list(items))


def not_shared(result: Any) -> list[tuple[str, str]]:
    return [(p.path, p.message) for p in result.problems if p.code is Code.TOPIC_NOT_SHARED]


def test_another_teams_topic_needs_the_platforms_consent() -> None:
    result = validation.validate(app(**unmanaged("team-b.orders.w.out")), shared())
    ((path, message),) = not_shared(result)
    assert path == "spec.topics[0].name"
    assert "'team-b.orders.w.out' is outside this namespace's names" in message
    assert "not shared it with namespace 'team-a'" in message
    assert "kafkaClusters[default].sharedTopics" in message
    assert not result.ok


def test_a_topic_shared_with_the_namespace_may_be_read() -> None:
    consent = {"name": "team-b.orders.w.out", "namespaces": ["team-a"]}
    result = validation.validate(app(**unmanaged("team-b.orders.w.out")), shared(consent))
    assert not_shared(result) == [] and result.ok, result.problems
    # Shared with another namespace only: still refused for team-a.
    other = {"name": "team-b.orders.w.out", "namespaces": ["team-c"]}
    refused = validation.validate(app(**unmanaged("team-b.orders.w.out")), shared(other))
    assert [p for p, _ in not_shared(refused)] == ["spec.topics[0].name"]


def test_writing_a_shared_topic_needs_readwrite() -> None:
    read = {"name": "platform.audit", "namespaces": ["team-a"]}
    result = validation.validate(app(**unmanaged("platform.audit", produce=True)), shared(read))
    ((path, message),) = not_shared(result)
    assert path == "spec.topics[0].producers"
    assert "for reading only" in message and "access: readwrite" in message
    write = {**read, "access": "readwrite"}
    ok = validation.validate(app(**unmanaged("platform.audit", produce=True)), shared(write))
    assert ok.ok, ok.problems


def test_without_a_prefix_there_is_no_ownership_to_check() -> None:
    result = validation.validate(app(**unmanaged("team-b.orders.w.out")), settings_with())
    assert result.ok, result.problems


@pytest.mark.parametrize(
    ("items", "error"),
    [
        ("x", "sharedTopics: expected a list"),
        ([{"name": "t"}], "sharedTopics[0].namespaces: expected a list of namespace names"),
        ([{"name": "t", "namespaces": ["Team_A"]}], "sharedTopics[0].namespaces"),
        ([{"name": "bad name", "namespaces": ["a"]}], "sharedTopics[0].name: expected a topic"),
        ([{"name": "t", "namespaces": ["a"], "access": "write"}], "sharedTopics[0].access"),
        ([{"name": "t", "namespaces": ["a"], "acess": "read"}], "sharedTopics[0].acess: unknown"),
    ],
)
def test_shared_topics_settings_errors_name_the_key(items: Any, error: str) -> None:
    with pytest.raises(SettingsError, match=re.escape(error)):
        settings_with(**RECOMMENDED, sharedTopics=items)
