"""The launcher leaves nothing behind: exception, start failure, SIGTERM, Ctrl-C, SIGKILL, CLI.

Each test starts its own control plane (a few seconds each) in a private temp parent, so that
"no leftover directory" and "no orphan process" are checked exactly.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from federator.devcluster import crdfiles
from federator.devcluster.launcher import ControlPlane, ControlPlaneError
from federator.devcluster.processes import WORKDIR_PREFIX

REPO = Path(__file__).resolve().parents[2]

# SIGHUP and SIGINT back to their defaults first, as a terminal starts a program: under `nohup`
# or as a background job (a CI runner may start the suite so) they are inherited ignored, and the
# launcher rightly leaves an ignored signal ignored.
CHILD = """
import json, signal, sys, time
signal.signal(signal.SIGHUP, signal.SIG_DFL)
signal.signal(signal.SIGINT, signal.default_int_handler)
from pathlib import Path
from federator.devcluster.launcher import ControlPlane
plane = ControlPlane(Path(sys.argv[1]), workdir_parent=Path(sys.argv[2]))
with plane:
    print(json.dumps({"pids": plane.pids, "workdir": str(plane.workdir)}), flush=True)
    while True:
        time.sleep(0.2)
"""


def alive(pid: int) -> bool:
    """True for a live process; a zombie (reparented, not yet reaped) counts as dead."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def wait_until(check: Callable[[], bool], timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return check()


def child_env() -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p
        ),
    }


def start_child(bin_dir: Path, parent: Path) -> tuple[subprocess.Popen[str], dict[str, int], Path]:
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(bin_dir), str(parent)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=child_env(),
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        proc.wait(timeout=30)
        pytest.fail(
            f"child control plane did not start: {proc.stderr.read() if proc.stderr else ''}"
        )
    info = json.loads(line)
    pids = {k: int(v) for k, v in info["pids"].items()}
    assert set(pids) == {
        "etcd",
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
        "kwok",
    }
    assert all(alive(p) for p in pids.values())
    return proc, pids, Path(info["workdir"])


def assert_clean(pids: dict[str, int], workdir: Path) -> None:
    assert wait_until(lambda: not any(alive(p) for p in pids.values())), {
        n: p for n, p in pids.items() if alive(p)
    }
    assert not workdir.exists()


@pytest.mark.parametrize(
    ("sig", "expected_rc"),
    [
        (signal.SIGTERM, -signal.SIGTERM),
        (signal.SIGINT, -signal.SIGINT),
        (signal.SIGHUP, -signal.SIGHUP),
    ],
    ids=["sigterm", "ctrl-c", "sighup"],
)
def test_signal_stops_everything(bin_dir: Path, tmp_path: Path, sig: int, expected_rc: int) -> None:
    proc, pids, workdir = start_child(bin_dir, tmp_path)
    proc.send_signal(sig)
    rc = proc.wait(timeout=60)
    # Ctrl-C: KeyboardInterrupt unwinds the `with`; Python then dies by SIGINT itself.
    assert rc == expected_rc
    assert_clean(pids, workdir)
    assert list(tmp_path.glob(f"{WORKDIR_PREFIX}*")) == []


def test_sigkill_of_the_owner_takes_components_down(bin_dir: Path, tmp_path: Path) -> None:
    proc, pids, workdir = start_child(bin_dir, tmp_path)
    proc.kill()
    proc.wait(timeout=30)
    # PR_SET_PDEATHSIG: the kernel kills the components; the next start reaps the directory.
    assert wait_until(lambda: not any(alive(p) for p in pids.values()))
    assert workdir.exists()
    with ControlPlane(bin_dir, workdir_parent=tmp_path, components=("etcd", "kube-apiserver")):
        assert not workdir.exists()


