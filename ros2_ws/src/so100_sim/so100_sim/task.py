"""The pick-and-place task: per-episode randomization from a seed, and success.

An episode is fully described by its :class:`EpisodeScene` (seed and initial poses),
which is what ``/episode/scene`` carries as JSON, so every episode can be replayed.
Success: the brick at rest inside the bowl, below its rim, not touched by the
gripper, for ``hold_steps`` consecutive control steps.

Dependency rule: no ROS runtime, no mujoco; numpy only.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from so100_sim.errors import SimError

TASK_DESCRIPTION = "Pick up the Duplo brick and place it in the bowl."


@dataclass(frozen=True)
class TaskConfig:
    """Layout (metres, in the robot base frame on the table top) and randomization ranges."""

    brick_xy: tuple[float, float] = (0.0, -0.22)  # nominal brick position
    brick_xy_range: float = 0.04  # uniform ± per axis
    brick_yaw_range: float = math.pi  # uniform ± around z
    bowl_xy: tuple[float, float] = (0.16, -0.20)
    bowl_inner_radius: float = 0.055
    bowl_rim_height: float = 0.04
    brick_size: tuple[float, float, float] = (0.0318, 0.0318, 0.0192)  # Duplo 2x2 body
    fps: float = 30.0
    episode_steps: int = 300
    hold_steps: int = 5  # consecutive steps of success before it counts
    rest_linear_speed: float = 0.02  # m/s
    rest_angular_speed: float = 0.5  # rad/s

    def __post_init__(self) -> None:
        if self.brick_xy_range < 0 or self.brick_yaw_range < 0:
            raise SimError("randomization ranges must be >= 0")
        if self.episode_steps < 1 or self.hold_steps < 1 or self.fps <= 0:
            raise SimError("episode_steps, hold_steps and fps must be positive")
        gap = math.dist(self.brick_xy, self.bowl_xy)
        if gap < self.bowl_inner_radius + self.brick_xy_range * math.sqrt(2) + 0.03:
            raise SimError(f"the brick range overlaps the bowl ({gap:.3f} m apart)")


@dataclass
class EpisodeScene:
    """Seed and initial poses of one episode; positions in metres, quaternions [w, x, y, z]."""

    seed: int
    brick_pos: list[float]
    brick_quat: list[float]
    brick_yaw: float
    bowl_pos: list[float]
    task: str = TASK_DESCRIPTION
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> EpisodeScene:
        try:
            return cls(**json.loads(text))
        except (TypeError, ValueError) as e:
            raise SimError(f"not an episode scene: {e}") from e


def yaw_quat(yaw: float) -> list[float]:
    return [math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2)]


def sample_scene(seed: int, config: TaskConfig | None = None) -> EpisodeScene:
    """The randomized initial scene of episode ``seed`` (same seed, same scene)."""
    config = config or TaskConfig()
    rng = np.random.default_rng(seed)
    dx, dy = rng.uniform(-config.brick_xy_range, config.brick_xy_range, size=2)
    yaw = float(rng.uniform(-config.brick_yaw_range, config.brick_yaw_range))
    z = config.brick_size[2] / 2 + 0.0005
    return EpisodeScene(
        seed=int(seed),
        brick_pos=[config.brick_xy[0] + float(dx), config.brick_xy[1] + float(dy), z],
        brick_quat=yaw_quat(yaw),
        brick_yaw=yaw,
        bowl_pos=[config.bowl_xy[0], config.bowl_xy[1], 0.0],
    )


class SuccessDetector:
    """Counts consecutive steps on which the brick rests released inside the bowl."""

    def __init__(self, config: TaskConfig | None = None) -> None:
        self.config = config or TaskConfig()
        self.streak = 0

    def in_bowl(self, brick_pos: np.ndarray, bowl_pos: np.ndarray) -> bool:
        c = self.config
        horizontal = math.hypot(brick_pos[0] - bowl_pos[0], brick_pos[1] - bowl_pos[1])
        return horizontal < c.bowl_inner_radius and brick_pos[2] - bowl_pos[2] < c.bowl_rim_height

    def update(self, brick_pos: Any, brick_linvel: Any, brick_angvel: Any, bowl_pos: Any, touched: bool) -> bool:
        """Feed one control step; true once the condition held ``hold_steps`` steps in a row."""
        c = self.config
        ok = (
            self.in_bowl(np.asarray(brick_pos), np.asarray(bowl_pos))
            and float(np.linalg.norm(brick_linvel)) < c.rest_linear_speed
            and float(np.linalg.norm(brick_angvel)) < c.rest_angular_speed
            and not touched
        )
        self.streak = self.streak + 1 if ok else 0
        return self.streak >= c.hold_steps

    def reset(self) -> None:
        self.streak = 0
