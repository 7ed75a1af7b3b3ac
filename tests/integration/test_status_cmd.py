"""`federator status` against the real API server (issue 4 item 6).

Applications are created and given the status the operator would write (through the /status
subresource, shaped by `health.aggregate` + `merge_conditions`), then `federator status` is run
in-process with `--kubeconfig`.

Aspects covered:
- the list of one namespace (phase, ready/total, stale status, no status yet), the namespace of
  the kubeconfig context when -n is not given, -A across namespaces;
- one application: conditions, children with their messages, the problems of an invalid spec;
  `-o json`;
- exit codes: 1 and one line for an Application that does not exist; 2 and one line, quickly,
  for a refused (403) request, a closed port and a server that never answers.
"""

from __future__ import annotations

import json
import re
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from federator.cli import main as cli_main
from federator.core import health as h

if TYPE_CHECKING:
    from conftest import Cluster
else:
    Cluster = Any

REPO = Path(__file__).resolve().parents[2]
APP_CRD = REPO / "crds" / "application.yaml"
APPS = "/apis/federator.io/v1alpha1/namespaces/{ns}/applications"
NS_ONE = "status-cmd-one"
NS_TWO = "status-cmd-two"
SPARK_ERROR = "Job aborted due to stage failure: java.lang.OutOfMemoryError: Java heap space"
PROBLEMS = (
    "spec.streamlets[1].inlets[0]: inlet 'in' of streamlet 'proc' is not connected",
    "spec.connections[0].from: unknown streamlet 'ingres'; did you mean 'ingress'?",
)


def spec(image: str = "registry.example.com/ingress:1") -> dict[str, Any]:
    return {
        "streamlets": [
            {"name": "ingress", "runtime": "container", "image": image, "outlets": ["out"]},
            {
                "name": "proc",
                "runtime": "spark",
                "image": "registry.example.com/proc:1",
                "inlets": ["in"],
            },
        ],
        "connections": [{"from": "ingress.out", "to": ["proc.in"]}],
    }


def status_for(
    app: str,
    namespace: str,
    generation: int,
    spark: h.ChildHealth,
    problems: tuple[str, ...] = (),
) -> dict[str, Any]:
    """The status the operator writes for the three children of `spec()`."""
    reports = [
        h.ChildReport(
            kind="KafkaTopic",
            name=f"{app}.ingress.out",
            topic=f"{app}.ingress.out",
            health=h.ChildHealth(health=h.Health.HEALTHY, reason="Ready"),
        ),
        h.ChildReport(
            kind="Deployment",
            name=f"{app}-ingress",
            streamlet="ingress",
            health=h.ChildHealth(health=h.Health.HEALTHY, reason="Available"),
        ),
        h.ChildReport(kind="SparkApplication", name=f"{app}-proc", streamlet="proc", health=spark),
    ]
    reports = [] if problems else reports
    app_health = h.aggregate(reports, problems=problems)
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    api_versions = {
        "KafkaTopic": ("kafka.strimzi.io/v1", "kafka"),
        "Deployment": ("apps/v1", namespace),
        "SparkApplication": ("sparkoperator.k8s.io/v1beta2", namespace),
    }
    children = []
    for report in reports:
        api_version, child_namespace = api_versions[report.kind]
        entry = {
            "kind": report.kind,
            "apiVersion": api_version,
            "namespace": child_namespace,
            "name": report.name,
            "health": report.health.health.value,
            "reason": report.health.reason,
            "message": report.health.message,
            "specHash": "0123abcd",
        }
        entry.update({"topic": report.topic} if report.topic else {})
        entry.update({"streamlet": report.streamlet} if report.streamlet else {})
        children.append(entry)
    return {
        "observedGeneration": generation,
        "phase": app_health.phase,
        "ready": app_health.ready,
        "total": app_health.total,
        "summary": app_health.summary,
        "conditions": h.merge_conditions(
            [], app_health.conditions, now=now, observed_generation=generation
        ),
        "children": children,
    }


