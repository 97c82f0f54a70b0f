"""Every node of every launch graph starts in ROS mode (real rclpy) with the command line ``ros2 launch`` gives it.

``launch_ros`` has no wheel, so the command is built here as ``launch_ros.actions.Node`` builds it
(``exe [arguments] --ros-args -r __node:=NAME -r __ns:=NS --params-file FILE -r FROM:=TO``, the
parameters in a temporary YAML file under the node's fully qualified name). The graph's nodes run
together, as under ``ros2 launch``, on emulated servo buses, the RealSense SDK's software device and a
video file. A plain rclpy peer then checks each node is in the ROS graph under its name and namespace
and that ``ros2 param get`` (the GetParameters service) returns the values the launch file set.
"""

from __future__ import annotations

import importlib.util
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from so100_common.launch_graph import NodeLaunch, evaluate, load_graph, parse_launch_args
from so100_common.testing import Proc, free_port, wait_for

pytestmark = [
    pytest.mark.rclpy,
    pytest.mark.skipif(importlib.util.find_spec("rclpy") is None,
                       reason="rclpy not importable: ./setup.sh --ros, then .venv-ros/bin/python -m pytest -m rclpy"),
]

ROOT = Path(__file__).resolve().parents[4]
LAUNCH = ROOT / "launch"
BIN = Path(sys.executable).parent


def launch_ros_command(node: NodeLaunch, tmp: Path) -> list[str]:
    """The command line launch_ros's Node action runs for ``node`` (launch_ros 0.26, ROS 2 Jazzy)."""
    namespace = "/" + node.namespace.strip("/")
    fqn = namespace.rstrip("/") + "/" + node.name
    cmd = [str(BIN / node.executable), *node.arguments, "--ros-args", "-r", f"__node:={node.name}",
           "-r", f"__ns:={namespace}"]
    if node.parameters:
        params = tmp / f"launch_params_{node.name}_{abs(hash(fqn))}"
        params.write_text(yaml.dump({fqn: {"ros__parameters": node.parameters}}, default_flow_style=False))
        cmd += ["--params-file", str(params)]
    for src, dst in node.remappings.items():
        cmd += ["-r", f"{src}:={dst}"]
    return cmd


def same(expected: Any, actual: Any) -> bool:
    if isinstance(expected, float) or isinstance(actual, float):
        return isinstance(actual, (int, float)) and math.isclose(float(expected), float(actual))
    if isinstance(expected, (list, tuple)):
        return len(expected) == len(actual) and all(same(e, a) for e, a in zip(expected, actual, strict=True))
    return expected == actual


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory):
    """Emulated leader and follower buses, a video file and an untrained checkpoint."""
    import cv2
    import numpy as np

    from act_policy.testing import make_tiny_checkpoint
    from so100_driver.testing import calibration, write_calibration

    tmp = tmp_path_factory.mktemp("launch_ros_mode")
    write_calibration(tmp, "teleoperators/so_leader", "lead", calibration())
    write_calibration(tmp, "robots/so_follower", "foll", calibration(shift=20))
    emulators = []
    for link, cal in (("lead", "teleoperators/so_leader/lead.json"), ("foll", "robots/so_follower/foll.json")):
        emulators.append(Proc([sys.executable, "-m", "so100_driver.emulator", "--calibration", str(tmp / cal),
                               "--link", str(tmp / link)], dict(os.environ)))
        wait_for((tmp / link).exists, 15, f"the emulator's link {tmp / link}")
    video = tmp / "camera.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 30, (160, 120))
    for i in range(10):
        writer.write(np.full((120, 160, 3), 20 * i, np.uint8))
    writer.release()
    checkpoint = make_tiny_checkpoint(tmp / "ckpt", ("overhead", "wrist"), 48, 64)
    yield {"tmp": tmp, "lead": tmp / "lead", "foll": tmp / "foll", "video": video, "checkpoint": checkpoint}
    for e in emulators:
        e.stop(timeout=5)


#: One choice of arguments per graph; together they start every node executable of launch/.
CASES = {
    "demo": lambda f: ["duration:=60.0"],
    "expert_sim": lambda f: ["width:=64", "height:=48", "camera_rate:=10.0"],
    "teleop_sim": lambda f: [f"leader_port:={f['lead']}", "leader_id:=lead", "vr:=true", f"vr_port:={free_port()}",
                             "record:=true", f"out_dir:={f['tmp'] / 'rec_teleop_sim'}", "width:=64", "height:=48"],
    "record": lambda f: ["source:=leader", "follower:=real", f"leader_port:={f['lead']}", "leader_id:=lead",
                         f"follower_port:={f['foll']}", "follower_id:=foll", f"out_dir:={f['tmp'] / 'rec_record'}"],
    "teleop_real": lambda f: [f"leader_port:={f['lead']}", "leader_id:=lead", f"follower_port:={f['foll']}",
                              "follower_id:=foll", "overhead_camera:=usb", f"overhead_device:={f['video']}",
                              "camera_source:=synthetic", "wrist_camera:=realsense"],
    "act_sim": lambda f: [f"checkpoint:={f['checkpoint']}", "width:=64", "height:=48", "device:=cpu"],
    "act_real": lambda f: [f"checkpoint:={f['checkpoint']}", f"follower_port:={f['foll']}", "follower_id:=foll",
                           "camera_source:=synthetic", "wrist_camera:=usb", f"wrist_device:={f['video']}",
                           "device:=cpu"],
}


