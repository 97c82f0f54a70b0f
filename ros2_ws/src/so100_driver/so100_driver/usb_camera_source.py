"""A USB (UVC) camera, a video file or a stream URL through OpenCV, as RGB numpy frames.

The core of the ``usb_camera`` node; it never imports the ROS runtime. A video file goes through
the same ``cv2.VideoCapture`` code as a camera (the no-hardware path): it plays at the requested
``fps`` and loops when asked. A reader thread keeps the newest frame; a camera that stops sending
is released and reopened with back-off until it answers again.
"""

from __future__ import annotations

import glob
import logging
import math
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import numpy as np
import yaml

from so100_driver.errors import DriverError
from so100_driver.realsense_source import CameraModel

log = logging.getLogger(__name__)


class UsbCameraError(DriverError):
    """A camera that does not open or sends no frames, a bad setting, or an unreadable calibration file."""


def _cv2() -> Any:
    try:
        import cv2
    except ImportError as e:
        raise UsbCameraError(f"OpenCV cannot be imported ({e}); install opencv-python-headless") from e
    return cv2


def video_devices() -> list[str]:
    """The ``/dev/video*`` nodes present, for error messages."""
    return sorted(glob.glob("/dev/video*"), key=lambda p: (len(p), p))


def parse_device(device: str | int) -> int | str:
    """``0`` / ``'0'`` -> camera index 0; anything else (``/dev/video2``, a file, a URL) stays a string."""
    if isinstance(device, int):
        return device
    text = str(device).strip()
    if not text:
        raise UsbCameraError("device is empty; give an index (0), a /dev/videoN path, a video file or a URL")
    return int(text) if text.isdigit() else text


def device_kind(device: int | str) -> str:
    """``'camera'`` (an index or a /dev node), ``'file'`` (a video file) or ``'stream'`` (a URL)."""
    if isinstance(device, int) or device.startswith("/dev/"):
        return "camera"
    if "://" in device and not device.startswith("file://"):
        return "stream"
    return "file"


@dataclass
class UsbCameraConfig:
    """What to capture; one field per node parameter. ``width``/``height`` 0 keep the delivered size."""

    device: str | int = "/dev/video0"
    width: int = 640
    height: int = 480
    fps: float = 30.0  # requested from a camera; a file plays at this rate (0 = the file's own)
    fourcc: str = "MJPG"  # pixel format asked of a camera ('' = the driver's default)
    loop: bool = True  # a file starts again at its end
    timeout_s: float = 2.0  # no frame for this long: the camera is reopened
    max_backoff_s: float = 8.0  # longest wait between reopen attempts

    def __post_init__(self) -> None:
        self.device = parse_device(self.device)
        if self.width < 0 or self.height < 0 or (self.width == 0) != (self.height == 0):
            raise UsbCameraError(f"width/height {self.width}x{self.height}: give both > 0, or both 0 (as delivered)")
        if self.fps < 0:
            raise UsbCameraError(f"fps {self.fps} is negative")
        if self.fourcc and len(self.fourcc) != 4:
            raise UsbCameraError(f"fourcc {self.fourcc!r} is not four characters, e.g. MJPG or YUYV")
        if self.timeout_s <= 0:
            raise UsbCameraError("timeout_s must be > 0")


@dataclass
class Frame:
    """One captured image."""

    rgb: np.ndarray  # (h, w, 3) uint8
    stamp_ns: int  # wall-clock time the frame was read (grabbed)
    number: int  # frames read since open


def pinhole(width: int, height: int, hfov_deg: float) -> CameraModel:
    """A distortion-free pinhole with horizontal field of view ``hfov_deg`` and square pixels."""
    if not 0 < hfov_deg < 180:
        raise UsbCameraError(f"hfov_deg {hfov_deg} is not in (0, 180)")
    f = (width / 2) / math.tan(math.radians(hfov_deg) / 2)
    k = np.array([[f, 0.0, (width - 1) / 2], [0.0, f, (height - 1) / 2], [0.0, 0.0, 1.0]])
    return CameraModel(width, height, k, np.zeros(5), "plumb_bob")


@dataclass(frozen=True)
class Calibration:
    """A camera_calibration_parsers YAML file: the model plus its rectification and projection."""

    model: CameraModel
    r: np.ndarray  # 3x3
    p: np.ndarray  # 3x4

    def scaled(self, width: int, height: int) -> Calibration:
        """The same calibration for images resized to ``width`` x ``height``."""
        m = self.model
        if (width, height) == (m.width, m.height):
            return self
        s = np.diag([width / m.width, height / m.height, 1.0])
        return Calibration(CameraModel(width, height, s @ m.k, m.d, m.distortion_model), self.r, s @ self.p)