def create(cluster: Cluster, namespace: str, name: str) -> dict[str, Any]:
    body = {
        "apiVersion": "federator.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": name},
        "spec": spec(),
    }
    code, created = cluster.plane.request("POST", APPS.format(ns=namespace), body)
    assert code == 201, created
    return dict(created)


def patch(cluster: Cluster, namespace: str, name: str, body: Any, sub: str = "") -> dict[str, Any]:
    code, patched = cluster.plane.request(
        "PATCH",
        f"{APPS.format(ns=namespace)}/{name}{sub}",
        body,
        content_type="application/merge-patch+json",
    )
    assert code == 200, patched
    return dict(patched)


@pytest.fixture(scope="module")
def apps(cluster: Cluster) -> dict[str, dict[str, Any]]:
    """Five Applications in two namespaces, four with an operator-written status."""
    cluster.plane.install_crds(APP_CRD)
    for namespace in (NS_ONE, NS_TWO):
        cluster.ensure_namespace(namespace)
    healthy = h.ChildHealth(health=h.Health.HEALTHY, reason="RUNNING")
    failed = h.ChildHealth(health=h.Health.DEGRADED, reason="FAILED", message=SPARK_ERROR)
    made: dict[str, dict[str, Any]] = {}
    for namespace, name, spark, problems in (
        (NS_ONE, "healthy", healthy, ()),
        (NS_ONE, "degraded", failed, ()),
        (NS_ONE, "stale", healthy, ()),
        (NS_TWO, "invalid", healthy, PROBLEMS),
    ):
        created = create(cluster, namespace, name)
        generation = created["metadata"]["generation"]
        status = status_for(name, namespace, generation, spark, problems)
        made[name] = patch(cluster, namespace, name, {"status": status}, "/status")
    # A spec change the operator has not seen yet: generation moves past observedGeneration.
    made["stale"] = patch(cluster, NS_ONE, "stale", {"spec": spec(image="registry/ingress:2")})
    assert made["stale"]["metadata"]["generation"] == 2
    assert made["stale"]["status"]["observedGeneration"] == 1
    made["fresh"] = create(cluster, NS_ONE, "fresh")
    return made


@pytest.fixture
def run(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Any:
    """`federator status ...` through main(), whether or not main lists the module yet."""
    if "federator.cli.status_cmd" not in cli_main.COMMAND_MODULES:
        monkeypatch.setattr(
            cli_main, "COMMAND_MODULES", (*cli_main.COMMAND_MODULES, "federator.cli.status_cmd")
        )

    def invoke(*argv: str) -> tuple[int, str, str]:
        code = cli_main.main(["status", *argv])
        out, err = capsys.readouterr()
        assert "Traceback" not in out + err
        return code, out, err

    return invoke


def rows(text: str) -> list[list[str]]:
    return [re.split(r" {3,}", line.strip()) for line in text.splitlines() if line.strip()]


def section(text: str, title: str) -> list[list[str]]:
    lines = text.splitlines()
    start = lines.index(title) + 1
    end = next((i for i in range(start, len(lines)) if not lines[i].strip()), len(lines))
    return rows("\n".join(lines[start:end]))


# ------------------------------------------------------------------ listing


def test_list_one_namespace(cluster: Cluster, apps: dict[str, Any], run: Any) -> None:
    code, out, err = run("-n", NS_ONE, "--kubeconfig", str(cluster.kubeconfig))
    assert (code, err) == (0, "")
    table = rows(out)
    assert table[0] == ["NAME", "PHASE", "READY", "AGE", "MESSAGE"]
    by_name = {row[0]: row for row in table[1:]}
    assert sorted(by_name) == ["degraded", "fresh", "healthy", "stale"]
    assert by_name["healthy"][1:3] == ["Healthy", "3/3"]
    assert by_name["healthy"][4] == "3/3 children healthy"
    assert by_name["degraded"][1:3] == ["Degraded", "2/3"]
    assert by_name["degraded"][4] == "Unready: degraded-proc"
    assert by_name["stale"][1:3] == ["Healthy (stale)", "3/3"]
    assert by_name["fresh"][1:3] == ["<none>", "-"]
    assert all(re.fullmatch(r"\d+(s|m\d*s?)", row[3]) for row in table[1:])


def test_list_uses_the_kubeconfig_contexts_namespace(
    cluster: Cluster, apps: dict[str, Any], run: Any, tmp_path: Path
) -> None:
    config = yaml.safe_load(cluster.kubeconfig.read_text())
    config["contexts"][0]["context"]["namespace"] = NS_TWO
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(config))
    code, out, _ = run("--kubeconfig", str(path))
    assert code == 0
    assert [row[:3] for row in rows(out)[1:]] == [["invalid", "Invalid", "0/0"]]


