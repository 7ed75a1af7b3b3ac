"""`federator demo`, the README's first command, end to end: from nothing to a Healthy seed
application on its own embedded control plane, then everything it started is gone."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from .test_lifecycle import alive, child_env, wait_until

REPO = Path(__file__).resolve().parents[2]


def test_demo_reaches_healthy_prints_status_and_cleans_up(bin_dir: Path, tmp_path: Path) -> None:
    # A private TMPDIR: the control plane's and the demo's work directories are created there,
    # so "nothing left behind" is checked exactly.
    env = {**child_env(), "TMPDIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "federator", "demo", "--timeout", "150"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=400,
        check=False,
    )
    out = done.stdout
    assert done.returncode == 0, out[-3000:] + done.stderr[-3000:]
    assert re.search(r"^Phase:\s+Healthy$", out, re.M), out[-3000:]
    assert re.search(r"^Ready:\s+15/15$", out, re.M)
    children = re.findall(
        r"^(KafkaTopic|SparkApplication|Deployment)\s+\S+.*\sHealthy\s", out, re.M
    )
    assert sorted(set(children)) == ["Deployment", "KafkaTopic", "SparkApplication"]
    assert len(children) == 15
    assert "kubectl get fapp -A" in out and "federator status call-record-aggregator" in out
    operator_pid = int(re.search(r"federator run \(pid (\d+)", out).group(1))  # type: ignore[union-attr]
    assert wait_until(lambda: not alive(operator_pid), 10), "the operator outlived the demo"
    assert not os.listdir(tmp_path), f"left behind: {os.listdir(tmp_path)}"
