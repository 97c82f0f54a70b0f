"""Rotation helpers: quaternions (w, x, y, z), rotation matrices and URDF roll-pitch-yaw.

Pure numpy. Quaternions follow MuJoCo's order ``[w, x, y, z]``; roll-pitch-yaw follows
URDF (rotations about the fixed axes X, then Y, then Z, i.e. ``R = Rz(yaw) Ry(pitch) Rx(roll)``).

Dependency rule: imports nothing from the project and nothing but numpy, so that both
``description`` (which writes the models) and ``kinematics`` (which reads them) can use it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

ArrayLike = Sequence[float] | np.ndarray


def matrix_from_rpy(roll: float, pitch: float, yaw: float) -> np.ndarray:
    """3x3 rotation of a URDF ``rpy`` (fixed axes X, Y, Z): ``Rz(yaw) @ Ry(pitch) @ Rx(roll)``."""
    cr, sr = math.cos(roll), math.sin(roll)
    cp, sp = math.cos(pitch), math.sin(pitch)
    cy, sy = math.cos(yaw), math.sin(yaw)
    return np.array(
        [
            [cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr],
            [sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr],
            [-sp, cp * sr, cp * cr],
        ]
    )


def rpy_from_matrix(mat: np.ndarray) -> tuple[float, float, float]:
    """URDF ``rpy`` of a rotation matrix (pitch in [-pi/2, pi/2]; yaw = 0 at the singularity)."""
    r = np.asarray(mat, dtype=float).reshape(3, 3)
    sp = -r[2, 0]
    if abs(sp) > 1.0 - 1e-12:
        pitch = math.copysign(math.pi / 2, sp)
        return math.atan2(-r[1, 2], r[1, 1]), pitch, 0.0
    return math.atan2(r[2, 1], r[2, 2]), math.asin(sp), math.atan2(r[1, 0], r[0, 0])


def quat_from_matrix(mat: np.ndarray) -> np.ndarray:
    """Unit quaternion ``[w, x, y, z]`` (with ``w >= 0``) of a rotation matrix, by Shepperd's method.

    Shepperd's method picks the largest of ``w², x², y², z²`` to divide by, so it stays
    accurate for every rotation, including those near 180° where ``w`` vanishes.
    """
    r = np.asarray(mat, dtype=float).reshape(3, 3)
    trace = r[0, 0] + r[1, 1] + r[2, 2]
    # 4·w², 4·x², 4·y², 4·z² up to a common offset: pick the largest pivot.
    pivots = (trace, r[0, 0], r[1, 1], r[2, 2])
    k = int(np.argmax(pivots))
    if k == 0:
        s = 2.0 * math.sqrt(max(1.0 + trace, 0.0))
        q = np.array([0.25 * s, (r[2, 1] - r[1, 2]) / s, (r[0, 2] - r[2, 0]) / s, (r[1, 0] - r[0, 1]) / s])
    elif k == 1:
        s = 2.0 * math.sqrt(max(1.0 + r[0, 0] - r[1, 1] - r[2, 2], 0.0))
        q = np.array([(r[2, 1] - r[1, 2]) / s, 0.25 * s, (r[0, 1] + r[1, 0]) / s, (r[0, 2] + r[2, 0]) / s])
    elif k == 2:
        s = 2.0 * math.sqrt(max(1.0 - r[0, 0] + r[1, 1] - r[2, 2], 0.0))
        q = np.array([(r[0, 2] - r[2, 0]) / s, (r[0, 1] + r[1, 0]) / s, 0.25 * s, (r[1, 2] + r[2, 1]) / s])
    else:
        s = 2.0 * math.sqrt(max(1.0 - r[0, 0] - r[1, 1] + r[2, 2], 0.0))
        q = np.array([(r[1, 0] - r[0, 1]) / s, (r[0, 2] + r[2, 0]) / s, (r[1, 2] + r[2, 1]) / s, 0.25 * s])
    q /= np.linalg.norm(q)
    return -q if q[0] < 0 else q


def matrix_from_quat(quat: ArrayLike) -> np.ndarray:
    """3x3 rotation matrix of a quaternion ``[w, x, y, z]`` (normalised first)."""
    q = np.asarray(quat, dtype=float).reshape(4)
    n = np.linalg.norm(q)
    if not np.isfinite(n) or n < 1e-12:
        raise ValueError(f"not a rotation quaternion: {q.tolist()}")
    w, x, y, z = q / n
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
            [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
            [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
        ]
    )


def quat_mul(q1: ArrayLike, q2: ArrayLike) -> np.ndarray:
    """Hamilton product ``q1 ⊗ q2`` (the rotation ``q2`` first, then ``q1``)."""
    w1, x1, y1, z1 = np.asarray(q1, dtype=float).reshape(4)
    w2, x2, y2, z2 = np.asarray(q2, dtype=float).reshape(4)
    return np.array(
        [
            w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2,
            w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
            w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2,
            w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2,
        ]
    )


def quat_conj(quat: ArrayLike) -> np.ndarray:
    """Conjugate ``[w, -x, -y, -z]`` (the inverse of a unit quaternion)."""
    w, x, y, z = np.asarray(quat, dtype=float).reshape(4)
    return np.array([w, -x, -y, -z])


def quat_from_rpy(roll: float, pitch: float, yaw: float) -> np.ndarray:
    """Quaternion ``[w, x, y, z]`` of a URDF ``rpy``: ``qz(yaw) ⊗ qy(pitch) ⊗ qx(roll)``, with ``w >= 0``."""
    qx = np.array([math.cos(roll / 2), math.sin(roll / 2), 0.0, 0.0])
    qy = np.array([math.cos(pitch / 2), 0.0, math.sin(pitch / 2), 0.0])
    qz = np.array([math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2)])
    q = quat_mul(qz, quat_mul(qy, qx))
    return -q if q[0] < 0 else q


def quat_distance(q1: ArrayLike, q2: ArrayLike) -> float:
    """``1 - |<q1, q2>|`` of two unit quaternions: 0 for the same rotation (either sign), 1 at 180°.

    Equal to ``1 - cos(angle / 2)``, so 0.01 is about 16° and 1e-4 about 1.6°.
    """
    a = np.asarray(q1, dtype=float).reshape(4)
    b = np.asarray(q2, dtype=float).reshape(4)
    dot = abs(float(a @ b)) / (np.linalg.norm(a) * np.linalg.norm(b))
    return max(0.0, 1.0 - min(dot, 1.0))


def quat_angle(q1: ArrayLike, q2: ArrayLike) -> float:
    """Angle in radians of the rotation that takes ``q2`` to ``q1`` (in [0, pi])."""
    a = np.asarray(q1, dtype=float).reshape(4)
    b = np.asarray(q2, dtype=float).reshape(4)
    dot = abs(float(a @ b)) / (np.linalg.norm(a) * np.linalg.norm(b))
    return 2.0 * math.acos(min(dot, 1.0))


def rotation_vector(quat: ArrayLike) -> np.ndarray:
    """Axis times angle (radians, angle in [0, pi]) of a quaternion ``[w, x, y, z]``."""
    q = np.asarray(quat, dtype=float).reshape(4)
    q = q / np.linalg.norm(q)
    if q[0] < 0:
        q = -q
    s = float(np.linalg.norm(q[1:]))
    if s < 1e-12:
        return 2.0 * q[1:]  # small-angle limit
    return (2.0 * math.atan2(s, q[0]) / s) * q[1:]


def transform(xyz: ArrayLike, rpy: ArrayLike) -> np.ndarray:
    """4x4 homogeneous transform of a URDF origin (``xyz`` in metres, ``rpy`` in radians)."""
    t = np.eye(4)
    t[:3, :3] = matrix_from_rpy(*rpy)
    t[:3, 3] = np.asarray(xyz, dtype=float)
    return t
