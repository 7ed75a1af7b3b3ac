"""The operator and `federator status` with in-cluster credentials, as PID 1,, on the API server.

In a pod, nothing is a kubeconfig: the kubelet projects a bound service-account token, the
cluster CA and the namespace at /var/run/secrets/kubernetes.io/serviceaccount, sets
KUBERNETES_SERVICE_HOST/PORT, and starts the entrypoint as PID 1 of the pod's PID namespace,
where the kernel drops a signal whose action is the default. Each process here gets exactly
that: a private mount namespace with the service-account folder (a token from the real
TokenRequest API, the real CA) bind-mounted at that path, a PID namespace in which it is PID 1,
the in-cluster variables, no KUBECONFIG and a HOME without ~/.kube (`unshare`, as root).

Aspects covered:
- `federator status` with in-cluster credentials: the pod's namespace is the default;
- the operator authenticates with them (kopf and the client) and brings the seed example to
  Healthy, /healthz answering;
- a token the server no longer accepts (its ServiceAccount deleted and created again): /healthz
  fails while refused, no worker dies, and a child deleted meanwhile is restored once the
  kubelet's new token is in place;
- authorization taken away mid-life: the refusal is named on the Application (Degraded, the
  identity and the missing permission) and cleared when the rights come back;
- SIGTERM as PID 1 while running, and while waiting to restart after refused credentials: exit 0.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from federator.devcluster import crdfiles
from federator.devcluster.harness import eventually
from federator.simulator import DelegateSimulator
from integration import operator_settings

if TYPE_CHECKING:
    from conftest import Cluster
else:
    Cluster = Any

REPO = Path(__file__).resolve().parents[2]
SYSTEM_NS = "incluster-system"
APPS_NS = "incluster-apps"
KAFKA_NS = "incluster-kafka"
ACCOUNT = "federator"
BINDING = "incluster-federator"
APP = f"/apis/federator.io/v1alpha1/namespaces/{APPS_NS}/applications"
SA_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
JAIL = (
    # PID 1 of a new PID namespace (`--fork`), a private mount namespace with its own /run
    # (/var/run links there) holding the service-account folder where the kubelet mounts it.
    'mount -t tmpfs -o size=1m tmpfs /run && mkdir -p "$0" && mount --bind "$SA_DIR" "$0" '
    '&& exec "$@"'
)


def jailed(
    args: list[str], sa_dir: Path, server: str, home: Path
) -> tuple[list[str], dict[str, str]]:
    """The command and environment that run `args` the way a pod's container runs."""
    host, port = server.removeprefix("https://").rsplit(":", 1)
    env = {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "FEDERATOR_SETTINGS")}
    env.update(
        KUBERNETES_SERVICE_HOST=host.strip("[]"),
        KUBERNETES_SERVICE_PORT=port,
        HOME=str(home),
        SA_DIR=str(sa_dir),
        PYTHONUNBUFFERED="1",
    )
    command = ["unshare", "--mount", "--pid", "--fork", "--mount-proc", "--propagation", "private"]
    return [*command, "sh", "-c", JAIL, SA_PATH, *args], env


def token_for(cluster: Cluster, account: str = ACCOUNT) -> str:
    status, body = cluster.plane.request(
        "POST",
        f"/api/v1/namespaces/{SYSTEM_NS}/serviceaccounts/{account}/token",
        {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}},
    )
    assert status == 201, body
    return str(body["status"]["token"])


def project_token(sa_dir: Path, token: str) -> None:
    """As the kubelet does: the new token replaces the old one atomically."""
    new = sa_dir / ".token.new"
    new.write_text(token)
    new.chmod(0o644)
    os.replace(new, sa_dir / "token")


def create_account(cluster: Cluster) -> None:
    status, body = cluster.plane.request(
        "POST",
        f"/api/v1/namespaces/{SYSTEM_NS}/serviceaccounts",
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": ACCOUNT}},
    )
    assert status in (201, 409), body


def bind(cluster: Cluster, role: str) -> None:
    """The ServiceAccount's one ClusterRoleBinding, to `role` (replaced if it exists)."""
    cluster.plane.request(
        "DELETE", f"/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/{BINDING}"
    )
    status, body = cluster.plane.request(
        "POST",
        "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": BINDING},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": role,
            },
            "subjects": [{"kind": "ServiceAccount", "name": ACCOUNT, "namespace": SYSTEM_NS}],
        },
    )
    assert status == 201, body


