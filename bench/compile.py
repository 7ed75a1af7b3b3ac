"""Benchmark of the compile pipeline: validate + topology + render of generated DAG applications.

    python bench/compile.py                 # 10, 100, 1,000 and 5,000 streamlets
    python bench/compile.py --quick         # 10 and 100 only (the smoke test runs this)
    python bench/compile.py --output PATH   # write the section elsewhere than docs/PERFORMANCE.md

Every figure is also given as a ratio to a BASELINE measured in the same run on the same data:
a JSON round trip of the Application body (reading the whole input once) plus `yaml.safe_dump_all`
of the children (what `federator compile -o yaml` does to print them). See bench/README.md.

Only the part of the output file between the `bench:compile` markers is (re)written, so other
benchmarks can keep their own sections in the same file.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import gc
import json
import math
import os
import platform
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # `python bench/compile.py` from a checkout without an install
    sys.path.insert(0, str(REPO))

from federator.core import limits, render, validation  # noqa: E402
from federator.core.compiler import compile_application  # noqa: E402
from federator.core.delegates import TargetApis  # noqa: E402
from federator.core.settings import Settings, parse_settings  # noqa: E402

START = "<!-- bench:compile:start -->"
END = "<!-- bench:compile:end -->"
SIZES = (10, 100, 1_000, 5_000)
QUICK_SIZES = (10, 100)
OFFLINE_LIMITS = limits.Limits(max_streamlets=limits.STREAMLETS_CEILING, max_children=10**6)
REFERENCE_SIZE = 100  # growth is the per-streamlet cost relative to this size
GOAL_SIZE = 1_000
GOAL_SECONDS = 1.0
GOAL_GROWTH = 2.0  # per-streamlet cost at the largest size within 2x of the reference size
APP = "bench-dag"
# The baseline's YAML writer: PyYAML's fastest safe dumper (libyaml's emitter when built with it).
DUMPER: type[yaml.SafeDumper] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

# Runtime mix, cycled: 1/3 spark, 1/3 container, 1/6 flink (apache), 1/6 flink (lyft).
MIX = ("spark", "container", "flink-apache", "spark", "container", "flink-lyft")
AVRO = json.dumps(
    {
        "type": "record",
        "name": "Event",
        "namespace": "bench",
        "fields": [
            {"name": "id", "type": "string"},
            {"name": "ts", "type": "long"},
            {"name": "value", "type": "double"},
        ],
    }
)


# --- the generated applications -----------------------------------------------------------------


def _streamlet(index: int, kind: str) -> dict[str, Any]:
    name = f"s{index:04d}-{kind.split('-', maxsplit=1)[0]}"
    image = f"registry.example.com/bench/{kind}:1.{index % 7}.0"
    body: dict[str, Any] = {"name": name, "image": image}
    if kind == "spark":
        body["runtime"] = "spark"
        body["spark"] = {
            "mainApplicationFile": f"local:///opt/spark/jobs/{name}.jar",
            "mainClass": f"bench.Job{index}",
        }
    elif kind == "container":
        body["runtime"] = "container" if index % 2 else "akka"
    elif kind == "flink-apache":
        body["runtime"] = "flink"
        body["flinkOperator"] = "apache"
        body["flink"] = {
            "job": {
                "jarURI": f"local:///opt/flink/usrlib/{name}.jar",
                "entryClass": f"bench.Flink{index}",
                "upgradeMode": "savepoint",
            },
            "flinkConfiguration": {
                "state.checkpoints.dir": f"s3://bench/checkpoints/{name}",
                "state.savepoints.dir": f"s3://bench/savepoints/{name}",
            },
        }
    else:
        body["runtime"] = "flink"
        body["flinkOperator"] = "lyft"
        body["flink"] = {"jarName": f"{name}.jar", "entryClass": f"bench.Lyft{index}"}
    if index % 3 == 0:
        body["config"] = {"batch-size": str(100 + index), "window": "30s", "mode": "at-least-once"}
    if index % 4 == 1:
        body["replicas"] = 1 + index % 5
    return body


def generate(size: int, seed: int = 2024) -> dict[str, Any]:
    """A layered DAG of `size` streamlets: sources, processors with fan-in (1-3 inlets) and
    fan-out (an outlet read by several inlets), some processors with two outlets, sinks.
    Every inlet is connected; one outlet in ten goes through an explicit topic with Avro
    schemas on its ports; the rest use connections and implicit topics."""
    rng = random.Random(seed * 100_003 + size)
    width = max(2, round(math.sqrt(size)))
    layers = [list(range(i, min(i + width, size))) for i in range(0, size, width)]
    if len(layers) == 1 and size > 1:  # at least a source layer and a sink layer
        layers = [layers[0][: size // 2], layers[0][size // 2 :]]
    streamlets = [_streamlet(i, MIX[i % len(MIX)]) for i in range(size)]
    outlets_by_layer: list[list[str]] = []
    readers: dict[str, list[str]] = {}  # "streamlet.outlet" -> ["streamlet.inlet", ...]
    for depth, layer in enumerate(layers):
        last = depth == len(layers) - 1
        layer_outlets = []
        for i in layer:
            s = streamlets[i]
            if depth > 0:
                fan_in = 1 + rng.randrange(3)
                s["inlets"] = [f"in-{k}" for k in range(fan_in)]
                for inlet in s["inlets"]:
                    # Mostly the previous layer; sometimes any earlier one (skip connections).
                    pool = outlets_by_layer[-1]
                    if depth > 1 and rng.random() < 0.2:
                        pool = outlets_by_layer[rng.randrange(depth)]
                    source = rng.choice(pool)
                    readers.setdefault(source, []).append(f"{s['name']}.{inlet}")
            if not last:
                s["outlets"] = ["valid", "invalid"] if i % 5 == 2 else ["out"]
                layer_outlets += [f"{s['name']}.{o}" for o in s["outlets"]]
        outlets_by_layer.append(layer_outlets)

    by_name = {s["name"]: s for s in streamlets}
    connections = []
    topics = []
    for n, (source, targets) in enumerate(sorted(readers.items())):
        if n % 10 == 0:
            topic: dict[str, Any] = {
                "name": f"{APP}.shared-{n:05d}",
                "producers": [source],
                "consumers": sorted(targets),
            }
            if n % 20 == 0:
                topic["partitions"] = 24
                topic["config"] = {"cleanup.policy": "compact"}
            topics.append(topic)
            for ref in (source, *targets):
                streamlet, port = ref.split(".")
                schemas = by_name[streamlet].setdefault("schemas", {})
                schemas[port] = {"format": "avro", "definition": AVRO}
        else:
            connections.append({"from": source, "to": sorted(targets)})
    return {
        "apiVersion": "federator.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": APP, "namespace": "bench", "uid": "0d6f0b1e-bench", "generation": 1},
        "spec": {
            "kafka": {"cluster": "default"},
            "topicDefaults": {
                "partitions": 12,
                "replicas": 3,
                "config": {"retention.ms": "604800000"},
            },
            "deletionPolicy": "Retain",
            "streamlets": streamlets,
            "connections": connections,
            "topics": topics,
        },
    }


# --- measuring -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    streamlets: int
    children: int
    repeats: int
    total_s: float
    validate_s: float
    render_s: float
    baseline_s: float
    no_gc_s: float
    """The total with the garbage collector paused: the growth that is not the collector's."""

    @property
    def per_streamlet_us(self) -> float:
        return self.total_s / self.streamlets * 1e6

    @property
    def ratio(self) -> float:
        return self.total_s / self.baseline_s


