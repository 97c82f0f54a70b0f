"""``so100_bus_emulator``: emulated Feetech servos on a pseudo-terminal, until Ctrl-C."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path

from so100_common.names import JOINT_NAMES
from so100_driver.emulator import registers
from so100_driver.emulator.pty_bus import EmulatedBus
from so100_driver.emulator.servo import Servo
from so100_driver.emulator.trajectory import load_csv, sine
from so100_driver.errors import EmulatorError

EPILOG = f"""\
The first line on stdout is the port to open (e.g. /dev/pts/5); --link gives it a stable name.
Everything that opens a serial port with pyserial works unchanged against it:

  LeRobot's bus:       FeetechMotorsBus(port="/dev/pts/5", motors={{"shoulder_pan": Motor(1, "sts3215", ...), ...}})
  LeRobot's scripts:   lerobot-teleoperate --robot.type=so100_follower --robot.port=/tmp/so100_follower \\
                           --teleop.type=so100_leader --teleop.port=/tmp/so100_leader ...
  our nodes:           the driver's "port" parameter, e.g. -p port:=/tmp/so100_leader

A typical pair: a leader that moves by itself and a follower that obeys goal positions:

  so100_bus_emulator --trajectory sine --link /tmp/so100_leader --calibration leader.json &
  so100_bus_emulator --trajectory hold --link /tmp/so100_follower --calibration follower.json &

--calibration takes a LeRobot calibration file ({{"shoulder_pan": {{"id": 1, "homing_offset": ..., "range_min":
..., "range_max": ...}}, ...}}) and writes it into the servos' EEPROM, so LeRobot finds the arm calibrated
and never asks to calibrate. Without it the servos are factory-fresh (offset 0, limits 0..4095) and a
LeRobot robot will start its interactive calibration.

