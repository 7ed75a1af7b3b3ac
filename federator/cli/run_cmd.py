"""`federator run`: the operator."""

from __future__ import annotations

import argparse
from typing import Any

from federator.cli.main import EXIT_OK, UsageError
from federator.core.settings import SettingsError
from federator.settings_file import load_settings


def cmd_run(args: argparse.Namespace) -> int:
    try:
        settings = load_settings(args.settings)
    except SettingsError as exc:
        raise UsageError(str(exc)) from None
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
    p.add_argument("-v", "--verbose", action="store_true")
    p.set_defaults(func=cmd_run)