def load_calibration(url: str) -> Calibration:
    """Read ``file:///path.yaml`` (or a plain path) in the ROS camera_info YAML layout."""
    parsed = urlparse(url)
    if parsed.scheme not in ("", "file"):
        raise UsbCameraError(f"camera_info_url {url!r}: only file:// URLs (or a path) are supported")
    path = Path(unquote(parsed.path) if parsed.scheme else url).expanduser()
    try:
        doc = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise UsbCameraError(f"cannot read the calibration {path}: {e}") from e

    def matrix(key: str, rows: int, cols: int | None = None) -> np.ndarray:
        try:
            data = np.asarray(doc[key]["data"], dtype=np.float64)
        except (KeyError, TypeError, ValueError) as e:
            raise UsbCameraError(f"calibration {path}: missing or malformed '{key}.data'") from e
        if cols is not None and data.size != rows * cols:
            raise UsbCameraError(f"calibration {path}: '{key}' has {data.size} values, expected {rows * cols}")
        return data.reshape(rows, -1) if cols is not None else data

    if not isinstance(doc, dict) or "image_width" not in doc or "image_height" not in doc:
        raise UsbCameraError(f"calibration {path}: not a camera_info YAML (no image_width/image_height)")
    k = matrix("camera_matrix", 3, 3)
    d = matrix("distortion_coefficients", 1).reshape(-1) if "distortion_coefficients" in doc else np.zeros(5)
    r = matrix("rectification_matrix", 3, 3) if "rectification_matrix" in doc else np.eye(3)
    p = matrix("projection_matrix", 3, 4) if "projection_matrix" in doc else np.hstack([k, np.zeros((3, 1))])
    model = CameraModel(int(doc["image_width"]), int(doc["image_height"]), k, d,
                        str(doc.get("distortion_model", "plumb_bob")))
    return Calibration(model, r, p)


