"""so100_sim.kinematics: FK against MuJoCo's site, IK round trips, limits, bad input."""

import mujoco
import numpy as np
import pytest

from so100_sim.description import to_mjcf_robot
from so100_sim.errors import KinematicsError, ModelError, SimError
from so100_sim.kinematics import Kinematics, quat_distance, quat_from_matrix

# "Workspace-like" joint ranges: the arm in front of itself (shoulder_lift leaning back at most
# 0.6 rad), wrist roll short of its stops; targets below the table or behind the base are redrawn.
WORKSPACE_LO = np.array([-1.5, -0.6, -1.5, -1.5, -2.5])
WORKSPACE_HI = np.array([1.5, 1.5, 1.5, 1.5, 2.5])


@pytest.fixture(scope="module")
def kin() -> Kinematics:
    return Kinematics()


def _workspace_targets(kin, n, seed):
    rng = np.random.default_rng(seed)
    out = []
    while len(out) < n:
        q = rng.uniform(WORKSPACE_LO, WORKSPACE_HI)
        pos, quat = kin.fk(q)
        if pos[2] > 0.01 and pos[1] < -0.05:  # above the table, in front of the base
            out.append((q, pos, quat))
    return out


def test_fk_is_the_gripperframe_site_of_a_compiled_model(kin):
    """fk(q) returns the site pose MuJoCo computes for the same q in an independent MjData."""
    m = mujoco.MjModel.from_xml_string(to_mjcf_robot())
    d = mujoco.MjData(m)
    rng = np.random.default_rng(0)
    for q in rng.uniform(kin.lower, kin.upper, size=(50, 6)):
        d.qpos[:] = q
        mujoco.mj_kinematics(m, d)
        pos, quat = kin.fk(q)
        assert pos == pytest.approx(d.site("gripperframe").xpos, abs=1e-12)
        assert quat_distance(quat, quat_from_matrix(d.site("gripperframe").xmat)) < 1e-12
        assert quat[0] >= 0
    # five arm joints give the same pose as six (the jaw does not move the tool frame)
    assert kin.fk(q[:5])[0] == pytest.approx(kin.fk(q)[0])


def test_kinematics_never_touches_a_simulations_data():
    """Kinematics built from a running simulation's model leaves that simulation's MjData alone."""
    m = mujoco.MjModel.from_xml_string(to_mjcf_robot())
    d = mujoco.MjData(m)
    mujoco.mj_resetDataKeyframe(m, d, m.key("home").id)
    d.ctrl[:] = 0.3
    for _ in range(50):
        mujoco.mj_step(m, d)
    before = (d.qpos.copy(), d.qvel.copy(), d.site_xpos.copy(), d.time)
    kin = Kinematics(m)
    kin.fk(np.full(6, -0.4))
    kin.ik([0.0, -0.25, 0.1], q0=d.qpos)
    assert np.array_equal(d.qpos, before[0]) and np.array_equal(d.qvel, before[1])
    assert np.array_equal(d.site_xpos, before[2]) and d.time == before[3]


def test_jacobian_matches_finite_differences(kin):
    """The 6x5 site Jacobian agrees with central differences of fk over the arm joints."""
    q = np.array([0.3, -0.4, 0.7, -0.2, 1.1, 0.0])
    jac = kin.jacobian(q)
    h = 1e-6
    for i in range(5):
        dq = np.zeros(6)
        dq[i] = h
        (p1, q1), (p0, q0) = kin.fk(q + dq), kin.fk(q - dq)
        assert jac[:3, i] == pytest.approx((p1 - p0) / (2 * h), abs=1e-6)
        # angular column: the world-frame rotation rate, from the quaternion difference
        rel = np.zeros(3)
        mujoco.mju_subQuat(rel, q1, q0)
        world = np.zeros(3)
        mujoco.mju_rotVecQuat(world, rel, q0)
        assert jac[3:, i] == pytest.approx(world / (2 * h), abs=1e-5)


def test_ik_round_trips_random_workspace_poses_from_home(kin):
    """IK from home recovers FK poses of 120 random workspace configs within 1 mm and quat distance 0.01."""
    targets = _workspace_targets(kin, 120, seed=7)
    good = 0
    for _, pos, quat in targets:
        result = kin.ik(pos, quat, q0=np.zeros(6))
        got_pos, got_quat = kin.fk(result.q)
        ok = (
            result.converged
            and np.linalg.norm(got_pos - pos) <= 1e-3
            and quat_distance(got_quat, quat) <= 0.01
        )
        good += ok
        if result.converged:  # a converged result reports errors within the tolerances it was given
            assert result.pos_error <= 1e-4 and result.rot_error <= 1e-3
    rate = good / len(targets)
    assert rate >= 0.95, f"IK converged on {rate:.1%} of workspace poses"


