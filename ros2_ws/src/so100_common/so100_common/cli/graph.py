"""Read the ROS graph from rmw_zenoh liveliness tokens (for node/topic/service lists)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from so100_common.transport.zenoh_wire import Token


@dataclass
class GraphView:
    nodes: set[str] = field(default_factory=set)
    topics: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))  # name -> types
    publishers: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    subscribers: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    services: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    qos: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))


def build_view(tokens: list[Token]) -> GraphView:
    view = GraphView()
    for tok in tokens:
        if tok.kind == "NN":
            view.nodes.add(tok.node_fqn)
        elif tok.kind in ("MP", "MS"):
            view.topics[tok.topic].add(tok.typename)
            (view.publishers if tok.kind == "MP" else view.subscribers)[tok.topic] += 1
            view.qos[tok.topic].add(tok.qos)
        elif tok.kind == "SS":
            view.services[tok.topic].add(tok.typename)
    return view


def is_hidden(fqn: str) -> bool:
    """ROS hides names whose last token starts with an underscore."""
    return fqn.rsplit("/", 1)[-1].startswith("_")
