"""Feetech packets against reference bytes, and the pure Bus (no pty, no clock)."""

import pytest

from so100_driver.emulator import protocol as p
from so100_driver.emulator.faults import Faults
from so100_driver.emulator.protocol import Bus, Packet, PacketParser
from so100_driver.emulator.registers import REGISTERS
from so100_driver.emulator.servo import Servo
from so100_driver.errors import EmulatorError, PacketError

# Reference bytes, checksums worked out by hand as scservo_sdk's txPacket does: ~(ID+LEN+INSTR+params) & 0xFF.
PING_1 = bytes.fromhex("ff ff 01 02 01 fb")  # 1+2+1 = 4 -> ~4 = FB
READ_1_POS = bytes.fromhex("ff ff 01 04 02 38 02 be")  # 1+4+2+56+2 = 65 -> BE
WRITE_1_GOAL_2048 = bytes.fromhex("ff ff 01 05 03 2a 00 08 c4")  # 1+5+3+42+0+8 = 59 -> C4
SYNC_READ_POS_123 = bytes.fromhex("ff ff fe 07 82 38 02 01 02 03 38")  # 254+7+130+56+2+1+2+3 = 455 -> C7 -> 38
SYNC_WRITE_GOAL = bytes.fromhex("ff ff fe 0a 83 2a 02 01 00 08 02 ff 0f 2f")  # sum 720 -> D0 -> 2F
ACTION_ALL = bytes.fromhex("ff ff fe 02 05 fa")  # 254+2+5 = 261 -> 05 -> FA
STATUS_1_OK = bytes.fromhex("ff ff 01 02 00 fc")  # 1+2+0 = 3 -> FC
STATUS_1_MODEL_777 = bytes.fromhex("ff ff 01 04 00 09 03 ee")  # 777 = 0x0309, little-endian; 1+4+9+3 = 17 -> EE


def test_request_builders_match_reference_bytes():
    """Each instruction frames to the exact bytes scservo_sdk puts on the wire."""
    assert p.ping(1) == PING_1
    assert p.read(1, 56, 2) == READ_1_POS
    assert p.write(1, 42, (2048).to_bytes(2, "little")) == WRITE_1_GOAL_2048
    assert p.sync_read(56, 2, [1, 2, 3]) == SYNC_READ_POS_123
    assert p.sync_write(42, 2, {1: b"\x00\x08", 2: b"\xff\x0f"}) == SYNC_WRITE_GOAL
    assert p.action() == ACTION_ALL
    assert p.status(1, 0, b"\x09\x03") == STATUS_1_MODEL_777


def test_decode_round_trips_and_rejects_bad_packets():
    """decode inverts encode and refuses a wrong checksum, header or length."""
    assert Packet.decode(SYNC_WRITE_GOAL) == Packet(0xFE, 0x83, bytes.fromhex("2a 02 01 00 08 02 ff 0f"))
    assert Packet.decode(STATUS_1_MODEL_777).params == b"\x09\x03"
    with pytest.raises(PacketError, match="checksum"):
        Packet.decode(PING_1[:-1] + b"\xfa")
    with pytest.raises(PacketError, match="FF FF"):
        Packet.decode(b"\xfe" + PING_1[1:])
    with pytest.raises(PacketError, match="LEN"):
        Packet.decode(PING_1 + b"\x00")


def test_parser_resynchronises_on_noise_split_packets_and_bad_checksums():
    """Garbage and a corrupted packet are skipped; a packet split over reads is still found."""
    parser = PacketParser()
    corrupted = READ_1_POS[:-1] + b"\x00"
    stream = b"\x00\x13\xff" + corrupted + PING_1 + WRITE_1_GOAL_2048
    packets = parser.feed(stream[:9]) + parser.feed(stream[9:20]) + parser.feed(stream[20:])
    assert [pk.code for pk in packets] == [p.Instruction.PING, p.Instruction.WRITE]
    assert parser.bad_checksums == 1 and parser.pending == 0


def six_servos(**kw) -> Bus:
    return Bus([Servo(i, **kw) for i in range(1, 7)], seed=0)


def test_ping_and_read_replies_are_the_reference_status_packets():
    """A servo answers PING with an empty status and READ of Model_Number with 777."""
    bus = six_servos()
    assert [r.data for r in bus.process(PING_1)] == [STATUS_1_OK]
    assert [r.data for r in bus.process(p.read(1, 3, 2))] == [STATUS_1_MODEL_777]


def test_replies_wait_for_return_delay_time():
    """Each reply carries the servo's Return_Delay_Time (2 µs units; 250 from the factory) plus the injected delay."""
    bus = six_servos()
    bus.servos[2].set("Return_Delay_Time", 0)
    bus.faults.reply_delay_s = 0.001
    delays = [r.delay_s for r in bus.process(p.sync_read(56, 2, [1, 2]))]
    assert delays == pytest.approx([0.0015, 0.001])


def test_sync_read_answers_in_the_order_of_the_request():
    """Servos listed 3, 1, 2 answer 3, 1, 2 (the order GroupSyncRead reads them in), ids not present are skipped."""
    bus = six_servos()
    for i, s in bus.servos.items():
        s.position = 1000 + i
    replies = bus.process(p.sync_read(56, 2, [3, 1, 9, 2]))
    assert [r.servo_id for r in replies] == [3, 1, 2]
    assert [int.from_bytes(Packet.decode(r.data).params, "little") for r in replies] == [1003, 1001, 1002]


