"""LeRobot calibration files for an SO-100 arm, and the unit conversion they define.

Pure: no runtime, no serial port. Imports only ``names``/``errors`` from the project and
lerobot's ``MotorCalibration`` dataclass (lazily: importing lerobot calls ``logging.basicConfig``
through its first root-logger call, which would double every log line of a node that has not
set up logging yet).

Where the files are
    LeRobot keeps one JSON file per device under ``HF_LEROBOT_CALIBRATION`` (default
    ``$HF_LEROBOT_HOME/calibration`` = ``~/.cache/huggingface/lerobot/calibration``):
    ``robots/<type>/<id>.json`` for followers and ``teleoperators/<type>/<id>.json`` for
    leaders. lerobot 0.4+ writes ``so_follower`` / ``so_leader``; older releases wrote
    ``so100_follower`` / ``so100_leader`` (and ``so101_*``). :func:`find_calibration`
    looks in all of them, newest layout first.

Units (DESIGN.md §3), converted here from raw ``Present_Position`` ticks (the servo has
already applied the calibration's ``Homing_Offset``):

* joints 1-5: ``rad = (ticks - mid) * 2*pi / (resolution - 1)`` with ``mid = (range_min +
  range_max) / 2``. This is exactly LeRobot's ``MotorNormMode.DEGREES`` value
  (``(ticks - mid) * 360 / 4095``) times ``pi / 180``, so LeRobot datasets recorded in degrees
  convert by a unit change. (LeRobot divides by 4095, not 4096: the angle is 0.024 % larger than
  the encoder's true angle; we keep LeRobot's number so that datasets convert exactly.)
* gripper: LeRobot records it as ``MotorNormMode.RANGE_0_100``, the percentage of the
  calibrated travel (0 % = ``range_min`` = closed, 100 % = ``range_max`` = open; inverted when
  ``drive_mode`` is 1). Our gripper is the moving jaw's angle, and the URDF's jaw limits are
  that travel's ends, so the map is linear from 0..100 % onto ``JAW_LOWER..JAW_UPPER``
  (-0.174533 .. 1.74533 rad). Sim and real then agree at "closed" and "fully open" for any
  arm's calibration, and a dataset's gripper percentage converts exactly both ways. The
  servo's own angle is not used: the horn-to-jaw linkage and each arm's recorded travel differ.

Unlike LeRobot, positions are not clamped to the calibrated range when read (a joint pushed past
its recorded range reports where it is); inside the range the values are identical.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from so100_common.names import JOINT_NAMES
from so100_driver.errors import CalibrationError

if TYPE_CHECKING:  # lerobot is imported when first needed: its import configures the root logger
    from lerobot.motors import MotorCalibration

#: The moving jaw's limits (rad), URDF / reference/so101_kinematics.md: 0 % and 100 % of the gripper's travel.
JAW_LOWER = -0.174533
JAW_UPPER = 1.74533
GRIPPER = "gripper"

#: Folder names LeRobot has used, newest first.
ROBOT_TYPES: tuple[str, ...] = ("so_follower", "so100_follower", "so101_follower")
TELEOP_TYPES: tuple[str, ...] = ("so_leader", "so100_leader", "so101_leader")
ROLES = {"follower": ("robots", ROBOT_TYPES), "leader": ("teleoperators", TELEOP_TYPES)}


def calibration_root() -> Path:
    """LeRobot's calibration folder, resolved as lerobot resolves it (read at call time, not import time)."""
    if "HF_LEROBOT_CALIBRATION" in os.environ:
        return Path(os.environ["HF_LEROBOT_CALIBRATION"]).expanduser()
    if "HF_LEROBOT_HOME" in os.environ:
        return Path(os.environ["HF_LEROBOT_HOME"]).expanduser() / "calibration"
    hf_home = Path(os.environ.get("HF_HOME", "~/.cache/huggingface")).expanduser()
    return hf_home / "lerobot" / "calibration"


