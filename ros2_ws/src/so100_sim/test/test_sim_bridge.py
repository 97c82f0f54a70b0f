"""sim_bridge as a follower over a real router: the contract, cameras, latched topics, services."""

import json
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from so100_common import messages, names
from so100_common.follower_contract import FollowerContract, FollowerHandle
from so100_common.node import Node
from so100_common.qos import LATCHED, SENSOR_DATA, QoS
from so100_sim.task import EpisodeScene, sample_scene

SO100 = str(Path(sys.executable).parent / "so100")


@pytest.fixture(scope="module")
def bridge(graph):
    proc = graph.node("sim_bridge", "-p", "width:=160", "-p", "height:=120", "-p", "camera_rate:=10.0",
                      "-p", "seed:=7", "-p", "stale_timeout:=0.5")
    proc.wait_output("sim_bridge up", 60)
    yield proc
    proc.stop()
    graph.procs.remove(proc)


@pytest.fixture(scope="module")
def follower(bridge):
    from so100_sim.world import World

    w = World()
    lower, upper = w.lower.copy(), w.upper.copy()
    node = Node(f"contract_{time.monotonic_ns()}", argv=[])
    yield FollowerHandle(bridge, node, lower, upper, tolerance=0.05, stale_timeout=0.5)
    node.destroy()


class TestSimBridgeFollowerContract(FollowerContract):
    """The shared follower contract, run against sim_bridge."""


@pytest.fixture
def node(graph):
    n = Node(f"sim_tester_{time.monotonic_ns()}", argv=[])
    yield n
    n.destroy()


def test_latched_scene_and_description(bridge, node):
    """A late subscriber gets /episode/scene (seed 7's layout) and the URDF."""
    scenes, urdf = [], []
    node.create_subscription(messages.String, names.EPISODE_SCENE, scenes.append, LATCHED)
    node.create_subscription(messages.String, names.ROBOT_DESCRIPTION, urdf.append, LATCHED)
    node.spin(until=lambda: scenes and urdf, timeout=10)
    scene = EpisodeScene.from_json(scenes[-1].data)
    assert scene.seed >= 7 and np.allclose(scene.brick_pos, sample_scene(scene.seed).brick_pos)
    assert "<robot" in urdf[0].data and "shoulder_pan" in urdf[0].data


def test_cameras_publish_images_info_and_depth(bridge, node):
    got: dict[str, list] = {"rgb": [], "info": [], "depth": [], "wrist": []}
    node.create_subscription(messages.Image, names.camera_image_topic("overhead"), got["rgb"].append, SENSOR_DATA)
    node.create_subscription(messages.CameraInfo, names.camera_info_topic("overhead"), got["info"].append,
                             SENSOR_DATA)
    node.create_subscription(messages.Image, names.camera_depth_topic("overhead"), got["depth"].append, SENSOR_DATA)
    node.create_subscription(messages.Image, names.camera_image_topic("wrist"), got["wrist"].append, SENSOR_DATA)
    node.spin(until=lambda: all(got.values()), timeout=15)
    rgb = messages.image_to_numpy(got["rgb"][-1])
    assert rgb.shape == (120, 160, 3) and got["rgb"][-1].encoding == "rgb8" and rgb.std() > 5
    assert got["rgb"][-1].header.frame_id == "overhead_optical_frame"
    depth = messages.image_to_numpy(got["depth"][-1])
    assert got["depth"][-1].encoding == "16UC1" and depth.dtype == np.uint16
    table = np.median(depth[depth > 0])
    assert 400 < table < 800, f"overhead camera to table: {table} mm"
    info = got["info"][-1]
    assert info.width == 160 and info.height == 120 and abs(info.k[2] - 80) < 1e-6 and info.k[0] > 100
    assert messages.image_to_numpy(got["wrist"][-1]).shape == (120, 160, 3)


def test_tf_covers_every_body(bridge, node):
    got = []
    node.create_subscription("tf2_msgs/msg/TFMessage", names.TF, got.append, QoS(depth=10))
    node.spin(until=lambda: got, timeout=10)
    children = {t.child_frame_id for t in got[-1].transforms}
    assert {"brick", "bowl", "base_link", "gripper_link", "moving_jaw_link", "overhead_optical_frame"} <= children