def test_list_all_namespaces(cluster: Cluster, apps: dict[str, Any], run: Any) -> None:
    code, out, _ = run("-A", "--kubeconfig", str(cluster.kubeconfig))
    assert code == 0
    table = rows(out)
    assert table[0] == ["NAMESPACE", "NAME", "PHASE", "READY", "AGE", "MESSAGE"]
    ours = [row[:4] for row in table[1:] if row[0] in (NS_ONE, NS_TWO)]
    # Other tests may own Applications elsewhere; ours come sorted by namespace and name.
    assert [row[:2] for row in ours] == [
        [NS_ONE, "degraded"],
        [NS_ONE, "fresh"],
        [NS_ONE, "healthy"],
        [NS_ONE, "stale"],
        [NS_TWO, "invalid"],
    ]
    assert ours[-1][2:] == ["Invalid", "0/0"]


def test_an_empty_namespace(cluster: Cluster, apps: dict[str, Any], run: Any) -> None:
    cluster.ensure_namespace("status-cmd-empty")
    code, out, err = run("-n", "status-cmd-empty", "--kubeconfig", str(cluster.kubeconfig))
    assert (code, out) == (0, "")
    assert err == "No Applications found in namespace status-cmd-empty.\n"


# ------------------------------------------------------------------ one application


def test_detail_of_a_degraded_application(cluster: Cluster, apps: dict[str, Any], run: Any) -> None:
    argv = ("degraded", "-n", NS_ONE, "--kubeconfig", str(cluster.kubeconfig))
    code, out, err = run(*argv)
    assert (code, err) == (0, "")
    stalled = next(row for row in section(out, "Conditions:") if row[0] == "Stalled")
    assert stalled[4].startswith("Degraded: degraded-proc: Job aborted")
    assert stalled[4].endswith("…")  # clipped in a table; -o wide shows all of it
    code, out, err = run(*argv, "-o", "wide")
    assert (code, err) == (0, "")
    assert "Phase:       Degraded\n" in out
    assert "Ready:       2/3\n" in out
    conditions = {row[0]: row for row in section(out, "Conditions:")[1:]}
    assert conditions["Ready"][1:3] == ["False", "ChildrenDegraded"]
    assert conditions["Stalled"][1:3] == ["True", "ChildrenDegraded"]
    assert conditions["Stalled"][4] == f"Degraded: degraded-proc: {SPARK_ERROR}"
    children = section(out, "Children:")
    assert children[0] == [
        "KIND",
        "NAME",
        "NAMESPACE",
        "STREAMLET/TOPIC",
        "HEALTH",
        "REASON",
        "MESSAGE",
    ]
    assert children[1:] == [
        ["KafkaTopic", "degraded.ingress.out", "kafka", "degraded.ingress.out", "Healthy", "Ready"],
        ["Deployment", "degraded-ingress", NS_ONE, "ingress", "Healthy", "Available"],
        [
            "SparkApplication",
            "degraded-proc",
            NS_ONE,
            "proc",
            "Degraded",
            "FAILED",
            SPARK_ERROR,
        ],
    ]


