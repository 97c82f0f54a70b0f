"""The launch/ graphs as ros2 launch sees them: launch files built from their graph, RViz only in ROS mode."""

import ast
import importlib.util
import re
from pathlib import Path

import pytest

from so100_common.errors import LaunchError
from so100_common.launch_graph import evaluate, load_graph, parse_launch_args, split_ros_only

ROOT = Path(__file__).resolve().parents[4]
LAUNCH = ROOT / "launch"
GRAPHS = sorted(p.name.removesuffix(".graph.yaml") for p in LAUNCH.glob("*.graph.yaml"))
ROS_GRAPHS = [g for g in GRAPHS if g != "demo"]  # every graph but the transport demo drives an arm
HAS_LAUNCH_ROS = importlib.util.find_spec("launch_ros") is not None


def _graph(name: str):
    return load_graph(LAUNCH / f"{name}.graph.yaml")


def _nodes(name: str, *items: str):
    g = _graph(name)
    return evaluate(g, parse_launch_args(list(items), g))


def _console_scripts(package: str) -> set[str]:
    text = (ROOT / "ros2_ws" / "src" / package / "setup.py").read_text()
    return set(re.findall(r"""["']\s*([A-Za-z0-9_\-]+)\s*=\s*[\w.]+:\w+\s*["']""", text))


@pytest.mark.parametrize("name", GRAPHS)
def test_launch_file_is_built_from_its_graph(name):
    """<name>.launch.py calls launch_description() on <name>.graph.yaml next to it (nothing defined twice)."""
    tree = ast.parse((LAUNCH / f"{name}.launch.py").read_text())
    funcs = {f.name: f for f in tree.body if isinstance(f, ast.FunctionDef)}
    assert "generate_launch_description" in funcs
    calls = [c for c in ast.walk(funcs["generate_launch_description"]) if isinstance(c, ast.Call)]
    assert any(isinstance(c.func, ast.Name) and c.func.id == "launch_description" for c in calls)
    assert [c.value for c in ast.walk(funcs["generate_launch_description"])
            if isinstance(c, ast.Constant) and isinstance(c.value, str)] == [f"{name}.graph.yaml"]
    assert not any(isinstance(n, ast.ImportFrom) and n.module == "launch_ros.actions" for n in tree.body)


@pytest.mark.parametrize("name", GRAPHS)
def test_every_executable_is_a_console_script_or_a_ros_program(name):
    """Standalone nodes name a console script of their package; ros_only ones are ROS 2 programs."""
    g = _graph(name)
    for raw in g.nodes:
        if raw.get("ros_only"):
            assert raw["package"] in ("rviz2", "robot_state_publisher"), raw
        else:
            assert raw["executable"] in _console_scripts(raw["package"]), raw


@pytest.mark.parametrize("name", GRAPHS)
def test_wrong_argument_lists_every_valid_one(name):
    g = _graph(name)
    with pytest.raises(LaunchError, match="valid arguments: " + re.escape(", ".join(sorted(g.arguments)))):
        parse_launch_args(["no_such_argument:=1"], g)


@pytest.mark.parametrize("name", ROS_GRAPHS)
def test_rviz_starts_only_in_ros_mode(name):
    """rviz:=true adds RViz (and robot_state_publisher for a real follower) as ros_only nodes."""
    default = _nodes(name)
    assert not any(n.ros_only for n in default)
    names = {n.name for n in default}
    real = "follower_arm" in names
    with_rviz = _nodes(name, "rviz:=true")
    standalone, ros_only = split_ros_only(with_rviz)
    assert [n.name for n in standalone] == [n.name for n in default]
    assert {n.name for n in ros_only} == ({"rviz2", "robot_state_publisher"} if real else {"rviz2"})
    rviz = next(n for n in ros_only if n.name == "rviz2")
    pkg_share, config = rviz.arguments[1].split("/", 1)
    assert rviz.arguments[0] == "-d" and pkg_share == "$(find-pkg-share so100_sim)"
    assert (ROOT / "ros2_ws" / "src" / "so100_sim" / config).is_file()
    assert f'"{config}"' in (ROOT / "ros2_ws" / "src" / "so100_sim" / "setup.py").read_text()  # installed
    if real:
        rsp = next(n for n in ros_only if n.name == "robot_state_publisher")
        assert rsp.remappings == {"joint_states": "/follower/joint_states"}
        command = re.fullmatch(r"\$\(command 'ros2 run (\w+) (\w+)'\)", rsp.parameters["robot_description"])
        assert command and command.group(2) in _console_scripts(command.group(1))


