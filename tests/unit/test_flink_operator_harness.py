"""The harness that builds and runs the real Flink operator and its MiniCluster, without either.

Aspects covered:
- the recipe: registered as `flink`, pinned to 1.7.0 in the pom, a cache key over its files, the
  operator's own CRDs taken from its API jar (a jar without them is a clear build error), the
  `python -m federator.devcluster.delegates` CLI finding it;
- the operator's generated conf (test namespaces, leader election and probe off), JVM argv and
  environment, and the hosts file that sends `<deployment>-rest.<namespace>` to loopback;
- the MiniCluster's argv and the REST port it takes from the FlinkDeployment (bad ones refused).
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from federator.devcluster import delegates, flink_minicluster, flink_operator

REPO = Path(__file__).resolve().parents[2]
BUILT = flink_operator.FlinkOperatorBuild(Path("/cache/flink"))


def test_the_recipe_is_registered_as_flink_and_pins_1_7_0() -> None:
    recipe = delegates.recipe("flink")
    assert recipe is flink_operator.RECIPE
    assert (recipe.name, recipe.product, recipe.version) == (
        "flink",
        "flink-kubernetes-operator",
        "1.7.0",
    )
    assert "flink" in delegates.names()
    pom = (REPO / "hack" / "delegates" / "flink" / "pom.xml").read_text()
    assert "<artifactId>flink-kubernetes-operator</artifactId><version>1.7.0</version>" in pom
    for name in recipe.files:
        assert (REPO / "hack" / "delegates" / "flink" / name).is_file()


def test_the_cache_directory_is_keyed_by_version_and_recipe(tmp_path: Path) -> None:
    recipe = flink_operator.RECIPE
    directory = tmp_path / "recipe"
    directory.mkdir()
    for name in recipe.files:
        (directory / name).write_text(name)
    first = delegates.cache_dir(recipe, root=tmp_path, directory=directory)
    assert first.parent == tmp_path / "delegates"
    assert first.name.startswith("flink-kubernetes-operator-1.7.0-")
    assert delegates.cache_dir(recipe, root=tmp_path, directory=directory) == first
    (directory / "MiniClusterJob.java").write_text("changed")
    assert delegates.cache_dir(recipe, root=tmp_path, directory=directory) != first


def test_the_cli_finds_the_flink_recipe(tmp_path: Path) -> None:
    """`python -m` runs the module as __main__; the recipe module's Recipe must still match."""
    env = {**os.environ, "FEDERATOR_CACHE": str(tmp_path), "PYTHONPATH": str(REPO)}
    argv = [sys.executable, "-m", "federator.devcluster.delegates", "build", "flink"]
    printed = subprocess.run(
        [*argv, "--print-dir"], env=env, capture_output=True, text=True, check=True
    )
    assert "flink-kubernetes-operator-1.7.0-" in printed.stdout
    checked = subprocess.run(
        [*argv, "--check"], env=env, capture_output=True, text=True, check=False
    )
    assert checked.returncode == 1
    assert "delegates build flink" in checked.stderr


def test_the_operators_own_crds_come_from_its_api_jar(tmp_path: Path) -> None:
    jar = tmp_path / flink_operator.API_JAR
    with zipfile.ZipFile(jar, "w") as out:
        for entry in flink_operator.CRD_ENTRIES:
            out.writestr(entry, f"# {entry}\n")
        out.writestr("META-INF/fabric8/flinkdeployments.flink.apache.org-v1beta1.yml", "old")
    written = flink_operator.extract_crds(jar, tmp_path / "crds")
    assert sorted(p.name for p in written) == ["flinkdeployments.yaml", "flinksessionjobs.yaml"]
    assert (tmp_path / "crds" / "flinkdeployments.yaml").read_text().endswith("-v1.yml\n")


