"""An SO-100 arm on a Feetech bus: LeRobot's ``FeetechMotorsBus`` in radians.

Configured as LeRobot's ``SOFollower`` / ``SOLeader`` configure it, so an arm behaves the same
under our nodes and under LeRobot's scripts. Every value crosses this class in radians (and
rad/s, N·m); ticks stay inside. Retries and the input-buffer flush after a timeout live here.

Core module: never imports the runtime (no node, no ROS); logs through ``logging``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from so100_common.names import JOINT_NAMES
from so100_driver.calibration import GRIPPER, ArmCalibration
from so100_driver.errors import BusError

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 3.0  # how long connect() keeps retrying the handshake

ROLES = ("follower", "leader")
#: Approximate stall torque (N·m) per model, to turn Present_Load (0.1 % of it) into an effort.
#: STS3215 7.4 V: 19.5 kg·cm; STS3250: 50 kg·cm (Feetech data sheets). Good to ~20 %: an indication, not a sensor.
STALL_TORQUE_NM = {"sts3215": 1.91, "sts3250": 4.9}
FIX_PORT = ("check the USB cable and the arm's power supply, find the port with `lerobot-find-port`, "
            "and give the servos ids 1..6 with `lerobot-setup-motors`")


@dataclass(frozen=True)
class ArmBusConfig:
    """How to reach and configure one arm."""

    port: str
    calibration: ArmCalibration
    role: str = "follower"  # "follower" is position-controlled; "leader" is moved by hand (torque off)
    model: str = "sts3215"
    # Extra attempts of a failed sync read. A Feetech bus occasionally returns a corrupt or late status
    # packet (more often while several joints move); each try costs at most the SDK's ~50 ms timeout.
    retries: int = 3
    # Position-loop gains SOFollower writes (lerobot's defaults: P=16 rather than the factory 32 to avoid shakiness).
    p_coefficient: int = 16
    i_coefficient: int = 0
    d_coefficient: int = 32

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise BusError(f"role must be one of {ROLES}, got {self.role!r}")
        if self.model not in STALL_TORQUE_NM:
            raise BusError(f"servo model {self.model!r} is not supported; use one of {sorted(STALL_TORQUE_NM)}")
        if self.retries < 0:
            raise BusError(f"retries must be >= 0, got {self.retries}")


@dataclass
class ArmState:
    """One reading of the arm, contract joint order."""

    position: np.ndarray  # rad
    velocity: np.ndarray  # rad/s
    effort: np.ndarray  # N·m (approximate, from Present_Load)
    stamp_ns: int  # wall-clock time the read started


class ArmBus:
    """Connect, configure, read and write an SO-100 arm (servo ids 1..6 = ``JOINT_NAMES``)."""

    def __init__(self, config: ArmBusConfig) -> None:
        from lerobot.motors import Motor, MotorNormMode
        from lerobot.motors.feetech import FeetechMotorsBus

        self.config = config
        self.cal = config.calibration
        # Norm modes as LeRobot's SO classes set them; we only ever read and write raw ticks.
        motors = {
            name: Motor(self.cal.motors[name].id, config.model,
                        MotorNormMode.RANGE_0_100 if name == GRIPPER else MotorNormMode.DEGREES)
            for name in JOINT_NAMES
        }
        self.bus = FeetechMotorsBus(config.port, motors, calibration=dict(self.cal.motors))
        self._lo = np.array([self.cal.motors[n].range_min for n in JOINT_NAMES])
        self._hi = np.array([self.cal.motors[n].range_max for n in JOINT_NAMES])
        self._effort_scale = STALL_TORQUE_NM[config.model] / 1000.0 * np.sign(self.cal.velocity_to_radians(np.ones(6)))
        self.failures = 0  # failed tries since start (each one retried)
        self.torque_enabled = False

    # ------------------------------------------------------------ lifecycle
    def connect(self) -> None:
        """Open the port, check all six servos answer, make sure they hold the calibration, configure them."""
        port = self.config.port
        if "/" in port and not Path(port).exists():  # a device path (not a Windows COM name) that is not there
            raise BusError(f"serial port {port} does not exist; {FIX_PORT}")
        # A bus that was just powered (or an emulator that just started) may miss the first pings:
        # retry the handshake for CONNECT_TIMEOUT_S before giving up.
        deadline = time.monotonic() + CONNECT_TIMEOUT_S
        while True:
            try:
                self.bus.connect(handshake=True)
                break
            except (ConnectionError, RuntimeError, OSError) as e:
                if self.bus.is_connected:
                    self.bus.port_handler.closePort()
                if time.monotonic() >= deadline:
                    detail = str(e).strip().replace("\n", " ")
                    raise BusError(f"no SO-100 arm answers on {port} ({detail}); {FIX_PORT}") from e
                logger.debug("handshake on %s failed, retrying: %s", port, e)
                time.sleep(0.25)
        try:
            if not self.bus.is_calibrated:
                logger.warning("the servos on %s do not hold the calibration of %s: writing it to them",
                               port, self.cal.source or "the calibration file")
                self.bus.disable_torque(num_retry=self.config.retries)
                self.bus.write_calibration(dict(self.cal.motors))
            self.configure()
        except (ConnectionError, RuntimeError, OSError) as e:
            self.close()
            raise BusError(f"configuring the arm on {port} failed: {e}") from e

    def configure(self) -> None:
        """Write what LeRobot's SOFollower / SOLeader ``configure()`` writes; the leader is left torque-free."""
        from lerobot.motors.feetech import OperatingMode

        n = self.config.retries
        self.bus.disable_torque(num_retry=n)
        self.torque_enabled = False
        # Return_Delay_Time 0 (2 µs instead of 500 µs), Maximum_Acceleration/Acceleration 254, Phase bit 4 cleared.
        self.bus.configure_motors()
        for motor in JOINT_NAMES:
            self.bus.write("Operating_Mode", motor, OperatingMode.POSITION.value, num_retry=n)
            if self.config.role != "follower":
                continue
            self.bus.write("P_Coefficient", motor, self.config.p_coefficient, num_retry=n)
            self.bus.write("I_Coefficient", motor, self.config.i_coefficient, num_retry=n)
            self.bus.write("D_Coefficient", motor, self.config.d_coefficient, num_retry=n)
            if motor == GRIPPER:  # as SOFollower: the gripper squeezes objects, keep it from burning out
                self.bus.write("Max_Torque_Limit", motor, 500, num_retry=n)  # 50 % of max torque
                self.bus.write("Protection_Current", motor, 250, num_retry=n)  # 50 % of max current
                self.bus.write("Overload_Torque", motor, 25, num_retry=n)  # 25 % torque when overloaded

    def close(self, *, disable_torque: bool = True) -> None:
        """Torque off (best effort, no reply needed) and close the port."""
        if not self.bus.is_connected:
            return
        if disable_torque:
            self.torque_off_unacknowledged()
        self.bus.port_handler.closePort()

    disconnect = close

    def __enter__(self) -> ArmBus:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ reading
    def _flush_input(self) -> None:
        """Drop bytes nobody asked for: scservo_sdk never does, so a late reply would answer the next read."""
        ser = getattr(self.bus.port_handler, "ser", None)
        if ser is not None and ser.in_waiting:
            ser.reset_input_buffer()

    def _sync_read(self, register: str) -> np.ndarray:
        errors: list[str] = []
        for _ in range(self.config.retries + 1):
            self._flush_input()
            try:
                values = self.bus.sync_read(register, list(JOINT_NAMES), normalize=False)
                return np.array([values[n] for n in JOINT_NAMES], dtype=float)
            except (ConnectionError, OSError) as e:  # OSError: serial.SerialException, e.g. the USB adapter left
                self.failures += 1
                errors.append(str(e).rsplit("tries.", 1)[-1].strip() or str(e))
                logger.debug("sync read of %s failed: %s", register, e)
        raise BusError(f"reading {register} on {self.config.port} failed {len(errors)} times "
                       f"({errors[-1]}){self._who_is_silent()}")

    def _who_is_silent(self) -> str:
        """After a failed read: which servos still answer a ping (costs ~50 ms per silent servo)."""
        try:
            self._flush_input()
            silent = [f"{n} (id {self.cal.motors[n].id})" for n in JOINT_NAMES if self.bus.ping(n) is None]
        except Exception as e:  # the port itself may be gone; the read error says enough
            return f"; the port itself fails: {e}"
        if not silent:
            return "; every servo still answers a ping"
        return f"; servo(s) not answering: {', '.join(silent)} — check their cables and power"

    def read_positions(self) -> np.ndarray:
        """Present positions (rad), contract order; raises :class:`BusError` after ``retries`` failed tries."""
        return self.cal.to_radians(self._sync_read("Present_Position"))

    def read_state(self) -> ArmState:
        """Position (rad), velocity (rad/s) and effort (N·m, from Present_Load) in three sync reads."""
        stamp = time.time_ns()
        ticks = self._sync_read("Present_Position")
        speed = self._sync_read("Present_Velocity")
        load = self._sync_read("Present_Load")
        return ArmState(self.cal.to_radians(ticks), self.cal.velocity_to_radians(speed), load * self._effort_scale,
                        stamp)

    # ------------------------------------------------------------ writing
    def write_goal(self, radians: np.ndarray) -> None:
        """Goal positions (rad) as one sync write; clipped to the calibrated range (the servos clip there too).

        A non-finite goal is refused (:class:`BusError`) before any conversion: NaN would become int64.min,
        which the clip turns into the range's lower end, a full-speed move there.
        """
        goal = np.asarray(radians, dtype=float)
        if goal.shape != (len(JOINT_NAMES),) or not np.all(np.isfinite(goal)):
            raise BusError(f"refusing to write a non-finite or mis-sized goal {goal.tolist()} to {self.config.port}")
        ticks = np.clip(self.cal.to_ticks(goal), self._lo, self._hi)
        try:
            self.bus.sync_write("Goal_Position", {n: int(t) for n, t in zip(JOINT_NAMES, ticks, strict=True)},
                                normalize=False)
        except (ConnectionError, OSError) as e:
            raise BusError(f"writing Goal_Position on {self.config.port} failed: {e}") from e

    def set_torque(self, enabled: bool) -> None:
        """Torque on (holding the present position, nothing jumps) or off (the arm is passive)."""
        n = self.config.retries
        try:
            if enabled:
                ticks = self._sync_read("Present_Position")
                self.bus.sync_write("Goal_Position", {k: int(t) for k, t in zip(JOINT_NAMES, ticks, strict=True)},
                                    normalize=False)
                self.bus.enable_torque(num_retry=n)
            else:
                self.bus.disable_torque(num_retry=n)
        except (ConnectionError, RuntimeError, OSError) as e:
            raise BusError(f"turning torque {'on' if enabled else 'off'} on {self.config.port} failed: {e}") from e
        self.torque_enabled = enabled

    def torque_off_unacknowledged(self) -> bool:
        """Safe stop: broadcast Torque_Enable = 0 as a sync write (no reply needed, so silent servos don't block it)."""
        try:
            self._flush_input()
            self.bus.sync_write("Torque_Enable", dict.fromkeys(JOINT_NAMES, 0), normalize=False)
            self.torque_enabled = False
            return True
        except Exception as e:  # the port may be gone; this is the last thing we try
            logger.error("could not send torque off on %s: %s", self.config.port, e)
            return False

    def raw(self) -> Any:
        """LeRobot's bus underneath (for tools and tests)."""
        return self.bus
