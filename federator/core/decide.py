"""What one reconcile of an Application decides, from what it observed (DESIGN §4). Pure.

The reconcile is observe -> decide -> act -> report. The shell (`operator.reconciler`) reads the
cluster, then asks this module twice, and writes only what it is told:

- `decide`, before any write: each observed child's verdict, the plan (what to apply, what to
  prune), and the desired children held back with the reason each shows in the status;
- `report`, after the writes: each child's verdict given what the writes returned (a failed or
  refused write wins over the child's own status), the status entries, what federator owns
  (the inventory), and the application's health. `report_invalid` is its twin for a spec
  that does not compile: nothing was written, the previous children are reported.

Neither reads the cluster or the clock: the shell passes the bodies it read, the apply marks it
keeps and `now`, so every rule is a table test (tests/unit/test_decide.py).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from federator.core import crdcheck, delegates, health, naming
from federator.core.compiler import Compiled
from federator.core.delegates.base import Ref
from federator.core.health import REASON_DELEGATE_NOT_INSTALLED, ChildHealth, ChildReport
from federator.core.inventory import summarised
from federator.core.keys import Key
from federator.core.plan import (
    NOT_OURS,
    InventoryItem,
    Observed,
    Plan,
    make_plan,
)
from federator.core.render import Child
from federator.core.scope import CLUSTERWIDE, Scope
from federator.core.settings import KafkaCluster

REASON_EXTERNAL_TOPIC_UNSEEN = "ExternalTopicNotObserved"

Body = Mapping[str, Any]


# -- observe: what to read


def to_read(
    children: Sequence[Child],
    inventory: Sequence[InventoryItem],
    installed: Collection[str],
    scope: Scope = CLUSTERWIDE,
) -> list[InventoryItem]:
    """The objects a reconcile reads: every desired child and every inventory entry, once each
    (a desired child's version first: a changed topic version is read at the one written), of
    the kinds the cluster serves (the rest cannot exist), in the namespaces this operator
    serves (the rest it neither writes nor reads: `scope`)."""
    out: dict[Key, InventoryItem] = {}
    for item in (*(InventoryItem.from_child(c) for c in children), *inventory):
        if delegates.BY_KIND[item.kind].served(installed) and scope.serves(item.namespace):
            out.setdefault(item.key, item)
    return list(out.values())


def lists_owned(previous: Mapping[str, Any], generation: int, *, fresh: bool) -> bool:
    """Whether a reconcile also lists the cluster for this application's children (by label and
    owner annotation), beyond reading what the inventory names. A restart or resync (`fresh`)
    looks for children a crash kept out of the inventory; so does a spec change when the
    inventory is summarised: it does not name every child, and what left the spec must still be
    pruned (the reconcile of the previous generation already pruned what it removed; its failed
    prunes are in the status, not Healthy, or, when even those did not fit, retried at the
    resync, which always lists)."""
    return fresh or (summarised(previous) and previous.get("observedGeneration") != generation)


def unmanaged_topics(
    compiled: Compiled, served: Mapping[str, Sequence[str]], cluster: KafkaCluster | None
) -> list[InventoryItem]:
    """The KafkaTopics of the topics declared `managed: false`, to read (by GET: they carry no
    federator label, so the watch cache never holds them) and report, never to write. None when
    the cluster serves no KafkaTopic, or the application's Kafka cluster is unknown (it cannot
    be: the application compiled against these settings)."""
    topics = [t for t in compiled.topology.topics if not t.managed]
    delegate = delegates.KAFKA_TOPIC
    if not topics or delegate.crd_name not in served or cluster is None:
        return []
    api_version = delegate.api_version(served[delegate.crd_name][0])
    return [
        InventoryItem(
            kind=delegate.kind,
            api_version=api_version,
            namespace=cluster.namespace,
            name=naming.topic_resource_name(topic.name),
            topic=topic.name,
        )
        for topic in topics
    ]


# -- decide: before any write


def verdict(
    kind: str,
    body: Body | None,
    *,
    mark: str | None,
    suspended: bool,
    now: str,
    related: Mapping[Ref, Body | None] | None = None,
) -> ChildHealth:
    """One child's health from its body. `now`: a verdict that depends on how long a state has
    lasted (a RUNNING Spark application that never got an executor) is judged at each
    reconcile, the resync at the latest. `related`: the objects the delegates' health depends
    on (`related_refs`), as observed."""
    return delegates.assess(kind, body, mark=mark, suspended=suspended, now=now, related=related)


def related_refs(children: Sequence[Child]) -> list[tuple[Ref, str]]:
    """The objects the children's health depends on besides themselves (`Delegate.related`: a
    Flink session job's session cluster), each with the apiVersion to read it at; read at every
    reconcile (they are not federator's children, so no watch brings their changes; the
    resync does)."""
    out: dict[Ref, str] = {}
    for child in children:
        delegate = delegates.BY_KIND[child.kind]
        if delegate.related is None:
            continue
        for ref in delegate.related(child.manifest):
            target = delegates.BY_KIND.get(ref[0])
            if target is not None:
                out.setdefault(ref, target.api_version())
    return list(out.items())


@dataclass(frozen=True, kw_only=True)
class Decision:
    """What to do now, decided before anything is written."""

    plan: Plan
    held: Mapping[Key, ChildHealth]
    """Every desired child not written now, and why (its verdict in the status): the plan's
    held children and those the installed CRDs refuse."""
    observed: Mapping[Key, Observed]
    """The live children, each with its verdict."""
    uids: Mapping[Key, str | None]
    """The UID of each live object: the precondition of its deletion."""
    kept: tuple[tuple[InventoryItem, ChildHealth], ...] = ()
    """Owned children no longer desired that are not pruned, and why: their namespace is not
    served by this operator (`scope`). They stay in the inventory and count."""

    @property
    def apply(self) -> tuple[Child, ...]:
        """The children to write, in wave order."""
        return tuple(c for c in self.plan.apply if c.key not in self.held)

    @property
    def prune(self) -> tuple[InventoryItem, ...]:
        """The owned children no longer desired, to delete (Retain topics are not among them:
        they only leave the inventory), in the namespaces this operator serves."""
        kept = {item.key for item, _ in self.kept}
        return tuple(i for i in self.plan.prune if i.key not in kept)


def holding(
    plan: Plan,
    refused: Mapping[Key, ChildHealth],
    out_of_scope: Mapping[Key, ChildHealth] | None = None,
) -> dict[Key, ChildHealth]:
    """The verdicts of the children not written: the plan's held ones, and those the installed
    CRDs refuse (`crdcheck`), which win over every held reason but "not ours" and "not
    installed" (a child that waits for its topics is told at once that it will never be
    applied). A child in a namespace this operator does not serve (`out_of_scope`) wins over
    all: nothing there was read, so no other verdict about it stands."""
    held = {h.child.key: h.health for h in plan.held}
    keep = NOT_OURS | {REASON_DELEGATE_NOT_INSTALLED}
    for key, refusal in refused.items():
        if key not in held or held[key].reason not in keep:
            held[key] = refusal
    held.update(out_of_scope or {})
    return held


def decide(
    compiled: Compiled,
    live: Mapping[Key, Body],
    inventory: Sequence[InventoryItem],
    *,
    owner: str,
    installed: Collection[str],
    now: str,
    found: Sequence[Observed] = (),
    marks: Mapping[Key, str] | None = None,
    refused: Mapping[Key, ChildHealth] | None = None,
    related: Mapping[Ref, Body | None] | None = None,
    scope: Scope = CLUSTERWIDE,
) -> Decision:
    """The decision of one reconcile. `live`: the children that exist, by key (absent: not
    found); `inventory`: what status.children says federator owns; `owner`: the application's
    `<namespace>/<name>`; `installed`: the CRD names the cluster serves; `found`: this
    application's objects listed in the cluster (`lists_owned`); `marks`: what was recorded at
    each child's last spec-changing apply (`str`); `refused`: the children the
    installed CRDs refuse (`crdcheck.verdict`), by key; `scope`: the namespaces this operator
    serves: nothing outside them is applied or pruned, whatever else is observed."""
    marks = marks or {}
    app = compiled.app
    live = {key: body for key, body in live.items() if scope.serves(key[1])}
    found = [f for f in found if scope.serves(f.key[1])]
    observed = {
        key: Observed.from_body(
            body,
            verdict(
                key[0],
                body,
                mark=marks.get(key),
                suspended=app.suspend,
                now=now,
                related=related,
            ),
        )
        for key, body in live.items()
    }
    plan = make_plan(
        compiled.children,
        observed,
        inventory,
        owner=owner,
        installed=installed,
        deletion_policy=app.deletion_policy,
        external_topics={t.name for t in compiled.topology.topics if not t.managed},
        found=found,
    )
    out_of_scope = {
        c.key: refusal
        for c in compiled.children
        for refusal in [scope.refuse_write(c.kind, c.namespace, c.name)]
        if refusal is not None
    }
    desired = {c.key for c in compiled.children}
    kept = tuple(
        (item, refusal)
        for item in inventory
        if item.key not in desired
        for refusal in [scope.refuse_delete(item.kind, item.namespace, item.name)]
        if refusal is not None
    )
    return Decision(
        plan=plan,
        held=holding(plan, refused or {}, out_of_scope),
        observed=observed,
        uids={f.key: f.uid for f in found} | {k: o.uid for k, o in observed.items()},
        kept=kept,
    )


# -- report: after the writes


@dataclass(frozen=True, kw_only=True)
class Entry:
    """One entry of status.children (the shell spells it out: `operator.status.child_entry`)."""

    item: InventoryItem
    health: ChildHealth
    spec_hash: str | None = None
    owned: bool = True
    """False: reported, never claimed (another's object, one federator did not create, a
    `managed: false` topic): it stays out of the inventory, so it is never pruned or deleted."""


@dataclass(frozen=True, kw_only=True)
class Report:
    """What a reconcile reports: each child's verdict, the status entries, the roll-up."""

    reports: tuple[ChildReport, ...]
    entries: tuple[Entry, ...]
    app_health: health.AppHealth
    failures: tuple[str, ...] = ()
    """Writes that failed, for an Event: `Kind/name: message`."""
    retry: bool = False
    """One of them is transient: retry soon, with backoff."""
    refused: tuple[str, ...] = ()
    """The messages of the children the installed CRDs refuse, for an Event."""

    @property
    def inventory(self) -> tuple[InventoryItem, ...]:
        """What federator owns after this reconcile: the entries it claims."""
        return tuple(e.item for e in self.entries if e.owned)