@pytest.fixture(scope="module")
def pod(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The service-account folder, settings and home of a pod running federator."""
    cluster.plane.install_crds(REPO / "crds" / "application.yaml")
    cluster.plane.install_crds(*crdfiles.delegate_crd_files(crdfiles.delegate_crds_dir()))
    for ns in (SYSTEM_NS, APPS_NS, KAFKA_NS):
        cluster.ensure_namespace(ns)
    create_account(cluster)
    bind(cluster, "cluster-admin")
    # Only applications and their status: what an operator whose RBAC was cut keeps.
    status, body = cluster.plane.request(
        "POST",
        "/apis/rbac.authorization.k8s.io/v1/clusterroles",
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": "incluster-applications-only"},
            "rules": [
                {
                    "apiGroups": ["federator.io"],
                    "resources": ["applications", "applications/status"],
                    "verbs": ["get", "list", "watch", "patch", "update"],
                },
                {"apiGroups": ["", "events.k8s.io"], "resources": ["events"], "verbs": ["*"]},
            ],
        },
    )
    assert status in (201, 409), body
    tmp = tmp_path_factory.mktemp("pod")
    sa_dir, home = tmp / "serviceaccount", tmp / "home"
    sa_dir.mkdir()
    home.mkdir()
    project_token(sa_dir, token_for(cluster))
    ca = yaml.safe_load(cluster.kubeconfig.read_text())["clusters"][0]["cluster"]
    (sa_dir / "ca.crt").write_bytes(_ca_pem(ca))
    (sa_dir / "namespace").write_text(APPS_NS)
    settings = tmp / "settings.yaml"
    operator_settings.write(settings, KAFKA_NS)
    yield {"sa_dir": sa_dir, "home": home, "settings": settings, "tmp": tmp}


def _ca_pem(cluster_entry: dict[str, Any]) -> bytes:
    import base64

    if "certificate-authority-data" in cluster_entry:
        return base64.b64decode(cluster_entry["certificate-authority-data"])
    return Path(cluster_entry["certificate-authority"]).read_bytes()


class PodProcess:
    """`federator run` as the pod's PID 1, with in-cluster credentials only."""

    def __init__(self, cluster: Cluster, pod: dict[str, Any], name: str) -> None:
        self.log = pod["tmp"] / f"{name}.log"
        conf = yaml.safe_load(pod["settings"].read_text())["operator"]
        self.healthz = f"http://127.0.0.1:{conf['livenessPort']}/healthz"
        args = [sys.executable, "-m", "federator", "run", "--settings", str(pod["settings"])]
        args += ["-n", APPS_NS, "-n", KAFKA_NS]
        command, env = jailed(args, pod["sa_dir"], cluster.plane.server, pod["home"])
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def health(self) -> int:
        """/healthz's HTTP status; 0 when nothing answers."""
        self.alive()
        try:
            with urllib.request.urlopen(self.healthz, timeout=5) as resp:
                return int(resp.status)
        except urllib.error.HTTPError as err:
            return int(err.code)
        except OSError:
            return 0

    def alive(self) -> None:
        if self.proc.poll() is not None:
            raise AssertionError(
                f"the operator exited {self.proc.returncode}:\n{self.text()[-3000:]}"
            )

    def pid1(self) -> int:
        """The host pid of the process that is PID 1 inside (unshare's one child)."""
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
        assert len(children) == 1, children
        inner = int(children[0])
        status = Path(f"/proc/{inner}/status").read_text()
        nspid = next(line for line in status.splitlines() if line.startswith("NSpid:"))
        assert nspid.split()[-1] == "1", nspid  # PID 1 in its namespace
        return inner

    def sigterm(self, grace: float = 30.0) -> int:
        """SIGTERM to PID 1 from outside its namespace, as the container runtime sends it;
        its exit code (unshare exits with its child's)."""
        os.kill(self.pid1(), signal.SIGTERM)
        try:
            return self.proc.wait(grace)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(
                f"SIGTERM ignored for {grace}s by PID 1:\n{self.text()[-3000:]}"
            ) from None

    def kill(self) -> None:
        """SIGKILL PID 1 (the kernel delivers it from outside the namespace), then unshare."""
        if self.proc.poll() is None:
            children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
            for pid in children.read_text().split() if children.exists() else ():
                os.kill(int(pid), signal.SIGKILL)
            self.proc.kill()
            self.proc.wait(10)


def app_body(name: str) -> dict[str, Any]:
    body: dict[str, Any] = yaml.safe_load(
        (REPO / "examples" / "call-record-aggregator.yaml").read_text()
    )
    body["metadata"] = {"name": name, "namespace": APPS_NS}
    return body


def application(cluster: Cluster, name: str) -> dict[str, Any]:
    status, body = cluster.plane.request("GET", f"{APP}/{name}")
    assert status == 200, body
    return body  # type: ignore[no-any-return]


def healthy(cluster: Cluster, name: str) -> bool:
    status = application(cluster, name).get("status") or {}
    return status.get("phase") == "Healthy"


def condition(cluster: Cluster, name: str, kind: str) -> dict[str, Any]:
    status = application(cluster, name).get("status") or {}
    return next((c for c in status.get("conditions") or [] if c["type"] == kind), {})


def deployment(name: str) -> str:
    return f"/apis/apps/v1/namespaces/{APPS_NS}/deployments/{name}"


def exists(cluster: Cluster, path: str) -> bool:
    return int(cluster.plane.request("GET", path)[0]) == 200


def test_status_reads_with_in_cluster_credentials(cluster: Cluster, pod: dict[str, Any]) -> None:
    status, body = cluster.plane.request("POST", APP, app_body("status-probe"))
    assert status == 201, body
    command, env = jailed(
        [sys.executable, "-m", "federator", "status", "-o", "json"],
        pod["sa_dir"],
        cluster.plane.server,
        pod["home"],
    )
    done = subprocess.run(command, check=False, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    names = {a["name"] for a in json.loads(done.stdout)["items"]}
    assert "status-probe" in names  # the pod's namespace, from the service-account folder
    assert cluster.plane.request("DELETE", f"{APP}/status-probe")[0] == 200


def test_operator_in_a_pod(cluster: Cluster, pod: dict[str, Any]) -> None:
    sim = DelegateSimulator(cluster.api, interval=0.1, namespaces=[APPS_NS, KAFKA_NS])
    sim.run_in_thread()
    operator = PodProcess(cluster, pod, "operator")
    try:
        eventually(lambda: operator.health() == 200, "/healthz with in-cluster credentials")
        status, body = cluster.plane.request("POST", APP, app_body("seed"))
        assert status == 201, body
        eventually(lambda: healthy(cluster, "seed"), "the seed example Healthy", timeout=120)
        assert "bearer bearer" not in operator.text().lower()

        # The token stops being accepted: its ServiceAccount is deleted and created again.
        assert (
            cluster.plane.request(
                "DELETE", f"/api/v1/namespaces/{SYSTEM_NS}/serviceaccounts/{ACCOUNT}"
            )[0]
            == 200
        )
        create_account(cluster)
        child = next(
            c["name"]
            for c in application(cluster, "seed")["status"]["children"]
            if c["kind"] == "Deployment"
        )
        assert cluster.plane.request("DELETE", deployment(child))[0] == 200
        eventually(lambda: operator.health() != 200, "/healthz failing while refused", timeout=60)
        eventually(
            lambda: "401" in operator.text() or "Unauthorized" in operator.text(),
            "the refusal in the log",
        )
        # The kubelet projects a token of the new ServiceAccount.
        project_token(pod["sa_dir"], token_for(cluster))
        eventually(
            lambda: exists(cluster, deployment(child)), "the deleted child restored", timeout=150
        )
        eventually(lambda: operator.health() == 200, "/healthz answering again", timeout=90)
        assert "Task exception was never retrieved" not in operator.text()

        # Authorization cut to the applications alone: named on the Application.
        bind(cluster, "incluster-applications-only")
        status, body = cluster.plane.request(
            "PATCH",
            f"{APP}/seed",
            {"spec": {"topicDefaults": {"partitions": 7}}},
            content_type="application/merge-patch+json",
        )
        assert status == 200, body
        who = f"ServiceAccount {SYSTEM_NS}/{ACCOUNT} may not patch"
        named = eventually(
            lambda: (
                (text := json.dumps(application(cluster, "seed").get("status"))).count(who) and text
            ),
            "the refusal named in the status",
            timeout=90,
        )
        assert "the platform team grants it" in named
        assert application(cluster, "seed")["status"]["phase"] == "Degraded"
        bind(cluster, "cluster-admin")
        eventually(
            lambda: (
                condition(cluster, "seed", "Stalled").get("status") == "False"
                and healthy(cluster, "seed")
            ),
            "the refusal cleared once the rights are back",
            timeout=150,
        )
        assert "Task exception was never retrieved" not in operator.text()

        assert operator.sigterm() == 0
        assert "SIGTERM received: stopping" in operator.text()
    finally:
        operator.kill()
        sim.stop()
        cluster.plane.request("DELETE", f"{APP}/seed")


def test_sigterm_while_waiting_to_restart(cluster: Cluster, pod: dict[str, Any]) -> None:
    """Credentials refused from the start: kopf's login gives up, the watch machinery waits to
    restart; a SIGTERM then, to PID 1, still stops it with exit 0."""
    refused = pod["tmp"] / "refused"
    refused.mkdir()
    for name in ("ca.crt", "namespace"):
        (refused / name).write_bytes((pod["sa_dir"] / name).read_bytes())
    project_token(refused, "not-a-token-the-server-knows")
    operator = PodProcess(cluster, {**pod, "sa_dir": refused}, "refused")
    try:
        eventually(
            lambda: operator.alive() or "restarting in" in operator.text(),
            "the watch machinery waiting to restart",
            timeout=120,
        )
        assert operator.sigterm() == 0
    finally:
        operator.kill()
