"""A D435-like camera made of pyrealsense2's ``software_device``: the no-hardware path.

Frames injected here go through the real SDK (sensors, syncer, rs.align) into ``RealSenseSource``,
exactly like a camera's. Tests inject known frames with ``inject()``; the node's ``source:=synthetic``
mode runs ``start_pattern()``, a moving colour gradient over a tilted depth plane. ``unplug()`` /
``plug()`` take the camera away and bring it back: its sensors stop, the pattern pauses and
``query_devices()`` (this object stands in for ``rs.context`` there) lists nothing until it is
plugged in again. Never imports the ROS runtime.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from typing import Any

import numpy as np

from so100_driver.realsense_source import RealSenseConfig, _rs

log = logging.getLogger(__name__)

SERIAL = "000000000000"
NAME = "Intel RealSense D435 (software device)"
COLOR_HFOV_DEG = 69.4  # D435 colour camera
DEPTH_HFOV_DEG = 87.0  # D435 depth camera


def d435_like_intrinsics(width: int, height: int, hfov_deg: float, coeffs: tuple[float, ...] = (0.0,) * 5) -> Any:
    """``rs.intrinsics`` of a pinhole with the given horizontal field of view, principal point centred."""
    rs = _rs()
    intr = rs.intrinsics()
    intr.width, intr.height = width, height
    intr.fx = intr.fy = width / (2.0 * math.tan(math.radians(hfov_deg) / 2.0))
    intr.ppx, intr.ppy = (width - 1) / 2.0, (height - 1) / 2.0
    intr.model = rs.distortion.brown_conrady
    intr.coeffs = list(coeffs)
    return intr


class SyntheticCamera:
    """A software_device with an "RGB Camera" (rgb8) and a "Stereo Module" (z16) sensor.

    Args:
        config: the profiles to offer (one each, as configured).
        depth_unit: metres per raw z16 unit the device reports (D400: 0.001, D405: 0.0001).
        color_intrinsics / depth_intrinsics: ``rs.intrinsics``; D435-like when None.
        one_sensor: put both streams on one sensor (a D405's layout) instead of two (a D435's).
    """

    def __init__(self, config: RealSenseConfig, *, depth_unit: float = 0.001, serial: str = SERIAL,
                 color_intrinsics: Any = None, depth_intrinsics: Any = None, one_sensor: bool = False) -> None:
        rs = _rs()
        self.config = config
        self.depth_unit = depth_unit
        self.device = rs.software_device()
        self.device.register_info(rs.camera_info.name, NAME)
        self.device.register_info(rs.camera_info.serial_number, serial)
        cw, ch, cfps = config.color_profile
        dw, dh, dfps = config.depth_profile
        self._depth_sensor = self.device.add_sensor("Stereo Module")
        # one_sensor: colour on the Stereo Module too, as a D405 has it
        self._color_sensor = self._depth_sensor if one_sensor else self.device.add_sensor("RGB Camera")
        self.color_profile = self._add_stream(self._color_sensor, rs.stream.color, rs.format.rgb8, 3, cw, ch, cfps, 1,
                                              color_intrinsics or d435_like_intrinsics(cw, ch, COLOR_HFOV_DEG))
        self.depth_profile = self._add_stream(self._depth_sensor, rs.stream.depth, rs.format.z16, 2, dw, dh, dfps, 0,
                                              depth_intrinsics or d435_like_intrinsics(dw, dh, DEPTH_HFOV_DEG))
        self._depth_sensor.add_read_only_option(rs.option.depth_units, depth_unit)
        # depth and colour share one pose: rs.align then only resamples to the colour intrinsics
        ext = rs.extrinsics()
        ext.rotation = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
        ext.translation = [0.0, 0.0, 0.0]
        self.depth_profile.register_extrinsics_to(self.color_profile, ext)
        self.device.create_matcher(rs.matchers.default)
        self._number = 0
        self._plugged = threading.Event()
        self._plugged.set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._depth_plane: np.ndarray | None = None

    @staticmethod
    def _add_stream(sensor: Any, stream: Any, fmt: Any, bpp: int, w: int, h: int, fps: int, uid: int,
                    intrinsics: Any) -> Any:
        rs = _rs()
        vs = rs.video_stream()
        vs.type, vs.index, vs.uid = stream, 0, uid
        vs.width, vs.height, vs.fps, vs.bpp, vs.fmt = w, h, fps, bpp, fmt
        vs.intrinsics = intrinsics
        return sensor.add_video_stream(vs).as_video_stream_profile()

    # ------------------------------------------------------------ hot-plug
    @property
    def plugged(self) -> bool:
        return self._plugged.is_set()

    def unplug(self) -> None:
        """Take the camera away: the pattern pauses and ``query_devices()`` lists nothing.

        Its sensors are stopped and closed too, so a reader gets frames again only by reopening the
        camera after ``plug()``, as after a real unplug.
        """
        self._plugged.clear()
        for sensor in {id(s): s for s in (self._color_sensor, self._depth_sensor)}.values():
            for step in (sensor.stop, sensor.close):
                try:
                    step()
                except RuntimeError as e:  # not streaming, or not open
                    log.debug("unplug: %s", e)

    def plug(self) -> None:
        """Plug the camera back in: listed again, and a running pattern resumes."""
        self._plugged.set()

    def query_devices(self) -> list[Any]:
        """``rs.context.query_devices()`` for this camera alone: ``software_device.add_to`` lists nothing."""
        return [self.device] if self.plugged else []

    def inject(self, color: np.ndarray | None, depth_raw: np.ndarray | None, *, stamp_ms: float | None = None) -> int:
        """Feed one colour (h, w, 3 uint8) and/or raw depth (h, w uint16, in ``depth_unit``) frame.

        Returns the frame number. Stamps are host time (system_time domain) in ms since the epoch.
        """
        rs = _rs()
        self._number += 1
        stamp = time.time() * 1000.0 if stamp_ms is None else stamp_ms
        for sensor, profile, arr, bpp, dtype in (
            (self._color_sensor, self.color_profile, color, 3, np.uint8),
            (self._depth_sensor, self.depth_profile, depth_raw, 2, np.uint16),
        ):
            if arr is None:
                continue
            arr = np.ascontiguousarray(arr, dtype=dtype)
            if arr.shape[:2] != (profile.height(), profile.width()):
                raise ValueError(f"frame of shape {arr.shape} for a {profile.width()}x{profile.height()} stream")
            frame = rs.software_video_frame()
            frame.pixels = arr
            frame.stride = profile.width() * bpp
            frame.bpp = bpp
            frame.timestamp = stamp
            frame.domain = rs.timestamp_domain.system_time
            frame.frame_number = self._number
            frame.profile = profile
            if bpp == 2:
                frame.depth_units = self.depth_unit
            sensor.on_video_frame(frame)
        return self._number

    def record_bag(self, path: str, frames: int = 30) -> None:
        """Write ``frames`` frames of the pattern to an SDK ``.bag`` (rs.recorder) at the colour rate.

        Takes ``frames / fps`` seconds: the recorder files frames by the time they arrive, and playback
        in real time replays that timing (frames injected at once would play back at once).
        """
        from so100_driver.realsense_source import RealSenseSource

        rs = _rs()
        recorder = rs.recorder(str(path), self.device)
        source = RealSenseSource(self.config, device=recorder)
        source.open()
        try:
            period = 1.0 / self.config.color_profile[2]
            start, wall = time.monotonic(), time.time() * 1000.0
            for k in range(frames):
                color, depth = self.pattern(k)
                self.inject(color if self.config.enable_color else None,
                            depth if self.config.enable_depth else None, stamp_ms=wall + k * period * 1000.0)
                while source.poll() is not None:  # keep the syncer drained
                    pass
                time.sleep(max(0.0, start + (k + 1) * period - time.monotonic()))
        finally:
            source.close()
            recorder.pause()
            del recorder  # the file is finished when the recorder is released

    # ------------------------------------------------------------ generated pattern
    def pattern(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Frame ``n`` of the demo pattern: a gradient sliding right; depth a plane from 0.5 m to 1.0 m (top to bottom)."""
        cw, ch, _ = self.config.color_profile
        dw, dh, _ = self.config.depth_profile
        x = (np.arange(cw) + 4 * n) % 256
        color = np.empty((ch, cw, 3), np.uint8)
        color[..., 0] = x[None, :]
        color[..., 1] = (np.arange(ch) * 255 // max(ch - 1, 1))[:, None]
        color[..., 2] = 128
        if self._depth_plane is None:
            mm = np.linspace(500.0, 1000.0, dh)[:, None] * np.ones((1, dw))
            self._depth_plane = np.rint(mm / (self.depth_unit * 1000.0)).astype(np.uint16)
        return color, self._depth_plane

    def start_pattern(self) -> None:
        """Inject the pattern at the colour profile's rate on a thread, until ``stop()``; none while unplugged."""
        fps = self.config.color_profile[2]

        def run() -> None:
            period, k, start = 1.0 / fps, 0, time.monotonic()
            while not self._stop.is_set():
                color, depth = self.pattern(k)
                if self.plugged:
                    self.inject(color if self.config.enable_color else None,
                                depth if self.config.enable_depth else None)
                k += 1
                self._stop.wait(max(0.0, start + k * period - time.monotonic()))

        self._thread = threading.Thread(target=run, name="realsense_synthetic", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
            self._thread = None
