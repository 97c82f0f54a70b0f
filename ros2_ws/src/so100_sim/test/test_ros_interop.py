"""ROS mode on real rclpy: sim_bridge (SO100_TRANSPORT=rclpy) against a plain rclpy peer.

The peer uses nothing of ours: rclpy's own API and the typed message classes of ROS 2 Jazzy's
wheels (``./setup.sh --ros`` installs them into ``.venv-ros``; run with ``.venv-ros/bin/python -m
pytest -m rclpy``). It reads the follower's joint states and camera field by field, moves the sim
with joint commands, calls the services, and gets the latched robot description as a late joiner.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.rclpy,
    pytest.mark.skipif(importlib.util.find_spec("rclpy") is None,
                       reason="rclpy not importable: ./setup.sh --ros, then .venv-ros/bin/python -m pytest -m rclpy"),
]

BIN = Path(sys.executable).parent
JOINTS = ["shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper"]
DOMAIN = 150 + os.getpid() % 60


def wait(cond, timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    log = tmp_path_factory.mktemp("ros") / "sim_bridge.log"
    env = os.environ | {"SO100_TRANSPORT": "rclpy", "ROS_DOMAIN_ID": str(DOMAIN), "RMW_IMPLEMENTATION": "rmw_fastrtps_cpp"}
    with log.open("w") as out:
        proc = subprocess.Popen([str(BIN / "sim_bridge"), "--ros-args", "-p", "width:=64", "-p", "height:=48",
                                 "-p", "cameras:=[overhead]", "-p", "depth_cameras:=[]", "-p", "camera_rate:=10.0"],
                                env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait(lambda: "sim_bridge up" in log.read_text() or proc.poll() is not None, 60, "sim_bridge up")
        assert proc.poll() is None, log.read_text()
        yield proc, log
    finally:
        proc.terminate()
        proc.wait(15)


@pytest.fixture(scope="module")
def peer(sim):
    """A plain rclpy node in its own context, spun on a thread."""
    import rclpy
    from rclpy.executors import SingleThreadedExecutor

    ctx = rclpy.Context()
    rclpy.init(context=ctx, domain_id=DOMAIN)
    node = rclpy.create_node("plain_rclpy_peer", context=ctx)
    executor = SingleThreadedExecutor(context=ctx)
    executor.add_node(node)
    thread = threading.Thread(target=executor.spin, daemon=True)
    thread.start()
    yield node
    executor.shutdown()
    node.destroy_node()
    rclpy.shutdown(context=ctx)


def test_joint_states_and_camera_decode_field_by_field(peer):
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image, JointState

    states: list[JointState] = []
    images: list[Image] = []
    peer.create_subscription(JointState, "/follower/joint_states", states.append, 10)
    peer.create_subscription(Image, "/cameras/overhead/image_raw", images.append, qos_profile_sensor_data)
    wait(lambda: len(states) >= 5 and images, 30, "joint states and an image from sim_bridge")
    js = states[-1]
    assert list(js.name) == JOINTS and len(js.position) == 6 and len(js.velocity) == 6 and len(js.effort) == 6
    assert js.header.frame_id == "base_link" and js.header.stamp.sec > 0
    img = images[-1]
    assert (img.encoding, img.width, img.height, img.step) == ("rgb8", 64, 48, 64 * 3)
    assert len(img.data) == 64 * 48 * 3 and img.header.frame_id == "overhead_optical_frame"
    assert max(img.data) > 0  # a rendered scene, not zeros


def test_joint_commands_from_plain_rclpy_move_the_sim(peer):
    from sensor_msgs.msg import JointState

    latest: list[JointState] = []
    peer.create_subscription(JointState, "/follower/joint_states", latest.append, 10)
    pub = peer.create_publisher(JointState, "/follower/joint_commands", 10)
    wait(lambda: latest, 20, "joint states")
    goal = list(latest[-1].position)
    goal[0] = 0.3  # shoulder_pan
    cmd = JointState(name=JOINTS, position=goal)
    end = time.monotonic() + 15
    while time.monotonic() < end and abs(latest[-1].position[0] - 0.3) > 0.02:
        pub.publish(cmd)
        time.sleep(1 / 30)
    assert abs(latest[-1].position[0] - 0.3) <= 0.02, latest[-1].position


def test_services_answer_a_plain_rclpy_client(peer):
    from std_srvs.srv import SetBool, Trigger

    reset = peer.create_client(Trigger, "/sim/reset")
    torque = peer.create_client(SetBool, "/follower/enable_torque")
    assert reset.wait_for_service(timeout_sec=20) and torque.wait_for_service(timeout_sec=20)
    replies = []
    for client, request in ((reset, Trigger.Request()), (torque, SetBool.Request(data=True))):
        future = client.call_async(request)
        wait(future.done, 20, f"a reply from {client.srv_name}")
        assert future.result().success, future.result().message
        replies.append(future.result().message)
    assert '"seed"' in replies[0] and replies[1] == "torque enabled"  # the new scene as JSON; the torque state


def test_a_late_subscriber_gets_the_latched_robot_description(peer, sim):
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
    from std_msgs.msg import String

    time.sleep(1.0)  # join well after sim_bridge published it
    got: list[String] = []
    qos = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL, reliability=ReliabilityPolicy.RELIABLE)
    peer.create_subscription(String, "/robot_description", got.append, qos)
    wait(lambda: got, 20, "the latched /robot_description")
    assert "<robot" in got[0].data and "shoulder_pan" in got[0].data
    # no tf2_msgs wheel: sim_bridge says /tf is off in ROS mode instead of failing
    if importlib.util.find_spec("tf2_msgs") is None:
        assert "/tf is off in ROS mode" in sim[1].read_text()
