"""demo_listener: receives the talker's streams and reports rate and latency.

With ``duration`` > 0 it exits after that many seconds with a summary, and fails
(exit 1) when it received nothing: the main job's proof that the transport works.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from so100_common import messages, names
from so100_common.node import Node, run_node
from so100_common.qos import SENSOR_DATA, QoS


class StreamStats:
    """Counts and latencies (receive time minus header stamp) of one stream."""

    def __init__(self) -> None:
        self.latencies_ms: list[float] = []

    def add(self, stamp: Any) -> None:
        self.latencies_ms.append((time.time_ns() - messages.stamp_to_ns(stamp)) / 1e6)

    def summary(self, seconds: float) -> str:
        if not self.latencies_ms:
            return "nothing received"
        lat = np.asarray(self.latencies_ms)
        return (f"{len(lat)} msgs, {len(lat) / seconds:.1f} Hz, latency p50 {np.percentile(lat, 50):.2f} ms"
                f" p99 {np.percentile(lat, 99):.2f} ms")


class DemoListener(Node):
    def __init__(self, argv: list[str]) -> None:
        super().__init__("demo_listener", argv=argv)
        self.duration = self.declare_parameter("duration", 0.0, description="seconds to listen, 0 = forever", min_value=0.0)
        self.joints, self.images = StreamStats(), StreamStats()
        self.create_subscription(messages.JointState, names.LEADER_JOINT_STATES, self.on_joints, QoS(depth=100))
        self.create_subscription(messages.Image, names.camera_image_topic("overhead"), self.on_image, SENSOR_DATA)
        self.t0 = time.monotonic()
        self.exit_code = 0
        self.create_timer(1.0, self.report)

    def on_joints(self, msg: Any) -> None:
        if list(msg.name) != list(names.JOINT_NAMES):
            self.logger.warning("unexpected joint names %s", list(msg.name))
            return
        self.joints.add(msg.header.stamp)

    def on_image(self, msg: Any) -> None:
        messages.image_to_numpy(msg)  # checks the layout
        self.images.add(msg.header.stamp)

    def report(self) -> None:
        elapsed = time.monotonic() - self.t0
        if self.duration and elapsed >= self.duration:
            self.logger.info("joint states: %s", self.joints.summary(elapsed))
            self.logger.info("images:       %s", self.images.summary(elapsed))
            self.exit_code = 0 if self.joints.latencies_ms else 1
            if self.exit_code:
                self.logger.error("received no joint states in %.0f s: is the talker running and the router up?", elapsed)
            self.shutdown()
        else:
            self.logger.info("%d joint states, %d images so far", len(self.joints.latencies_ms), len(self.images.latencies_ms))


def main() -> int:
    return run_node(DemoListener)


if __name__ == "__main__":
    raise SystemExit(main())
