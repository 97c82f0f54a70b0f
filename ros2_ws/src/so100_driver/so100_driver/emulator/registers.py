"""The Feetech STS3215/STS3250 control table, as LeRobot's feetech tables define it.

Names, addresses and sizes follow ``lerobot.motors.feetech.tables.STS_SMS_SERIES_CONTROL_TABLE``
and the sign-magnitude sign bits follow ``STS_SMS_SERIES_ENCODINGS_TABLE`` (a test checks both
against the installed lerobot). Factory defaults are those of a new servo as far as LeRobot and
Feetech's memory table tell; where neither does, the value is the emulator's choice and says so.

Areas: addresses below 40 are EEPROM (kept over a power cycle), 40-79 are RAM (back to their
defaults on power-up), 80-86 are the factory area (kept, like EEPROM).

Dependency rule: imports nothing from the project; pure data and integer helpers.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntFlag, StrEnum

#: Bytes of emulated memory; reads past the table return zeros.
MEMORY_SIZE = 256
#: Ticks per turn of the 12-bit magnetic encoder.
RESOLUTION = 4096
#: Model numbers at address 3 (the same as lerobot's MODEL_NUMBER_TABLE).
MODEL_NUMBERS: dict[str, int] = {"sts3215": 777, "sts3250": 2825}
#: Baud_Rate register value -> bits per second (lerobot's STS_SMS_SERIES_BAUDRATE_TABLE, inverted).
BAUD_RATES: dict[int, int] = {
    0: 1_000_000,
    1: 500_000,
    2: 250_000,
    3: 128_000,
    4: 115_200,
    5: 57_600,
    6: 38_400,
    7: 19_200,
}
#: Phase bit that, when set, stops Present_Position from wrapping into [0, RESOLUTION - 1]
#: (lerobot's configure_motors clears it on STS3215s).
PHASE_UNWRAPPED_POSITION = 0x10


class Area(StrEnum):
    """Where a register lives, which decides what survives a power cycle."""

    EEPROM = "eeprom"
    RAM = "ram"
    FACTORY = "factory"


class ErrorBit(IntFlag):
    """Bits of the Status register (65) and of a status packet's error byte.

    The meanings are those scservo_sdk's ``getRxPacketError`` prints; Unloading_Condition (19) and
    LED_Alarm_Condition (20) use the same bits.
    """

    VOLTAGE = 0x01  # input voltage outside [Min_Voltage_Limit, Max_Voltage_Limit]
    SENSOR = 0x02  # magnetic angle sensor fault ("Angle sen error")
    OVERHEAT = 0x04  # Present_Temperature above Max_Temperature_Limit
    OVERCURRENT = 0x08  # current above Protection_Current ("OverEle")
    OVERLOAD = 0x20  # load above Overload_Torque for longer than Protection_Time


@dataclass(frozen=True)
class Register:
    """One named field of the control table."""

    name: str
    address: int
    size: int
    area: Area
    writable: bool = True
    sign_bit: int | None = None  # sign-magnitude encoded with this bit as the sign, else unsigned
    default: int = 0  # value after a factory reset (decoded)

    @property
    def addresses(self) -> range:
        return range(self.address, self.address + self.size)


def _eeprom(name: str, address: int, size: int, default: int = 0, **kw) -> Register:
    return Register(name, address, size, Area.EEPROM, default=default, **kw)


def _ram(name: str, address: int, size: int, default: int = 0, **kw) -> Register:
    return Register(name, address, size, Area.RAM, default=default, **kw)


def _factory(name: str, address: int, size: int, default: int = 0) -> Register:
    return Register(name, address, size, Area.FACTORY, default=default)


CONTROL_TABLE: tuple[Register, ...] = (
    # EEPROM. Firmware 3.9 is the emulator's choice: LeRobot only checks that every servo agrees.
    _eeprom("Firmware_Major_Version", 0, 1, 3, writable=False),
    _eeprom("Firmware_Minor_Version", 1, 1, 9, writable=False),
    _eeprom("Model_Number", 3, 2, MODEL_NUMBERS["sts3215"], writable=False),
    _eeprom("ID", 5, 1, 1),
    _eeprom("Baud_Rate", 6, 1, 0),  # 1 Mbit/s
    _eeprom("Return_Delay_Time", 7, 1, 250),  # 2 µs units: 500 µs (lerobot's configure_motors sets 0)
    _eeprom("Response_Status_Level", 8, 1, 1),  # 0: answer only PING and READ; 1: answer everything
    _eeprom("Min_Position_Limit", 9, 2, 0),
    _eeprom("Max_Position_Limit", 11, 2, RESOLUTION - 1),
    _eeprom("Max_Temperature_Limit", 13, 1, 70),  # °C
    _eeprom("Max_Voltage_Limit", 14, 1, 140),  # 0.1 V
    _eeprom("Min_Voltage_Limit", 15, 1, 40),  # 0.1 V
    _eeprom("Max_Torque_Limit", 16, 2, 1000),  # 0.1 %
    _eeprom("Phase", 18, 1, 0),
    _eeprom("Unloading_Condition", 19, 1, 44),  # OVERHEAT | OVERCURRENT | OVERLOAD release torque
    _eeprom("LED_Alarm_Condition", 20, 1, 47),
    _eeprom("P_Coefficient", 21, 1, 32),
    _eeprom("D_Coefficient", 22, 1, 32),
    _eeprom("I_Coefficient", 23, 1, 0),
    _eeprom("Minimum_Startup_Force", 24, 2, 16),
    _eeprom("CW_Dead_Zone", 26, 1, 1),
    _eeprom("CCW_Dead_Zone", 27, 1, 1),
    _eeprom("Protection_Current", 28, 2, 500),  # 6.5 mA units
    _eeprom("Angular_Resolution", 30, 1, 1),
    _eeprom("Homing_Offset", 31, 2, 0, sign_bit=11),
    _eeprom("Operating_Mode", 33, 1, 0),  # 0 position, 1 velocity, 2 PWM, 3 step
    _eeprom("Protective_Torque", 34, 1, 20),  # %
    _eeprom("Protection_Time", 35, 1, 200),  # 10 ms units
    _eeprom("Overload_Torque", 36, 1, 80),  # %
    _eeprom("Velocity_closed_loop_P_proportional_coefficient", 37, 1, 10),
    _eeprom("Over_Current_Protection_Time", 38, 1, 200),
    _eeprom("Velocity_closed_loop_I_integral_coefficient", 39, 1, 200),
    # RAM.
    _ram("Torque_Enable", 40, 1, 0),
    _ram("Acceleration", 41, 1, 0),  # 100 ticks/s² units; 0 = as fast as the motor can
    _ram("Goal_Position", 42, 2, 0, sign_bit=15),  # set to Present_Position on power-up
    _ram("Goal_Time", 44, 2, 0),
    _ram("Goal_Velocity", 46, 2, 0, sign_bit=15),  # ticks/s; 0 = the servo's top speed
    _ram("Torque_Limit", 48, 2, 1000),  # set to Max_Torque_Limit on power-up
    # Power-up value 1 (locked) is the emulator's choice: code that forgets to unlock is caught.
    _ram("Lock", 55, 1, 1),
    _ram("Present_Position", 56, 2, writable=False, sign_bit=15),
    _ram("Present_Velocity", 58, 2, writable=False, sign_bit=15),
    _ram("Present_Load", 60, 2, writable=False, sign_bit=10),
    _ram("Present_Voltage", 62, 1, writable=False),
    _ram("Present_Temperature", 63, 1, writable=False),
    _ram("Status", 65, 1, writable=False),
    _ram("Moving", 66, 1, writable=False),
    _ram("Present_Current", 69, 2, writable=False),
    _ram("Goal_Position_2", 71, 2, writable=False),
    # Factory area (values unknown: zeros); lerobot names two registers at address 80.
    _factory("Moving_Velocity", 80, 1),
    _factory("Moving_Velocity_Threshold", 80, 1),
    _factory("DTs", 81, 1),
    _factory("Velocity_Unit_factor", 82, 1),
    _factory("Hts", 83, 1),
    _factory("Maximum_Velocity_Limit", 84, 1),
    _factory("Maximum_Acceleration", 85, 1),
    _factory("Acceleration_Multiplier", 86, 1),  # lerobot spells it "Acceleration_Multiplier "
)

REGISTERS: dict[str, Register] = {r.name: r for r in CONTROL_TABLE}

#: Addresses a host may not change (writes to them are ignored, as the servo does).
READ_ONLY_ADDRESSES: frozenset[int] = frozenset(a for r in CONTROL_TABLE if not r.writable for a in r.addresses)


def area_of(address: int) -> Area:
    """The memory area an address belongs to."""
    if address < 40:
        return Area.EEPROM
    if address < 80:
        return Area.RAM
    return Area.FACTORY


def encode_sign_magnitude(value: int, sign_bit: int) -> int:
    """Encode a signed integer as sign-magnitude with ``sign_bit`` as the sign.

    Raises:
        ValueError: the magnitude does not fit below the sign bit.
    """
    magnitude = abs(int(value))
    if magnitude >= 1 << sign_bit:
        raise ValueError(f"|{value}| does not fit in {sign_bit} bits of magnitude (max {(1 << sign_bit) - 1})")
    return magnitude | ((1 << sign_bit) if value < 0 else 0)


def decode_sign_magnitude(raw: int, sign_bit: int) -> int:
    """Decode a sign-magnitude integer; bits above the sign bit are ignored."""
    magnitude = raw & ((1 << sign_bit) - 1)
    return -magnitude if raw >> sign_bit & 1 else magnitude


def encode(register: Register, value: int) -> bytes:
    """A register value as the little-endian bytes the servo stores."""
    raw = encode_sign_magnitude(value, register.sign_bit) if register.sign_bit is not None else int(value)
    if not 0 <= raw < 1 << (8 * register.size):
        raise ValueError(f"{register.name} holds {register.size} byte(s); {value} does not fit")
    return raw.to_bytes(register.size, "little")


def decode(register: Register, data: bytes) -> int:
    """The value of a register from its little-endian bytes."""
    raw = int.from_bytes(data[: register.size], "little")
    return decode_sign_magnitude(raw, register.sign_bit) if register.sign_bit is not None else raw


def factory_memory(model: str = "sts3215", servo_id: int = 1) -> bytearray:
    """The memory image of a new servo (RAM as on power-up, except Goal_Position)."""
    if model not in MODEL_NUMBERS:
        raise ValueError(f"unknown servo model {model!r}; choose one of {sorted(MODEL_NUMBERS)}")
    memory = bytearray(MEMORY_SIZE)
    for reg in CONTROL_TABLE:
        memory[reg.address : reg.address + reg.size] = encode(reg, reg.default)
    memory[3:5] = encode(REGISTERS["Model_Number"], MODEL_NUMBERS[model])
    memory[5] = servo_id
    return memory
