"""Where federator's processes get their API credentials: one function for all of them.

The operator, the simulator, `federator status` and the development cluster's clients all
load a kubeconfig the same way, so a flag, an environment variable or a pod's service account
means the same thing to each.
"""

from __future__ import annotations

import os
import threading
from os import PathLike

from kubernetes import client, config
from kubernetes.config import incluster_config


def configuration(
    kubeconfig: str | PathLike[str] | None = None, *, context: str | None = None
) -> client.Configuration:
    """From `kubeconfig` (a path, or a KUBECONFIG-style path list), else $KUBECONFIG /
    ~/.kube/config, else the pod's service account (in-cluster).

    A kubeconfig that was named but cannot be used is an error (ConfigException, OSError or a
    YAML error), never a silent fall-back to another identity. The file is never written back
    (a refreshed token stays in memory): reading status must not edit a user's kubeconfig."""
    conf = client.Configuration()
    try:
        config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=None if kubeconfig is None else str(kubeconfig),
            context=context,
            client_configuration=conf,
            persist_config=False,
        )
    except config.ConfigException:
        if kubeconfig is not None:
            raise
        config.load_incluster_config(client_configuration=conf)  # type: ignore[no-untyped-call]
        token = TokenFile(incluster_config.SERVICE_TOKEN_FILENAME)
        token.refresh(conf)
        conf.refresh_api_key_hook = token.refresh  # type: ignore[assignment]
    return conf


class TokenFile:
    """The pod's projected service-account token, read again as soon as the kubelet replaces it.

    Why not the client's own hook: it re-reads the file once a minute at most, so a rotated or
    re-issued token (a ServiceAccount deleted and created again) left every request refused for
    up to a minute; it also stores the header as `bearer <token>`, with whatever whitespace the
    file has. This one checks the file's identity (the kubelet swaps a symlink, which changes
    inode and mtime) before each request, a stat, and reads it only when it changed."""

    def __init__(self, path: str | PathLike[str]) -> None:
        self.path = path
        self._seen: tuple[int, int, int] | None = None
        self._lock = threading.Lock()

    def refresh(self, conf: client.Configuration) -> None:
        try:
            st = os.stat(self.path)
        except OSError:
            return  # keep the token we have; the request says what the server thinks of it
        seen = (st.st_ino, st.st_mtime_ns, st.st_size)
        with self._lock:
            if seen == self._seen:
                return
            with open(self.path, encoding="utf-8") as f:
                token = f.read().strip()
            if token:
                conf.api_key["BearerToken"] = f"Bearer {token}"
                conf.api_key.pop("authorization", None)
            self._seen = seen


def api_client(
    kubeconfig: str | PathLike[str] | None = None,
    *,
    context: str | None = None,
    pool_size: int | None = None,
    retries: int | None = None,
) -> client.ApiClient:
    """An ApiClient from `configuration(...)`: `pool_size` connections kept open (one per
    concurrent request), `retries` transport retries (None: the client's default)."""
    conf = configuration(kubeconfig, context=context)
    if pool_size is not None:
        conf.connection_pool_maxsize = pool_size
    if retries is not None:
        conf.retries = retries
    return client.ApiClient(conf)
