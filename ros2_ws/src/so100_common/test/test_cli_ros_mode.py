"""The so100 CLI in ROS mode: it reads the DDS graph through rclpy and talks to plain rclpy nodes."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.rclpy,
    pytest.mark.skipif(importlib.util.find_spec("rclpy") is None,
                       reason="rclpy not importable: ./setup.sh --ros, then .venv-ros/bin/python -m pytest -m rclpy"),
]

BIN = Path(sys.executable).parent
DOMAIN = 40 + os.getpid() % 50


@pytest.fixture(scope="module")
def plain_node():
    """A plain rclpy node (none of our code): a latched String, a 20 Hz Bool and a Trigger service."""
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import DurabilityPolicy, QoSProfile
    from std_msgs.msg import Bool, String
    from std_srvs.srv import Trigger

    ctx = rclpy.Context()
    rclpy.init(context=ctx, domain_id=DOMAIN)
    node = rclpy.create_node("plain_peer", namespace="/cli_test", context=ctx)
    latched = node.create_publisher(String, "/cli_test/description", QoSProfile(depth=1,
                                    durability=DurabilityPolicy.TRANSIENT_LOCAL))
    latched.publish(String(data="<robot name='so100'/>"))
    ticks = node.create_publisher(Bool, "/cli_test/flag", 10)
    node.create_timer(0.05, lambda: ticks.publish(Bool(data=True)))
    calls = []

    def on_trigger(_req, resp):
        calls.append(1)
        resp.success, resp.message = True, f"call {len(calls)}"
        return resp

    node.create_service(Trigger, "/cli_test/trigger", on_trigger)
    executor = SingleThreadedExecutor(context=ctx)
    executor.add_node(node)
    thread = threading.Thread(target=executor.spin, daemon=True)
    thread.start()
    yield node
    executor.shutdown()
    node.destroy_node()
    rclpy.shutdown(context=ctx)


def so100(*args: str, timeout: float = 60) -> str:
    env = os.environ | {"SO100_TRANSPORT": "rclpy", "ROS_DOMAIN_ID": str(DOMAIN)}
    env.pop("ZENOH_CONFIG_OVERRIDE", None)
    out = subprocess.run([str(BIN / "so100"), *args], env=env, capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "zenoh" not in out.stderr, out.stderr  # no router looked for
    return out.stdout


def test_lists_read_the_dds_graph(plain_node):
    assert "/cli_test/plain_peer" in so100("node", "list", "--timeout", "5").split()
    topics = so100("topic", "list", "-t", "--timeout", "2")
    assert "/cli_test/description [std_msgs/msg/String]" in topics and "/cli_test/flag [std_msgs/msg/Bool]" in topics
    assert "/cli_test/trigger [std_srvs/srv/Trigger]" in so100("service", "list", "-t", "--timeout", "2")


def test_echo_finds_type_and_latching_and_call_reaches_the_service(plain_node):
    assert "data: <robot name='so100'/>" in so100("topic", "echo", "/cli_test/description", "--once")
    assert "data: true" in so100("topic", "echo", "/cli_test/flag", "std_msgs/msg/Bool", "--once")
    out = so100("service", "call", "/cli_test/trigger", "std_srvs/srv/Trigger")
    assert "success: true" in out and "message: call 1" in out