def test_a_jar_without_the_crds_is_a_build_error(tmp_path: Path) -> None:
    jar = tmp_path / "api.jar"
    with zipfile.ZipFile(jar, "w") as out:
        out.writestr("META-INF/MANIFEST.MF", "")
    with pytest.raises(delegates.DelegateBuildError, match="flinkdeployments"):
        flink_operator.extract_crds(jar, tmp_path / "crds")


def test_javac_compiles_against_the_operators_jars(tmp_path: Path) -> None:
    argv = flink_operator.javac_argv(tmp_path / "lib", tmp_path / "A.java", tmp_path / "out")
    assert argv == (
        "javac",
        "-nowarn",
        "-cp",
        f"{tmp_path}/lib/*",
        "-d",
        str(tmp_path / "out"),
        str(tmp_path / "A.java"),
    )


def test_the_generated_conf_watches_the_test_namespaces_with_nothing_listening() -> None:
    conf = dict(
        line.split(": ", 1) for line in flink_operator.operator_conf(["a", "b"]).splitlines()
    )
    assert conf["kubernetes.operator.watched.namespaces"] == "a,b"
    assert conf["kubernetes.operator.leader-election.enabled"] == "false"
    assert conf["kubernetes.operator.health.probe.enabled"] == "false"
    with pytest.raises(ValueError, match="at least one namespace"):
        flink_operator.operator_conf([])


def test_the_hosts_file_sends_the_jobmanager_rest_hosts_to_loopback() -> None:
    host = flink_operator.rest_host("payments", "fraud-detection-scorer")
    assert host == "fraud-detection-scorer-rest.payments"
    text = flink_operator.hosts_file_text([host, host], "build-box")
    assert text.splitlines() == [
        "127.0.0.1 localhost",
        "127.0.0.1 build-box",
        "127.0.0.1 fraud-detection-scorer-rest.payments",
    ]


def test_the_operator_jvm_reads_the_hosts_file_conf_dir_and_kubeconfig(tmp_path: Path) -> None:
    argv = flink_operator.operator_argv(BUILT, tmp_path / "hosts")
    assert argv[0] == "java"
    assert argv[-3:] == ["-cp", "/cache/flink/lib/*", flink_operator.MAIN_CLASS]
    assert f"-Djdk.net.hosts.file={tmp_path / 'hosts'}" in argv
    assert "-Dlog4j.configurationFile=/cache/flink/conf/log4j2.properties" in argv
    assert "--add-opens=java.base/java.util=ALL-UNNAMED" in argv
    env = flink_operator.operator_env({"PATH": "/bin"}, tmp_path / "conf", tmp_path / "kc")
    assert env == {
        "PATH": "/bin",
        "FLINK_CONF_DIR": str(tmp_path / "conf"),
        "KUBECONFIG": str(tmp_path / "kc"),
    }


def test_the_minicluster_runs_the_compiled_job_under_the_operators_job_id(
    tmp_path: Path,
) -> None:
    argv = flink_minicluster.minicluster_argv(BUILT, 18081, "ab" * 16, "scorer", tmp_path / "f")
    cp = argv.index("-cp")
    assert argv[cp + 1] == "/cache/flink/classes:/cache/flink/lib/*"
    assert argv[cp + 2 :] == ["MiniClusterJob", "18081", "ab" * 16, "scorer", str(tmp_path / "f")]
    assert not any(a.startswith("-Djdk.net.hosts.file") for a in argv)


def test_the_rest_port_comes_from_the_flink_configuration() -> None:
    def deployment(config: object) -> dict[str, object]:
        return {"spec": {"flinkConfiguration": config}}

    assert flink_minicluster.rest_port({"spec": {}}) == 8081
    assert flink_minicluster.rest_port(deployment({"rest.port": "18081"})) == 18081
    with pytest.raises(flink_minicluster.StandInError, match="not a port number"):
        flink_minicluster.rest_port(deployment({"rest.port": "8081-8090"}))
    with pytest.raises(flink_minicluster.StandInError, match="out of range"):
        flink_minicluster.rest_port(deployment({"rest.port": 70000}))
