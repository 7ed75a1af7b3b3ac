"""The application's topology on networkx: streamlets, their ports, and the topics between them.

Binding ports to topics is where most semantic problems show up (unknown names, a port bound
twice, an unconnected inlet, a cycle), so `build` returns the topology AND every problem it met;
it never stops at the first one. The graph it returns is immutable in spirit: callers read it.

Compiling needs only the streamlets' order, which a heap gives directly; networkx (0.08 s to
import, a tenth of `federator compile`) is imported when the graph is first read or a cycle
must be reported, and stays the library of both.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from heapq import heapify, heappop, heappush
from typing import TYPE_CHECKING

from federator.core.compat import Endpoint, incompatibilities, parse_check
from federator.core.model import Application, Located, PortRef, Streamlet
from federator.core.problems import Code, Problem, suggest

if TYPE_CHECKING:
    import networkx as nx

TOPIC_NAME = re.compile(r"^[a-zA-Z0-9._-]{1,249}$")

StreamletNode = tuple[str, str]  # ("streamlet", name)
PortNode = tuple[str, str, str]  # ("inlet" | "outlet", streamlet, port)
TopicNode = tuple[str, str]  # ("topic", kafka name)


def streamlet_node(name: str) -> StreamletNode:
    return ("streamlet", name)


def topic_node(name: str) -> TopicNode:
    return ("topic", name)


@dataclass(frozen=True, kw_only=True)
class Topic:
    """A resolved Kafka topic: explicit, or the implicit topic of an outlet."""

    name: str
    partitions: int | None
    replicas: int | None
    config: Mapping[str, str]
    managed: bool
    producers: tuple[PortRef, ...]
    consumers: tuple[PortRef, ...]
    implicit: bool
    path: str


@dataclass(frozen=True, kw_only=True)
class Topology:
    app: Application
    topics: tuple[Topic, ...]
    """Every topic, sorted by name."""
    streamlets: tuple[Streamlet, ...]
    """Streamlets in deterministic topological order (upstream first, ties by name)."""
    inlet_topics: Mapping[PortRef, str] = field(default_factory=dict)
    outlet_topics: Mapping[PortRef, str] = field(default_factory=dict)

    @cached_property
    def graph(self) -> nx.DiGraph:
        """Streamlets, ports and topics as a networkx graph, built when first read."""
        first: dict[str, Streamlet] = {}
        for s in self.app.streamlets:
            first.setdefault(s.name, s)
        return _graph(first, self.topics)

    def topic(self, name: str) -> Topic:
        return next(t for t in self.topics if t.name == name)

    def topics_of(self, streamlet: str) -> tuple[str, ...]:
        """The topics a streamlet reads or writes: it waits for them before it is applied."""
        return self._topics_by_streamlet.get(streamlet, ())

    @cached_property
    def _topics_by_streamlet(self) -> Mapping[str, tuple[str, ...]]:
        # One pass over every port, not one per streamlet: rendering asks for each streamlet.
        names: dict[str, set[str]] = {}
        for table in (self.inlet_topics, self.outlet_topics):
            for ref, topic in table.items():
                names.setdefault(ref.streamlet, set()).add(topic)
        return {streamlet: tuple(sorted(topics)) for streamlet, topics in names.items()}


def implicit_topic_name(app: str, streamlet: str, outlet: str) -> str:
    """The seed's naming: `call-record-aggregator.merge.out`."""
    return f"{app}.{streamlet}.{outlet}"


def _kafka_collision_key(name: str) -> str:
    # Kafka refuses topics that differ only by '.' vs '_' (they share metric names).
    return name.replace(".", "_")


