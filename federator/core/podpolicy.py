"""The pod policy: every pod a rendered child would run meets the platform's level and runs as
an allowed ServiceAccount, checked before anything is applied.

Many teams share one federator; an author must not obtain through it a pod they could not run
themselves. So the children are checked as rendered (template plus runtime block), pod by pod
(`childpods`), against the Pod Security Standards (`podsecurity`) and the ServiceAccount
allow-list of the settings. Each problem points at the field of the Application the user wrote
(`spec.streamlets[2].container.template.spec.hostNetwork`), found by walking the runtime block
along the child path: named list items (containers, volumes) are matched by name, since the
block is merged over the template by name.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from federator.core import childpods, delegates, podsecurity
from federator.core.childpods import Path, Pod
from federator.core.model import Application, Streamlet
from federator.core.podsecurity import Level, Violation
from federator.core.problems import Code, Problem, format_path
from federator.core.render import Child
from federator.core.settings import PodSecuritySettings

SERVICE_ACCOUNT_RULE = "serviceAccount"
"""Federator's own rule (not a Pod Security Standard): the ServiceAccount allow-list."""
SERVICE_ACCOUNT_FIELDS: tuple[Path, ...] = (
    ("spec", "serviceAccountName"),
    ("spec", "serviceAccount"),  # the deprecated alias a pod still honours
)


def _user_path(streamlet: Streamlet, manifest: Mapping[str, Any], at: Path | None) -> str:
    """The Application path of a child path: the runtime block, walked along the child."""
    base = f"{streamlet.path}.{streamlet.runtime.value}"
    if at is None or at[:1] != ("spec",):
        return base
    steps: list[str | int] = []
    user: Any = streamlet.overrides
    child: Any = manifest.get("spec")
    for step in at[1:]:
        if isinstance(step, int):
            item = child[step] if isinstance(child, list) and 0 <= step < len(child) else None
            name = item.get("name") if isinstance(item, Mapping) else None
            index: int | None = None
            if isinstance(user, list):
                if name is not None:
                    index = next(
                        (
                            i
                            for i, u in enumerate(user)
                            if isinstance(u, Mapping) and u.get("name") == name
                        ),
                        None,
                    )
                elif step < len(user):
                    index = step  # an unnamed list replaces the template's whole
            steps.append(step if index is None else index)
            user = None if index is None else user[index]
            child = item
        else:
            steps.append(step)
            user = user.get(step) if isinstance(user, Mapping) else None
            child = child.get(step) if isinstance(child, Mapping) else None
    return f"{base}.{format_path(steps)}"


def _where(pod: Pod, at: Path | None) -> str:
    where = "" if pod.kind == "Deployment" else f", in the {pod.role} pod of the {pod.kind}"
    if at is None:
        where += f" (its operator builds this container; the {pod.kind} has no field for it)"
    return where


def _violation(
    v: Violation, pod: Pod, level: Level, streamlet: Streamlet, manifest: Mapping[str, Any]
) -> Problem:
    at = pod.origin(v.path)
    verb = "required" if v.required else "not allowed"
    allowed = "" if v.required else f"; allowed: {v.allowed}"
    return Problem(
        path=_user_path(streamlet, manifest, at),
        code=Code.POD_SECURITY,
        message=f"{verb} at level {level}: {v.message}{_where(pod, at)} "
        f"(Pod Security Standards, {v.rule}{allowed})",
    )


def _service_accounts(
    pod: Pod, policy: PodSecuritySettings, own: frozenset[str], namespace: str
) -> Iterator[tuple[Path, str]]:
    for path in SERVICE_ACCOUNT_FIELDS:
        spec = pod.template.get("spec")
        name = spec.get(path[1]) if isinstance(spec, Mapping) else None
        if name is None or name == "":
            continue
        if isinstance(name, str) and (
            name in own or policy.service_account_allowed(namespace, name)
        ):
            continue
        yield (
            path,
            (
                f"ServiceAccount {json.dumps(name)} is not allowed in namespace {namespace}"
                f"{_where(pod, path)} "
                f"(allowed: {', '.join(policy.allowed_in(namespace))}); the platform team "
                "lists the ServiceAccounts pods may run as in the operator settings "
                "(podSecurity.allowedServiceAccounts)"
            ),
        )


def _child_problems(
    child: Child, streamlet: Streamlet, policy: PodSecuritySettings
) -> Iterator[tuple[str, Problem]]:
    """(rule, problem) for every problem of one child's pods."""
    delegate = delegates.BY_KIND.get(child.kind)
    if delegate is None:
        yield (
            "unknownPods",
            Problem(
                path=streamlet.path,
                code=Code.POD_SECURITY,
                message=f"federator cannot tell which pods a {child.kind} runs, so it refuses it "
                "(a bug in federator: no delegate module for this kind)",
            ),
        )
        return
    sources = delegate.pods
    found = childpods.pods(child.kind, child.manifest, sources)
    checked: dict[int, list[Violation]] = {}  # a pod both alone and merged is checked once

    def check(pod: Pod) -> list[Violation]:
        if id(pod) not in checked:
            checked[id(pod)] = podsecurity.check(pod.template, policy.level)
        return checked[id(pod)]

    for pod in found.layers:
        for path, message in _service_accounts(
            pod, policy, sources.own_service_accounts, child.namespace
        ):
            yield (
                SERVICE_ACCOUNT_RULE,
                Problem(
                    path=_user_path(streamlet, child.manifest, pod.origin(path)),
                    code=Code.POD_SECURITY,
                    message=message,
                ),
            )
        # A forbidden value is refused wherever it is written, even if a later layer hides it.
        for v in check(pod):
            if not v.required:
                yield v.rule, _violation(v, pod, policy.level, streamlet, child.manifest)
    # What a level requires must hold in the merged pod the delegate runs.
    for pod in found.merged:
        for v in check(pod):
            if v.required:
                yield v.rule, _violation(v, pod, policy.level, streamlet, child.manifest)


_NUM = re.compile(r"([0-9]+)")


def _order(problem: Problem) -> tuple[Any, ...]:
    parts = _NUM.split(problem.path)
    return tuple(int(p) if i % 2 else p for i, p in enumerate(parts)), problem.message


@dataclass(frozen=True, kw_only=True)
class Finding:
    """A problem and the rule behind it (a Pod Security Standards check ID, or
    `serviceAccount`)."""

    rule: str
    problem: Problem


def findings(
    children: Iterable[Child], app: Application, policy: PodSecuritySettings
) -> list[Finding]:
    """Every pod security finding of the rendered children, one per Application path and
    rule (the driver and executor share `spec.volumes`; both list merges mostly agree)."""
    streamlets = {s.name: s for s in app.streamlets}
    unique: dict[tuple[str, str], Finding] = {}
    for child in children:
        streamlet = streamlets.get(child.streamlet or "")
        if streamlet is None:
            continue  # topics run no pods
        for rule, problem in _child_problems(child, streamlet, policy):
            unique.setdefault((problem.path, rule), Finding(rule=rule, problem=problem))
    return sorted(unique.values(), key=lambda f: _order(f.problem))


def check(
    children: Iterable[Child], app: Application, policy: PodSecuritySettings
) -> list[Problem]:
    """Every pod security problem of the rendered children (see `findings`)."""
    return [f.problem for f in findings(children, app, policy)]
