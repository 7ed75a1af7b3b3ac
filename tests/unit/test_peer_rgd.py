"""The peer bench's pure parts: the RGD generator (bench/rgd.py) and the figures (bench/peer.py).

Aspects covered:
- the generated ResourceGraphDefinition is valid against kro v0.9.3's own CRD schema (copied
  from the module's `helm/crds` into tests/unit/data/kro-v0.9.3, Apache-2.0, LICENSE beside it;
  compared with the cached build's copy when that exists), for every example Application;
- it describes the SAME children as federator's compiler: with the instance's name and namespace
  substituted, each template is the compiled child (less ownerReferences, the managed-by label
  kro sets itself, the spec-hash annotation and the dependency annotation);
- topics gate their dependents: every streamlet child refers to exactly its own topics, and
  every resource's readyWhen is its health in CEL; status has one health field per child and the
  roll-up; resource ids are unique CEL identifiers;
- bad input gets a clear RgdError;
- the figures: Prometheus label parsing, kro's client requests by method, the API server's
  counts, percentiles, ratios, and both tables built from synthetic results.
No kro, no API server: kro is built and run only by `python bench/peer.py`.
"""

from __future__ import annotations

import copy
import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import jsonschema
import pytest
import yaml

from federator.core.compiler import compile_application
from federator.core.settings import Settings, parse_settings
from federator.devcluster import delegates
from federator.devcluster import kro as kro_build

REPO = Path(__file__).resolve().parents[2]
CRD = Path(__file__).parent / "data" / "kro-v0.9.3" / kro_build.RGD_CRD
EXAMPLES = sorted(p for p in (REPO / "examples").glob("*.yaml") if p.name != "settings.yaml")
CEL_ID = re.compile(r"^[a-z][A-Za-z0-9]*$")


def _load(name: str) -> ModuleType:
    if str(REPO / "bench") not in sys.path:
        sys.path.insert(0, str(REPO / "bench"))
    spec = importlib.util.spec_from_file_location(f"peer_test_{name}", REPO / "bench" / name)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


rgd = _load("rgd.py")
peer = _load("peer.py")


@pytest.fixture(scope="module")
def settings() -> Settings:
    return parse_settings(yaml.safe_load((REPO / "examples" / "settings.yaml").read_text()))


def _strip(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _strip(v) for k, v in node.items() if not k.startswith("x-kubernetes-")}
    if isinstance(node, list):
        return [_strip(v) for v in node]
    return node


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    crd = yaml.safe_load(CRD.read_text())
    version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1alpha1")
    schema = _strip(version["schema"]["openAPIV3Schema"])
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def _app(path: Path) -> dict[str, Any]:
    body: dict[str, Any] = yaml.safe_load(path.read_text())
    return body


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_the_rgd_is_valid_against_kros_crd(
    example: Path, settings: Settings, validator: jsonschema.Draft202012Validator
) -> None:
    graph = rgd.generate(_app(example), settings)
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(graph)]
    assert errors == []


def test_the_vendored_crd_is_the_built_versions() -> None:
    root = delegates.cache_dir(kro_build.RECIPE)
    if not delegates.is_complete(root):
        pytest.skip("kro is not built here (python -m federator.devcluster.kro builds it)")
    assert (root / "crds" / kro_build.RGD_CRD).read_bytes() == CRD.read_bytes()


def _substituted(value: Any, name: str, namespace: str) -> Any:
    if isinstance(value, str):
        return value.replace(rgd.NAME_REF, name).replace(rgd.NAMESPACE_REF, namespace)
    if isinstance(value, dict):
        return {k: _substituted(v, name, namespace) for k, v in value.items()}
    if isinstance(value, list):
        return [_substituted(v, name, namespace) for v in value]
    return value


def _comparable(manifest: Any) -> Any:
    out = copy.deepcopy(dict(manifest))
    meta = out["metadata"]
    meta.pop("ownerReferences", None)
    meta.get("labels", {}).pop(rgd.MANAGED_BY, None)
    for key in ("federator.io/spec-hash", rgd.TOPICS_ANNOTATION):
        meta.get("annotations", {}).pop(key, None)
    return out


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_an_instance_gets_the_same_children_as_the_application(
    example: Path, settings: Settings
) -> None:
    body = _app(example)
    graph = rgd.generate(body, settings)
    name, namespace = "orders-7", "team-a"
    app = {**body, "metadata": {"name": name, "namespace": namespace, "uid": "u", "generation": 1}}
    children = compile_application(app, settings).children
    templates = [_substituted(r["template"], name, namespace) for r in graph["spec"]["resources"]]

    def key(m: Any) -> tuple[str, str]:
        return (m["kind"], m["metadata"]["name"])

    got = sorted((_comparable(t) for t in templates), key=key)
    assert got == sorted((_comparable(c.manifest) for c in children), key=key)
    text = yaml.safe_dump(graph)
    assert rgd.SENTINEL_NAME not in text and rgd.SENTINEL_NAMESPACE not in text


