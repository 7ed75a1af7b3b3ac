"""The harness that runs the real spark-operator, without running it.

Aspects covered:
- the operator's arguments and environment (the API server as its in-cluster service);
- the executor pods the stand-in creates: the driver's labels, spark-role=executor, owned by the
  driver pod, one per `spec.executor.instances`.
"""

from __future__ import annotations

from pathlib import Path

from federator.devcluster import delegates, spark_operator


def test_the_operator_runs_the_controller_only_with_nothing_listening() -> None:
    args = spark_operator.operator_args(["a", "b"])
    assert args[:2] == ["controller", "start"]
    assert "--namespaces=a,b" in args
    assert "--leader-election=false" in args
    for flag in ("metrics", "health-probe", "pprof"):
        assert f"--{flag}-bind-address=0" in args


def test_the_api_server_is_the_operators_in_cluster_service(tmp_path: Path) -> None:
    built = delegates.SparkOperatorBuild(tmp_path)
    env = spark_operator.operator_env(
        {"PATH": "/bin"}, built, "https://127.0.0.1:6443", tmp_path / "kubeconfig"
    )
    assert env["KUBERNETES_SERVICE_HOST"] == "127.0.0.1"
    assert env["KUBERNETES_SERVICE_PORT"] == "6443"
    assert env["SPARK_HOME"] == str(tmp_path / "spark-home")
    assert env["KUBECONFIG"] == str(tmp_path / "kubeconfig")
    assert env["PATH"] == "/bin"


def test_executor_pods_look_like_sparks_and_belong_to_the_driver() -> None:
    app = {"spec": {"image": "img:1", "executor": {"instances": 2}}}
    driver = {
        "metadata": {
            "name": "app-driver",
            "namespace": "ns",
            "uid": "u-1",
            "labels": {
                "spark-role": "driver",
                "spark-app-selector": "spark-abc",
                "sparkoperator.k8s.io/app-name": "app",
                "sparkoperator.k8s.io/submission-id": "s-1",
            },
        }
    }
    pods = spark_operator.executor_pods(app, driver)
    assert [p["metadata"]["name"] for p in pods] == ["spark-abc-exec-1", "spark-abc-exec-2"]
    labels = pods[0]["metadata"]["labels"]
    assert labels["spark-role"] == "executor" and labels["spark-exec-id"] == "1"
    assert labels["sparkoperator.k8s.io/submission-id"] == "s-1"
    owner = pods[0]["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner["uid"]) == ("Pod", "app-driver", "u-1")
    assert pods[0]["spec"]["containers"][0]["image"] == "img:1"
