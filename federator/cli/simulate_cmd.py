"""`federator simulate`: the delegate simulator in the foreground (a DEVELOPMENT TOOL).

Why: on a laptop or in CI there is no Strimzi, Spark or Flink operator to give federator's
children a status. This command stands in for them against any cluster (usually the embedded
one of `federator cluster up`) until Ctrl-C; it is never started by `federator run`.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from types import FrameType
from typing import Any

from federator.core.delegates.simstep import FAIL_ANNOTATION
from federator.simulator import DEFAULT_INTERVAL, DelegateSimulator

HELP = "DEVELOPMENT TOOL: play the delegate operators, moving children's statuses"
DESCRIPTION = f"""\
DEVELOPMENT TOOL - never run this next to real delegate operators.

Plays the Strimzi topic operator, the Spark operator and both Flink operators: every child that
federator manages (label app.kubernetes.io/managed-by=federator) of kind KafkaTopic,
SparkApplication, FlinkDeployment or FlinkApplication moves one step per tick through its
operator's real states, until it is healthy. Kinds whose CRD is not installed are skipped and
picked up when it is. Runs until Ctrl-C.

With --kafka-bootstrap HOST:PORT it plays Strimzi's topic operator against a real Kafka broker:
every KafkaTopic's topic is created, altered (config, more partitions) and deleted there, and the
broker's answer is the KafkaTopic's status (Ready=False with the error on refusal). Needs the
Kafka admin client: pip install 'federator[kafka]'.

Inject a failure by hand:
  kubectl annotate sparkapplication NAME {FAIL_ANNOTATION}="executor lost"
and recover:
  kubectl annotate sparkapplication NAME {FAIL_ANNOTATION}-
"""


def register(subparsers: Any) -> None:
    """Add `simulate` to the top-level parser."""
    parser = subparsers.add_parser(
        "simulate",
        help=HELP,
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--kubeconfig",
        metavar="FILE",
        help="kubeconfig to use (default: $KUBECONFIG, ~/.kube/config, else in-cluster)",
    )
    parser.add_argument(
        "--interval",
        type=_positive,
        default=DEFAULT_INTERVAL,
        metavar="SECONDS",
        help=f"seconds between ticks (default {DEFAULT_INTERVAL})",
    )
    parser.add_argument(
        "-n",
        "--namespace",
        action="append",
        dest="namespaces",
        metavar="NAMESPACE",
        help="only children in this namespace (repeatable; default: all namespaces)",
    )
    parser.add_argument(
        "--kafka-bootstrap",
        type=_bootstrap,
        metavar="HOST:PORT",
        help="broker mode: reconcile KafkaTopics on this Kafka broker (default: simulated)",
    )
    parser.set_defaults(func=cmd_simulate)


def _bootstrap(text: str) -> str:
    from federator.simulator_broker import check_bootstrap

    try:
        return check_bootstrap(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0: {text!r}")
    return value


def api_client(kubeconfig: str | None) -> Any:
    """An ApiClient from the given kubeconfig, the default one, else the in-cluster config."""
    from federator.kube import connect

    return connect.api_client(kubeconfig or None)


def cmd_simulate(args: argparse.Namespace) -> int:
    """Tick in the foreground until Ctrl-C or SIGTERM; print every transition."""
    from federator.cli.main import UsageError

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stdout)
    try:
        api = api_client(args.kubeconfig)
    except Exception as exc:
        raise UsageError(f"cannot load a Kubernetes configuration: {exc}") from None
    kafka_topics = None
    if args.kafka_bootstrap:
        from federator.simulator_broker import KafkaAdminMissing, broker_topics

        try:
            kafka_topics = broker_topics(args.kafka_bootstrap)
        except KafkaAdminMissing as exc:
            api.close()
            raise UsageError(str(exc)) from None
    sim = DelegateSimulator(
        api, interval=args.interval, namespaces=args.namespaces, kafka_topics=kafka_topics
    )

    def on_term(signum: int, frame: FrameType | None) -> None:
        sim.stop()

    previous = signal.signal(signal.SIGTERM, on_term)
    where = ", ".join(args.namespaces) if args.namespaces else "all namespaces"
    topics = f"; KafkaTopics on the broker {args.kafka_bootstrap}" if kafka_topics else ""
    print(
        f"federator simulate (development tool): playing the delegate operators in {where} "
        f"every {args.interval:g}s{topics}; Ctrl-C to stop",
        flush=True,
    )
    try:
        sim.run()
    except KeyboardInterrupt:
        pass
    finally:
        sim.stop()
        signal.signal(signal.SIGTERM, previous)
        if kafka_topics is not None:
            kafka_topics.close()
        api.close()
    print("federator simulate: stopped", flush=True)
    return 0
