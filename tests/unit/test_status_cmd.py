"""`federator status` formatting (pure) and its offline failure modes (issue 4 item 6).

Aspects covered:
- the list: NAME PHASE READY AGE MESSAGE (NAMESPACE with -A), sorted, Ready message truncated
  (not with -o wide), stale status shown as `Phase (stale)`, missing status as `<none>`;
- the detail: phase, ready/total, conditions, the problems of an invalid spec one per line,
  children with kind, name, streamlet/topic, health, reason, message; NAMESPACE only when a
  child lives elsewhere;
- hostile or odd bodies: control characters and newlines never reach the terminal; any JSON
  body formats without raising (hypothesis);
- `-o json|yaml` summaries;
- exit code 2 with one line for usage errors and unusable kubeconfigs (no cluster needed).

Bodies are built the way the operator writes them: `health.aggregate` + `merge_conditions`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from federator.cli import main as cli_main
from federator.cli import status_cmd
from federator.cli.status_cmd import (
    format_app_detail,
    format_app_table,
    format_summaries,
    human_duration,
    summarize,
)
from federator.core import health as h

NOW = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
CREATED = "2025-03-01T10:30:00Z"  # 90 minutes before NOW
TRANSITION = "2025-03-01T11:55:00Z"  # 5 minutes before NOW
SPARK_ERROR = (
    "Job aborted due to stage failure: Task 3 in stage 1.0 failed 4 times, most recent failure: "
    "Lost task 3.3 in stage 1.0 (TID 12): java.lang.OutOfMemoryError: Java heap space\n"
    "\tat org.apache.spark.sql.execution.SparkPlan.executeQuery(SparkPlan.scala:218)"
)


def topic(name: str, health: h.ChildHealth) -> h.ChildReport:
    return h.ChildReport(kind="KafkaTopic", name=name, topic=name, health=health)


def streamlet(kind: str, app: str, name: str, health: h.ChildHealth) -> h.ChildReport:
    return h.ChildReport(kind=kind, name=f"{app}-{name}", streamlet=name, health=health)


HEALTHY_TOPIC = h.ChildHealth(health=h.Health.HEALTHY, reason="Ready")
API_VERSIONS = {
    "KafkaTopic": "kafka.strimzi.io/v1",
    "SparkApplication": "sparkoperator.k8s.io/v1beta2",
    "FlinkDeployment": "flink.apache.org/v1beta1",
    "Deployment": "apps/v1",
}


def app_body(
    name: str,
    children: Sequence[h.ChildReport],
    *,
    namespace: str = "apps",
    generation: int = 3,
    observed: int | None = 3,
    problems: Sequence[str] = (),
    topic_namespace: str = "kafka",
) -> dict[str, Any]:
    """An Application with the status the operator would write for these children."""
    app = h.aggregate(children, problems=problems)
    conditions = h.merge_conditions(
        [], app.conditions, now=TRANSITION, observed_generation=observed or 0
    )
    inventory = []
    for child in children:
        entry: dict[str, Any] = {
            "kind": child.kind,
            "apiVersion": API_VERSIONS[child.kind],
            "namespace": topic_namespace if child.kind == "KafkaTopic" else namespace,
            "name": child.name,
            "health": child.health.health.value,
            "reason": child.health.reason,
            "message": child.health.message,
            "specHash": "5f1c0a9e",
        }
        if child.topic:
            entry["topic"] = child.topic
        if child.streamlet:
            entry["streamlet"] = child.streamlet
        inventory.append(entry)
    status: dict[str, Any] = {
        "phase": app.phase,
        "ready": app.ready,
        "total": app.total,
        "summary": app.summary,
        "conditions": conditions,
        "children": inventory,
    }
    if observed is not None:
        status["observedGeneration"] = observed
    return {
        "apiVersion": "federator.io/v1alpha1",
        "kind": "Application",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "generation": generation,
            "creationTimestamp": CREATED,
            "uid": "0b4c8f4e-4d0e-4c55-9d4b-4b3b5b1d2f11",
        },
        "spec": {"streamlets": [{"name": "x", "runtime": "container", "image": "i"}]},
        "status": status,
    }


def healthy_app() -> dict[str, Any]:
    app = "call-record-aggregator"
    return app_body(
        app,
        [
            topic(f"{app}.cdr-generator1.out", HEALTHY_TOPIC),
            topic(f"{app}.merge.valid", HEALTHY_TOPIC),
            streamlet(
                "SparkApplication",
                app,
                "cdr-aggregator",
                h.ChildHealth(health=h.Health.HEALTHY, reason="RUNNING"),
            ),
            streamlet(
                "Deployment",
                app,
                "merge",
                h.ChildHealth(health=h.Health.HEALTHY, reason="Available"),
            ),
        ],
    )


def degraded_app() -> dict[str, Any]:
    app = "fraud"
    return app_body(
        app,
        [
            topic("fraud.ingest.out", HEALTHY_TOPIC),
            topic(
                "fraud.score.out",
                h.ChildHealth(
                    health=h.Health.DEGRADED,
                    reason="KafkaError",
                    message="Invalid replication factor: 3 larger than available brokers: 1",
                ),
            ),
            streamlet(
                "SparkApplication",
                app,
                "score",
                h.ChildHealth(health=h.Health.DEGRADED, reason="FAILED", message=SPARK_ERROR),
            ),
            streamlet(
                "FlinkDeployment",
                app,
                "enrich",
                h.ChildHealth(
                    health=h.Health.PROGRESSING,
                    reason="DEPLOYED",
                    message="waiting for the JobManager (DEPLOYING)",
                ),
            ),
        ],
        namespace="risk",
    )


PROBLEMS = (
    "spec.streamlets[1].inlets[0]: inlet 'in' of streamlet 'proc' is not connected",
    "spec.connections[0].from: unknown streamlet 'ingres'; did you mean 'ingress'?",
    "spec.topics[0].name: 'bad topic!' is not a valid Kafka topic name",
)


def invalid_app() -> dict[str, Any]:
    return app_body("broken", [], problems=PROBLEMS, generation=5, observed=5)


def no_status_app() -> dict[str, Any]:
    body = healthy_app()
    body["metadata"]["name"] = "fresh"
    del body["status"]
    return body


def stale_app() -> dict[str, Any]:
    body = healthy_app()
    body["metadata"]["name"] = "stale"
    body["metadata"]["generation"] = 4  # the spec changed; the operator has not caught up
    return body


def table_rows(text: str) -> list[list[str]]:
    """Rows of a kubectl-style table split on runs of 3+ spaces (cells have at most 2)."""
    import re

    return [re.split(r" {3,}", line.strip()) for line in text.splitlines() if line.strip()]


def section(text: str, title: str) -> str:
    """The lines of a detail section, up to the next blank line."""
    lines = text.splitlines()
    start = lines.index(title) + 1
    end = next((i for i in range(start, len(lines)) if not lines[i].strip()), len(lines))
    return "\n".join(lines[start:end])


# ------------------------------------------------------------------ the list


def test_list_columns_and_values() -> None:
    out = format_app_table([healthy_app(), degraded_app(), invalid_app()], now=NOW)
    rows = table_rows(out)
    assert rows[0] == ["NAME", "PHASE", "READY", "AGE", "MESSAGE"]
    by_name = {row[0]: row for row in rows[1:]}
    assert by_name["call-record-aggregator"] == [
        "call-record-aggregator",
        "Healthy",
        "4/4",
        "90m",
        "4/4 children healthy",
    ]
    assert by_name["fraud"][1:4] == ["Degraded", "1/4", "90m"]
    assert by_name["fraud"][4].startswith("Unready: fraud-score, fraud.score.out and 1 more")
    # An invalid application shows the Compiled message (why), not "see Compiled".
    assert by_name["broken"][1:3] == ["Invalid", "0/0"]
    assert by_name["broken"][4].startswith("3 problem(s): spec.streamlets[1].inlets[0]")


def test_list_is_sorted_and_all_namespaces_adds_the_namespace_column() -> None:
    items = [degraded_app(), healthy_app(), app_body("alpha", [], namespace="zeta")]
    rows = table_rows(format_app_table(items, all_namespaces=True, now=NOW))
    assert rows[0][0] == "NAMESPACE"
    assert [(row[0], row[1]) for row in rows[1:]] == [
        ("apps", "call-record-aggregator"),
        ("risk", "fraud"),
        ("zeta", "alpha"),
    ]


def test_list_truncates_the_message_unless_wide() -> None:
    out = format_app_table([invalid_app()], now=NOW)
    message = table_rows(out)[1][-1]
    assert len(message) == status_cmd.LIST_MESSAGE_WIDTH
    assert message.endswith("…")
    wide = table_rows(format_app_table([invalid_app()], now=NOW, wide=True))[1][-1]
    assert wide.startswith("3 problem(s)")
    assert "did you mean 'ingress'?" in wide
    assert all(len(line) < 400 for line in out.splitlines())


def test_list_marks_a_stale_status() -> None:
    rows = table_rows(format_app_table([stale_app()], now=NOW))
    assert rows[1][:3] == ["stale", "Healthy (stale)", "4/4"]


def test_list_shows_an_application_without_status() -> None:
    rows = table_rows(format_app_table([no_status_app()], now=NOW))
    assert rows[1] == [
        "fresh",
        "<none>",
        "-",
        "90m",
        "no status yet: the operator has not reconciled it",
    ]


def test_list_of_nothing_is_just_the_header() -> None:
    assert format_app_table([], now=NOW) == "NAME   PHASE   READY   AGE   MESSAGE"


# ------------------------------------------------------------------ one application


def test_detail_of_a_healthy_application() -> None:
    out = format_app_detail(healthy_app(), now=NOW)
    assert "Name:        call-record-aggregator\n" in out
    assert "Namespace:   apps\n" in out
    assert "Phase:       Healthy\n" in out
    assert "Ready:       4/4\n" in out
    assert "Age:         90m\n" in out
    conditions = table_rows(section(out, "Conditions:"))
    assert conditions[0] == ["TYPE", "STATUS", "REASON", "SINCE", "MESSAGE"]
    assert conditions[1] == ["Ready", "True", "AllChildrenHealthy", "5m", "4/4 children healthy"]
    assert [row[:3] for row in conditions[2:]] == [
        ["Reconciling", "False", "Converged"],
        ["Stalled", "False", "NotStalled"],
        ["Compiled", "True", "Compiled"],
        ["DelegatesAvailable", "True", "AllDelegatesInstalled"],
    ]
    children = table_rows(section(out, "Children:"))
    # Topics live in the Kafka cluster's namespace: the NAMESPACE column appears.
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
        [
            "KafkaTopic",
            "call-record-aggregator.cdr-generator1.out",
            "kafka",
            "call-record-aggregator.cdr-generator1.out",
            "Healthy",
            "Ready",
        ],
        [
            "KafkaTopic",
            "call-record-aggregator.merge.valid",
            "kafka",
            "call-record-aggregator.merge.valid",
            "Healthy",
            "Ready",
        ],
        [
            "SparkApplication",
            "call-record-aggregator-cdr-aggregator",
            "apps",
            "cdr-aggregator",
            "Healthy",
            "RUNNING",
        ],
        ["Deployment", "call-record-aggregator-merge", "apps", "merge", "Healthy", "Available"],
    ]
    assert "Problems:" not in out


def test_detail_has_no_namespace_column_when_every_child_is_local() -> None:
    body = app_body(
        "local",
        [streamlet("Deployment", "local", "a", h.ChildHealth(health=h.Health.HEALTHY, reason="x"))],
    )
    children = table_rows(section(format_app_detail(body, now=NOW), "Children:"))
    assert children[0] == ["KIND", "NAME", "STREAMLET/TOPIC", "HEALTH", "REASON", "MESSAGE"]
    assert children[1] == ["Deployment", "local-a", "a", "Healthy", "x"]


def test_detail_of_a_degraded_application_shows_each_childs_message() -> None:
    out = format_app_detail(degraded_app(), now=NOW)
    assert "Phase:       Degraded\n" in out
    assert "Ready:       1/4\n" in out
    rows = {row[1]: row for row in table_rows(section(out, "Children:"))[1:]}
    assert rows["fraud.score.out"][4:] == [
        "Degraded",
        "KafkaError",
        "Invalid replication factor: 3 larger than available brokers: 1",
    ]
    spark = rows["fraud-score"]
    assert spark[:6] == ["SparkApplication", "fraud-score", "risk", "score", "Degraded", "FAILED"]
    # Multi-line delegate errors become one clipped line.
    assert spark[6].startswith("Job aborted due to stage failure: Task 3")
    assert spark[6].endswith("…")
    assert len(spark[6]) == status_cmd.DETAIL_MESSAGE_WIDTH
    assert rows["fraud-enrich"][4:] == [
        "Progressing",
        "DEPLOYED",
        "waiting for the JobManager (DEPLOYING)",
    ]
    stalled = next(row for row in table_rows(section(out, "Conditions:")) if row[0] == "Stalled")
    assert stalled[1:3] == ["True", "ChildrenDegraded"]
    assert stalled[4].startswith("Degraded: fraud-score: Job aborted")


def test_wide_detail_keeps_whole_messages_on_one_line() -> None:
    out = format_app_detail(degraded_app(), now=NOW, wide=True)
    spark = next(row for row in table_rows(section(out, "Children:")) if row[1] == "fraud-score")
    assert spark[-1] == " ".join(SPARK_ERROR.split())
    assert "\t" not in out


def test_detail_of_a_stale_status_names_both_generations() -> None:
    out = format_app_detail(stale_app(), now=NOW)
    assert (
        "Phase:       Healthy (stale: the status describes generation 3, the spec is "
        "generation 4; the operator has not caught up)\n"
    ) in out
    assert summarize(stale_app())["stale"] is True
    assert summarize(healthy_app())["stale"] is False


def test_a_status_without_observed_generation_is_stale() -> None:
    body = app_body("x", [], observed=None)
    assert summarize(body)["stale"] is True
    assert "the status describes no generation" in format_app_detail(body, now=NOW)


def test_detail_of_an_invalid_application_lists_every_problem() -> None:
    out = format_app_detail(invalid_app(), now=NOW)
    assert "Phase:       Invalid\n" in out
    assert "Ready:       0/0\n" in out
    compiled = next(row for row in table_rows(section(out, "Conditions:")) if row[0] == "Compiled")
    assert compiled[1:3] == ["False", "Invalid"]
    # One line per problem, even when a message contains "; ".
    assert section(out, "Problems:").splitlines() == [f"  - {p}" for p in PROBLEMS]
    assert out.endswith("Children:    none\n")


def test_problems_fall_back_to_the_whole_message_when_the_count_disagrees() -> None:
    body = invalid_app()
    compiled = next(c for c in body["status"]["conditions"] if c["type"] == "Compiled")
    compiled["message"] = "2 problem(s): only one: here"
    assert section(format_app_detail(body, now=NOW), "Problems:") == "  - only one: here"


def test_detail_without_status() -> None:
    out = format_app_detail(no_status_app(), now=NOW)
    assert (
        "Phase:       <none> (no status yet: the operator has not reconciled this application)"
    ) in out
    assert "Ready:       -\n" in out
    assert "Conditions:" not in out
    assert out.endswith("Children:    none\n")


def test_control_characters_never_reach_the_terminal() -> None:
    evil = h.ChildHealth(
        health=h.Health.DEGRADED,
        reason="FAILED",
        message="\x1b[2J\x1b]0;pwned\x07line1\nline2\r\u202eevil",
    )
    body = app_body("evil", [streamlet("Deployment", "evil", "s", evil)])
    body["metadata"]["name"] = "evil\x1b[31m"
    for out in (
        format_app_detail(body, now=NOW, wide=True),
        format_app_table([body], now=NOW, wide=True),
    ):
        assert "\x1b" not in out
        assert "\x07" not in out
        assert "\r" not in out
        assert "\u202e" not in out
    detail = format_app_detail(body, now=NOW, wide=True)
    assert "\\x1b[2J\\x1b]0;pwned\\x07line1 line2 \\u202eevil" in detail


def test_a_summarised_inventory_says_so_and_counts_every_child() -> None:
    body = degraded_app()
    status = body["status"]
    status["children"] = [c for c in status["children"] if c["health"] != "Healthy"]
    status["inventory"] = {
        "summarised": True,
        "total": 3000,
        "listed": len(status["children"]),
        "counts": [
            {"kind": "Deployment", "health": "Healthy", "count": 1000},
            {"kind": "KafkaTopic", "health": "Degraded", "count": 1},
            {"kind": "KafkaTopic", "health": "Healthy", "count": 1999},
        ],
    }
    out = format_app_detail(body, now=NOW)
    assert f"3000 children, too many to list all: {len(status['children'])} shown" in out
    assert "Deployment: 1000 Healthy; KafkaTopic: 1 Degraded, 1999 Healthy" in out
    single = json.loads(format_summaries([body], "json", single=True))
    assert single["inventory"]["total"] == 3000
    assert json.loads(format_summaries([degraded_app()], "json", single=True))["inventory"] is None


def test_children_keep_the_operators_order() -> None:
    names = [row[1] for row in table_rows(section(format_app_detail(degraded_app()), "Children:"))]
    assert names[1:] == ["fraud.ingest.out", "fraud.score.out", "fraud-score", "fraud-enrich"]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=20,
)
status_keys = st.sampled_from(
    ["phase", "ready", "total", "summary", "conditions", "children", "observedGeneration"]
)


@settings(max_examples=200, deadline=None)
@given(
    metadata=st.dictionaries(
        st.sampled_from(["name", "namespace", "generation", "creationTimestamp"]), json_values
    ),
    status=json_values | st.dictionaries(status_keys, json_values),
    conditions=st.lists(
        st.dictionaries(st.sampled_from(["type", "status", "message"]), json_values)
    ),
)
def test_any_body_formats_without_raising(
    metadata: dict[str, Any], status: Any, conditions: list[Any]
) -> None:
    body: dict[str, Any] = {"metadata": metadata, "status": status}
    if isinstance(status, dict) and conditions:
        status["conditions"] = conditions
    assert isinstance(format_app_detail(body, now=NOW), str)
    assert isinstance(format_app_table([body], all_namespaces=True, now=NOW), str)
    json.loads(format_summaries([body], "json", single=True))


# ------------------------------------------------------------------ ages and machine output


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (-5, "<invalid>"),
        (-0.5, "0s"),
        (0, "0s"),
        (119, "119s"),
        (120, "2m"),
        (192, "3m12s"),
        (25 * 60, "25m"),
        (179 * 60, "179m"),
        (3 * 3600, "3h"),
        (5 * 3600 + 10 * 60, "5h10m"),
        (30 * 3600, "30h"),
        (3 * 86400 + 4 * 3600, "3d4h"),
        (200 * 86400, "200d"),
        (3 * 365 * 86400 + 20 * 86400, "3y20d"),
        (12 * 365 * 86400, "12y"),
    ],
    ids=str,
)
def test_human_duration_matches_kubectl(seconds: float, expected: str) -> None:
    assert human_duration(seconds) == expected


def test_json_and_yaml_summaries() -> None:
    single = json.loads(format_summaries([degraded_app()], "json", single=True))
    assert single["name"] == "fraud"
    assert single["namespace"] == "risk"
    assert single["phase"] == "Degraded"
    assert (single["ready"], single["total"], single["stale"]) == (1, 4, False)
    assert [c["type"] for c in single["conditions"]] == list(h.CONDITION_TYPES)
    assert single["children"][2]["message"] == SPARK_ERROR  # machine output is never clipped
    assert single["children"][0]["topic"] == "fraud.ingest.out"
    listed = yaml.safe_load(format_summaries([healthy_app(), stale_app()], "yaml", single=False))
    assert [(s["name"], s["stale"]) for s in listed["items"]] == [
        ("call-record-aggregator", False),
        ("stale", True),
    ]


# ------------------------------------------------------------------ the command, offline


@pytest.fixture
def run(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Any:
    """`federator status ...` through main(), whether or not main lists the module yet."""
    if "federator.cli.status_cmd" not in cli_main.COMMAND_MODULES:
        monkeypatch.setattr(
            cli_main,
            "COMMAND_MODULES",
            (*cli_main.COMMAND_MODULES, "federator.cli.status_cmd"),
        )

    def invoke(*argv: str) -> tuple[int, str, str]:
        code = cli_main.main(["status", *argv])
        out, err = capsys.readouterr()
        assert "Traceback" not in out + err
        return code, out, err

    return invoke


def test_name_with_all_namespaces_is_a_usage_error(run: Any, tmp_path: Path) -> None:
    code, _, err = run("app", "-A", "--kubeconfig", str(tmp_path / "none"))
    assert code == 2
    assert err.strip() == (
        "federator: error: NAME cannot be combined with -A/--all-namespaces: give -n NAMESPACE"
    )


def test_namespace_and_all_namespaces_are_exclusive(run: Any) -> None:
    with pytest.raises(SystemExit) as exc:
        run("-n", "a", "-A")
    assert exc.value.code == 2


def test_missing_kubeconfig_file(run: Any, tmp_path: Path) -> None:
    code, _, err = run("--kubeconfig", str(tmp_path / "absent"))
    assert code == 2
    assert err.strip() == f"federator: error: --kubeconfig {tmp_path / 'absent'}: no such file"


@pytest.mark.parametrize(
    "text",
    [
        "{not yaml: [",
        "just a string",
        "apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n",
        "apiVersion: v1\nkind: Config\ncurrent-context: gone\ncontexts: []\n",
    ],
    ids=["bad-yaml", "scalar", "empty-config", "unknown-context"],
)
def test_unusable_kubeconfig_is_one_line_and_exit_2(run: Any, tmp_path: Path, text: str) -> None:
    path = tmp_path / "config"
    path.write_text(text, encoding="utf-8")
    code, out, err = run("--kubeconfig", str(path))
    assert code == 2
    assert out == ""
    assert len(err.strip().splitlines()) == 1
    assert err.startswith(f"federator: error: cannot use kubeconfig {path}: ")


def test_no_kubeconfig_anywhere(run: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    code, _, err = run()
    assert code == 2
    assert "no kubeconfig: pass --kubeconfig FILE, set KUBECONFIG" in err


def test_request_timeout_must_be_positive(run: Any, tmp_path: Path) -> None:
    code, _, err = run("--request-timeout", "0", "--kubeconfig", str(tmp_path))
    assert code == 2
    assert "--request-timeout must be a positive number" in err


def test_register_adds_a_status_command_with_its_defaults() -> None:
    import argparse

    parser = argparse.ArgumentParser()
    status_cmd.register(parser.add_subparsers())
    args = parser.parse_args(["status"])
    assert args.func is status_cmd.cmd_status
    assert (args.name, args.namespace, args.all_namespaces, args.output) == (
        None,
        None,
        False,
        "table",
    )
    assert args.request_timeout == status_cmd.DEFAULT_REQUEST_TIMEOUT
    args = parser.parse_args(["status", "app", "-n", "ns", "-o", "yaml", "--context", "c"])
    assert (args.name, args.namespace, args.output, args.context) == ("app", "ns", "yaml", "c")
