"""Quality of service: the subset of ROS 2 QoS the stack uses, and its presets."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class Reliability(IntEnum):
    """rmw's enum values (rmw/types.h)."""

    RELIABLE = 1
    BEST_EFFORT = 2


class Durability(IntEnum):
    TRANSIENT_LOCAL = 1
    VOLATILE = 2


class History(IntEnum):
    KEEP_LAST = 1
    KEEP_ALL = 2


@dataclass(frozen=True)
class QoS:
    """A QoS profile; the default is rclcpp's (reliable, volatile, keep last 10)."""

    depth: int = 10
    reliability: Reliability = Reliability.RELIABLE
    durability: Durability = Durability.VOLATILE
    history: History = History.KEEP_LAST

    def __post_init__(self) -> None:
        if self.history == History.KEEP_LAST and self.depth < 1:
            raise ValueError(f"QoS depth must be >= 1 with KEEP_LAST, got {self.depth}")

    @property
    def transient_local(self) -> bool:
        return self.durability == Durability.TRANSIENT_LOCAL

    @property
    def reliable(self) -> bool:
        return self.reliability == Reliability.RELIABLE


#: rclcpp/rclpy default for topics and services.
DEFAULT = QoS()
#: Latched topics (``/robot_description``, ``/episode/scene``), as robot_state_publisher uses.
LATCHED = QoS(depth=1, durability=Durability.TRANSIENT_LOCAL)
#: rclpy's ``qos_profile_sensor_data``.
SENSOR_DATA = QoS(depth=5, reliability=Reliability.BEST_EFFORT)
