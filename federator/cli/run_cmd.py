"""`federator run`: the operator."""

from __future__ import annotations

import argparse
from dataclasses import replace
from typing import Any

from federator.cli.main import EXIT_OK, UsageError
from federator.core import sharding
from federator.core.settings import SettingsError, ShardingSettings
from federator.settings_file import load_settings


def cmd_run(args: argparse.Namespace) -> int:
    try:
        settings = load_settings(args.settings)
        if args.shard is not None:  # one settings file (the chart's ConfigMap), N shards
            shard = sharding.check_name(args.shard) if args.shard else None
            settings = replace(settings, sharding=ShardingSettings(shard=shard))
    except SettingsError as exc:
        raise UsageError(str(exc)) from None
    except sharding.ShardError as exc:
        raise UsageError(f"--shard: {exc}") from None
    _check_credentials(args.kubeconfig)
    from federator.operator.run import run

    run(
        settings,
        kubeconfig=args.kubeconfig,
        namespaces=args.namespace or (),
        verbose=args.verbose,
        peering=args.peering,
        priority=args.priority,
    )
    return EXIT_OK


def _check_credentials(kubeconfig: str | None) -> None:
    """Credentials must be there before the operator starts: without them the in-cluster loader's
    'Service host/port is not set' reached the user as an internal error."""
    from federator.kube import connect

    try:
        connect.configuration(kubeconfig)
    except Exception as exc:  # ConfigException, OSError, YAML errors alike
        if kubeconfig:
            raise UsageError(f"--kubeconfig {kubeconfig}: cannot use it: {exc}") from None
        raise UsageError(
            "no cluster to run against: pass --kubeconfig FILE, set KUBECONFIG or create "
            "~/.kube/config, or run in a pod (KUBERNETES_SERVICE_HOST/PORT and a "
            f"service-account token; the in-cluster loader said: {exc})"
        ) from None


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("run", help="run the operator (watches Applications)")
    p.add_argument(
        "--settings", metavar="FILE", help="operator settings (default $FEDERATOR_SETTINGS)"
    )
    p.add_argument("--kubeconfig", metavar="FILE", help="default $KUBECONFIG, else in-cluster")
    p.add_argument(
        "-n",
        "--namespace",
        action="append",
        metavar="NS",
        help="watch only this namespace (repeatable); default: the settings, else all",
    )
    p.add_argument(
        "--peering",
        metavar="NAME",
        help="HA: join kopf's (Cluster)KopfPeering NAME; only one replica works at a time "
        "(default: standalone)",
    )
    p.add_argument(
        "--priority",
        type=int,
        help="kopf peering priority (default: random per process, so replicas differ)",
    )
    p.add_argument(
        "--shard",
        metavar="NAME",
        help="serve only the Applications labelled federator.io/shard=NAME (overrides the "
        "settings' sharding.shard; an empty NAME: the default shard, those without the label)",
    )
    p.add_argument("-v", "--verbose", action="store_true")
    p.set_defaults(func=cmd_run)