def test_detail_of_a_stale_and_an_invalid_application(
    cluster: Cluster, apps: dict[str, Any], run: Any
) -> None:
    code, out, _ = run("stale", "-n", NS_ONE, "--kubeconfig", str(cluster.kubeconfig))
    assert code == 0
    assert "Phase:       Healthy (stale: the status describes generation 1, the spec is " in out
    code, out, _ = run("invalid", "-n", NS_TWO, "--kubeconfig", str(cluster.kubeconfig))
    assert code == 0
    assert "Phase:       Invalid\n" in out
    problems = out.split("Problems:\n", 1)[1].split("\n\n", 1)[0]
    assert problems.splitlines() == [f"  - {p}" for p in PROBLEMS]
    assert out.endswith("Children:    none\n")


def test_detail_as_json(cluster: Cluster, apps: dict[str, Any], run: Any) -> None:
    code, out, _ = run(
        "degraded", "-n", NS_ONE, "-o", "json", "--kubeconfig", str(cluster.kubeconfig)
    )
    assert code == 0
    summary = json.loads(out)
    assert (summary["namespace"], summary["name"], summary["phase"]) == (
        NS_ONE,
        "degraded",
        "Degraded",
    )
    assert (summary["ready"], summary["total"], summary["stale"]) == (2, 3, False)
    assert [child["health"] for child in summary["children"]] == ["Healthy", "Healthy", "Degraded"]


def test_an_application_without_status(cluster: Cluster, apps: dict[str, Any], run: Any) -> None:
    code, out, _ = run("fresh", "-n", NS_ONE, "--kubeconfig", str(cluster.kubeconfig))
    assert code == 0
    assert "Phase:       <none> (no status yet" in out


# ------------------------------------------------------------------ failures


def test_not_found_is_exit_1_and_one_line(cluster: Cluster, apps: dict[str, Any], run: Any) -> None:
    code, out, err = run("nope", "-n", NS_ONE, "--kubeconfig", str(cluster.kubeconfig))
    assert (code, out) == (1, "")
    assert err == f"federator: Application nope not found in namespace {NS_ONE}\n"


def test_a_refused_request_is_exit_2_and_one_line(
    cluster: Cluster, apps: dict[str, Any], run: Any
) -> None:
    code, out, err = run("-n", NS_ONE, "--kubeconfig", str(cluster.user_kubeconfig))
    assert (code, out) == (2, "")
    assert len(err.splitlines()) == 1
    assert err.startswith(f"federator: error: {cluster.plane.server} refused the request (403): ")
    assert "applications.federator.io is forbidden" in err


def kubeconfig_for(server: str, tmp_path: Path) -> str:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "c", "cluster": {"server": server, "insecure-skip-tls-verify": True}}
        ],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "x",
    }
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(config))
    return str(path)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.timeout(60)
def test_a_closed_port_is_exit_2_and_one_line(run: Any, tmp_path: Path) -> None:
    server = f"https://127.0.0.1:{free_port()}"
    code, out, err = run("--kubeconfig", kubeconfig_for(server, tmp_path), "--request-timeout", "2")
    assert (code, out) == (2, "")
    assert len(err.splitlines()) == 1
    assert err.startswith(f"federator: error: cannot reach the API server at {server}: ")
    assert "refused" in err.lower()


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A TCP port that accepts connections and never says a word (a hung API server)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(timeout=5)
        for conn in accepted:
            conn.close()
        listener.close()


@pytest.mark.timeout(60)
def test_a_server_that_never_answers_times_out_with_exit_2(
    run: Any, tmp_path: Path, silent_server: str
) -> None:
    code, out, err = run(
        "--kubeconfig", kubeconfig_for(silent_server, tmp_path), "--request-timeout", "1"
    )
    assert (code, out) == (2, "")
    assert len(err.splitlines()) == 1
    assert err.startswith(f"federator: error: cannot reach the API server at {silent_server}: ")
    assert "timed out" in err.lower()
