"""The simulated pick-and-place world: physics, actuation, torque, cameras and task state.

Everything ``sim_bridge``, the gymnasium env and the in-process scripted expert need,
with no ROS runtime: joint positions in radians in the contract's order, targets
applied through the position actuators, torque off = actuators produce no force.

Dependency rule: no ROS runtime imports.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import mujoco
import numpy as np

from so100_common.names import JOINT_NAMES
from so100_sim.errors import SimError
from so100_sim.render import CameraRenderer, RenderSettings, depth_to_d435_mm
from so100_sim.scene import BOWL_BODY, BRICK_BODY, BRICK_JOINT, D435_DEPTH_RANGE_M, scene_xml
from so100_sim.task import EpisodeScene, SuccessDetector, TaskConfig, sample_scene

log = logging.getLogger(__name__)

GRIPPER_BODIES = ("gripper_link", "moving_jaw_link")


@dataclass
class StepInfo:
    """Task state after a control step."""

    success: bool
    step: int
    truncated: bool


class World:
    """One MuJoCo world; not thread-safe (drive it from one thread)."""

    def __init__(
        self,
        task: TaskConfig | None = None,
        *,
        timestep: float = 0.002,
        render: RenderSettings | None = None,
    ) -> None:
        self.task = task or TaskConfig()
        self.model = mujoco.MjModel.from_xml_string(scene_xml(self.task, timestep=timestep))
        self.data = mujoco.MjData(self.model)
        m = self.model
        self.joint_ids = [self._id(mujoco.mjtObj.mjOBJ_JOINT, n) for n in JOINT_NAMES]
        self.qpos_adr = np.array([m.jnt_qposadr[j] for j in self.joint_ids])
        self.dof_adr = np.array([m.jnt_dofadr[j] for j in self.joint_ids])
        self.actuator_ids = np.array([self._id(mujoco.mjtObj.mjOBJ_ACTUATOR, n) for n in JOINT_NAMES])
        self.lower = m.jnt_range[self.joint_ids, 0].copy()
        self.upper = m.jnt_range[self.joint_ids, 1].copy()
        self._gain = m.actuator_gainprm[self.actuator_ids].copy()
        self._bias = m.actuator_biasprm[self.actuator_ids].copy()
        self.torque_enabled = True
        self.brick_body = self._id(mujoco.mjtObj.mjOBJ_BODY, BRICK_BODY)
        self.bowl_body = self._id(mujoco.mjtObj.mjOBJ_BODY, BOWL_BODY)
        brick_joint = self._id(mujoco.mjtObj.mjOBJ_JOINT, BRICK_JOINT)
        self.brick_qpos = m.jnt_qposadr[brick_joint]
        self.brick_dof = m.jnt_dofadr[brick_joint]
        self._gripper_bodies = {self._id(mujoco.mjtObj.mjOBJ_BODY, b) for b in GRIPPER_BODIES}
        self.success = SuccessDetector(self.task)
        self.steps = 0
        self.scene: EpisodeScene | None = None
        self.render_settings = render
        self._renderer: CameraRenderer | None = None

    def _id(self, kind: Any, name: str) -> int:
        i = mujoco.mj_name2id(self.model, kind, name)
        if i < 0:
            raise SimError(f"the scene has no {kind.name.removeprefix('mjOBJ_').lower()} named {name!r}")
        return i

    # ------------------------------------------------------------ episodes
    def home_pose(self) -> np.ndarray:
        """The arm's start pose: the middle of every range (zero), gripper closed to 0.3 rad."""
        q = np.zeros(6)
        q[5] = 0.3
        return np.clip(q, self.lower, self.upper)

    #: physics run at reset with the arm commanded home, so an episode starts from the pose the arm settles
    #: in under gravity (~0.01 rad below home on shoulder_lift/elbow_flex), as a real arm after torque-on
    #: does, and as the graph's follower has by the time a source starts: demonstrations, in-process
    #: evaluation and the graph then all start alike
    SETTLE_S = 0.2

    def reset(self, seed: int) -> EpisodeScene:
        """A new episode: brick placed as ``seed`` says, arm commanded home and settled (:attr:`SETTLE_S`)."""
        scene = sample_scene(seed, self.task)
        mujoco.mj_resetData(self.model, self.data)
        q = self.home_pose()
        self.data.qpos[self.qpos_adr] = q
        self.data.ctrl[self.actuator_ids] = q
        self.data.qpos[self.brick_qpos : self.brick_qpos + 3] = scene.brick_pos
        self.data.qpos[self.brick_qpos + 3 : self.brick_qpos + 7] = scene.brick_quat
        self.model.body_pos[self.bowl_body] = scene.bowl_pos
        mujoco.mj_forward(self.model, self.data)
        self.step(self.SETTLE_S)
        self.success.reset()
        self.steps = 0
        self.scene = scene
        return scene

    # ------------------------------------------------------------ arm
    def joint_positions(self) -> np.ndarray:
        return self.data.qpos[self.qpos_adr].copy()

    def joint_velocities(self) -> np.ndarray:
        return self.data.qvel[self.dof_adr].copy()

    def joint_efforts(self) -> np.ndarray:
        """Actuator torques (N·m)."""
        return self.data.actuator_force[self.actuator_ids].copy()

    def set_targets(self, q: Any) -> None:
        """Position targets (rad), clipped to the joint limits."""
        target = np.asarray(q, dtype=float)
        if target.shape != (6,) or not np.all(np.isfinite(target)):
            raise SimError(f"targets must be 6 finite values, got {target}")
        self.data.ctrl[self.actuator_ids] = np.clip(target, self.lower, self.upper)

    def set_torque(self, enabled: bool) -> None:
        """Torque off: the actuators produce no force and the arm is passive."""
        m = self.model
        if enabled:
            m.actuator_gainprm[self.actuator_ids] = self._gain
            m.actuator_biasprm[self.actuator_ids] = self._bias
            self.data.ctrl[self.actuator_ids] = self.joint_positions()  # hold where it is now
        else:
            m.actuator_gainprm[self.actuator_ids] = 0.0
            m.actuator_biasprm[self.actuator_ids] = 0.0
        self.torque_enabled = enabled

    # ------------------------------------------------------------ stepping
    def step(self, dt: float) -> None:
        """Advance the physics by ``dt`` seconds (a whole number of timesteps)."""
        n = max(1, round(dt / self.model.opt.timestep))
        mujoco.mj_step(self.model, self.data, nstep=n)

    def control_step(self, dt: float | None = None) -> StepInfo:
        """One task step (1/fps by default): physics, then success bookkeeping."""
        self.step(dt if dt is not None else 1.0 / self.task.fps)
        ok = self.update_success()
        return StepInfo(ok, self.steps, self.steps >= self.task.episode_steps)

    def update_success(self) -> bool:
        """Count one task step and feed the success detector (call at the task's fps)."""
        self.steps += 1
        return self.success.update(
            self.brick_position(), self.data.qvel[self.brick_dof : self.brick_dof + 3],
            self.data.qvel[self.brick_dof + 3 : self.brick_dof + 6], self.bowl_position(), self.gripper_touches_brick(),
        )

    @property
    def time(self) -> float:
        return float(self.data.time)

    # ------------------------------------------------------------ objects
    def brick_position(self) -> np.ndarray:
        return self.data.xpos[self.brick_body].copy()

    def brick_quat(self) -> np.ndarray:
        return self.data.xquat[self.brick_body].copy()

    def bowl_position(self) -> np.ndarray:
        return self.data.xpos[self.bowl_body].copy()

    def gripper_touches_brick(self) -> bool:
        d, m = self.data, self.model
        for i in range(d.ncon):
            b1 = m.geom_bodyid[d.contact[i].geom1]
            b2 = m.geom_bodyid[d.contact[i].geom2]
            if (b1 == self.brick_body and b2 in self._gripper_bodies) or (
                b2 == self.brick_body and b1 in self._gripper_bodies
            ):
                return True
        return False

    def body_poses(self) -> list[tuple[str, np.ndarray, np.ndarray]]:
        """(name, position, quaternion wxyz) of every body in the world frame."""
        out = []
        for b in range(1, self.model.nbody):
            name = mujoco.mj_id2name(self.model, mujoco.mjtObj.mjOBJ_BODY, b)
            out.append((name, self.data.xpos[b].copy(), self.data.xquat[b].copy()))
        return out

    # ------------------------------------------------------------ cameras
    @property
    def renderer(self) -> CameraRenderer:
        if self._renderer is None:
            self._renderer = CameraRenderer(self.model, self.render_settings)
        return self._renderer

    def render(self, camera: str, *, depth: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
        """(rgb uint8, depth 16UC1 millimetres clipped to the D435's range, or None)."""
        rgb, depth_m = self.renderer.render(self.data, camera, depth=depth)
        if depth_m is None:
            return rgb, None
        lo, hi = D435_DEPTH_RANGE_M
        return rgb, depth_to_d435_mm(depth_m, min_m=lo, max_m=hi)

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