def test_exception_inside_the_context_stops_everything(bin_dir: Path, tmp_path: Path) -> None:
    plane = ControlPlane(bin_dir, workdir_parent=tmp_path)
    with pytest.raises(RuntimeError, match="boom"), plane:
        pids = plane.pids
        workdir = plane.workdir
        raise RuntimeError("boom")
    assert_clean(pids, workdir)
    assert not plane.running


def test_start_failure_reports_the_log_tail_and_cleans_up(bin_dir: Path, tmp_path: Path) -> None:
    plane = ControlPlane(
        bin_dir,
        workdir_parent=tmp_path,
        extra_apiserver_args=["--no-such-flag=1"],
        start_timeout=60,
    )
    with pytest.raises(ControlPlaneError) as info:
        plane.start()
    message = str(info.value)
    assert "kube-apiserver exited" in message
    assert "unknown flag: --no-such-flag" in message
    assert list(tmp_path.glob(f"{WORKDIR_PREFIX}*")) == []


def test_readiness_deadline_names_the_component(bin_dir: Path, tmp_path: Path) -> None:
    # etcd never becomes healthy within a near-zero deadline: the error says what it waited for.
    plane = ControlPlane(bin_dir, workdir_parent=tmp_path, start_timeout=0.001)
    with pytest.raises(ControlPlaneError, match=r"timed out .* waiting for (etcd|kube-apiserver)"):
        plane.start()
    assert list(tmp_path.glob(f"{WORKDIR_PREFIX}*")) == []


def test_install_crds_from_a_directory(bin_dir: Path, tmp_path: Path) -> None:
    crds = tmp_path / "crds"
    crds.mkdir()
    (crds / "widget.yaml").write_text(
        json.dumps(
            {
                "apiVersion": "apiextensions.k8s.io/v1",
                "kind": "CustomResourceDefinition",
                "metadata": {"name": "widgets.example.com"},
                "spec": {
                    "group": "example.com",
                    "scope": "Namespaced",
                    "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
                    "versions": [
                        {
                            "name": "v1",
                            "served": True,
                            "storage": True,
                            "schema": {"openAPIV3Schema": {"type": "object"}},
                        }
                    ],
                },
            }
        )
    )
    with ControlPlane(
        bin_dir, workdir_parent=tmp_path, components=("etcd", "kube-apiserver")
    ) as plane:
        assert plane.install_crds(crds) == ["widgets.example.com"]
        # Re-installing (replace) is idempotent.
        assert plane.install_crds(crds / "widget.yaml") == ["widgets.example.com"]
        status, _ = plane.request("GET", "/apis/example.com/v1/namespaces/default/widgets")
        assert status == 200


