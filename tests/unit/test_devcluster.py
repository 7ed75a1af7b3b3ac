"""Pure helpers of the embedded control plane: cache key, build commands, args, kubeconfig."""

from __future__ import annotations

import base64
import os
import socket
from pathlib import Path

import pytest
import yaml

from federator.devcluster import (
    build,
    components,
    crdfiles,
    credentials,
    kwok,
    launcher,
    probes,
    processes,
)
from federator.devcluster.components import Layout
from federator.devcluster.credentials import Identity

REPO = Path(__file__).resolve().parents[2]
RECIPE = REPO / "hack" / "controlplane"


def layout(tmp_path: Path) -> Layout:
    return Layout(tmp_path, 2379, 2380, 6443, 10247)


# ------------------------------------------------------------------ cache key and recipe


def test_recipe_hash_is_stable_and_order_independent() -> None:
    a = build.recipe_hash({"go.mod": b"x", "go.sum": b"y"})
    b = build.recipe_hash({"go.sum": b"y", "go.mod": b"x"})
    assert a == b
    assert len(a) == 16


@pytest.mark.parametrize(
    "other",
    [
        {"go.mod": b"x2", "go.sum": b"y"},
        {"go.mod": b"x", "go.sum": b"y", "tools.txt": b""},
        {"go.mod": b"xy", "go.sum": b""},  # bytes moved between files must change the key
    ],
    ids=["content", "new-file", "boundary"],
)
def test_recipe_hash_changes_with_the_recipe(other: dict[str, bytes]) -> None:
    assert build.recipe_hash({"go.mod": b"x", "go.sum": b"y"}) != build.recipe_hash(other)


