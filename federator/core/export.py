"""Text views of a topology: Mermaid, Graphviz dot and plain text (for `federator graph`)."""

from __future__ import annotations

import json

from federator.core.model import PortRef
from federator.core.topology import Topology


def _label(text: str) -> str:
    return json.dumps(text)  # quoted, escaped: names never break the diagram syntax


def mermaid(topo: Topology) -> str:
    lines = ["flowchart LR"]
    ids: dict[str, str] = {}
    for n, s in enumerate(topo.streamlets):
        ids[f"s/{s.name}"] = f"s{n}"
        lines.append(f'  s{n}(["{s.name} ({s.runtime.value})"])')
    for n, t in enumerate(topo.topics):
        ids[f"t/{t.name}"] = f"t{n}"
        suffix = "" if t.managed else " (external)"
        lines.append(f'  t{n}[("{t.name}{suffix}")]')
    for t in topo.topics:
        for p in t.producers:
            lines.append(f"  {ids['s/' + p.streamlet]} -- {p.port} --> {ids['t/' + t.name]}")
        for c in t.consumers:
            lines.append(f"  {ids['t/' + t.name]} -- {c.port} --> {ids['s/' + c.streamlet]}")
    return "\n".join(lines) + "\n"


def dot(topo: Topology) -> str:
    lines = [f"digraph {_label(topo.app.name)} {{", "  rankdir=LR;"]
    for s in topo.streamlets:
        label = _label(f"{s.name} ({s.runtime.value})")
        lines.append(
            f"  {_label('streamlet/' + s.name)} [label={label}, shape=box, style=rounded];"
        )
    for t in topo.topics:
        style = "" if t.managed else ", style=dashed"
        lines.append(
            f"  {_label('topic/' + t.name)} [label={_label(t.name)}, shape=cylinder{style}];"
        )
    for t in topo.topics:
        for p in t.producers:
            lines.append(
                f"  {_label('streamlet/' + p.streamlet)} -> {_label('topic/' + t.name)}"
                f" [label={_label(p.port)}];"
            )
        for c in t.consumers:
            lines.append(
                f"  {_label('topic/' + t.name)} -> {_label('streamlet/' + c.streamlet)}"
                f" [label={_label(c.port)}];"
            )
    lines.append("}")
    return "\n".join(lines) + "\n"


def text(topo: Topology) -> str:
    lines = [f"application {topo.app.namespace}/{topo.app.name}"]
    for s in topo.streamlets:
        lines.append(f"  {s.name} ({s.runtime.value})")
        for port in s.inlets:
            topic = topo.inlet_topics.get(PortRef(streamlet=s.name, port=port), "?")
            lines.append(f"    <- {port:<12} {topic}")
        for port in s.outlets:
            topic = topo.outlet_topics.get(PortRef(streamlet=s.name, port=port), "?")
            lines.append(f"    -> {port:<12} {topic}")
    return "\n".join(lines) + "\n"
