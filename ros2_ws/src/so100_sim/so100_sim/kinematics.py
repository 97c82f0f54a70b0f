"""Forward and inverse kinematics of the SO-100's tool frame, computed by MuJoCo.

:class:`Kinematics` compiles the MJCF robot of :mod:`so100_sim.description` (or takes any
model that contains it, e.g. a scene) and keeps its own ``MjData``: it never reads or writes a
simulation's data, so a node may call it between physics steps. Joint vectors are in
``JOINT_NAMES`` order and radians; poses are in the model's world frame (the base link's frame
for the bare robot), positions in metres, quaternions ``[w, x, y, z]``.

The inverse kinematics is damped least squares on the ``gripperframe`` site Jacobian
(``mj_jacSite``) over the five arm joints, clipping every step to the joint limits; the
gripper (jaw) value is passed through. With five joints the arm reaches a position in any
of its approach directions but only a 5-dimensional set of full poses; an unreachable target
ends with ``converged=False`` and the closest configuration found, never an exception.

The rotation helpers (``quat_from_matrix`` …) live in :mod:`so100_sim.transforms` and are
re-exported here.

Dependency rule: the core never imports the ROS runtime (``so100_common.node``/transport);
it uses MuJoCo, numpy and this package's description, transforms and errors only.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import mujoco
import numpy as np

from so100_common.names import JOINT_NAMES
from so100_sim.description import GRIPPERFRAME_SITE, to_mjcf_robot
from so100_sim.errors import KinematicsError, ModelError
from so100_sim.transforms import (
    matrix_from_quat,
    quat_conj,
    quat_distance,
    quat_from_matrix,
    quat_from_rpy,
    quat_mul,
    rotation_vector,
)

__all__ = [
    "ARM_JOINTS",
    "IKResult",
    "Kinematics",
    "matrix_from_quat",
    "quat_distance",
    "quat_from_matrix",
    "quat_from_rpy",
    "quat_mul",
]

log = logging.getLogger(__name__)

#: The joints IK moves (all but the jaw).
ARM_JOINTS: tuple[str, ...] = JOINT_NAMES[:5]


@dataclass(frozen=True)
class IKResult:
    """Outcome of :meth:`Kinematics.ik`.

    ``q`` has all six joints (the gripper passed through); ``pos_error`` is the distance in
    metres and ``rot_error`` the angle in radians (0 for a position-only target) between the
    tool frame at ``q`` and the target.
    """

    q: np.ndarray
    converged: bool
    iterations: int
    pos_error: float
    rot_error: float


class Kinematics:
    """FK and IK of the ``gripperframe`` site on a private ``MjData``.

    Args:
        model: a compiled model holding the SO-100 joints and the site (default: the bare robot
            of :func:`~so100_sim.description.to_mjcf_robot`). Only its kinematics are used.
        site: the tool site's name.
    """

    def __init__(self, model: mujoco.MjModel | None = None, *, site: str = GRIPPERFRAME_SITE) -> None:
        self.model = model if model is not None else mujoco.MjModel.from_xml_string(to_mjcf_robot())
        self.data = mujoco.MjData(self.model)
        m = self.model
        self.site_id = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_SITE, site)
        if self.site_id < 0:
            raise ModelError(f"the model has no site {site!r}; build it with so100_sim.description.to_mjcf_robot()")
        ids = []
        for name in JOINT_NAMES:
            jid = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_JOINT, name)
            if jid < 0 or m.jnt_type[jid] != mujoco.mjtJoint.mjJNT_HINGE:
                raise ModelError(f"the model has no hinge joint {name!r}; joints must be named {JOINT_NAMES}")
            ids.append(jid)
        self._qadr = np.array([m.jnt_qposadr[j] for j in ids])
        self._dadr = np.array([m.jnt_dofadr[j] for j in ids])
        #: lower and upper limits of the six joints (radians), JOINT_NAMES order
        self.lower = np.array([m.jnt_range[j][0] for j in ids])
        self.upper = np.array([m.jnt_range[j][1] for j in ids])
        self._jacp = np.zeros((3, m.nv))
        self._jacr = np.zeros((3, m.nv))

    # ------------------------------------------------------------ FK

    def _set(self, q: np.ndarray) -> None:
        self.data.qpos[self._qadr[: len(q)]] = q
        mujoco.mj_kinematics(self.model, self.data)

    def _pose(self) -> tuple[np.ndarray, np.ndarray]:
        pos = self.data.site_xpos[self.site_id].copy()
        return pos, quat_from_matrix(self.data.site_xmat[self.site_id].reshape(3, 3))

    def fk(self, q: Sequence[float] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Tool pose ``(pos[3], quat[4] wxyz)`` at joint positions ``q`` (5 arm joints, or 6 with the jaw)."""
        self._set(self._check_q(q, "q"))
        return self._pose()

    def jacobian(self, q: Sequence[float] | np.ndarray) -> np.ndarray:
        """6x5 Jacobian (linear rows, then angular, world frame) of the tool site over the arm joints."""
        self._set(self._check_q(q, "q"))
        return self._jacobian()

    def _jacobian(self) -> np.ndarray:
        mujoco.mj_comPos(self.model, self.data)  # mj_jac* reads cdof/subtree_com set here
        mujoco.mj_jacSite(self.model, self.data, self._jacp, self._jacr, self.site_id)
        cols = self._dadr[:5]
        return np.vstack((self._jacp[:, cols], self._jacr[:, cols]))

    # ------------------------------------------------------------ IK

    def ik(
        self,
        target_pos: Sequence[float] | np.ndarray,
        target_quat: Sequence[float] | np.ndarray | None = None,
        q0: Sequence[float] | np.ndarray | None = None,
        *,
        max_iters: int = 200,
        tol_pos: float = 1e-4,
        tol_rot: float = 1e-3,
        damping: float = 1e-3,
        max_step: float = 0.2,
        rot_weight: float = 0.1,
        restarts: int = 2,
    ) -> IKResult:
        """Joint positions that put the tool frame at ``target_pos`` (and ``target_quat`` if given).

        Args:
            target_pos: position in metres, model world frame.
            target_quat: orientation ``[w, x, y, z]``; ``None`` solves for the position only.
            q0: start configuration (5 or 6 joints; default all zeros). Its gripper value is
                returned unchanged; out-of-limit values are clipped first.
            max_iters: iterations before giving up.
            tol_pos: position tolerance, metres.
            tol_rot: orientation tolerance, radians.
            damping: Levenberg-Marquardt damping λ of ``Jᵀ(JJᵀ + λ²I)⁻¹e``, in metres; larger is
                steadier near singularities and slower to converge.
            max_step: largest change of any joint in one iteration, radians.
            rot_weight: metres per radian that weigh orientation against position errors.
            restarts: further starts tried when one fails, each from ``q0`` with the wrist roll
                turned by half a turn (alternately +π and -π, within its limits): the shortest
                rotation toward an orientation target can run into the roll limit while the
                long way round reaches it. Each start gets ``max_iters`` iterations.

        Returns:
            An :class:`IKResult`; ``converged`` is False when the tolerances were not met (the
            target is out of reach, or lies beyond the joint limits from this start), with ``q``
            the closest configuration found.
        """
        pos_t = self._check_vec(target_pos, 3, "target_pos")
        quat_t = None
        if target_quat is not None:
            quat_t = self._check_vec(target_quat, 4, "target_quat")
            norm = float(np.linalg.norm(quat_t))
            if norm < 1e-9:
                raise KinematicsError(f"target_quat {quat_t.tolist()} is not a rotation (zero norm)")
            quat_t = quat_t / norm
        if max_iters < 1 or tol_pos <= 0 or tol_rot <= 0 or damping < 0 or max_step <= 0 or rot_weight <= 0:
            raise KinematicsError(
                f"bad IK settings: max_iters={max_iters}, tol_pos={tol_pos}, tol_rot={tol_rot}, "
                f"damping={damping}, max_step={max_step}, rot_weight={rot_weight}"
            )
        if restarts < 0:
            raise KinematicsError(f"restarts must be >= 0, got {restarts}")
        start = np.zeros(6)
        if q0 is not None:
            given = self._check_q(q0, "q0")
            start[: len(given)] = given
        start = np.clip(start, self.lower, self.upper)
        settings = (pos_t, quat_t, max_iters, tol_pos, tol_rot, damping * damping, max_step, rot_weight)
        best: IKResult | None = None
        total = 0
        for attempt in range(restarts + 1):
            seed = start.copy()
            if attempt:
                seed[4] += np.pi if attempt % 2 else -np.pi
                seed = np.clip(seed, self.lower, self.upper)
            result = self._solve(seed, *settings)
            total += result.iterations
            if best is None or result.pos_error + rot_weight * result.rot_error < (
                best.pos_error + rot_weight * best.rot_error
            ):
                best = result
            if result.converged:
                break
        assert best is not None
        if not best.converged:
            log.debug("IK did not converge after %d iterations: %.2e m, %.2e rad", total, best.pos_error,
                      best.rot_error)
        return IKResult(best.q, best.converged, total, best.pos_error, best.rot_error)

    def _solve(
        self,
        q: np.ndarray,
        pos_t: np.ndarray,
        quat_t: np.ndarray | None,
        max_iters: int,
        tol_pos: float,
        tol_rot: float,
        lam2: float,
        max_step: float,
        rot_weight: float,
    ) -> IKResult:
        """One damped-least-squares run from ``q`` (modified in place); the best configuration seen."""
        lo, hi = self.lower[:5], self.upper[:5]
        best = (np.inf, q.copy(), np.inf, np.inf)
        for it in range(max_iters + 1):
            self._set(q[:5])
            pos, quat = self._pose()
            e_pos = pos_t - pos
            pos_err = float(np.linalg.norm(e_pos))
            if quat_t is not None:
                e_rot = rotation_vector(quat_mul(quat_t, quat_conj(quat)))  # world frame, like jacr
                rot_err = float(np.linalg.norm(e_rot))
            else:
                rot_err = 0.0
            cost = pos_err + rot_weight * rot_err
            if cost < best[0]:
                best = (cost, q.copy(), pos_err, rot_err)
            if pos_err <= tol_pos and rot_err <= tol_rot:
                return IKResult(q.copy(), True, it, pos_err, rot_err)
            if it == max_iters:
                break
            jac = self._jacobian()
            if quat_t is None:
                jac, err = jac[:3], e_pos
            else:
                jac = np.vstack((jac[:3], rot_weight * jac[3:]))
                err = np.concatenate((e_pos, rot_weight * e_rot))
            dq = jac.T @ np.linalg.solve(jac @ jac.T + lam2 * np.eye(len(err)), err)
            biggest = float(np.max(np.abs(dq)))
            if biggest > max_step:
                dq *= max_step / biggest
            q[:5] = np.clip(q[:5] + dq, lo, hi)
        _, q_best, pos_err, rot_err = best
        return IKResult(q_best, False, max_iters, pos_err, rot_err)

    # ------------------------------------------------------------ checks

    def _check_q(self, q: Sequence[float] | np.ndarray, what: str) -> np.ndarray:
        arr = np.asarray(q, dtype=float).reshape(-1)
        if len(arr) not in (5, 6):
            raise KinematicsError(f"{what} has {len(arr)} values; give 5 arm joints or all 6 of {JOINT_NAMES}")
        if not np.all(np.isfinite(arr)):
            raise KinematicsError(f"{what} is not finite: {arr.tolist()}")
        return arr

    @staticmethod
    def _check_vec(v: Sequence[float] | np.ndarray, n: int, what: str) -> np.ndarray:
        arr = np.asarray(v, dtype=float).reshape(-1)
        if len(arr) != n or not np.all(np.isfinite(arr)):
            raise KinematicsError(f"{what} must be {n} finite numbers, got {arr.tolist()}")
        return arr


