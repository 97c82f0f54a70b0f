"""realsense_camera over a real router: synthetic source topics, the no-camera exit, reconnecting."""

from __future__ import annotations

import logging
import subprocess
import threading
import time

import numpy as np
import pytest

from so100_common import messages
from so100_common.node import Node
from so100_common.qos import SENSOR_DATA
from so100_common.testing import BIN, wait_for

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


def test_help_lists_the_reconnect_parameters():
    out = subprocess.run([str(BIN / "realsense_camera"), "--help"], capture_output=True, text=True, check=True,
                         timeout=60).stdout
    assert "reconnect_period" in out and "seconds between attempts to reopen a lost camera" in out, out
    assert "frame_timeout" in out and "counts as lost" in out, out


def test_an_unplugged_camera_is_reopened_and_published_again(graph, node, caplog):
    """The synthetic camera is unplugged under the running node, then plugged back in.

    The node (in this process, so the test can pull the plug; over the real router and the real SDK)
    logs the loss once, publishes nothing while the camera is away, reopens it when it is back and
    publishes the same topics and camera_info again, its timer never raising.
    """
    from so100_driver.realsense_camera_node import RealSenseCamera

    got: dict[str, list] = {"color": [], "info": [], "depth": []}
    node.create_subscription(messages.Image, "/replug/color/image_raw", got["color"].append, SENSOR_DATA)
    node.create_subscription(messages.CameraInfo, "/replug/color/camera_info", got["info"].append, SENSOR_DATA)
    node.create_subscription(messages.Image, "/replug/depth/image_rect_raw", got["depth"].append, SENSOR_DATA)
    cam = RealSenseCamera(["--ros-args", "-r", "__ns:=/replug", "-r", f"__node:=replug_{time.monotonic_ns()}",
                           "-p", "source:=synthetic", "-p", "rgb_camera.color_profile:=64x48x30",
                           "-p", "depth_module.depth_profile:=32x24x30", "-p", "frame_timeout:=0.5",
                           "-p", "reconnect_period:=0.2"])
    caplog.set_level(logging.DEBUG, cam.logger.name)
    spinner = threading.Thread(target=cam.spin, daemon=True)
    spinner.start()
    try:
        node.spin(until=lambda: len(got["color"]) >= 3 and got["info"], timeout=15)
        assert len(got["color"]) >= 3 and got["info"], {k: len(v) for k, v in got.items()}
        info_before = got["info"][-1]

        cam.synthetic.unplug()
        wait_for(lambda: cam.link.lost, 10, "the node to notice the unplug")
        node.spin(timeout=0.3)  # what was already on the wire arrives
        during, depth_during = len(got["color"]), len(got["depth"])
        node.spin(timeout=1.5)  # away for 1.5 s: seven reopen attempts, all failing
        assert (len(got["color"]), len(got["depth"])) == (during, depth_during), "published while unplugged"
        assert cam.source is None

        cam.synthetic.plug()
        node.spin(until=lambda: len(got["color"]) >= during + 3 and len(got["depth"]) > depth_during, timeout=15)
        assert len(got["color"]) >= during + 3, "nothing published after the camera came back"
        assert len(got["depth"]) > depth_during, "no depth after the camera came back"
    finally:
        cam.shutdown()
        spinner.join(5)
        cam.destroy()
    assert not spinner.is_alive()
    assert cam.link.reconnects == 1
    info_after = got["info"][-1]
    assert (info_after.width, info_after.height, list(info_after.k)) == (
        info_before.width, info_before.height, list(info_before.k))
    assert messages.image_to_numpy(got["color"][-1]).shape == (48, 64, 3)
    lines = [r.getMessage() for r in caplog.records if r.name == cam.logger.name]
    assert lines.count("camera 000000000000 lost: no frames for 0.5 s; retrying every 0.2 s") == 1, lines
    assert lines.count("camera 000000000000 back") == 1, lines
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], "a callback raised"
