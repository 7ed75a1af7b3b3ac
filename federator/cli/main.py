"""Entry point of the `federator` command: builds the parser from one module per command.

Exit codes are part of the interface: 0 success, 1 an invalid spec (or an unhealthy result the
command reports), 2 usage errors or unreadable input, 3 a bug in federator. A traceback is
never the user interface: unexpected errors are caught here and reported in one line.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from federator import __version__

# Each module has `register(subparsers)`; its sub-parser sets `func(args) -> int`.
COMMAND_MODULES: tuple[str, ...] = (
    "federator.cli.compile_cmd",
    "federator.cli.cluster_cmd",
    "federator.cli.demo_cmd",
    "federator.cli.run_cmd",
    "federator.cli.status_cmd",
    "federator.cli.simulate_cmd",
    "federator.cli.uninstall_cmd",
)

# The offline commands, all registered by one module: `federator compile` imports only it
# (the operator, cluster and status commands bring kopf and the kube client: 0.1 s of start-up).
OFFLINE_COMMANDS = frozenset({"compile", "validate", "graph", "crd"})
OFFLINE_MODULE = "federator.cli.compile_cmd"

EXIT_OK = 0
EXIT_INVALID = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 3


class UsageError(Exception):
    """Bad arguments or unreadable input: reported on stderr, exit code 2."""


def build_parser(modules: Sequence[str] | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="federator",
        description="Compile, run and inspect streaming Applications on Kubernetes.",
    )
    parser.add_argument("--version", action="version", version=f"federator {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for name in COMMAND_MODULES if modules is None else modules:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue  # a command still being built; absent from this build
        module.register(subparsers)
    return parser


def _modules_for(argv: Sequence[str]) -> Sequence[str] | None:
    """Only the module of an offline command when the command line names one (its options and
    `--help` are all in it); every module otherwise (top-level `--help` lists them all)."""
    return (OFFLINE_MODULE,) if _command(argv) in OFFLINE_COMMANDS else None


def _command(argv: Sequence[str]) -> str | None:
    return next((arg for arg in argv if not arg.startswith("-")), None)


def main(argv: Sequence[str] | None = None) -> int:
    words = sys.argv[1:] if argv is None else argv
    if _command(words) == "run":
        # The operator may be PID 1 in a container, where a signal left at its default action
        # is dropped: its stop handlers go in before the slow imports below.
        from federator.operator.stopsignals import SIGNALS

        SIGNALS.install()
    parser = build_parser(_modules_for(words))
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
    except UsageError as exc:
        print(f"federator: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("federator: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader (e.g. `| head`) went away: not an error of ours.
        sys.stderr.close()
        return EXIT_OK
    except Exception as exc:  # the last line of defence: one line, never a traceback
        if os.environ.get("FEDERATOR_DEBUG"):
            raise
        print(
            f"federator: internal error: {type(exc).__name__}: {exc} "
            "(set FEDERATOR_DEBUG=1 for a traceback, and please report it)",
            file=sys.stderr,
        )
        return EXIT_INTERNAL
    return code