def report(
    compiled: Compiled,
    decision: Decision,
    live: Mapping[Key, Body],
    *,
    now: str,
    failed: Mapping[Key, ChildHealth] | None = None,
    unpruned: Sequence[tuple[InventoryItem, ChildHealth]] = (),
    external: Sequence[tuple[InventoryItem, Body | None]] = (),
    marks: Mapping[Key, str] | None = None,
    related: Mapping[Ref, Body | None] | None = None,
) -> Report:
    """The verdicts once the plan was carried out. `live`: the children as they are now (what
    an apply returned replaces what was read); `failed`: the children whose write failed or
    was refused, with that verdict; `unpruned`: the deletions that failed (kept in the
    inventory, so they are tried again); `external`: the KafkaTopic of each unmanaged topic
    (`unmanaged_topics`) as read, None when absent; `marks`: the apply marks as they are after
    the writes (a spec-changing apply recorded one)."""
    failed = failed or {}
    marks = marks or {}
    suspended = compiled.app.suspend
    reports: list[ChildReport] = []
    entries: list[Entry] = []
    for child in compiled.children:
        judged = failed.get(child.key) or decision.held.get(child.key)
        if judged is None:
            judged = verdict(
                child.kind,
                live.get(child.key),
                mark=marks.get(child.key),
                suspended=suspended,
                now=now,
                related=related,
            )
        reports.append(
            ChildReport(
                kind=child.kind,
                name=child.name,
                health=judged,
                streamlet=child.streamlet,
                topic=child.topic,
            )
        )
        # Reported, never claimed: an object that is not ours stays out of the inventory.
        ours = judged.reason not in NOT_OURS
        entries.append(
            Entry(
                item=InventoryItem.from_child(child),
                health=judged,
                spec_hash=child.spec_hash if ours else None,
                owned=ours,
            )
        )
    for item, judged in (*unpruned, *decision.kept):
        reports.append(ChildReport(kind=item.kind, name=item.name, health=judged))
        entries.append(Entry(item=item, health=judged))
    for item, body in external:
        topic_report, entry = _external_topic(item, body)
        if topic_report is not None:
            reports.append(topic_report)
        entries.append(entry)
    broken = [(f"{k[0]}/{k[2]}", v) for k, v in failed.items() if v.reason not in NOT_OURS] + [
        (f"{i.kind}/{i.name}", v) for i, v in unpruned
    ]
    return Report(
        reports=tuple(reports),
        entries=tuple(entries),
        app_health=health.aggregate(reports, suspended=suspended),
        failures=tuple(f"{name}: {v.message}" for name, v in broken),
        retry=any(v.health is health.Health.PROGRESSING for _, v in broken),
        refused=tuple(v.message for v in decision.held.values() if v.reason == crdcheck.REASON),
    )


