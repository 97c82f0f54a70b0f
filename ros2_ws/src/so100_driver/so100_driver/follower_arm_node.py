"""follower_arm: a real SO-100 follower arm on the contract's topics.

Consumes ``/follower/joint_commands`` through the shared command guard (rejected, clamped
to the calibrated range, held when stale, at most ``max_step`` rad per tick), writes goal
positions and publishes ``/follower/joint_states`` (rad, rad/s, N·m) at ``rate``.
``/follower/enable_torque`` (SetBool) makes the arm passive or holding.

Failure policy (DESIGN.md §6): a failed read is retried ``retries`` times; if the servos
still do not answer, the node sends torque off (a sync write, which needs no reply),
logs which servos are silent and exits with code 1 so a supervisor can restart it.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from so100_common import contract, messages, names
from so100_common.command_guard import BurstLog, CommandGuard, GuardConfig
from so100_common.node import Node, run_node
from so100_driver.arm_bus import STALL_TORQUE_NM, ArmBus, ArmBusConfig
from so100_driver.calibration import ArmCalibration
from so100_driver.errors import BusError


class FollowerArm(Node):
    def __init__(self, argv: list[str]) -> None:
        super().__init__("follower_arm", argv=argv)
        p = self.declare_parameter
        port = p("port", "/dev/ttyACM1", description="serial port of the follower arm's servo bus")
        cal_id = p("id", "follower", description="LeRobot calibration id (robots/so_follower/<id>.json)")
        model = p("model", "sts3215", description="servo model", choices=sorted(STALL_TORQUE_NM))
        self.rate = p("rate", 50.0, description="control and joint state rate (Hz)", min_value=30.0,
                      max_value=200.0)
        stale = p("stale_timeout", 0.5, description="hold position when no command came for this long (s)",
                  min_value=0.05)
        max_step = p("max_step", 0.1, description="largest joint move per tick (rad), 0 = unlimited", min_value=0.0)
        retries = p("retries", 3, description="extra tries of a failed sync read before the safe stop",
                    min_value=0, max_value=20)

        self.end_parameters()  # --help stops here, before the calibration file and the serial port
        calibration = ArmCalibration.load("follower", cal_id, port=port)
        lower, upper = calibration.limits()
        self.guard = CommandGuard(GuardConfig(tuple(lower), tuple(upper), stale_timeout=stale,
                                              max_step=max_step or None))
        self.burst = {k: BurstLog(self.logger) for k in ("count", "names", "non_finite", "clamped", "bad_state")}
        self.arm = ArmBus(ArmBusConfig(port, calibration, role="follower", model=model, retries=retries))
        self.arm.connect()
        self.arm.set_torque(True)  # holds where it is: Goal_Position = Present_Position first
        self.exit_code = 0
        self.js_pub = contract.FOLLOWER_JOINT_STATES.publisher(self)
        contract.FOLLOWER_JOINT_COMMANDS.subscription(self, self.on_command, depth=10)
        self.create_service("std_srvs/srv/SetBool", names.FOLLOWER_ENABLE_TORQUE, self.on_torque)
        self.ticks = 0
        self.t0 = time.monotonic()
        self.create_timer(1.0 / self.rate, self.tick)
        self.create_timer(5.0, self.report)
        self.logger.info("follower_arm up: %s on %s (calibration %s), %.0f Hz, limits %s .. %s rad", model, port,
                         calibration.source, self.rate, lower.round(3).tolist(), upper.round(3).tolist())

    def on_command(self, msg: Any) -> None:
        verdict = self.guard.submit(msg.name, msg.position, time.monotonic())
        if not verdict.accepted:
            self.burst[verdict.kind](logging.WARNING, "rejected a joint command: %s", verdict.reason)
        elif verdict.clamped:
            self.burst["clamped"](logging.WARNING, "clamped a joint command to the limits: %s",
                                  {k: round(v, 3) for k, v in verdict.clamped.items()})

    def on_torque(self, request: Any, response: Any) -> Any:
        try:
            self.arm.set_torque(bool(request.data))
        except BusError as e:
            response.success = False
            response.message = str(e)
            self.logger.error("%s", e)
            return response
        self.guard.reset()  # torque back on holds where the arm is, never an old target
        response.success = True
        response.message = f"torque {'enabled' if request.data else 'disabled'}"
        self.logger.info(response.message)
        return response

    def tick(self) -> None:
        if not self.ok:
            return
        try:
            state = self.arm.read_state()
            goal = self.guard.target(state.position, time.monotonic()) if self.arm.torque_enabled else None
            if goal is not None:
                self.arm.write_goal(goal)
            elif self.arm.torque_enabled:
                self.burst["bad_state"](logging.ERROR, "a servo reported a non-finite position %s; writing no goal "
                                     "this tick (the servos keep their last goal)", list(state.position))
        except BusError as e:
            self.safe_stop(e)
            return
        self.js_pub.publish(messages.joint_state(names.JOINT_NAMES, state.position, state.velocity, state.effort,
                                                 stamp_ns=state.stamp_ns, frame_id=names.BASE_FRAME))
        self.ticks += 1

    def safe_stop(self, error: BusError) -> None:
        sent = self.arm.torque_off_unacknowledged()
        self.logger.error("servo bus failure, stopping follower_arm: %s. %s Fix the bus and start the node again.",
                          error, "Torque off was sent to every servo." if sent else "Could not even send torque off.")
        self.exit_code = 1
        self.shutdown()

    def report(self) -> None:
        now = time.monotonic()
        self.logger.info("control loop %.1f Hz (target %.0f), %d commands rejected, %d clamped, %d bus tries retried",
                         self.ticks / max(now - self.t0, 1e-9), self.rate, self.guard.rejected, self.guard.clamped,
                         self.arm.failures)
        self.ticks, self.t0 = 0, now

    def destroy(self) -> None:
        super().destroy()
        self.arm.close()


def main() -> int:
    return run_node(FollowerArm)


if __name__ == "__main__":
    raise SystemExit(main())
