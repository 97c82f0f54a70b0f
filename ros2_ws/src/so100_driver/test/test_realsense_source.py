"""RealSenseSource driven through the real SDK by a software device: arrays, depth units, intrinsics, reconnects."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable

import numpy as np
import pytest

from so100_driver.realsense_source import (
    CameraError,
    RealSenseConfig,
    RealSenseSource,
    camera_model,
    find_device,
    parse_profile,
)
from so100_driver.realsense_synthetic import SyntheticCamera, d435_like_intrinsics
from so100_driver.reconnect import Reconnector

rs = pytest.importorskip("pyrealsense2")


def _known_frames(cw: int, ch: int, dw: int, dh: int) -> tuple[np.ndarray, np.ndarray]:
    color = np.random.default_rng(0).integers(0, 256, (ch, cw, 3), dtype=np.uint8)
    depth = (np.arange(dh * dw, dtype=np.uint32).reshape(dh, dw) % 6000 + 1000).astype(np.uint16)
    return color, depth


def _read_after_inject(cam: SyntheticCamera, src: RealSenseSource, color, depth):
    """Inject until the syncer hands out a frameset holding both streams (it starts with singles)."""
    start = time.time() * 1000.0
    for k in range(20):
        cam.inject(color, depth, stamp_ms=start + k * 1000.0 / 30)  # a 30 fps stream's spacing
        try:
            frames = src.read(0.5)
        except CameraError:
            continue
        if frames.color is not None and frames.depth is not None:
            return frames
    pytest.fail("no colour+depth frameset came out of the syncer")


def test_parse_profile():
    """realsense-ros 4.x 'WxHxFPS' and 3.x 'W,H,FPS' both parse; garbage names the expected form."""
    assert parse_profile("640x480x30") == (640, 480, 30)
    assert parse_profile("848,480,15") == (848, 480, 15)
    with pytest.raises(CameraError, match="WIDTHxHEIGHTxFPS"):
        parse_profile("640x480")
    with pytest.raises(CameraError, match="nothing to stream"):
        RealSenseConfig(enable_color=False, enable_depth=False)


def test_color_and_depth_come_out_exactly_in_millimetres():
    """Known rgb8 and z16 (1 mm units) frames come back bit-exact, host timestamps kept."""
    cfg = RealSenseConfig(color_profile=(64, 48, 30), depth_profile=(32, 24, 30))
    cam = SyntheticCamera(cfg, depth_unit=0.001)
    color, depth = _known_frames(64, 48, 32, 24)
    with RealSenseSource(cfg, device=cam.device) as src:
        assert src.serial == "000000000000" and src.depth_scale == pytest.approx(0.001)
        frames = _read_after_inject(cam, src, color, depth)
    assert frames.color.shape == (48, 64, 3) and frames.color.dtype == np.uint8
    np.testing.assert_array_equal(frames.color, color)
    assert frames.depth.dtype == np.uint16
    np.testing.assert_array_equal(frames.depth, depth)
    assert frames.aligned_depth is None
    assert frames.color_stamp_ns is not None and abs(frames.color_stamp_ns - frames.received_ns) < 5e9


def test_depth_unit_is_converted_to_millimetres():
    """A D405-like 0.1 mm depth unit is read from the sensor and scaled to mm (0 stays 0)."""
    cfg = RealSenseConfig(enable_color=False, depth_profile=(16, 8, 30))
    cam = SyntheticCamera(cfg, depth_unit=0.0001)
    raw = np.full((8, 16), 12345, np.uint16)
    raw[0, 0] = 0
    with RealSenseSource(cfg, device=cam.device) as src:
        assert src.depth_scale == pytest.approx(0.0001)
        cam.inject(None, raw)
        frames = src.read(2.0)
    assert frames.color is None
    assert frames.depth[0, 0] == 0 and frames.depth[1, 1] == 1234  # 1234.5 mm rounds to even
    assert src.to_millimetres(np.array([[65535]], np.uint16))[0, 0] == 6554


def test_intrinsics_become_k_and_distortion():
    """rs.intrinsics -> K with fx, fy, ppx, ppy; brown_conrady -> plumb_bob with its 5 coefficients."""
    intr = d435_like_intrinsics(640, 480, 69.4, coeffs=(0.1, -0.2, 0.001, 0.002, 0.03))
    intr.fy = 611.0
    model = camera_model(intr)
    assert model.k[0, 0] == pytest.approx(intr.fx) and model.k[1, 1] == pytest.approx(611.0)
    assert model.k[0, 2] == pytest.approx(319.5) and model.k[1, 2] == pytest.approx(239.5) and model.k[2, 2] == 1
    assert model.distortion_model == "plumb_bob"
    np.testing.assert_allclose(model.d, [0.1, -0.2, 0.001, 0.002, 0.03], rtol=1e-6)
    cfg = RealSenseConfig(color_profile=(64, 48, 30), depth_profile=(32, 24, 30))
    with RealSenseSource(cfg, device=SyntheticCamera(cfg).device) as src:
        assert (src.color_model.width, src.color_model.height) == (64, 48)
        assert (src.depth_model.width, src.depth_model.height) == (32, 24)
        assert src.color_model.k[0, 0] == pytest.approx(64 / (2 * np.tan(np.radians(69.4 / 2))), rel=1e-5)


def test_align_depth_to_color_resamples_into_colour_pixels():
    """rs.align reprojects a constant 800 mm depth image into the colour camera's size."""
    cfg = RealSenseConfig(color_profile=(64, 48, 30), depth_profile=(32, 24, 30), align_depth=True)
    cam = SyntheticCamera(cfg)
    color = np.zeros((48, 64, 3), np.uint8)
    depth = np.full((24, 32), 800, np.uint16)
    with RealSenseSource(cfg, device=cam.device) as src:
        frames = _read_after_inject(cam, src, color, depth)
        for _ in range(5):
            if frames.aligned_depth is not None:
                break
            frames = _read_after_inject(cam, src, color, depth)
    assert frames.aligned_depth is not None and frames.aligned_depth.shape == (48, 64)
    valid = frames.aligned_depth[frames.aligned_depth > 0]
    assert valid.size > 0.5 * 48 * 64 and np.all(valid == 800)