class _Binder:
    """Collects port -> topic bindings and the problems met while making them."""

    def __init__(self, app: Application) -> None:
        self.app = app
        self.problems: list[Problem] = []
        self.by_name: dict[str, Streamlet] = {}
        self.inlets: dict[PortRef, tuple[str, str]] = {}  # ref -> (topic, path)
        self.outlets: dict[PortRef, tuple[str, str]] = {}
        self.excused: set[PortRef] = set()
        """Inlets fed by an unreadable streamlet: not reported again as unconnected."""

    def add(self, path: str, code: Code, message: str) -> None:
        self.problems.append(Problem(path=path, code=code, message=message))

    def index_streamlets(self) -> None:
        for s in self.app.streamlets:
            if s.name in self.by_name:
                first = self.by_name[s.name]
                self.add(
                    f"{s.path}.name",
                    Code.DUPLICATE_STREAMLET,
                    f"streamlet name {s.name!r} is already used by {first.path}",
                )
                continue
            self.by_name[s.name] = s
            seen: dict[str, str] = {}
            for kind, ports in (("inlets", s.inlets), ("outlets", s.outlets)):
                for i, port in enumerate(ports):
                    if port in seen:
                        self.add(
                            f"{s.path}.{kind}[{i}]",
                            Code.DUPLICATE_PORT,
                            f"port {port!r} is declared twice on streamlet {s.name!r} "
                            f"(already in {seen[port]})",
                        )
                    seen[port] = kind

    def resolve(self, located: Located, want_outlet: bool) -> bool:
        """Is this reference an existing port of the wanted direction? Reports why not."""
        ref = located.ref
        streamlet = self.by_name.get(ref.streamlet)
        if streamlet is None and ref.streamlet in self.app.unreadable_streamlets:
            return False  # the streamlet's own problems are reported where it is declared
        if streamlet is None:
            self.add(
                located.path,
                Code.UNKNOWN_STREAMLET,
                f"unknown streamlet {ref.streamlet!r} in {str(ref)!r}"
                + suggest(ref.streamlet, self.by_name),
            )
            return False
        ports = (*streamlet.inlets, *streamlet.outlets)
        if ref.port not in ports:
            wanted = streamlet.outlets if want_outlet else streamlet.inlets
            self.add(
                located.path,
                Code.UNKNOWN_PORT,
                f"streamlet {ref.streamlet!r} has no port {ref.port!r}"
                + suggest(ref.port, wanted or ports),
            )
            return False
        if want_outlet and ref.port not in streamlet.outlets:
            self.add(
                located.path,
                Code.NOT_AN_OUTLET,
                f"{ref} is an inlet; only outlets can produce to a topic"
                + (
                    f" (outlets of {ref.streamlet}: {', '.join(streamlet.outlets)})"
                    if streamlet.outlets
                    else ""
                ),
            )
            return False
        if not want_outlet and ref.port not in streamlet.inlets:
            self.add(
                located.path,
                Code.NOT_AN_INLET,
                f"{ref} is an outlet; only inlets can consume from a topic"
                + (
                    f" (inlets of {ref.streamlet}: {', '.join(streamlet.inlets)})"
                    if streamlet.inlets
                    else ""
                ),
            )
            return False
        return True

    def bind(self, located: Located, topic: str, outlet: bool) -> None:
        table = self.outlets if outlet else self.inlets
        previous = table.get(located.ref)
        if previous is not None and previous[0] != topic:
            self.add(
                located.path,
                Code.PORT_BOUND_TWICE,
                f"{located.ref} is already bound to topic {previous[0]!r} at {previous[1]}; "
                f"a port reads or writes exactly one topic",
            )
            return
        if previous is None:
            table[located.ref] = (topic, located.path)


