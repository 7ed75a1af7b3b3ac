"""The streamlets' order without networkx (topology.lexicographic_order) is networkx's.

Aspects: on hypothesis-generated graphs (DAGs, self-loops, cycles, repeated edges, nodes only
named by an edge) it is `networkx.lexicographical_topological_sort`, or None exactly where
networkx finds the graph unfeasible; building a valid topology does not import networkx, and
its graph is still networkx's, built when first read.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import networkx as nx
from hypothesis import given, settings
from hypothesis import strategies as st

from federator.core import topology

REPO = Path(__file__).resolve().parents[2]
NAMES = st.sampled_from([f"s{i}" for i in range(12)] + ["a", "b-1", "Z", "z"])


@settings(max_examples=400, deadline=None)
@given(st.lists(NAMES, max_size=10, unique=True), st.lists(st.tuples(NAMES, NAMES), max_size=25))
def test_the_order_is_networkxs(nodes: list[str], edges: list[tuple[str, str]]) -> None:
    graph = nx.DiGraph()
    graph.add_nodes_from(nodes)
    graph.add_edges_from(edges)
    try:
        expected: list[str] | None = list(nx.lexicographical_topological_sort(graph))
    except nx.NetworkXUnfeasible:
        expected = None
    assert topology.lexicographic_order(nodes, edges) == expected


@settings(max_examples=100, deadline=None)
@given(st.lists(NAMES, min_size=1, max_size=10, unique=True), st.data())
def test_an_acyclic_graph_is_always_ordered(nodes: list[str], data: st.DataObject) -> None:
    pairs = [(u, v) for i, u in enumerate(nodes) for v in nodes[i + 1 :]]
    edges = data.draw(st.lists(st.sampled_from(pairs), max_size=20)) if pairs else []
    order = topology.lexicographic_order(nodes, edges)
    assert order is not None and sorted(order) == sorted(nodes)
    assert all(order.index(u) < order.index(v) for u, v in edges)


def test_a_valid_compile_leaves_networkx_unimported_and_the_graph_is_built_on_read() -> None:
    code = (
        "import sys, yaml\n"
        "from federator.core import topology, model\n"
        "body = list(yaml.safe_load_all(open('examples/call-record-aggregator.yaml')))[0]\n"
        "topo, problems = topology.build(model.from_body(body))\n"
        "assert not problems, problems\n"
        "before = 'networkx' in sys.modules\n"
        "graph = topo.graph\n"
        "print(before, type(graph).__name__, graph.number_of_nodes() > len(topo.streamlets))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True
    )
    assert done.stdout.split() == ["False", "DiGraph", "True"]
