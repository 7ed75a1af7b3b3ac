"""Prometheus metrics (issue 4 item 7), bounded (issue 14), read back through each instance's
own registry.

Aspects covered:
- totals: applications by phase, children by kind and health, moved on every change; no series
  is ever zero; the number of series does not grow with the number of applications when the
  per-application series are off (the default);
- per-application series (`per_application=True`): the current phase only, non-zero children
  counts only; a kind that disappears loses its series;
- `forget` removes an application's series and its share of the totals, nothing else;
- the reconcile histogram (success / invalid / error), API and status write
  counters, label validation;
- isolation: two instances never share numbers, prometheus-client's global registry stays clean;
- a real HTTP scrape of `start_server` on a free loopback port; port 0 disables; a busy port is a
  clear error.
"""

from __future__ import annotations

import socket
import urllib.request
from collections.abc import Iterator

import prometheus_client
import pytest

from federator.core import health as h
from federator.metrics import PHASES, Metrics, MetricsServerError


@pytest.fixture
def m() -> Iterator[Metrics]:
    instance = Metrics(per_application=True)
    yield instance
    instance.stop_servers()


def child(kind: str, name: str, health: h.Health, reason: str = "r") -> h.ChildReport:
    return h.ChildReport(kind=kind, name=name, health=h.ChildHealth(health=health, reason=reason))


def record(m: Metrics, app: str, children: list[h.ChildReport], ns: str = "apps") -> h.AppHealth:
    app_health = h.aggregate(children)
    m.record_health(ns, app, app_health, children)
    return app_health


def phase(m: Metrics, app: str, value: str, ns: str = "apps") -> float | None:
    return m.registry.get_sample_value(
        "federator_application_phase", {"namespace": ns, "application": app, "phase": value}
    )


def children(m: Metrics, app: str, kind: str, health: str, ns: str = "apps") -> float | None:
    return m.registry.get_sample_value(
        "federator_application_children",
        {"namespace": ns, "application": app, "kind": kind, "health": health},
    )


def apps_in(m: Metrics, value: str) -> float | None:
    return m.registry.get_sample_value("federator_applications", {"phase": value})


def total(m: Metrics, kind: str, health: str) -> float | None:
    return m.registry.get_sample_value("federator_children", {"kind": kind, "health": health})


def samples(m: Metrics) -> list[tuple[str, dict[str, str], float]]:
    """Every sample the registry would serve, except the histogram's fixed buckets."""
    return [
        (s.name, s.labels, s.value)
        for metric in m.registry.collect()
        for s in metric.samples
        if not s.name.startswith("federator_reconcile_duration")
    ]


HEALTHY_APP = [
    child("KafkaTopic", "t1", h.Health.HEALTHY),
    child("KafkaTopic", "t2", h.Health.HEALTHY),
    child("SparkApplication", "s", h.Health.HEALTHY),
]


def test_phases_cover_the_crd_enum() -> None:
    assert set(PHASES) == {
        "Healthy",
        "Suspended",
        "Progressing",
        "Missing",
        "Degraded",
        "Unknown",
        "Invalid",
    }


def test_only_the_current_phase_has_a_series(m: Metrics) -> None:
    record(m, "cra", HEALTHY_APP)
    assert {p: phase(m, "cra", p) for p in PHASES} == {
        p: (1.0 if p == "Healthy" else None) for p in PHASES
    }


def test_a_phase_change_moves_the_series(m: Metrics) -> None:
    record(m, "cra", HEALTHY_APP)
    failed = [*HEALTHY_APP[:2], child("SparkApplication", "s", h.Health.DEGRADED, "FAILED")]
    assert record(m, "cra", failed).phase == "Degraded"
    assert phase(m, "cra", "Healthy") is None
    assert phase(m, "cra", "Degraded") == 1
    assert (apps_in(m, "Healthy"), apps_in(m, "Degraded")) == (None, 1)


