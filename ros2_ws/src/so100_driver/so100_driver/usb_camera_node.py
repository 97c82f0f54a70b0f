"""usb_camera: a USB (UVC) camera through OpenCV on the contract topics of camera ``name``.

Publishes ``/cameras/<name>/image_raw`` (rgb8) and ``/cameras/<name>/camera_info`` at the camera's
rate, stamped with the time each frame was read, in frame ``<name>_optical_frame``. ``device`` is
an index (0), a ``/dev/videoN`` path, a video file (the no-hardware path, looping) or a stream URL.
camera_info is a pinhole of ``hfov_deg`` unless ``camera_info_url`` names a calibration YAML.
"""

from __future__ import annotations

import re
import time
from typing import Any

from so100_common import contract, messages, names
from so100_common.node import Node, run_node
from so100_driver.usb_camera_source import (
    Calibration,
    UsbCameraConfig,
    UsbCameraSource,
    load_calibration,
    pinhole,
)

NO_FRAMES_WARN_S = 5.0  # warn when nothing has been published this long
RATE_LOG_S = 30.0  # how often the publishing rate is logged


def _device_as_text(argv: list[str]) -> list[str]:
    """``-p device:=0`` -> ``-p device:='0'``: an index is given as a number but the parameter is a string."""
    return [re.sub(r"^((?:[\w/]+:)?device:=)(\d+)$", r"\1'\2'", a) if i and argv[i - 1] == "-p" else a
            for i, a in enumerate(argv)]


class UsbCamera(Node):
    def __init__(self, argv: list[str] | None = None) -> None:
        super().__init__("usb_camera", argv=None if argv is None else _device_as_text(argv))
        p = self.declare_parameter
        self.camera = p("name", "wrist", description="camera name: topics /cameras/<name>/..., frame <name>_optical_frame")
        device = p("device", "/dev/video0", description="camera index (0), /dev/videoN, a video file or a stream URL")
        width = p("width", 640, min_value=0, description="image width (0 = as delivered; else resized to it)")
        height = p("height", 480, min_value=0, description="image height (0 = as delivered; else resized to it)")
        fps = p("fps", 30.0, min_value=0.0, description="frame rate asked of the camera; a file plays at it (0 = its own)")
        fourcc = p("fourcc", "MJPG", description="pixel format asked of the camera (MJPG, YUYV; '' = the driver's)")
        loop = p("loop", True, description="a video file starts again at its end")
        timeout = p("timeout_s", 2.0, min_value=0.1, description="no frame for this long: reopen the camera")
        self.frame_id = p("frame_id", "", description="frame id ('' = <name>_optical_frame)") or names.optical_frame(
            self.camera)
        self.hfov = p("hfov_deg", 70.0, min_value=1.0, max_value=179.0,
                      description="horizontal field of view of the pinhole camera_info")
        url = p("camera_info_url", "", description="calibration YAML (file:///path.yaml; camera_calibration's layout)")
        self.end_parameters()  # --help stops here, before the camera
        self.calibration: Calibration | None = load_calibration(url) if url else None

        self.source = UsbCameraSource(UsbCameraConfig(device, width, height, fps, fourcc, loop, timeout))
        self.source.open()  # raises UsbCameraError, naming the video devices there are
        self.image_pub = contract.camera_image(self.camera).publisher(self)
        self.info_pub = contract.camera_info(self.camera).publisher(self)
        self._info_size: tuple[int, int] | None = None
        self._info_msg: Any = None
        self._last_frame = self._last_log = time.monotonic()
        self._published_since_log = 0
        self._warned = False
        rate = self.source.fps or 30.0
        self.create_timer(1.0 / (2 * rate), self.tick)  # poll at twice the frame rate: ≤ half a frame of latency
        w, h = self.source.size or (0, 0)
        self.logger.info("usb_camera up: %s -> %s (%dx%d, %.4g fps, frame %s, camera_info %s)", self.source.name,
                         names.camera_image_topic(self.camera), w, h, rate, self.frame_id,
                         url or f"pinhole hfov {self.hfov:g} deg")

    def tick(self) -> None:
        now = time.monotonic()
        frame = self.source.poll()
        if frame is not None:
            self.image_pub.publish(messages.image_from_numpy(frame.rgb, "rgb8", frame_id=self.frame_id,
                                                             stamp_ns=frame.stamp_ns))
            self.info_pub.publish(self._info(frame.rgb.shape[1], frame.rgb.shape[0], frame.stamp_ns))
            self._last_frame, self._warned = now, False
            self._published_since_log += 1
        elif not self._warned and now - self._last_frame > NO_FRAMES_WARN_S:
            self._warned = True
            why = "end of the file (loop:=false)" if self.source.ended else "unplugged? reopening it"
            self.logger.warning("no frames from %s for %.0f s (%s)", self.source.name, NO_FRAMES_WARN_S, why)
        if now - self._last_log >= RATE_LOG_S:
            self.logger.info("%s: %.1f fps published", names.camera_image_topic(self.camera),
                             self._published_since_log / (now - self._last_log))
            self._last_log, self._published_since_log = now, 0

    def _info(self, width: int, height: int, stamp_ns: int) -> Any:
        if self._info_size != (width, height):
            if self.calibration is not None:
                cal = self.calibration
                if (cal.model.width, cal.model.height) != (width, height):
                    self.logger.warning("calibration is for %dx%d, images are %dx%d: scaling it", cal.model.width,
                                        cal.model.height, width, height)
                    cal = cal.scaled(width, height)
                msg = messages.camera_info(width, height, cal.model.k, d=cal.model.d,
                                           distortion_model=cal.model.distortion_model)
                msg.r[:] = cal.r.reshape(-1)
                msg.p[:] = cal.p.reshape(-1)
            else:
                model = pinhole(width, height, self.hfov)
                msg = messages.camera_info(width, height, model.k, d=model.d, distortion_model=model.distortion_model)
            self._info_size, self._info_msg = (width, height), msg
        msg = self._info_msg
        msg.header = messages.header(self.frame_id, stamp_ns)
        return msg

    def destroy(self) -> None:
        self.source.close()
        super().destroy()


def main() -> int:
    return run_node(UsbCamera)


if __name__ == "__main__":
    raise SystemExit(main())
