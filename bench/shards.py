"""Capacity per shard: one operator against two shards serving the same number of Applications.

    python bench/shards.py                 # 200 applications (make bench does not run it)
    python bench/shards.py --apps 400
    python bench/shards.py --output PATH   # default docs/PERFORMANCE.md (its bench:shards section)

On one embedded control plane, with the delegate simulator: round 1 runs one operator (the
default shard) and creates N small Applications (three Spark streamlets in a chain: three
SparkApplications and two KafkaTopics each); round 2 runs two shards (the default one and shard `a`)
and creates N more in fresh namespaces, half of them labelled `federator.io/shard: a`. For each
operator process: the Applications it served, the time from the first POST until every one of
them is Healthy, its CPU seconds and its peak RSS (`VmHWM`) over the round. What a shard costs
is what one operator serving its share costs; the ratio of the two rounds says how much of an
operator's memory and CPU follows its share of the Applications (the watch caches, kopf's
per-object state) and how much is fixed (the interpreter, the libraries).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.compile import write_section  # noqa: E402
from federator.core.sharding import SHARD_LABEL  # noqa: E402
from federator.devcluster import build, crdfiles  # noqa: E402
from federator.devcluster.harness import OperatorProcess, eventually, free_port  # noqa: E402
from federator.devcluster.launcher import ControlPlane  # noqa: E402
from federator.simulator import DelegateSimulator  # noqa: E402

START = "<!-- bench:shards:start -->"
END = "<!-- bench:shards:end -->"
TICK = os.sysconf("SC_CLK_TCK")


def application(name: str, namespace: str, shard: str | None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": namespace}
    if shard:
        meta["labels"] = {SHARD_LABEL: shard}

    def spark(name: str, **ports: list[str]) -> dict[str, Any]:
        return {
            "name": name,
            "runtime": "spark",
            "image": f"r/{name}:1",
            "spark": {"mainApplicationFile": f"local:///opt/{name}.jar", "mainClass": "b.Main"},
            **ports,
        }

    streamlets = [
        spark("source", outlets=["out"]),
        spark("step", inlets=["in"], outlets=["out"]),
        spark("sink", inlets=["in"]),
    ]
    return {
        "apiVersion": "federator.io/v1alpha1",
        "kind": "Application",
        "metadata": meta,
        "spec": {
            "streamlets": streamlets,
            "connections": [
                {"from": "source.out", "to": ["step.in"]},
                {"from": "step.out", "to": ["sink.in"]},
            ],
        },
    }


def cpu_and_peak(pid: int) -> tuple[float, float]:
    """CPU seconds (user + system) and peak RSS in MiB of a live process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / TICK
    peak = 0.0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            peak = int(line.split()[1]) / 1024
    return cpu, peak


def run_round(
    plane: ControlPlane, workdir: Path, label: str, shards: Sequence[str | None], apps: int
) -> list[dict[str, Any]]:
    namespace, kafka = f"shards-{label}", f"shards-{label}-kafka"
    for ns in (namespace, kafka):
        status, body = plane.request(
            "POST",
            "/api/v1/namespaces",
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}},
        )
        assert status in (201, 409), body
    sim = DelegateSimulator(plane.api_client("admin"), interval=0.1, namespaces=[namespace, kafka])
    sim.run_in_thread()
    operators = []
    for shard in shards:
        settings = workdir / f"{label}-{shard or 'default'}.yaml"
        settings.write_text(
            yaml.safe_dump(
                {
                    "kafkaClusters": [
                        {
                            "name": "default",
                            "strimziCluster": "bench",
                            "namespace": kafka,
                            "bootstrapServers": "bench-kafka-bootstrap:9092",
                        }
                    ],
                    "operator": {"metricsPort": free_port(), "livenessPort": free_port()},
                }
            )
        )
        extra = ["--shard", shard] if shard else []
        op = OperatorProcess(
            settings,
            plane.kubeconfig,
            workdir / f"{label}-{shard or 'default'}.log",
            [namespace, kafka],
            extra_args=extra,
        )
        op.start()
        operators.append((shard, op))
    try:
        start_cpu = {s: cpu_and_peak(op.proc.pid)[0] for s, op in operators if op.proc}
        path = f"/apis/federator.io/v1alpha1/namespaces/{namespace}/applications"
        names: dict[str | None, list[str]] = {s: [] for s in shards}
        started = time.monotonic()
        for i in range(apps):
            shard = shards[i % len(shards)]
            name = f"app-{i:04d}"
            status, got = plane.request("POST", path, application(name, namespace, shard))
            assert status == 201, got
            names[shard].append(name)
        done: dict[str | None, float] = {}

        def converged() -> bool:
            items = plane.request("GET", path)[1]["items"]
            healthy = {
                i["metadata"]["name"]
                for i in items
                if (i.get("status") or {}).get("phase") == "Healthy"
            }
            for shard, mine in names.items():
                if shard not in done and set(mine) <= healthy:
                    done[shard] = time.monotonic() - started
            return len(done) == len(names)

        eventually(converged, f"{apps} applications Healthy", timeout=900, poll=1.0)
        rows = []
        for shard, op in operators:
            assert op.proc is not None
            cpu, peak = cpu_and_peak(op.proc.pid)
            rows.append(
                {
                    "round": label,
                    "shard": shard or "default",
                    "apps": len(names[shard]),
                    "healthy_s": done[shard],
                    "cpu_s": cpu - start_cpu[shard],
                    "peak_mib": peak,
                }
            )
        return rows
    finally:
        for _, op in operators:
            op.stop()
        sim.stop()


def report(rows: list[dict[str, Any]], apps: int) -> str:
    date = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    load = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    out = [
        START,
        "## Sharding: capacity per shard",
        "",
        "`python bench/shards.py --apps N` (method in its docstring): one control plane, the "
        f"delegate simulator; {apps} Applications of 5 children each (three Spark "
        "streamlets in a chain: 3 SparkApplications, 2 KafkaTopics; no pods, so the test "
        "cluster's node capacity is not what is measured), created at once, served by one "
        "operator (round `one`), then another "
        f"{apps} by two shards, the default one and `a`, half each (round `two`). "
        f"Measured {date}; load average at the end {load} (2 cores shared with other work: "
        "times are inflated, the memory is not).",
        "",
        "| round | shard | applications | all Healthy s | CPU s | peak RSS MiB "
        "| CPU ms per application | peak RSS KiB per application |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        out.append(
            f"| {r['round']} | {r['shard']} | {r['apps']} | {r['healthy_s']:.1f} "
            f"| {r['cpu_s']:.1f} | {r['peak_mib']:.0f} | {r['cpu_s'] / r['apps'] * 1e3:.0f} "
            f"| {r['peak_mib'] * 1024 / r['apps']:.0f} |"
        )
    out.append(END)
    return "\n".join(out) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--apps", type=int, default=200)
    parser.add_argument("--output", type=Path, default=REPO / "docs" / "PERFORMANCE.md")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop what was started
    bin_dir = build.ensure_binaries(build=True, out=sys.stderr)
    plane = ControlPlane(bin_dir, start_timeout=180.0)
    plane.start()
    workdir = Path(plane.kubeconfig).parent
    try:
        plane.install_crds(REPO / "crds" / "application.yaml")
        plane.install_crds(*crdfiles.delegate_crd_files(crdfiles.delegate_crds_dir()))
        rows = run_round(plane, workdir, "one", [None], args.apps)
        rows += run_round(plane, workdir, "two", [None, "a"], args.apps)
    finally:
        plane.stop()
    for r in rows:
        print(r, flush=True)
    write_section(args.output, report(rows, args.apps), (START, END))
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
