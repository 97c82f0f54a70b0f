"""The MJCF robot under physics: holds its pose, tracks commands, grasps the brick, warns about nothing."""

import math

import mujoco
import numpy as np
import pytest

from so100_common.names import JOINT_NAMES
from so100_sim import description
from so100_sim.description import to_mjcf_robot


def _warnings(d) -> dict[str, int]:
    return {mujoco.mjtWarning(i).name: d.warning[i].number for i in range(len(d.warning)) if d.warning[i].number}


@pytest.fixture(scope="module")
def model() -> mujoco.MjModel:
    return mujoco.MjModel.from_xml_string(to_mjcf_robot())


def test_arm_holds_home_under_gravity(model):
    """From the home keyframe with the actuators holding 0, every joint stays within 1° for 2 s."""
    d = mujoco.MjData(model)
    mujoco.mj_resetDataKeyframe(model, d, model.key("home").id)
    worst = 0.0
    for _ in range(round(2.0 / model.opt.timestep)):
        mujoco.mj_step(model, d)
        worst = max(worst, float(np.max(np.abs(d.qpos))))
    assert math.degrees(worst) < 1.0, f"sagged {math.degrees(worst):.2f}° under gravity"
    assert d.ncon == 0  # nothing of the arm touches itself at home
    assert _warnings(d) == {}


def test_arm_sags_without_its_actuators(model):
    """The hold comes from the servos: with zero gains the arm falls (so the hold test means something)."""
    d = mujoco.MjData(model)
    mujoco.mj_resetDataKeyframe(model, d, model.key("home").id)
    weak = mujoco.MjModel.from_xml_string(to_mjcf_robot())
    weak.actuator_gainprm[:, 0] = 0
    weak.actuator_biasprm[:, 1:3] = 0
    for _ in range(500):
        mujoco.mj_step(weak, d)
    assert math.degrees(np.max(np.abs(d.qpos[:5]))) > 5.0


def test_steps_warning_free_under_random_commands(model):
    """2 s of random commands within the control ranges, plus noise on the forces: no warnings, finite state."""
    d = mujoco.MjData(model)
    rng = np.random.default_rng(0)
    lo, hi = model.actuator_ctrlrange[:, 0], model.actuator_ctrlrange[:, 1]
    for step in range(1000):
        if step % 100 == 0:
            d.ctrl[:] = rng.uniform(lo, hi)
        d.qfrc_applied[:] = rng.normal(scale=0.05, size=model.nv)
        mujoco.mj_step(model, d)
    assert np.all(np.isfinite(d.qpos)) and np.all(np.isfinite(d.qvel))
    assert _warnings(d) == {}


def test_position_servos_track_a_step(model):
    """A 0.5 rad step on every joint settles within 1° in 0.5 s (forces within each servo's effort)."""
    d = mujoco.MjData(model)
    mujoco.mj_resetDataKeyframe(model, d, model.key("home").id)
    target = np.array([0.5, 0.5, -0.5, 0.5, 0.5, 0.5])
    d.ctrl[:] = target
    peak = np.zeros(model.nu)
    for _ in range(round(0.5 / model.opt.timestep)):
        mujoco.mj_step(model, d)
        peak = np.maximum(peak, np.abs(d.actuator_force))
    assert np.degrees(np.abs(d.qpos - target)) == pytest.approx(np.zeros(6), abs=1.0)
    efforts = np.array([j.effort for j in description.SO100.actuated_joints])
    assert np.all(peak <= efforts + 1e-9)


def _grasp_scene(brick_pos, brick_quat) -> mujoco.MjModel:
    """The robot plus a free 31.8 × 31.8 × 19.2 mm, 10 g brick (no keyframe: the brick adds qpos)."""
    xml = to_mjcf_robot(keyframe=False)
    w = description.BRICK_WIDTH / 2
    brick = (
        f'<body name="brick" pos="{" ".join(map(str, brick_pos))}" quat="{" ".join(map(str, brick_quat))}">'
        f'<freejoint/><geom type="box" size="{w} 0.0096 {w}" mass="0.01"/></body>'
    )
    return mujoco.MjModel.from_xml_string(xml.replace("</worldbody>", brick + "</worldbody>"))


@pytest.mark.parametrize("close", [True, False])
def test_jaws_hold_a_duplo_brick_against_gravity(close):
    """Jaws closed on a brick (sides vertical) hold it by friction for 1 s of gravity; left open, it falls."""
    arm = np.array([0.0, 0.0, 0.0, 0.0, math.pi / 2])  # jaws side by side: only friction holds the brick
    probe = mujoco.MjModel.from_xml_string(to_mjcf_robot())
    pd = mujoco.MjData(probe)
    pd.qpos[:5] = arm
    mujoco.mj_kinematics(probe, pd)
    site = pd.site("gripperframe")
    quat = np.zeros(4)
    mujoco.mju_mat2Quat(quat, site.xmat)
    # the brick centred on the tool frame, its 31.8 mm sides across the jaws (tool z) and the fingers
    m = _grasp_scene(site.xpos.copy(), quat)
    d = mujoco.MjData(m)
    jaw = JOINT_NAMES.index("gripper")
    d.qpos[:5] = arm
    d.qpos[jaw] = description.JAW_GRASP_ANGLE + 0.3  # 15 mm wider than the brick
    d.qpos[6:9], d.qpos[9:13] = site.xpos, quat
    d.ctrl[:5] = arm
    d.ctrl[jaw] = -0.1 if close else 1.0
    gravity = m.opt.gravity.copy()
    m.opt.gravity[:] = 0  # the brick floats while the jaws close, as if it stood on the table
    for _ in range(round(0.4 / m.opt.timestep)):
        mujoco.mj_step(m, d)
    m.opt.gravity[:] = gravity
    held_at = d.body("brick").xpos - d.site("gripperframe").xpos  # the brick seen from the tool
    for _ in range(round(1.0 / m.opt.timestep)):
        mujoco.mj_step(m, d)
    drop = float(np.linalg.norm(d.body("brick").xpos - d.site("gripperframe").xpos - held_at))
    if close:
        assert drop < 2e-4, f"the brick slipped {drop * 1000:.2f} mm in the jaws"
        assert d.qpos[jaw] == pytest.approx(description.JAW_GRASP_ANGLE, abs=0.03)
        assert np.linalg.norm(held_at) < 0.003  # the grasp centres the brick on gripperframe
    else:
        assert drop > 0.05
    assert _warnings(d) == {}
