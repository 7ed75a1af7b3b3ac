"""Benchmark of the operator on the embedded control plane, each figure with a baseline.

    python bench/reconcile.py                 # 15 repeats, 200 status changes, 5 resync periods
    python bench/reconcile.py --quick         # 2 repeats, 40 changes, 3 periods (a smoke run)
    python bench/reconcile.py --output PATH   # write the section elsewhere than docs/PERFORMANCE.md
    python bench/reconcile.py --service-account deployer   # children written as that account

It starts the embedded control plane (`federator.devcluster`), installs the Application CRD and
the real delegate CRDs vendored in third_party/delegate-crds, runs `federator run` as a
subprocess and the delegate simulator in a thread (interval 0.05 s), and measures:

1. apply -> all children created, for the seed example (15 children), versus the FLOOR measured
   in the same run: a minimal script that POSTs the same Application, server-side applies the
   same 15 compiled children with the same client (`federator.kube.client.Kube`), each wave at
   once, topics first, waits (list + watch) until the simulator made every topic Ready, then
   applies the streamlets;
2. child status change -> the Application's `status.children` entry shows the new health
   (p50/p99 over N changes, received on a watch of the Application);
3. status writes per child change, and for a burst of 20 child status changes at once;
4. API writes during no-op resyncs (`resyncSeconds: 2`) of a converged application;
5. fair queueing: a one-line change to a small application B while an application A at the
   size limits (1,000 streamlets, 3,000 children) is being created, versus B alone.

Only the part of the output file between the `bench:reconcile` markers is (re)written.
See bench/README.md for the method.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import datetime as dt
import importlib.util
import itertools
import json
import os
import queue
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import urllib3
import yaml

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # `python bench/reconcile.py` from a checkout without an install
    sys.path.insert(0, str(REPO))

from federator.core import delegates, health, limits, naming  # noqa: E402
from federator.core.compiler import compile_application  # noqa: E402
from federator.core.settings import parse_settings  # noqa: E402
from federator.devcluster import build, crdfiles  # noqa: E402
from federator.devcluster.harness import (  # noqa: E402
    OperatorProcess,
    eventually,
    free_port,
    parse_metrics,
)
from federator.devcluster.launcher import ControlPlane  # noqa: E402
from federator.kube.client import Kube  # noqa: E402
from federator.kube.discovery import discover  # noqa: E402
from federator.operator.reconciler import ref_of  # noqa: E402
from federator.simulator import DelegateSimulator  # noqa: E402

START = "<!-- bench:reconcile:start -->"
END = "<!-- bench:reconcile:end -->"
DELEGATES = crdfiles.delegate_crds_dir()
SEED = REPO / "examples" / "call-record-aggregator.yaml"
APP_PATH = "/apis/federator.io/v1alpha1/namespaces/{ns}/applications"
KAFKA_NS = "bench-kafka"  # the operator's Kafka cluster namespace
FLOOR_KAFKA_NS = "bench-floor-kafka"  # the floor's (not watched by the operator)
STATUS_NS = "bench-status"
FAIR_A_NS = "bench-fair-a"  # the application at the limits
FAIR_B_NS = "bench-fair-b"  # the small one, changed meanwhile
FAIR_STREAMLET = "merge"  # B's container streamlet whose config a change edits
SIM_INTERVAL = 0.05
FLOOR_THREADS = 8  # the floor applies a wave concurrently, as the operator does (OBSERVERS)
GOAL_RATIO = 1.5
GOAL_P99 = 1.0
GOAL_FAIR_RATIO = 5.0
GOAL_FAIR_MAX = 2.0
CHANGE_TIMEOUT = 15.0
BURST = 20
HEALTHY = health.Health.HEALTHY
MUTATING = frozenset({"POST", "PUT", "PATCH", "APPLY", "DELETE", "DELETECOLLECTION"})


def _load_compile_bench() -> Any:
    """bench/compile.py, for its machine description and its section writer."""
    spec = importlib.util.spec_from_file_location(
        "bench_compile", Path(__file__).with_name("compile.py")
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def pct(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))
    return ordered[int(rank) - 1]


# --- the operator as a subprocess ----------------------------------------------------------------


# --- watching -----------------------------------------------------------------------------------


@dataclass
class Watcher:
    """A list-then-watch of one kind in one namespace (label-selected) in a thread; records the
    monotonic time each object was first seen and queues every event with its receipt time."""

    api_client: Any
    group: str
    version: str
    plural: str
    namespace: str
    label_selector: str | None = None
    field_selector: str | None = None
    first_seen: dict[str, float] = field(default_factory=dict)
    events: queue.Queue[tuple[float, str, dict[str, Any]]] = field(default_factory=queue.Queue)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> Watcher:
        from kubernetes import client

        custom = client.CustomObjectsApi(self.api_client)
        listed = custom.list_namespaced_custom_object(
            self.group,
            self.version,
            self.namespace,
            self.plural,
            label_selector=self.label_selector,
            field_selector=self.field_selector,
        )
        now = time.monotonic()
        for item in listed.get("items", []):
            self.first_seen.setdefault(item["metadata"]["name"], now)
            self.events.put((now, "LISTED", item))
        rv = listed["metadata"]["resourceVersion"]
        self._thread = threading.Thread(target=self._run, args=(custom, rv), daemon=True)
        self._thread.start()
        return self

    def _run(self, custom: Any, rv: str) -> None:
        from kubernetes import watch
        from kubernetes.client.exceptions import ApiException

        while not self._stop.is_set():
            w = watch.Watch()
            try:
                for event in w.stream(
                    custom.list_namespaced_custom_object,
                    self.group,
                    self.version,
                    self.namespace,
                    self.plural,
                    label_selector=self.label_selector,
                    field_selector=self.field_selector,
                    resource_version=rv,
                    timeout_seconds=30,
                ):
                    now = time.monotonic()
                    obj = event["object"]
                    if event["type"] == "ERROR":
                        break
                    rv = obj["metadata"]["resourceVersion"]
                    self.first_seen.setdefault(obj["metadata"]["name"], now)
                    self.events.put((now, event["type"], obj))
                    if self._stop.is_set():
                        w.stop()
            except (ApiException, OSError, ValueError, urllib3.exceptions.HTTPError):
                if self._stop.is_set():
                    return
                time.sleep(0.05)

    def stop(self) -> None:
        self._stop.set()


def custom_watcher(
    api_client: Any, kind: str, api_version: str, namespace: str, **selectors: str
) -> Watcher:
    group, _, version = api_version.rpartition("/")
    return Watcher(
        api_client, group, version, delegates.BY_KIND[kind].plural, namespace, **selectors
    )


# --- the bench environment ----------------------------------------------------------------------


@dataclass
class Bench:
    plane: ControlPlane
    workdir: Path
    quick: bool
    repeats: int
    changes: int
    periods: int
    sim: DelegateSimulator | None = None
    operator: OperatorProcess | None = None
    admin: Any = None
    op_namespaces: list[str] = field(default_factory=list)
    floor_namespaces: list[str] = field(default_factory=list)
    service_account: str | None = None
    """Write the operator's children as this ServiceAccount of each namespace (impersonated,
    `impersonation.defaultServiceAccount` under the lock-down); None: federator's identity."""

    # -- setup

    def setup(self) -> None:
        self.plane.install_crds(REPO / "crds" / "application.yaml")
        self.plane.install_crds(*crdfiles.delegate_crd_files(DELEGATES))
        self.op_namespaces = [f"bench-op-{i}" for i in range(1, self.repeats + 1)]
        self.floor_namespaces = [f"bench-floor-{i}" for i in range(1, self.repeats + 1)]
        for ns in (
            *self.op_namespaces,
            *self.floor_namespaces,
            KAFKA_NS,
            FLOOR_KAFKA_NS,
            STATUS_NS,
            FAIR_A_NS,
            FAIR_B_NS,
        ):
            status, body = self.plane.request(
                "POST",
                "/api/v1/namespaces",
                {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}},
            )
            assert status in (201, 409), body
        if self.service_account:
            for ns in (*self.op_namespaces, STATUS_NS):
                self.writer_account(ns, self.service_account)
        self.admin = self.plane.api_client("admin")
        self.sim = DelegateSimulator(self.plane.api_client("admin"), interval=SIM_INTERVAL)
        self.sim.run_in_thread()

    def writer_account(self, namespace: str, name: str) -> None:
        """A ServiceAccount allowed to write the seed's streamlet children in `namespace`."""
        verbs = ["get", "list", "watch", "create", "patch", "update", "delete"]
        rbac = f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}"
        rules = [
            {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": verbs},
            {
                "apiGroups": ["sparkoperator.k8s.io"],
                "resources": ["sparkapplications"],
                "verbs": verbs,
            },
        ]
        subject = {"kind": "ServiceAccount", "name": name, "namespace": namespace}
        for path, fields in (
            (f"/api/v1/namespaces/{namespace}/serviceaccounts", {"kind": "ServiceAccount"}),
            (f"{rbac}/roles", {"kind": "Role", "rules": rules}),
            (
                f"{rbac}/rolebindings",
                {
                    "kind": "RoleBinding",
                    "roleRef": {
                        "apiGroup": "rbac.authorization.k8s.io",
                        "kind": "Role",
                        "name": name,
                    },
                    "subjects": [subject],
                },
            ),
        ):
            version = "v1" if "serviceaccounts" in path else "rbac.authorization.k8s.io/v1"
            body = {"apiVersion": version, **fields, "metadata": {"name": name}}
            status, got = self.plane.request("POST", path, body)
            assert status in (201, 409), got

    def settings_file(self, name: str, **operator: Any) -> Path:
        path = self.workdir / f"{name}.yaml"
        settings: dict[str, Any] = {
            "kafkaClusters": [self.cluster(KAFKA_NS)],
            "operator": {"metricsPort": free_port(), "livenessPort": free_port(), **operator},
        }
        if self.service_account:
            settings["impersonation"] = {
                "defaultServiceAccount": self.service_account,
                "requireServiceAccount": True,
            }
        path.write_text(yaml.safe_dump(settings))
        return path

    @staticmethod
    def cluster(namespace: str) -> dict[str, Any]:
        return {
            "name": "default",
            "strimziCluster": "pipelines-strimzi",
            "namespace": namespace,
            "bootstrapServers": "pipelines-strimzi-kafka-bootstrap:9092",
        }

    def start_operator(self, settings: Path, log: str) -> OperatorProcess:
        self.operator = OperatorProcess(
            settings,
            self.plane.kubeconfig,
            self.workdir / log,
            [*self.op_namespaces, STATUS_NS, KAFKA_NS, FAIR_A_NS, FAIR_B_NS],
        )
        self.operator.start()
        return self.operator

    # -- helpers

    @staticmethod
    def seed(name: str, namespace: str) -> dict[str, Any]:
        body: dict[str, Any] = yaml.safe_load(SEED.read_text())
        body["metadata"] = {"name": name, "namespace": namespace}
        return body

    def post_app(self, body: dict[str, Any]) -> dict[str, Any]:
        status, got = self.plane.request(
            "POST", APP_PATH.format(ns=body["metadata"]["namespace"]), body
        )
        assert status == 201, got
        return got  # type: ignore[no-any-return]

    def get_app(self, namespace: str, name: str) -> dict[str, Any] | None:
        status, got = self.plane.request("GET", f"{APP_PATH.format(ns=namespace)}/{name}")
        return got if status == 200 else None

    def app_healthy(self, namespace: str, name: str) -> bool:
        body = self.get_app(namespace, name) or {}
        status = body.get("status") or {}
        return (
            status.get("phase") == "Healthy"
            and status.get("observedGeneration") == body["metadata"]["generation"]
        )

    def children_gone(self, name: str, app_ns: str, kafka_ns: str) -> bool:
        selector = f"{naming.APPLICATION_LABEL}={name}"
        for path in (
            f"/apis/kafka.strimzi.io/v1/namespaces/{kafka_ns}/kafkatopics",
            f"/apis/sparkoperator.k8s.io/v1beta2/namespaces/{app_ns}/sparkapplications",
            f"/apis/apps/v1/namespaces/{app_ns}/deployments",
        ):
            status, body = self.plane.request("GET", f"{path}?labelSelector={selector}")
            if status != 200 or body["items"]:
                return False
        return True

    def delete_app(self, name: str, app_ns: str, kafka_ns: str) -> None:
        """Delete the Application and all its children (Retain topics included); wait until
        everything is gone, so the next repeat starts on a quiet cluster."""
        self.plane.request("DELETE", f"{APP_PATH.format(ns=app_ns)}/{name}")
        eventually(lambda: self.get_app(app_ns, name) is None, f"{name} deleted", 60, 0.1)
        selector = f"{naming.APPLICATION_LABEL}={name}"
        # Owned children too, rather than waiting for the garbage collector (which learns
        # about a new CRD's owners only at its next discovery, up to 30 s later).
        for path in (
            f"/apis/kafka.strimzi.io/v1/namespaces/{kafka_ns}/kafkatopics",
            f"/apis/sparkoperator.k8s.io/v1beta2/namespaces/{app_ns}/sparkapplications",
            f"/apis/apps/v1/namespaces/{app_ns}/deployments",
        ):
            self.plane.request("DELETE", f"{path}?labelSelector={selector}")
        eventually(lambda: self.children_gone(name, app_ns, kafka_ns), "children gone", 60, 0.1)

    def creation_watchers(
        self, name: str, app_ns: str, kafka_ns: str, children: Any
    ) -> list[Watcher]:
        selector = f"{naming.APPLICATION_LABEL}={name}"
        kinds = {(c.kind, c.api_version, c.namespace) for c in children}
        return [
            custom_watcher(
                self.plane.api_client("admin"), kind, api_version, ns, label_selector=selector
            ).start()
            for kind, api_version, ns in sorted(kinds)
        ]

    # -- 1. apply -> all children created

    def run_operator_once(self, index: int) -> dict[str, float]:
        assert self.operator is not None
        ns = self.op_namespaces[index]
        name = f"call-record-aggregator-{index + 1}"
        body = self.seed(name, ns)
        expected = self.expected_children(body, KAFKA_NS)
        watchers = self.creation_watchers(name, ns, KAFKA_NS, expected)
        time.sleep(0.3)  # let the watch connections establish (the list gave their start point)
        names = {c.name for c in expected}
        writes0 = self.operator.metric("federator_api_writes_total")
        reconciles0 = self.operator.metric("federator_reconcile_duration_seconds_count")
        busy0 = self.operator.metric("federator_reconcile_duration_seconds_sum")
        cpu0 = self.operator.cpu_seconds()
        t0 = time.monotonic()
        self.post_app(body)
        seen = self._wait_created(watchers, names)
        created = max(seen.values()) - t0
        topics_done = max(seen[c.name] for c in expected if c.wave == 0) - t0
        eventually(lambda: self.app_healthy(ns, name), f"{name} Healthy", 60, 0.02)
        healthy = time.monotonic() - t0
        result = {
            "created": created,
            "topics": topics_done,
            "healthy": healthy,
            "writes": self.operator.metric("federator_api_writes_total") - writes0,
            "reconciles": self.operator.metric("federator_reconcile_duration_seconds_count")
            - reconciles0,
            "cpu": self.operator.cpu_seconds() - cpu0,
            "reconcile_s": self.operator.metric("federator_reconcile_duration_seconds_sum") - busy0,
        }
        for w in watchers:
            w.stop()
        self.delete_app(name, ns, KAFKA_NS)
        return result

    def expected_children(self, body: dict[str, Any], kafka_ns: str) -> Any:
        settings = parse_settings({"kafkaClusters": [self.cluster(kafka_ns)]})
        body = {**body, "metadata": {**body["metadata"], "uid": "x", "generation": 1}}
        return compile_application(body, settings).children

    def run_floor_once(self, index: int) -> dict[str, float]:
        """The floor: POST, compile, apply topics, list+watch until all Ready, apply the rest."""
        from kubernetes import client, watch

        ns = self.floor_namespaces[index]
        name = f"call-record-aggregator-{index + 1}"
        settings = parse_settings({"kafkaClusters": [self.cluster(FLOOR_KAFKA_NS)]})
        kube = Kube(self.plane.api_client("admin"))  # the operator's client class, own pool
        served = discover(kube).for_cluster(settings.kafka_cluster("default"))  # setup, untimed
        body = self.seed(name, ns)
        expected = self.expected_children(body, FLOOR_KAFKA_NS)
        watchers = self.creation_watchers(name, ns, FLOOR_KAFKA_NS, expected)
        time.sleep(0.3)
        names = {c.name for c in expected}
        # A wave's applies run concurrently, as the operator's do. The operator's threads and
        # connections are long-lived, so the floor's are started and warmed (one GET per
        # thread, at once) before its clock starts.
        pool = ThreadPoolExecutor(FLOOR_THREADS, thread_name_prefix="floor")
        list(pool.map(lambda _: kube.get_application(ns, "warm-up"), range(FLOOR_THREADS)))

        def apply_all(wave: list[Any]) -> None:
            list(
                pool.map(
                    lambda c: kube.apply(
                        ref_of(c.kind, c.api_version, c.namespace, c.name), c.manifest, c.kind
                    ),
                    wave,
                )
            )

        t0 = time.monotonic()
        app = self.post_app(body)
        children = compile_application(app, settings, served=served).children
        topics = [c for c in children if c.wave == 0]
        rest = [c for c in children if c.wave != 0]
        apply_all(topics)
        t_topics = time.monotonic()
        group, _, version = topics[0].api_version.rpartition("/")
        custom = client.CustomObjectsApi(kube.api)
        selector = f"{naming.APPLICATION_LABEL}={name}"
        listed = custom.list_namespaced_custom_object(
            group, version, FLOOR_KAFKA_NS, "kafkatopics", label_selector=selector
        )
        ready = {
            t["metadata"]["name"]
            for t in listed["items"]
            if delegates.assess(delegates.KAFKA_TOPIC.kind, t).health is HEALTHY
        }
        want = {c.name for c in topics}
        if not want <= ready:
            w = watch.Watch()
            for event in w.stream(
                custom.list_namespaced_custom_object,
                group,
                version,
                FLOOR_KAFKA_NS,
                "kafkatopics",
                label_selector=selector,
                resource_version=listed["metadata"]["resourceVersion"],
                timeout_seconds=60,
            ):
                obj = event["object"]
                if delegates.assess(delegates.KAFKA_TOPIC.kind, obj).health is HEALTHY:
                    ready.add(obj["metadata"]["name"])
                if want <= ready:
                    w.stop()
                    break
        if not want <= ready:
            raise RuntimeError(f"floor: topics never Ready: {sorted(want - ready)}")
        t_ready = time.monotonic()
        apply_all(rest)
        t_done = time.monotonic()
        seen = self._wait_created(watchers, names)
        result = {
            "created": max(seen.values()) - t0,
            "topics": max(seen[c.name] for c in expected if c.wave == 0) - t0,
            "script": t_done - t0,
            "apply_topics": t_topics - t0,
            "wait_topics": t_ready - t_topics,
            "apply_rest": t_done - t_ready,
        }
        pool.shutdown()
        for w2 in watchers:
            w2.stop()
        self.delete_app(name, ns, FLOOR_KAFKA_NS)
        return result

    @staticmethod
    def _wait_created(watchers: list[Watcher], names: set[str]) -> dict[str, float]:
        def seen() -> dict[str, float] | None:
            got: dict[str, float] = {}
            for w in watchers:
                got.update(w.first_seen)
            return got if names <= got.keys() else None

        got = eventually(seen, "all children created", 60, 0.01)
        return {n: got[n] for n in names}

    # -- 2. + 3. child status change -> application status

    def status_app(self) -> tuple[str, str]:
        name = "call-record-aggregator"
        self.post_app(self.seed(name, STATUS_NS))
        eventually(lambda: self.app_healthy(STATUS_NS, name), f"{name} Healthy", 120, 0.1)
        return STATUS_NS, name

    def child_paths(self, ns: str, name: str) -> dict[str, tuple[str, str]]:
        """child name -> (kind, object path) for the children whose status the bench patches
        directly (KafkaTopic and SparkApplication; a Deployment's belongs to its controller)."""
        body = self.get_app(ns, name) or {}
        out = {}
        for c in body["status"]["children"]:
            if c["kind"] not in ("KafkaTopic", "SparkApplication"):
                continue
            plural = delegates.BY_KIND[c["kind"]].plural
            out[c["name"]] = (
                c["kind"],
                f"/apis/{c['apiVersion']}/namespaces/{c['namespace']}/{plural}/{c['name']}",
            )
        return out

    def patch_status(self, path: str, status: dict[str, Any]) -> None:
        code, got = self.plane.request(
            "PATCH",
            f"{path}/status",
            {"status": status},
            content_type="application/merge-patch+json",
        )
        assert code == 200, got

    @staticmethod
    def degraded_status(kind: str, live: dict[str, Any], message: str) -> dict[str, Any]:
        if kind == "SparkApplication":
            return {"applicationState": {"state": "FAILED", "errorMessage": message}}
        return {
            "conditions": [
                {
                    "type": "Ready",
                    "status": "False",
                    "reason": "KafkaError",
                    "message": message,
                    "lastTransitionTime": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                }
            ],
            "observedGeneration": live["metadata"]["generation"],
        }

    def restore(self, path: str, original: dict[str, Any]) -> None:
        """Put a child's whole status back (PUT on /status: replace, not merge)."""
        _, live = self.plane.request("GET", path)
        live["status"] = copy.deepcopy(original)
        code, got = self.plane.request("PUT", f"{path}/status", live)
        assert code == 200, got

    def status_latency(self, ns: str, name: str, changes: int) -> dict[str, Any]:
        """Alternate FAILED / RUNNING on a Spark child through /status; measure until a watch
        event of the Application shows that child's entry with the new health."""
        assert self.operator is not None
        paths = self.child_paths(ns, name)
        spark = f"{name}-cdr-aggregator"
        _kind, path = paths[spark]
        watcher = Watcher(
            self.plane.api_client("admin"),
            "federator.io",
            "v1alpha1",
            "applications",
            ns,
            field_selector=f"metadata.name={name}",
        ).start()
        time.sleep(0.3)
        before = self.counters()
        latencies: list[float] = []
        timeouts = 0
        for i in range(changes + 1):  # change 0 warms the path up and is not counted
            failed = i % 2 == 0
            want = "Degraded" if failed else "Healthy"
            while not watcher.events.empty():
                watcher.events.get_nowait()
            t0 = time.monotonic()
            if failed:
                self.patch_status(
                    path, {"applicationState": {"state": "FAILED", "errorMessage": f"bench {i}"}}
                )
            else:
                self.patch_status(
                    path, {"applicationState": {"state": "RUNNING", "errorMessage": None}}
                )
            deadline = t0 + CHANGE_TIMEOUT
            got = None
            while got is None and time.monotonic() < deadline:
                try:
                    at, _type, obj = watcher.events.get(
                        timeout=max(0.0, deadline - time.monotonic())
                    )
                except queue.Empty:
                    break
                entry = next(
                    (
                        c
                        for c in (obj.get("status") or {}).get("children") or []
                        if c["name"] == spark
                    ),
                    None,
                )
                if entry is not None and entry["health"] == want:
                    got = at
            if i == 0:
                time.sleep(0.5)  # the counter moves just after the write the watch saw
                before = self.counters()
                continue
            if got is None:
                timeouts += 1
                latencies.append(CHANGE_TIMEOUT)
            else:
                latencies.append(got - t0)
        # Let the last change's trailing writes (if any) land before reading the counters.
        time.sleep(1.0)
        after = self.counters()
        watcher.stop()
        if changes % 2 == 0:  # the last change (index `changes`) was FAILED: recover
            self.patch_status(
                path, {"applicationState": {"state": "RUNNING", "errorMessage": None}}
            )
        eventually(lambda: self.app_healthy(ns, name), "Healthy after the changes", 30)
        return {
            "latencies": latencies,
            "timeouts": timeouts,
            **{k: after[k] - before[k] for k in after},
        }

    def counters(self) -> dict[str, float]:
        """The operator's status and API writes, the API server's status PATCHes of
        Applications, and the children the reconciles observed from the cache or by GET."""
        assert self.operator is not None
        return {
            "status_writes": self.operator.metric("federator_status_writes_total"),
            "api_writes": self.operator.metric("federator_api_writes_total"),
            "server_status_patches": self.apiserver_writes().get("PATCH applications/status", 0.0),
            "reads_cache": self.operator.metric("federator_child_reads_total", source="cache"),
            "reads_api": self.operator.metric("federator_child_reads_total", source="api"),
        }

    def burst(self, ns: str, name: str) -> dict[str, Any]:
        """20 child status changes at once: every patchable child (7 topics, 3 Spark apps)
        Degraded, then at once Degraded again with another message; count status writes until
        the Application shows the final state (plus a quiet second)."""
        assert self.operator is not None
        paths = self.child_paths(ns, name)
        originals = {}
        lives = {}
        for child, (_kind, path) in paths.items():
            _, live = self.plane.request("GET", path)
            lives[child] = live
            originals[child] = copy.deepcopy(live.get("status") or {})
        rounds = max(1, BURST // len(paths))
        changes = rounds * len(paths)
        writes0 = self.operator.metric("federator_status_writes_total")
        reconciles0 = self.operator.metric("federator_reconcile_duration_seconds_count")
        t0 = time.monotonic()
        with ThreadPoolExecutor(len(paths)) as pool:
            for r in range(rounds):
                list(
                    pool.map(
                        lambda item, r=r: self.patch_status(
                            item[1][1],
                            self.degraded_status(item[1][0], lives[item[0]], f"burst round {r}"),
                        ),
                        paths.items(),
                    )
                )
        final = f"burst round {rounds - 1}"

        def shows_final() -> bool:
            body = self.get_app(ns, name) or {}
            entries = {c["name"]: c for c in (body.get("status") or {}).get("children") or []}
            return all(
                entries.get(c, {}).get("health") == "Degraded"
                and final in str(entries.get(c, {}).get("message"))
                for c in paths
            )

        eventually(shows_final, "the burst's final state", 30, 0.02)
        settled = time.monotonic() - t0
        time.sleep(1.0)
        writes = self.operator.metric("federator_status_writes_total") - writes0
        reconciles = (
            self.operator.metric("federator_reconcile_duration_seconds_count") - reconciles0
        )
        for child, (_kind, path) in paths.items():
            self.restore(path, originals[child])
        eventually(lambda: self.app_healthy(ns, name), "Healthy after the burst", 30)
        return {
            "changes": changes,
            "children": len(paths),
            "status_writes": writes,
            "reconciles": reconciles,
            "settled": settled,
        }

    # -- 5. fair queueing

    @staticmethod
    def at_the_limits(name: str, namespace: str, streamlets: int) -> dict[str, Any]:
        """A line of Spark streamlets with two outlets each (one feeds the next), three
        children per streamlet: at both default limits with 1,000 streamlets. Spark, whose
        status the simulator writes: a thousand Deployments would wait for the
        kube-controller-manager, whose client is limited to 20 requests/s, which measures the
        controller, not federator. deletionPolicy Delete: its deletion is the finalizer's work."""
        names = [f"s{i:04d}" for i in range(streamlets)]
        return {
            "apiVersion": "federator.io/v1alpha1",
            "kind": "Application",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {
                "deletionPolicy": "Delete",
                "streamlets": [
                    {
                        "name": s,
                        "runtime": "spark",
                        "image": "registry.example.com/bench/large:1.0",
                        "spark": {"mainApplicationFile": "local:///opt/app/large.jar"},
                        **({"inlets": ["in"]} if i else {}),
                        "outlets": ["out", "audit"],
                    }
                    for i, s in enumerate(names)
                ],
                "connections": [
                    {"from": f"{a}.out", "to": [f"{b}.in"]} for a, b in itertools.pairwise(names)
                ],
            },
        }

    def one_line_change(
        self, ns: str, name: str, watcher: Watcher, n: int, probe: Any = None
    ) -> tuple[float, int]:
        """Set one config value of B's `merge` streamlet (so exactly one Deployment changes):
        seconds from just before the PATCH to that Deployment's new spec-hash on a watch, and
        what `probe()` said then. Then wait (untimed) until B is Healthy again, so each change
        starts from rest."""
        body = self.get_app(ns, name) or {}
        index = next(
            i for i, s in enumerate(body["spec"]["streamlets"]) if s["name"] == FAIR_STREAMLET
        )
        deployment = f"{name}-{FAIR_STREAMLET}"
        _, live = self.plane.request(
            "GET", f"/apis/apps/v1/namespaces/{ns}/deployments/{deployment}"
        )
        before = live["metadata"]["annotations"][naming.SPEC_HASH_ANNOTATION]
        while not watcher.events.empty():
            watcher.events.get_nowait()
        patch = [
            {
                "op": "add",
                "path": f"/spec/streamlets/{index}/config",
                "value": {"bench-change": str(n)},
            }
        ]
        t0 = time.monotonic()
        code, got = self.plane.request(
            "PATCH",
            f"{APP_PATH.format(ns=ns)}/{name}",
            patch,
            content_type="application/json-patch+json",
        )
        assert code == 200, got
        deadline = t0 + 120
        seen = None
        while seen is None:
            try:
                at, _type, obj = watcher.events.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise RuntimeError(f"change {n} of {name} never reached {deployment}") from None
            annotations = obj["metadata"].get("annotations") or {}
            if annotations.get(naming.SPEC_HASH_ANNOTATION) not in (None, before):
                seen = at
        then = probe() if probe is not None else 0
        eventually(lambda: self.app_healthy(ns, name), f"{name} Healthy again", 120, 0.05)
        return seen - t0, then

    def fairness(self, changes: int, streamlets: int) -> dict[str, Any]:
        """Section 5: B's one-line changes alone, then while A (at the limits) is created."""
        assert self.operator is not None
        b_name, a_name = "call-record-aggregator", "at-the-limits"
        self.post_app(self.seed(b_name, FAIR_B_NS))
        eventually(lambda: self.app_healthy(FAIR_B_NS, b_name), "B Healthy", 120, 0.05)
        watcher = custom_watcher(
            self.plane.api_client("admin"),
            "Deployment",
            "apps/v1",
            FAIR_B_NS,
            field_selector=f"metadata.name={b_name}-{FAIR_STREAMLET}",
        ).start()
        time.sleep(0.3)  # let the watch connection establish (the list gave its start point)
        alone = [self.one_line_change(FAIR_B_NS, b_name, watcher, n)[0] for n in range(changes)]
        log(f"fairness: B alone {[round(x * 1e3) for x in alone]} ms")

        body = self.at_the_limits(a_name, FAIR_A_NS, streamlets)
        selector = f"{naming.APPLICATION_LABEL}={a_name}"
        a_watchers = [
            custom_watcher(
                self.plane.api_client("admin"), kind, version, ns, label_selector=selector
            ).start()
            for kind, version, ns in (
                ("KafkaTopic", "kafka.strimzi.io/v1", KAFKA_NS),
                ("SparkApplication", "sparkoperator.k8s.io/v1beta2", FAIR_A_NS),
            )
        ]
        total = 3 * streamlets
        time.sleep(0.3)

        def created() -> int:
            return sum(len(w.first_seen) for w in a_watchers)

        writes0 = self.operator.metric("federator_api_writes_total")
        t0 = time.monotonic()
        self.post_app(body)
        eventually(lambda: created() > 0, "A's first child", 120, 0.01)
        during: list[float] = []
        progress: list[int] = []
        # One change after the other for as long as A's children are being created (at least
        # `changes`, at most four times as many), so they sample all of A's creation.
        while len(during) < changes or (created() < total and len(during) < 4 * changes):
            took, then = self.one_line_change(
                FAIR_B_NS, b_name, watcher, changes + len(during), created
            )
            during.append(took)
            progress.append(then)
        log(f"fairness: B during A {[round(x * 1e3) for x in during]} ms; A at {progress}")
        eventually(lambda: created() >= total, "all of A's children", 900, 0.1)
        a_created = max(t for w in a_watchers for t in w.first_seen.values()) - t0
        eventually(lambda: self.app_healthy(FAIR_A_NS, a_name), "A Healthy", 900, 0.2)
        a_healthy = time.monotonic() - t0
        a_writes = self.operator.metric("federator_api_writes_total") - writes0
        a_status = len(
            json.dumps((self.get_app(FAIR_A_NS, a_name) or {}).get("status"), separators=(",", ":"))
        )
        t1 = time.monotonic()
        self.plane.request("DELETE", f"{APP_PATH.format(ns=FAIR_A_NS)}/{a_name}")
        eventually(lambda: self.get_app(FAIR_A_NS, a_name) is None, "A deleted", 900, 0.1)
        a_deleted = time.monotonic() - t1
        topics_left = sum(
            1
            for t in self.plane.request(
                "GET",
                f"/apis/kafka.strimzi.io/v1/namespaces/{KAFKA_NS}/kafkatopics?labelSelector={selector}",
            )[1]["items"]
            if not t["metadata"].get("deletionTimestamp")
        )
        for w in (*a_watchers, watcher):
            w.stop()
        self.delete_app(a_name, FAIR_A_NS, KAFKA_NS)
        self.delete_app(b_name, FAIR_B_NS, KAFKA_NS)
        return {
            "streamlets": streamlets,
            "children": total,
            "alone": alone,
            "during": during,
            "progress": progress,
            "a_created": a_created,
            "a_healthy": a_healthy,
            "a_writes": a_writes,
            "a_status_bytes": a_status,
            "a_deleted": a_deleted,
            "a_topics_left": topics_left,
        }

    # -- 4. no-op resync

    def apiserver_writes(self) -> dict[str, float]:
        """Mutating requests the API server counted on federator's kinds (any client)."""
        return self.apiserver_requests(MUTATING)

    def apiserver_reads(self) -> dict[str, float]:
        """GET and LIST requests the API server counted on federator's kinds (any client; a
        WATCH is a stream, not a read, and is left out)."""
        return self.apiserver_requests(frozenset({"GET", "LIST"}))

    def apiserver_requests(self, verbs: frozenset[str]) -> dict[str, float]:
        """Requests with one of `verbs` the API server counted on federator's kinds."""
        _, text = self.plane.request("GET", "/metrics")
        resources = {d.plural for d in delegates.ALL} | {"applications", "events"}
        out: dict[str, float] = {}
        for key, value in parse_metrics(str(text)).items():
            if not key.startswith("apiserver_request_total{"):
                continue
            labels = dict(
                part.split("=", 1)
                for part in key[len("apiserver_request_total{") : -1].split(",")
                if "=" in part
            )
            verb = labels.get("verb", "").strip('"')
            resource = labels.get("resource", "").strip('"')
            sub = labels.get("subresource", "").strip('"')
            if resource in resources and verb in verbs:
                what = f"{verb} {resource}" + (f"/{sub}" if sub else "")
                out[what] = out.get(what, 0.0) + value
        return out

    def noop_resync(self, ns: str, name: str, periods: int) -> dict[str, Any]:
        """Restart the operator with resyncSeconds 2; once it has resumed the converged
        application, count writes over `periods` resync periods (the simulator is stopped, so
        every write to federator's kinds in the window is the operator's or kopf's)."""
        assert self.operator is not None and self.sim is not None
        resync = 2.0
        self.sim.stop()
        self.operator.stop()
        operator = self.start_operator(
            self.settings_file("resync", resyncSeconds=resync), "operator-resync.log"
        )
        eventually(
            lambda: operator.metric("federator_reconcile_duration_seconds_count") >= 1,
            "the resumed reconcile",
            60,
            0.1,
        )
        time.sleep(0.5)
        app_rv = (self.get_app(ns, name) or {})["metadata"]["resourceVersion"]
        restart_writes = operator.metric("federator_api_writes_total")
        writes0 = restart_writes
        reconciles0 = operator.metric("federator_reconcile_duration_seconds_count")
        server0, reads0 = self.apiserver_writes(), self.apiserver_reads()
        api0 = operator.metric("federator_child_reads_total", source="api")
        cache0 = operator.metric("federator_child_reads_total", source="cache")
        t0 = time.monotonic()
        time.sleep(resync * periods + 0.5)
        window = time.monotonic() - t0
        writes = operator.metric("federator_api_writes_total") - writes0
        reconciles = operator.metric("federator_reconcile_duration_seconds_count") - reconciles0
        server1, reads1 = self.apiserver_writes(), self.apiserver_reads()
        server = {
            k: server1[k] - server0.get(k, 0.0) for k in server1 if server1[k] - server0.get(k, 0.0)
        }
        server_reads = {
            k: reads1[k] - reads0.get(k, 0.0) for k in reads1 if reads1[k] - reads0.get(k, 0.0)
        }
        child_reads = {
            "api": operator.metric("federator_child_reads_total", source="api") - api0,
            "cache": operator.metric("federator_child_reads_total", source="cache") - cache0,
        }
        rv_after = (self.get_app(ns, name) or {})["metadata"]["resourceVersion"]
        return {
            "resync": resync,
            "periods": periods,
            "window": window,
            "reconciles": reconciles,
            "writes": writes,
            "restart_writes": restart_writes,
            "server": server,
            "server_reads": server_reads,
            "child_reads": child_reads,
            "rv_unchanged": rv_after == app_rv,
        }


# --- the report ----------------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "**met**" if ok else "**NOT met**"


def report(results: dict[str, Any], info: dict[str, str], *, quick: bool) -> str:
    ops, floors = results["operator"], results["floor"]
    op_med = statistics.median(r["created"] for r in ops)
    fl_med = statistics.median(r["created"] for r in floors)
    ratio = op_med / fl_med
    date = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    out = [
        START,
        "## Reconcile benchmark",
        "",
        "`python bench/reconcile.py` (`make bench`): `federator run` as a subprocess on the "
        "embedded control plane (kube-apiserver, etcd, kube-controller-manager, kwok) with the "
        "real delegate CRDs vendored in `third_party/delegate-crds`, and the delegate "
        f"simulator ticking every {SIM_INTERVAL:g} s. Method and the choice of floor: "
        "[bench/README.md](../bench/README.md).",
        "",
        f"Measured {date}{' (quick mode: fewer repeats and changes)' if quick else ''}.",
        "",
        *(
            [
                f"The operator writes the children in each application's namespace as its "
                f"ServiceAccount `{results['service_account']}` (impersonated); the floor "
                "with the admin identity.",
                "",
            ]
            if results.get("service_account")
            else []
        ),
        *(f"- **{k}**: {v}" for k, v in info.items()),
        "",
        "### 1. Application apply -> all 15 children created (seed example)",
        "",
        "From just before the `POST` of the Application to the moment the last of its 15 "
        "children (7 KafkaTopics, 3 SparkApplications, 5 Deployments) is seen on a watch. "
        "**Floor** (same run, same simulator, alternating with the operator's runs): a "
        "minimal script POSTs the same Application, compiles it, server-side applies the 7 "
        "topics at once (8 threads, warmed) with the operator's own client "
        "(`federator.kube.client.Kube.apply`), lists and watches them until the simulator made "
        "every one Ready, then applies the 8 streamlet children at once. Each repeat in fresh "
        "namespaces.",
        "",
        "| repeat | operator s | floor s | ratio | operator: topics created s | floor: topics "
        "created s | floor: wait for Ready s | operator reconciles | operator API writes "
        "| operator CPU s | operator: Healthy s |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for i, (o, f) in enumerate(zip(ops, floors, strict=True), 1):
        out.append(
            f"| {i} | {o['created']:.3f} | {f['created']:.3f} | {o['created'] / f['created']:.2f} "
            f"| {o['topics']:.3f} | {f['topics']:.3f} | {f['wait_topics']:.3f} "
            f"| {o['reconciles']:.0f} | {o['writes']:.0f} | {o['cpu']:.2f} | {o['healthy']:.3f} |"
        )
    out += [
        f"| **median** | **{op_med:.3f}** | **{fl_med:.3f}** | **{ratio:.2f}** "
        f"| {statistics.median(o['topics'] for o in ops):.3f} "
        f"| {statistics.median(f['topics'] for f in floors):.3f} "
        f"| {statistics.median(f['wait_topics'] for f in floors):.3f} "
        f"| {statistics.median(o['reconciles'] for o in ops):.0f} "
        f"| {statistics.median(o['writes'] for o in ops):.0f} "
        f"| {statistics.median(o['cpu'] for o in ops):.2f} "
        f"| {statistics.median(o['healthy'] for o in ops):.3f} |",
        "",
    ]
    lat = results["latency"]
    values = lat["latencies"]
    p50, p90, p99 = pct(values, 50), pct(values, 90), pct(values, 99)
    n = len(values)
    out += [
        "### 2. Child status change -> Application status updated",
        "",
        f"{n} changes of one SparkApplication's status through its `/status` subresource, "
        "alternating FAILED (with an `errorMessage`) and RUNNING, one at a time; each measured "
        "from just before the PATCH to the receipt, on a watch of the Application (opened "
        "before the changes), of the event whose `status.children` entry for that child shows "
        "the new health (Degraded / Healthy). The simulator is stopped meanwhile (it would "
        f"recover the child itself). Operator settings: defaults (`statusDebounceSeconds` "
        f"{results['debounce']:g}). **Baseline** (same run): the API server's own round trip "
        "for the same change, i.e. the median time of the status PATCH request itself.",
        "",
        "| changes | p50 ms | p90 ms | p99 ms | max ms | timeouts | baseline: PATCH ms "
        "| status writes | status writes per change | all operator API writes "
        "| API server: status PATCHes of the Application | child reads per change: cache "
        "/ GET |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
        f"| {n} | {p50 * 1e3:.0f} | {p90 * 1e3:.0f} | {p99 * 1e3:.0f} | {max(values) * 1e3:.0f} "
        f"| {lat['timeouts']} | {results['patch_ms']:.1f} | {lat['status_writes']:.0f} "
        f"| {lat['status_writes'] / n:.2f} | {lat['api_writes']:.0f} "
        f"| {lat['server_status_patches']:.0f} "
        f"| {lat['reads_cache'] / n:.1f} / {lat['reads_api'] / n:.1f} |",
        "",
    ]
    b = results["burst"]
    out += [
        "### 3. Status writes per child change",
        "",
        f"One at a time (section 2): **{lat['status_writes'] / n:.2f}** status writes per "
        f"change (baseline: 1.00, one write per change that alters the status). Burst: "
        f"{b['changes']} child status changes at once ({b['children']} children: 7 KafkaTopics "
        f"`Ready=False` and 3 SparkApplications FAILED, {b['changes'] // b['children']} rounds "
        "of concurrent PATCHes, each round with another message), counted until the Application "
        "shows every child's final message, plus one quiet second:",
        "",
        "| child status changes | status writes | reconciles | until final state s |",
        "|---:|---:|---:|---:|",
        f"| {b['changes']} | {b['status_writes']:.0f} | {b['reconciles']:.0f} "
        f"| {b['settled']:.3f} |",
        "",
    ]
    r = results["resync"]
    server = ", ".join(f"{k}: {v:.0f}" for k, v in sorted(r["server"].items())) or "none"
    out += [
        "### 4. API writes on a no-op resync",
        "",
        f"The operator restarted with `resyncSeconds: {r['resync']:g}` on the converged seed "
        f"application (simulator stopped); writes counted over {r['window']:.1f} s "
        f"(~{r['periods']} resync periods) after it resumed. Baseline: 0 (nothing changed).",
        "",
        "| window s | reconciles in window | `federator_api_writes_total` | API server: "
        "mutating requests on federator's kinds (any client) | Application resourceVersion "
        "unchanged | writes on the restart itself |",
        "|---:|---:|---:|---|---|---:|",
        f"| {r['window']:.1f} | {r['reconciles']:.0f} | {r['writes']:.0f} | {server} "
        f"| {'yes' if r['rv_unchanged'] else 'no'} | {r['restart_writes']:.0f} |",
        "",
        "Reads in the same window: the API server counted "
        + (
            ", ".join(f"{k}: {v:.0f}" for k, v in sorted(r.get("server_reads", {}).items()))
            or "no GET or LIST"
        )
        + " on federator's kinds (any client, the bench's own GETs of the Application included); "
        f"the operator read its children {r.get('child_reads', {}).get('api', 0):.0f} times from "
        f"the API and {r.get('child_reads', {}).get('cache', 0):.0f} times from its watch cache.",
        "",
        "Goals (issue 4, item 11):",
        "",
        f"- apply -> all children created within {GOAL_RATIO:g}x of the floor: "
        f"{verdict(ratio <= GOAL_RATIO)} ({ratio:.2f}x: {op_med:.3f} s vs {fl_med:.3f} s, "
        "medians)",
        f"- child status change -> application status, p99 under {GOAL_P99:g} s: "
        f"{verdict(p99 < GOAL_P99 and not lat['timeouts'])} (p99 {p99 * 1e3:.0f} ms over {n} "
        "changes)",
        f"- zero writes on a no-op resync: "
        f"{verdict(r['writes'] == 0 and not r['server'] and r['reconciles'] > 0)} "
        f"({r['writes']:.0f} operator writes, {sum(r['server'].values()):.0f} at the API "
        f"server, over {r['reconciles']:.0f} reconciles)",
    ]
    fair = results.get("fairness")
    if fair:
        fair_ratio = statistics.median(fair["during"]) / statistics.median(fair["alone"])
        out.append(
            f"- a one-line change to B while A (at the limits) is being created, within "
            f"{GOAL_FAIR_RATIO:g}x of B alone (medians) and never over {GOAL_FAIR_MAX:g} s: "
            f"{verdict(fair_ratio <= GOAL_FAIR_RATIO and max(fair['during']) <= GOAL_FAIR_MAX)} "
            f"({fair_ratio:.2f}x, max {max(fair['during']) * 1e3:.0f} ms; section 5)"
        )
    if ratio > GOAL_RATIO:
        out.append(
            "- where the operator's time over the floor goes, and what would close the gap: "
            "[bench/README.md, findings](../bench/README.md#findings-apply---all-children-created)"
        )
    for note in results.get("notes", []):
        out.append(f"- {note}")
    if fair:
        out += ["", *fairness_report(fair)]
    out.append(END)
    return "\n".join(out) + "\n"


def fairness_report(fair: dict[str, Any]) -> list[str]:
    alone, during = fair["alone"], fair["during"]
    a50, d50 = statistics.median(alone), statistics.median(during)
    n, total = len(during), fair["children"]
    still = sum(1 for p in fair["progress"] if p < total)
    return [
        "### 5. Fair queueing: a small change to application B while application A (at the "
        "limits) is being created",
        "",
        f"**A**: {fair['streamlets']:,} Spark streamlets in a line, two outlets each "
        f"({total:,} children: {fair['streamlets']:,} SparkApplications and "
        f"{2 * fair['streamlets']:,} KafkaTopics; the default `limits.maxStreamlets` and "
        "`limits.maxChildren`), deletionPolicy Delete, POSTed at once. **B**: the seed "
        "application (15 children), converged. **The change**: one config value of B's "
        f"`{FAIR_STREAMLET}` streamlet (a JSON patch of one field; exactly one Deployment is "
        "re-applied), timed from just before the PATCH of B to the receipt of that Deployment "
        "with its new spec-hash on a watch opened beforehand; after each change, B is let "
        "converge (untimed), and the next change follows, for as long as A's children are being "
        f"created (at least {len(alone)} changes, at most four times as many). **Baseline** "
        f"(same run, same operator): {len(alone)} such changes of B with A absent. The "
        "delegate simulator runs throughout (A's topics turn Ready, then its streamlets go out "
        "and run).",
        "",
        "| B's changes | n | p50 ms | p90 ms | max ms | p50 / B alone's | max / B alone's |",
        "|---|---:|---:|---:|---:|---:|---:|",
        f"| B alone | {len(alone)} | {a50 * 1e3:.0f} | {pct(alone, 90) * 1e3:.0f} "
        f"| {max(alone) * 1e3:.0f} | 1.00 | 1.00 |",
        f"| B while A is created | {n} | {d50 * 1e3:.0f} | {pct(during, 90) * 1e3:.0f} "
        f"| {max(during) * 1e3:.0f} | {d50 / a50:.2f} | {max(during) / max(alone):.2f} |",
        "",
        f"A had created {min(fair['progress']):,} to {max(fair['progress']):,} of its "
        f"{total:,} children when B's changes were seen applied ({still} of {n} changes "
        f"before A's last child). A: all children created in {fair['a_created']:.1f} s, "
        f"Healthy in {fair['a_healthy']:.1f} s ({fair['a_writes']:,.0f} operator API writes; "
        f"its status {fair['a_status_bytes']:,} bytes, summarised); deleted in "
        f"{fair['a_deleted']:.1f} s (DELETE to the finalizer removed, its "
        f"{2 * fair['streamlets']:,} topics deleted by it; {fair['a_topics_left']} left).",
    ]


def machine(compile_bench: Any, plane: ControlPlane | None) -> dict[str, str]:
    info: dict[str, str] = compile_bench.machine()
    info["Cores"] = info["Cores"].split(";")[0] + "; shared by the API server, etcd, the "
    info["Cores"] += "controllers, the operator, the simulator and the bench)"
    info["Load average at start (1/5/15 min)"] = (
        " / ".join(f"{x:.2f}" for x in os.getloadavg())
        + " (other work on the machine, e.g. a CI run, inflates the latencies)"
    )
    versions = []
    for package in ("kopf", "kubernetes", "prometheus-client"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions.append(f"{package} {metadata.version(package)}")
    info["Libraries"] = ", ".join(versions)
    if plane is not None:
        _, ver = plane.request("GET", "/version")
        if isinstance(ver, dict):
            info["Control plane"] = f"kube-apiserver {ver.get('gitVersion')} (embedded, loopback)"
    return info


@contextlib.contextmanager
def control_plane() -> Iterator[ControlPlane]:
    bin_dir = build.ensure_binaries(build=True, out=sys.stderr)
    plane = ControlPlane(bin_dir, start_timeout=180.0)
    plane.start()
    try:
        yield plane
    finally:
        plane.stop()


def measure_status(bench: Bench, results: dict[str, Any], changes: int, periods: int) -> None:
    """Sections 2-4 on one converged seed application."""
    ns, name = bench.status_app()
    assert bench.sim is not None
    bench.sim.stop()
    patch_times = []
    paths = bench.child_paths(ns, name)
    spark_path = paths[f"{name}-cdr-generator1"][1]
    for _ in range(20):
        t0 = time.monotonic()
        bench.patch_status(spark_path, {"applicationState": {"state": "RUNNING"}})
        patch_times.append(time.monotonic() - t0)
    results["patch_ms"] = statistics.median(patch_times) * 1e3
    results["latency"] = bench.status_latency(ns, name, changes)
    lat = results["latency"]["latencies"]
    log(
        f"status latency: p50 {pct(lat, 50) * 1e3:.0f} ms p99 {pct(lat, 99) * 1e3:.0f} "
        f"ms, writes {results['latency']['status_writes']:.0f} / {len(lat)}"
    )
    results["burst"] = bench.burst(ns, name)
    log(f"burst: {results['burst']}")
    results["resync"] = bench.noop_resync(ns, name, periods)
    log(f"resync: {results['resync']}")


def run(args: argparse.Namespace, plane: ControlPlane | None = None) -> dict[str, Any]:
    """Measure everything, on `plane` if given (e.g. a test session's), else on a new one."""
    compile_bench = _load_compile_bench()
    repeats = args.repeats or (2 if args.quick else 15)
    changes = args.changes or (40 if args.quick else 200)
    periods = args.periods or (3 if args.quick else 5)
    fair_changes = args.fair_changes if args.fair_changes is not None else (3 if args.quick else 10)
    fair_streamlets = args.fair_streamlets or (200 if args.quick else limits.DEFAULT_MAX_STREAMLETS)
    workdir = Path(tempfile.mkdtemp(prefix="federator-bench-"))
    results: dict[str, Any] = {
        "operator": [],
        "floor": [],
        "notes": [],
        "service_account": args.service_account,
    }
    try:
        with contextlib.nullcontext(plane) if plane is not None else control_plane() as cp:
            bench = Bench(cp, workdir, args.quick, repeats, changes, periods)
            bench.service_account = args.service_account
            bench.setup()
            log("control plane ready, CRDs installed")
            results["info"] = machine(compile_bench, cp)
            settings = bench.settings_file("default")
            results["debounce"] = parse_settings(
                yaml.safe_load(settings.read_text())
            ).operator.status_debounce_seconds
            bench.start_operator(settings, "operator.log")
            try:
                if not args.no_warmup:
                    # A warm-up round (not counted): first-use costs of every path and CRD.
                    log(f"warm-up: operator {bench.run_operator_once(0)['created']:.3f} s")
                    log(f"warm-up: floor {bench.run_floor_once(0)['created']:.3f} s")
                for i in range(repeats):
                    order = ("operator", "floor") if i % 2 == 0 else ("floor", "operator")
                    for which in order:
                        once = (
                            bench.run_operator_once if which == "operator" else bench.run_floor_once
                        )
                        got = once(i)
                        results[which].append(got)
                        log(f"repeat {i + 1} {which}: {got['created']:.3f} s  {fmt(got)}")
                if fair_changes:
                    results["fairness"] = bench.fairness(fair_changes, fair_streamlets)
                    log(f"fairness: {fmt_fair(results['fairness'])}")
                measure_status(bench, results, changes, periods)
                results["info"]["Load average at end (1/5/15 min)"] = " / ".join(
                    f"{x:.2f}" for x in os.getloadavg()
                )
            finally:
                if bench.operator is not None:
                    bench.operator.stop()
                if bench.sim is not None:
                    bench.sim.stop()
                if args.keep_logs:
                    for p in workdir.glob("*.log"):
                        shutil.copy(p, args.keep_logs)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return results


def fmt_fair(fair: dict[str, Any]) -> str:
    skip = {"alone", "during", "progress"}
    return " ".join(
        f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}"
        for k, v in fair.items()
        if k not in skip
    )


def fmt(values: dict[str, float]) -> str:
    return " ".join(f"{k}={v:.3f}" for k, v in values.items() if k != "created")


def log(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None, plane: ControlPlane | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats and changes (smoke)")
    parser.add_argument("--repeats", type=int, default=None, help="apply runs (default 15)")
    parser.add_argument("--changes", type=int, default=None, help="status changes (default 200)")
    parser.add_argument("--periods", type=int, default=None, help="resync periods (default 5)")
    parser.add_argument("--output", type=Path, default=REPO / "docs" / "PERFORMANCE.md")
    parser.add_argument(
        "--no-warmup", action="store_true", help="skip the uncounted warm-up round (smoke)"
    )
    parser.add_argument(
        "--fair-changes",
        type=int,
        default=None,
        help="section 5: B's changes (default 10; 0 skips)",
    )
    parser.add_argument(
        "--fair-streamlets",
        type=int,
        default=None,
        help="section 5: A's streamlets (default: limits.maxStreamlets' default, 1000)",
    )
    parser.add_argument("--json", type=Path, default=None, help="also dump the raw figures")
    parser.add_argument(
        "--service-account",
        default=None,
        help="write the operator's children as this ServiceAccount of each namespace "
        "(impersonated; created with a Role for the seed's kinds)",
    )
    parser.add_argument("--keep-logs", type=Path, default=None, help="copy the operator logs here")
    args = parser.parse_args(argv)
    results = run(args, plane)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))
    section = report(results, results["info"], quick=args.quick)
    _load_compile_bench().write_section(args.output, section, (START, END))
    print(section)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