def fix_command(role: str, calibration_id: str, port: str = "PORT") -> str:
    """The command that writes a missing calibration file (ours, and LeRobot's own equivalent)."""
    arm = "leader" if role == "leader" else "follower"
    kind, device = ("teleop", "so100_leader") if arm == "leader" else ("robot", "so100_follower")
    return (f"so100 calibrate {arm} --port {port} --id {calibration_id} (or: lerobot-calibrate "
            f"--{kind}.type={device} --{kind}.port={port} --{kind}.id={calibration_id})")


def candidate_paths(role: str, calibration_id: str, root: Path | None = None) -> list[Path]:
    """Every path LeRobot may have written ``role``'s (``follower``/``leader``) calibration to, in search order."""
    if role not in ROLES:
        raise CalibrationError(f"role must be 'follower' or 'leader', got {role!r}")
    folder, types = ROLES[role]
    root = calibration_root() if root is None else Path(root)
    return [root / folder / t / f"{calibration_id}.json" for t in types]


def find_calibration(role: str, calibration_id: str, *, root: Path | None = None, port: str = "PORT") -> Path:
    """The calibration file of arm ``calibration_id``; raises :class:`CalibrationError` naming the fix."""
    if not calibration_id:
        raise CalibrationError(f"no calibration id given: set the node's 'id' parameter to the id used with "
                               f"`{fix_command(role, 'ID', port)}`")
    paths = candidate_paths(role, calibration_id, root)
    for path in paths:
        if path.is_file():
            return path
    raise CalibrationError(
        f"no LeRobot calibration for {role} {calibration_id!r}: looked for {paths[0]}"
        + "".join(f" and {p}" for p in paths[1:])
        + f". Calibrate the arm first: `{fix_command(role, calibration_id, port)}` "
        "(or set HF_LEROBOT_CALIBRATION to the folder that holds your calibration)"
    )


def load_calibration(path: Path, *, role: str = "follower", port: str = "PORT") -> dict[str, MotorCalibration]:
    """Read a LeRobot calibration file into ``MotorCalibration`` objects, checking every SO-100 motor is there."""
    from lerobot.motors import MotorCalibration

    path = Path(path)
    fix = fix_command(role, path.stem, port)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError as e:
        raise CalibrationError(f"calibration file {path} does not exist; run `{fix}`") from e
    except (OSError, ValueError) as e:
        raise CalibrationError(f"cannot read calibration file {path}: {e}; run `{fix}` to write it again") from e
    if not isinstance(data, dict):
        raise CalibrationError(f"{path} is not a LeRobot calibration (expected an object of motors); run `{fix}`")
    missing = [m for m in JOINT_NAMES if m not in data]
    if missing:
        raise CalibrationError(f"calibration file {path} has no entry for motor(s) {missing}; run `{fix}`")
    out: dict[str, MotorCalibration] = {}
    for motor in JOINT_NAMES:
        entry = data[motor]
        try:
            cal = MotorCalibration(id=int(entry["id"]), drive_mode=int(entry["drive_mode"]),
                                   homing_offset=int(entry["homing_offset"]), range_min=int(entry["range_min"]),
                                   range_max=int(entry["range_max"]))
        except (KeyError, TypeError, ValueError) as e:
            raise CalibrationError(f"calibration file {path}: motor {motor!r} entry {entry!r} is incomplete "
                                   f"({e!r}); run `{fix}`") from e
        if cal.range_max <= cal.range_min:
            raise CalibrationError(f"calibration file {path}: motor {motor!r} has range_min {cal.range_min} >= "
                                   f"range_max {cal.range_max}; run `{fix}`")
        out[motor] = cal
    return out