def test_wrong_profile_lists_what_the_camera_offers():
    cfg = RealSenseConfig(color_profile=(64, 48, 30), depth_profile=(32, 24, 30))
    cam = SyntheticCamera(cfg)
    bad = RealSenseConfig(color_profile=(1280, 720, 30), depth_profile=(32, 24, 30))
    with pytest.raises(CameraError, match=r"rgb_camera.color_profile to one of: 64x48x30"):
        RealSenseSource(bad, device=cam.device).open()


def test_no_device_message_lists_what_the_sdk_sees():
    """An empty context (no camera here, or the wrong serial) gives an error saying what is there."""
    ctx = rs.context()
    if len(ctx.query_devices()):
        pytest.skip("a real RealSense camera is attached")
    with pytest.raises(CameraError, match="no RealSense device found .*none"):
        find_device(ctx, "")
    with pytest.raises(CameraError, match="no RealSense device with serial_no '123' found .*none"):
        RealSenseSource(RealSenseConfig(serial_no="123"), context=ctx).open()


def test_bag_recording_plays_back_through_the_same_source(tmp_path):
    """A .bag written by rs.recorder from the software device plays through rosbag_filename, frames intact."""
    cfg = RealSenseConfig(color_profile=(64, 48, 30), depth_profile=(32, 24, 30))
    cam = SyntheticCamera(cfg)
    bag = tmp_path / "pattern.bag"
    cam.record_bag(str(bag), frames=60)
    assert bag.stat().st_size > 10_000
    play = RealSenseConfig(color_profile=(64, 48, 30), depth_profile=(32, 24, 30), rosbag_filename=str(bag))
    numbers = []
    with RealSenseSource(play) as src:
        assert src.depth_scale == pytest.approx(0.001) and src.color_model.width == 64
        while True:
            try:
                frames = src.read(1.0)
            except CameraError:
                break  # the end of the recording
            # real-time playback may skip frames, or deliver a set with one stream only, while this
            # process is busy; each frame that is read is intact (the pattern's frame k carries number k + 1)
            if frames.depth is not None:
                np.testing.assert_array_equal(frames.depth, cam.pattern(frames.depth_number - 1)[1])
            if frames.color is not None:
                np.testing.assert_array_equal(frames.color, cam.pattern(frames.color_number - 1)[0])
                numbers.append(frames.color_number)
    assert len(numbers) >= 5 and numbers == sorted(set(numbers)) and max(numbers) >= 48, numbers
    with pytest.raises(CameraError, match="is not a file"):
        RealSenseSource(RealSenseConfig(rosbag_filename=str(tmp_path / "missing.bag"))).open()


def test_d405_layout_colour_and_depth_on_one_sensor():
    """Both streams on one 'Stereo Module' with a 0.1 mm unit: the sensor is opened once, depth in mm."""
    cfg = RealSenseConfig(color_profile=(64, 48, 30), depth_profile=(64, 48, 30))
    cam = SyntheticCamera(cfg, depth_unit=0.0001, one_sensor=True)
    assert len(cam.device.query_sensors()) == 1
    color, _ = _known_frames(64, 48, 64, 48)
    with RealSenseSource(cfg, device=cam.device) as src:
        assert src.depth_scale == 0.0001
        frames = _read_after_inject(cam, src, color, np.full((48, 64), 7000, np.uint16))
    np.testing.assert_array_equal(frames.color, color)
    assert np.all(frames.depth == 700)


