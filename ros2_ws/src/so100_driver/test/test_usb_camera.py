"""usb_camera: a video file through the same OpenCV capture as a camera, as a process over a real router."""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import pytest

from so100_common import messages, names
from so100_common.node import Node
from so100_common.qos import SENSOR_DATA
from so100_driver.usb_camera_source import UsbCameraConfig, UsbCameraError, UsbCameraSource, load_calibration

cv2 = pytest.importorskip("cv2")

W, H, FRAMES = 160, 120, 20
RED = (230, 20, 20)  # RGB of the moving square; the background is dark grey


def _square_x(rgb: np.ndarray) -> float:
    """Mean column of the red pixels."""
    red = (rgb[..., 0] > 150) & (rgb[..., 1] < 90) & (rgb[..., 2] < 90)
    assert red.sum() > 0.5 * 30 * 40 * rgb.shape[1] / W * rgb.shape[0] / H, "no red square (BGR/RGB swapped?)"
    return float(np.nonzero(red)[1].mean())


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> Path:
    """20 frames of 160x120 MJPG: a red square moving right by 5 px a frame."""
    path = tmp_path_factory.mktemp("usb") / "square.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30, (W, H))
    assert writer.isOpened()
    for i in range(FRAMES):
        bgr = np.full((H, W, 3), 40, np.uint8)
        bgr[40:80, 10 + 5 * i:40 + 5 * i] = RED[::-1]  # OpenCV writes BGR
        writer.write(bgr)
    writer.release()
    return path


@pytest.fixture
def node(graph):
    n = Node(f"usb_camera_tester_{time.monotonic_ns()}", argv=[])
    yield n
    n.destroy()


def test_video_file_publishes_contract_topics_at_the_requested_rate(procs, node, video):
    """rgb8 at 20 Hz with the square red (not blue), looping past the file's 20 frames; camera_info fits."""
    images, infos = [], []
    node.create_subscription(messages.Image, names.camera_image_topic("wrist"), images.append, SENSOR_DATA)
    node.create_subscription(messages.CameraInfo, names.camera_info_topic("wrist"), infos.append, SENSOR_DATA)
    cam = procs.node("usb_camera", "-p", "name:=wrist", "-p", f"device:={video}", "-p", f"width:={W}",
                     "-p", f"height:={H}", "-p", "fps:=20.0")
    cam.wait_output("usb_camera up", 15)
    node.spin(until=lambda: len(images) >= 30 and infos, timeout=10)
    assert len(images) >= 30, cam.output  # more than the file holds: it loops

    img = images[-1]
    assert img.encoding == "rgb8" and (img.width, img.height) == (W, H)
    assert img.header.frame_id == "wrist_optical_frame"
    stamps = np.array([messages.stamp_to_ns(m.header.stamp) for m in images]) / 1e9
    assert abs(stamps[-1] - time.time()) < 5
    assert np.median(np.diff(stamps)) == pytest.approx(1 / 20, rel=0.2)
    xs = [_square_x(messages.image_to_numpy(m)) for m in images[:8]]
    assert np.ptp(xs) > 10  # it moves

    info = infos[-1]
    assert (info.width, info.height) == (W, H) and info.header.frame_id == "wrist_optical_frame"
    f = (W / 2) / math.tan(math.radians(70) / 2)
    assert info.k[0] == pytest.approx(f) and info.k[4] == pytest.approx(f) and info.k[2] == pytest.approx(79.5)
    assert info.p[0] == pytest.approx(f)
    image_stamps = {messages.stamp_to_ns(m.header.stamp) for m in images}  # each info carries its image's stamp
    matched = sum(messages.stamp_to_ns(i.header.stamp) in image_stamps for i in infos)
    assert matched >= len(infos) - 2  # the newest info may arrive before its image (best effort, two topics)
    assert cam.stop() == 0, cam.output


@pytest.mark.parametrize("device", ["/dev/video97", "57"])  # a path, and an index given as a number
def test_missing_device_exits_non_zero_naming_the_video_devices(procs, device):
    cam = procs.node("usb_camera", "-p", f"device:={device}")
    code = cam.popen.wait(20)
    cam.stop()
    assert code != 0
    assert f"USB camera {device} does not open (video devices found:" in cam.output, cam.output


def test_index_device_that_does_not_exist_is_a_clear_error():
    """An index goes to V4L2 like a path does; a missing one names what there is."""
    with pytest.raises(UsbCameraError, match=r"USB camera 57 does not open \(video devices found: "):
        UsbCameraSource(UsbCameraConfig("57")).open()
    with pytest.raises(UsbCameraError, match="neither a camera .* nor an existing video file"):
        UsbCameraSource(UsbCameraConfig("no_such_clip.mp4")).open()


def test_source_resizes_and_a_file_without_loop_ends(video):
    with UsbCameraSource(UsbCameraConfig(str(video), width=80, height=60, fps=60.0, loop=False)) as src:
        frames = []
        with pytest.raises(UsbCameraError, match="end of file"):
            while True:
                frames.append(src.read(2.0))
        assert src.ended and src.delivered == (W, H) and src.size == (80, 60)
    # a few may be superseded before they are read (the reader keeps the newest), none repeat,
    # and the last one always arrives before the end of the file is reported
    assert 2 <= len(frames) <= FRAMES and frames[-1].number == FRAMES, [f.number for f in frames]
    assert all(f.rgb.shape == (60, 80, 3) for f in frames)
    assert [f.number for f in frames] == sorted({f.number for f in frames})
    assert _square_x(frames[-1].rgb) > _square_x(frames[0].rgb)


def test_calibration_yaml_is_read_and_scaled(tmp_path):
    """camera_calibration_parsers' layout: K, D, R, P; scaled with the image."""
    path = tmp_path / "wrist.yaml"
    path.write_text(
        "image_width: 640\nimage_height: 480\ncamera_name: wrist\n"
        "camera_matrix: {rows: 3, cols: 3, data: [500, 0, 320, 0, 510, 240, 0, 0, 1]}\n"
        "distortion_model: plumb_bob\n"
        "distortion_coefficients: {rows: 1, cols: 5, data: [0.1, -0.2, 0, 0, 0.05]}\n"
        "rectification_matrix: {rows: 3, cols: 3, data: [1, 0, 0, 0, 1, 0, 0, 0, 1]}\n"
        "projection_matrix: {rows: 3, cols: 4, data: [490, 0, 321, 0, 0, 505, 241, 0, 0, 0, 1, 0]}\n"
    )
    cal = load_calibration(f"file://{path}")
    assert cal.model.k[0, 0] == 500 and cal.model.k[1, 1] == 510 and list(cal.model.d) == [0.1, -0.2, 0, 0, 0.05]
    assert cal.p[0, 0] == 490 and cal.p[1, 2] == 241
    half = cal.scaled(320, 240)
    assert half.model.k[0, 0] == 250 and half.model.k[1, 2] == 120 and half.p[0, 2] == 160.5
    with pytest.raises(UsbCameraError, match="only file://"):
        load_calibration("package://so100_driver/wrist.yaml")
    path.write_text("image_width: 640\nimage_height: 480\ncamera_matrix: {data: [1, 2]}\n")
    with pytest.raises(UsbCameraError, match="'camera_matrix' has 2 values"):
        load_calibration(str(path))
