"""Intel RealSense capture through pyrealsense2: colour (rgb8) and depth (millimetres) as numpy arrays.

The core of the ``realsense_camera`` node; it never imports the ROS runtime.

pyrealsense2 2.56 cannot run an ``rs.pipeline`` on a ``software_device``: ``software_device.add_to``
leaves the context's device list empty and the pipeline answers "No device connected". So this
module does what the pipeline does itself: it opens one stream profile on each sensor and starts
the sensors into one ``rs.syncer``, which pairs colour and depth frames by timestamp. A real camera,
a software device (``realsense_synthetic``) and a ``.bag`` playback device go through exactly this code.

Depth leaves here in millimetres (``uint16``), whatever the sensor's depth unit (D400: 1 mm by
default, D405: 0.1 mm), so every consumer reads DESIGN.md's ``16UC1`` millimetres.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from so100_driver.errors import DriverError

log = logging.getLogger(__name__)


class CameraError(DriverError):
    """No RealSense camera, an unsupported profile, or a camera that stopped sending frames."""


def _rs() -> Any:
    try:
        import pyrealsense2 as rs
    except ImportError as e:  # the wheel is there but libusb is not, or no wheel at all
        raise CameraError(
            f"pyrealsense2 cannot be imported ({e}); install `lerobot[intelrealsense]` and the "
            "Debian package libusb-1.0-0"
        ) from e
    return rs


_PROFILE = re.compile(r"^\s*(\d+)\s*[x,]\s*(\d+)\s*[x,]\s*(\d+)\s*$")


def parse_profile(text: str) -> tuple[int, int, int]:
    """``'640x480x30'`` (realsense-ros 4.x) or ``'640,480,30'`` (3.x) -> ``(width, height, fps)``."""
    m = _PROFILE.match(text)
    if not m:
        raise CameraError(f"stream profile {text!r} is not WIDTHxHEIGHTxFPS, e.g. '640x480x30'")
    width, height, fps = (int(g) for g in m.groups())
    if width <= 0 or height <= 0 or fps <= 0:
        raise CameraError(f"stream profile {text!r} has a zero width, height or fps")
    return width, height, fps


@dataclass
class RealSenseConfig:
    """What to stream; one field per node parameter."""

    serial_no: str = ""  # '' takes the first camera the SDK lists
    enable_color: bool = True
    enable_depth: bool = True
    color_profile: tuple[int, int, int] = (640, 480, 30)  # width, height, fps; rgb8
    depth_profile: tuple[int, int, int] = (640, 480, 30)  # width, height, fps; z16
    align_depth: bool = False  # also reproject depth into the colour camera (rs.align)
    rosbag_filename: str = ""  # play a .bag recorded by the SDK (realsense-viewer, rs.recorder) instead of a camera

    def __post_init__(self) -> None:
        if not (self.enable_color or self.enable_depth):
            raise CameraError("enable_color and enable_depth are both false: nothing to stream")
        if self.align_depth and not (self.enable_color and self.enable_depth):
            raise CameraError("align_depth needs both enable_color and enable_depth")
        for name in ("color_profile", "depth_profile"):
            value = getattr(self, name)
            if isinstance(value, str):
                setattr(self, name, parse_profile(value))
            elif len(value) != 3 or min(value) <= 0:
                raise CameraError(f"{name} must be (width, height, fps) > 0, got {value!r}")


@dataclass(frozen=True)
class CameraModel:
    """Pinhole intrinsics of one stream, ready for sensor_msgs/CameraInfo."""

    width: int
    height: int
    k: np.ndarray  # 3x3
    d: np.ndarray  # distortion coefficients
    distortion_model: str  # ROS name: plumb_bob or equidistant


def camera_model(intrinsics: Any) -> CameraModel:
    """``rs.intrinsics`` -> K (3x3), D and the ROS distortion model name (as realsense-ros maps them)."""
    rs = _rs()
    k = np.array(
        [[intrinsics.fx, 0.0, intrinsics.ppx], [0.0, intrinsics.fy, intrinsics.ppy], [0.0, 0.0, 1.0]],
        dtype=np.float64,
    )
    fisheye = (rs.distortion.kannala_brandt4, rs.distortion.ftheta)
    model = "equidistant" if intrinsics.model in fisheye else "plumb_bob"
    coeffs = np.asarray(list(intrinsics.coeffs), dtype=np.float64)
    return CameraModel(int(intrinsics.width), int(intrinsics.height), k, coeffs[:4] if model == "equidistant" else coeffs,
                       model)


@dataclass
class Frames:
    """One synchronised capture; a stream that was not in this frameset is None."""

    color: np.ndarray | None = None  # (h, w, 3) uint8, RGB
    depth: np.ndarray | None = None  # (h, w) uint16, millimetres, 0 = no data
    aligned_depth: np.ndarray | None = None  # depth in the colour camera's pixels, millimetres
    color_stamp_ns: int | None = None  # capture time on the host clock; None when the camera has none
    depth_stamp_ns: int | None = None
    color_number: int = -1
    depth_number: int = -1
    received_ns: int = field(default_factory=time.time_ns)


def describe_devices(context: Any) -> str:
    """``'Intel RealSense D435 (serial 0123), ...'`` or ``'none'``, for error messages."""
    rs = _rs()
    found = []
    for dev in context.query_devices():
        name = dev.get_info(rs.camera_info.name) if dev.supports(rs.camera_info.name) else "?"
        serial = dev.get_info(rs.camera_info.serial_number) if dev.supports(rs.camera_info.serial_number) else "?"
        found.append(f"{name} (serial {serial})")
    return ", ".join(found) or "none"


def find_device(context: Any, serial_no: str = "") -> Any:
    """The camera with ``serial_no`` (or the first one); CameraError listing what the SDK sees otherwise."""
    rs = _rs()
    devices = list(context.query_devices())
    if not devices:
        wanted = f"with serial_no {serial_no!r} " if serial_no else ""
        raise CameraError(
            f"no RealSense device {wanted}found (the SDK sees: none); plug a camera in (USB 3), check "
            "`rs-enumerate-devices`, or run the node with source:=synthetic for the no-hardware path"
        )
    if not serial_no:
        return devices[0]
    for dev in devices:
        if dev.supports(rs.camera_info.serial_number) and dev.get_info(rs.camera_info.serial_number) == serial_no:
            return dev
    raise CameraError(
        f"no RealSense device with serial_no {serial_no!r}; the SDK sees: {describe_devices(context)}"
    )


def _host_stamp_ns(frame: Any) -> int | None:
    """The frame's timestamp when it is on the host clock (global or system time), else None."""
    rs = _rs()
    if frame.get_frame_timestamp_domain() in (rs.timestamp_domain.global_time, rs.timestamp_domain.system_time):
        return int(round(frame.get_timestamp() * 1e6))  # the SDK gives milliseconds since the epoch
    return None


