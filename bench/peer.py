"""The peer bench: federator side by side with kro, on one embedded control plane, in one run.

    python bench/peer.py                  # the seed application: 15 repeats, 200 changes, cycles
    python bench/peer.py --apps 200       # the scale table: 200 small applications of 11 children
    python bench/peer.py --quick          # a smoke run (2 repeats, 10 changes, 2 cycles)
    python bench/peer.py --output PATH    # write the section elsewhere than docs/PERFORMANCE.md

kro (kubernetes-sigs/kro, KRO_VERSION, built once and cached by federator.devcluster.kro) runs
out of cluster with its default flags, serving a ResourceGraphDefinition generated from the very
Application federator serves (bench/rgd.py: the same children, topics gated by `readyWhen`,
health in CEL). One delegate simulator plays Strimzi and the Spark operator for both. Figures are
ratios federator / kro from the same run. Method: bench/README.md, section `peer.py`.
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
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # `python bench/peer.py` from a checkout without an install
    sys.path.insert(0, str(REPO))
if str(REPO / "bench") not in sys.path:
    sys.path.insert(0, str(REPO / "bench"))

import rgd  # noqa: E402

from federator.core import naming  # noqa: E402
from federator.core.compiler import compile_application  # noqa: E402
from federator.core.settings import Settings, parse_settings  # noqa: E402
from federator.devcluster import build, crdfiles  # noqa: E402
from federator.devcluster import kro as kro_build  # noqa: E402
from federator.devcluster.harness import (  # noqa: E402
    OperatorProcess,
    eventually,
    free_port,
    parse_metrics,
)
from federator.devcluster.kwok import FAKE_NODE_PODS, fake_node  # noqa: E402
from federator.devcluster.launcher import ControlPlane  # noqa: E402
from federator.simulator import DelegateSimulator  # noqa: E402

START = "<!-- bench:peer:start -->"
END = "<!-- bench:peer:end -->"
SEED = REPO / "examples" / "call-record-aggregator.yaml"
SIM_INTERVAL = 0.05
SIM_SELECTOR = "app.kubernetes.io/managed-by in (federator,kro)"
CHANGE_TIMEOUT = 15.0
PODS_PER_NODE = int(FAKE_NODE_PODS)
SMALL_STREAMLETS = 6  # in a line: 6 streamlets + 5 topics = 11 children
SCALE_KCM_QPS = ("--kube-api-qps=200", "--kube-api-burst=400")
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
CLUSTER = {
    "name": "default",
    "strimziCluster": "pipelines-strimzi",
    "bootstrapServers": "pipelines-strimzi-kafka-bootstrap:9092",
}
SPARK_CHILD = "cdr-aggregator"  # the seed's streamlet whose status the changes flip
MIB = 1024 * 1024


# --- figures from /proc and /metrics (pure parts unit-tested) ------------------------------------


def rss_bytes(pid: int) -> int:
    """Resident set size of a process (VmRSS), 0 when it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def labels_of(key: str) -> tuple[str, dict[str, str]]:
    """'name{a="x",b="y"}' -> ('name', {'a': 'x', 'b': 'y'})."""
    name, _, rest = key.partition("{")
    labels: dict[str, str] = {}
    for part in rest.rstrip("}").split(","):
        k, eq, v = part.partition("=")
        if eq:
            labels[k.strip()] = v.strip().strip('"')
    return name, labels


def client_requests(metrics: Mapping[str, float]) -> dict[str, float]:
    """kro's own API requests by method (controller-runtime's `rest_client_requests_total`)."""
    out: dict[str, float] = {}
    for key, value in metrics.items():
        name, labels = labels_of(key)
        if name == "rest_client_requests_total":
            method = labels.get("method", "?").upper()
            out[method] = out.get(method, 0.0) + value
    return out


def metric_sum(metrics: Mapping[str, float], name: str) -> float:
    return sum(v for k, v in metrics.items() if labels_of(k)[0] == name)


def apiserver_requests(
    metrics: Mapping[str, float], resources: frozenset[str], verbs: frozenset[str]
) -> float:
    """Requests the API server counted (`apiserver_request_total`) on `resources` by `verbs`."""
    total = 0.0
    for key, value in metrics.items():
        name, labels = labels_of(key)
        if (
            name == "apiserver_request_total"
            and labels.get("resource") in resources
            and labels.get("verb") in verbs
        ):
            total += value
    return total


def pct(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))
    return ordered[int(rank) - 1]


def ratio(fed: float, kro: float) -> str:
    """federator / kro, '—' where kro's figure is 0."""
    return f"{fed / kro:.2f}" if kro else "—"


# --- the two controllers behind one interface ----------------------------------------------------


@dataclass
class Side:
    """One controller under test: how to start it, post an application, read its health."""

    name: str
    plane: ControlPlane
    workdir: Path
    kafka_ns: str
    namespaces: list[str]
    proc_pid: Callable[[], int | None] = field(default=lambda: None)

    @property
    def settings(self) -> Settings:
        return parse_settings({"kafkaClusters": [{**CLUSTER, "namespace": self.kafka_ns}]})

    def collection(self, namespace: str, shape: str) -> str:
        raise NotImplementedError

    def body(self, shape: str, name: str, namespace: str) -> dict[str, Any]:
        raise NotImplementedError

    def healthy(self, obj: Mapping[str, Any]) -> bool:
        raise NotImplementedError

    def child_health(self, obj: Mapping[str, Any], shape: str, child: str) -> str | None:
        raise NotImplementedError

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def metrics(self) -> dict[str, float]:
        raise NotImplementedError

    def writes(self) -> float:
        raise NotImplementedError

    def reconciles(self) -> float:
        raise NotImplementedError

    @property
    def pid(self) -> int | None:
        return self.proc_pid()

    def rss(self) -> int:
        pid = self.pid
        return rss_bytes(pid) if pid else 0

    def cpu(self) -> float:
        pid = self.pid
        return cpu_seconds(pid) if pid else 0.0