def test_the_cases_cover_every_graph_and_executable():
    graphs = sorted(p.name.removesuffix(".graph.yaml") for p in LAUNCH.glob("*.graph.yaml"))
    assert sorted(CASES) == graphs
    named = {n["executable"] for g in graphs for n in load_graph(LAUNCH / f"{g}.graph.yaml").nodes
             if not n.get("ros_only")}
    dummy = {k: Path("/x") for k in ("tmp", "lead", "foll", "video", "checkpoint")}
    started = {n.executable for g, args in CASES.items()
               for n in evaluate(load_graph(LAUNCH / f"{g}.graph.yaml"),
                                 parse_launch_args(args(dummy), load_graph(LAUNCH / f"{g}.graph.yaml")))}
    assert named <= started, f"no case starts {sorted(named - started)}"


@pytest.fixture(scope="module")
def peer():
    import rclpy
    from rclpy.executors import SingleThreadedExecutor

    domain = 100 + os.getpid() % 100
    ctx = rclpy.Context()
    rclpy.init(context=ctx, domain_id=domain)
    node = rclpy.create_node("launch_check_peer", context=ctx)
    node.executor_ = SingleThreadedExecutor(context=ctx)
    node.executor_.add_node(node)
    yield node, domain
    node.executor_.shutdown()
    node.destroy_node()
    rclpy.shutdown(context=ctx)


def get_parameters(peer_node: Any, fqn: str, names: list[str]) -> dict[str, Any]:
    import rclpy
    from rcl_interfaces.srv import GetParameters
    from rclpy.parameter import parameter_value_to_python

    client = peer_node.create_client(GetParameters, f"{fqn}/get_parameters")
    try:
        assert client.wait_for_service(timeout_sec=20), f"{fqn}/get_parameters is not offered"
        future = client.call_async(GetParameters.Request(names=names))
        rclpy.spin_until_future_complete(peer_node, future, peer_node.executor_, timeout_sec=10)
        assert future.done(), f"{fqn}/get_parameters did not answer"
        return {n: parameter_value_to_python(v) for n, v in zip(names, future.result().values, strict=True)}
    finally:
        peer_node.destroy_client(client)


@pytest.mark.parametrize("graph_name", sorted(CASES))
def test_graph_nodes_start_under_rclpy_with_the_launch_files_arguments(graph_name, fixtures, peer, tmp_path):

    peer_node, domain = peer
    graph = load_graph(LAUNCH / f"{graph_name}.graph.yaml")
    nodes = [n for n in evaluate(graph, parse_launch_args(CASES[graph_name](fixtures), graph)) if not n.ros_only]
    env = dict(os.environ, SO100_TRANSPORT="rclpy", ROS_DOMAIN_ID=str(domain), RMW_IMPLEMENTATION="rmw_fastrtps_cpp",
               HF_LEROBOT_CALIBRATION=str(fixtures["tmp"]), PYTHONUNBUFFERED="1", MUJOCO_GL="osmesa")
    env.pop("ZENOH_CONFIG_OVERRIDE", None)
    procs = {n.name: Proc(launch_ros_command(n, tmp_path), env) for n in nodes}
    try:
        def report() -> str:
            return "".join(f"\n--- {name} (exit {p.popen.poll()}):\n{p.output[-3000:]}" for name, p in procs.items())

        expected = {("/" + n.namespace.strip("/")).rstrip("/") + "/" + n.name for n in nodes}

        def in_graph() -> bool:
            peer_node.executor_.spin_once(timeout_sec=0.1)
            seen = {ns.rstrip("/") + "/" + name for name, ns in peer_node.get_node_names_and_namespaces()}
            assert all(p.alive() for p in procs.values()), f"a node exited{report()}"
            return expected <= seen

        try:
            wait_for(in_graph, 90, f"{sorted(expected)} in the ROS graph")
        except AssertionError as e:
            raise AssertionError(f"{e}{report()}") from None
        for node in nodes:
            fqn = ("/" + node.namespace.strip("/")).rstrip("/") + "/" + node.name
            got = get_parameters(peer_node, fqn, list(node.parameters))
            for key, value in node.parameters.items():
                assert same(value, got[key]), f"{fqn}: parameter {key} is {got[key]!r}, the launch file set {value!r}"
        time.sleep(1.0)
        assert all(p.alive() for p in procs.values()), f"a node exited{report()}"
    finally:
        codes = {name: p.stop(timeout=15) for name, p in procs.items()}
    assert all(c == 0 for c in codes.values()), f"exit codes {codes}{report()}"


def test_ros_param_set_is_refused_as_read_only(peer, tmp_path):
    """The node reads its parameters once: ros2 param set is answered 'read-only', not silently ignored."""
    import rclpy
    from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
    from rcl_interfaces.srv import SetParameters

    peer_node, domain = peer
    env = dict(os.environ, SO100_TRANSPORT="rclpy", ROS_DOMAIN_ID=str(domain), RMW_IMPLEMENTATION="rmw_fastrtps_cpp")
    proc = Proc([str(BIN / "demo_talker"), "--ros-args", "-r", "__node:=param_talker", "-p", "rate:=5.0"], env)
    try:
        client = peer_node.create_client(SetParameters, "/param_talker/set_parameters")
        assert client.wait_for_service(timeout_sec=30), proc.output
        value = ParameterValue(type=ParameterType.PARAMETER_DOUBLE, double_value=50.0)
        future = client.call_async(SetParameters.Request(parameters=[Parameter(name="rate", value=value)]))
        rclpy.spin_until_future_complete(peer_node, future, peer_node.executor_, timeout_sec=10)
        result = future.result().results[0]
        assert not result.successful and "read-only" in result.reason, result
        assert get_parameters(peer_node, "/param_talker", ["rate"]) == {"rate": 5.0}
    finally:
        assert proc.stop(timeout=15) == 0, proc.output
