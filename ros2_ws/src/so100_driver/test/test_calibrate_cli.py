"""`so100 calibrate` runs LeRobot's procedure against the emulated bus and writes LeRobot's file."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

BIN = Path(sys.executable).parent


def test_calibrate_follower_writes_lerobot_calibration(tmp_path):
    """Middle pose, then the joints sweep (the emulator's sine), ENTER: the file appears with real ranges."""
    link = tmp_path / "arm"
    emu = subprocess.Popen([str(BIN / "so100_bus_emulator"), "--trajectory", "sine", "--amplitude", "400",
                            "--period", "1.5", "--link", str(link)], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 20
        while not link.exists():
            assert time.monotonic() < deadline and emu.poll() is None, "emulator did not start"
            time.sleep(0.05)
        env = dict(os.environ, HF_LEROBOT_CALIBRATION=str(tmp_path / "calib"))
        cal = subprocess.Popen([str(BIN / "so100"), "calibrate", "follower", "--port", str(link), "--id", "arm1"],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env=env)
        time.sleep(4.0)  # LeRobot connects and asks for the middle pose
        cal.stdin.write("\n")
        cal.stdin.flush()
        time.sleep(3.0)  # it records ranges while the emulated joints sweep
        cal.stdin.write("\n")
        cal.stdin.flush()
        out, _ = cal.communicate(timeout=60)
        assert cal.returncode == 0, out
        files = list((tmp_path / "calib").rglob("arm1.json"))
        assert len(files) == 1 and files[0].parent.name == "so_follower", files
        from so100_driver.calibration import find_calibration, load_calibration

        found = find_calibration("follower", "arm1", root=tmp_path / "calib")
        assert found == files[0] and len(load_calibration(found)) == 6  # what follower_arm will load
        data = json.loads(files[0].read_text())
        assert set(data) == {"shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper"}
        for motor in data.values():
            assert motor["range_max"] - motor["range_min"] > 300, motor
        assert "calibration written" in out
    finally:
        emu.terminate()
        emu.wait(10)