def test_bin_dir_is_outside_the_repo_and_keyed_by_recipe(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FEDERATOR_CONTROLPLANE_BIN", raising=False)
    recipe = tmp_path / "recipe"
    recipe.mkdir()
    for name in build.RECIPE_FILES:
        (recipe / name).write_text(name)
    first = build.bin_dir(recipe, tmp_path / "cache")
    assert first.parent.parent == tmp_path / "cache" / "controlplane"
    assert first.name == "bin"
    (recipe / "go.sum").write_text("changed")
    assert build.bin_dir(recipe, tmp_path / "cache") != first


def test_cache_root_honours_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FEDERATOR_CACHE", str(tmp_path))
    assert build.cache_root() == tmp_path


def test_missing_recipe_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(build.BuildError, match="recipe file missing"):
        build.read_recipe(tmp_path)


def test_parse_tools_skips_comments_and_rejects_garbage() -> None:
    text = "# c\nhelm helm.sh/helm/v3/cmd/helm@v3.22.0  # pinned\n\n"
    assert build.parse_tools(text) == {"helm": "helm.sh/helm/v3/cmd/helm@v3.22.0"}
    with pytest.raises(build.BuildError, match=r"tools\.txt:1"):
        build.parse_tools("helm helm.sh/helm/v3/cmd/helm\n")


def test_module_version_reads_go_mod() -> None:
    go_mod = "module x\n\nrequire (\n\tk8s.io/kubernetes v1.35.4 // indirect\n)\n"
    assert build.module_version(go_mod, "k8s.io/kubernetes") == "v1.35.4"
    assert build.module_version("require k8s.io/kubernetes v1.2.3\n", "k8s.io/kubernetes") == (
        "v1.2.3"
    )
    with pytest.raises(build.BuildError):
        build.module_version(go_mod, "go.etcd.io/etcd/server/v3")


def test_version_ldflags_set_both_version_packages() -> None:
    flags = build.version_ldflags("v1.35.4")
    for pkg in build.VERSION_PACKAGES:
        assert f"-X {pkg}.gitVersion=v1.35.4" in flags
        assert f"-X {pkg}.gitMajor=1" in flags
        assert f"-X {pkg}.gitMinor=35" in flags
        assert f"-X {pkg}.gitTreeState=clean" in flags
    with pytest.raises(build.BuildError):
        build.version_ldflags("1.35")


def test_committed_recipe_pins_kubernetes_and_replaces_staging() -> None:
    go_mod = (RECIPE / "go.mod").read_text()
    version = build.module_version(go_mod, "k8s.io/kubernetes")
    staging = "v0." + version.removeprefix("v1.")
    for module in ("k8s.io/api", "k8s.io/apiserver", "k8s.io/client-go", "k8s.io/component-base"):
        assert f"replace {module} => {module} {staging}" in go_mod
    assert (RECIPE / "go.sum").stat().st_size > 0


def test_build_steps_cover_every_binary(tmp_path: Path) -> None:
    steps = build.build_steps(RECIPE, tmp_path, {"PATH": "/usr/bin"}, jobs=2)
    names = [s.name for s in steps]
    assert names == build.all_binaries(RECIPE)
    assert {"kube-apiserver", "etcd", "kubectl", "kwok", "helm", "kubeconform"} <= set(names)
    by_name = {s.name: s for s in steps}
    api = by_name["kube-apiserver"]
    assert api.argv[:2] == ("go", "build")
    assert api.argv[-1] == "k8s.io/kubernetes/cmd/kube-apiserver"
    assert str(tmp_path / "kube-apiserver") in api.argv
    assert api.env["CGO_ENABLED"] == "0"
    assert "-mod=readonly" in api.env["GOFLAGS"]
    assert "-p=2" in api.env["GOFLAGS"]
    assert by_name["etcd"].argv[-1] == build.ETCD_PACKAGE
    kwok = by_name["kwok"]
    assert kwok.argv[:2] == ("go", "install")
    assert kwok.env["GOBIN"] == str(tmp_path)
    assert "-mod=readonly" not in kwok.env["GOFLAGS"]


def test_module_of_tool_spec() -> None:
    assert build.module_of("sigs.k8s.io/kwok/cmd/kwok@v0.8.0") == "sigs.k8s.io/kwok@v0.8.0"
    assert build.module_of("helm.sh/helm/v3/cmd/helm@v3.22.0") == "helm.sh/helm/v3@v3.22.0"


def test_missing_binaries(tmp_path: Path) -> None:
    exe = tmp_path / "etcd"
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    (tmp_path / "kubectl").write_text("not executable")
    assert build.missing_binaries(tmp_path, ["etcd", "kubectl", "helm"]) == ["kubectl", "helm"]


def test_ensure_binaries_without_build_fails_loudly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FEDERATOR_CONTROLPLANE_BIN", raising=False)
    monkeypatch.setenv("FEDERATOR_CACHE", str(tmp_path))
    with pytest.raises(build.BuildError, match="binaries missing"):
        build.ensure_binaries(build=False)


def test_build_main_check_exit_code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FEDERATOR_CONTROLPLANE_BIN", raising=False)
    monkeypatch.setenv("FEDERATOR_CACHE", str(tmp_path))
    assert build.main(["--check"]) == 1
    assert build.main(["--print-bin-dir"]) == 0


# ------------------------------------------------------------------ launcher helpers


def test_free_ports_are_distinct_and_bindable() -> None:
    ports = processes.free_ports(5)
    assert len(set(ports)) == 5
    for port in ports:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))


def test_token_auth_csv() -> None:
    text = credentials.token_auth_csv(
        [
            Identity("admin", "t1", ("system:masters",)),
            Identity("u", "t2", ("a", "b")),
            Identity("n", "t3"),
        ]
    )
    assert text.splitlines() == ['t1,admin,admin,"system:masters"', 't2,u,u,"a,b"', "t3,n,n"]


