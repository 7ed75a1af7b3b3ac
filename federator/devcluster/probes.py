"""Is it up yet? The readiness checks the launcher polls while a control plane starts.

Each answers one question once (raising on a transport error); the caller polls with a deadline.
"""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from typing import Any


def _insecure_context() -> ssl.SSLContext:
    """Only for polling our own loopback server before its CA file exists."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def etcd_healthy(url: str) -> bool:
    with urllib.request.urlopen(f"{url}/health", timeout=2) as resp:
        return bool(json.loads(resp.read()).get("health") == "true")


def readyz(server: str, token: str) -> bool:
    req = urllib.request.Request(f"{server}/readyz")
    req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, context=_insecure_context(), timeout=2) as resp:
            return bool(resp.status == 200)
    except urllib.error.HTTPError:
        return False


def crd_list_path(crd: dict[str, Any]) -> str:
    """The cluster-wide list URL of a CRD's resource, at its storage (else first served) version."""
    spec = crd["spec"]
    versions = [v for v in spec["versions"] if v.get("served", True)]
    version = next((v for v in versions if v.get("storage")), versions[0])["name"]
    return f"/apis/{spec['group']}/{version}/{spec['names']['plural']}"


def crd_established(crd: Any) -> bool:
    conditions = (crd or {}).get("status", {}).get("conditions") or []
    return any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions)