def test_ik_position_only_keeps_the_gripper_value_and_converges(kin):
    """Position-only IK reaches 100 workspace positions from home; the jaw value comes back from q0."""
    targets = _workspace_targets(kin, 100, seed=8)
    converged = 0
    for _, pos, _ in targets:
        result = kin.ik(pos, q0=[0, 0, 0, 0, 0, 0.7])
        assert result.q[5] == 0.7 and result.rot_error == 0.0
        converged += result.converged and np.linalg.norm(kin.fk(result.q)[0] - pos) <= 1e-3
    assert converged / len(targets) >= 0.95, f"position-only IK converged on {converged}/{len(targets)}"


def test_ik_never_leaves_the_joint_limits(kin):
    """IK results stay inside the joint limits for reachable, unreachable and limit-hugging targets."""
    rng = np.random.default_rng(9)
    q_edge = np.array([kin.upper[0], kin.lower[1], kin.upper[2], kin.lower[3], kin.upper[4], 0.0])
    cases = [kin.fk(q_edge)]
    cases += [(rng.uniform(-0.6, 0.6, 3), None) for _ in range(20)]
    cases += [kin.fk(q) for q in rng.uniform(kin.lower, kin.upper, size=(20, 6))]
    for pos, quat in cases:
        # start outside the limits too: the start is clipped before the first step
        result = kin.ik(pos, quat, q0=rng.uniform(kin.lower - 0.5, kin.upper + 0.5), max_iters=60)
        assert np.all(result.q >= kin.lower - 1e-12) and np.all(result.q <= kin.upper + 1e-12)


def test_unreachable_target_returns_not_converged_with_its_error(kin):
    """A target 1 m away ends with converged False and a position error near the true shortfall."""
    reach = max(np.linalg.norm(kin.fk(q)[0]) for q in np.random.default_rng(3).uniform(kin.lower, kin.upper, (500, 6)))
    target = np.array([1.0, 0.0, 0.3])
    result = kin.ik(target, q0=np.zeros(6), max_iters=100)
    assert not result.converged
    assert result.iterations == 100 * 3  # the start and two restarts, each to max_iters
    assert np.linalg.norm(target) - reach - 0.01 < result.pos_error < np.linalg.norm(target)
    assert result.pos_error == pytest.approx(np.linalg.norm(kin.fk(result.q)[0] - target))
    # an orientation the 5-joint arm cannot take at a reachable position: not converged, no exception
    pos, _ = kin.fk(np.zeros(6))
    result = kin.ik(pos, [0.0, 0.0, 1.0, 0.0], q0=np.zeros(6), max_iters=100)
    assert not result.converged and result.rot_error > 1e-3


def test_ik_and_fk_reject_malformed_input(kin):
    """NaN, wrong lengths, a zero quaternion and bad settings raise KinematicsError (a SimError)."""
    bad_calls = [
        lambda: kin.fk([0.0] * 4),
        lambda: kin.fk([0.0, 0.0, np.nan, 0.0, 0.0]),
        lambda: kin.ik([0.0, -0.2]),
        lambda: kin.ik([0.0, -0.2, np.inf]),
        lambda: kin.ik([0.0, -0.2, 0.1], [0.0, 0.0, 0.0, 0.0]),
        lambda: kin.ik([0.0, -0.2, 0.1], q0=[0.0] * 7),
        lambda: kin.ik([0.0, -0.2, 0.1], max_iters=0),
        lambda: kin.ik([0.0, -0.2, 0.1], restarts=-1),
    ]
    for call in bad_calls:
        with pytest.raises(KinematicsError):
            call()
    assert issubclass(KinematicsError, SimError)


def test_model_without_the_robot_is_refused():
    """Kinematics on a model lacking the site or the joints raises ModelError naming what is missing."""
    bare = mujoco.MjModel.from_xml_string("<mujoco><worldbody><site name='gripperframe'/></worldbody></mujoco>")
    with pytest.raises(ModelError, match="shoulder_pan"):
        Kinematics(bare)
    with pytest.raises(ModelError, match="tool0"):
        Kinematics(site="tool0")