def test_cli_up_status_down(bin_dir: Path, tmp_path: Path) -> None:
    env = {**child_env(), "FEDERATOR_CACHE": str(tmp_path / "cache"), "TMPDIR": str(tmp_path)}
    env["FEDERATOR_CONTROLPLANE_BIN"] = str(bin_dir)

    def federator(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "federator", "cluster", *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            check=False,
        )

    assert federator("status").returncode == 1
    up = subprocess.Popen(
        [sys.executable, "-m", "federator", "cluster", "up", "--no-build"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert up.stdout is not None
    lines = [up.stdout.readline() for _ in range(2)]
    export = next((line for line in lines if line.startswith("export KUBECONFIG=")), "")
    assert export, (lines, up.stderr.read() if up.poll() is not None and up.stderr else "")
    kubeconfig = Path(export.strip().split("=", 1)[1])
    assert kubeconfig.is_file()
    state = json.loads((tmp_path / "cache" / "cluster" / "default" / "state.json").read_text())
    pids = {k: int(v) for k, v in state["components"].items()}

    status = federator("status")
    assert status.returncode == 0, status.stdout + status.stderr
    assert "readyz:     ok" in status.stdout
    second = federator("up", "--no-build")
    assert second.returncode == 1
    assert "already running" in second.stderr

    down = federator("down")
    assert down.returncode == 0, down.stderr
    assert up.wait(timeout=60) == 0
    assert_clean(pids, kubeconfig.parent)
    assert not (tmp_path / "cache" / "cluster" / "default" / "state.json").exists()
    assert federator("status").returncode == 1


def test_two_named_control_planes_side_by_side(bin_dir: Path, tmp_path: Path) -> None:
    """`cluster up --name` twice: each has its own state, ports and CRDs; `status`, `list` and
    `down` address one. Plane `b` gets a folder holding both Strimzi KafkaTopic CRD files (the
    current one must win) and `a` the shipped set via --with-crds."""
    env = {**child_env(), "FEDERATOR_CACHE": str(tmp_path / "cache"), "TMPDIR": str(tmp_path)}
    env["FEDERATOR_CONTROLPLANE_BIN"] = str(bin_dir)
    env.pop("FEDERATOR_DELEGATE_CRDS", None)
    strimzi = tmp_path / "strimzi"
    strimzi.mkdir()
    for crd in crdfiles.delegate_crds_dir().glob("strimzi-kafkatopic*.crd.yaml"):
        (strimzi / crd.name).write_bytes(crd.read_bytes())
    assert len(list(strimzi.iterdir())) == 2

    def federator(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "federator", "cluster", *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            check=False,
        )

    def start(*args: str) -> tuple[subprocess.Popen[str], Path]:
        proc = subprocess.Popen(
            [sys.executable, "-m", "federator", "cluster", "up", "--no-build", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(2)]
        export = next((line for line in lines if line.startswith("export KUBECONFIG=")), "")
        assert export, (
            lines,
            proc.stderr.read() if proc.poll() is not None and proc.stderr else "",
        )
        return proc, Path(export.strip().split("=", 1)[1])

    up_a, kubeconfig_a = start("--name", "a", "--with-crds")
    try:
        up_b, kubeconfig_b = start("--name", "b", "--crds", str(strimzi))
    except BaseException:
        federator("down", "--name", "a")
        raise
    try:
        assert kubeconfig_a != kubeconfig_b
        states = {
            n: json.loads((tmp_path / "cache" / "cluster" / n / "state.json").read_text())
            for n in ("a", "b")
        }
        assert states["a"]["server"] != states["b"]["server"]
        for name in ("a", "b"):
            status = federator("status", "--name", name)
            assert status.returncode == 0, status.stdout + status.stderr
            assert states[name]["server"] in status.stdout
        listing = federator("list").stdout
        assert re.search(r"^a\s+pid \d+\s+running", listing, re.M), listing
        assert re.search(r"^b\s+pid \d+\s+running", listing, re.M), listing
        assert federator("status").returncode == 1, "no plane is named 'default'"

        def served(kubeconfig: Path, resource: str) -> str:
            out = subprocess.run(
                [
                    str(bin_dir / "kubectl"),
                    "--kubeconfig",
                    str(kubeconfig),
                    "get",
                    resource,
                    "-o",
                    "jsonpath={.spec.versions[*].name}",
                ],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            return out.stdout if out.returncode == 0 else f"ERROR {out.stderr}"

        topic_crd = "crd/kafkatopics.kafka.strimzi.io"
        assert served(kubeconfig_b, topic_crd) == "v1"  # the current file won over 0.51.0
        assert served(kubeconfig_a, topic_crd) == "v1"
        assert served(kubeconfig_a, "crd/sparkapplications.sparkoperator.k8s.io") == "v1beta2"
        assert served(kubeconfig_a, "crd/applications.federator.io") == "v1alpha1"
        assert served(kubeconfig_b, "crd/sparkapplications.sparkoperator.k8s.io").startswith(
            "ERROR"
        )
    finally:
        down_a, down_b = federator("down", "--name", "a"), federator("down", "--name", "b")
    assert down_a.returncode == 0 and down_b.returncode == 0, down_a.stderr + down_b.stderr
    assert up_a.wait(timeout=60) == 0 and up_b.wait(timeout=60) == 0
    assert not list((tmp_path / "cache" / "cluster").glob("*/state.json"))
