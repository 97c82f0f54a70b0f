"""``so100 calibrate``: LeRobot's own calibration procedure, writing the file the arm nodes read.

Registered as the ``calibrate`` verb of the ``so100.verbs`` entry-point group (see setup.py).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

from so100_driver.calibration import ROLES, calibration_root, candidate_paths


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="so100 calibrate",
                                description="calibrate a leader or follower arm (LeRobot's procedure and file format)")
    p.add_argument("arm", choices=["leader", "follower"], help="which arm")
    p.add_argument("--port", required=True, help="serial port of the arm's bus, e.g. /dev/ttyACM0")
    p.add_argument("--id", required=True, help="calibration id (the file name LeRobot and our nodes use)")
    p.add_argument("--model", choices=["so100", "so101"], default="so100", help="arm model (default so100)")
    return p


def main(argv: list[str] | None = None) -> int:
    """Calibrate a leader or follower arm (LeRobot's procedure and file format)."""
    a = build_parser().parse_args(argv)
    exe = Path(sys.executable).parent / "lerobot-calibrate"
    if not exe.exists():
        found = shutil.which("lerobot-calibrate")
        if not found:
            print("so100 calibrate: error: lerobot-calibrate not found: install lerobot[feetech] (./setup.sh does)",
                  file=sys.stderr)
            return 2
        exe = Path(found)
    kind = "robot" if a.arm == "follower" else "teleop"
    cmd = [str(exe), f"--{kind}.type={a.model}_{a.arm}", f"--{kind}.port={a.port}", f"--{kind}.id={a.id}"]
    print(f"running LeRobot's calibration: {' '.join(cmd)}", flush=True)
    code = subprocess.call(cmd)
    if code == 0:
        written = [p for p in candidate_paths(a.arm, a.id) if p.exists()]
        where = written[0] if written else f"{calibration_root()}/{ROLES[a.arm][0]}/"
        print(f"calibration written: {where} (id {a.id!r}); start the node with -p port:={a.port} -p id:={a.id}")
    return code
