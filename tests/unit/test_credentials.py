"""The operator's credentials as the kubernetes client's own loaders produce them.

kopf authenticates with what `handlers.connection_info` extracts from the client's
Configuration; the in-cluster loader spells the header `bearer <token>` (lower case), a
kubeconfig `Bearer <token>`. Both are loaded here by the real loaders (the in-cluster one with
its file paths and environment pointed at a temporary service-account folder), never built by
hand."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml
from kubernetes import client, config
from kubernetes.config.incluster_config import InClusterConfigLoader

from federator.kube.connect import TokenFile
from federator.operator.handlers import authorization, connection_info

TOKEN = "eyJhbGciOiJSUzI1NiJ9.payload.signature"


def _service_account(tmp: Path, token: str = TOKEN) -> Path:
    sa = tmp / "serviceaccount"
    sa.mkdir()
    (sa / "token").write_text(token)
    (sa / "ca.crt").write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    (sa / "namespace").write_text("federator-system")
    return sa


def _in_cluster(sa: Path) -> client.Configuration:
    conf = client.Configuration()
    InClusterConfigLoader(
        token_filename=str(sa / "token"),
        cert_filename=str(sa / "ca.crt"),
        environ={"KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": "443"},
    ).load_and_set(conf)
    return conf


def test_in_cluster_token_is_sent_once_prefixed(tmp_path: Path) -> None:
    conf = _in_cluster(_service_account(tmp_path))
    # The client's own spelling, which kopf used to prefix a second time.
    assert conf.get_api_key_with_prefix("BearerToken") == f"bearer {TOKEN}"
    info = connection_info(conf)
    assert (info.scheme, info.token) == ("Bearer", TOKEN)
    assert info.server == "https://10.0.0.1:443"
    assert str(info.ca_path).endswith("ca.crt")


def test_kubeconfig_token(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:6443"}}],
                "users": [{"name": "u", "user": {"token": TOKEN}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        )
    )
    conf = client.Configuration()
    config.load_kube_config(config_file=str(kubeconfig), client_configuration=conf)
    info = connection_info(conf)
    assert (info.scheme, info.token) == ("Bearer", TOKEN)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (f"Bearer {TOKEN}", ("Bearer", TOKEN)),
        (f"bearer {TOKEN}", ("Bearer", TOKEN)),
        (f"BEARER {TOKEN}\n", ("Bearer", TOKEN)),
        (f"bearer {TOKEN}\n", ("Bearer", TOKEN)),
        (TOKEN, ("Bearer", TOKEN)),
        ("Basic dXNlcjpwYXNz", ("Basic", "dXNlcjpwYXNz")),
        ("", (None, None)),
        (None, (None, None)),
    ],
)
def test_authorization_header(header: str | None, expected: tuple[str, str]) -> None:
    assert authorization(header) == expected


def test_token_file_follows_a_rotation_at_once(tmp_path: Path) -> None:
    """The kubelet replaces the projected token by swapping a symlink; the next request uses
    the new token (the client's own hook waited up to a minute)."""
    sa = _service_account(tmp_path, token=f"{TOKEN}\n")  # a file written with a newline
    conf = _in_cluster(sa)
    token = TokenFile(sa / "token")
    token.refresh(conf)
    conf.refresh_api_key_hook = token.refresh
    assert connection_info(conf).token == TOKEN
    rotated = sa / "token.new"
    rotated.write_text("second.token.value")
    os.replace(rotated, sa / "token")
    assert conf.get_api_key_with_prefix("BearerToken") == "Bearer second.token.value"
    assert connection_info(conf).token == "second.token.value"
    (sa / "token").unlink()  # gone for a moment: the last token stays
    assert connection_info(conf).token == "second.token.value"


def test_a_refusal_is_named_in_the_stalled_condition() -> None:
    from federator.operator.status import refused_conditions

    previous = {
        "conditions": [
            {"type": "Ready", "status": "True", "reason": "AllHealthy", "message": "15/15"},
            {"type": "Stalled", "status": "False", "reason": "Healthy", "message": ""},
        ]
    }
    words = 'applications "x" is forbidden: User "system:serviceaccount:f:f" cannot list'
    first = refused_conditions(previous, 403, words, generation=3, now="T1")
    assert first[0] == previous["conditions"][0]  # the others kept as they were
    assert first[1] == {
        "type": "Stalled",
        "status": "True",
        "reason": "Forbidden",
        "message": words,
        "lastTransitionTime": "T1",
        "observedGeneration": 3,
    }
    again = refused_conditions({"conditions": first}, 403, words, generation=3, now="T2")
    assert again == first  # unchanged: no new write, the transition time kept
    assert refused_conditions({}, 401, "Unauthorized", generation=None, now="T3") == [
        {
            "type": "Stalled",
            "status": "True",
            "reason": "Unauthorized",
            "message": "Unauthorized",
            "lastTransitionTime": "T3",
        }
    ]