def test_kubeconfig_text_round_trips() -> None:
    text = credentials.kubeconfig_text("https://127.0.0.1:6443", b"PEM", "alice", "tok")
    doc = yaml.safe_load(text)
    cluster = doc["clusters"][0]["cluster"]
    assert cluster["server"] == "https://127.0.0.1:6443"
    assert base64.b64decode(cluster["certificate-authority-data"]) == b"PEM"
    assert doc["users"] == [{"name": "alice", "user": {"token": "tok"}}]
    context = next(c for c in doc["contexts"] if c["name"] == doc["current-context"])
    assert context["context"] == {"cluster": doc["clusters"][0]["name"], "user": "alice"}


def test_etcd_args_loopback_and_no_fsync(tmp_path: Path) -> None:
    args = components.etcd_args(layout(tmp_path))
    assert "--unsafe-no-fsync=true" in args
    assert "--listen-client-urls=http://127.0.0.1:2379" in args
    assert "--initial-cluster=default=http://127.0.0.1:2380" in args
    assert f"--data-dir={tmp_path / 'etcd'}" in args


def test_apiserver_args(tmp_path: Path) -> None:
    lay = layout(tmp_path)
    args = components.apiserver_args(lay, ["--v=2"])
    assert "--authorization-mode=RBAC" in args
    assert "--bind-address=127.0.0.1" in args
    assert "--secure-port=6443" in args
    assert "--etcd-servers=http://127.0.0.1:2379" in args
    assert f"--token-auth-file={lay.token_file}" in args
    assert f"--service-account-signing-key-file={lay.sa_key}" in args
    assert "--service-account-issuer=https://127.0.0.1:6443" in args
    assert f"--cert-dir={lay.cert_dir}" in args
    assert args[-1] == "--v=2"


def test_controller_manager_args(tmp_path: Path) -> None:
    args = components.controller_manager_args(layout(tmp_path))
    controllers = next(a for a in args if a.startswith("--controllers=")).split("=", 1)[1]
    for name in ("garbage-collector", "namespace", "deployment", "replicaset", "serviceaccount"):
        assert f"{name}-controller" in controllers.split(",")
    assert "serviceaccount-token-controller" in controllers.split(",")
    assert "--leader-elect=false" in args
    assert "--secure-port=0" in args


def test_kwok_args_only_manage_annotated_nodes(tmp_path: Path) -> None:
    args = components.kwok_args(layout(tmp_path), tmp_path / "stages.yaml")
    assert f"--config={tmp_path / 'stages.yaml'}" in args
    assert "--manage-all-nodes=false" in args
    assert f"--manage-nodes-with-annotation-selector={kwok.KWOK_NODE_ANNOTATION}=fake" in args
    node = kwok.fake_node()
    assert node["metadata"]["annotations"][kwok.KWOK_NODE_ANNOTATION] == "fake"
    assert "taints" not in node["spec"]
    # Room for a whole integration session's pods (the kubelet's default 110 was not).
    assert int(node["status"]["allocatable"]["pods"]) >= 1000


def test_log_tail(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    log.write_text("".join(f"line {i}\n" for i in range(100)))
    assert processes.log_tail(log, 3) == "line 97\nline 98\nline 99"
    assert processes.log_tail(tmp_path / "absent.log") == ""


def test_crd_documents_reads_files_dirs_and_lists(tmp_path: Path) -> None:
    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition"}
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.yaml").write_text(
        yaml.safe_dump_all([{**crd, "metadata": {"name": "a"}}, {"kind": "ConfigMap"}])
    )
    (tmp_path / "sub" / "b.yml").write_text(
        yaml.safe_dump({"kind": "List", "items": [{**crd, "metadata": {"name": "b"}}]})
    )
    (tmp_path / "notes.txt").write_text("ignored")
    names = [d["metadata"]["name"] for d in launcher.crd_documents([tmp_path])]
    assert names == ["a", "b"]
    with pytest.raises(launcher.ControlPlaneError, match="does not exist"):
        launcher.crd_documents([tmp_path / "nope"])