def test_reset_starts_a_new_seeded_episode(bridge, node):
    client = node.create_client("std_srvs/srv/Trigger", names.SIM_RESET)
    assert client.wait_for_service(10)
    first = EpisodeScene.from_json(client.call(timeout=10).message)
    second = EpisodeScene.from_json(client.call(timeout=10).message)
    assert second.seed == first.seed + 1
    assert np.allclose(second.brick_pos, sample_scene(second.seed).brick_pos)


def test_markers_describe_the_scene(bridge, node):
    got = []
    node.create_subscription("visualization_msgs/msg/MarkerArray", names.SCENE_MARKERS, got.append, LATCHED)
    node.spin(until=lambda: got, timeout=10)
    frames = {m.header.frame_id for m in got[-1].markers}
    assert {"world", "brick", "bowl", "base_link"} <= frames and all(m.frame_locked for m in got[-1].markers)


def test_expert_graph_completes_episodes_with_success(procs):
    """so100 launch expert_sim: the expert picks and places; /task/success turns true each time."""
    proc = procs.start([SO100, "launch", "expert_sim", "episodes:=2", "camera_rate:=0.0", "seed:=11",
                        "realtime:=true"])
    code = proc.popen.wait(120)
    assert code == 0, proc.output
    assert proc.output.count("success; ") == 2 and "2/2 successful" in proc.output


def test_not_realtime_publishes_clock_and_runs_fast(procs, node):
    clocks = []
    node.create_subscription("rosgraph_msgs/msg/Clock", names.CLOCK, clocks.append, QoS(depth=100))
    proc = procs.node("sim_bridge", "-p", "realtime:=false", "-p", "camera_rate:=0.0", "-r", "__node:=fast_sim",
                      "-r", "/clock:=/fast/clock")
    clocks_fast = []
    node.create_subscription("rosgraph_msgs/msg/Clock", "/fast/clock", clocks_fast.append, QoS(depth=100))
    proc.wait_output("sim_bridge up", 60)
    start = time.monotonic()
    node.spin(until=lambda: clocks_fast and messages.stamp_to_ns(clocks_fast[-1].clock) > 4e9, timeout=20)
    wall = time.monotonic() - start
    sim = messages.stamp_to_ns(clocks_fast[-1].clock) / 1e9
    assert sim > 4.0 and sim / wall > 1.0, f"{sim:.1f} s simulated in {wall:.1f} s"
    del clocks


def test_scene_json_round_trip():
    scene = sample_scene(3)
    assert EpisodeScene.from_json(scene.to_json()) == scene
    assert json.loads(scene.to_json())["seed"] == 3


def test_joint_states_are_evenly_stamped_while_large_frames_render(graph, node):
    """Each physics tick publishes its own state, stamped at its place on the clock: a slow 640x480 camera
    frame that delays the timer makes the catch-up ticks publish late, not skip (recordings used to repeat
    states). Stamps are 10 ms apart, except where the tick ran ahead of the wall clock and was held at now."""
    proc = graph.node("sim_bridge", "-r", "__node:=sim_bridge_even", "-r", "/follower/joint_states:=/even/joint_states",
                      "-p", "width:=640", "-p", "height:=480", "-p", "camera_rate:=30.0",
                      "-r", "/cameras/overhead/image_raw:=/even/overhead", "-r", "/cameras/wrist/image_raw:=/even/wrist")
    try:
        proc.wait_output("sim_bridge up", 60)
        stamps: list[int] = []
        node.create_subscription(messages.JointState, "/even/joint_states",
                                 lambda m: stamps.append(messages.stamp_to_ns(m.header.stamp)), QoS(depth=1000))
        node.spin(until=lambda: len(stamps) >= 300, timeout=30)
        steps = np.diff(np.asarray(stamps[50:]))  # after start-up
        assert len(steps) >= 200
        assert (steps > 0).all(), "stamps must increase"
        assert np.mean(np.abs(steps - 10_000_000) < 200_000) > 0.95, np.percentile(steps, [1, 50, 99])
        assert steps.max() < 25_000_000, steps.max()  # no tick without its own state
    finally:
        proc.stop()
        graph.procs.remove(proc)