def test_invalid_phase(m: Metrics) -> None:
    invalid = h.aggregate([], problems=["spec: broken"])
    m.record_health("apps", "bad", invalid, [])
    assert phase(m, "bad", "Invalid") == 1
    assert phase(m, "bad", "Progressing") is None
    assert apps_in(m, "Invalid") == 1


def test_children_by_kind_and_health(m: Metrics) -> None:
    record(
        m,
        "cra",
        [
            *HEALTHY_APP,
            child("KafkaTopic", "t3", h.Health.PROGRESSING),
            child("Deployment", "d", h.Health.MISSING, "DelegateNotInstalled"),
        ],
    )
    assert children(m, "cra", "KafkaTopic", "Healthy") == 2
    assert children(m, "cra", "KafkaTopic", "Progressing") == 1
    assert children(m, "cra", "KafkaTopic", "Degraded") is None  # no zero series
    assert children(m, "cra", "SparkApplication", "Healthy") == 1
    assert children(m, "cra", "Deployment", "Missing") == 1
    assert children(m, "cra", "FlinkDeployment", "Healthy") is None
    assert (total(m, "KafkaTopic", "Healthy"), total(m, "Deployment", "Missing")) == (2, 1)


def test_a_health_change_moves_the_count(m: Metrics) -> None:
    record(m, "cra", [child("SparkApplication", "s", h.Health.PROGRESSING)])
    record(m, "cra", [child("SparkApplication", "s", h.Health.HEALTHY)])
    assert children(m, "cra", "SparkApplication", "Progressing") is None
    assert children(m, "cra", "SparkApplication", "Healthy") == 1
    assert total(m, "SparkApplication", "Progressing") is None
    assert total(m, "SparkApplication", "Healthy") == 1


def test_a_kind_that_disappears_loses_its_series(m: Metrics) -> None:
    record(m, "cra", [*HEALTHY_APP, child("Deployment", "d", h.Health.HEALTHY)])
    record(m, "cra", HEALTHY_APP)
    for health in h.HEALTH_ORDER:
        assert children(m, "cra", "Deployment", health.value) is None
        assert total(m, "Deployment", health.value) is None
    assert children(m, "cra", "KafkaTopic", "Healthy") == 2


def test_no_series_is_ever_zero(m: Metrics) -> None:
    record(m, "a", HEALTHY_APP)
    record(m, "b", [child("Deployment", "d", h.Health.DEGRADED)])
    record(m, "a", [child("Deployment", "d", h.Health.PROGRESSING)])
    m.forget("apps", "b")
    m.count_status_write("apps", "a")
    gauges = {"federator_applications", "federator_children"} | {
        "federator_application_phase",
        "federator_application_children",
    }
    assert {s[0] for s in samples(m)} >= gauges
    # (A counter starts at 0 once, as Prometheus advises, and never has a series per value.)
    assert [s for s in samples(m) if s[0] in gauges and s[2] == 0] == []


def test_totals_sum_over_applications(m: Metrics) -> None:
    for i in range(5):
        record(m, f"app-{i}", HEALTHY_APP)
    record(m, "app-0", [child("KafkaTopic", "t1", h.Health.DEGRADED)])
    assert apps_in(m, "Healthy") == 4
    assert apps_in(m, "Degraded") == 1
    assert total(m, "KafkaTopic", "Healthy") == 8
    assert total(m, "KafkaTopic", "Degraded") == 1
    assert total(m, "SparkApplication", "Healthy") == 4


@pytest.mark.parametrize("count", [1, 10, 1000], ids=["1-app", "10-apps", "1000-apps"])
def test_series_do_not_grow_with_applications_by_default(count: int) -> None:
    """Off (the default): the series are the totals, bounded by phases x kinds x healths."""
    m = Metrics()
    for i in range(count):
        record(m, f"app-{i}", HEALTHY_APP, ns=f"ns-{i % 7}")
        m.count_status_write(f"ns-{i % 7}", f"app-{i}")
    record(m, "app-0", [child("Deployment", "d", h.Health.DEGRADED)], ns="ns-0")
    names = sorted((name, tuple(sorted(labels.items()))) for name, labels, _ in samples(m))
    per_app = [n for n in names if any(k in ("namespace", "application") for k, _ in n[1])]
    assert per_app == []
    assert len(names) == 7 if count > 1 else len(names) == 4
    assert m.registry.get_sample_value("federator_status_writes_total") == count


