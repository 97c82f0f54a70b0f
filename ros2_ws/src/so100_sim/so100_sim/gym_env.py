"""Gymnasium env of the pick-and-place task (``gym_so100/PickPlace-v0``), wrapping :class:`World`.

One env step is one control step at the task's fps (30 Hz by default), so an episode
of the env lines up frame for frame with an episode recorded from ``sim_bridge``.

- **Observation**: ``{"pixels": {camera: uint8 HxWx3}, "agent_pos": float32 (6,)}``; the
  cameras are the scene's (``overhead``, ``wrist``), the state is the measured joint
  positions in radians in the contract's joint order (DESIGN.md §3). The layout is the
  one LeRobot's ``preprocess_observation`` understands (``pixels/<camera>`` becomes
  ``observation.images.<camera>``, ``agent_pos`` becomes ``observation.state``).
- **Action**: six joint position targets in radians, clipped to the joint limits. An
  action holding NaN or inf is rejected whole, as the followers reject such a command
  (DESIGN.md §6): the arm keeps its previous targets for that step and the step's info
  says ``invalid_action=True``. A wrong shape is a programming error and raises.
- **Reward**: sparse, 1.0 on the step the task succeeds, else 0.0. ``terminated`` on
  success; ``truncated`` after ``episode_steps`` steps.
- **Info**: ``is_success`` (what ``lerobot-eval`` reads), ``invalid_action``, ``scene``
  (the episode's :class:`EpisodeScene` as JSON, to replay it with ``World.reset``).
- **Seeding**: ``reset(seed=k)`` builds the scene of episode seed ``k``, the same scene
  ``World.reset(k)`` and ``sim_bridge`` build; ``reset()`` without a seed draws the
  episode seed from the env's generator, so a seeded sequence of resets is reproducible.

Dependency rule: no ROS runtime imports; gymnasium, numpy and so100_sim's world only.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import mujoco
import numpy as np
from gymnasium import spaces

from so100_common.names import CAMERA_NAMES
from so100_sim.errors import SimError
from so100_sim.render import RenderSettings
from so100_sim.scene import OVERHEAD_CAMERA
from so100_sim.task import TASK_DESCRIPTION, EpisodeScene, TaskConfig
from so100_sim.world import World

log = logging.getLogger(__name__)

# The contract's camera resolution (sim_bridge's default, so datasets recorded from it):
# a policy sees at evaluation the size it was trained on. Train on a CPU at 240x320 and
# pass the same size here (DESIGN.md §7).
DEFAULT_HEIGHT = 480
DEFAULT_WIDTH = 640
STATE_MARGIN = 0.1  # rad beyond a joint limit the observation space still allows


class So100PickPlaceEnv(gym.Env):
    """The SO-100 pick-and-place task as a gymnasium env (see the module docstring)."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 30}

    def __init__(
        self,
        render_mode: str | None = None,
        *,
        cameras: Sequence[str] = CAMERA_NAMES,
        height: int = DEFAULT_HEIGHT,
        width: int = DEFAULT_WIDTH,
        episode_steps: int | None = None,
        fps: float | None = None,
        brick_xy_range: float | None = None,
        brick_yaw_range: float | None = None,
        task_config: TaskConfig | None = None,
    ) -> None:
        """Build the world; nothing is rendered until the first reset.

        Args:
            render_mode: ``"rgb_array"`` (``render()`` returns the overhead frame) or None.
            cameras: the scene cameras to observe, in order.
            height, width: image size (px) of every camera.
            episode_steps, fps, brick_xy_range, brick_yaw_range: override these fields of
                ``task_config`` (kept as plain arguments so ``gym.make`` and LeRobot's
                ``gym_kwargs`` can set them).
            task_config: the task's layout and randomization; the default task if None.
        """
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise SimError(f"render_mode {render_mode!r} is not supported; use one of {self.metadata['render_modes']}")
        overrides = {
            "episode_steps": episode_steps,
            "fps": fps,
            "brick_xy_range": brick_xy_range,
            "brick_yaw_range": brick_yaw_range,
        }
        task = dataclasses.replace(task_config or TaskConfig(), **{k: v for k, v in overrides.items() if v is not None})
        cameras = tuple(cameras)
        if not cameras or len(set(cameras)) != len(cameras):
            raise SimError(f"cameras must name at least one camera, each once; got {cameras}")
        self.render_mode = render_mode
        self.cameras = cameras
        self.world = World(task, render=RenderSettings(width=width, height=height))
        known = [
            mujoco.mj_id2name(self.world.model, mujoco.mjtObj.mjOBJ_CAMERA, i) for i in range(self.world.model.ncam)
        ]
        unknown = [c for c in cameras if c not in known]
        if unknown:
            self.world.close()
            raise SimError(f"the scene has no camera named {unknown}; it has {known}")

        # An int when it is one: video writers (PyAV, LeRobotDataset) take integer frame rates.
        render_fps = int(task.fps) if float(task.fps).is_integer() else task.fps
        self.metadata = {**type(self).metadata, "render_fps": render_fps}
        # Read by LeRobot's rollout (language-conditioned policies get the instruction;
        # it tries `task_description` first, then `task`, so both carry it).
        self.task_description = TASK_DESCRIPTION
        self.task = TASK_DESCRIPTION
        # gym.make's TimeLimit wrapper answers this with its own limit; kept here so an env
        # built directly (e.g. in a SyncVectorEnv of constructors) answers it too.
        self._max_episode_steps = task.episode_steps

        lower = self.world.lower.astype(np.float32)
        upper = self.world.upper.astype(np.float32)
        self.action_space = spaces.Box(low=lower, high=upper, dtype=np.float32)
        # Measured positions: MuJoCo's joint limits are soft, so the state is bounded by ±pi
        # (every range lies inside it with >= 0.35 rad to spare), widened if a range does not.
        state_low = np.minimum(-np.pi, lower - STATE_MARGIN).astype(np.float32)
        state_high = np.maximum(np.pi, upper + STATE_MARGIN).astype(np.float32)
        self.observation_space = spaces.Dict(
            {
                "pixels": spaces.Dict(
                    {c: spaces.Box(low=0, high=255, shape=(height, width, 3), dtype=np.uint8) for c in cameras}
                ),
                "agent_pos": spaces.Box(low=state_low, high=state_high, dtype=np.float32),
            }
        )
        self.scene: EpisodeScene | None = None
        self._scene_json = ""
        self._frames: dict[str, np.ndarray] = {}
        self._invalid_burst = False

    @property
    def task_config(self) -> TaskConfig:
        return self.world.task

    # ------------------------------------------------------------ gymnasium API
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[dict, dict]:
        super().reset(seed=seed)
        episode_seed = seed if seed is not None else int(self.np_random.integers(0, 2**31 - 1))
        self.scene = self.world.reset(int(episode_seed))
        self._scene_json = self.scene.to_json()
        self._invalid_burst = False
        return self._observation(), {"is_success": False, "invalid_action": False, "scene": self._scene_json}

    def step(self, action: Any) -> tuple[dict, float, bool, bool, dict]:
        if self.scene is None:
            raise SimError("step() before reset(): call env.reset(seed=...) first")
        target = np.asarray(action, dtype=np.float64)
        if target.shape != (6,):
            raise SimError(
                f"an action is 6 joint targets (rad) in the order shoulder_pan..gripper; got shape {target.shape}"
            )
        invalid = not bool(np.all(np.isfinite(target)))
        if invalid:
            if not self._invalid_burst:
                log.warning("non-finite action %s rejected: holding the previous targets", target)
            self._invalid_burst = True
        else:
            self._invalid_burst = False
            self.world.set_targets(target)  # clips to the joint limits
        state = self.world.control_step()
        terminated = state.success
        truncated = state.truncated and not terminated
        info = {"is_success": state.success, "invalid_action": invalid, "scene": self._scene_json}
        return self._observation(), 1.0 if state.success else 0.0, terminated, truncated, info

    def render(self) -> np.ndarray | None:
        """The overhead camera's current frame (``rgb_array``), or None without a render mode."""
        if self.render_mode is None:
            gym.logger.warn("render() called without a render_mode; make the env with render_mode='rgb_array'")
            return None
        if OVERHEAD_CAMERA in self._frames:
            return self._frames[OVERHEAD_CAMERA].copy()  # the observation's frame: same state, no second render
        return self.world.render(OVERHEAD_CAMERA)[0]

    def close(self) -> None:
        self.world.close()
        self._frames = {}

    # ------------------------------------------------------------ internals
    def _observation(self) -> dict[str, Any]:
        self._frames = {c: self.world.render(c)[0] for c in self.cameras}
        return {
            "pixels": {c: f.copy() for c, f in self._frames.items()},
            "agent_pos": self.world.joint_positions().astype(np.float32),
        }