def test_topics_gate_their_streamlets(settings: Settings) -> None:
    body = _app(REPO / "examples" / "call-record-aggregator.yaml")
    graph = rgd.generate(body, settings)
    resources = graph["spec"]["resources"]
    ids = [r["id"] for r in resources]
    assert len(set(ids)) == len(ids) and all(CEL_ID.match(i) for i in ids)
    by_topic_name = {
        r["template"]["metadata"]["name"]: r["id"]
        for r in resources
        if r["template"]["kind"] == "KafkaTopic"
    }
    assert len(by_topic_name) == 7
    children = compile_application(
        {**body, "metadata": {**body["metadata"], "uid": "u", "generation": 1}}, settings
    ).children
    for resource, child in zip(resources, children, strict=True):
        assert resource["readyWhen"] == [
            "${(" + rgd.health_cel(child.kind, resource["id"]) + ") == 'Healthy'}"
        ]
        if child.topic is not None:
            assert rgd.TOPICS_ANNOTATION not in resource["template"]["metadata"]["annotations"]
            continue
        refs = resource["template"]["metadata"]["annotations"][rgd.TOPICS_ANNOTATION]
        wanted = {
            by_topic_name[t.replace("call-record-aggregator", rgd.NAME_REF)] for t in child.topics
        }
        assert set(re.findall(r"\$\{(\w+)\.metadata\.name\}", refs)) == wanted
    status = graph["spec"]["schema"]["status"]
    assert set(status) == {*ids, rgd.HEALTH_FIELD}
    assert graph["spec"]["schema"]["kind"] == "CallRecordAggregator"


def test_status_fields_name_each_child_of_an_instance(settings: Settings) -> None:
    body = _app(REPO / "examples" / "call-record-aggregator.yaml")
    graph = rgd.generate(body, settings, kind="PeerSeed")
    fields = rgd.status_fields(graph, "cra-1")
    assert fields["cra-1-cdr-aggregator"] == "sparkApplicationCdrAggregator"
    assert fields["cra-1.merge.out"] == "topicMergeOut"
    assert len(fields) == 15


@pytest.mark.parametrize(
    ("app_name", "kind"),
    [
        ("call-record-aggregator", "CallRecordAggregator"),
        ("a", "A"),
        ("x1.y-z", "X1YZ"),
    ],
)
def test_kind_name(app_name: str, kind: str) -> None:
    assert rgd.kind_name(app_name) == kind


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"metadata": {}}, "no metadata.name"),
        ({"metadata": {"name": "1abc"}}, "cannot make a Kubernetes kind"),
    ],
    ids=["no-name", "digit-first"],
)
def test_bad_input_gets_a_clear_error(
    body: dict[str, Any], message: str, settings: Settings
) -> None:
    with pytest.raises(rgd.RgdError, match=message):
        rgd.generate({**body, "spec": {}}, settings)


def test_an_unknown_kind_has_no_health_expression() -> None:
    with pytest.raises(rgd.RgdError, match="Widget"):
        rgd.health_cel("Widget", "w")


# --- figures ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "name", "labels"),
    [
        ("up", "up", {}),
        ('a_total{method="GET",code="200"}', "a_total", {"method": "GET", "code": "200"}),
        ('b{x="1"}', "b", {"x": "1"}),
    ],
)
def test_labels_of(key: str, name: str, labels: dict[str, str]) -> None:
    assert peer.labels_of(key) == (name, labels)


def test_kros_client_requests_by_method() -> None:
    metrics = {
        'rest_client_requests_total{code="200",host="127.0.0.1:1",method="GET"}': 5.0,
        'rest_client_requests_total{code="201",host="127.0.0.1:1",method="POST"}': 2.0,
        'rest_client_requests_total{code="200",host="127.0.0.1:1",method="PATCH"}': 3.0,
        'rest_client_requests_total{code="409",host="127.0.0.1:1",method="PATCH"}': 1.0,
        'rest_client_request_duration_seconds_count{verb="GET"}': 99.0,
    }
    assert peer.client_requests(metrics) == {"GET": 5.0, "POST": 2.0, "PATCH": 4.0}


