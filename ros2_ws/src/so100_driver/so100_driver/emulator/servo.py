"""A pure model of one Feetech STS3215 (or STS3250) servo: its memory and a little physics.

The model keeps two things apart, as the servo does: the physical shaft angle (``raw_position``,
continuous ticks, what a hand or gravity changes) and the control table the host reads and
writes. The host sees ``Present_Position = raw - Homing_Offset`` wrapped into [0, 4095] (unless
Phase bit 4 is set), which is LeRobot's convention (``FeetechMotorsBus._get_half_turn_homings``).
With torque on, the servo moves its present position toward Goal_Position (clamped to the
position limits) at Goal_Velocity (0 = ``max_speed``) with Acceleration (0 = ``max_acceleration``);
with torque off it stays where it was put (:meth:`Servo.set_position`).

EEPROM and the Lock register follow Feetech's memory table: with Lock = 0 an EEPROM write is saved
and survives :meth:`Servo.power_cycle`; with Lock = 1 it takes effect but is lost at power-off
(``locked_eeprom_writes="volatile"``, the default), or, with ``"ignored"``, it does not take
effect at all (the stricter reading, for code that must prove it unlocks first).

Pure: no threads, no clock; time passes only through :meth:`Servo.advance`.
Dependency rule: imports only ``registers`` and ``so100_driver.errors``.
"""

from __future__ import annotations

import math
from typing import Literal

from so100_driver.emulator import registers as regs
from so100_driver.emulator.registers import REGISTERS, ErrorBit
from so100_driver.errors import EmulatorError

LockedEepromWrites = Literal["volatile", "ignored"]
Frame = Literal["present", "raw"]

_ADDR = {name: reg.address for name, reg in REGISTERS.items()}
# Current drawn at full load (mA), for Present_Current; roughly an STS3215's stall current.
_STALL_CURRENT_MA = 2700.0
_CURRENT_UNIT_MA = 6.5


