"""`so100 calibrate` runs LeRobot's procedure against the emulated bus and writes LeRobot's file."""

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from so100_common.testing import wait_for

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
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
        seen = bytearray()  # LeRobot's prompts end without a newline: read raw chunks
        chunks = iter(lambda: os.read(cal.stdout.fileno(), 4096), b"")
        reader = threading.Thread(target=lambda: [seen.extend(c) for c in chunks], daemon=True)
        reader.start()

        def press_enter_after(prompt: bytes, pause: float = 0.0) -> None:
            # lerobot and torch import slowly on a loaded machine
            wait_for(lambda: prompt in seen or cal.poll() is not None, 90, f"the prompt {prompt!r}")
            assert cal.poll() is None, seen.decode(errors="replace")
            time.sleep(pause)
            cal.stdin.write(b"\n")
            cal.stdin.flush()

        press_enter_after(b"middle of its range of motion")
        # it records ranges while the emulated joints sweep (period 1.5 s, in their own process)
        press_enter_after(b"Recording positions", pause=4.0)
        cal.wait(60)
        reader.join(5)
        out = seen.decode(errors="replace")
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
        assert f"calibration written: {files[0]} (id 'arm1')" in out  # the file the nodes will find
    finally:
        emu.terminate()
        emu.wait(10)
