"""What every delegate kind must say about itself: the seam between federator and one operator.

A delegate is one custom resource of an operator a platform team runs (or a core kind). All that
is specific to it lives in its own module next to this one (`kafkatopic.py`, ...): its identity
and naming limit, its template, how suspension is written into its spec, how its status is
judged, how an applied spec change is recognised in its status, the RBAC the operator needs on
it, and the step the delegate simulator plays for it. Nothing else in federator switches on a
kind: it asks the registry (`federator.core.delegates`). A contract test holds every registered
delegate to this list.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from federator.core.childpods import PodSources
from federator.core.delegates.simstep import Failure, Step
from federator.core.health import ChildHealth
from federator.core.model import Streamlet

READ_VERBS: tuple[str, ...] = ("get", "list", "watch")
WRITE_VERBS: tuple[str, ...] = ("create", "patch", "update", "delete")


@dataclass(frozen=True, kw_only=True)
class Judging:
    """What an adapter may need besides the body: all passed in, so adapters stay pure."""

    mark: str | None = None
    """The run token (see `Delegate.run_token`) recorded when a spec change was last applied;
    None when no change is pending."""
    suspended: bool = False
    """The application is suspended (spec.suspend): a stopped child is the intended state."""
    now: str | None = None
    """The current time (RFC 3339), for verdicts that depend on how long a state has lasted;
    None judges no duration."""
    related: Mapping[Ref, Mapping[str, Any] | None] | None = None
    """The objects named by `Delegate.related`, as observed (None: absent); None when they were
    not observed (offline), and the adapter judges the child alone."""


Ref = tuple[str, str, str]
"""(kind, namespace, name) of an object a child's health depends on."""
Env = Sequence[Mapping[str, str]]
"""The wiring: the env vars every streamlet gets (name, value)."""
Judge = Callable[[Mapping[str, Any], Judging], ChildHealth]
Simulate = Callable[..., Step | None]
"""`(body, *, failure, now, new_id, submitted_generation) -> Step | None`: the next status the
delegate's operator would write (None when settled)."""


@dataclass(frozen=True, kw_only=True)
class Simulation:
    """The delegate simulator's part (a development tool): the step it plays and the failure
    states it can show (the first is the default)."""

    step: Simulate
    failure_states: tuple[str, ...] = ()
    remembers_generation: bool = False
    """The operator's status does not record which generation it was submitted for (Spark): the
    simulator remembers it and passes `submitted_generation` back."""


@dataclass(frozen=True, kw_only=True)
class Delegate:
    """A delegate operator's custom resource (or a core kind) that federator renders."""

    kind: str
    group: str
    versions: tuple[str, ...]
    """Versions federator can write, preferred first."""
    plural: str
    template: str
    """The Jinja template under federator/templates that renders it."""
    name_limit: int
    """Longest metadata.name the delegate copes with (names feed its pods, services, labels)."""
    operator: str
    """What to install when the CRD is missing (shown in DelegateNotInstalled messages)."""
    judge: Judge
    """Its status → a ChildHealth (the state tables in tests/unit hold each adapter to its
    operator's real enumerations)."""
    simulation: Simulation
    required: tuple[tuple[str, ...], ...] = ()
    """Runtime-block fields the user must set (no sane default exists), as paths in the spec."""
    suspend: Callable[[dict[str, Any]], None] | None = None
    """Writes suspension into a rendered spec after the user's runtime block was merged (a block
    cannot keep a suspended application running); None when the template alone expresses it.
    Raises `SpecShape` when the block put something else where suspension goes."""
    run_token: Callable[[Mapping[str, Any]], str] | None = None
    """For a delegate whose status has no observedGeneration: the token in its status that
    changes when it acts on a new spec (Spark's submissionID, Lyft's deployHash), recorded at
    each spec-changing apply; the child stays Progressing until the token has changed."""
    pods: PodSources
    """The pods its resource makes and where their specs come from (pod security checks every
    one of them before anything is applied)."""
    namespace_setting: tuple[str, str] | None = None
    """The configuration key (section, key) that would move its pods to another namespace:
    refused in runtime blocks."""
    spec_schema: Mapping[str, Any] | None = None
    """The OpenAPI schema of its spec when no CRD carries one (a built-in kind)."""
    undeclared_spec_fields: Mapping[str, Mapping[str, Any]] | None = None
    """For a CRD that keeps unknown fields in its spec: the fields its operator reads that the
    CRD does not declare, with their schemas. Runtime blocks are then checked against the
    declared fields and these, closed: any other field is one the operator never reads."""
    argocd_health: str | None = None
    """The Lua health check the chart ships for Argo CD (charts/federator/argocd/<this>) when
    Argo CD has no built-in one for the kind; None when it has."""
    selects: Callable[[Streamlet], bool] | None = None
    """For a delegate chosen by a streamlet field, not by its runtime alone (a Flink session
    job: `flinkSession`): whether it runs this streamlet. Asked before the runtime's default."""
    context: Callable[[Streamlet, Env], Mapping[str, Any]] | None = None
    """Template values of its own, besides the ones every template gets."""
    wire: Callable[[dict[str, Any], Env], None] | None = None
    """Puts the wiring back into a spec after the user's runtime block was merged, for a
    delegate that carries it elsewhere than in env lists (job arguments). Raises `SpecShape`."""
    related: Callable[[Mapping[str, Any]], tuple[Ref, ...]] | None = None
    """Objects its health depends on besides itself, read from its rendered manifest (a session
    job: its session cluster); observed at each reconcile and passed in `Judging.related`."""
    verbs: tuple[str, ...] = READ_VERBS + WRITE_VERBS
    """What the operator's ServiceAccount may do to it (the chart's RBAC is generated from
    these; see charts/federator/files/delegates.json)."""

    def api_version(self, version: str | None = None) -> str:
        v = version or self.versions[0]
        return f"{self.group}/{v}" if self.group else v

    @property
    def crd_name(self) -> str:
        return f"{self.plural}.{self.group}"

    @property
    def builtin(self) -> bool:
        """Served by every cluster (no CRD to install)."""
        return self.group in ("", "apps")

    def served(self, installed: Collection[str]) -> bool:
        """Whether the cluster serves this kind, given the names of its installed CRDs."""
        return self.builtin or self.crd_name in installed

    def assess(self, body: Mapping[str, Any], judging: Judging | None = None) -> ChildHealth:
        return self.judge(body, judging or Judging())


class SpecShape(Exception):
    """A runtime block put a value of another type where federator writes (suspension)."""

    def __init__(self, steps: tuple[str, ...], value: Any, expected: type) -> None:
        super().__init__(steps, value, expected)
        self.steps, self.value, self.expected = steps, value, expected


__all__ = ["Delegate", "Failure", "Judging", "Simulation", "SpecShape", "Step"]