class Federator(Side):
    APPS = "/apis/federator.io/v1alpha1/namespaces/{ns}/applications"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.shapes: dict[str, dict[str, Any]] = {}
        self.operator: OperatorProcess | None = None
        self.proc_pid = lambda: (
            self.operator.proc.pid if self.operator and self.operator.proc else None
        )

    def collection(self, namespace: str, shape: str) -> str:
        return self.APPS.format(ns=namespace)

    def body(self, shape: str, name: str, namespace: str) -> dict[str, Any]:
        body: dict[str, Any] = copy.deepcopy(self.shapes[shape])
        body["metadata"] = {"name": name, "namespace": namespace}
        return body

    def healthy(self, obj: Mapping[str, Any]) -> bool:
        status = obj.get("status") or {}
        return bool(
            status.get("phase") == "Healthy"
            and status.get("observedGeneration") == obj["metadata"].get("generation")
        )

    def child_health(self, obj: Mapping[str, Any], shape: str, child: str) -> str | None:
        for entry in (obj.get("status") or {}).get("children") or []:
            if entry.get("name") == child:
                return str(entry.get("health"))
        return None

    def start(self) -> None:
        settings = self.workdir / "federator.yaml"
        settings.write_text(
            yaml.safe_dump(
                {
                    "kafkaClusters": [{**CLUSTER, "namespace": self.kafka_ns}],
                    "operator": {"metricsPort": free_port(), "livenessPort": free_port()},
                }
            )
        )
        self.operator = OperatorProcess(
            settings,
            self.plane.kubeconfig,
            self.workdir / "federator.log",
            [*self.namespaces, self.kafka_ns],  # the topics' namespace is watched too
        )
        self.operator.start()

    def stop(self) -> None:
        if self.operator is not None:
            self.operator.stop()
            self.operator = None

    def metrics(self) -> dict[str, float]:
        return dict(self.operator.metrics()) if self.operator else {}

    def writes(self) -> float:
        return metric_sum(self.metrics(), "federator_api_writes_total")

    def reconciles(self) -> float:
        return metric_sum(self.metrics(), "federator_reconcile_duration_seconds_count")


