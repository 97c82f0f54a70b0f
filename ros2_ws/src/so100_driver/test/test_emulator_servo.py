"""The pure servo model: motion under torque, homing offset, EEPROM and Lock, protections."""

import pytest

from so100_driver.emulator.registers import REGISTERS, ErrorBit
from so100_driver.emulator.servo import Servo
from so100_driver.emulator.trajectory import Playback, sine
from so100_driver.errors import EmulatorError

LOCK = REGISTERS["Lock"].address
TORQUE = REGISTERS["Torque_Enable"].address
GOAL = REGISTERS["Goal_Position"].address
OFFSET = REGISTERS["Homing_Offset"].address


def u16(value: int) -> bytes:
    return value.to_bytes(2, "little")


def run(servo: Servo, seconds: float, dt: float = 0.005) -> None:
    for _ in range(round(seconds / dt)):
        servo.advance(dt)


def test_torque_on_moves_toward_goal_no_faster_than_max_speed():
    """From 2048 to 3048 at 2000 ticks/s: about 0.5 s on the way, never a step above the speed limit."""
    s = Servo(1, max_speed=2000.0)
    s.write(TORQUE, b"\x01")
    s.write(GOAL, u16(3048))
    positions = []
    for _ in range(60):  # 0.3 s
        s.advance(0.005)
        positions.append(s.position)
    steps = [b - a for a, b in zip([2048, *positions], positions, strict=False)]
    assert 0 < max(steps) <= 2000 * 0.005 + 1
    assert 2048 < positions[-1] < 3048 and s.moving and s.get("Present_Load") > 0
    run(s, 0.4)
    assert s.position == 3048 and not s.moving and s.get("Moving") == 0


def test_goal_velocity_and_acceleration_shape_the_motion():
    """Goal_Velocity caps the speed; Acceleration (×100 ticks/s²) ramps it up from rest."""
    s = Servo(1)
    s.write(TORQUE, b"\x01")
    s.write(REGISTERS["Goal_Velocity"].address, u16(500))
    s.write(REGISTERS["Acceleration"].address, b"\x0a")  # 1000 ticks/s²
    s.write(GOAL, u16(4000))
    s.advance(0.1)
    assert s.velocity == pytest.approx(100, abs=1)  # a·t, not yet at 500
    run(s, 0.6)
    assert s.velocity == pytest.approx(500) and s.get("Present_Velocity") == 500


def test_goal_is_clamped_to_the_position_limits():
    """A goal beyond Max_Position_Limit stops at the limit."""
    s = Servo(1)
    s.set("Max_Position_Limit", 2500)
    s.write(TORQUE, b"\x01")
    s.write(GOAL, u16(4000))
    run(s, 1.0)
    assert s.position == 2500


def test_present_position_is_raw_minus_homing_offset_wrapped():
    """Present = raw − Homing_Offset in [0, 4095]; with Phase bit 4 set it is not wrapped (and may be negative)."""
    s = Servo(1, position=1000)
    s.set("Homing_Offset", 300)
    assert s.position == 700
    s.set("Homing_Offset", -1500)
    assert s.position == 2500
    s.set("Homing_Offset", 1100)
    assert s.position == 4096 - 100
    s.set("Phase", 0x10)
    assert s.position == -100 and s.get("Present_Position") == -100
    assert s.read(REGISTERS["Present_Position"].address, 2) == u16(0x8000 | 100)


def test_torque_enable_holds_where_the_shaft_is():
    """Enabling torque sets Goal_Position to the present position, so nothing jumps."""
    s = Servo(1, position=1234)
    s.write(GOAL, u16(100))
    s.write(TORQUE, b"\x01")
    run(s, 0.2)
    assert s.goal_position == 1234 and s.position == 1234


def test_torque_off_shaft_is_moved_from_outside_and_velocity_measured():
    """With torque off, set_position moves the shaft and Present_Velocity follows the motion."""
    s = Servo(1)
    s.set_position(2148)
    s.advance(0.1)
    assert s.position == 2148 and s.velocity == pytest.approx(1000)
    s.set_position(100, frame="raw")
    assert s.position == 100


def test_unlocked_eeprom_write_survives_a_power_cycle():
    """With Lock = 0 a Homing_Offset write is saved; after a power cycle it is still there."""
    s = Servo(1)
    s.write(LOCK, b"\x00")
    s.write(OFFSET, u16(0x0800 | 500))  # -500, sign bit 11
    assert s.homing_offset == -500
    s.power_cycle()
    assert s.homing_offset == -500


