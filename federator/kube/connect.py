"""Where federator's processes get their API credentials: one function for all of them.

The operator, the simulator, `federator status` and the development cluster's clients all
load a kubeconfig the same way, so a flag, an environment variable or a pod's service account
means the same thing to each.
"""

from __future__ import annotations

from os import PathLike

from kubernetes import client, config


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
    return conf


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