def _tick_until(link: Reconnector, done: Callable[[list], bool], timeout: float, what: str) -> list:
    """Tick ``link`` every 10 ms (as the node's timer does) until ``done(frames so far)``; the frames."""
    got: list = []
    deadline = time.monotonic() + timeout
    while not done(got):
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}; {len(got)} frameset(s)")
        got += link.tick(time.monotonic())
        time.sleep(0.01)
    return got


def test_an_unplugged_software_camera_is_reopened_when_it_is_plugged_back(caplog):
    """SyntheticCamera.unplug(): frames stop, the source is lost and reopens fail until plug(); then frames again."""
    caplog.set_level(logging.DEBUG, "reconnect")
    cfg = RealSenseConfig(color_profile=(64, 48, 30), depth_profile=(32, 24, 30))
    cam = SyntheticCamera(cfg)
    src = RealSenseSource(cfg, context=cam)
    src.open()
    link = Reconnector(src, src.reopen, frame_timeout=0.3, period=0.1, now=time.monotonic(),
                       log=logging.getLogger("reconnect"), errors=(RuntimeError, CameraError))
    cam.start_pattern()
    try:
        _tick_until(link, lambda got: len(got) >= 3, 5, "frames")
        cam.unplug()
        _tick_until(link, lambda got: link.lost, 5, "the loss")
        t_end = time.monotonic() + 0.5
        assert _tick_until(link, lambda got: time.monotonic() > t_end, 5, "half a second") == []  # nothing while lost
        assert link.source is None  # reopens fail while unplugged
        cam.plug()
        back = _tick_until(link, lambda got: len(got) >= 3, 5, "frames after the replug")
    finally:
        cam.stop()
        link.close()
    assert link.reconnects == 1 and not link.lost
    assert any(f.color is not None for f in back) and link.source is not src
    messages = [r.getMessage() for r in caplog.records]
    assert "camera 000000000000 lost: no frames for 0.3 s; retrying every 0.1 s" in messages
    assert any("not back yet: no RealSense device found (the SDK sees: none)" in m for m in messages), messages
    assert messages.count("camera 000000000000 back") == 1


def test_a_camera_removed_from_the_sdk_context_is_found_again_by_serial(tmp_path, caplog):
    """The SDK's own device list: a playback device stands in for the camera (load = plug in, unload = unplug).

    The removal comes through the context's devices-changed callback (long before frame_timeout), the
    reopen finds the camera again by serial, and it streams with the same intrinsics.
    """
    caplog.set_level(logging.DEBUG, "reconnect")
    cfg = RealSenseConfig(serial_no="000000000000", color_profile=(64, 48, 30), depth_profile=(32, 24, 30))
    bag = str(tmp_path / "camera.bag")
    SyntheticCamera(cfg).record_bag(bag, frames=60)  # 2 s of stream each time it is plugged in
    ctx = rs.context()
    if len(ctx.query_devices()):
        pytest.skip("a real RealSense camera is attached")

    plugged: list = []  # the context lists a playback device only while someone holds it

    def plug_in() -> None:
        plugged.append(ctx.load_device(bag))
        plugged[-1].as_playback().set_real_time(True)

    plug_in()
    src = RealSenseSource(cfg, context=ctx)
    src.open()
    link = Reconnector(src, src.reopen, frame_timeout=10.0, period=0.1, now=time.monotonic(),
                       log=logging.getLogger("reconnect"), errors=(RuntimeError, CameraError))
    assert src.watch_removal(link.device_removed)
    try:
        _tick_until(link, lambda got: len(got) >= 2, 5, "frames")
        ctx.unload_device(bag)
        t0 = time.monotonic()
        _tick_until(link, lambda got: link.lost, 5, "the removal")
        assert time.monotonic() - t0 < 2.0 and link.source is None
        plug_in()
        back = _tick_until(link, lambda got: len(got) >= 2, 5, "frames after the replug")
        reopened = link.source
    finally:
        link.close()
        with contextlib.suppress(RuntimeError):
            ctx.unload_device(bag)
    assert link.reconnects == 1 and reopened is not src and reopened.serial == "000000000000"
    assert any(f.color is not None for f in back)
    np.testing.assert_array_equal(reopened.color_model.k, src.color_model.k)
    messages = [r.getMessage() for r in caplog.records]
    assert "camera 000000000000 lost: device removed; retrying every 0.1 s" in messages
    assert "camera 000000000000 back" in messages