def test_forget_removes_one_application_only(m: Metrics) -> None:
    record(m, "cra", HEALTHY_APP)
    record(m, "cra", HEALTHY_APP, ns="other")
    m.count_status_write("apps", "cra")
    m.count_status_write("other", "cra")
    m.forget("apps", "cra")
    assert all(phase(m, "cra", p) is None for p in PHASES)
    assert children(m, "cra", "KafkaTopic", "Healthy") is None
    assert (
        m.registry.get_sample_value(
            "federator_application_status_writes_total", {"namespace": "apps", "application": "cra"}
        )
        is None
    )
    # The same name in another namespace is another application.
    assert phase(m, "cra", "Healthy", ns="other") == 1
    assert children(m, "cra", "KafkaTopic", "Healthy", ns="other") == 2
    assert (apps_in(m, "Healthy"), total(m, "KafkaTopic", "Healthy")) == (1, 2)
    assert (
        m.registry.get_sample_value(
            "federator_application_status_writes_total",
            {"namespace": "other", "application": "cra"},
        )
        == 1
    )
    m.forget("apps", "never-seen")  # forgetting the unknown is harmless
    m.forget("apps", "cra")  # and so is forgetting twice
    assert (apps_in(m, "Healthy"), total(m, "KafkaTopic", "Healthy")) == (1, 2)


def test_forgotten_application_can_come_back(m: Metrics) -> None:
    record(m, "cra", HEALTHY_APP)
    m.forget("apps", "cra")
    record(m, "cra", [child("Deployment", "d", h.Health.DEGRADED)])
    assert phase(m, "cra", "Degraded") == 1
    assert children(m, "cra", "Deployment", "Degraded") == 1
    assert children(m, "cra", "KafkaTopic", "Healthy") is None
    assert total(m, "KafkaTopic", "Healthy") is None


def test_reconcile_histogram(m: Metrics) -> None:
    m.observe_reconcile("success", 0.2)
    m.observe_reconcile("success", 3.0)
    m.observe_reconcile("invalid", 0.01)
    get = m.registry.get_sample_value
    assert get("federator_reconcile_duration_seconds_count", {"result": "success"}) == 2
    assert get("federator_reconcile_duration_seconds_sum", {"result": "success"}) == 3.2
    assert get("federator_reconcile_duration_seconds_bucket", {"result": "success", "le": "0.25"})
    assert (
        get("federator_reconcile_duration_seconds_bucket", {"result": "success", "le": "0.25"}) == 1
    )
    assert get("federator_reconcile_duration_seconds_count", {"result": "invalid"}) == 1
    assert get("federator_reconcile_duration_seconds_count", {"result": "error"}) is None
    with pytest.raises(ValueError, match="unknown reconcile result"):
        m.observe_reconcile("failed", 1.0)  # type: ignore[arg-type]