def test_broadcast_write_executes_everywhere_without_reply_and_broadcast_ping_answers_all():
    """A broadcast WRITE changes every servo silently; a broadcast PING is answered by all, by ascending id."""
    bus = six_servos()
    assert bus.process(p.write(p.BROADCAST_ID, 41, b"\x0a")) == []
    assert {s.get("Acceleration") for s in bus.servos.values()} == {10}
    assert [r.servo_id for r in bus.process(p.ping(p.BROADCAST_ID))] == [1, 2, 3, 4, 5, 6]


def test_sync_write_sets_each_servo_its_own_value():
    """SYNC_WRITE of Goal_Position gives servo 1 2048 and servo 2 4095, and nobody answers."""
    bus = six_servos()
    assert bus.process(SYNC_WRITE_GOAL) == []
    assert bus.servos[1].goal_position == 2048 and bus.servos[2].goal_position == 4095


def test_bad_checksum_request_is_ignored():
    """A request with a wrong checksum is neither executed nor answered."""
    bus = six_servos()
    bad = bytearray(p.write(1, 41, b"\x05"))
    bad[-1] ^= 1
    assert bus.process(bytes(bad)) == [] and bus.servos[1].get("Acceleration") == 0
    assert bus.stats.bad_checksums == 1


def test_status_level_zero_answers_only_ping_and_read():
    """With Response_Status_Level 0 a WRITE executes silently while READ and PING still answer."""
    bus = six_servos()
    bus.servos[1].set("Response_Status_Level", 0)
    assert bus.process(p.write(1, 41, b"\x07")) == []
    assert bus.servos[1].get("Acceleration") == 7
    assert len(bus.process(p.read(1, 41, 1))) == 1 and len(bus.process(PING_1)) == 1


def test_reg_write_waits_for_action():
    """REG_WRITE stores the value; only the (broadcast) ACTION applies it."""
    bus = six_servos()
    bus.process(p.reg_write(1, 41, b"\x09"))
    assert bus.servos[1].get("Acceleration") == 0
    assert bus.process(ACTION_ALL) == []
    assert bus.servos[1].get("Acceleration") == 9


def test_id_write_is_acknowledged_by_the_old_id():
    """Rewriting ID (unlocked) answers as the old id, then the servo answers to the new one."""
    bus = Bus([Servo(1)])
    bus.process(p.write(1, REGISTERS["Lock"].address, b"\x00"))
    [reply] = bus.process(p.write(1, REGISTERS["ID"].address, b"\x04"))
    assert reply.servo_id == 1 and Packet.decode(reply.data).id == 1
    assert list(bus.servos) == [4] and bus.process(PING_1) == [] and len(bus.process(p.ping(4))) == 1


def test_two_servos_with_one_id_collide():
    """Two factory-fresh servos (both id 1) answer at once: the host gets a packet that fails its checksum."""
    bus = Bus([Servo(1), Servo(1)])
    [reply] = bus.process(PING_1)
    with pytest.raises(PacketError):
        Packet.decode(reply.data)
    assert bus.stats.collisions == 1


def test_servo_at_another_baud_rate_does_not_hear():
    """A servo set to 500 kbit/s ignores a host at 1 Mbit/s and answers one at 500 kbit/s."""
    bus = Bus([Servo(1)])
    bus.servos[1].set("Baud_Rate", 1)
    bus.host_baud = 1_000_000
    assert bus.process(PING_1) == []
    bus.host_baud = 500_000
    assert len(bus.process(PING_1)) == 1


def test_unplugged_and_offline_servos_neither_execute_nor_answer():
    """Unplugged: nothing happens; an offline id misses writes while the others execute them."""
    bus = Bus([Servo(1), Servo(2)], faults=Faults(unplugged=True))
    assert bus.process(p.write(p.BROADCAST_ID, 41, b"\x03")) == [] and bus.servos[1].get("Acceleration") == 0
    bus.faults.unplugged = False
    bus.faults.offline = {2}
    bus.process(p.write(p.BROADCAST_ID, 41, b"\x03"))
    assert bus.servos[1].get("Acceleration") == 3 and bus.servos[2].get("Acceleration") == 0
    assert [r.servo_id for r in bus.process(p.sync_read(41, 1, [1, 2]))] == [1]


def test_dropped_replies_still_execute_and_corrupted_replies_fail_their_checksum():
    """drop_rate=1 loses the status packet after executing; corrupt_rate=1 breaks every checksum."""
    bus = Bus([Servo(1)], faults=Faults(drop_rate=1.0))
    bus.process(p.write(1, 41, b"\x05"))
    assert bus.servos[1].get("Acceleration") == 5 and bus.stats.dropped == 1
    bus.faults.drop_rate, bus.faults.corrupt_rate = 0.0, 1.0
    [reply] = bus.process(PING_1)
    with pytest.raises(PacketError, match="checksum"):
        Packet.decode(reply.data)


def test_faults_are_validated():
    """A rate outside [0, 1] or a negative delay is refused with the field named."""
    with pytest.raises(EmulatorError, match="drop_rate"):
        Faults(drop_rate=1.5)
    with pytest.raises(EmulatorError, match="reply_delay_s"):
        Faults().reply_delay_s = -1