def test_reap_stale_workdirs_removes_only_dead_owners(tmp_path: Path) -> None:
    dead = tmp_path / f"{processes.WORKDIR_PREFIX}dead"
    live = tmp_path / f"{processes.WORKDIR_PREFIX}live"
    other = tmp_path / f"{processes.WORKDIR_PREFIX}noowner"
    for path in (dead, live, other):
        path.mkdir()
    (dead / "owner.pid").write_text("999999999\n")
    (live / "owner.pid").write_text(f"{os.getpid()}\n")
    assert processes.reap_stale_workdirs(tmp_path) == [dead]
    assert live.exists()
    assert other.exists()


def test_control_plane_refuses_to_start_without_binaries(tmp_path: Path) -> None:
    plane = launcher.ControlPlane(tmp_path)
    with pytest.raises(launcher.ControlPlaneError, match="binaries missing"):
        plane.start()


def test_crd_list_path_prefers_the_storage_version() -> None:
    crd = {
        "spec": {
            "group": "kafka.strimzi.io",
            "names": {"plural": "kafkatopics"},
            "versions": [
                {"name": "v1", "served": True, "storage": False},
                {"name": "v1beta2", "served": True, "storage": True},
            ],
        }
    }
    assert probes.crd_list_path(crd) == "/apis/kafka.strimzi.io/v1beta2/kafkatopics"


def test_pid_alive_treats_an_unreaped_zombie_as_dead() -> None:
    import subprocess
    import time

    from federator.cli import cluster_cmd

    proc = subprocess.Popen(["true"])
    deadline = time.monotonic() + 10
    while processes.pid_alive(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not processes.pid_alive(proc.pid)  # exited but not yet reaped by us
    assert not cluster_cmd.pid_alive(proc.pid)
    proc.wait()
    assert processes.pid_alive(os.getpid())
    assert cluster_cmd.pid_alive(os.getpid())


# ---------------------------------------------------------------- which CRD definition wins


def _crd(name: str, *versions: tuple[str, bool], marker: str = "") -> dict[str, object]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": name, "annotations": {"marker": marker}},
        "spec": {"versions": [{"name": v, "served": True, "storage": s} for v, s in versions]},
    }


@pytest.mark.parametrize(
    ("newer", "older"),
    [
        ("v1", "v1beta2"),
        ("v2", "v1"),
        ("v1beta2", "v1beta1"),
        ("v1beta1", "v1alpha3"),
        ("v1alpha2", "v1alpha1"),
        ("v2beta1", "v1beta3"),
        ("v1alpha1", "custom"),
    ],
)
def test_version_priority_follows_kubernetes_order(newer: str, older: str) -> None:
    assert crdfiles.version_priority(newer) > crdfiles.version_priority(older)


@pytest.mark.parametrize("order", ["current-first", "legacy-first"])
def test_the_current_definition_wins_whatever_the_file_order(order: str) -> None:
    current = _crd("topics.example.com", ("v1", True), marker="current")
    legacy = _crd("topics.example.com", ("v1", False), ("v1beta2", True), marker="legacy")
    other = _crd("other.example.com", ("v1", True))
    found = [(Path("a.yaml"), current), (Path("b.yaml"), legacy), (Path("c.yaml"), other)]
    if order == "legacy-first":
        found = [found[1], found[0], found[2]]
    chosen = crdfiles.current_crds(found)
    assert [c["metadata"]["name"] for c in chosen] == ["topics.example.com", "other.example.com"]
    assert chosen[0]["metadata"]["annotations"]["marker"] == "current"


def test_two_different_definitions_of_one_storage_version_are_refused() -> None:
    one = _crd("topics.example.com", ("v1", True), marker="one")
    two = _crd("topics.example.com", ("v1", True), marker="two")
    same = _crd("topics.example.com", ("v1", True), marker="one")
    assert crdfiles.current_crds([(Path("a.yaml"), one), (Path("b.yaml"), same)]) == [one]
    with pytest.raises(
        crdfiles.CRDFileError, match=r"defined twice .* v1: in a.yaml and in b.yaml"
    ):
        crdfiles.current_crds([(Path("a.yaml"), one), (Path("b.yaml"), two)])