def test_record_graph_sources_and_followers():
    """record: each source drives /follower/joint_commands; rviz follows the follower choice."""
    nodes = {n.name: n for n in _nodes("record", "source:=vr", "vr_port:=9000")}
    assert set(nodes) == {"sim_bridge", "webxr_server", "recorder"}
    assert nodes["webxr_server"].remappings == {"/leader/joint_states": "/follower/joint_commands"}
    assert nodes["webxr_server"].parameters == {"lan": False, "port": 9000, "host": ""}
    assert nodes["recorder"].parameters["source"] == "vr"
    nodes = {n.name for n in _nodes("record", "source:=leader", "follower:=real", "rviz:=true")}
    assert nodes == {"follower_arm", "leader_arm", "recorder", "robot_state_publisher", "rviz2"}
    with pytest.raises(LaunchError, match="choose one of: expert, leader, vr"):
        _nodes("record", "source:=keyboard")


@pytest.mark.rclpy
@pytest.mark.skipif(not HAS_LAUNCH_ROS, reason="launch_ros not importable: source ROS 2 Jazzy to run this test")
@pytest.mark.parametrize("name", GRAPHS)
def test_launch_file_yields_the_graphs_nodes(name):
    """Under ROS 2, the launch file's actions are the graph's nodes (rviz:=true included)."""
    from launch import LaunchContext
    from launch.actions import DeclareLaunchArgument, OpaqueFunction
    from launch_ros.actions import Node

    spec = importlib.util.spec_from_file_location(f"{name}_launch", LAUNCH / f"{name}.launch.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    extra = ["rviz:=true"] if name in ROS_GRAPHS else []
    context = LaunchContext()
    for item in extra:
        key, value = item.split(":=")
        context.launch_configurations[key] = value
    actions = []
    for entity in module.generate_launch_description().entities:
        if isinstance(entity, DeclareLaunchArgument):
            entity.visit(context)
        elif isinstance(entity, OpaqueFunction):
            actions += entity.visit(context) or []
    launched = sorted((a.node_package, a.node_executable) for a in actions if isinstance(a, Node))
    assert launched == sorted((n.package, n.executable) for n in _nodes(name, *extra))


@pytest.mark.parametrize("name", ["teleop_real", "act_real"])
def test_real_graphs_choose_each_cameras_source(name):
    """<camera>_camera:=realsense|usb|none; usb runs usb_camera on <camera>_device, the contract topics."""
    default = {(n.namespace, n.executable) for n in _nodes(name) if n.namespace.startswith("/cameras/")}
    wrist_default = {("/cameras/wrist", "realsense_camera")} if name == "act_real" else set()
    assert default == {("/cameras/overhead", "realsense_camera")} | wrist_default  # as before the choice existed
    nodes = _nodes(name, "wrist_camera:=usb", "wrist_device:=/dev/video4", "overhead_camera:=none", "usb_fps:=15")
    cams = [n for n in nodes if n.namespace.startswith("/cameras/")]
    assert [(n.namespace, n.executable) for n in cams] == [("/cameras/wrist", "usb_camera")]
    assert cams[0].parameters == {"name": "wrist", "device": "/dev/video4", "width": 640, "height": 480, "fps": 15}
    assert "-p" in cams[0].ros_args() and "device:=/dev/video4" in cams[0].ros_args()
    both = {(n.namespace, n.executable) for n in _nodes(name, "overhead_camera:=usb", "wrist_camera:=realsense")}
    assert {("/cameras/overhead", "usb_camera"), ("/cameras/wrist", "realsense_camera")} <= both
    with pytest.raises(LaunchError, match="choose one of: realsense, usb, none"):
        _nodes(name, "wrist_camera:=webcam")


VARIANTS = {"record": [["source:=leader"], ["source:=vr"], ["follower:=real"]], "teleop_sim": [["vr:=true"]],
            "teleop_real": [["overhead_camera:=usb", "wrist_camera:=usb"], ["record:=true"]]}


@pytest.mark.parametrize("name", GRAPHS)
def test_every_parameter_a_graph_sets_is_one_its_node_declares(name, tmp_path):
    """The graph's parameters, under each choice of its arguments, are declared by the node (its --help lists them):
    a misspelt one would be silently ignored by ros2 launch."""
    import subprocess
    import sys

    bin_dir = Path(sys.executable).parent
    declared: dict[str, set[str]] = {}
    base = ["checkpoint:=x"] if name.startswith("act_") else []
    for extra in [[], *VARIANTS.get(name, [])]:
        for node in evaluate(_graph(name), parse_launch_args([*base, *extra], _graph(name))):
            if node.ros_only:
                continue
            if node.executable not in declared:
                out = subprocess.run([str(bin_dir / node.executable), "--help"], capture_output=True, text=True,
                                     timeout=60, env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
                assert out.returncode == 0, out.stderr[-2000:]
                declared[node.executable] = set(re.findall(r"^  ([\w.]+) \(", out.stdout, re.M))
            unknown = set(node.parameters) - declared[node.executable]
            assert not unknown, f"{name}: {node.executable} declares no {sorted(unknown)}"
