"""Where the operator's memory goes, and whether it stays flat (issue 14).

    python bench/memory.py --cycles 500        # RSS over 500 create/delete cycles of the seed app
    python bench/memory.py --profile 200       # tracemalloc: the largest holders at 200 small apps
    python bench/memory.py --cycles 20 --warmup 5 --output PATH   # a short run, elsewhere

`--cycles`: one embedded control plane, the delegate simulator, `federator run`; the seed
application created, let become Healthy, deleted and waited for, N times; the operator's
resident memory after each cycle. After `--warmup` cycles (caches, pools, imports of code paths
first taken, glibc's arenas) the memory should be flat: the section reports the growth from the
end of the warm-up to the end, and the least-squares slope per 100 cycles over the same span.
Writes the part of docs/PERFORMANCE.md between the `bench:memory` markers.

`--profile`: the same set-up with N small applications (bench/peer.py's shape: 11 children
each), the operator run under `tracemalloc` (25 frames; it is several times slower, and its
RSS is not the figure to quote). Once all are Healthy and quiet, a snapshot; printed: the live
Python memory by the outermost frame of federator or kopf that allocated it, and the Python
objects by type (a `gc` census). Nothing is written to the docs: the reading is prose.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
for path in (REPO, REPO / "bench"):
    if str(path) not in sys.path:  # `python bench/memory.py` from a checkout without an install
        sys.path.insert(0, str(path))

import peer  # noqa: E402

from federator.devcluster import crdfiles  # noqa: E402
from federator.devcluster.harness import eventually, free_port  # noqa: E402
from federator.devcluster.launcher import ControlPlane  # noqa: E402
from federator.simulator import DelegateSimulator  # noqa: E402

START = "<!-- bench:memory:start -->"
END = "<!-- bench:memory:end -->"
NS, KAFKA_NS = "memory", "memory-kafka"
APPS = f"/apis/federator.io/v1alpha1/namespaces/{NS}/applications"
MIB = 2**20

# Run as the operator under tracemalloc: SIGUSR2 writes a snapshot and a gc census next to it.
TRACED = """
import gc, json, os, signal, tracemalloc
from collections import Counter
tracemalloc.start(25)
def dump(*_):
    gc.collect()
    out = os.environ["FEDERATOR_BENCH_SNAPSHOT"]
    tracemalloc.take_snapshot().dump(out)
    census = Counter(type(o).__name__ for o in gc.get_objects())
    with open(out + ".census.json", "w") as f:
        json.dump(census.most_common(40), f)
    open(out + ".done", "w").close()
