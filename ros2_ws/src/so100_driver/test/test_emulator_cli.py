"""The so100_bus_emulator command: a separate process LeRobot connects to, and its inputs."""

import json
import select
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from lerobot.motors import MotorCalibration

from so100_common.names import JOINT_NAMES
from so100_driver.emulator.cli import parse_ids
from so100_driver.emulator.trajectory import load_csv
from so100_driver.errors import EmulatorError

CMD = [sys.executable, "-m", "so100_driver.emulator"]


def read_line(proc: subprocess.Popen, timeout: float = 15.0) -> str:
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    if not ready:
        proc.kill()
        pytest.fail(f"no port printed within {timeout} s; stderr: {proc.stderr.read()}")
    return proc.stdout.readline().strip()


def test_cli_serves_a_calibrated_moving_arm_until_ctrl_c(tmp_path, wait_for, new_lerobot_bus):
    """The command prints the pty; LeRobot finds a calibrated arm swaying in degrees; SIGINT exits 0 and removes --link."""
    calibration = {
        name: MotorCalibration(id=k + 1, drive_mode=0, homing_offset=50 * k, range_min=1000, range_max=3000)
        for k, name in enumerate(JOINT_NAMES)
    }
    cal_file = tmp_path / "leader.json"
    cal_file.write_text(json.dumps({name: vars(c) for name, c in calibration.items()}))
    link = tmp_path / "so100_leader"
    proc = subprocess.Popen(
        [
            *CMD,
            "--ids",
            "1..6",
            "--trajectory",
            "sine",
            "--period",
            "1",
            "--calibration",
            str(cal_file),
            "--link",
            str(link),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        port = read_line(proc)
        assert port.startswith("/dev/") and link.resolve() == Path(port).resolve()
        bus = new_lerobot_bus(str(link), calibration=calibration)
        bus.connect()
        assert bus.is_calibrated
        first = bus.sync_read("Present_Position")
        wait_for(
            lambda: abs(bus.sync_read("Present_Position")["shoulder_pan"] - first["shoulder_pan"]) > 5,
            what="the sine trajectory to move shoulder_pan",
        )
        assert all(abs(v) <= 300 * 360 / 4095 + 1 for k, v in first.items() if k != "gripper"), first
        bus.port_handler.closePort()
    finally:
        proc.send_signal(signal.SIGINT)
        rc = proc.wait(timeout=10)
    assert rc == 0, proc.stderr.read()
    assert not link.exists()


def test_cli_help_explains_how_to_connect():
    """--help tells how to point LeRobot (bus and scripts) and our nodes at the emulator."""
    out = subprocess.run([*CMD, "--help"], capture_output=True, text=True, check=True).stdout
    for needle in ("FeetechMotorsBus", "--robot.port", "--calibration", "--trajectory", "sine|hold|FILE.csv"):
        assert needle in out, needle


def test_cli_refuses_a_bad_calibration_file(tmp_path):
    """A calibration naming an id that is not emulated stops the command with exit code 2 and a message."""
    bad = tmp_path / "bad.json"
    bad.write_text(
        json.dumps({"gripper": {"id": 9, "drive_mode": 0, "homing_offset": 0, "range_min": 0, "range_max": 4095}})
    )
    result = subprocess.run([*CMD, "--calibration", str(bad)], capture_output=True, text=True, timeout=20)
    assert result.returncode == 2 and "id 9" in result.stderr


def test_parse_ids_and_csv_trajectories(tmp_path):
    """Ids parse from 1..6, 1-3 and lists; a CSV header takes ids or LeRobot motor names."""
    assert parse_ids("1..6") == [1, 2, 3, 4, 5, 6] and parse_ids("1-3,7") == [1, 2, 3, 7]
    path = tmp_path / "t.csv"
    path.write_text("t,shoulder_pan,gripper,3\n0,2048,2048,100\n0.5,2100,1900,200\n")
    ids, table = load_csv(path)
    assert ids == [1, 6, 3] and table.shape == (2, 4)
    path.write_text("t,elbow\n0,1\n")
    with pytest.raises(EmulatorError, match="elbow"):
        load_csv(path)
