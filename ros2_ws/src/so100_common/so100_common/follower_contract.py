"""The follower contract: tests every follower implementation must pass.

``sim_bridge`` and ``follower_arm`` (over the servo emulator) subclass
:class:`FollowerContract` in their own test folders and provide a ``follower``
fixture returning a :class:`FollowerHandle` around their running process. The
tests only use the contract's topics and services (DESIGN.md §3, §6), so they
say nothing about how a follower is built.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from so100_common import messages, names
from so100_common.node import Node
from so100_common.qos import QoS
from so100_common.testing import Proc


@dataclass
class FollowerHandle:
    """A running follower, seen from a test node on the same graph."""

    proc: Proc
    node: Node
    lower: np.ndarray
    upper: np.ndarray
    tolerance: float = 0.05  # rad: how close the follower settles on a reachable target
    settle_time: float = 5.0  # s: how long it may take to get there
    stale_timeout: float = 0.5  # s: the follower's configured command timeout
    states: list[Any] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.node.create_subscription(messages.JointState, names.FOLLOWER_JOINT_STATES, self.states.append,
                                      QoS(depth=1000))
        self.pub = self.node.create_publisher(messages.JointState, names.FOLLOWER_JOINT_COMMANDS, QoS(depth=100))
        self.torque = self.node.create_client("std_srvs/srv/SetBool", names.FOLLOWER_ENABLE_TORQUE)

    def spin(self, seconds: float) -> None:
        self.node.spin(timeout=seconds)

    def position(self) -> np.ndarray:
        self.states.clear()
        self.node.spin(until=lambda: bool(self.states), timeout=5.0)
        assert self.states, "the follower publishes no joint states"
        return np.asarray(self.states[-1].position, dtype=float)

    def command(self, positions: Any, joint_names: Any = names.JOINT_NAMES, seconds: float = 0.0,
                rate: float = 50.0) -> None:
        """Publish a command (once, or streamed at ``rate`` for ``seconds``)."""
        msg = messages.joint_state(list(joint_names), positions) if len(joint_names) == len(positions) else \
            messages.JointState(header=messages.header(), name=list(joint_names),
                                position=np.asarray(positions, dtype=float),
                                velocity=np.zeros(0), effort=np.zeros(0))
        end = time.monotonic() + seconds
        while True:
            msg.header = messages.header()
            self.pub.publish(msg)
            if time.monotonic() >= end:
                break
            self.node.spin(timeout=1.0 / rate)

    def go_to(self, target: Any) -> np.ndarray:
        """Stream ``target`` until the follower is within tolerance; returns the reached position."""
        target = np.asarray(target, dtype=float)
        deadline = time.monotonic() + self.settle_time
        while time.monotonic() < deadline:
            self.command(target, seconds=0.2)
            pos = self.position()
            if np.max(np.abs(pos - target)) < self.tolerance:
                return pos
        raise AssertionError(f"follower did not reach {target.round(3)}; it is at {self.position().round(3)}")

    def set_torque(self, on: bool) -> Any:
        assert self.torque.wait_for_service(10), "no /follower/enable_torque service"
        req = messages.new_message("std_srvs/srv/SetBool_Request", {"data": on})
        return self.torque.call(req, timeout=10)

    def log_has(self, text: str, timeout: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(text in line for line in self.proc.lines):
                return True
            self.spin(0.05)
        return False


class FollowerContract:
    """Subclass with a ``follower`` fixture (a :class:`FollowerHandle`) to run the contract."""

    def home(self, f: FollowerHandle) -> np.ndarray:
        """A safe pose to start from: the middle of the range (zero), gripper half open."""
        pose = np.zeros(6)
        pose[5] = 0.5 * (f.lower[5] + f.upper[5])
        return f.go_to(pose)

    def test_joint_states_names_order_units_and_rate(self, follower: FollowerHandle) -> None:
        """/follower/joint_states: the six joints in contract order, radians, stamped, >= 30 Hz."""
        follower.states.clear()
        follower.spin(3.0)
        msgs = list(follower.states)
        assert len(msgs) >= 10, f"{len(msgs)} joint states in 3 s"
        # the node's own clock (header stamps), not this process's receive times: a loaded machine may
        # delay or skip a tick, so the median period says what rate the node runs at, the largest gap
        # that it never stalls
        periods = np.diff([messages.stamp_to_ns(m.header.stamp) / 1e9 for m in msgs])
        assert np.all(periods > 0), "header stamps must increase"
        assert np.median(periods) <= 1 / 30.0, f"{1 / np.median(periods):.1f} Hz"
        assert periods.max() < 0.5, f"a {periods.max():.2f} s gap between joint states"
        for msg in msgs:
            assert list(msg.name) == list(names.JOINT_NAMES)
            assert len(msg.position) == 6 and np.all(np.isfinite(msg.position))
            assert len(msg.velocity) in (0, 6) and len(msg.effort) in (0, 6)
        pos = np.asarray(msgs[-1].position)
        assert np.all(pos >= follower.lower - 0.05) and np.all(pos <= follower.upper + 0.05), "not radians?"
        age = time.time() - messages.stamp_to_ns(msgs[-1].header.stamp) / 1e9
        assert -0.5 < age < 2.0, f"header stamp is {age:.2f} s old"

    def test_valid_command_moves_the_arm(self, follower: FollowerHandle) -> None:
        """A target within the limits is reached within tolerance."""
        self.home(follower)
        target = np.array([0.3, -0.2, 0.25, 0.2, -0.3, 0.4])
        reached = follower.go_to(target)
        assert np.max(np.abs(reached - target)) < follower.tolerance

    def test_wrong_names_are_rejected_and_logged(self, follower: FollowerHandle) -> None:
        """Unknown joint names: nothing moves, and the follower says why."""
        start = self.home(follower)
        follower.command([0.8] * 6, joint_names=["j1", "j2", "j3", "j4", "j5", "j6"], seconds=1.0)
        assert np.max(np.abs(follower.position() - start)) < follower.tolerance
        assert follower.log_has("rejected"), "no log line about the rejected command"

    def test_wrong_count_is_rejected(self, follower: FollowerHandle) -> None:
        """Five names or a name/position count mismatch: nothing moves."""
        start = self.home(follower)
        follower.command([0.8] * 5, joint_names=names.JOINT_NAMES[:5], seconds=0.5)
        follower.command([0.8] * 5, joint_names=names.JOINT_NAMES, seconds=0.5)
        assert np.max(np.abs(follower.position() - start)) < follower.tolerance

    def test_nan_is_rejected(self, follower: FollowerHandle) -> None:
        """A NaN anywhere rejects the whole command."""
        start = self.home(follower)
        follower.command([0.8, math.nan, 0.8, 0.8, 0.8, 0.8], seconds=1.0)
        pos = follower.position()
        assert np.all(np.isfinite(pos)) and np.max(np.abs(pos - start)) < follower.tolerance
        assert follower.log_has("non-finite")

    def test_beyond_limits_is_clamped(self, follower: FollowerHandle) -> None:
        """A target past a limit stops at the limit, with a log line."""
        self.home(follower)
        target = np.zeros(6)
        target[5] = 0.5 * (follower.lower[5] + follower.upper[5])
        target[0] = follower.upper[0] + 1.0
        deadline = time.monotonic() + follower.settle_time
        while time.monotonic() < deadline:
            follower.command(target, seconds=0.2)
            if abs(follower.position()[0] - follower.upper[0]) < follower.tolerance:
                break
        pos = follower.position()
        assert pos[0] <= follower.upper[0] + 0.02 and abs(pos[0] - follower.upper[0]) < follower.tolerance
        assert follower.log_has("clamped")

    def test_holds_position_when_commands_stop(self, follower: FollowerHandle) -> None:
        """After the stale timeout the arm stays where it was (no drift, no sag)."""
        self.home(follower)
        target = np.array([-0.3, 0.3, -0.3, 0.3, 0.2, 0.3])
        reached = follower.go_to(target)
        follower.spin(follower.stale_timeout + 0.5)
        samples = []
        for _ in range(5):
            samples.append(follower.position())
            follower.spin(0.2)
        assert np.max(np.abs(np.asarray(samples) - reached)) < follower.tolerance

    def test_torque_off_makes_the_arm_passive(self, follower: FollowerHandle) -> None:
        """With torque off commands do not drive the arm; torque back on does not jump to an old target."""
        self.home(follower)
        resp = follower.set_torque(False)
        assert resp.success, resp.message
        try:
            before = follower.position()
            target = before.copy()
            target[0] = before[0] + 1.0  # shoulder_pan: a vertical axis, gravity does not move it
            follower.command(target, seconds=1.5)
            after = follower.position()
            assert abs(after[0] - before[0]) < 0.2, "the arm followed commands with torque off"
        finally:
            resp = follower.set_torque(True)
        assert resp.success, resp.message
        now = follower.position()
        follower.spin(1.0)
        assert abs(follower.position()[0] - now[0]) < 0.2, "torque on jumped to a stale target"
