"""Launch graphs: data in, node command lines out; bad arguments explained."""

from pathlib import Path

import pytest

from so100_common.errors import LaunchError
from so100_common.launch_graph import evaluate, find_graph, format_value, load_graph, parse_launch_args
from so100_common.ros_args import resolve_node_args

GRAPH = """
description: test graph
arguments:
  follower: {default: sim, choices: [sim, real], description: which follower}
  rate: {default: 30.0, description: rate}
  vr: {default: false, description: start the VR server}
nodes:
  - {package: so100_sim, executable: sim_bridge, name: sim_bridge, if: "$(arg follower) == sim",
     parameters: {rate: $(arg rate), label: "r=$(arg rate)"}, remappings: {joint_commands: /leader/joint_states}}
  - {package: so100_driver, executable: follower_arm, name: follower, unless: "$(arg follower) == sim", required: true}
  - {package: teleop_vr, executable: webxr_server, name: webxr, if: $(arg vr), respawn: true}
"""


@pytest.fixture
def graph(tmp_path: Path):
    p = tmp_path / "test.graph.yaml"
    p.write_text(GRAPH)
    return load_graph(p)


def test_defaults_and_conditions(graph):
    nodes = evaluate(graph, parse_launch_args([], graph))
    assert [n.name for n in nodes] == ["sim_bridge"]
    assert nodes[0].parameters == {"rate": 30.0, "label": "r=30.0"}
    nodes = evaluate(graph, parse_launch_args(["follower:=real", "vr:=true"], graph))
    assert [n.name for n in nodes] == ["follower", "webxr"]
    assert nodes[0].required and nodes[1].respawn


def test_command_line_round_trips_through_ros_args(graph):
    """What so100 launch passes is what the node parses back."""
    node = evaluate(graph, parse_launch_args(["rate:=50"], graph))[0]
    args, _ = resolve_node_args(node.command("/bin/sim_bridge")[1:], "whatever")
    assert args.name == "sim_bridge"
    assert args.params == {"rate": 50, "label": "r=50"}
    assert args.resolve("joint_commands") == "/leader/joint_states"


@pytest.mark.parametrize("value", ["30", "true", "a: b", "plain", "", "with space ", 3, 2.5, True, [1, 2], ["a"]])
def test_format_value_round_trips(value):
    from so100_common.ros_args import parse_value

    assert parse_value(format_value(value)) == value


def test_bad_arguments_list_the_valid_ones(graph):
    with pytest.raises(LaunchError, match="valid arguments: follower, rate, vr"):
        parse_launch_args(["folower:=sim"], graph)
    with pytest.raises(LaunchError, match="choose one of: sim, real"):
        parse_launch_args(["follower:=mars"], graph)
    with pytest.raises(LaunchError, match="name:=value"):
        parse_launch_args(["follower=sim"], graph)


def test_bad_graph_files(tmp_path):
    p = tmp_path / "bad.graph.yaml"
    p.write_text("nodes:\n  - {package: a, executable: b, colour: red}\n")
    with pytest.raises(LaunchError, match="unknown key"):
        load_graph(p)
    p.write_text("arguments: {}\nnodes:\n  - {package: a, executable: b, parameters: {x: $(arg missing)}}\n")
    with pytest.raises(LaunchError, match=r"\$\(arg missing\) is used but not declared"):
        evaluate(load_graph(p), {})
    with pytest.raises(LaunchError, match="available: .*demo"):
        find_graph("no_such_graph")


def test_repository_graphs_load_and_evaluate():
    """Every graph in launch/ parses and evaluates with its defaults."""
    for path in sorted((Path(__file__).resolve().parents[4] / "launch").glob("*.graph.yaml")):
        g = load_graph(path)
        assert evaluate(g, parse_launch_args([], g)), path
