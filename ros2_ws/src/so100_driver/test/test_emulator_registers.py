"""The emulated control table and encodings agree with LeRobot's feetech tables."""

import pytest
from lerobot.motors import encoding_utils
from lerobot.motors.feetech import tables

from so100_driver.emulator import registers as regs

SIGN_BITS = (10, 11, 15)  # Present_Load, Homing_Offset, positions/velocities


@pytest.mark.parametrize("bit", SIGN_BITS)
def test_sign_magnitude_encode_matches_lerobot(bit):
    """Encoding 0, ±1 and ±max gives lerobot's bits; one past max is refused by both."""
    top = (1 << bit) - 1
    for value in (0, 1, -1, 2, -2, top - 1, -(top - 1), top, -top):
        assert regs.encode_sign_magnitude(value, bit) == encoding_utils.encode_sign_magnitude(value, bit), value
    for value in (top + 1, -(top + 1)):
        with pytest.raises(ValueError):
            regs.encode_sign_magnitude(value, bit)
        with pytest.raises(ValueError):
            encoding_utils.encode_sign_magnitude(value, bit)


@pytest.mark.parametrize("bit", SIGN_BITS)
def test_sign_magnitude_decode_matches_lerobot(bit):
    """Decoding edge words (negative zero, the sign bit alone, stray high bits, 0xFFFF) gives lerobot's values."""
    sign = 1 << bit
    for raw in (0, 1, sign - 1, sign, sign | 1, sign | (sign - 1), (sign << 1) - 1, 0xFFFF, 0x8000, 0x0800, 0x0400):
        assert regs.decode_sign_magnitude(raw, bit) == encoding_utils.decode_sign_magnitude(raw, bit), hex(raw)


def test_control_table_matches_lerobot_sts_table():
    """Every register lerobot knows for STS servos has the same address and size here, and vice versa."""
    theirs = {name.strip(): addr_size for name, addr_size in tables.STS_SMS_SERIES_CONTROL_TABLE.items()}
    ours = {r.name: (r.address, r.size) for r in regs.CONTROL_TABLE}
    assert ours == theirs
    assert tables.MODEL_CONTROL_TABLE["sts3215"] is tables.STS_SMS_SERIES_CONTROL_TABLE


def test_sign_bits_match_lerobot_encoding_table():
    """The registers lerobot decodes as sign-magnitude use the same sign bit here; the others are unsigned."""
    theirs = {k: v for k, v in tables.STS_SMS_SERIES_ENCODINGS_TABLE.items() if k in regs.REGISTERS}
    ours = {r.name: r.sign_bit for r in regs.CONTROL_TABLE if r.sign_bit is not None}
    assert (
        ours
        == theirs
        == {
            "Homing_Offset": 11,
            "Goal_Position": 15,
            "Goal_Velocity": 15,
            "Present_Position": 15,
            "Present_Velocity": 15,
            "Present_Load": 10,
        }
    )


def test_model_numbers_and_baud_rates_match_lerobot():
    """Model_Number 777 (sts3215) / 2825 (sts3250) and the Baud_Rate codes are lerobot's."""
    for model, number in regs.MODEL_NUMBERS.items():
        assert tables.MODEL_NUMBER_TABLE[model] == number
    assert {v: k for k, v in tables.STS_SMS_SERIES_BAUDRATE_TABLE.items()} == regs.BAUD_RATES


def test_factory_memory_is_a_new_sts3215():
    """A new servo: model bytes 09 03, ID 1, 1 Mbit/s, limits 0..4095, 500 µs reply delay, torque off."""
    memory = regs.factory_memory("sts3215", 1)
    assert memory[3:5] == b"\x09\x03"
    values = {name: regs.decode(r, memory[r.address : r.address + r.size]) for name, r in regs.REGISTERS.items()}
    assert values["ID"] == 1 and values["Baud_Rate"] == 0
    assert (values["Min_Position_Limit"], values["Max_Position_Limit"]) == (0, 4095)
    assert values["Return_Delay_Time"] == 250 and values["Torque_Enable"] == 0 and values["Homing_Offset"] == 0


def test_areas_split_eeprom_ram_and_factory():
    """Addresses below 40 are EEPROM, 40-79 RAM, 80 and up the factory area."""
    assert regs.REGISTERS["Homing_Offset"].area is regs.Area.EEPROM
    assert regs.REGISTERS["Torque_Enable"].area is regs.Area.RAM and regs.REGISTERS["Lock"].area is regs.Area.RAM
    assert regs.REGISTERS["Maximum_Acceleration"].area is regs.Area.FACTORY
    assert all(regs.area_of(a) is r.area for r in regs.CONTROL_TABLE for a in r.addresses)
