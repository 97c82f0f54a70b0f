"""leader_arm: a hand-moved SO-100 leader arm on ``/leader/joint_states`` (radians).

Torque stays off (the arm is moved by hand); positions are sync-read at ``rate`` and
published in the contract's units. A failed read is retried (``retries``), then logged
once per burst and skipped: a loose cable must not kill a teleop session.
"""

from __future__ import annotations

import logging
import time

from so100_common import contract, messages, names
from so100_common.command_guard import BurstLog
from so100_common.node import Node, run_node
from so100_driver.arm_bus import STALL_TORQUE_NM, ArmBus, ArmBusConfig
from so100_driver.calibration import ArmCalibration
from so100_driver.errors import BusError


class LeaderArm(Node):
    def __init__(self, argv: list[str]) -> None:
        super().__init__("leader_arm", argv=argv)
        p = self.declare_parameter
        port = p("port", "/dev/ttyACM0", description="serial port of the leader arm's servo bus")
        cal_id = p("id", "leader", description="LeRobot calibration id (teleoperators/so_leader/<id>.json)")
        model = p("model", "sts3215", description="servo model", choices=sorted(STALL_TORQUE_NM))
        self.rate = p("rate", 100.0, description="read and publish rate (Hz)", min_value=1.0, max_value=500.0)
        retries = p("retries", 3, description="extra tries of a failed sync read", min_value=0, max_value=20)

        self.end_parameters()  # --help stops here, before the calibration file and the serial port
        calibration = ArmCalibration.load("leader", cal_id, port=port)
        self.arm = ArmBus(ArmBusConfig(port, calibration, role="leader", model=model, retries=retries))
        self.arm.connect()
        self.pub = contract.LEADER_JOINT_STATES.publisher(self)
        self.errors = BurstLog(self.logger)
        self.published = 0
        self.failed = 0
        self.t0 = time.monotonic()
        self.create_timer(1.0 / self.rate, self.tick)
        self.create_timer(5.0, self.report)
        self.logger.info("leader_arm up: %s on %s (calibration %s), torque off, %.0f Hz", model, port,
                         calibration.source, self.rate)

    def tick(self) -> None:
        stamp = time.time_ns()
        try:
            position = self.arm.read_positions()
        except BusError as e:
            self.failed += 1
            self.errors(logging.WARNING, "leader read failed, skipping this sample: %s", e)
            return
        self.pub.publish(messages.joint_state(names.JOINT_NAMES, position, stamp_ns=stamp,
                                              frame_id=names.BASE_FRAME))
        self.published += 1

    def report(self) -> None:
        now = time.monotonic()
        self.logger.info("published %.1f Hz (target %.0f), %d reads failed after retries, %d tries retried",
                         self.published / max(now - self.t0, 1e-9), self.rate, self.failed, self.arm.failures)
        self.published, self.t0 = 0, now

    def destroy(self) -> None:
        super().destroy()
        self.arm.close()


def main() -> int:
    return run_node(LeaderArm)


if __name__ == "__main__":
    raise SystemExit(main())
