"""Smoke run of bench/reconcile.py: every section is measured and written between its markers.

The smallest settings (one repeat, a few changes, one resync period) on the session's control
plane (in its own `bench-*` namespaces); no wall-clock assertion: the figures are the
benchmark's business, not the test's.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from conftest import Cluster
else:
    Cluster = Any

REPO = Path(__file__).resolve().parents[2]


def _bench() -> object:
    spec = importlib.util.spec_from_file_location(
        "bench_reconcile", REPO / "bench" / "reconcile.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_reconcile_bench_smoke(cluster: Cluster, tmp_path: Path) -> None:
    bench = _bench()
    out = tmp_path / "PERFORMANCE.md"
    out.write_text(
        "# Performance\n\n<!-- bench:compile:start -->\nkept\n<!-- bench:compile:end -->\n"
    )
    argv = ["--quick", "--no-warmup", "--repeats", "1", "--changes", "4", "--periods", "1"]
    argv += ["--output", str(out)]
    assert bench.main(argv, cluster.plane) == 0  # type: ignore[attr-defined]
    text = out.read_text()
    assert "<!-- bench:compile:start -->\nkept\n<!-- bench:compile:end -->" in text
    section = text[text.index("<!-- bench:reconcile:start -->") :]
    assert section.rstrip().endswith("<!-- bench:reconcile:end -->")
    for heading in ("### 1.", "### 2.", "### 3.", "### 4.", "### 5.", "Goals"):
        assert heading in section
    assert "zero writes on a no-op resync: **met**" in section