class _RemovalWatch:
    """A devices-changed callback that fires ``callback`` when ``device`` (the current one) is removed."""

    def __init__(self, callback: Callable[[], None]) -> None:
        self.callback = callback
        self.device: Any = None

    def __call__(self, info: Any) -> None:
        if self.device is not None and info.was_removed(self.device):
            self.callback()


class RealSenseSource:
    """A RealSense camera (or a ``software_device``) streaming colour and depth into numpy.

    ``RealSenseSource(config)`` finds the camera through ``rs.context()`` (or ``context=``: anything
    with ``query_devices()``, e.g. a ``SyntheticCamera``); pass ``device=`` to use a device object
    directly. Use as a context manager, or call ``open()`` / ``close()``; after an unplug,
    ``reopen()`` finds the camera again.
    """

    def __init__(self, config: RealSenseConfig, *, device: Any = None, context: Any = None) -> None:
        self.config = config
        self._device = device
        self._given_device = device is not None
        self._context = context
        self._watch: _RemovalWatch | None = None
        self._sensors: list[Any] = []
        self._syncer: Any = None
        self._align: Any = None
        self.depth_scale = 0.001  # metres per raw depth unit, read from the sensor at open()
        self.color_model: CameraModel | None = None
        self.depth_model: CameraModel | None = None
        self.name = ""
        self.serial = ""

    # ------------------------------------------------------------ lifecycle
    def __enter__(self) -> RealSenseSource:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def is_open(self) -> bool:
        return self._syncer is not None

    def open(self) -> None:
        rs = _rs()
        if self._device is None:
            self._context = self._context or rs.context()
            if self.config.rosbag_filename:
                self._device = self._load_bag(self.config.rosbag_filename)
            else:
                self._device = find_device(self._context, self.config.serial_no)
        dev = self._device
        if self._watch is not None:
            self._watch.device = dev
        self.name = dev.get_info(rs.camera_info.name) if dev.supports(rs.camera_info.name) else "RealSense"
        self.serial = dev.get_info(rs.camera_info.serial_number) if dev.supports(rs.camera_info.serial_number) else ""
        wanted = []
        if self.config.enable_color:
            wanted.append((rs.stream.color, rs.format.rgb8, self.config.color_profile))
        if self.config.enable_depth:
            wanted.append((rs.stream.depth, rs.format.z16, self.config.depth_profile))
        sensors = list(dev.query_sensors())
        chosen = [self._pick(sensors, stream, fmt, prof) for stream, fmt, prof in wanted]
        # a sensor may carry both streams (a D405's colour comes from its Stereo Module): open it once
        by_sensor: dict[int, list[Any]] = {}
        for index, profile in chosen:
            by_sensor.setdefault(index, []).append(profile)
        self._syncer = rs.syncer(4)
        try:
            for index, profiles in by_sensor.items():
                sensor = sensors[index]
                sensor.open(profiles if len(profiles) > 1 else profiles[0])
                self._sensors.append(sensor)
                for profile in profiles:
                    model = camera_model(profile.as_video_stream_profile().get_intrinsics())
                    if profile.stream_type() == rs.stream.color:
                        self.color_model = model
                        continue
                    self.depth_model = model
                    if sensor.is_depth_sensor():
                        # the SDK hands a float32 (0.0001 -> 9.99999997e-05); keep the decimal value it stands for
                        self.depth_scale = float(f"{sensor.as_depth_sensor().get_depth_scale():.6g}")
            for sensor in self._sensors:
                sensor.start(self._syncer)
        except RuntimeError as e:
            self.close()
            raise CameraError(f"cannot start {self.name} (serial {self.serial}): {e}") from e
        if self.config.align_depth:
            self._align = rs.align(rs.stream.color)
        log.info("%s (serial %s) streaming: %s; depth unit %.6g m", self.name, self.serial,
                 ", ".join(f"{rs.stream(p.stream_type()).name} {p.as_video_stream_profile().width()}x"
                           f"{p.as_video_stream_profile().height()}@{p.fps()}" for _, p in chosen),
                 self.depth_scale)

    def reopen(self) -> RealSenseSource:
        """A new, open source for this camera (call ``close()`` on this one first).

        The camera is found again through the same context, by ``serial_no`` (or the first one):
        an unplugged camera's device handle is dead. A device given to the constructor is reused.
        CameraError while the camera is absent; a recording is never reopened.
        """
        if self.config.rosbag_filename:
            raise CameraError(f"the recording {self.config.rosbag_filename!r} is not reopened")
        source = RealSenseSource(self.config, device=self._device if self._given_device else None,
                                 context=self._context)
        source._watch = self._watch
        source.open()
        return source

    def watch_removal(self, callback: Callable[[], None]) -> bool:
        """Call ``callback`` (from an SDK thread) when this camera, or one ``reopen()`` returns, is unplugged.

        Call after ``open()``; False when the context reports no device changes (a ``SyntheticCamera``).
        """
        register = getattr(self._context, "set_devices_changed_callback", None)
        if register is None:
            return False
        self._watch = _RemovalWatch(callback)
        self._watch.device = self._device
        register(self._watch)
        return True

    def _load_bag(self, path: str) -> Any:
        if not Path(path).is_file():
            raise CameraError(f"rosbag_filename {path!r} is not a file")
        try:
            device = self._context.load_device(path)
        except RuntimeError as e:
            raise CameraError(f"cannot play {path!r} as a RealSense recording: {e}") from e
        device.as_playback().set_real_time(True)  # frames at the recorded rate, as realsense-ros plays them
        return device

    def _pick(self, sensors: list[Any], stream: Any, fmt: Any, profile: tuple[int, int, int]) -> tuple[int, Any]:
        """(index of the sensor, its stream profile) matching stream, format and WxHxFPS exactly."""
        width, height, fps = profile
        offered = []
        for index, sensor in enumerate(sensors):
            for p in sensor.get_stream_profiles():
                if p.stream_type() != stream or not p.is_video_stream_profile():
                    continue
                v = p.as_video_stream_profile()
                if p.format() == fmt and (v.width(), v.height(), p.fps()) == (width, height, fps):
                    return index, p
                if p.format() == fmt:
                    offered.append(f"{v.width()}x{v.height()}x{p.fps()}")
        name = "rgb_camera.color_profile" if stream == _rs().stream.color else "depth_module.depth_profile"
        raise CameraError(
            f"{self.name} (serial {self.serial}) has no {stream.name} {fmt.name} profile "
            f"{width}x{height}x{fps}; set {name} to one of: {', '.join(sorted(set(offered))) or 'none'}"
        )

    def close(self) -> None:
        for sensor in self._sensors:
            for step in (sensor.stop, sensor.close):
                try:
                    step()
                except RuntimeError as e:  # already stopped, or the camera was unplugged
                    log.debug("closing a sensor: %s", e)
        self._sensors.clear()
        self._syncer = None
        self._align = None

    # ------------------------------------------------------------ frames
    def to_millimetres(self, raw: np.ndarray) -> np.ndarray:
        """Raw z16 depth -> uint16 millimetres (0 stays 0 = no data; saturates at 65535 mm)."""
        if abs(self.depth_scale - 0.001) < 1e-9:
            return np.array(raw, dtype=np.uint16, copy=True)
        mm = np.rint(raw.astype(np.float64) * (self.depth_scale * 1000.0))
        return np.clip(mm, 0, 65535).astype(np.uint16)

    def poll(self) -> Frames | None:
        """The next frameset if one is ready, else None (never blocks)."""
        if self._syncer is None:
            raise CameraError("the camera is not open")
        frameset = self._syncer.poll_for_frames()
        return self._convert(frameset) if frameset else None

    def read(self, timeout_s: float = 1.0) -> Frames:
        """Wait up to ``timeout_s`` for the next frameset."""
        if self._syncer is None:
            raise CameraError("the camera is not open")
        ok, frameset = self._syncer.try_wait_for_frames(int(timeout_s * 1000))
        if not ok:
            raise CameraError(f"{self.name} (serial {self.serial}) sent no frames for {timeout_s:g} s")
        return self._convert(frameset)

    def read_complete(self, timeout_s: float = 2.0) -> Frames:
        """Wait for a frameset that holds every enabled stream (the syncer starts with singles)."""
        deadline = time.monotonic() + timeout_s
        while True:
            frames = self.read(max(0.05, deadline - time.monotonic()))
            if (frames.color is not None or not self.config.enable_color) and (
                frames.depth is not None or not self.config.enable_depth
            ):
                return frames
            if time.monotonic() > deadline:
                raise CameraError(f"{self.name} sent no complete colour+depth frameset for {timeout_s:g} s")

    def _convert(self, frameset: Any) -> Frames:
        rs = _rs()
        out = Frames()
        fs = frameset.as_frameset() if frameset.is_frameset() else None
        color = fs.get_color_frame() if fs else (frameset if frameset.get_profile().stream_type() == rs.stream.color
                                                  else None)
        depth = fs.get_depth_frame() if fs else (frameset if frameset.get_profile().stream_type() == rs.stream.depth
                                                  else None)
        if color:
            out.color = np.array(np.asanyarray(color.get_data()), dtype=np.uint8, copy=True)
            out.color_stamp_ns = _host_stamp_ns(color)
            out.color_number = int(color.get_frame_number())
        if depth:
            out.depth = self.to_millimetres(np.asanyarray(depth.get_data()))
            out.depth_stamp_ns = _host_stamp_ns(depth)
            out.depth_number = int(depth.get_frame_number())
        if self._align is not None and color and depth and fs:
            aligned = self._align.process(fs).get_depth_frame()
            if aligned:
                out.aligned_depth = self.to_millimetres(np.asanyarray(aligned.get_data()))
        return out