class Kro(Side):
    def __init__(self, *args: Any, binary: Path, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.binary = binary
        self.rgds: dict[str, dict[str, Any]] = {}
        self.fields: dict[str, dict[str, str]] = {}  # shape -> child-name template -> field
        self.proc: subprocess.Popen[bytes] | None = None
        self.metrics_port = 0
        self.proc_pid = lambda: self.proc.pid if self.proc else None

    def kind(self, shape: str) -> str:
        return str(self.rgds[shape]["spec"]["schema"]["kind"])

    def collection(self, namespace: str, shape: str) -> str:
        return f"/apis/kro.run/v1alpha1/namespaces/{namespace}/{rgd.plural(self.kind(shape))}"

    def body(self, shape: str, name: str, namespace: str) -> dict[str, Any]:
        return rgd.instance(self.kind(shape), name, namespace)

    def healthy(self, obj: Mapping[str, Any]) -> bool:
        return (obj.get("status") or {}).get(rgd.HEALTH_FIELD) == "Healthy"

    def child_health(self, obj: Mapping[str, Any], shape: str, child: str) -> str | None:
        fields = rgd.status_fields(self.rgds[shape], (obj.get("metadata") or {}).get("name", ""))
        value = (obj.get("status") or {}).get(fields.get(child, ""))
        return None if value is None else str(value)

    def start(self) -> None:
        self.metrics_port, probe = free_port(), free_port()
        log_file = (self.workdir / "kro.log").open("ab")
        self.proc = subprocess.Popen(
            [
                str(self.binary),
                f"--metrics-bind-address=127.0.0.1:{self.metrics_port}",
                f"--health-probe-bind-address=127.0.0.1:{probe}",
            ],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env={**os.environ, "KUBECONFIG": str(self.plane.kubeconfig)},
        )
        log_file.close()

        def ready() -> bool:
            if self.proc is None or self.proc.poll() is not None:
                tail = (self.workdir / "kro.log").read_text(errors="replace")[-3000:]
                raise AssertionError(f"kro exited:\n{tail}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{probe}/readyz", timeout=1):
                    return True
            except OSError:
                return False

        eventually(ready, "kro's readiness probe", 60, 0.1)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None

    def metrics(self) -> dict[str, float]:
        if self.proc is None:
            return {}
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as r:
            return parse_metrics(r.read().decode())

    def writes(self) -> float:
        requests = client_requests(self.metrics())
        return sum(v for k, v in requests.items() if k in WRITE_METHODS)

    def reconciles(self) -> float:
        return metric_sum(self.metrics(), "dynamic_controller_reconcile_total")

    def install(self, shape: str, graph: dict[str, Any], probe_ns: str) -> None:
        """Apply an RGD and wait until kro serves its instance kind."""
        self.rgds[shape] = graph
        name = graph["metadata"]["name"]
        status, got = self.plane.request(
            "POST", "/apis/kro.run/v1alpha1/resourcegraphdefinitions", graph
        )
        assert status in (201, 409), got

        def active() -> Any:
            _, body = self.plane.request(
                "GET", f"/apis/kro.run/v1alpha1/resourcegraphdefinitions/{name}"
            )
            state = (body.get("status") or {}).get("state") if isinstance(body, dict) else None
            if state == "Active":
                code, _ = self.plane.request("GET", self.collection(probe_ns, shape) + "?limit=1")
                return code == 200
            return False

        try:
            eventually(active, f"RGD {name} Active", 120, 0.2)
        except AssertionError:
            _, body = self.plane.request(
                "GET", f"/apis/kro.run/v1alpha1/resourcegraphdefinitions/{name}"
            )
            raise AssertionError(f"RGD {name} not Active: {json.dumps(body)[-3000:]}") from None


# --- watching (the reconcile bench's list-then-watch) --------------------------------------------


def _load_sibling(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(f"bench_{name}", Path(__file__).with_name(name))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


RECONCILE = _load_sibling("reconcile.py")
Watcher = RECONCILE.Watcher


def log(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


# --- the bench -----------------------------------------------------------------------------------


def small_app(name: str = "small") -> dict[str, Any]:
    """A small application of 11 children: 6 streamlets in a line (5 Spark, one container in
    the middle) and the 5 topics between them. Mostly Spark because the simulator writes its
    status; one Deployment each keeps the kube-controller-manager and kwok in the loop."""
    names = [f"s{i}" for i in range(SMALL_STREAMLETS)]
    streamlets = []
    for i, s in enumerate(names):
        container = i == SMALL_STREAMLETS // 2
        streamlets.append(
            {
                "name": s,
                "runtime": "container" if container else "spark",
                "image": "registry.example.com/bench/small:1.0",
                **({} if container else {"spark": {"mainApplicationFile": "local:///app.jar"}}),
                **({"inlets": ["in"]} if i else {}),
                **({"outlets": ["out"]} if i < SMALL_STREAMLETS - 1 else {}),
            }
        )
    return {
        "apiVersion": "federator.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "deletionPolicy": "Retain",
            "streamlets": streamlets,
            "connections": [
                {"from": f"{a}.out", "to": [f"{b}.in"]} for a, b in itertools.pairwise(names)
            ],
        },
    }


def seed_app() -> dict[str, Any]:
    body: dict[str, Any] = yaml.safe_load(SEED.read_text())
    return body


@dataclass
class Bench:
    plane: ControlPlane
    fed: Federator
    kro: Kro
    sim: DelegateSimulator | None = None
    pending: list[tuple[Side, str, str, str]] = field(default_factory=list)
    """kro instances being deleted: kro deletes a graph's children one per 3 s requeue (45 s
    for the seed's 15), so the bench does not wait for each (every repeat has its own
    namespace) and drains them before the figures that need a quiet kro."""

    def drain(self) -> None:
        """Wait until every kro instance deleted so far is gone with its children."""
        while self.pending:
            side, shape, ns, name = self.pending.pop(0)
            path = f"{side.collection(ns, shape)}/{name}"
            eventually(
                lambda p=path: self.plane.request("GET", p)[0] == 404,  # type: ignore[misc]
                f"{name} deleted",
                900,
                0.5,
            )
            self.delete_children(side, [ns], f"{naming.APPLICATION_LABEL}={name}")

    def sides(self, i: int) -> tuple[Side, Side]:
        """Alternate which controller goes first."""
        return (self.fed, self.kro) if i % 2 == 0 else (self.kro, self.fed)

    def namespace(self, ns: str) -> None:
        status, body = self.plane.request(
            "POST",
            "/api/v1/namespaces",
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}},
        )
        assert status in (201, 409), body

    def start_sim(self) -> None:
        if self.sim is not None:  # one simulator at a time
            return
        self.sim = DelegateSimulator(
            self.plane.api_client("admin"), interval=SIM_INTERVAL, label_selector=SIM_SELECTOR
        )
        self.sim.run_in_thread()

    def stop_sim(self) -> None:
        if self.sim is not None:
            self.sim.stop()
            self.sim = None

    def get(self, side: Side, shape: str, ns: str, name: str) -> dict[str, Any] | None:
        code, got = self.plane.request("GET", f"{side.collection(ns, shape)}/{name}")
        return got if code == 200 else None

    def expected(self, side: Side, shape_body: Mapping[str, Any], name: str, ns: str) -> Any:
        body = {
            **shape_body,
            "metadata": {"name": name, "namespace": ns, "uid": "x", "generation": 1},
        }
        return compile_application(body, side.settings).children

    def watchers(self, side: Side, children: Any, name: str) -> list[Any]:
        selector = f"{naming.APPLICATION_LABEL}={name}"
        kinds = sorted({(c.kind, c.api_version, c.namespace) for c in children})
        return [
            RECONCILE.custom_watcher(
                self.plane.api_client("admin"), kind, version, ns, label_selector=selector
            ).start()
            for kind, version, ns in kinds
        ]

    def delete_children(self, side: Side, namespaces: Sequence[str], selector: str) -> None:
        paths = []
        for ns in (*namespaces, side.kafka_ns):
            paths += [
                f"/apis/kafka.strimzi.io/v1/namespaces/{ns}/kafkatopics",
                f"/apis/sparkoperator.k8s.io/v1beta2/namespaces/{ns}/sparkapplications",
                f"/apis/apps/v1/namespaces/{ns}/deployments",
            ]

        def delete(path: str) -> None:
            # A collection of thousands can outlast the client's 30 s: ask again until empty.
            with contextlib.suppress(TimeoutError, OSError):
                self.plane.request("DELETE", f"{path}?labelSelector={selector}")

        for p in paths:
            delete(p)

        def gone() -> bool:
            left = [
                p
                for p in paths
                if (got := self.plane.request("GET", f"{p}?labelSelector={selector}&limit=1"))[0]
                != 200
                or got[1]["items"]
            ]
            for p in left:
                delete(p)
            return not left

        eventually(gone, "children deleted", 1800, 0.5)

    def delete_app(self, side: Side, shape: str, ns: str, name: str) -> None:
        """Delete an application and its children, and wait until they are gone; kro's
        instances are left to kro in the background (see `drain`)."""
        self.plane.request("DELETE", f"{side.collection(ns, shape)}/{name}")
        if isinstance(side, Kro):
            self.pending.append((side, shape, ns, name))
            return
        eventually(lambda: self.get(side, shape, ns, name) is None, f"{name} deleted", 120, 0.05)
        self.delete_children(side, [ns], f"{naming.APPLICATION_LABEL}={name}")

    # -- seed: create -> children / Healthy

    def create_once(self, side: Side, ns: str, name: str) -> dict[str, float]:
        children = self.expected(side, seed_app(), name, ns)
        watchers = self.watchers(side, children, name)
        time.sleep(0.3)  # let the watch connections establish (the list gave their start point)
        names = {c.name for c in children}
        t0 = time.monotonic()
        code, got = self.plane.request(
            "POST", side.collection(ns, "seed"), side.body("seed", name, ns)
        )
        assert code == 201, got

        def all_seen() -> dict[str, float] | None:
            seen: dict[str, float] = {}
            for w in watchers:
                seen.update(w.first_seen)
            return seen if names <= seen.keys() else None

        seen = eventually(all_seen, f"{side.name}: all children of {name}", 120, 0.01)
        created = max(seen[n] for n in names) - t0

        def healthy() -> bool:
            return side.healthy(self.get(side, "seed", ns, name) or {"metadata": {}})

        eventually(healthy, f"{side.name}: {name} Healthy", 120, 0.02)
        result = {"created": created, "healthy": time.monotonic() - t0}
        for w in watchers:
            w.stop()
        self.delete_app(side, "seed", ns, name)
        result["rss"] = side.rss() / MIB
        return result

    # -- seed: child status change -> app status

    def converge(self, side: Side, ns: str, name: str) -> None:
        code, got = self.plane.request(
            "POST", side.collection(ns, "seed"), side.body("seed", name, ns)
        )
        assert code in (201, 409), got
        eventually(
            lambda: side.healthy(self.get(side, "seed", ns, name) or {"metadata": {}}),
            f"{side.name}: {name} Healthy",
            120,
            0.05,
        )

    def status_changes(self, side: Side, ns: str, name: str, n: int, first: int) -> dict[str, Any]:
        """n changes of the Spark child's status (FAILED / RUNNING alternately); each timed to
        the watch event of the application whose entry for that child shows the new health."""
        child = f"{name}-{SPARK_CHILD}"
        path = f"/apis/sparkoperator.k8s.io/v1beta2/namespaces/{ns}/sparkapplications/{child}"
        group, _, version = side.collection(ns, "seed").split("/apis/")[1].partition("/")
        version = version.split("/")[0]
        plural = side.collection(ns, "seed").rsplit("/", 1)[1]
        watcher = Watcher(
            self.plane.api_client("admin"),
            group,
            version,
            plural,
            ns,
            field_selector=f"metadata.name={name}",
        ).start()
        time.sleep(0.3)
        latencies: list[float] = []
        timeouts = 0
        writes0, server0 = side.writes(), self.server_writes()
        for i in range(first, first + n):
            failed = i % 2 == 0
            want = "Degraded" if failed else "Healthy"
            while not watcher.events.empty():
                watcher.events.get_nowait()
            state = (
                {"state": "FAILED", "errorMessage": f"peer {i}"}
                if failed
                else {"state": "RUNNING", "errorMessage": None}
            )
            t0 = time.monotonic()
            code, got = self.plane.request(
                "PATCH",
                f"{path}/status",
                {"status": {"applicationState": state}},
                content_type="application/merge-patch+json",
            )
            assert code == 200, got
            deadline, seen = t0 + CHANGE_TIMEOUT, None
            while seen is None and time.monotonic() < deadline:
                try:
                    at, _t, obj = watcher.events.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                if side.child_health(obj, "seed", child) == want:
                    seen = at
            if seen is None:
                timeouts += 1
                latencies.append(CHANGE_TIMEOUT)
            else:
                latencies.append(seen - t0)
        time.sleep(1.0)  # the last change's trailing writes
        writes = side.writes() - writes0
        server = self.server_writes() - server0 - n  # less the bench's own status PATCHes
        watcher.stop()
        return {"latencies": latencies, "timeouts": timeouts, "writes": writes, "server": server}

    def server_writes(self) -> float:
        _, text = self.plane.request("GET", "/metrics")
        resources = frozenset(
            {
                "applications",
                *(rgd.plural(self.kro.kind(s)) for s in self.kro.rgds),
                "kafkatopics",
                "sparkapplications",
                "deployments",
                "events",
            }
        )
        verbs = frozenset({"POST", "PUT", "PATCH", "APPLY", "DELETE"})
        return apiserver_requests(parse_metrics(str(text)), resources, verbs)

    def server_gets(self) -> float:
        _, text = self.plane.request("GET", "/metrics")
        resources = frozenset(
            {
                "applications",
                *(rgd.plural(self.kro.kind(s)) for s in self.kro.rgds),
                "kafkatopics",
                "sparkapplications",
                "deployments",
            }
        )
        return apiserver_requests(parse_metrics(str(text)), resources, frozenset({"GET"}))

    # -- scale

    def scale(self, side: Side, apps: int, *, cleanup: bool = True) -> dict[str, Any]:
        """N small applications with only `side` running: all children, all Healthy, RSS max,
        restart writes and a change made while stopped, idle figures."""
        ns = side.namespaces[-1]
        names = [f"small-{i:04d}" for i in range(apps)]
        side.start()
        out: dict[str, Any] = {
            "rss_start": side.rss() / MIB,
            "apps": apps,
            "load": os.getloadavg()[0],  # the machine is shared: each phase's own load
        }
        rss_max = [side.rss()]
        sampling = threading.Event()

        def sample() -> None:
            while not sampling.wait(0.5):
                rss_max[0] = max(rss_max[0], side.rss())

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        t0 = time.monotonic()
        self.scale_create(side, ns, names, out)
        self.scale_restart(side, ns, names[len(names) // 2], out)
        # Idle: 30 s at rest.
        cpu0, rec0, gets0 = side.cpu(), side.reconciles(), self.server_gets()
        time.sleep(30.0)
        out["idle_cpu"] = side.cpu() - cpu0
        out["idle_reconciles"] = side.reconciles() - rec0
        out["idle_gets"] = self.server_gets() - gets0
        out["since_creation"] = time.monotonic() - t0
        sampling.set()
        sampler.join()
        out["rss_max"] = rss_max[0] / MIB
        log(f"{side.name}: {out}")
        if not cleanup:  # the last phase: the control plane goes with everything on it
            side.stop()
            return out
        # One DELETE per application (a DELETE of the whole collection of 1,000 outlasted the
        # client's 30 s timeout).
        _, listed = self.plane.request("GET", side.collection(ns, "small"))
        with ThreadPoolExecutor(8) as pool:
            list(
                pool.map(
                    lambda item: self.plane.request(
                        "DELETE", f"{side.collection(ns, 'small')}/{item['metadata']['name']}"
                    ),
                    listed.get("items", []),
                )
            )
        eventually(
            lambda: not self.plane.request("GET", side.collection(ns, "small"))[1].get("items"),
            f"{side.name}: applications deleted",
            1800,
            1.0,
        )
        self.delete_children(side, [ns], naming.APPLICATION_LABEL)
        side.stop()
        self.start_sim()
        return out

    def healthy_count(self, side: Side, ns: str) -> int:
        _, body = self.plane.request("GET", side.collection(ns, "small"))
        return sum(1 for item in body.get("items", []) if side.healthy(item))

    def scale_create(self, side: Side, ns: str, names: list[str], out: dict[str, Any]) -> None:
        """POST every application at once; time all children seen, all Healthy."""
        apps, total = len(names), len(names) * 11
        selector = naming.APPLICATION_LABEL
        watchers = [
            RECONCILE.custom_watcher(
                self.plane.api_client("admin"), kind, version, wns, label_selector=selector
            ).start()
            for kind, version, wns in (
                ("KafkaTopic", "kafka.strimzi.io/v1", side.kafka_ns),
                ("SparkApplication", "sparkoperator.k8s.io/v1beta2", ns),
                ("Deployment", "apps/v1", ns),
            )
        ]
        time.sleep(0.5)

        def created() -> int:
            return sum(1 for w in watchers for n in list(w.first_seen) if n.startswith("small-"))

        t0 = time.monotonic()
        with ThreadPoolExecutor(8) as pool:
            list(
                pool.map(
                    lambda n: self.plane.request(
                        "POST", side.collection(ns, "small"), side.body("small", n, ns)
                    ),
                    names,
                )
            )
        out["posted"] = time.monotonic() - t0
        eventually(lambda: created() >= total, f"{side.name}: all {total} children", 3600, 0.2)
        out["children"] = (
            max(
                t for w in watchers for n, t in list(w.first_seen.items()) if n.startswith("small-")
            )
            - t0
        )
        log(f"{side.name}: all {total} children in {out['children']:.1f} s")

        eventually(
            lambda: self.healthy_count(side, ns) >= apps, f"{side.name}: all Healthy", 3600, 1.0
        )
        out["healthy"] = time.monotonic() - t0
        log(f"{side.name}: all {apps} Healthy in {out['healthy']:.1f} s")
        for w in watchers:
            w.stop()
        out["rss_converged"] = side.rss() / MIB

    def scale_restart(self, side: Side, ns: str, probe: str, out: dict[str, Any]) -> None:
        """The simulator stopped (no status churn), a child status change made while the
        controller is down, timed from the start of the new process; then its writes until
        10 s after; then the child is put back and the simulator restarted until all are
        Healthy again."""
        self.stop_sim()
        time.sleep(3.0)
        side.stop()
        child = f"{probe}-s1"
        path = f"/apis/sparkoperator.k8s.io/v1beta2/namespaces/{ns}/sparkapplications/{child}"
        code, got = self.plane.request(
            "PATCH",
            f"{path}/status",
            {"status": {"applicationState": {"state": "FAILED", "errorMessage": "while down"}}},
            content_type="application/merge-patch+json",
        )
        assert code == 200, got
        t1 = time.monotonic()
        side.start()
        eventually(
            lambda: (
                side.child_health(self.get(side, "small", ns, probe) or {}, "small", child)
                == "Degraded"
            ),
            f"{side.name}: the change made while stopped",
            600,
            0.1,
        )
        out["restart_seen"] = time.monotonic() - t1
        # Its writes over the restart: until 10 s after the change showed (a fixed window: kro
        # re-reconciles a not-ready instance every 3 s, so its counter never settles).
        time.sleep(10.0)
        out["restart_writes"] = side.writes()
        out["restart_window"] = time.monotonic() - t1
        code, got = self.plane.request(
            "PATCH",
            f"{path}/status",
            {"status": {"applicationState": {"state": "RUNNING", "errorMessage": None}}},
            content_type="application/merge-patch+json",
        )
        assert code == 200, got
        self.start_sim()
        apps = int(out["apps"])
        eventually(
            lambda: self.healthy_count(side, ns) >= apps, f"{side.name}: Healthy again", 600, 1.0
        )
        out["rss_restart"] = side.rss() / MIB


# --- runs ----------------------------------------------------------------------------------------


@contextlib.contextmanager
def control_plane(kcm_args: Sequence[str]) -> Iterator[ControlPlane]:
    bin_dir = build.ensure_binaries(build=True, out=sys.stderr)
    plane = ControlPlane(bin_dir, start_timeout=180.0, extra_controller_manager_args=kcm_args)
    plane.start()
    try:
        yield plane
    finally:
        plane.stop()


def add_nodes(plane: ControlPlane, pods: int) -> int:
    """Enough kwok nodes for `pods` pods (the launcher starts one)."""
    extra = max(0, -(-pods // PODS_PER_NODE) - 1)
    for i in range(1, extra + 1):
        code, got = plane.request("POST", "/api/v1/nodes", fake_node(f"kwok-node-{i}"))
        assert code in (201, 409), got
    return extra + 1


def machine(plane: ControlPlane) -> dict[str, str]:
    info: dict[str, str] = RECONCILE.machine(RECONCILE._load_compile_bench(), plane)
    info["kro"] = (
        f"{kro_build.KRO_MODULE} {kro_build.KRO_VERSION} (go build of the module from the Go "
        "module proxy, out of cluster, default flags)"
    )
    return info


def setup(plane: ControlPlane, workdir: Path, repeats: int, kro_bin: kro_build.KroBuild) -> Bench:
    """CRDs, namespaces, both controllers' sides; kro started and serving both RGDs."""
    plane.install_crds(REPO / "crds" / "application.yaml")
    plane.install_crds(*crdfiles.delegate_crd_files(crdfiles.delegate_crds_dir()))
    plane.install_crds(*kro_bin.crd_files)
    # Per side: one namespace per repeat (0: warm-up and cycles), status, scale.
    fed_ns = [*(f"peer-fed-{i}" for i in range(repeats + 1)), "peer-fed-status", "peer-fed-scale"]
    kro_ns = [*(f"peer-kro-{i}" for i in range(repeats + 1)), "peer-kro-status", "peer-kro-scale"]
    fed = Federator("federator", plane, workdir, "peer-fed-kafka", fed_ns)
    kro = Kro("kro", plane, workdir, "peer-kro-kafka", kro_ns, binary=kro_bin.binary)
    bench = Bench(plane, fed, kro)
    for ns in (*fed_ns, *kro_ns, fed.kafka_ns, kro.kafka_ns):
        bench.namespace(ns)
    fed.shapes = {"seed": seed_app(), "small": small_app()}
    kro.start()
    for shape, body in fed.shapes.items():
        kind = "PeerSeed" if shape == "seed" else "PeerSmall"
        kro.install(shape, rgd.generate(body, kro.settings, kind=kind), kro_ns[0])
    return bench


def run(args: argparse.Namespace) -> dict[str, Any]:
    quick = args.quick
    repeats = args.repeats or (2 if quick else 15)
    changes = args.changes or (10 if quick else 200)
    cycles = args.cycles if args.cycles is not None else (2 if quick else 30)
    kro_bin = kro_build.ensure_kro(out=sys.stderr)
    workdir = Path(tempfile.mkdtemp(prefix="federator-peer-"))
    results: dict[str, Any] = {
        "apps": args.apps,
        "quick": quick,
        "order": "kro first, then federator" if args.kro_first else "federator first, then kro",
    }
    kcm = SCALE_KCM_QPS if args.apps else ()
    try:
        with control_plane(kcm) as plane:
            results["nodes"] = add_nodes(plane, args.apps)
            bench = setup(plane, workdir, repeats, kro_bin)
            fed, kro = bench.fed, bench.kro
            results["info"] = machine(plane)
            log("kro serves both RGDs")
            fed.start()
            bench.start_sim()
            try:
                both: tuple[Side, Side] = (kro, fed) if args.kro_first else (fed, kro)
                if args.apps:
                    for side in both:  # warm the API server, the caches, the simulator
                        warm = bench.create_once(side, side.namespaces[0], "warm-up")
                        log(f"warm-up {side.name}: {warm}")
                    bench.drain()
                    kro.stop()
                    fed.stop()
                    results["scale"] = {}
                    for side in both:
                        last = side is both[-1]
                        results["scale"][side.name] = bench.scale(side, args.apps, cleanup=not last)
                else:
                    results.update(seed_run(bench, repeats, changes, cycles))
                results["info"]["Load average at end (1/5/15 min)"] = " / ".join(
                    f"{x:.2f}" for x in os.getloadavg()
                )
            finally:
                bench.stop_sim()
                fed.stop()
                kro.stop()
                if args.keep_logs:
                    args.keep_logs.mkdir(parents=True, exist_ok=True)
                    for p in workdir.glob("*.log"):
                        shutil.copy(p, args.keep_logs)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return results


def seed_run(bench: Bench, repeats: int, changes: int, cycles: int) -> dict[str, Any]:
    fed, kro = bench.fed, bench.kro
    both: tuple[Side, Side] = (fed, kro)
    out: dict[str, Any] = {
        "created": {"federator": [], "kro": []},
        "rss": {"federator": {"start": fed.rss() / MIB}, "kro": {"start": kro.rss() / MIB}},
    }
    for side in both:  # warm-up, not counted
        got = bench.create_once(side, side.namespaces[0], "warm-up")
        log(f"warm-up {side.name}: {got}")
    for i in range(repeats):
        for side in bench.sides(i):
            got = bench.create_once(side, side.namespaces[i + 1], f"cra-{i + 1}")
            out["created"][side.name].append(got)
            log(f"repeat {i + 1} {side.name}: {got}")
    for side in both:
        out["rss"][side.name]["after"] = [r["rss"] for r in out["created"][side.name]]
    bench.drain()
    # Status changes: both converged, simulator stopped, alternate blocks of changes.
    for side in both:
        bench.converge(side, side.namespaces[-2], "cra-status")
    bench.stop_sim()
    block = min(20, changes)
    out["status"] = {"federator": [], "kro": []}
    done = 0
    b = 0
    while done < changes:
        n = min(block, changes - done)
        for side in bench.sides(b):
            got = bench.status_changes(side, side.namespaces[-2], "cra-status", n, done)
            out["status"][side.name].append(got)
        done += n
        b += 1
        log(f"status changes: {done}/{changes}")
    for side in both:
        bench.plane.request(
            "PATCH",
            f"/apis/sparkoperator.k8s.io/v1beta2/namespaces/{side.namespaces[-2]}"
            f"/sparkapplications/cra-status-{SPARK_CHILD}/status",
            {"status": {"applicationState": {"state": "RUNNING", "errorMessage": None}}},
            content_type="application/merge-patch+json",
        )
    bench.start_sim()
    for side in both:
        bench.delete_app(side, "seed", side.namespaces[-2], "cra-status")
    bench.drain()
    # Create/delete cycles: RSS after each.
    for side in both:
        out["rss"][side.name]["before_cycles"] = side.rss() / MIB
        out["rss"][side.name]["cycles"] = []
    for c in range(cycles):
        for side in bench.sides(c):
            got = bench.create_once(side, side.namespaces[0], f"cycle-{c}")
            out["rss"][side.name]["cycles"].append(got["rss"])
        if c % 10 == 9:
            log(f"cycles {c + 1}/{cycles}")
    bench.drain()
    for side in both:
        out["rss"][side.name]["after_cycles"] = side.rss() / MIB
    out["cycles"] = cycles
    return out


# --- the report ----------------------------------------------------------------------------------


def markers(apps: int) -> tuple[str, str]:
    """The seed section's markers, or the scale table's for N applications (one per N)."""
    if not apps:
        return START, END
    return f"<!-- bench:peer:apps-{apps}:start -->", f"<!-- bench:peer:apps-{apps}:end -->"


def seed_rows(results: Mapping[str, Any]) -> list[tuple[str, str, str, str]]:
    """(row, federator, kro, federator / kro) for the seed table; pure, unit-tested."""
    rows: list[tuple[str, str, str, str]] = []
    created = results["created"]
    for key, label in (("created", "all 15 children"), ("healthy", "status Healthy")):
        f = statistics.median(r[key] for r in created["federator"])
        k = statistics.median(r[key] for r in created["kro"])
        rows.append((f"create → {label}, p50 s", f"{f:.3f}", f"{k:.3f}", ratio(f, k)))
    lat = {s: [x for b in results["status"][s] for x in b["latencies"]] for s in created}
    timeouts = {s: sum(b["timeouts"] for b in results["status"][s]) for s in created}
    for q in (50, 99):
        f, k = pct(lat["federator"], q) * 1e3, pct(lat["kro"], q) * 1e3
        rows.append(
            (f"child status change → app status, p{q} ms", f"{f:.0f}", f"{k:.0f}", ratio(f, k))
        )
    if timeouts["federator"] or timeouts["kro"]:
        rows.append(
            (
                f"changes not seen within {CHANGE_TIMEOUT:g} s",
                str(timeouts["federator"]),
                str(timeouts["kro"]),
                "—",
            )
        )
    n = {s: len(lat[s]) for s in created}
    for key, label in (
        ("writes", "writes per child change (the controller's own count)"),
        ("server", "writes per child change (API server, its kinds + Events)"),
    ):
        f = sum(b[key] for b in results["status"]["federator"]) / n["federator"]
        k = sum(b[key] for b in results["status"]["kro"]) / n["kro"]
        rows.append((label, f"{f:.1f}", f"{k:.1f}", ratio(f, k)))
    rss = results["rss"]
    for key, label in (("start", "controller RSS at start, MiB"),):
        rows.append(
            (
                label,
                f"{rss['federator'][key]:.0f}",
                f"{rss['kro'][key]:.0f}",
                ratio(rss["federator"][key], rss["kro"][key]),
            )
        )
    f, k = max(rss["federator"]["after"]), max(rss["kro"]["after"])
    rows.append(
        ("controller RSS after the repeats (max), MiB", f"{f:.0f}", f"{k:.0f}", ratio(f, k))
    )
    if results.get("cycles"):
        grow = {
            s: rss[s].get("after_cycles", rss[s]["cycles"][-1]) - rss[s]["before_cycles"]
            for s in ("federator", "kro")
        }
        rows.append(
            (
                f"RSS growth over {results['cycles']} create/delete cycles, MiB",
                f"{grow['federator']:+.1f}",
                f"{grow['kro']:+.1f}",
                "—",
            )
        )
    return rows


def scale_rows(scale: Mapping[str, Mapping[str, float]]) -> list[tuple[str, str, str, str]]:
    """(row, federator, kro, federator / kro) for the scale table; pure, unit-tested."""
    f, k = scale["federator"], scale["kro"]
    spec = (
        ("all children created, s", "children", "{:.1f}"),
        ("all Healthy, s", "healthy", "{:.1f}"),
        ("controller RSS max, MiB", "rss_max", "{:.0f}"),
        ("controller RSS after the restart, MiB", "rss_restart", "{:.0f}"),
        ("restart: writes", "restart_writes", "{:,.0f}"),
        ("restart: a change made while stopped shows up after, s", "restart_seen", "{:.1f}"),
        ("idle 30 s: CPU s", "idle_cpu", "{:.2f}"),
        ("idle 30 s: reconciles", "idle_reconciles", "{:,.0f}"),
        ("idle 30 s: GETs at the API server", "idle_gets", "{:,.0f}"),
    )
    rows = [
        (label, fmt.format(f[key]), fmt.format(k[key]), ratio(f[key], k[key]))
        for label, key, fmt in spec
    ]
    if "load" in f and "load" in k:
        rows.append(
            (
                "load average (1 min) at the phase's start",
                f"{f['load']:.1f}",
                f"{k['load']:.1f}",
                "—",
            )
        )
    return rows


def table(rows: Sequence[tuple[str, str, str, str]], first: str) -> list[str]:
    out = [f"| {first} | federator | kro | federator / kro |", "|---|---:|---:|---:|"]
    out += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    return out


def report(results: Mapping[str, Any]) -> str:
    apps = results["apps"]
    first, last = markers(apps)
    date = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    quick = " (quick mode: a smoke run)" if results["quick"] else ""
    info = [f"- **{k}**: {v}" for k, v in results["info"].items()]
    if not apps:
        c = results["created"]
        head = [
            "## Side by side with kro: the seed application",
            "",
            f"`python bench/peer.py`, measured {date}{quick}: federator and kro "
            f"{kro_build.KRO_VERSION} on one embedded control plane, both running, each in its "
            "own namespaces (and Kafka namespace), the same 15 children from the seed example "
            "(kro: the ResourceGraphDefinition `bench/rgd.py` generates from it), one delegate "
            f"simulator ticking every {SIM_INTERVAL:g} s for both. {len(c['federator'])} "
            "repeats of each, alternating which goes first, after one uncounted warm-up each; "
            f"{sum(len(b['latencies']) for b in results['status']['federator'])} status changes "
            "each, in alternating blocks of up to 20. Method: "
            "[bench/README.md](../bench/README.md#peerpy-side-by-side-with-kro).",
            "",
            *info,
            "",
            *table(seed_rows(results), "seed application"),
        ]
    else:
        head = [
            f"## Side by side with kro: {apps:,} small applications",
            "",
            f"`python bench/peer.py --apps {apps}`, measured {date}{quick}: {apps:,} "
            "applications of 11 children (6 streamlets in a line, 5 Spark and one container, "
            "and the 5 topics between them) POSTed at once (8 threads), with only one controller "
            f"running at a time ({results.get('order', 'federator first, then kro')}), "
            f"{results['nodes']} kwok node{'' if results['nodes'] == 1 else 's'}, the "
            "kube-controller-manager's client limits raised "
            f"({' '.join(SCALE_KCM_QPS)}). Restart: the simulator stopped, the controller "
            "stopped, one SparkApplication set FAILED, the controller started: the time from "
            "the new process's start to the application's status showing it, and the "
            "controller's own writes from its start until 10 s after that; then the child is "
            "set RUNNING again, the simulator restarted, and all applications let converge. "
            "Idle: the 30 s after that, "
            f"{results['scale']['federator']['since_creation']:.0f} s (federator) and "
            f"{results['scale']['kro']['since_creation']:.0f} s (kro) after the creation began. "
            "Method: [bench/README.md](../bench/README.md#peerpy-side-by-side-with-kro).",
            "",
            *info,
            "",
            *table(scale_rows(results["scale"]), f"{apps:,} small applications"),
        ]
    return "\n".join([first, *head, last]) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run")
    parser.add_argument("--apps", type=int, default=0, help="the scale table for N small apps")
    parser.add_argument("--repeats", type=int, default=None, help="seed repeats (default 15)")
    parser.add_argument("--changes", type=int, default=None, help="status changes (default 200)")
    parser.add_argument("--cycles", type=int, default=None, help="create/delete cycles (30)")
    parser.add_argument(
        "--kro-first", action="store_true", help="--apps: run kro's phase before federator's"
    )
    parser.add_argument("--output", type=Path, default=REPO / "docs" / "PERFORMANCE.md")
    parser.add_argument("--json", type=Path, default=None, help="also dump the raw figures")
    parser.add_argument("--keep-logs", type=Path, default=None, help="copy the controllers' logs")
    args = parser.parse_args(argv)
    results = run(args)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))
    section = report(results)
    RECONCILE._load_compile_bench().write_section(args.output, section, markers(args.apps))
    print(section)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
