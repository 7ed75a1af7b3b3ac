"""`federator demo`, the README's first command, end to end: from nothing to a Healthy seed
application on its own embedded control plane, then everything it started is gone."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from federator.core import resources
from federator.devcluster import crdfiles, delegates

from .test_lifecycle import alive, child_env, wait_until

REPO = Path(__file__).resolve().parents[2]


def test_demo_reaches_healthy_prints_status_and_cleans_up(bin_dir: Path, tmp_path: Path) -> None:
    # A private TMPDIR: the control plane's and the demo's work directories are created there,
    # so "nothing left behind" is checked exactly.
    env = {**child_env(), "TMPDIR": str(tmp_path)}
    env.pop(crdfiles.ENV_DELEGATE_CRDS, None)  # the CRDs shipped with federator
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


@pytest.mark.real_delegates
def test_demo_on_the_real_spark_operator(bin_dir: Path, tmp_path: Path) -> None:
    """`federator demo --real-spark`: the SparkApplications are moved by the real kubeflow
    spark-operator (built by `make delegates`), the rest by the simulator; Healthy 15/15 with the
    operator's own RUNNING states, and nothing left running or behind, spark-operator included."""
    env = {**child_env(), "TMPDIR": str(tmp_path)}
    env.pop(crdfiles.ENV_DELEGATE_CRDS, None)
    if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
        assert delegates.ensure_spark_operator(build_missing=False).complete
    done = subprocess.run(
        [sys.executable, "-m", "federator", "demo", "--real-spark", "--timeout", "300"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    out = done.stdout
    assert done.returncode == 0, out[-3000:] + done.stderr[-3000:]
    assert "spark-operator: the real kubeflow operator" in out
    # Progress lines count children by health: a freshly created SparkApplication written a
    # second time made the operator run spark-submit twice (SUBMISSION_FAILED, Degraded for
    # 20 s; docs/real-delegates.md). A creation is one write: never Degraded on the way.
    progress = re.findall(r"^  (?:Progressing|Healthy|Degraded) .*$", out, re.M)
    assert progress and not any("Degraded" in line for line in progress), progress
    assert (
        "moving: FlinkApplication, FlinkDeployment, FlinkSessionJob, KafkaTopic" in out
    )  # not Spark
    assert re.search(r"^Ready:\s+15/15$", out, re.M), out[-3000:]
    spark = re.findall(r"^SparkApplication\s+\S+.*\sHealthy\s+RUNNING\s+2/2 executors", out, re.M)
    assert len(spark) == 3, out[-3000:]
    assert "Traceback" not in done.stderr + out, (done.stderr + out)[-3000:]
    operator_pid = int(re.search(r"federator run \(pid (\d+)", out).group(1))  # type: ignore[union-attr]
    assert wait_until(lambda: not alive(operator_pid), 10), "the operator outlived the demo"
    spark_pid = int(re.search(r"kubeflow operator \(pid (\d+)", out).group(1))  # type: ignore[union-attr]
    assert wait_until(lambda: not alive(spark_pid), 10), "the spark-operator outlived the demo"
    assert not os.listdir(tmp_path), f"left behind: {os.listdir(tmp_path)}"


def _crds_without(tmp_path: Path, *prefixes: str) -> Path:
    folder = tmp_path / "crds"
    folder.mkdir()
    for crd in crdfiles.delegate_crd_files(resources.delegate_crds_dir()):
        if not crd.name.startswith(prefixes):
            (folder / crd.name).write_bytes(crd.read_bytes())
    return folder


def _demo(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "federator", "demo", "--timeout", "150"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_demo_without_a_delegate_crd_stops_before_starting_anything(tmp_path: Path) -> None:
    """The seed renders SparkApplications: with no Spark CRD in the folder the demo says so
    and starts no control plane (nothing to wait for that cannot happen)."""
    work = tmp_path / "tmp"
    work.mkdir()
    env = {
        **child_env(),
        "TMPDIR": str(work),
        crdfiles.ENV_DELEGATE_CRDS: str(_crds_without(tmp_path, "sparkoperator-sparkapp")),
    }
    done = _demo(env)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "SparkApplication (sparkapplications.sparkoperator.k8s.io)" in done.stderr
    assert "the Kubeflow Spark operator" in done.stderr
    assert "control plane" not in done.stdout and not os.listdir(work)


def test_demo_stops_at_once_when_the_api_server_refuses_a_delegate_crd(tmp_path: Path) -> None:
    folder = _crds_without(tmp_path)
    broken = folder / "sparkoperator-sparkapplication.crd.yaml"
    crd = yaml.safe_load(broken.read_text())
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["type"] = "no-such-type"
    broken.write_text(yaml.safe_dump(crd))
    work = tmp_path / "tmp"
    work.mkdir()
    env = {**child_env(), "TMPDIR": str(work), crdfiles.ENV_DELEGATE_CRDS: str(folder)}
    done = _demo(env)
    assert done.returncode == 1, done.stdout + done.stderr
    assert re.search(
        r"installing CRD sparkapplications\.sparkoperator\.k8s\.io failed \(422\)", done.stderr
    ), done.stderr[-2000:]
    assert "applied" not in done.stdout and "operator:" not in done.stdout
    assert not os.listdir(work), f"left behind: {os.listdir(work)}"


def test_demo_refuses_a_crd_folder_that_is_not_there(tmp_path: Path) -> None:
    env = {**child_env(), crdfiles.ENV_DELEGATE_CRDS: str(tmp_path / "absent")}
    done = _demo(env)
    assert done.returncode == 1
    assert "is not a directory; unset it" in done.stderr
