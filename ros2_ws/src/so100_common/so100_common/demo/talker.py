"""demo_talker: publishes a swaying arm on /leader/joint_states and a test image.

Stands in for a leader arm and a camera until the simulation provides them.
"""

from __future__ import annotations

import math
import time

import numpy as np

from so100_common import messages, names
from so100_common.node import Node, run_node
from so100_common.qos import SENSOR_DATA


def test_pattern(height: int, width: int, t: float) -> np.ndarray:
    """An rgb8 frame with a moving bar, so a viewer can see frames change."""
    img = np.zeros((height, width, 3), dtype=np.uint8)
    img[..., 0] = np.linspace(0, 255, width, dtype=np.uint8)[None, :]
    img[..., 1] = np.linspace(0, 255, height, dtype=np.uint8)[:, None]
    x = int((t * 0.25 % 1.0) * width)
    img[:, x : x + 8, 2] = 255
    return img


class DemoTalker(Node):
    def __init__(self, argv: list[str]) -> None:
        super().__init__("demo_talker", argv=argv)
        rate = self.declare_parameter("rate", 100.0, description="joint state rate (Hz)", min_value=0.1, max_value=2000.0)
        image_rate = self.declare_parameter("image_rate", 30.0, description="image rate (Hz), 0 = no images", min_value=0.0)
        self.width = self.declare_parameter("width", 640, description="image width (px)", min_value=1)
        self.height = self.declare_parameter("height", 480, description="image height (px)", min_value=1)
        self.amplitude = self.declare_parameter("amplitude", 0.5, description="joint sway (rad)")
        self.joints_pub = self.create_publisher(messages.JointState, names.LEADER_JOINT_STATES)
        self.image_pub = self.create_publisher(messages.Image, names.camera_image_topic("overhead"), SENSOR_DATA)
        self.t0 = time.monotonic()
        self.create_timer(1.0 / rate, self.publish_joints)
        if image_rate > 0:
            self.create_timer(1.0 / image_rate, self.publish_image)
        self.logger.info("publishing %s at %.0f Hz and %dx%d images at %.0f Hz (transport: %s)",
                         self.joints_pub.topic, rate, self.width, self.height, image_rate, self.transport)

    def publish_joints(self) -> None:
        t = time.monotonic() - self.t0
        pos = [self.amplitude * math.sin(2 * math.pi * 0.2 * t + i) for i in range(len(names.JOINT_NAMES))]
        self.joints_pub.publish(messages.joint_state(names.JOINT_NAMES, pos))

    def publish_image(self) -> None:
        frame = test_pattern(self.height, self.width, time.monotonic() - self.t0)
        self.image_pub.publish(messages.image_from_numpy(frame, "rgb8", frame_id=names.optical_frame("overhead")))


def main() -> int:
    return run_node(DemoTalker)


if __name__ == "__main__":
    raise SystemExit(main())
