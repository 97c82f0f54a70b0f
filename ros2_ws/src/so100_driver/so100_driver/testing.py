"""Helpers for tests that run driver nodes against emulated servo buses (used by several test files)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from so100_common.names import JOINT_NAMES
from so100_common.testing import wait_for


def calibration(shift: int = 0) -> dict:
    """A LeRobot calibration in its JSON form: joints over +-1000 ticks (+-1.53 rad), wrist_roll a full turn."""
    cal = {name: {"id": k + 1, "drive_mode": 0, "homing_offset": 30 * k - 70, "range_min": 1000 + shift,
                  "range_max": 3000 + shift} for k, name in enumerate(JOINT_NAMES)}
    cal["wrist_roll"].update(range_min=0, range_max=4095)
    cal["gripper"].update(range_min=1900, range_max=3300)
    return cal


def write_calibration(root: Path, folder: str, cal_id: str, cal: dict) -> Path:
    path = root / folder / f"{cal_id}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(cal, indent=4))
    return path


def start_emulator(graph: Any, cal_file: Path, link: Path, *extra: str) -> Any:
    """so100_bus_emulator as its own process (no GC pauses shared with the test process)."""
    proc = graph.start([sys.executable, "-m", "so100_driver.emulator", "--calibration", str(cal_file),
                        "--link", str(link), *extra])
    wait_for(link.exists, 15, f"the emulator's link {link}")
    return proc