class UsbCameraSource:
    """Frames from ``config.device`` on a reader thread; ``poll()`` / ``read()`` hand out the newest.

    Use as a context manager, or call ``open()`` / ``close()``.
    """

    def __init__(self, config: UsbCameraConfig) -> None:
        self.config = config
        self.kind = device_kind(config.device)  # type: ignore[arg-type]
        self.size: tuple[int, int] | None = None  # (width, height) of the frames handed out
        self.delivered: tuple[int, int] | None = None  # what the camera or file actually gives
        self.fps = config.fps
        self.ended = False  # a file without loop has played to its end
        self.reconnects = 0
        self._cap: Any = None
        self._cond = threading.Condition()
        self._latest: Frame | None = None
        self._taken = -1
        self._count = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> UsbCameraSource:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def name(self) -> str:
        return f"USB camera {self.config.device}" if self.kind == "camera" else f"{self.kind} {self.config.device}"

    # ------------------------------------------------------------ lifecycle
    def open(self) -> None:
        """Open the device and read a first frame; UsbCameraError says why not."""
        self._cap = self._open_capture()
        first = self._grab()
        if first is None:
            self._release()
            raise UsbCameraError(f"{self.name} opened but sent no frame; is another program using it, "
                                 f"or does it not support fourcc {self.config.fourcc!r}?")
        self._store(first)
        if self.kind == "file" and self.fps <= 0:
            self.fps = float(self._cap.get(_cv2().CAP_PROP_FPS)) or 30.0
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"usb_camera {self.config.device}", daemon=True)
        self._thread.start()

    def _open_capture(self) -> Any:
        cv2 = _cv2()
        c = self.config
        device = c.device
        if self.kind == "file":
            path = Path(unquote(urlparse(str(device)).path) if str(device).startswith("file://") else str(device))
            if not path.is_file():
                raise UsbCameraError(f"device {device!r} is neither a camera (an index, /dev/videoN) nor an existing "
                                     f"video file; video devices found: {', '.join(video_devices()) or 'none'}")
            cap = cv2.VideoCapture(str(path))
        elif self.kind == "camera":
            if isinstance(device, str) and not Path(device).exists():
                raise UsbCameraError(self._missing())
            cap = cv2.VideoCapture(device, cv2.CAP_V4L2)
        else:
            cap = cv2.VideoCapture(device)
        if not cap.isOpened():
            cap.release()
            if self.kind == "camera":
                raise UsbCameraError(self._missing())
            raise UsbCameraError(f"OpenCV cannot open {self.name} (unsupported format or unreachable)")
        if self.kind == "camera":
            if c.fourcc:  # before the size: some cameras offer a size only in one pixel format
                cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter_fourcc(*c.fourcc))
            if c.width:
                cap.set(cv2.CAP_PROP_FRAME_WIDTH, c.width)
                cap.set(cv2.CAP_PROP_FRAME_HEIGHT, c.height)
            if c.fps:
                cap.set(cv2.CAP_PROP_FPS, c.fps)
            cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # the newest frame, not a queue of old ones
            if hasattr(cv2, "CAP_PROP_READ_TIMEOUT_MSEC"):  # a silent camera fails a read instead of blocking
                cap.set(cv2.CAP_PROP_READ_TIMEOUT_MSEC, c.timeout_s * 1000)
            code = int(cap.get(cv2.CAP_PROP_FOURCC))
            got = "".join(chr((code >> 8 * i) & 0xFF) for i in range(4)).strip("\0") or "?"
            log.info("%s: %dx%d @ %.4g fps, %s", self.name, cap.get(cv2.CAP_PROP_FRAME_WIDTH),
                     cap.get(cv2.CAP_PROP_FRAME_HEIGHT), cap.get(cv2.CAP_PROP_FPS), got)
        return cap

    def _missing(self) -> str:
        found = ", ".join(video_devices()) or "none"
        return (f"{self.name} does not open (video devices found: {found}); plug the camera in, check "
                f"`v4l2-ctl --list-devices` and that you are in the 'video' group, or set device to a video file "
                "for the no-hardware path")

    def _release(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=max(2.0, self.config.timeout_s + 1.0))
        self._thread = None
        self._release()
        with self._cond:
            self._cond.notify_all()

    # ------------------------------------------------------------ reading
    def _grab(self) -> Frame | None:
        """Grab (stamped then) decode one frame, BGR -> RGB, resized to the configured size; None on failure."""
        cv2 = _cv2()
        if not self._cap.grab():
            return None
        stamp = time.time_ns()
        ok, bgr = self._cap.retrieve()
        if not ok or bgr is None:
            return None
        if bgr.ndim == 2:
            rgb = cv2.cvtColor(bgr, cv2.COLOR_GRAY2RGB)
        else:
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGRA2RGB if bgr.shape[2] == 4 else cv2.COLOR_BGR2RGB)
        h, w = rgb.shape[:2]
        if self.delivered != (w, h):
            if self.config.width and (w, h) != (self.config.width, self.config.height):
                log.warning("%s delivers %dx%d, not the requested %dx%d: resizing", self.name, w, h,
                            self.config.width, self.config.height)
            self.delivered = (w, h)
        if self.config.width and (w, h) != (self.config.width, self.config.height):
            rgb = cv2.resize(rgb, (self.config.width, self.config.height), interpolation=cv2.INTER_AREA)
        self._count += 1
        return Frame(rgb, stamp, self._count)

    def _store(self, frame: Frame) -> None:
        with self._cond:
            self._latest = frame
            self.size = (frame.rgb.shape[1], frame.rgb.shape[0])
            self._cond.notify_all()

    def _run(self) -> None:
        period = 1.0 / self.fps if self.kind == "file" and self.fps > 0 else 0.0
        next_t = time.monotonic() + period
        last_ok = time.monotonic()
        while not self._stop.is_set():
            if period:  # a file reads instantly: pace it at fps
                delay = next_t - time.monotonic()
                if delay > 0 and self._stop.wait(delay):
                    break
                next_t = max(next_t + period, time.monotonic() - period)
            frame = self._grab() if self._cap is not None else None
            if frame is not None:
                self._store(frame)
                last_ok = time.monotonic()
                continue
            if self.kind == "file":
                if not self.config.loop:
                    log.info("%s: end of file (loop is false)", self.name)
                    self.ended = True
                    with self._cond:
                        self._cond.notify_all()
                    return
                self._cap.set(_cv2().CAP_PROP_POS_FRAMES, 0)
                if (frame := self._grab()) is not None:
                    self._store(frame)
                    last_ok = time.monotonic()
                    continue
            elif time.monotonic() - last_ok < self.config.timeout_s:
                self._stop.wait(0.01)
                continue
            self._reconnect(time.monotonic() - last_ok)
            last_ok = time.monotonic()
            next_t = time.monotonic() + period

    def _reconnect(self, silent_s: float) -> None:
        """Release and reopen with doubling back-off until a frame arrives or close() is called."""
        log.error("%s sent no frame for %.1f s; reopening it", self.name, silent_s)
        backoff = 0.5
        while not self._stop.is_set():
            self._release()
            self.reconnects += 1
            try:
                self._cap = self._open_capture()
                frame = self._grab()
            except UsbCameraError as e:
                frame = None
                log.error("reopening failed: %s", e)
            if frame is not None:
                self._store(frame)
                log.info("%s is back after %d attempt(s)", self.name, self.reconnects)
                return
            log.warning("%s: no frame yet, next attempt in %.1f s", self.name, backoff)
            if self._stop.wait(backoff):
                return
            backoff = min(backoff * 2, self.config.max_backoff_s)

    def poll(self) -> Frame | None:
        """The newest frame not handed out yet, else None (never blocks)."""
        with self._cond:
            if self._latest is None or self._latest.number == self._taken:
                return None
            self._taken = self._latest.number
            return self._latest

    def read(self, timeout_s: float = 2.0) -> Frame:
        """Wait up to ``timeout_s`` for a frame not handed out yet."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while self._latest is None or self._latest.number == self._taken:
                left = deadline - time.monotonic()
                if left <= 0 or self.ended or self._stop.is_set():
                    why = "end of file" if self.ended else f"no frame for {timeout_s:g} s"
                    raise UsbCameraError(f"{self.name}: {why}")
                self._cond.wait(left)
            self._taken = self._latest.number
            return self._latest
