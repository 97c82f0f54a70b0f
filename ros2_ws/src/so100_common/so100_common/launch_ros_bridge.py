"""Turn a launch graph (``*.graph.yaml``) into ``launch_ros`` actions for ``ros2 launch``.

The graph's arguments become ``DeclareLaunchArgument``s; the nodes are evaluated
by the same :func:`so100_common.launch_graph.evaluate` that ``so100 launch``
uses, inside an ``OpaqueFunction`` once the argument values are known. Strings
left with ROS launch substitutions (``$(find-pkg-share ...)``, ``$(command ...)``,
in ``ros_only`` nodes) go through launch's own frontend parser.
Only imported under a sourced ROS 2 (it needs ``launch`` and ``launch_ros``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import launch_ros.substitutions  # noqa: F401  (registers $(find-pkg-share ...) with the frontend parser)
from launch import LaunchContext, LaunchDescription
from launch.actions import DeclareLaunchArgument, EmitEvent, OpaqueFunction, RegisterEventHandler
from launch.event_handlers import OnProcessExit
from launch.events import Shutdown
from launch.frontend.parse_substitution import parse_substitution
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue

from so100_common.launch_graph import evaluate, format_value, load_graph, parse_launch_args


def _ros_subst(value: Any, *, parameter: bool = False) -> Any:
    """A string with ``$(...)`` as launch substitutions (a parameter stays a string, e.g. a URDF)."""
    if not (isinstance(value, str) and "$(" in value):
        return value
    subs = parse_substitution(value)
    return ParameterValue(subs, value_type=str) if parameter else subs


def _nodes(context: LaunchContext, graph_path: Path) -> list[Any]:
    graph = load_graph(graph_path)
    items = [f"{name}:={context.launch_configurations[name]}" for name in graph.arguments
             if name in context.launch_configurations]
    actions: list[Any] = []
    for spec in evaluate(graph, parse_launch_args(items, graph)):
        node = Node(
            package=spec.package,
            executable=spec.executable,
            name=spec.name,
            namespace=spec.namespace,
            parameters=[{k: _ros_subst(v, parameter=True) for k, v in spec.parameters.items()}]
            if spec.parameters else [],
            remappings=list(spec.remappings.items()),
            arguments=[_ros_subst(a) for a in spec.arguments],
            respawn=spec.respawn,
            respawn_delay=spec.respawn_delay,
            additional_env=spec.env or None,
            output="screen",
        )
        actions.append(node)
        if spec.required:
            actions.append(RegisterEventHandler(OnProcessExit(
                target_action=node, on_exit=[EmitEvent(event=Shutdown(reason=f"required node {spec.name} exited"))])))
    return actions


def launch_description(graph_path: str | Path) -> LaunchDescription:
    """The LaunchDescription of one graph file (call from ``generate_launch_description``)."""
    path = Path(graph_path)
    graph = load_graph(path)
    declared = [
        DeclareLaunchArgument(
            spec.name,
            default_value=format_value(spec.default),
            description=spec.description,
            choices=[format_value(c) for c in spec.choices] if spec.choices else None,
        )
        for spec in graph.arguments.values()
    ]
    return LaunchDescription([*declared, OpaqueFunction(function=_nodes, args=[path])])