--trajectory moves servos whose torque is off (a leader arm, or a follower before it is enabled):
sine (each joint sways around the middle of its range), hold (nothing moves), or a CSV file with a
header 't,<id or motor name>,...' ({", ".join(JOINT_NAMES)} = ids 1..6) and rows of seconds and
Present_Position ticks.
"""


def parse_ids(text: str) -> list[int]:
    """``1..6``, ``1-6``, ``1,2,5`` or ``3`` -> a list of ids."""
    ids: list[int] = []
    try:
        for part in text.split(","):
            part = part.strip()
            sep = ".." if ".." in part else "-" if "-" in part else None
            if sep:
                lo, hi = (int(x) for x in part.split(sep))
                ids.extend(range(lo, hi + 1))
            else:
                ids.append(int(part))
    except ValueError:
        raise argparse.ArgumentTypeError(f"cannot read ids {text!r}: use 1..6, 1-6 or 1,2,5") from None
    if not ids or any(not 0 <= i <= 253 for i in ids):
        raise argparse.ArgumentTypeError(f"ids must be in 0..253, got {text!r}")
    return ids


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="so100_bus_emulator",
        description="Emulate Feetech STS3215 servos (an SO-100 arm) on a pseudo-terminal, speaking the real protocol.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--ids", type=parse_ids, default=list(range(1, 7)), help="servo ids (default 1..6)")
    p.add_argument(
        "--model", choices=sorted(registers.MODEL_NUMBERS), default="sts3215", help="servo model (default sts3215)"
    )
    p.add_argument(
        "--trajectory", default="hold", metavar="sine|hold|FILE.csv", help="motion of torque-off servos (default hold)"
    )
    p.add_argument("--loop", action="store_true", help="repeat a CSV trajectory")
    p.add_argument("--amplitude", type=float, default=300.0, help="sine amplitude in ticks (default 300)")
    p.add_argument("--period", type=float, default=4.0, help="sine period in seconds (default 4)")
    p.add_argument("--calibration", type=Path, help="LeRobot calibration JSON to write into the servos' EEPROM")
    p.add_argument("--link", type=Path, help="also create this symlink to the pty (removed on exit)")
    p.add_argument("--max-speed", type=float, default=3000.0, help="top speed under torque, ticks/s (default 3000)")
    p.add_argument("--reply-delay-ms", type=float, default=0.0, help="fault: extra delay before every reply")
    p.add_argument("--drop-rate", type=float, default=0.0, help="fault: fraction of replies lost")
    p.add_argument("--corrupt-rate", type=float, default=0.0, help="fault: fraction of replies with a bad checksum")
    p.add_argument("--seed", type=int, help="seed for the random faults")
    p.add_argument("--monitor", type=float, default=0.0, metavar="S", help="print positions to stderr every S seconds")
    return p


def apply_calibration(servos: dict[int, Servo], path: Path) -> dict[int, tuple[int, int]]:
    """Write a LeRobot calibration file into the servos' EEPROM; returns id -> (range_min, range_max)."""
    try:
        data = json.loads(path.read_text())
        ranges = {}
        for motor, cal in data.items():
            servo_id = int(cal["id"])
            if servo_id not in servos:
                raise EmulatorError(
                    f"{path}: motor {motor!r} has id {servo_id}, which is not emulated (ids {sorted(servos)})"
                )
            servo = servos[servo_id]
            servo.set("Homing_Offset", int(cal["homing_offset"]))
            servo.set("Min_Position_Limit", int(cal["range_min"]))
            servo.set("Max_Position_Limit", int(cal["range_max"]))
            ranges[servo_id] = (int(cal["range_min"]), int(cal["range_max"]))
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise EmulatorError(f"cannot use calibration file {path}: {e!r}; expected LeRobot's format") from e
    return ranges


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        emu = EmulatedBus(args.ids, model=args.model, seed=args.seed, link=args.link, max_speed=args.max_speed)
    except EmulatorError as e:
        print(f"so100_bus_emulator: {e}", file=sys.stderr)
        return 2
    with emu:
        try:
            with emu.lock:
                emu.faults.reply_delay_s = args.reply_delay_ms / 1000
                emu.faults.drop_rate = args.drop_rate
                emu.faults.corrupt_rate = args.corrupt_rate
                ranges = apply_calibration(emu.servos, args.calibration) if args.calibration else {}
                for servo_id, (lo, hi) in ranges.items():  # start in the middle of the calibrated range
                    emu.servos[servo_id].set_position((lo + hi) / 2)
            start_trajectory(emu, args, ranges)
        except EmulatorError as e:
            print(f"so100_bus_emulator: {e}", file=sys.stderr)
            return 2
        print(emu.port, flush=True)
        where = f"{emu.port} (link {emu.link})" if emu.link else emu.port
        print(
            f"so100_bus_emulator: {len(args.ids)} x {args.model} (ids {args.ids}) on {where}; Ctrl-C to stop",
            file=sys.stderr,
            flush=True,
        )
        while not stop.wait(args.monitor or None):
            with emu.lock:
                line = "  ".join(
                    f"{i}:{s.position:4d}{'*' if s.torque_enabled else ' '}" for i, s in sorted(emu.servos.items())
                )
            print(f"positions (* = torque on)  {line}", file=sys.stderr, flush=True)
    return 0


def start_trajectory(emu: EmulatedBus, args: argparse.Namespace, ranges: dict[int, tuple[int, int]]) -> None:
    if args.trajectory == "hold":
        return
    if args.trajectory == "sine":
        ids = sorted(emu.servos)
        centers = {i: (ranges[i][0] + ranges[i][1]) / 2 if i in ranges else 2048.0 for i in ids}
        amplitudes = {
            i: min(args.amplitude, 0.45 * (ranges[i][1] - ranges[i][0])) if i in ranges else args.amplitude for i in ids
        }
        emu.play(sine(ids, center=centers, amplitude=amplitudes, period=args.period), ids=ids)
        return
    ids, table = load_csv(args.trajectory)
    missing = sorted(set(ids) - set(emu.servos))
    if missing:
        raise EmulatorError(f"{args.trajectory} has columns for ids {missing}, which are not emulated (--ids)")
    emu.play(table, ids=ids, loop=args.loop)


if __name__ == "__main__":
    sys.exit(main())
