"""so100_sim.transforms: quaternions, matrices and rpy against MuJoCo's own conversions."""

import math

import mujoco
import numpy as np
import pytest

from so100_sim.kinematics import matrix_from_quat, quat_distance, quat_from_matrix, quat_from_rpy, quat_mul
from so100_sim.transforms import matrix_from_rpy, quat_angle, rotation_vector, rpy_from_matrix


def _random_quats(rng, n):
    q = rng.normal(size=(n, 4))
    return q / np.linalg.norm(q, axis=1, keepdims=True)


def _near_half_turns(rng, n):
    """Rotations within 1e-6 .. 1e-2 rad of 180° about random axes, and exact half turns about x, y, z."""
    out = []
    for eps in np.concatenate(([0.0, 0.0, 0.0], 10 ** rng.uniform(-6, -2, n - 3))):
        axis = rng.normal(size=3)
        axis /= np.linalg.norm(axis)
        angle = math.pi - eps
        out.append(np.concatenate(([math.cos(angle / 2)], math.sin(angle / 2) * axis)))
    out[0], out[1], out[2] = [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]
    return np.array(out, dtype=float)


def _mj_quat(mat):
    q = np.zeros(4)
    mujoco.mju_mat2Quat(q, np.ascontiguousarray(mat, dtype=float).reshape(9))
    return q


def test_quat_from_matrix_agrees_with_mujoco_including_half_turns():
    """quat_from_matrix equals mju_mat2Quat up to sign on random and near-180° rotations, with w >= 0."""
    rng = np.random.default_rng(0)
    quats = np.vstack((_random_quats(rng, 500), _near_half_turns(rng, 200)))
    for q in quats:
        mat = matrix_from_quat(q)
        ours, theirs = quat_from_matrix(mat), _mj_quat(mat)
        assert ours[0] >= 0
        assert np.linalg.norm(ours) == pytest.approx(1.0, abs=1e-12)
        assert min(np.linalg.norm(ours - theirs), np.linalg.norm(ours + theirs)) < 1e-9
        assert min(np.linalg.norm(ours - q), np.linalg.norm(ours + q)) < 1e-9


def test_matrix_quat_round_trip():
    """matrix → quat → matrix is the identity map on rotations; matrix_from_quat gives orthonormal matrices."""
    rng = np.random.default_rng(1)
    for q in np.vstack((_random_quats(rng, 300), _near_half_turns(rng, 50))):
        mat = matrix_from_quat(q)
        assert mat @ mat.T == pytest.approx(np.eye(3), abs=1e-12)
        assert np.linalg.det(mat) == pytest.approx(1.0)
        assert matrix_from_quat(quat_from_matrix(mat)) == pytest.approx(mat, abs=1e-12)
        expect = np.zeros(9)
        mujoco.mju_quat2Mat(expect, q)
        assert mat.reshape(9) == pytest.approx(expect, abs=1e-12)


def test_matrix_from_quat_rejects_a_zero_quaternion():
    """A zero or NaN quaternion is no rotation: ValueError, not a silent NaN matrix."""
    with pytest.raises(ValueError):
        matrix_from_quat([0, 0, 0, 0])
    with pytest.raises(ValueError):
        matrix_from_quat([math.nan, 0, 0, 1])


def test_rpy_is_urdf_fixed_axis_xyz():
    """quat_from_rpy / matrix_from_rpy rotate about fixed X, then Y, then Z, as URDF defines rpy."""
    rng = np.random.default_rng(2)
    for r, p, y in rng.uniform(-math.pi, math.pi, size=(200, 3)):
        rx, ry, rz = np.zeros(4), np.zeros(4), np.zeros(4)
        mujoco.mju_axisAngle2Quat(rx, [1, 0, 0], r)
        mujoco.mju_axisAngle2Quat(ry, [0, 1, 0], p)
        mujoco.mju_axisAngle2Quat(rz, [0, 0, 1], y)
        expect = np.zeros(4)
        mujoco.mju_mulQuat(expect, rz, quat_mul(ry, rx))
        q = quat_from_rpy(r, p, y)
        assert q[0] >= 0
        assert quat_distance(q, expect) < 1e-12
        assert matrix_from_rpy(r, p, y) == pytest.approx(matrix_from_quat(expect), abs=1e-12)
        assert matrix_from_rpy(*rpy_from_matrix(matrix_from_rpy(r, p, y))) == pytest.approx(
            matrix_from_rpy(r, p, y), abs=1e-9
        )
    # a pure yaw of +90° turns x onto y
    assert matrix_from_rpy(0, 0, math.pi / 2) @ [1, 0, 0] == pytest.approx([0, 1, 0], abs=1e-12)


def test_quat_mul_matches_mujoco_and_distance_measures_angle():
    """quat_mul equals mju_mulQuat; quat_distance is 0 for q and -q and 1 - cos(angle/2) otherwise."""
    rng = np.random.default_rng(3)
    a, b = _random_quats(rng, 100), _random_quats(rng, 100)
    for qa, qb in zip(a, b, strict=True):
        expect = np.zeros(4)
        mujoco.mju_mulQuat(expect, qa, qb)
        assert quat_mul(qa, qb) == pytest.approx(expect, abs=1e-12)
        assert quat_distance(qa, -qa) == pytest.approx(0.0, abs=1e-12)
        angle = quat_angle(qa, qb)
        assert quat_distance(qa, qb) == pytest.approx(1 - math.cos(angle / 2), abs=1e-12)
    half_turn = quat_from_rpy(math.pi, 0, 0)
    assert quat_distance([1, 0, 0, 0], half_turn) == pytest.approx(1.0, abs=1e-12)


def test_rotation_vector_is_axis_times_angle():
    """rotation_vector gives axis·angle with the angle in [0, π], also for tiny angles."""
    for axis, angle in (((0, 0, 1), 0.3), ((1, 0, 0), -2.0), ((0, 1, 0), 1e-9), ((0.6, 0.8, 0), math.pi - 1e-4)):
        q = np.zeros(4)
        mujoco.mju_axisAngle2Quat(q, np.asarray(axis, dtype=float), angle)
        assert rotation_vector(q) == pytest.approx(np.asarray(axis) * angle, abs=1e-12)
        assert rotation_vector(-q) == pytest.approx(np.asarray(axis) * angle, abs=1e-12)
