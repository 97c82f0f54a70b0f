"""realsense_camera: an Intel RealSense camera's colour and depth under the node's namespace.

Topics keep realsense-ros names (relative, so ``__ns:=/cameras/overhead`` puts them under it):
``color/image_raw`` (rgb8), ``color/camera_info``, ``depth/image_rect_raw`` (16UC1, millimetres),
``depth/camera_info`` and, with ``align_depth.enable``, ``aligned_depth_to_color/image_raw`` and
``aligned_depth_to_color/camera_info``. ``rosbag_filename`` plays an SDK ``.bag`` recording instead
of a camera; ``source:=synthetic`` streams a generated pattern from a
pyrealsense2 software device through the real SDK: the no-hardware path.

A camera that fails, goes silent for ``frame_timeout`` or is unplugged is closed and reopened every
``reconnect_period`` (``so100_driver.reconnect``); nothing is published until it streams again.
"""

from __future__ import annotations

import time
from typing import Any, cast

from so100_common import messages
from so100_common.node import Node, run_node
from so100_common.qos import SENSOR_DATA
from so100_driver.realsense_source import CameraError, CameraModel, RealSenseConfig, RealSenseSource, parse_profile
from so100_driver.reconnect import Reconnector


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
        frame_timeout = p("frame_timeout", 5.0, min_value=0.1, max_value=60.0,
                          description="seconds without frames after which the camera counts as lost")
        reconnect_period = p("reconnect_period", 1.0, min_value=0.1, max_value=60.0,
                             description="seconds between attempts to reopen a lost camera (by serial_no)")
        self.end_parameters()  # --help stops here, before the camera
        self.config = RealSenseConfig(serial, enable_color, enable_depth, parse_profile(color_profile),
                                      parse_profile(depth_profile), align, bag)
        if bag and source == "synthetic":
            raise CameraError("rosbag_filename and source:=synthetic exclude each other; set one")
        self.color_frame = f"{self.camera_name}_color_optical_frame"
        self.depth_frame = f"{self.camera_name}_depth_optical_frame"

        self.synthetic: Any = None
        if source == "synthetic":
            from so100_driver.realsense_synthetic import SERIAL, SyntheticCamera

            self.synthetic = SyntheticCamera(self.config, serial=serial or SERIAL)
        # the synthetic camera lists its software device as rs.context would, while it is plugged in
        first = RealSenseSource(self.config, context=self.synthetic)
        first.open()  # raises CameraError naming what the SDK sees when there is no camera
        self.link = Reconnector(first, None if bag else first.reopen, frame_timeout=frame_timeout,
                                period=reconnect_period, now=time.monotonic(), log=self.logger,
                                errors=(RuntimeError, CameraError))
        if not bag:
            first.watch_removal(self.link.device_removed)

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
        fps = max(self.config.color_profile[2] if enable_color else 0, self.config.depth_profile[2] if enable_depth else 0)
        self.create_timer(1.0 / (2 * fps), self.tick)  # poll at twice the frame rate: ≤ half a frame of latency
        if self.synthetic is not None:
            self.synthetic.start_pattern()
        self.logger.info("realsense_camera up: %s (serial %s), source %s, topics under %s", first.name,
                         first.serial, f"bag {bag}" if bag else source, self.resolve("color/image_raw").rsplit("/", 2)[0] or "/")

    @property
    def source(self) -> RealSenseSource | None:
        """The open camera; None while it is lost."""
        return cast(RealSenseSource | None, self.link.source)

    def tick(self) -> None:
        for frames in self.link.tick(time.monotonic()):
            self.publish(frames)

    def publish(self, frames: Any) -> None:
        # Stamps: the frame's own timestamp when the SDK gives it on the host clock (global_time,
        # system_time); else (hardware_clock) the time the frameset was received.
        source = self.source
        assert source is not None  # frames come only from an open source
        if frames.color is not None:
            stamp = frames.color_stamp_ns or frames.received_ns
            self.pubs["color"].publish(messages.image_from_numpy(frames.color, "rgb8", frame_id=self.color_frame,
                                                                 stamp_ns=stamp))
            self.pubs["color_info"].publish(_info(source.color_model, self.color_frame, stamp))
        if frames.depth is not None:
            stamp = frames.depth_stamp_ns or frames.received_ns
            self.pubs["depth"].publish(messages.image_from_numpy(frames.depth, "16UC1", frame_id=self.depth_frame,
                                                                 stamp_ns=stamp))
            self.pubs["depth_info"].publish(_info(source.depth_model, self.depth_frame, stamp))
        if frames.aligned_depth is not None and "aligned" in self.pubs:
            stamp = frames.color_stamp_ns or frames.received_ns
            self.pubs["aligned"].publish(messages.image_from_numpy(frames.aligned_depth, "16UC1",
                                                                   frame_id=self.color_frame, stamp_ns=stamp))
            self.pubs["aligned_info"].publish(_info(source.color_model, self.color_frame, stamp))

    def destroy(self) -> None:
        if self.synthetic is not None:
            self.synthetic.stop()
        self.link.close()
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
