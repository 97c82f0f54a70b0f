"""realsense_camera: an Intel RealSense camera's colour and depth under the node's namespace.

Topics keep realsense-ros names (relative, so ``__ns:=/cameras/overhead`` puts them under it):
``color/image_raw`` (rgb8), ``color/camera_info``, ``depth/image_rect_raw`` (16UC1, millimetres),
``depth/camera_info`` and, with ``align_depth.enable``, ``aligned_depth_to_color/image_raw`` and
``aligned_depth_to_color/camera_info``. ``rosbag_filename`` plays an SDK ``.bag`` recording instead
of a camera; ``source:=synthetic`` streams a generated pattern from a
pyrealsense2 software device through the real SDK: the no-hardware path.
"""

from __future__ import annotations

import time
from typing import Any

from so100_common import messages
from so100_common.node import Node, run_node
from so100_common.qos import SENSOR_DATA
from so100_driver.realsense_source import CameraError, CameraModel, RealSenseConfig, RealSenseSource, parse_profile

NO_FRAMES_WARN_S = 5.0  # warn when the camera has been silent this long


class RealSenseCamera(Node):
    def __init__(self, argv: list[str] | None = None) -> None:
        super().__init__("realsense_camera", argv=argv)
        p = self.declare_parameter
        serial = p("serial_no", "", description="camera serial number; '' takes the first camera")
        enable_color = p("enable_color", True, description="stream the colour camera (rgb8)")
        enable_depth = p("enable_depth", True, description="stream depth (z16, published in millimetres)")
        color_profile = p("rgb_camera.color_profile", "640x480x30", description="colour WIDTHxHEIGHTxFPS",
                          validator=_profile_error)
        depth_profile = p("depth_module.depth_profile", "640x480x30", description="depth WIDTHxHEIGHTxFPS",
                          validator=_profile_error)
        align = p("align_depth.enable", False, description="also publish depth reprojected into the colour camera")
        bag = p("rosbag_filename", "", description="play this .bag (SDK recording) instead of a camera")
        self.camera_name = p("camera_name", "camera", description="prefix of the optical frame ids")
        source = p("source", "device", choices=("device", "synthetic"),
                   description="device: a real camera; synthetic: a generated pattern through the SDK's software device")
        self.end_parameters()  # --help stops here, before the camera
        self.config = RealSenseConfig(serial, enable_color, enable_depth, parse_profile(color_profile),
                                      parse_profile(depth_profile), align, bag)
        if bag and source == "synthetic":
            raise CameraError("rosbag_filename and source:=synthetic exclude each other; set one")
        self.color_frame = f"{self.camera_name}_color_optical_frame"
        self.depth_frame = f"{self.camera_name}_depth_optical_frame"

        self.synthetic: Any = None
        device = None
        if source == "synthetic":
            from so100_driver.realsense_synthetic import SyntheticCamera

            self.synthetic = SyntheticCamera(self.config)
            device = self.synthetic.device
        self.source = RealSenseSource(self.config, device=device)
        self.source.open()  # raises CameraError naming what the SDK sees when there is no camera

        self.pubs: dict[str, Any] = {}
        if enable_color:
            self.pubs["color"] = self.create_publisher(messages.Image, "color/image_raw", SENSOR_DATA)
            self.pubs["color_info"] = self.create_publisher(messages.CameraInfo, "color/camera_info", SENSOR_DATA)
        if enable_depth:
            self.pubs["depth"] = self.create_publisher(messages.Image, "depth/image_rect_raw", SENSOR_DATA)
            self.pubs["depth_info"] = self.create_publisher(messages.CameraInfo, "depth/camera_info", SENSOR_DATA)
        if align:
            self.pubs["aligned"] = self.create_publisher(messages.Image, "aligned_depth_to_color/image_raw",
                                                         SENSOR_DATA)
            self.pubs["aligned_info"] = self.create_publisher(messages.CameraInfo,
                                                              "aligned_depth_to_color/camera_info", SENSOR_DATA)
        self._last_frame = time.monotonic()
        self._warned = False
        fps = max(self.config.color_profile[2] if enable_color else 0, self.config.depth_profile[2] if enable_depth else 0)
        self.create_timer(1.0 / (2 * fps), self.tick)  # poll at twice the frame rate: ≤ half a frame of latency
        if self.synthetic is not None:
            self.synthetic.start_pattern()
        self.logger.info("realsense_camera up: %s (serial %s), source %s, topics under %s", self.source.name,
                         self.source.serial, f"bag {bag}" if bag else source, self.resolve("color/image_raw").rsplit("/", 2)[0] or "/")

    def tick(self) -> None:
        got = False
        while (frames := self.source.poll()) is not None:
            got = True
            self.publish(frames)
        now = time.monotonic()
        if got:
            self._last_frame, self._warned = now, False
        elif not self._warned and now - self._last_frame > NO_FRAMES_WARN_S:
            self._warned = True
            why = "the end of the recording?" if self.config.rosbag_filename else "unplugged, or USB bandwidth?"
            self.logger.warning("no frames from %s for %.0f s (%s)", self.source.name, NO_FRAMES_WARN_S, why)

    def publish(self, frames: Any) -> None:
        # Stamps: the frame's own timestamp when the SDK gives it on the host clock (global_time,
        # system_time); else (hardware_clock) the time the frameset was received.
        if frames.color is not None:
            stamp = frames.color_stamp_ns or frames.received_ns
            self.pubs["color"].publish(messages.image_from_numpy(frames.color, "rgb8", frame_id=self.color_frame,
                                                                 stamp_ns=stamp))
            self.pubs["color_info"].publish(_info(self.source.color_model, self.color_frame, stamp))
        if frames.depth is not None:
            stamp = frames.depth_stamp_ns or frames.received_ns
            self.pubs["depth"].publish(messages.image_from_numpy(frames.depth, "16UC1", frame_id=self.depth_frame,
                                                                 stamp_ns=stamp))
            self.pubs["depth_info"].publish(_info(self.source.depth_model, self.depth_frame, stamp))
        if frames.aligned_depth is not None and "aligned" in self.pubs:
            stamp = frames.color_stamp_ns or frames.received_ns
            self.pubs["aligned"].publish(messages.image_from_numpy(frames.aligned_depth, "16UC1",
                                                                   frame_id=self.color_frame, stamp_ns=stamp))
            self.pubs["aligned_info"].publish(_info(self.source.color_model, self.color_frame, stamp))

    def destroy(self) -> None:
        if self.synthetic is not None:
            self.synthetic.stop()
        self.source.close()
        super().destroy()


def _profile_error(value: Any) -> str | None:
    try:
        parse_profile(str(value))
    except CameraError as e:
        return str(e)
    return None


def _info(model: CameraModel | None, frame_id: str, stamp_ns: int) -> Any:
    assert model is not None
    return messages.camera_info(model.width, model.height, model.k, d=model.d,
                                distortion_model=model.distortion_model, frame_id=frame_id, stamp_ns=stamp_ns)


def main() -> int:
    return run_node(RealSenseCamera)


if __name__ == "__main__":
    raise SystemExit(main())
