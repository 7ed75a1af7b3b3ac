"""Build and run the real Apache Flink Kubernetes Operator 1.7.0 against the embedded control plane.

Why: federator's FlinkDeployment health adapter must read what the real operator writes, not what
the delegate simulator imitates. 1.7.0 is the newest release on Maven Central (1.6.x and 1.8.0+
are not published there), so that is the version the tests prove.

The build (`RECIPE`, run by `python -m federator.devcluster.delegates build flink`) assembles,
from Maven Central only: `lib/` (the operator and its runtime jars, Flink 1.17.1 among them),
`classes/` (`hack/delegates/flink/MiniClusterJob.java` compiled against those jars: the JobManager
stand-in of `federator.devcluster.flink_minicluster`), `crds/` (the operator's OWN CRDs, taken
from `flink-kubernetes-operator-api-1.7.0.jar`'s `META-INF/fabric8/*-v1.yml`, so the tests install
the definitions this operator really has, not the vendored ones from the operator's main branch)
and `conf/log4j2.properties`.

`FlinkOperatorProcess` runs it out of cluster (KUBECONFIG) in its own process group, with a
generated conf dir: watched namespaces = the test's, leader election and the health probe off.
Under kwok no JobManager container runs; the operator reaches a JobManager at
`<deployment>-rest.<namespace>:<rest.port>`, which a JVM hosts file (`-Djdk.net.hosts.file`,
nothing changed on the machine) resolves to loopback, where the stand-in's MiniCluster listens.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from federator.devcluster import delegates
from federator.devcluster.harness import stop_group
from federator.devcluster.launcher import ControlPlane

OPERATOR_VERSION = "1.7.0"
FLINK_VERSION = "1.17.1"  # the Flink runtime operator 1.7.0 depends on (and the MiniCluster runs)
RECIPE_FILES: tuple[str, ...] = ("pom.xml", "MiniClusterJob.java", "log4j2.properties")
API_JAR = f"flink-kubernetes-operator-api-{OPERATOR_VERSION}.jar"
# apiextensions.k8s.io/v1 CRDs in the API jar (the "-v1beta1.yml" ones are the old CRD API).
CRD_ENTRIES: dict[str, str] = {
    "META-INF/fabric8/flinkdeployments.flink.apache.org-v1.yml": "flinkdeployments.yaml",
    "META-INF/fabric8/flinksessionjobs.flink.apache.org-v1.yml": "flinksessionjobs.yaml",
}
MAIN_CLASS = "org.apache.flink.kubernetes.operator.FlinkOperator"
READY_LINE = "'flinkdeploymentcontroller' controller started"
STOP_GRACE_SECONDS = 10.0
HEAP = "384m"
# The JDK modules Flink reflects into on Java 17 (what Flink's own scripts open).
ADD_OPENS: tuple[str, ...] = (
    "java.base/java.lang",
    "java.base/java.lang.invoke",
    "java.base/java.lang.reflect",
    "java.base/java.io",
    "java.base/java.math",
    "java.base/java.net",
    "java.base/java.nio",
    "java.base/java.text",
    "java.base/java.time",
    "java.base/java.util",
    "java.base/java.util.concurrent",
    "java.base/sun.nio.ch",
)


@dataclass(frozen=True)
class FlinkOperatorBuild:
    """Where one built Flink operator lives (see the module doc for the layout)."""

    root: Path

    @property
    def lib(self) -> Path:
        return self.root / "lib"

    @property
    def classes(self) -> Path:
        return self.root / "classes"

    @property
    def crds_dir(self) -> Path:
        return self.root / "crds"

    @property
    def log4j(self) -> Path:
        return self.root / "conf" / "log4j2.properties"

    @property
    def classpath(self) -> str:
        return f"{self.lib}/*"


def javac_argv(lib: Path, source: Path, classes: Path) -> tuple[str, ...]:
    """Compile the MiniCluster job against the operator's own Flink jars."""
    return ("javac", "-nowarn", "-cp", f"{lib}/*", "-d", str(classes), str(source))


def extract_crds(api_jar: Path, crds: Path) -> list[Path]:
    """Copy the operator's own CRDs out of its API jar; a jar without them is a build error."""
    crds.mkdir(parents=True, exist_ok=True)
    out: list[Path] = []
    with zipfile.ZipFile(api_jar) as jar:
        present = set(jar.namelist())
        for entry, name in CRD_ENTRIES.items():
            if entry not in present:
                raise delegates.DelegateBuildError(f"{api_jar.name} has no {entry}")
            (crds / name).write_bytes(jar.read(entry))
            out.append(crds / name)
    return out


def _assemble(scratch: Path, directory: Path, log_path: Path, out: TextIO) -> Mapping[str, object]:
    """lib/, classes/, crds/ and conf/ into `scratch`."""
    print(
        f"[1/3] flink-kubernetes-operator {OPERATOR_VERSION} jars from Maven Central",
        file=out,
        flush=True,
    )
    lib = scratch / "lib"
    jars = delegates.maven_jars(
        "fetching Flink operator jars",
        directory / "pom.xml",
        lib,
        scratch=scratch,
        log_path=log_path,
        out=out,
    )
    print(f"      {jars} jars", file=out, flush=True)
    print("[2/3] javac MiniClusterJob.java", file=out, flush=True)
    classes = scratch / "classes"
    classes.mkdir()
    argv = javac_argv(lib, directory / "MiniClusterJob.java", classes)
    delegates.run_step("compiling MiniClusterJob", argv, scratch, log_path, out)
    print(f"[3/3] the operator's own CRDs from {API_JAR}", file=out, flush=True)
    if not (lib / API_JAR).is_file():
        raise delegates.DelegateBuildError(f"{API_JAR} is not among the fetched jars in {lib}")
    crds = extract_crds(lib / API_JAR, scratch / "crds")
    (scratch / "conf").mkdir()
    shutil.copyfile(directory / "log4j2.properties", scratch / "conf" / "log4j2.properties")
    return {"flink": FLINK_VERSION, "jars": jars, "crds": [p.name for p in crds]}