def test_locked_eeprom_write_is_volatile_by_default():
    """With Lock = 1 (power-up) the write takes effect but is gone after a power cycle."""
    s = Servo(1)
    assert s.get("Lock") == 1
    s.write(REGISTERS["Max_Position_Limit"].address, u16(3000))
    assert s.get("Max_Position_Limit") == 3000
    s.power_cycle()
    assert s.get("Max_Position_Limit") == 4095


def test_locked_eeprom_write_can_be_ignored():
    """With locked_eeprom_writes="ignored", a locked EEPROM write changes nothing while RAM writes still work."""
    s = Servo(1, locked_eeprom_writes="ignored")
    s.write(REGISTERS["Max_Position_Limit"].address, u16(3000))
    s.write(REGISTERS["Acceleration"].address, b"\x05")
    assert s.get("Max_Position_Limit") == 4095 and s.get("Acceleration") == 5


def test_power_cycle_resets_ram():
    """After a power cycle torque is off, Lock is 1, RAM settings are back to defaults."""
    s = Servo(1)
    s.write(LOCK, b"\x00")
    s.write(REGISTERS["Acceleration"].address, b"\x05")
    s.write(TORQUE, b"\x01")
    s.power_cycle()
    assert (s.torque_enabled, s.get("Lock"), s.get("Acceleration")) == (False, 1, 0)
    assert s.goal_position == s.position


def test_read_only_registers_ignore_writes_and_bad_ids_are_refused():
    """Writes to Model_Number or Present_Position do nothing; an ID above 253 is not taken."""
    s = Servo(1)
    s.write(LOCK, b"\x00")
    s.write(REGISTERS["Model_Number"].address, u16(1))
    s.write(REGISTERS["Present_Position"].address, u16(5))
    s.write(REGISTERS["ID"].address, b"\xfe")
    assert (s.get("Model_Number"), s.position, s.id) == (777, 2048, 1)


def test_stall_overloads_then_releases_torque():
    """A blocked servo saturates its load, reports OVERLOAD after Protection_Time and drops torque."""
    s = Servo(1)
    s.set("Protection_Time", 10)  # 0.1 s
    s.write(TORQUE, b"\x01")
    s.stalled = True
    s.write(GOAL, u16(3000))
    s.advance(0.05)
    assert s.get("Present_Load") == 1000 and s.error == 0
    run(s, 0.1)
    assert s.error & ErrorBit.OVERLOAD and s.get("Status") == ErrorBit.OVERLOAD
    s.advance(0.005)
    assert not s.torque_enabled  # Unloading_Condition includes OVERLOAD
    s.stalled = False
    s.write(TORQUE, b"\x01")
    assert s.error == 0


def test_voltage_and_temperature_outside_limits_raise_error_bits():
    """Supply below Min_Voltage_Limit sets VOLTAGE; above Max_Temperature_Limit sets OVERHEAT and unloads."""
    s = Servo(1, voltage=3.0)
    assert s.error == ErrorBit.VOLTAGE and s.get("Present_Voltage") == 30
    s.voltage, s.temperature = 12.0, 90.0
    s.write(TORQUE, b"\x01")
    s.advance(0.005)
    assert s.error == ErrorBit.OVERHEAT and not s.torque_enabled


def test_velocity_mode_turns_continuously():
    """Operating_Mode 1 spins at Goal_Velocity (sign-magnitude, negative = backwards)."""
    s = Servo(1)
    s.set("Operating_Mode", 1)
    s.write(TORQUE, b"\x01")
    s.write(REGISTERS["Goal_Velocity"].address, u16(0x8000 | 1000))
    run(s, 1.0)
    assert s.velocity == pytest.approx(-1000) and s.get("Present_Velocity") == -1000
    assert s.raw_position < 2048 - 900


def test_playback_moves_only_torque_off_servos():
    """A trajectory table is interpolated for the torque-off servo and leaves the one holding torque alone."""
    free, held = Servo(1), Servo(2)
    held.write(TORQUE, b"\x01")
    playback = Playback([[0.0, 1000, 1000], [1.0, 2000, 2000]], ids=[1, 2])
    playback.apply({1: free, 2: held}, 0.25)
    assert free.position == 1250 and held.position == 2048
    playback.apply({1: free, 2: held}, 5.0)
    assert free.position == 2000 and playback.done.is_set()


def test_sine_and_bad_inputs():
    """sine() sways around its centre; a wrong model, id or trajectory shape is refused."""
    fn = sine([1, 2], center=2000, amplitude=100, period=2.0)
    assert fn(0.5)[0] == pytest.approx(2100)
    with pytest.raises(EmulatorError, match="model"):
        Servo(1, model="xl330")
    with pytest.raises(EmulatorError, match="254"):
        Servo(254)
    with pytest.raises(EmulatorError, match="rows of 1 \\+ 2"):
        Playback([[0.0, 1.0]], ids=[1, 2])