def build(app: Application, topic_prefix: str = "") -> tuple[Topology, list[Problem]]:
    """Bind every port to its topic and build the graph; returns all problems found.
    `topic_prefix` starts every implicit topic name (the Kafka cluster's naming policy)."""
    b = _Binder(app)
    b.index_streamlets()

    explicit: dict[str, list[Located]] = {}
    topics_by_name: dict[str, Topic] = {}
    for spec in app.topics:
        if spec.name in topics_by_name:
            b.add(
                f"{spec.path}.name",
                Code.DUPLICATE_TOPIC,
                f"topic {spec.name!r} is declared twice (also at {topics_by_name[spec.name].path})",
            )
            continue
        if not spec.managed and (spec.partitions or spec.replicas or spec.config):
            b.add(
                spec.path,
                Code.UNMANAGED_TOPIC_SETTINGS,
                f"topic {spec.name!r} has managed: false, so federator creates no KafkaTopic; "
                "remove partitions, replicas and config or set managed: true",
            )
        producers = [p for p in spec.producers if b.resolve(p, want_outlet=True)]
        consumers = [c for c in spec.consumers if b.resolve(c, want_outlet=False)]
        for p in producers:
            b.bind(p, spec.name, outlet=True)
        for c in consumers:
            b.bind(c, spec.name, outlet=False)
        explicit[spec.name] = producers
        topics_by_name[spec.name] = Topic(
            name=spec.name,
            partitions=spec.partitions,
            replicas=spec.replicas,
            config=spec.config,
            managed=spec.managed,
            producers=(),
            consumers=(),
            implicit=False,
            path=spec.path,
        )

    # Every outlet without an explicit topic writes its implicit topic.
    for s in b.by_name.values():
        for i, outlet in enumerate(s.outlets):
            ref = PortRef(streamlet=s.name, port=outlet)
            if ref in b.outlets:
                continue
            name = topic_prefix + implicit_topic_name(app.name, s.name, outlet)
            path = f"{s.path}.outlets[{i}]"
            b.outlets[ref] = (name, path)
            if name in topics_by_name:
                b.add(
                    path,
                    Code.DUPLICATE_TOPIC,
                    f"the implicit topic {name!r} of outlet {ref} has the same name as the "
                    f"explicit topic at {topics_by_name[name].path}; list {ref} as its producer "
                    "or rename the topic",
                )
                continue
            topics_by_name[name] = Topic(
                name=name,
                partitions=None,
                replicas=None,
                config={},
                managed=True,
                producers=(),
                consumers=(),
                implicit=True,
                path=path,
            )

    for conn in app.connections:
        source_ok = b.resolve(conn.source, want_outlet=True)
        topic = b.outlets[conn.source.ref][0] if source_ok else None
        if conn.source.ref.streamlet in app.unreadable_streamlets:
            b.excused.update(t.ref for t in conn.targets)
        for target in conn.targets:
            # Targets are checked even when the source is wrong: every problem, one pass.
            if b.resolve(target, want_outlet=False) and topic is not None:
                b.bind(target, topic, outlet=False)

    for s in b.by_name.values():
        for i, inlet in enumerate(s.inlets):
            ref = PortRef(streamlet=s.name, port=inlet)
            if ref not in b.inlets and ref not in b.excused:
                b.add(
                    f"{s.path}.inlets[{i}]",
                    Code.UNCONNECTED_INLET,
                    f"inlet {ref} reads no topic: add a connection "
                    f"`{{from: <streamlet>.<outlet>, to: [{ref}]}}` or list it as a consumer "
                    "of a topic",
                )

    _check_topic_names(app, topics_by_name.values(), b)

    inlet_topics = {ref: t for ref, (t, _) in b.inlets.items()}
    outlet_topics = {ref: t for ref, (t, _) in b.outlets.items()}
    topics = _with_endpoints(app, topics_by_name, inlet_topics, outlet_topics)
    _check_schemas(topics, b)
    order = _order(b, topics)
    return (
        Topology(
            app=app,
            topics=topics,
            streamlets=tuple(b.by_name[n] for n in order),
            inlet_topics=inlet_topics,
            outlet_topics=outlet_topics,
        ),
        b.problems,
    )


def _check_topic_names(app: Application, topics: Iterable[Topic], b: _Binder) -> None:
    seen: dict[str, Topic] = {}
    for topic in sorted(topics, key=lambda t: t.name):
        where = topic.path if topic.implicit else f"{topic.path}.name"
        if not TOPIC_NAME.match(topic.name) or topic.name in (".", ".."):
            detail = (
                f"the implicit topic of this outlet, {topic.name!r}, "
                if topic.implicit
                else f"topic name {topic.name!r} "
            )
            b.add(
                where,
                Code.INVALID_TOPIC_NAME,
                detail + "is not a valid Kafka topic name (1-249 characters of "
                "[a-zA-Z0-9._-], not '.' or '..')"
                + (
                    "; shorten the application, streamlet or outlet name, or declare an "
                    "explicit topic"
                    if topic.implicit
                    else ""
                ),
            )
        key = _kafka_collision_key(topic.name)
        if key in seen and seen[key].name != topic.name:
            b.add(
                where,
                Code.DUPLICATE_TOPIC,
                f"topic {topic.name!r} collides with {seen[key].name!r}: Kafka treats '.' and "
                "'_' as the same in topic names",
            )
        seen.setdefault(key, topic)


def _with_endpoints(
    app: Application,
    topics: Mapping[str, Topic],
    inlets: Mapping[PortRef, str],
    outlets: Mapping[PortRef, str],
) -> tuple[Topic, ...]:
    producers: dict[str, list[PortRef]] = {}
    consumers: dict[str, list[PortRef]] = {}
    for ref, topic_name in outlets.items():
        producers.setdefault(topic_name, []).append(ref)
    for ref, topic_name in inlets.items():
        consumers.setdefault(topic_name, []).append(ref)
    d = app.topic_defaults
    out = []
    for name in sorted(topics):
        t = topics[name]
        out.append(
            Topic(
                name=t.name,
                partitions=t.partitions if t.partitions is not None else d.partitions,
                replicas=t.replicas if t.replicas is not None else d.replicas,
                config={**d.config, **t.config},
                managed=t.managed,
                producers=tuple(sorted(producers.get(name, ()))),
                consumers=tuple(sorted(consumers.get(name, ()))),
                implicit=t.implicit,
                path=t.path,
            )
        )
    return tuple(out)


