"""The compile pipeline: body -> validated model -> topology -> rendered children.

A numbered pipeline that never mutates its input; it raises `InvalidSpec` with every problem,
or returns the children ordered by wave. Used by the CLI and by the operator alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from federator.core import flinkjob, podpolicy, render, validation
from federator.core.delegates import TargetApis
from federator.core.model import Application
from federator.core.problems import InvalidSpec
from federator.core.render import Child
from federator.core.settings import Settings
from federator.core.topology import Topology


@dataclass(frozen=True, kw_only=True)
class Compiled:
    app: Application
    topology: Topology
    children: tuple[Child, ...]


def compile_application(
    body: Mapping[str, Any], settings: Settings, served: TargetApis | None = None
) -> Compiled:
    """1. validate (all problems at once); 2. topology; 3. render in waves; 4. check the pods
    the children would run (Pod Security Standards level, ServiceAccounts) and what a delegate
    operator would refuse in them (a Flink job's upgrade mode without its directories)."""
    result = validation.validate(body, settings)
    if not result.ok:
        raise InvalidSpec(result.problems)
    if served is None:
        cluster = settings.kafka_cluster(result.app.kafka_cluster)
        served = TargetApis.offline(cluster.topic_api_version) if cluster else TargetApis.offline()
    children = render.render(result.topology, settings, served)
    problems = podpolicy.check(children, result.app, settings.pod_security)
    problems += flinkjob.check(children, result.app)
    if problems:
        raise InvalidSpec(problems)
    return Compiled(app=result.app, topology=result.topology, children=children)