signal.signal(signal.SIGUSR2, dump)
from federator.cli.main import main
raise SystemExit(main())
"""


def rss(pid: int) -> float:
    return peer.rss_bytes(pid) / MIB


class Setup:
    """A control plane with the CRDs, two namespaces, the simulator and an operator."""

    def __init__(self, plane: ControlPlane, workdir: Path, *, traced: bool = False) -> None:
        self.plane = plane
        plane.install_crds(REPO / "crds" / "application.yaml")
        plane.install_crds(*crdfiles.delegate_crd_files(crdfiles.delegate_crds_dir()))
        for ns in (NS, KAFKA_NS):
            code, got = plane.request(
                "POST",
                "/api/v1/namespaces",
                {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}},
            )
            assert code in (201, 409), got
        self.port = free_port()
        settings = workdir / "settings.yaml"
        settings.write_text(
            yaml.safe_dump(
                {
                    "kafkaClusters": [{**peer.CLUSTER, "namespace": KAFKA_NS}],
                    "operator": {"metricsPort": self.port, "livenessPort": free_port()},
                }
            )
        )
        self.snapshot = workdir / "snapshot"
        program = ["-c", TRACED] if traced else ["-m", "federator"]
        args = [sys.executable, *program, "run", "--kubeconfig", str(plane.kubeconfig)]
        args += ["--settings", str(settings), "-n", NS, "-n", KAFKA_NS]
        env = {
            **os.environ,
            "PYTHONPATH": str(REPO),
            "PYTHONUNBUFFERED": "1",
            "FEDERATOR_BENCH_SNAPSHOT": str(self.snapshot),
        }
        with (workdir / "operator.log").open("wb") as log:
            self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env)
        eventually(self.ready, "the operator's metrics endpoint", 120)
        self.sim = DelegateSimulator(
            plane.api_client("admin"), interval=peer.SIM_INTERVAL, label_selector=peer.SIM_SELECTOR
        )
        self.sim.run_in_thread()

    def ready(self) -> bool:
        assert self.proc.poll() is None, "the operator exited"
        try:
            import urllib.request

            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/", timeout=1):
                return True
        except OSError:
            return False

    def stop(self) -> None:
        self.sim.stop()
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def healthy(self, name: str) -> bool:
        code, got = self.plane.request("GET", f"{APPS}/{name}")
        status = (got or {}).get("status") or {} if code == 200 else {}
        return bool(
            status.get("phase") == "Healthy"
            and status.get("observedGeneration") == got["metadata"].get("generation")
        )


def cycles(setup: Setup, n: int) -> list[float]:
    """The seed application created, Healthy, deleted and gone, `n` times: RSS after each."""
    body = peer.seed_app()
    # Its topics deleted with it (the example keeps them: Retain), so each cycle leaves the
    # cluster as it found it and what grows is the operator's own.
    body["spec"]["deletionPolicy"] = "Delete"
    out: list[float] = []
    for i in range(n):
        name = f"cycle-{i}"
        app = {**body, "metadata": {"name": name, "namespace": NS}}
        code, got = setup.plane.request("POST", APPS, app)
        assert code == 201, got
        eventually(lambda n=name: setup.healthy(n), f"{name} Healthy", 120, 0.05)  # type: ignore[misc]
        code, got = setup.plane.request("DELETE", f"{APPS}/{name}")
        assert code == 200, got
        eventually(
            lambda n=name: setup.plane.request("GET", f"{APPS}/{n}")[0] == 404,  # type: ignore[misc]
            f"{name} deleted",
            120,
            0.05,
        )
        out.append(rss(setup.proc.pid))
        if i % 50 == 49:
            peer.log(f"cycle {i + 1}/{n}: {out[-1]:.1f} MiB")
    return out


def slope(values: Sequence[float]) -> float:
    """Least-squares growth per cycle."""
    n = len(values)
    if n < 2:
        return 0.0
    mean_x, mean_y = (n - 1) / 2, sum(values) / n
    num = sum((x - mean_x) * (y - mean_y) for x, y in enumerate(values))
    return num / sum((x - mean_x) ** 2 for x in range(n))


def cycles_section(start: float, values: Sequence[float], warmup: int, info: dict[str, str]) -> str:
    after = values[warmup:]
    date = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    growth = after[-1] - after[0]
    rows = [
        ("RSS at start (no application), MiB", f"{start:.1f}"),
        (f"after the warm-up ({warmup} cycles), MiB", f"{after[0]:.1f}"),
        (f"after all {len(values)} cycles, MiB", f"{values[-1]:.1f}"),
        ("maximum after the warm-up, MiB", f"{max(after):.1f}"),
        ("growth after the warm-up, MiB", f"{growth:+.1f}"),
        ("least-squares slope after the warm-up, MiB per 100 cycles", f"{100 * slope(after):+.2f}"),
    ]
    return (
        "\n".join(
            [
                START,
                "## Memory over create/delete cycles",
                "",
                f"`python bench/memory.py --cycles {len(values)} --warmup {warmup}`, measured "
                f"{date}: "
                "`federator run` alone on the embedded control plane with the delegate simulator; "
                "the seed application created, Healthy, deleted and gone, again and again; the "
                "operator's resident memory after each cycle. Method: the module's docstring.",
                "",
                *(f"- **{k}**: {v}" for k, v in info.items()),
                "",
                "| seed application, create/delete cycles | federator |",
                "|---|---:|",
                *(f"| {a} | {b} |" for a, b in rows),
                END,
            ]
        )
        + "\n"
    )


def profile(setup: Setup, apps: int, top: int) -> None:
    """N small applications, all Healthy and quiet, then the snapshot's largest holders."""
    import tracemalloc

    body = peer.small_app()

    def post(i: int) -> None:
        app = {**body, "metadata": {"name": f"small-{i:04d}", "namespace": NS}}
        setup.plane.request("POST", APPS, app)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(post, range(apps)))

    def all_healthy() -> bool:
        _, got = setup.plane.request("GET", APPS)
        return (
            sum(1 for item in got.get("items", []) if setup.healthy(item["metadata"]["name"]))
            >= apps
        )

    eventually(all_healthy, f"{apps} Healthy", 7200, 5.0)
    setup.sim.stop()
    time.sleep(15.0)  # quiet: the last status writes and Events
    setup.proc.send_signal(signal.SIGUSR2)
    done = Path(f"{setup.snapshot}.done")
    eventually(done.exists, "the snapshot", 900, 1.0)
    snapshot = tracemalloc.Snapshot.load(str(setup.snapshot))
    by_site: Counter[str] = Counter()
    for trace in snapshot.traces:
        frames = list(trace.traceback)  # oldest first
        site = next(
            (
                f"{f.filename.split('site-packages/')[-1].split('/work/')[-1]}:{f.lineno}"
                for f in reversed(frames)
                if "/federator/" in f.filename or "/kopf/" in f.filename
            ),
            f"(other) {frames[-1].filename.rsplit('/', 1)[-1]}",
        )
        by_site[site] += trace.size
    total = sum(by_site.values())
    print(f"live Python memory traced: {total / MIB:.1f} MiB at {apps} applications")
    print("by the innermost frame of federator or kopf that allocated it:")
    for site, size in by_site.most_common(top):
        print(f"  {size / MIB:8.1f} MiB  {site}")
    census = json.loads(Path(f"{setup.snapshot}.census.json").read_text())
    print("objects by type:", ", ".join(f"{k} {v}" for k, v in census[:top]))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--cycles", type=int, help="create/delete cycles of the seed application")
    mode.add_argument("--profile", type=int, help="small applications to profile")
    parser.add_argument("--warmup", type=int, default=50, help="cycles before flatness counts")
    parser.add_argument("--top", type=int, default=25, help="rows of the profile")
    parser.add_argument("--output", type=Path, default=REPO / "docs" / "PERFORMANCE.md")
    args = parser.parse_args(argv)
    if args.cycles is not None and not 0 <= args.warmup < args.cycles:
        parser.error("--warmup must be below --cycles")
    workdir = Path(tempfile.mkdtemp(prefix="federator-memory-"))
    with peer.control_plane(peer.SCALE_KCM_QPS if args.profile else ()) as plane:
        if args.profile:
            peer.add_nodes(plane, args.profile * 2)
        setup = Setup(plane, workdir, traced=args.profile is not None)
        try:
            info = peer.machine(plane)
            info.pop("kro", None)
            if args.profile:
                profile(setup, args.profile, args.top)
                return 0
            time.sleep(2.0)
            start = rss(setup.proc.pid)
            values = cycles(setup, args.cycles)
            info["Load average at end (1/5/15 min)"] = " / ".join(
                f"{x:.2f}" for x in os.getloadavg()
            )
        finally:
            setup.stop()
    section = cycles_section(start, values, args.warmup, info)
    print(section)
    peer.RECONCILE._load_compile_bench().write_section(args.output, section, (START, END))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
