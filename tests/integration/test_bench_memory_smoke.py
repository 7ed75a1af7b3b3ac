"""Smoke run of bench/memory.py --cycles: a few create/delete cycles on a control plane of its
own, the section written between its markers (other sections kept). No figure is asserted:
the figures are the benchmark's business."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_memory_bench_smoke(tmp_path: Path) -> None:
    out = tmp_path / "PERFORMANCE.md"
    out.write_text(
        "# Performance\n\n<!-- bench:compile:start -->\nkept\n<!-- bench:compile:end -->\n"
    )
    subprocess.run(
        [sys.executable, "bench/memory.py", "--cycles", "3", "--warmup", "1", "--output", str(out)],
        cwd=REPO,
        check=True,
        timeout=900,
        capture_output=True,
    )
    text = out.read_text()
    assert "<!-- bench:compile:start -->\nkept\n<!-- bench:compile:end -->" in text
    section = text[text.index("<!-- bench:memory:start -->") :]
    assert section.rstrip().endswith("<!-- bench:memory:end -->")
    assert "| after all 3 cycles, MiB |" in section
    assert "| growth after the warm-up, MiB |" in section