def test_apiserver_requests_filter_resource_and_verb() -> None:
    metrics = {
        'apiserver_request_total{code="200",resource="applications",verb="PATCH"}': 4.0,
        'apiserver_request_total{code="200",resource="leases",verb="PUT"}': 50.0,
        'apiserver_request_total{code="201",resource="events",verb="POST"}': 2.0,
        'apiserver_request_total{code="200",resource="applications",verb="GET"}': 7.0,
    }
    writes = frozenset({"PATCH", "POST", "PUT"})
    assert peer.apiserver_requests(metrics, frozenset({"applications", "events"}), writes) == 6.0


@pytest.mark.parametrize(
    ("values", "q", "want"),
    [([1.0], 50, 1.0), ([3.0, 1.0, 2.0], 50, 2.0), (list(map(float, range(1, 101))), 99, 99.0)],
)
def test_pct(values: list[float], q: float, want: float) -> None:
    assert peer.pct(values, q) == want


def test_ratio() -> None:
    assert peer.ratio(1.0, 2.0) == "0.50"
    assert peer.ratio(1.0, 0.0) == "—"


def _seed_results() -> dict[str, Any]:
    def created(c: float, h: float) -> list[dict[str, float]]:
        return [{"created": c, "healthy": h, "rss": 100.0}] * 3

    def status(lat: float, writes: float) -> list[dict[str, Any]]:
        return [{"latencies": [lat] * 10, "timeouts": 0, "writes": writes, "server": writes}]

    return {
        "created": {"federator": created(0.3, 0.7), "kro": created(0.6, 1.4)},
        "status": {"federator": status(0.05, 20.0), "kro": status(0.1, 180.0)},
        "rss": {
            "federator": {
                "start": 80.0,
                "after": [150.0, 160.0],
                "before_cycles": 160.0,
                "cycles": [161.0, 166.0],
            },
            "kro": {"start": 100.0, "after": [110.0], "before_cycles": 110.0, "cycles": [110.0]},
        },
        "cycles": 2,
    }


def test_seed_rows() -> None:
    rows = {r[0]: r[1:] for r in peer.seed_rows(_seed_results())}
    assert rows["create → all 15 children, p50 s"] == ("0.300", "0.600", "0.50")
    assert rows["child status change → app status, p99 ms"] == ("50", "100", "0.50")
    assert rows["writes per child change (the controller's own count)"] == ("2.0", "18.0", "0.11")
    assert rows["controller RSS after the repeats (max), MiB"] == ("160", "110", "1.45")
    assert rows["RSS growth over 2 create/delete cycles, MiB"] == ("+6.0", "+0.0", "—")


def test_scale_rows_and_report_markers() -> None:
    side = {
        "children": 44.0,
        "healthy": 53.0,
        "rss_max": 213.0,
        "rss_restart": 200.0,
        "restart_writes": 0.0,
        "restart_seen": 8.6,
        "idle_cpu": 1.0,
        "idle_reconciles": 10.0,
        "idle_gets": 100.0,
        "since_creation": 120.0,
    }
    kro = {**side, "children": 71.0, "restart_writes": 2412.0, "idle_cpu": 0.0}
    rows = {r[0]: r[1:] for r in peer.scale_rows({"federator": side, "kro": kro})}
    assert rows["all children created, s"] == ("44.0", "71.0", "0.62")
    assert rows["restart: writes"] == ("0", "2,412", "0.00")
    assert rows["idle 30 s: CPU s"] == ("1.00", "0.00", "—")
    assert "load average (1 min) at the phase's start" not in rows
    with_load = peer.scale_rows({"federator": {**side, "load": 7.68}, "kro": {**kro, "load": 6.0}})
    assert with_load[-1] == ("load average (1 min) at the phase's start", "7.7", "6.0", "—")
    results = {
        "apps": 200,
        "quick": False,
        "nodes": 2,
        "info": {"Load": "1"},
        "scale": {"federator": side, "kro": kro},
    }
    text = peer.report(results)
    first, last = peer.markers(200)
    assert text.startswith(first) and text.rstrip().endswith(last)
    assert peer.markers(0) == (peer.START, peer.END)
    seed = peer.report({**_seed_results(), "apps": 0, "quick": True, "info": {}})
    assert seed.startswith(peer.START) and "| seed application | federator | kro |" in seed