def repeats_for(size: int) -> int:
    """Best of N, N shrinking with size (about the same wall time per size)."""
    return max(3, min(30, 5000 // size))


def best_of(fn: Callable[[], object], repeats: int, *, collector: bool = True) -> float:
    fn()  # warm-up: templates compiled, validator built, caches filled
    best = math.inf
    for _ in range(repeats):
        gc.collect()
        if not collector:
            gc.disable()
        try:
            start = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - start)
        finally:
            gc.enable()
    return best


def measure(size: int, settings: Settings, repeats: int | None = None) -> Row:
    body = generate(size)
    n = repeats or repeats_for(size)
    compiled = compile_application(body, settings)
    manifests = [dict(c.manifest) for c in compiled.children]
    served = TargetApis.offline()
    result = validation.validate(body, settings)
    assert result.ok, result.problems[:3]

    def baseline() -> None:
        json.loads(json.dumps(body))
        yaml.dump_all(manifests, Dumper=DUMPER, sort_keys=False, default_flow_style=False)

    return Row(
        streamlets=size,
        children=len(compiled.children),
        repeats=n,
        total_s=best_of(lambda: compile_application(body, settings), n),
        validate_s=best_of(lambda: validation.validate(body, settings), n),
        render_s=best_of(lambda: render.render(result.topology, settings, served), n),
        baseline_s=best_of(baseline, n),
        no_gc_s=best_of(lambda: compile_application(body, settings), n, collector=False),
    )


@dataclass(frozen=True)
class Cli:
    """`federator compile FILE` as a user runs it: a new interpreter, reading the file, printing
    the YAML stream (to /dev/null), exiting. Best of N, wall and CPU (user + system)."""

    streamlets: int
    repeats: int
    wall_s: float
    cpu_s: float
    python_s: float
    """`python -c pass`: the interpreter's own start, the floor of any command."""
    imports_s: float
    """`python -c 'import federator.cli.compile_cmd'`: start-up with the compiler's libraries."""


def _run_best(args: Sequence[str], repeats: int) -> tuple[float, float]:
    best_wall = best_cpu = math.inf
    for _ in range(repeats):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(args, stdout=subprocess.DEVNULL, check=True, cwd=REPO)
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        best_wall, best_cpu = min(best_wall, wall), min(best_cpu, cpu)
    return best_wall, best_cpu


def measure_cli(size: int, settings_path: Path, repeats: int = 5) -> Cli:
    with tempfile.TemporaryDirectory() as tmp:
        app = Path(tmp) / "big.yaml"
        app.write_text(yaml.dump(generate(size), Dumper=DUMPER, sort_keys=False))
        py = sys.executable
        cmd = [py, "-m", "federator", "compile", str(app), "--settings", str(settings_path)]
        wall, cpu = _run_best(cmd, repeats)
        python_s, _ = _run_best([py, "-c", "pass"], repeats)
        imports_s, _ = _run_best([py, "-c", "import federator.cli.compile_cmd"], repeats)
    return Cli(size, repeats, wall, cpu, python_s, imports_s)


# --- the report ----------------------------------------------------------------------------------


def machine() -> dict[str, str]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    versions = []
    for package in ("jsonschema", "networkx", "jinja2", "pyyaml"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions.append(f"{package} {metadata.version(package)}")
    libyaml = "with libyaml" if getattr(yaml, "__with_libyaml__", False) else "without libyaml"
    return {
        "CPU": cpu,
        "Cores": f"{os.cpu_count()} ({usable} usable by this process; the benchmark uses one)",
        "Python": f"{platform.python_implementation()} {platform.python_version()}",
        "Platform": platform.platform(),
        "Load average at start (1/5/15 min)": (
            " / ".join(f"{x:.2f}" for x in os.getloadavg()) + " (other work on the machine "
            "inflates the figures, and the large sizes more: they have fewer repeats)"
            if hasattr(os, "getloadavg")
            else "unknown"
        ),
        "Libraries": ", ".join(versions) + f" (PyYAML {libyaml})",
    }


def _reference(rows: Sequence[Row]) -> Row:
    return next((r for r in rows if r.streamlets == REFERENCE_SIZE), rows[0])


def report(
    rows: Sequence[Row], info: dict[str, str], *, quick: bool, cli: Cli | None = None
) -> str:
    ref = _reference(rows)
    date = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    out = [
        START,
        "## Compile benchmark",
        "",
        "`python bench/compile.py` (`make bench`): `compile_application` (validate against the CRD "
        "schema and semantic checks, topology, render of every child) on generated layered DAG "
        "applications: 1/3 spark, 1/3 container, 1/6 Flink on the Apache operator, 1/6 on "
        "Lyft's; fan-in of 1-3 inlets, fan-out, two-outlet processors, skip connections, every "
        "inlet connected, config maps on 1/3 of the streamlets, one outlet in ten through an "
        "explicit topic with Avro schemas, topicDefaults. Generator and method: "
        "[bench/README.md](../bench/README.md).",
        "",
        f"Measured {date}{' (quick mode: 10 and 100 streamlets only)' if quick else ''}.",
        "",
        *(f"- **{k}**: {v}" for k, v in info.items()),
        "",
        "Wall time (`time.perf_counter`), best of N runs after one warm-up run, one process. "
        "**Baseline** (same run, same data): `json.loads(json.dumps(body))` + "
        f"`yaml.dump_all(children, Dumper=yaml.{DUMPER.__name__})`, i.e. reading the whole input "
        "once and writing the whole output once in the format `federator compile` prints. "
        "**Ratio** = total / baseline. "
        f"**Growth** = per-streamlet cost / per-streamlet cost at {ref.streamlets} streamlets "
        "(1.00 is perfectly linear).",
        "",
        "| streamlets | children | best of | total ms | per-streamlet µs | baseline ms "
        "| ratio to baseline | growth |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        out.append(
            f"| {r.streamlets:,} | {r.children:,} | {r.repeats} | {r.total_s * 1e3:,.1f} "
            f"| {r.per_streamlet_us:,.0f} | {r.baseline_s * 1e3:,.1f} | {r.ratio:.2f} "
            f"| {r.per_streamlet_us / ref.per_streamlet_us:.2f} |"
        )
    out += [
        "",
        "Stages, each timed on its own (validate includes the model and the topology), and the "
        "total again with the garbage collector paused during the timed run (`gc.disable()`), "
        "which separates the growth of federator's own work from the collector's:",
        "",
        "| streamlets | validate ms | render ms | validate µs/streamlet | render µs/streamlet "
        "| total µs/streamlet, GC paused | growth, GC paused |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        out.append(
            f"| {r.streamlets:,} | {r.validate_s * 1e3:,.1f} | {r.render_s * 1e3:,.1f} "
            f"| {r.validate_s / r.streamlets * 1e6:,.0f} "
            f"| {r.render_s / r.streamlets * 1e6:,.0f} "
            f"| {r.no_gc_s / r.streamlets * 1e6:,.0f} "
            f"| {r.no_gc_s / ref.no_gc_s * ref.streamlets / r.streamlets:.2f} |"
        )
    if cli is not None:
        out += [
            "",
            f"End to end, as a user runs it: `federator compile app.yaml --settings "
            f"examples/settings.yaml > /dev/null` of the {cli.streamlets:,}-streamlet "
            f"application (a new interpreter each time; best of {cli.repeats}; CPU = user + "
            "system of the process, which other work on the machine inflates less than wall "
            "time):",
            "",
            "| streamlets | wall ms | CPU ms | of which `python -c pass` ms "
            "| `import federator.cli.compile_cmd` ms |",
            "|---:|---:|---:|---:|---:|",
            f"| {cli.streamlets:,} | {cli.wall_s * 1e3:,.0f} | {cli.cpu_s * 1e3:,.0f} "
            f"| {cli.python_s * 1e3:,.0f} | {cli.imports_s * 1e3:,.0f} |",
        ]
    out += ["", "Goals:", ""]
    goal = next((r for r in rows if r.streamlets == GOAL_SIZE), None)
    if goal is None:
        out.append(f"- {GOAL_SIZE:,} streamlets under {GOAL_SECONDS:g} s: not measured")
    else:
        verdict = "**met**" if goal.total_s < GOAL_SECONDS else "**NOT met**"
        out.append(
            f"- {GOAL_SIZE:,} streamlets under {GOAL_SECONDS:g} s: {verdict} "
            f"({goal.total_s * 1e3:,.0f} ms)"
        )
    if cli is not None:
        verdict = "**met**" if cli.wall_s < GOAL_SECONDS else "**NOT met**"
        out.append(
            f"- `federator compile` of {cli.streamlets:,} streamlets end to end under "
            f"{GOAL_SECONDS:g} s: {verdict} ({cli.wall_s * 1e3:,.0f} ms wall, "
            f"{cli.cpu_s * 1e3:,.0f} ms CPU)"
        )
    largest = rows[-1]
    if largest is ref:
        out.append("- linear growth: not measured (no size above the reference)")
    else:
        growth = largest.per_streamlet_us / ref.per_streamlet_us
        verdict = "**met**" if growth <= GOAL_GROWTH else "**NOT met**"
        paused = largest.no_gc_s / ref.no_gc_s * ref.streamlets / largest.streamlets
        out.append(
            f"- linear growth (per-streamlet cost at {largest.streamlets:,} within "
            f"{GOAL_GROWTH:g}x of {ref.streamlets}): {verdict} ({growth:.2f}x; "
            f"{paused:.2f}x with the garbage collector paused)"
        )
    out.append(END)
    return "\n".join(out) + "\n"


def write_section(path: Path, section: str, markers: tuple[str, str] = (START, END)) -> None:
    """Replace the text between the markers, or append the section (creating the file).
    Each benchmark owns one marked section of docs/PERFORMANCE.md."""
    first, last = markers
    text = path.read_text(encoding="utf-8") if path.exists() else "# Performance\n"
    start, end = text.find(first), text.find(last)
    if start != -1 and end > start:
        text = text[:start] + section.rstrip("\n") + text[end + len(last) :]
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="sizes 10 and 100 only (smoke)")
    parser.add_argument("--sizes", type=lambda s: [int(x) for x in s.split(",")], default=None)
    parser.add_argument("--repeats", type=int, default=None, help="override best-of N")
    parser.add_argument("--settings", type=Path, default=REPO / "examples" / "settings.yaml")
    parser.add_argument("--output", type=Path, default=REPO / "docs" / "PERFORMANCE.md")
    args = parser.parse_args(argv)
    sizes = sorted(args.sizes or (QUICK_SIZES if args.quick else SIZES))
    settings = parse_settings(yaml.safe_load(args.settings.read_text(encoding="utf-8")))
    # Offline, the compiler is measured past the operator's default size limits (up to the
    # CRD's ceiling): linear growth is the compiler's property, whatever an operator serves.
    settings = replace(settings, limits=OFFLINE_LIMITS)
    info = machine()  # before measuring: the load average is the one the run started under
    rows = []
    for size in sizes:
        row = measure(size, settings, args.repeats)
        rows.append(row)
        print(
            f"{row.streamlets:>6} streamlets {row.children:>6} children "
            f"total {row.total_s * 1e3:9.1f} ms  {row.per_streamlet_us:7.0f} µs/streamlet  "
            f"(validate {row.validate_s * 1e3:.1f} ms, render {row.render_s * 1e3:.1f} ms, "
            f"baseline {row.baseline_s * 1e3:.1f} ms, ratio {row.ratio:.2f})",
            flush=True,
        )
    cli = None
    if not args.quick and GOAL_SIZE in sizes:
        cli = measure_cli(GOAL_SIZE, args.settings)
        print(
            f"federator compile, {GOAL_SIZE} streamlets, end to end: {cli.wall_s * 1e3:.0f} ms "
            f"wall, {cli.cpu_s * 1e3:.0f} ms CPU (python -c pass {cli.python_s * 1e3:.0f} ms)",
            flush=True,
        )
    write_section(args.output, report(rows, info, quick=args.quick, cli=cli))
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