def _external_topic(item: InventoryItem, body: Body | None) -> tuple[ChildReport | None, Entry]:
    """A `managed: false` topic's KafkaTopic is reported and counts; without one federator
    cannot know the topic: the entry says so and it does not count (it counts as ready for the
    streamlets, as the plan has it)."""
    if body is None:
        unseen = ChildHealth(
            health=health.Health.UNKNOWN,
            reason=REASON_EXTERNAL_TOPIC_UNSEEN,
            message=f"topic {item.topic} is managed: false and there is no KafkaTopic "
            f"{item.namespace}/{item.name}: federator neither creates nor sees it (not "
            "counted in the application's health)",
        )
        return None, Entry(item=item, health=unseen, owned=False)
    judged = delegates.assess(item.kind, body)
    topic_report = ChildReport(kind=item.kind, name=item.name, health=judged, topic=item.topic)
    return topic_report, Entry(item=item, health=judged, owned=False)


def report_invalid(
    inventory: Sequence[InventoryItem],
    live: Mapping[Key, Body],
    *,
    installed: Collection[str],
    previous: Mapping[str, Any],
    problems: Sequence[str],
    suspended: bool,
    now: str,
) -> Report:
    """A spec that does not compile: nothing is applied, nothing deleted; the previous children
    keep running and each is reported (`inventory`: all of them, with what was listed when the
    previous status was summarised), with the spec hash the previous status gave it."""
    hashes = {
        (e.get("kind"), e.get("name")): e.get("specHash")
        for e in previous.get("children") or []
        if isinstance(e, Mapping)
    }
    reports = []
    entries = []
    for item in inventory:
        delegate = delegates.BY_KIND[item.kind]
        present = delegate.served(installed)
        judged = delegates.assess(
            item.kind,
            live.get(item.key) if present else None,
            suspended=suspended,
            now=now,
            delegate_installed=present,
        )
        reports.append(ChildReport(kind=item.kind, name=item.name, health=judged))
        entries.append(
            Entry(item=item, health=judged, spec_hash=hashes.get((item.kind, item.name)))
        )
    return Report(
        reports=tuple(reports),
        entries=tuple(entries),
        app_health=health.aggregate(reports, problems=problems, suspended=suspended),
    )