def save_calibration(path: Path, calibration: Mapping[str, MotorCalibration]) -> None:
    """Write a calibration in LeRobot's format (what ``Robot._save_calibration`` writes)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({m: vars(c) for m, c in calibration.items()}, indent=4))


@dataclass(frozen=True)
class ArmCalibration:
    """One arm's calibration as the linear maps ``rad = scale * (ticks - offset)``, per joint in contract order."""

    motors: Mapping[str, MotorCalibration]
    resolution: int = 4096  # encoder ticks per turn (sts3215 and sts3250)
    source: str = ""  # the file it came from, for messages

    @classmethod
    def load(cls, role: str, calibration_id: str, *, root: Path | None = None, port: str = "PORT",
             resolution: int = 4096) -> ArmCalibration:
        path = find_calibration(role, calibration_id, root=root, port=port)
        return cls(load_calibration(path, role=role, port=port), resolution, str(path))

    def __post_init__(self) -> None:
        scale, offset = [], []
        for name in JOINT_NAMES:
            cal = self.motors[name]
            lo, hi = cal.range_min, cal.range_max
            if name == GRIPPER:
                s = (JAW_UPPER - JAW_LOWER) / (hi - lo)
                if cal.drive_mode:  # LeRobot reports 100 - % for an inverted gripper
                    scale.append(-s)
                    offset.append(hi + JAW_LOWER / s)
                else:
                    scale.append(s)
                    offset.append(lo - JAW_LOWER / s)
            else:
                scale.append(2 * math.pi / (self.resolution - 1))
                offset.append((lo + hi) / 2)
        object.__setattr__(self, "_scale", np.asarray(scale))
        object.__setattr__(self, "_offset", np.asarray(offset))

    @property
    def ids(self) -> list[int]:
        return [self.motors[n].id for n in JOINT_NAMES]

    def to_radians(self, ticks: Sequence[float] | np.ndarray) -> np.ndarray:
        """Present_Position ticks (contract order) -> radians."""
        return self._scale * (np.asarray(ticks, dtype=float) - self._offset)  # type: ignore[attr-defined]

    def to_ticks(self, radians: Sequence[float] | np.ndarray) -> np.ndarray:
        """Radians -> the nearest Goal_Position ticks (int64)."""
        rad = np.asarray(radians, dtype=float)
        return np.rint(rad / self._scale + self._offset).astype(np.int64)  # type: ignore[attr-defined]

    def velocity_to_radians(self, ticks_per_s: Sequence[float] | np.ndarray) -> np.ndarray:
        """Present_Velocity (ticks/s) -> rad/s."""
        return self._scale * np.asarray(ticks_per_s, dtype=float)  # type: ignore[attr-defined]

    def limits(self) -> tuple[np.ndarray, np.ndarray]:
        """The calibrated range in radians: (lower, upper), contract order."""
        a = self.to_radians([self.motors[n].range_min for n in JOINT_NAMES])
        b = self.to_radians([self.motors[n].range_max for n in JOINT_NAMES])
        return np.minimum(a, b), np.maximum(a, b)


# ---------------------------------------------------------------- LeRobot's normalized units
def lerobot_to_radians(values: Sequence[float] | np.ndarray) -> np.ndarray:
    """LeRobot normalized values (degrees for joints 1-5, 0..100 % for the gripper) -> radians.

    Needs no calibration: it is what converts a LeRobot dataset's ``observation.state`` / ``action``.
    """
    v = np.asarray(values, dtype=float)
    out = np.deg2rad(v)
    out[..., 5] = JAW_LOWER + v[..., 5] / 100.0 * (JAW_UPPER - JAW_LOWER)
    return out


def radians_to_lerobot(values: Sequence[float] | np.ndarray) -> np.ndarray:
    """Radians -> LeRobot normalized values (degrees for joints 1-5, 0..100 % for the gripper)."""
    r = np.asarray(values, dtype=float)
    out = np.rad2deg(r)
    out[..., 5] = (r[..., 5] - JAW_LOWER) / (JAW_UPPER - JAW_LOWER) * 100.0
    return out
