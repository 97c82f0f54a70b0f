"""Controller motion -> joint targets: clutch, workspace and speed limits, IK, follower trim.

While the grip is held the controller's motion relative to where it was grabbed moves the
end-effector target (its rotation turns the target's orientation); on release the target stops
where the arm is (release-to-stop). Each tick the target is clamped to a workspace box in the base
frame, moved toward the controller at no more than ``max_speed``, and turned into joint targets by
:class:`so100_sim.kinematics.Kinematics` — a few warm-started damped-least-squares iterations on
the full pose (the 5-joint arm reaches only some orientations), then on the position alone, so
the position is met and the orientation is the closest reachable. Joint targets are clipped to
the joint limits and move at no more than ``max_joint_speed``. The trigger sets the jaw.

Follower trim: a position-controlled arm sags under gravity (the sim's servos by ~7 mm at the
tool). With ``trim_gain`` > 0 the published targets add a slow integral of (target - follower
position) over the five arm joints, bounded by ``trim_limit``, so the tool, not the command,
reaches the target. It only integrates while the follower's state is fresh.

Poses here are in the arm's base frame, quaternions MuJoCo-style ``[w, x, y, z]``.

Dependency rule: numpy and so100_sim's kinematics/transforms only; never the ROS runtime.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from so100_sim.kinematics import Kinematics
from so100_sim.transforms import quat_conj, quat_mul
from teleop_vr.errors import ConfigError

log = logging.getLogger(__name__)

Vec3 = tuple[float, float, float]


@dataclass(frozen=True)
class ClutchConfig:
    # the tool may go here (base frame, m): above the table, in front of and beside the base
    workspace_min: Vec3 = (-0.35, -0.45, 0.005)
    workspace_max: Vec3 = (0.35, 0.15, 0.45)
    max_speed: float = 0.6  # m/s of the tool target: a fast but followable hand motion
    max_joint_speed: float = 4.0  # rad/s of any published joint target (the STS3215 does ~5.7 unloaded)
    scale: float = 1.0  # tool motion per controller motion
    follow_orientation: bool = True  # False: position only, the wrist keeps its angles
    gripper_open: float = 0.9  # rad at trigger 0 (the scripted expert's open jaw)
    gripper_closed: float = 0.0  # rad at trigger 1 (below the brick's contact angle, so it squeezes)
    grip_threshold: float = 0.5  # grip value that engages the clutch
    ik_iterations: int = 12  # per tick and pass; warm-started, so small steps track the target
    trim_gain: float = 2.0  # 1/s of the follower trim integral; 0 disables it
    trim_limit: float = 0.08  # rad, largest trim per joint
    trim_max_age: float = 0.2  # s; an older follower state pauses the trim

    def __post_init__(self) -> None:
        lo, hi = np.asarray(self.workspace_min, float), np.asarray(self.workspace_max, float)
        if lo.shape != (3,) or hi.shape != (3,) or not np.all(lo < hi):
            raise ConfigError(
                f"workspace_min {self.workspace_min} must be below workspace_max {self.workspace_max} "
                "on every axis (x, y, z in metres, base frame)"
            )
        for name in ("max_speed", "max_joint_speed", "scale"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name}={getattr(self, name)} must be > 0")
        if not 0 < self.grip_threshold < 1:
            raise ConfigError(f"grip_threshold={self.grip_threshold} must be in (0, 1)")
        if self.ik_iterations < 1 or self.trim_gain < 0 or self.trim_limit < 0 or self.trim_max_age <= 0:
            raise ConfigError("ik_iterations >= 1, trim_gain >= 0, trim_limit >= 0 and trim_max_age > 0 please")


@dataclass(frozen=True)
class ControllerSample:
    """One controller reading in the base frame."""

    position: np.ndarray  # m
    quat: np.ndarray  # [w, x, y, z]
    grip: float
    trigger: float


class Clutch:
    """Turns controller samples into joint targets; call :meth:`sync` once with the follower's joints."""

    def __init__(self, config: ClutchConfig, kinematics: Kinematics | None = None) -> None:
        self.config = config
        self.kin = kinematics or Kinematics()
        self.lower, self.upper = self.kin.lower.copy(), self.kin.upper.copy()
        self._ws_lo = np.asarray(config.workspace_min, float)
        self._ws_hi = np.asarray(config.workspace_max, float)
        self.q_out: np.ndarray | None = None  # joint targets before trim (6)
        self.q_goal = np.zeros(6)  # where q_out is heading
        self.trim = np.zeros(5)
        self.engaged = False
        self.target_pos = np.zeros(3)  # tool target (after workspace and speed limits)
        self.target_quat = np.array([1.0, 0, 0, 0])
        self._grab: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None
        self._solved_for: tuple[bytes, bytes] | None = None
        self.clamped = 0  # ticks whose target left the workspace
        self.ik_misses = 0  # ticks whose position was not reached (out of reach)

    @property
    def synced(self) -> bool:
        return self.q_out is not None

    def sync(self, q: np.ndarray) -> None:
        """Start from the follower's joints (holds them until the clutch engages)."""
        q = np.clip(np.asarray(q, float), self.lower, self.upper)
        self.q_out, self.q_goal = q.copy(), q.copy()
        self.target_pos, self.target_quat = self.kin.fk(q)
        self.engaged, self._grab, self.trim = False, None, np.zeros(5)

    def release(self) -> None:
        """Release-to-stop: the arm stops where its targets are now and holds."""
        if self.q_out is None:
            return
        self.engaged, self._grab = False, None
        self.q_goal[:5] = self.q_out[:5]
        self.target_pos, self.target_quat = self.kin.fk(self.q_out)

    def step(
        self,
        sample: ControllerSample | None,
        dt: float,
        follower: np.ndarray | None = None,
        follower_age: float = np.inf,
    ) -> np.ndarray | None:
        """One tick: the joint targets to publish (with trim), or None before :meth:`sync`."""
        if self.q_out is None:
            return None
        c = self.config
        dt = float(np.clip(dt, 0.0, 0.1))
        if sample is not None and sample.grip >= c.grip_threshold:
            if not self.engaged:
                self.engaged = True
                self._grab = (
                    sample.position.copy(),
                    sample.quat.copy(),
                    self.target_pos.copy(),
                    self.target_quat.copy(),
                )
            self._follow(sample, dt)
        elif self.engaged:
            self.release()
        if sample is not None:
            t = float(np.clip(sample.trigger, 0.0, 1.0))
            self.q_goal[5] = c.gripper_open + t * (c.gripper_closed - c.gripper_open)
        step = c.max_joint_speed * dt
        self.q_out = np.clip(self.q_out + np.clip(self.q_goal - self.q_out, -step, step), self.lower, self.upper)
        if c.trim_gain > 0 and follower is not None and follower_age <= c.trim_max_age:
            err = self.q_out[:5] - np.asarray(follower, float)[:5]
            self.trim = np.clip(self.trim + c.trim_gain * dt * err, -c.trim_limit, c.trim_limit)
        out = self.q_out.copy()
        out[:5] += self.trim
        return np.clip(out, self.lower, self.upper)

    def _follow(self, sample: ControllerSample, dt: float) -> None:
        c = self.config
        assert self._grab is not None
        p0, q0, ee_p0, ee_q0 = self._grab
        desired = ee_p0 + c.scale * (sample.position - p0)
        bounded = np.clip(desired, self._ws_lo, self._ws_hi)
        if not np.allclose(bounded, desired):
            self.clamped += 1
            log.debug("tool target %s clamped to the workspace: %s", desired.round(3), bounded.round(3))
        move = bounded - self.target_pos
        dist = float(np.linalg.norm(move))
        limit = c.max_speed * dt
        self.target_pos = self.target_pos + (move * (limit / dist) if dist > limit else move)
        if c.follow_orientation:
            self.target_quat = quat_mul(quat_mul(sample.quat, quat_conj(q0)), ee_q0)  # world-frame delta
        key = (self.target_pos.tobytes(), self.target_quat.tobytes())
        if key == self._solved_for:
            return
        seed = self.q_goal.copy()
        if c.follow_orientation:
            seed = self.kin.ik(
                self.target_pos, self.target_quat, seed, max_iters=c.ik_iterations, restarts=0, rot_weight=0.05
            ).q
        result = self.kin.ik(self.target_pos, None, seed, max_iters=c.ik_iterations, restarts=0, tol_pos=2e-4)
        if result.converged:
            self._solved_for = key  # otherwise keep iterating on the next ticks
        else:
            self.ik_misses += 1
        self.q_goal[:5] = result.q[:5]
