"""realsense_camera as a process over a real router: synthetic source topics, and the no-camera exit."""

from __future__ import annotations

import time

import numpy as np
import pytest

from so100_common import messages
from so100_common.node import Node
from so100_common.qos import SENSOR_DATA

pytest.importorskip("pyrealsense2")

NS = "/cameras/overhead"


@pytest.fixture
def node(graph):
    n = Node(f"realsense_tester_{time.monotonic_ns()}", argv=[])
    yield n
    n.destroy()


def test_synthetic_source_publishes_realsense_topics(procs, node):
    """Colour, depth, aligned depth and camera infos arrive under the namespace with the right shapes."""
    got: dict[str, list] = {k: [] for k in ("color", "color_info", "depth", "depth_info", "aligned", "aligned_info")}
    for key, typ, topic in (
        ("color", messages.Image, "color/image_raw"),
        ("color_info", messages.CameraInfo, "color/camera_info"),
        ("depth", messages.Image, "depth/image_rect_raw"),
        ("depth_info", messages.CameraInfo, "depth/camera_info"),
        ("aligned", messages.Image, "aligned_depth_to_color/image_raw"),
        ("aligned_info", messages.CameraInfo, "aligned_depth_to_color/camera_info"),
    ):
        node.create_subscription(typ, f"{NS}/{topic}", got[key].append, SENSOR_DATA)
    cam = procs.node("realsense_camera", "-r", f"__ns:={NS}", "-p", "source:=synthetic",
                     "-p", "camera_name:=overhead", "-p", "rgb_camera.color_profile:=160x120x30",
                     "-p", "depth_module.depth_profile:=80x60x15", "-p", "align_depth.enable:=true")
    cam.wait_output("realsense_camera up", 30)
    node.spin(until=lambda: all(len(v) >= 2 for v in got.values()), timeout=15)
    assert all(got.values()), {k: len(v) for k, v in got.items()}

    color = got["color"][-1]
    rgb = messages.image_to_numpy(color)
    assert color.encoding == "rgb8" and rgb.shape == (120, 160, 3) and rgb.std() > 5
    assert color.header.frame_id == "overhead_color_optical_frame"
    stamp_ns = color.header.stamp.sec * 1_000_000_000 + color.header.stamp.nanosec
    assert abs(stamp_ns - time.time_ns()) < 10e9

    depth = got["depth"][-1]
    mm = messages.image_to_numpy(depth)
    assert depth.encoding == "16UC1" and mm.shape == (60, 80) and mm.dtype == np.uint16
    assert depth.header.frame_id == "overhead_depth_optical_frame"
    assert 495 <= mm.min() and mm.max() <= 1005 and mm[0, 0] < mm[-1, 0]  # the 0.5 m -> 1.0 m plane

    aligned = got["aligned"][-1]
    assert aligned.encoding == "16UC1" and (aligned.height, aligned.width) == (120, 160)
    assert aligned.header.frame_id == "overhead_color_optical_frame"

    info = got["color_info"][-1]
    assert (info.width, info.height) == (160, 120) and info.header.frame_id == "overhead_color_optical_frame"
    assert info.k[2] == pytest.approx(79.5) and info.k[0] > 50 and info.distortion_model == "plumb_bob"
    dinfo = got["depth_info"][-1]
    assert (dinfo.width, dinfo.height) == (80, 60) and dinfo.header.frame_id == "overhead_depth_optical_frame"
    assert (got["aligned_info"][-1].width, got["aligned_info"][-1].height) == (160, 120)
    assert cam.stop() == 0


def test_no_camera_exits_non_zero_with_a_clear_message(procs):
    """source=device with no camera attached: 'no RealSense device' naming what the SDK sees, exit 1."""
    import pyrealsense2 as rs

    if len(rs.context().query_devices()):
        pytest.skip("a real RealSense camera is attached")
    cam = procs.node("realsense_camera", "-p", "serial_no:='0123'")  # quoted, or YAML reads an int
    code = cam.popen.wait(30)
    cam.stop()
    assert code != 0
    assert "no RealSense device with serial_no '0123' found (the SDK sees: none)" in cam.output, cam.output


def test_rosbag_filename_plays_a_recording(procs, node, tmp_path):
    """A .bag of the synthetic pattern plays through the node: colour and depth at their recorded sizes."""
    from so100_driver.realsense_source import RealSenseConfig
    from so100_driver.realsense_synthetic import SyntheticCamera

    bag = tmp_path / "pattern.bag"
    SyntheticCamera(RealSenseConfig(color_profile=(160, 120, 30), depth_profile=(80, 60, 30))).record_bag(
        str(bag), frames=300)  # 10 s of real-time playback: the node's start-up on a busy machine eats some
    got: dict[str, list] = {"color": [], "depth": []}
    node.create_subscription(messages.Image, "/bag/color/image_raw", got["color"].append, SENSOR_DATA)
    node.create_subscription(messages.Image, "/bag/depth/image_rect_raw", got["depth"].append, SENSOR_DATA)
    cam = procs.node("realsense_camera", "-r", "__ns:=/bag", "-p", f"rosbag_filename:={bag}",
                     "-p", "rgb_camera.color_profile:=160x120x30", "-p", "depth_module.depth_profile:=80x60x30")
    cam.wait_output("realsense_camera up", 30)
    node.spin(until=lambda: len(got["color"]) >= 5 and len(got["depth"]) >= 5, timeout=10)
    assert len(got["color"]) >= 5 and len(got["depth"]) >= 5, cam.output
    assert messages.image_to_numpy(got["color"][-1]).shape == (120, 160, 3)
    depth = messages.image_to_numpy(got["depth"][-1])
    assert depth.shape == (60, 80) and depth[0, 0] == 500 and depth[-1, 0] == 1000
    assert cam.stop() == 0
