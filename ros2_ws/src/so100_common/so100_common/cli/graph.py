"""The ROS graph for node/topic/service lists: from rmw_zenoh liveliness tokens, or from rclpy's graph queries."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from so100_common.transport.zenoh_wire import Token, qos_from_keyexpr


@dataclass
class GraphView:
    nodes: set[str] = field(default_factory=set)
    topics: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))  # name -> types
    publishers: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    subscribers: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    services: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    latched: set[str] = field(default_factory=set)  # topics with a transient-local publisher


def build_view(tokens: list[Token]) -> GraphView:
    view = GraphView()
    for tok in tokens:
        if tok.kind == "NN":
            view.nodes.add(tok.node_fqn)
        elif tok.kind in ("MP", "MS"):
            view.topics[tok.topic].add(tok.typename)
            (view.publishers if tok.kind == "MP" else view.subscribers)[tok.topic] += 1
            if tok.kind == "MP" and qos_from_keyexpr(tok.qos).transient_local:
                view.latched.add(tok.topic)
        elif tok.kind == "SS":
            view.services[tok.topic].add(tok.typename)
    return view


def view_from_rclpy(snapshot: dict[str, Any]) -> GraphView:
    """A view of :meth:`so100_common.transport.rclpy_backend.RclpyBackend.graph_snapshot`."""
    view = GraphView(nodes=set(snapshot["nodes"]), latched=set(snapshot["latched"]))
    for topic, types in snapshot["topics"].items():
        view.topics[topic].update(types)
        view.publishers[topic] = snapshot["publishers"][topic]
        view.subscribers[topic] = snapshot["subscribers"][topic]
    for name, types in snapshot["services"].items():
        view.services[name].update(types)
    return view


def is_hidden(fqn: str) -> bool:
    """ROS hides names whose last token starts with an underscore."""
    return fqn.rsplit("/", 1)[-1].startswith("_")