def test_crd_documents_keeps_the_current_strimzi_crd_of_the_vendored_pair() -> None:
    files = crdfiles.delegate_crd_files()
    strimzi = [f for f in files if f.name.startswith("strimzi-kafkatopic")]
    assert len(strimzi) == 2
    (topic,) = [
        d for d in launcher.crd_documents(strimzi) if d["spec"]["names"]["kind"] == "KafkaTopic"
    ]
    assert [v["name"] for v in topic["spec"]["versions"]] == ["v1"]


def test_delegate_crds_dir_honours_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(crdfiles.ENV_DELEGATE_CRDS, raising=False)
    assert (crdfiles.delegate_crds_dir() / "strimzi-kafkatopic.crd.yaml").is_file()
    monkeypatch.setenv(crdfiles.ENV_DELEGATE_CRDS, str(tmp_path))
    assert crdfiles.delegate_crds_dir() == tmp_path
    with pytest.raises(crdfiles.CRDFileError, match=r"no \*\.crd\.yaml file in"):
        crdfiles.delegate_crd_files()
    monkeypatch.setenv(crdfiles.ENV_DELEGATE_CRDS, str(tmp_path / "absent"))
    with pytest.raises(crdfiles.CRDFileError, match="is not a directory; unset it"):
        crdfiles.delegate_crds_dir()


# ---------------------------------------------------------------- named control planes


@pytest.mark.parametrize("name", ["default", "a", "test-2", "x" * 40])
def test_plane_names_that_name_a_folder(name: str) -> None:
    from federator.cli import cluster_cmd

    assert cluster_cmd.plane_name(name) == name


@pytest.mark.parametrize("name", ["", "A", "-a", "a-", "../x", "a/b", "x" * 41, "a b"])
def test_plane_names_that_do_not(name: str) -> None:
    import argparse

    from federator.cli import cluster_cmd

    with pytest.raises(argparse.ArgumentTypeError, match="lowercase letters"):
        cluster_cmd.plane_name(name)


def test_each_plane_has_its_own_state_and_up_refuses_only_its_own_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from federator.cli import cluster_cmd
    from federator.cli.main import main

    monkeypatch.setenv("FEDERATOR_CACHE", str(tmp_path))
    assert cluster_cmd.state_file("a") != cluster_cmd.state_file("b")
    running = cluster_cmd.state_file("a")
    running.parent.mkdir(parents=True)
    running.write_text(json.dumps({"pid": os.getpid(), "kubeconfig": "/k", "server": "s"}))
    assert main(["cluster", "up", "--name", "a", "--no-build"]) == 1
    assert "control plane 'a' is already running" in capsys.readouterr().err
    # Another name is not refused for that reason (here: no binaries, and --no-build).
    monkeypatch.setenv("FEDERATOR_CONTROLPLANE_BIN", str(tmp_path / "nobin"))
    assert main(["cluster", "up", "--name", "b", "--no-build"]) == 1
    assert "already running" not in capsys.readouterr().err
    assert main(["cluster", "list"]) == 0
    assert "a                pid" in capsys.readouterr().out


def test_up_refuses_an_ambiguous_crd_folder_before_starting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from federator.cli.main import main

    monkeypatch.setenv("FEDERATOR_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("FEDERATOR_CONTROLPLANE_BIN", str(tmp_path / "nobin"))
    for marker in ("one", "two"):
        (tmp_path / f"{marker}.yaml").write_text(
            yaml.safe_dump(_crd("topics.example.com", ("v1", True), marker=marker))
        )
    assert main(["cluster", "up", "--no-build", "--crds", str(tmp_path)]) == 1
    assert "defined twice" in capsys.readouterr().err
