"""The scripted expert: a pick-and-place plan for one episode, as a joint trajectory.

From the episode's scene (brick pose, bowl position) it plans tool-frame waypoints —
above the brick with the jaws square to its faces, down, close, lift, over the bowl,
down, open, up — solves each with the IK, and joins them with minimum-jerk
segments in joint space, so the motion is smooth and paced like a person's.
:meth:`ExpertPlan.at` gives the joint targets at any time since the episode start:
``scripted_expert`` publishes them at 100 Hz; the env and data generation call it in-process.

Dependency rule: no ROS runtime.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from so100_sim.errors import SimError
from so100_sim.kinematics import Kinematics, quat_from_matrix
from so100_sim.task import EpisodeScene, TaskConfig

JAW_OPEN = 0.9  # rad: wide enough to pass around the 31.8 mm brick at any small misalignment
JAW_CLOSED = 0.15  # rad: below the 0.37 rad contact angle, so the grip squeezes


@dataclass(frozen=True)
class ExpertConfig:
    """Heights (m, of the tool frame above the table) and durations (s) of the motion."""

    approach_height: float = 0.08
    grasp_height: float = 0.017
    carry_height: float = 0.09
    release_height: float = 0.075
    t_reach: float = 1.6
    t_descend: float = 0.9
    t_close: float = 0.5
    t_lift: float = 0.8
    t_transfer: float = 1.4
    t_lower: float = 0.6
    t_open: float = 0.4
    t_retreat: float = 0.6
    #: peak speed (rad/s) of any arm joint: a longer move gets a longer segment, so a follower whose
    #: motion is limited (servo speed, the command guard's max_step) can track every demonstration
    max_joint_speed: float = 2.5


def top_down_quat(yaw: float) -> np.ndarray:
    """Tool orientation pointing down (approach = tool -y = world -z), jaws closing along ``yaw``."""
    z = np.array([math.cos(yaw), math.sin(yaw), 0.0])  # the jaws close along the tool's z
    y = np.array([0.0, 0.0, 1.0])
    x = np.cross(y, z)
    return quat_from_matrix(np.column_stack([x, y, z]))


def min_jerk(s: float) -> float:
    """Minimum-jerk profile 0→1 for s in [0, 1] (zero velocity and acceleration at both ends)."""
    s = min(max(s, 0.0), 1.0)
    return s**3 * (10 - 15 * s + 6 * s**2)


@dataclass
class Segment:
    t0: float
    t1: float
    q0: np.ndarray
    q1: np.ndarray


class ExpertPlan:
    """A planned episode: joint targets as a function of time."""

    def __init__(self, segments: list[Segment], converged: bool, worst_error: float,
                 worst_rot_error: float = 0.0) -> None:
        self.segments = segments
        self.converged = converged
        self.worst_error = worst_error  # m: the largest distance between a waypoint and the pose its joints reach
        self.worst_rot_error = worst_rot_error  # rad: the same for the tool's orientation

    @property
    def duration(self) -> float:
        return self.segments[-1].t1

    def at(self, t: float) -> np.ndarray:
        for seg in self.segments:
            if t <= seg.t1:
                s = min_jerk((t - seg.t0) / max(seg.t1 - seg.t0, 1e-9))
                return seg.q0 + s * (seg.q1 - seg.q0)
        return self.segments[-1].q1.copy()


class ScriptedExpert:
    """Plans pick-and-place trajectories with the arm's IK."""

    def __init__(self, config: ExpertConfig | None = None, task: TaskConfig | None = None,
                 kinematics: Kinematics | None = None) -> None:
        self.config = config or ExpertConfig()
        self.task = task or TaskConfig()
        self.kin = kinematics or Kinematics()

    def _solve(self, pos: np.ndarray, quat: np.ndarray, q_seed: np.ndarray) -> tuple[np.ndarray, float, float, bool]:
        """Joints for a tool pose: q, the position (m) and orientation (rad) errors of the closest solution found,
        and whether the IK met its tolerances."""
        res = self.kin.ik(pos, quat, q_seed)
        return res.q, res.pos_error, res.rot_error, res.converged

    def _grasp_yaw(self, brick_yaw: float, pos: np.ndarray, q_seed: np.ndarray, gripper: float) -> float:
        """The brick's four face directions are equivalent: take the one reached with the least motion.

        The largest single-joint move weighs most (a wrist roll sweep is what a follower cannot
        track), then the total; a pose the IK does not reach is a last resort.
        """
        best, best_cost = brick_yaw, math.inf
        for k in range(4):
            yaw = brick_yaw + k * math.pi / 2
            res = self.kin.ik(pos, top_down_quat(yaw), np.append(q_seed[:5], gripper))
            move = np.abs(res.q[:5] - q_seed[:5])
            cost = (0 if res.converged else 100) + 2 * float(move.max()) + float(move.sum())
            if cost < best_cost:
                best, best_cost = yaw, cost
        return best

    def plan(self, scene: EpisodeScene, q_start: np.ndarray) -> ExpertPlan:
        c = self.config
        q_start = np.asarray(q_start, dtype=float)
        brick = np.asarray(scene.brick_pos, dtype=float)
        bowl = np.asarray(scene.bowl_pos, dtype=float)
        above_brick = np.array([brick[0], brick[1], c.approach_height])
        yaw = self._grasp_yaw(scene.brick_yaw, above_brick, q_start, JAW_OPEN)
        down = top_down_quat(yaw)
        # over the bowl keep the grasp's yaw turned toward the bowl as little as needed
        bowl_quat = top_down_quat(yaw)

        waypoints: list[tuple[np.ndarray | None, np.ndarray | None, float, float]] = [
            (above_brick, down, JAW_OPEN, c.t_reach),
            (np.array([brick[0], brick[1], c.grasp_height]), down, JAW_OPEN, c.t_descend),
            (None, None, JAW_CLOSED, c.t_close),
            (np.array([brick[0], brick[1], c.carry_height]), down, JAW_CLOSED, c.t_lift),
            (np.array([bowl[0], bowl[1], c.carry_height]), bowl_quat, JAW_CLOSED, c.t_transfer),
            (np.array([bowl[0], bowl[1], c.release_height]), bowl_quat, JAW_CLOSED, c.t_lower),
            (None, None, JAW_OPEN, c.t_open),
            (np.array([bowl[0], bowl[1], c.carry_height]), bowl_quat, JAW_OPEN, c.t_retreat),
        ]
        segments: list[Segment] = []
        q_prev, t, worst, worst_rot, all_converged = q_start.copy(), 0.0, 0.0, 0.0, True
        for pos, quat, jaw, duration in waypoints:
            if pos is None:
                q_next = q_prev.copy()
            else:
                q_next, err, rot_err, converged = self._solve(pos, quat, q_prev)
                worst, worst_rot, all_converged = max(worst, err), max(worst_rot, rot_err), all_converged and converged
            q_next = q_next.copy()
            q_next[5] = jaw
            # min-jerk peaks at 1.875 x the mean speed: stretch the segment to keep every arm joint below the cap
            duration = max(duration, 1.875 * float(np.abs(q_next[:5] - q_prev[:5]).max()) / c.max_joint_speed)
            segments.append(Segment(t, t + duration, q_prev, q_next))
            q_prev, t = q_next, t + duration
        if not segments:
            raise SimError("empty plan")
        return ExpertPlan(segments, all_converged and worst < 0.002, worst, worst_rot)