def test_api_and_status_write_counters(m: Metrics) -> None:
    m.count_api_write("apply", "KafkaTopic")
    m.count_api_write("apply", "KafkaTopic")
    m.count_api_write("delete", "Deployment")
    m.count_api_write("patch_status", "Application")
    m.count_api_write("event", "Event")
    m.count_api_write("create", "Deployment")
    m.count_api_write("claim", "Deployment")
    m.count_status_write("apps", "cra")
    get = m.registry.get_sample_value
    assert get("federator_api_writes_total", {"verb": "apply", "kind": "KafkaTopic"}) == 2
    assert get("federator_api_writes_total", {"verb": "delete", "kind": "Deployment"}) == 1
    assert get("federator_api_writes_total", {"verb": "patch_status", "kind": "Application"}) == 1
    assert get("federator_api_writes_total", {"verb": "event", "kind": "Event"}) == 1
    assert get("federator_status_writes_total") == 1
    assert (
        get(
            "federator_application_status_writes_total",
            {"namespace": "apps", "application": "cra"},
        )
        == 1
    )
    assert get("federator_api_writes_total", {"verb": "create", "kind": "Deployment"}) == 1
    assert get("federator_api_writes_total", {"verb": "claim", "kind": "Deployment"}) == 1
    with pytest.raises(ValueError, match="unknown write verb"):
        m.count_api_write("update", "KafkaTopic")  # type: ignore[arg-type]


def test_child_read_counter_by_source_and_kind(m: Metrics) -> None:
    for _ in range(3):
        m.count_child_read("cache", "KafkaTopic")
    m.count_child_read("api", "Deployment")
    get = m.registry.get_sample_value
    assert get("federator_child_reads_total", {"source": "cache", "kind": "KafkaTopic"}) == 3
    assert get("federator_child_reads_total", {"source": "api", "kind": "Deployment"}) == 1
    assert get("federator_child_reads_total", {"source": "api", "kind": "KafkaTopic"}) is None
    with pytest.raises(ValueError, match="unknown read source"):
        m.count_child_read("etcd", "KafkaTopic")  # type: ignore[arg-type]


def test_instances_are_isolated_and_the_global_registry_untouched() -> None:
    one, two = Metrics(per_application=True), Metrics(per_application=True)
    record(one, "cra", HEALTHY_APP)
    one.count_api_write("apply", "KafkaTopic")
    assert phase(two, "cra", "Healthy") is None
    assert (
        two.registry.get_sample_value(
            "federator_api_writes_total", {"verb": "apply", "kind": "KafkaTopic"}
        )
        is None
    )
    names = {metric.name for metric in prometheus_client.REGISTRY.collect()}
    assert not any(name.startswith("federator_") for name in names)


# ------------------------------------------------------------------ the HTTP endpoint


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        assert response.status == 200
        return str(response.read().decode())


def test_start_server_serves_this_registry_over_http(m: Metrics) -> None:
    record(m, "cra", HEALTHY_APP)
    m.count_api_write("apply", "KafkaTopic")
    m.count_status_write("apps", "cra")
    m.observe_reconcile("success", 0.1)
    port = free_port()
    m.start_server(port, host="127.0.0.1")
    text = scrape(port)
    for name in (
        "federator_applications",
        "federator_children",
        "federator_application_phase",
        "federator_application_children",
        "federator_reconcile_duration_seconds",
        "federator_api_writes_total",
        "federator_status_writes_total",
        "federator_application_status_writes_total",
    ):
        assert f"# TYPE {name} " in text
        assert f"\n{name}" in text
    assert (
        'federator_application_phase{application="cra",namespace="apps",phase="Healthy"} 1.0'
        in text
    )
    # Only our registry: nothing of prometheus-client's default process collectors.
    assert "process_cpu_seconds_total" not in text
    assert "python_info" not in text


def test_port_zero_disables_the_server(m: Metrics) -> None:
    m.start_server(0)
    assert m._servers == []


def test_a_busy_port_is_a_clear_error(m: Metrics) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(MetricsServerError, match=f"cannot serve metrics on 127.0.0.1:{port}"):
            m.start_server(port, host="127.0.0.1")


def test_an_impossible_port_is_a_clear_error(m: Metrics) -> None:
    with pytest.raises(MetricsServerError, match=r"not in 1\.\.65535"):
        m.start_server(70000)


def test_stop_servers_closes_the_port(m: Metrics) -> None:
    port = free_port()
    m.start_server(port, host="127.0.0.1")
    scrape(port)
    m.stop_servers()
    with pytest.raises(OSError):
        scrape(port)