class Servo:
    """One emulated servo.

    Args:
        servo_id: ID register value (0-253).
        model: ``"sts3215"`` or ``"sts3250"`` (same table, different Model_Number).
        position: initial shaft angle in raw ticks (2048 = the middle of a turn).
        max_speed: top speed in ticks/s, used when Goal_Velocity is 0 (about an STS3215 at 7.4 V).
        max_acceleration: ticks/s², used when Acceleration is 0.
        locked_eeprom_writes: what an EEPROM write does while Lock = 1 (see the module docstring).
        voltage: supply voltage (V); outside the voltage limits it raises ErrorBit.VOLTAGE.
        temperature: motor temperature (°C); above Max_Temperature_Limit it raises OVERHEAT.
    """

    def __init__(
        self,
        servo_id: int = 1,
        *,
        model: str = "sts3215",
        position: float = 2048.0,
        max_speed: float = 3000.0,
        max_acceleration: float = 30000.0,
        locked_eeprom_writes: LockedEepromWrites = "volatile",
        voltage: float = 12.0,
        temperature: float = 30.0,
    ) -> None:
        if model not in regs.MODEL_NUMBERS:
            raise EmulatorError(f"unknown servo model {model!r}; choose one of {sorted(regs.MODEL_NUMBERS)}")
        if not 0 <= servo_id <= 253:
            raise EmulatorError(f"servo id {servo_id} is outside 0..253 (254 is the broadcast id)")
        if max_speed <= 0 or max_acceleration <= 0:
            raise EmulatorError(f"max_speed and max_acceleration must be > 0, got {max_speed}, {max_acceleration}")
        if locked_eeprom_writes not in ("volatile", "ignored"):
            raise EmulatorError(f"locked_eeprom_writes must be 'volatile' or 'ignored', got {locked_eeprom_writes!r}")
        self.model = model
        self.max_speed = float(max_speed)
        self.max_acceleration = float(max_acceleration)
        self.locked_eeprom_writes: LockedEepromWrites = locked_eeprom_writes
        self.voltage = float(voltage)
        self.temperature = float(temperature)
        #: Mechanically blocked: with torque on it cannot move, its load saturates and, after
        #: Protection_Time, it reports OVERLOAD (and releases torque if Unloading_Condition says so).
        self.stalled = False
        #: Error bits forced on from outside (e.g. ``ErrorBit.SENSOR``), on top of the modelled ones.
        self.injected_errors = ErrorBit(0)
        self.raw_position = float(position)
        self.memory = regs.factory_memory(model, servo_id)
        self._saved = bytes(self.memory)  # what survives a power cycle (EEPROM and factory areas)
        self._velocity = 0.0  # present-frame ticks/s
        self._load = 0.0  # 0.1 % of max torque, signed
        self._last_raw = self.raw_position
        self._overload_time = 0.0
        self._overloaded = False
        self._pending: tuple[int, bytes] | None = None  # REG_WRITE waiting for ACTION
        self._power_up_ram()

    def __repr__(self) -> str:
        return (
            f"Servo(id={self.id}, model={self.model!r}, position={self.position}, "
            f"torque={'on' if self.torque_enabled else 'off'}, error={self.error!r})"
        )

    # -- register access -----------------------------------------------------------------

    def get(self, name: str) -> int:
        """The decoded value of a register, as the host would read it now."""
        reg = self._register(name)
        self._refresh()
        return regs.decode(reg, self.memory[reg.address : reg.address + reg.size])

    def set(self, name: str, value: int, *, persist: bool = True) -> None:
        """Set a register directly, as a factory programmer would: ignores Lock and read-only flags.

        For setting up a scenario (a calibrated arm, a servo at another baud rate). EEPROM values
        are also saved when ``persist`` is true. Side effects of host writes (torque enable
        holding the present position) do not run; use :meth:`write` for those.
        """
        reg = self._register(name)
        try:
            data = regs.encode(reg, value)
        except ValueError as e:
            raise EmulatorError(f"cannot set {name} to {value}: {e}") from e
        self.memory[reg.address : reg.address + reg.size] = data
        if persist and reg.area is not regs.Area.RAM:
            saved = bytearray(self._saved)
            saved[reg.address : reg.address + reg.size] = data
            self._saved = bytes(saved)

    def read(self, address: int, length: int) -> bytes:
        """Bytes ``address .. address + length - 1`` of the control table (zeros past its end)."""
        self._refresh()
        data = bytes(self.memory[address : address + length])
        return data + bytes(length - len(data))

    def write(self, address: int, data: bytes) -> None:
        """Apply a host WRITE: read-only bytes are skipped, EEPROM bytes obey Lock, ID/baud are checked."""
        locked = self.memory[_ADDR["Lock"]] != 0
        updates: dict[int, int] = {}
        for i, byte in enumerate(data):
            address_i = address + i
            if address_i >= regs.MEMORY_SIZE or address_i in regs.READ_ONLY_ADDRESSES:
                continue
            in_ram = regs.area_of(address_i) is regs.Area.RAM
            if not in_ram and locked and self.locked_eeprom_writes == "ignored":
                continue
            updates[address_i] = byte
        if updates.get(_ADDR["ID"], 0) > 253:
            del updates[_ADDR["ID"]]
        if updates.get(_ADDR["Baud_Rate"], 0) not in regs.BAUD_RATES:
            del updates[_ADDR["Baud_Rate"]]
        torque = updates.pop(_ADDR["Torque_Enable"], None)
        saved = bytearray(self._saved)
        for address_i, byte in updates.items():
            self.memory[address_i] = byte
            if not locked and regs.area_of(address_i) is not regs.Area.RAM:
                saved[address_i] = byte
        self._saved = bytes(saved)
        if torque is not None:
            self._write_torque_enable(torque)

    def reg_write(self, address: int, data: bytes) -> None:
        """Store a write to be applied by the next ACTION (REG_WRITE)."""
        self._pending = (address, bytes(data))

    def action(self) -> bool:
        """Apply the stored REG_WRITE, if any; True when there was one."""
        if self._pending is None:
            return False
        address, data = self._pending
        self._pending = None
        self.write(address, data)
        return True

    # -- state a test or a trajectory looks at or changes ---------------------------------

    @property
    def id(self) -> int:
        return self.memory[_ADDR["ID"]]

    @property
    def torque_enabled(self) -> bool:
        return self.memory[_ADDR["Torque_Enable"]] == 1

    @property
    def homing_offset(self) -> int:
        return self._decoded("Homing_Offset")

    @property
    def goal_position(self) -> int:
        return self._decoded("Goal_Position")

    @property
    def position(self) -> int:
        """Present_Position as the host reads it (ticks)."""
        return self._present_ticks()

    @position.setter
    def position(self, ticks: float) -> None:
        self.set_position(ticks)

    @property
    def velocity(self) -> float:
        """Present velocity in ticks/s."""
        return self._velocity

    @property
    def moving(self) -> bool:
        """Moving (66): turning, or holding torque short of the goal (beyond the dead zone)."""
        if abs(self._velocity) >= 1.0:
            return True
        if self.torque_enabled and self.memory[_ADDR["Operating_Mode"]] == 0:
            return abs(self._target() - self._present_float()) > self._dead_zone()
        return False

    @property
    def error(self) -> ErrorBit:
        """The error bits this servo puts in its status packets (and in Status, address 65)."""
        bits = self.injected_errors
        volts = self.voltage * 10
        if not self.memory[_ADDR["Min_Voltage_Limit"]] <= volts <= self.memory[_ADDR["Max_Voltage_Limit"]]:
            bits |= ErrorBit.VOLTAGE
        if self.temperature > self.memory[_ADDR["Max_Temperature_Limit"]]:
            bits |= ErrorBit.OVERHEAT
        if self._overloaded:
            bits |= ErrorBit.OVERLOAD
        return bits

    @property
    def return_delay_s(self) -> float:
        """How long the servo waits before answering (Return_Delay_Time × 2 µs)."""
        return self.memory[_ADDR["Return_Delay_Time"]] * 2e-6

    @property
    def baud_rate(self) -> int:
        """The bus speed this servo listens at (bits/s), from its Baud_Rate register."""
        return regs.BAUD_RATES[self.memory[_ADDR["Baud_Rate"]]]

    @property
    def status_return_level(self) -> int:
        return self.memory[_ADDR["Response_Status_Level"]]

    def set_position(self, ticks: float, *, frame: Frame = "present") -> None:
        """Move the shaft from outside (a hand, a trajectory): to ``ticks`` of Present_Position or raw.

        A present-frame target is reached by the shortest turn of the shaft from where it is.
        """
        if frame == "raw":
            self.raw_position = float(ticks)
            return
        if frame != "present":
            raise EmulatorError(f"frame must be 'present' or 'raw', got {frame!r}")
        delta = float(ticks) - self._present_float()
        if not self._unwrapped():
            delta = (delta + regs.RESOLUTION / 2) % regs.RESOLUTION - regs.RESOLUTION / 2
        self.raw_position += delta

    def power_cycle(self) -> None:
        """Power off and on: EEPROM keeps what was saved, RAM returns to its power-up values."""
        self.memory = bytearray(self._saved)
        self._pending = None
        self._overloaded = False
        self._overload_time = 0.0
        self._velocity = 0.0
        self._load = 0.0
        self._power_up_ram()

    # -- physics --------------------------------------------------------------------------

    def advance(self, dt: float) -> None:
        """Let ``dt`` seconds pass: move under torque, or measure how the shaft was moved."""
        if dt <= 0:
            return
        if self.error & self.memory[_ADDR["Unloading_Condition"]] and self.torque_enabled:
            self.memory[_ADDR["Torque_Enable"]] = 0  # protection releases torque
        mode = self.memory[_ADDR["Operating_Mode"]]
        if self.torque_enabled and mode == 0:
            self._advance_position_mode(dt)
        elif self.torque_enabled and mode == 1:
            self._advance_velocity_mode(dt)
        else:  # torque off, or PWM/step modes (not emulated: the servo holds)
            self._velocity = (self.raw_position - self._last_raw) / dt
            self._load = 0.0
            self._overload_time = 0.0
        self._last_raw = self.raw_position

    def _advance_position_mode(self, dt: float) -> None:
        p = self._present_float()
        err = self._target() - p
        if self.stalled:
            self._velocity = 0.0
            self._load = math.copysign(self._torque_cap(), err) if abs(err) > self._dead_zone() else 0.0
            self._update_overload(dt)
            return
        v_limit = self._speed_limit()
        accel = self._accel_limit()
        v_wanted = math.copysign(min(v_limit, math.sqrt(2.0 * accel * abs(err))), err)
        dv = max(-accel * dt, min(accel * dt, v_wanted - self._velocity))
        v = self._velocity + dv
        step = v * dt
        if abs(err) < 0.5 or (step != 0 and abs(step) >= abs(err) and math.copysign(1, step) == math.copysign(1, err)):
            step, v = err, 0.0
        self.raw_position += step
        self._velocity = v
        effort = 80.0 + 400.0 * abs(v) / self.max_speed + 300.0 * abs(dv) / (accel * dt)
        self._load = math.copysign(min(effort, self._torque_cap()), v) if v else 0.0
        self._update_overload(dt)

    def _advance_velocity_mode(self, dt: float) -> None:
        commanded = max(-self.max_speed, min(self.max_speed, float(self._decoded("Goal_Velocity"))))
        v_target = 0.0 if self.stalled else commanded
        accel = self._accel_limit()
        self._velocity += max(-accel * dt, min(accel * dt, v_target - self._velocity))
        self.raw_position += self._velocity * dt
        if self.stalled and commanded:
            self._load = math.copysign(self._torque_cap(), commanded)
        elif self._velocity:
            effort = 80.0 + 400.0 * abs(self._velocity) / self.max_speed
            self._load = math.copysign(min(effort, self._torque_cap()), self._velocity)
        else:
            self._load = 0.0
        self._update_overload(dt)

    def _update_overload(self, dt: float) -> None:
        if abs(self._load) >= self.memory[_ADDR["Overload_Torque"]] * 10:
            self._overload_time += dt
            if self._overload_time >= self.memory[_ADDR["Protection_Time"]] * 0.01:
                self._overloaded = True
        else:
            self._overload_time = 0.0

    # -- internals ------------------------------------------------------------------------

    def _register(self, name: str) -> regs.Register:
        try:
            return REGISTERS[name]
        except KeyError:
            raise EmulatorError(f"no register named {name!r}; see so100_driver.emulator.registers.REGISTERS") from None

    def _decoded(self, name: str) -> int:
        reg = REGISTERS[name]
        return regs.decode(reg, self.memory[reg.address : reg.address + reg.size])

    def _unwrapped(self) -> bool:
        return bool(self.memory[_ADDR["Phase"]] & regs.PHASE_UNWRAPPED_POSITION)

    def _present_float(self) -> float:
        if self._unwrapped():
            return self.raw_position % regs.RESOLUTION - self.homing_offset
        return (self.raw_position - self.homing_offset) % regs.RESOLUTION

    def _present_ticks(self) -> int:
        ticks = math.floor(self._present_float() + 0.5)
        return ticks if self._unwrapped() else ticks % regs.RESOLUTION

    def _target(self) -> float:
        """Goal_Position clamped to the position limits (both 0, or inverted: no limits, as for multi-turn)."""
        target = float(self.goal_position)
        low, high = self._decoded("Min_Position_Limit"), self._decoded("Max_Position_Limit")
        return min(max(target, low), high) if low < high else target

    def _dead_zone(self) -> int:
        return max(self.memory[_ADDR["CW_Dead_Zone"]], self.memory[_ADDR["CCW_Dead_Zone"]], 1)

    def _speed_limit(self) -> float:
        goal_speed = abs(self._decoded("Goal_Velocity"))
        return min(goal_speed, self.max_speed) if goal_speed else self.max_speed

    def _accel_limit(self) -> float:
        acc = self.memory[_ADDR["Acceleration"]]
        return acc * 100.0 if acc else self.max_acceleration

    def _torque_cap(self) -> float:
        return float(min(self._decoded("Torque_Limit"), self._decoded("Max_Torque_Limit"), 1000))

    def _write_torque_enable(self, value: int) -> None:
        if value == 0:
            self.memory[_ADDR["Torque_Enable"]] = 0
        elif value == 1:
            if not self.torque_enabled:
                # Torque on holds where the shaft is, whatever Goal_Position held (emulator choice:
                # the safe reading; LeRobot enables torque without writing a goal first).
                self._set_ram("Goal_Position", self._present_ticks())
                self._velocity = 0.0
                self._overloaded = False
                self._overload_time = 0.0
            self.memory[_ADDR["Torque_Enable"]] = 1
        # Other values (128 re-centres the encoder on a real servo) are not emulated: ignored.

    def _set_ram(self, name: str, value: int) -> None:
        reg = REGISTERS[name]
        sign_bit = reg.sign_bit if reg.sign_bit is not None else 8 * reg.size
        limit = (1 << sign_bit) - 1
        value = max(-limit, min(limit, int(value))) if reg.sign_bit is not None else max(0, min(limit, int(value)))
        self.memory[reg.address : reg.address + reg.size] = regs.encode(reg, value)

    def _power_up_ram(self) -> None:
        for reg in regs.CONTROL_TABLE:
            if reg.area is regs.Area.RAM:
                self.memory[reg.address : reg.address + reg.size] = regs.encode(reg, reg.default)
        self._set_ram("Goal_Position", self._present_ticks())
        self._set_ram("Torque_Limit", self._decoded("Max_Torque_Limit"))
        self._last_raw = self.raw_position
        self._refresh()

    def _refresh(self) -> None:
        """Write the present-state registers from the model."""
        self._set_ram("Present_Position", self._present_ticks())
        self._set_ram("Present_Velocity", round(self._velocity))
        self._set_ram("Present_Load", round(self._load))
        self._set_ram("Present_Voltage", round(self.voltage * 10))
        self._set_ram("Present_Temperature", round(self.temperature))
        self._set_ram("Status", int(self.error))
        self._set_ram("Moving", int(self.moving))
        self._set_ram("Present_Current", round(abs(self._load) / 1000 * _STALL_CURRENT_MA / _CURRENT_UNIT_MA))
