"""ROS mode: the same node code over rclpy (runs only where ROS 2 Jazzy is sourced)."""

import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytestmark = [
    pytest.mark.rclpy,
    pytest.mark.skipif(importlib.util.find_spec("rclpy") is None,
                       reason="rclpy not importable: source ROS 2 Jazzy to run the ROS-mode tests"),
]
RELAY = str(Path(__file__).parent / "nodes" / "relay_node.py")


@pytest.fixture
def rclpy_env(monkeypatch):
    monkeypatch.setenv("SO100_TRANSPORT", "rclpy")
    monkeypatch.setenv("ROS_DOMAIN_ID", str(100 + os.getpid() % 100))
    from so100_common import transport

    transport.shutdown_backend()
    yield dict(os.environ)
    transport.shutdown_backend()


def test_pubsub_and_services_through_rclpy(rclpy_env):
    from so100_common import messages, names
    from so100_common.node import Node
    from so100_common.qos import LATCHED, QoS

    relay = subprocess.Popen([sys.executable, RELAY, "--ros-args", "-r", "__ns:=/r"], env=rclpy_env)
    try:
        node = Node("rclpy_tester", argv=[])
        assert node.transport == "rclpy"
        got, latched = [], []
        node.create_subscription(messages.JointState, "/r/out/joint_states", got.append, QoS(depth=20))
        node.create_subscription(messages.String, "/r/latched", latched.append, LATCHED)
        pub = node.create_publisher(messages.JointState, "/r/in/joint_states", QoS(depth=20))
        node.create_timer(0.05, lambda: pub.publish(messages.joint_state(names.JOINT_NAMES, np.ones(6))))
        node.spin(until=lambda: got and latched, timeout=30)
        assert got and np.allclose(got[-1].position, 1.0) and latched[0].data == "hello from /r/relay"
        client = node.create_client("std_srvs/srv/Trigger", "/r/relay/trigger")
        assert client.wait_for_service(10)
        assert client.call(timeout=10).message == "call 1"
        node.destroy()
    finally:
        relay.terminate()
        relay.wait(10)
        time.sleep(0.1)


def test_launch_file_builds_a_launch_description():
    pytest.importorskip("launch_ros")
    import runpy

    module = runpy.run_path(str(Path(__file__).resolve().parents[4] / "launch" / "demo.launch.py"))
    ld = module["generate_launch_description"]()
    names = [getattr(e, "name", None) for e in ld.entities]
    assert {"rate", "image_rate", "duration"} <= set(names)