RECIPE = delegates.Recipe(
    name="flink",
    product="flink-kubernetes-operator",
    version=OPERATOR_VERSION,
    files=RECIPE_FILES,
    tools=("mvn", "javac", "java"),
    assemble=_assemble,
)


def ensure_flink_operator(
    *, build_missing: bool = True, out: TextIO | None = None
) -> FlinkOperatorBuild:
    """The built operator, building it if missing (build_missing=False: raise instead)."""
    return FlinkOperatorBuild(delegates.ensure(RECIPE, build_missing=build_missing, out=out))


# ---- running it ---------------------------------------------------------------------------------


def rest_host(namespace: str, name: str) -> str:
    """The host the operator dials for a FlinkDeployment's JobManager REST API."""
    return f"{name}-rest.{namespace}"


def hosts_file_text(rest_hosts: Sequence[str], hostname: str) -> str:
    """A JVM hosts file: the JobManager REST hosts and this machine on loopback. With
    `-Djdk.net.hosts.file` the JVM resolves names from this file ONLY, so it also names localhost
    and the machine (the API server is dialled by IP, from the kubeconfig)."""
    names = dict.fromkeys(["localhost", hostname, *rest_hosts])
    return "".join(f"127.0.0.1 {name}\n" for name in names if name)


def operator_conf(namespaces: Sequence[str]) -> str:
    """The operator's flink-conf.yaml: the test namespaces, nothing listening, quick observing."""
    if not namespaces:
        raise ValueError("the Flink operator needs at least one namespace to watch")
    return "".join(
        f"{key}: {value}\n"
        for key, value in (
            ("kubernetes.operator.watched.namespaces", ",".join(namespaces)),
            ("kubernetes.operator.leader-election.enabled", "false"),
            ("kubernetes.operator.health.probe.enabled", "false"),
            # Quicker than the defaults (60 s, 10 s, 10 s) so a test sees each transition soon;
            # still long enough to see DEPLOYED_NOT_READY between DEPLOYING and READY.
            ("kubernetes.operator.reconcile.interval", "10 s"),
            ("kubernetes.operator.observer.progress-check.interval", "3 s"),
            ("kubernetes.operator.observer.rest-ready.delay", "3 s"),
        )
    )


def java_options(built: FlinkOperatorBuild, hosts_file: Path | None = None) -> list[str]:
    """JVM options shared by the operator and the MiniCluster: small heap, quick start."""
    options = [f"-Xmx{HEAP}", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1"]
    options += [f"--add-opens={module}=ALL-UNNAMED" for module in ADD_OPENS]
    options.append(f"-Dlog4j.configurationFile={built.log4j}")
    if hosts_file is not None:
        options.append(f"-Djdk.net.hosts.file={hosts_file}")
    return options


def operator_argv(built: FlinkOperatorBuild, hosts_file: Path) -> list[str]:
    return ["java", *java_options(built, hosts_file), "-cp", built.classpath, MAIN_CLASS]


def operator_env(base: Mapping[str, str], conf_dir: Path, kubeconfig: Path) -> dict[str, str]:
    env = dict(base)
    env.update(FLINK_CONF_DIR=str(conf_dir), KUBECONFIG=str(kubeconfig))
    return env


class FlinkOperatorProcess:
    """The real Flink operator as a subprocess (own process group), with its log and conf dir.

    `rest_hosts` are the `<deployment>-rest.<namespace>` names the operator may dial (see
    `rest_host`); they resolve to loopback for its JVM only."""

    def __init__(
        self,
        built: FlinkOperatorBuild,
        plane: ControlPlane,
        namespaces: Sequence[str],
        workdir: Path,
        rest_hosts: Sequence[str] = (),
    ) -> None:
        self.built, self.plane, self.workdir = built, plane, workdir
        self.namespaces, self.rest_hosts = list(namespaces), list(rest_hosts)
        self.log = workdir / "flink-operator.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def _prepare(self) -> tuple[Path, Path]:
        conf_dir = self.workdir / "flink-operator-conf"
        conf_dir.mkdir(parents=True, exist_ok=True)
        (conf_dir / "flink-conf.yaml").write_text(operator_conf(self.namespaces))
        hosts = self.workdir / "flink-operator.hosts"
        hosts.write_text(hosts_file_text(self.rest_hosts, socket.gethostname()))
        return conf_dir, hosts

    def start(self, timeout: float = 120.0) -> None:
        """Start it and wait until its FlinkDeployment controller has started."""
        conf_dir, hosts = self._prepare()
        env = operator_env(os.environ, conf_dir, self.plane.kubeconfig)
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                operator_argv(self.built, hosts),
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=self.workdir,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while READY_LINE not in self.log.read_text(errors="replace"):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                tail = self.log.read_text(errors="replace")[-3000:]
                self.stop()
                raise RuntimeError(f"the Flink operator did not start its controller:\n{tail}")
            time.sleep(0.2)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        """SIGTERM its process group, SIGKILL after a grace."""
        if self.proc is None:
            return
        stop_group(self.proc, STOP_GRACE_SECONDS)
        self.proc = None
