"""A real Apache Kafka broker (single-node KRaft) on loopback, for the delegate simulator's tests.

Why: no Strimzi topic operator can be built from the registries, so KafkaTopic statuses come from
federator's delegate simulator; in broker mode (`federator simulate --kafka-bootstrap`) it creates
and alters the topics on a REAL broker and writes the broker's answers into the statuses. This
module builds that broker once (Kafka's jars from Maven Central, `RECIPE`, cached by
`federator.devcluster.delegates`) and runs it: `KafkaBroker` formats a KRaft storage directory in a
temporary directory and starts `kafka.Kafka` as broker and controller on two free loopback ports,
in its own process group, with a small heap; ready when the broker logs "Kafka Server started".

Run: `python -m federator.devcluster.delegates build kafka [--check]`.
"""

from __future__ import annotations

import base64
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from federator.devcluster import delegates
from federator.devcluster.harness import free_port, stop_group

KAFKA_VERSION = "4.4.0"  # must match hack/delegates/kafka/pom.xml (checked by a unit test)
RECIPE_FILES: tuple[str, ...] = ("pom.xml", "log4j2.properties")
READY_LINE = "Kafka Server started"
STOP_GRACE_SECONDS = 20.0
# A small broker: the machines running the tests are shared (RSS is about 310 MB with these).
JVM_OPTIONS: tuple[str, ...] = (
    "-Xms128m",
    "-Xmx512m",
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",
    "-Djava.awt.headless=true",
)


@dataclass(frozen=True)
class KafkaBuild:
    """Where one built broker lives: libs/ (the jars) and config/log4j2.properties."""

    root: Path

    @property
    def libs(self) -> Path:
        return self.root / "libs"

    @property
    def log_config(self) -> Path:
        return self.root / "config" / "log4j2.properties"

    @property
    def complete(self) -> bool:
        return delegates.is_complete(self.root) and any(self.libs.glob("kafka_2.13-*.jar"))


def _assemble(scratch: Path, directory: Path, log_path: Path, out: TextIO) -> Mapping[str, object]:
    """libs/ (Kafka's runtime jars from Maven Central) and config/log4j2.properties."""
    print(f"[1/1] Kafka {KAFKA_VERSION} jars from Maven Central", file=out, flush=True)
    jars = delegates.maven_jars(
        "fetching Kafka jars",
        directory / "pom.xml",
        scratch / "libs",
        scratch=scratch,
        log_path=log_path,
        out=out,
    )
    (scratch / "config").mkdir()
    shutil.copyfile(directory / "log4j2.properties", scratch / "config" / "log4j2.properties")
    print(f"      {jars} jars", file=out, flush=True)
    return {"kafka": KAFKA_VERSION, "jars": jars}


RECIPE = delegates.Recipe(
    name="kafka",
    product="kafka",
    version=KAFKA_VERSION,
    files=RECIPE_FILES,
    tools=("mvn", "java"),
    assemble=_assemble,
)


def ensure_kafka(*, build_missing: bool = True, out: TextIO | None = None) -> KafkaBuild:
    """The built broker, building it if missing (build_missing=False: raise instead)."""
    return KafkaBuild(delegates.ensure(RECIPE, build_missing=build_missing, out=out))


def cluster_id() -> str:
    """A KRaft cluster id as `kafka-storage.sh random-uuid` prints it (no JVM start for it)."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


def server_properties(broker_port: int, controller_port: int, data_dir: Path) -> str:
    """One node that is broker and controller, on loopback only, single-replica internals."""
    lines = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@127.0.0.1:{controller_port}",
        "listeners": (
            f"PLAINTEXT://127.0.0.1:{broker_port},CONTROLLER://127.0.0.1:{controller_port}"
        ),
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{broker_port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "log.dirs": str(data_dir),
        "num.partitions": "1",
        "offsets.topic.replication.factor": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
        # Topics exist only because a KafkaTopic asked for them.
        "auto.create.topics.enable": "false",
    }
    return "".join(f"{key}={value}\n" for key, value in lines.items())


def java_argv(built: KafkaBuild, main: str, *args: str) -> list[str]:
    return [
        "java",
        "-cp",
        f"{built.libs}/*",
        *JVM_OPTIONS,
        f"-Dlog4j2.configurationFile={built.log_config}",
        main,
        *args,
    ]


class KafkaBroker:
    """A single-node KRaft broker as a subprocess (own process group); storage in `workdir`
    (a fresh temporary directory, removed on stop, unless one is given)."""

    def __init__(self, built: KafkaBuild, workdir: Path | None = None) -> None:
        self.built = built
        self._own_dir = workdir is None
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="federator-kafka-"))
        self.log = self.workdir / "broker.log"
        self.port = 0
        self.controller_port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        """HOST:PORT for clients (`bootstrap.servers`)."""
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 120.0) -> None:
        """Format the storage and start the broker; wait until it logs that it started."""
        if shutil.which("java") is None:
            raise RuntimeError("`java` is not on PATH; the Kafka broker needs Java 17")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port, self.controller_port = free_port(), free_port()
        while self.controller_port == self.port:
            self.controller_port = free_port()
        properties = self.workdir / "server.properties"
        properties.write_text(
            server_properties(self.port, self.controller_port, self.workdir / "data")
        )
        fmt = java_argv(
            self.built,
            "kafka.tools.StorageTool",
            "format",
            # One argument: an id that starts with "-" (1 in 64 of them) is not taken as an
            # option's value (argparse: "--cluster-id: expected one argument", seen in CI).
            f"--cluster-id={cluster_id()}",
            "-c",
            str(properties),
        )
        formatted = subprocess.run(
            fmt, check=False, capture_output=True, text=True, timeout=timeout
        )
        if formatted.returncode != 0:
            raise RuntimeError(
                f"formatting the Kafka storage failed (exit {formatted.returncode}):\n"
                f"{(formatted.stdout + formatted.stderr)[-3000:]}"
            )
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                java_argv(self.built, "kafka.Kafka", str(properties)),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while READY_LINE not in self.log.read_text(errors="replace"):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                tail = self.log.read_text(errors="replace")[-3000:]
                why = "exited" if self.proc.poll() is not None else f"not ready in {timeout:.0f}s"
                self.stop()
                raise RuntimeError(f"the Kafka broker {why}:\n{tail}")
            time.sleep(0.1)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        """SIGTERM its process group (a clean controlled shutdown), SIGKILL after a grace."""
        if self.proc is not None:
            stop_group(self.proc, STOP_GRACE_SECONDS)
            self.proc = None
        if self._own_dir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> KafkaBroker:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: Sequence[str] | None = None) -> int:
    """Run a broker in the foreground until Ctrl-C (for trying `federator simulate` by hand)."""
    built = ensure_kafka()
    broker = KafkaBroker(built)
    broker.start()
    print(f"Kafka {KAFKA_VERSION} broker at {broker.bootstrap} (log {broker.log}); Ctrl-C stops")
    try:
        while broker.running:
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        broker.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