def _check_schemas(topics: Iterable[Topic], b: _Binder) -> None:
    for s in b.by_name.values():
        for port, declared in sorted(s.schemas.items()):
            reason = parse_check(declared)
            if reason:
                b.add(f"{s.path}.schemas.{port}.definition", Code.INVALID_PORT_SCHEMA, reason)
    for topic in topics:
        endpoints = []
        for refs, writes in ((topic.producers, True), (topic.consumers, False)):
            for ref in refs:
                schema = b.by_name[ref.streamlet].schemas.get(ref.port)
                if schema is not None:
                    endpoints.append(
                        Endpoint(
                            port=str(ref),
                            schema=schema,
                            path=f"{b.by_name[ref.streamlet].path}.schemas.{ref.port}",
                            writes=writes,
                        )
                    )
        for endpoint, reason in incompatibilities(endpoints):
            b.add(endpoint.path, Code.SCHEMA_MISMATCH, f"topic {topic.name!r}: {reason}")


def _graph(streamlets: Mapping[str, Streamlet], topics: Iterable[Topic]) -> nx.DiGraph:
    import networkx as nx

    graph = nx.DiGraph()
    for s in streamlets.values():
        graph.add_node(streamlet_node(s.name), kind="streamlet", runtime=s.runtime.value)
    for t in topics:
        graph.add_node(topic_node(t.name), kind="topic", managed=t.managed)
        for ref in t.producers:
            port = ("outlet", ref.streamlet, ref.port)
            graph.add_node(port, kind="outlet")
            graph.add_edge(streamlet_node(ref.streamlet), port)
            graph.add_edge(port, topic_node(t.name))
        for ref in t.consumers:
            port = ("inlet", ref.streamlet, ref.port)
            graph.add_node(port, kind="inlet")
            graph.add_edge(topic_node(t.name), port)
            graph.add_edge(port, streamlet_node(ref.streamlet))
    return graph


def _order(b: _Binder, topics: Iterable[Topic]) -> list[str]:
    """Streamlets upstream-first; on a cycle, report each cyclic component as a path."""
    order = lexicographic_order(
        b.by_name,
        ((p.streamlet, c.streamlet) for t in topics for p in t.producers for c in t.consumers),
    )
    if order is not None:
        return order
    import networkx as nx

    flow = nx.DiGraph()
    flow.add_nodes_from(b.by_name)
    for t in topics:
        for p in t.producers:
            for c in t.consumers:
                flow.add_edge(p.streamlet, c.streamlet, topic=t.name)
    for component in sorted(nx.strongly_connected_components(flow), key=min):
        if len(component) == 1 and not flow.has_edge(*(2 * tuple(component))):
            continue
        cycle = nx.find_cycle(flow.subgraph(component), source=min(component))
        steps = [cycle[0][0]]
        for u, v in cycle:
            steps += [flow.edges[u, v]["topic"], v]
        first = b.by_name[cycle[0][0]]
        b.add(first.path, Code.CYCLE, "the topology has a cycle: " + " -> ".join(steps))
    return sorted(b.by_name)


def lexicographic_order(nodes: Iterable[str], edges: Iterable[tuple[str, str]]) -> list[str] | None:
    """networkx's `lexicographical_topological_sort` of the graph (the smallest name among the
    nodes whose predecessors are all placed comes next), or None when it has a cycle."""
    successors: dict[str, set[str]] = {n: set() for n in nodes}
    for u, v in edges:
        successors.setdefault(u, set()).add(v)
        successors.setdefault(v, set())
    indegree = dict.fromkeys(successors, 0)
    for targets in successors.values():
        for v in targets:
            indegree[v] += 1
    ready = [n for n, d in indegree.items() if d == 0]
    heapify(ready)
    order: list[str] = []
    while ready:
        node = heappop(ready)
        order.append(node)
        for v in successors[node]:
            indegree[v] -= 1
            if indegree[v] == 0:
                heappush(ready, v)
    return order if len(order) == len(indegree) else None
