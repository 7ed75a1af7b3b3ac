"""Smoke test of the compile benchmark (bench/compile.py, docs/PERFORMANCE.md).

Checks that the quick mode runs end to end and writes its section between its markers without
touching the rest of the file, and that the generated applications are what the benchmark claims
(valid, every inlet connected, the runtime mix). No wall-clock assertion: timings are the
benchmark's business, not a test's.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from collections import Counter
from pathlib import Path
from types import ModuleType

import pytest

from federator.core import validation
from federator.core.compiler import compile_application
from federator.core.settings import Settings

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "compile.py"
START = "<!-- bench:compile:start -->"
END = "<!-- bench:compile:end -->"


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("federator_bench_compile", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(module)
    return module


def test_quick_mode_writes_its_section_between_the_markers(tmp_path: Path) -> None:
    output = tmp_path / "PERFORMANCE.md"
    output.write_text(
        f"# Performance\n\nIntro kept.\n\n{START}\nstale figures\n{END}\n\n## Other bench\nkept\n",
        encoding="utf-8",
    )
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--repeats", "1", "--output", str(output)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    text = output.read_text(encoding="utf-8")
    assert text.count(START) == 1 and text.count(END) == 1
    assert "stale figures" not in text
    assert text.startswith("# Performance\n\nIntro kept.\n")
    assert text.endswith("## Other bench\nkept\n")
    section = text[text.index(START) : text.index(END)]
    assert "| streamlets | children | best of | total ms | per-streamlet µs |" in section
    assert "ratio to baseline" in section and "growth" in section
    rows = [line for line in section.splitlines() if line.startswith(("| 10 |", "| 100 |"))]
    assert len(rows) == 4  # one row per size in the main table and in the stage table
    assert "**CPU**" in section and "**Python**" in section
    assert "quick mode" in section and "not measured" in section


def test_creates_the_file_when_missing(tmp_path: Path) -> None:
    output = tmp_path / "docs" / "PERFORMANCE.md"
    bench = _bench()
    bench.write_section(output, f"{START}\nfigures\n{END}\n")
    bench.write_section(output, f"{START}\nnew figures\n{END}\n")
    text = output.read_text(encoding="utf-8")
    assert text == f"# Performance\n\n{START}\nnew figures\n{END}\n"


@pytest.mark.parametrize("size", [10, 100])
def test_generated_applications_are_valid_and_mixed(size: int, example_settings: Settings) -> None:
    bench = _bench()
    body = bench.generate(size)
    settings = example_settings
    assert validation.validate(body, settings).problems == ()
    compiled = compile_application(body, settings)
    kinds = Counter(c.kind for c in compiled.children if c.streamlet is not None)
    assert sum(kinds.values()) == size
    if size >= 100:
        assert kinds["SparkApplication"] >= size // 3
        assert kinds["Deployment"] >= size // 3
        assert kinds["FlinkDeployment"] >= size // 6
        assert kinds["FlinkApplication"] >= size // 6
        streamlets = body["spec"]["streamlets"]
        assert any(len(s.get("inlets", ())) > 1 for s in streamlets)  # fan-in
        assert any("config" in s for s in streamlets)
        assert body["spec"]["topics"] and body["spec"]["connections"]
        targets = Counter(len(c["to"]) for c in body["spec"]["connections"])
        assert max(targets) > 1  # fan-out


def test_shards_report_states_the_capacity_per_application() -> None:
    """bench/shards.py's section (the bench itself needs the control plane; its report does not)."""
    spec = importlib.util.spec_from_file_location(
        "federator_bench_shards", SCRIPT.parent / "shards.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rows = [
        {
            "round": "one",
            "shard": "default",
            "apps": 200,
            "healthy_s": 10.0,
            "cpu_s": 20.0,
            "peak_mib": 200.0,
        },
        {
            "round": "two",
            "shard": "a",
            "apps": 100,
            "healthy_s": 6.0,
            "cpu_s": 10.0,
            "peak_mib": 150.0,
        },
    ]
    section = module.report(rows, 200)
    assert section.startswith(module.START) and section.rstrip().endswith(module.END)
    assert "| one | default | 200 | 10.0 | 20.0 | 200 | 100 | 1024 |" in section
    assert "| two | a | 100 | 6.0 | 10.0 | 150 | 100 | 1536 |" in section
