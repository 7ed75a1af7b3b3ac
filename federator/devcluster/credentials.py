"""Who may talk to the control plane: token users, their kubeconfigs, the service-account key.

The API server authenticates static tokens (`--token-auth-file`) and serves with a certificate
it makes itself; the kubeconfigs trust that certificate's CA and carry one token each.
"""

from __future__ import annotations

import base64
import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import yaml

from federator.devcluster.processes import ControlPlaneError

ADMIN_USER = "federator-admin"
TEST_USER = "federator-test-user"
TEST_GROUP = "federator:testers"


@dataclass(frozen=True)
class Identity:
    """A token-authenticated user of the API server."""

    name: str
    token: str
    groups: tuple[str, ...] = ()


def token_auth_csv(identities: Iterable[Identity]) -> str:
    """--token-auth-file content: `token,user,uid,"group1,group2"` per line."""
    lines = []
    for ident in identities:
        line = f"{ident.token},{ident.name},{ident.name}"
        if ident.groups:
            line += ',"' + ",".join(ident.groups) + '"'
        lines.append(line)
    return "\n".join(lines) + "\n"


def kubeconfig_text(server: str, ca_pem: bytes, user: str, token: str) -> str:
    """A kubeconfig (YAML) for one token user, trusting the API server's own CA bundle."""
    name = "federator-local"
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": name,
                "cluster": {
                    "server": server,
                    "certificate-authority-data": base64.b64encode(ca_pem).decode(),
                },
            }
        ],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": f"{user}@{name}", "context": {"cluster": name, "user": user}}],
        "current-context": f"{user}@{name}",
        "preferences": {},
    }
    return yaml.safe_dump(doc, sort_keys=False)


def generate_sa_key(path: Path) -> None:
    """An RSA key for service-account tokens (openssl, else the cryptography package)."""
    openssl = shutil.which("openssl")
    if openssl:
        subprocess.run(
            [openssl, "genrsa", "-out", str(path), "2048"],
            check=True,
            capture_output=True,
        )
        return
    try:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa
    except ImportError as exc:  # pragma: no cover - depends on the machine
        raise ControlPlaneError(
            "need `openssl` or the `cryptography` package to make a service-account key"
        ) from exc
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
