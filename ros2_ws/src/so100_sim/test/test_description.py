"""so100_sim.description: the URDF and the MJCF say the same thing, and what the reference says."""

import math
import xml.etree.ElementTree as ET

import mujoco
import numpy as np
import pytest

from so100_common.names import BASE_FRAME, JOINT_NAMES
from so100_sim import description
from so100_sim.description import SO100, to_mjcf_robot, to_urdf, write_description

# shared/reference/so101_kinematics.md, typed in again so that a wrong number in the
# description cannot hide behind both generators reading it.
REFERENCE_JOINTS = {
    "shoulder_pan": ((0.0207909, -0.0230745, 0.0948817), (-3.14159, 0, 1.5708), (-1.91986, 1.91986)),
    "shoulder_lift": ((-0.0303992, -0.0182778, -0.0542), (-1.5708, -1.5708, 0), (-1.74533, 1.74533)),
    "elbow_flex": ((-0.11257, -0.028, 0), (0, 0, 1.5708), (-1.69, 1.69)),
    "wrist_flex": ((-0.1349, 0.0052, 0), (0, 0, -1.5708), (-1.65806, 1.65806)),
    "wrist_roll": ((0, -0.0611, 0.0181), (1.5708, 0, 3.14159), (-2.79253, 2.79253)),
    "gripper": ((0.0202, 0.0188, -0.0234), (1.5708, 0, 0), (-0.174533, 1.74533)),
}
REFERENCE_BASEFRAME = (0.020791, 0.0157608, 0.0324817)
REFERENCE_GRIPPERFRAME = ((-0.0079, -0.000218121, -0.0981274), (1.5708, 0, 1.5708))
REFERENCE_MASSES = [0.147, 0.100006, 0.103, 0.104, 0.079, 0.087, 0.012]


# ---------------------------------------------------------------- an independent URDF chain walker


def _rpy_matrix(r, p, y):
    rx = np.array([[1, 0, 0], [0, math.cos(r), -math.sin(r)], [0, math.sin(r), math.cos(r)]])
    ry = np.array([[math.cos(p), 0, math.sin(p)], [0, 1, 0], [-math.sin(p), 0, math.cos(p)]])
    rz = np.array([[math.cos(y), -math.sin(y), 0], [math.sin(y), math.cos(y), 0], [0, 0, 1]])
    return rz @ ry @ rx


def _axis_angle(axis, angle):
    k = np.asarray(axis, dtype=float) / np.linalg.norm(axis)
    kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + math.sin(angle) * kx + (1 - math.cos(angle)) * kx @ kx


def _floats(text):
    return [float(v) for v in text.split()]


def urdf_fk(root: ET.Element, q: dict[str, float]) -> dict[str, np.ndarray]:
    """4x4 pose of every URDF link in the root link's frame at joint positions ``q``."""
    joints = root.findall("joint")
    children = {j.find("child").get("link") for j in joints}
    base = next(link.get("name") for link in root.findall("link") if link.get("name") not in children)
    poses = {base: np.eye(4)}
    pending = list(joints)
    while pending:
        for j in list(pending):
            parent = j.find("parent").get("link")
            if parent not in poses:
                continue
            origin = j.find("origin")
            t = np.eye(4)
            t[:3, :3] = _rpy_matrix(*_floats(origin.get("rpy", "0 0 0")))
            t[:3, 3] = _floats(origin.get("xyz", "0 0 0"))
            if j.get("type") == "revolute":
                m = np.eye(4)
                m[:3, :3] = _axis_angle(_floats(j.find("axis").get("xyz")), q[j.get("name")])
                t = t @ m
            poses[j.find("child").get("link")] = poses[parent] @ t
            pending.remove(j)
    return poses


def _mj_frames(m, d):
    """(pos, 3x3) of every body, site and camera of the compiled MJCF, by URDF link name."""
    out = {}
    for i in range(1, m.nbody):
        out[m.body(i).name] = (d.xpos[i].copy(), d.xmat[i].reshape(3, 3).copy())
    for i in range(m.nsite):
        out[m.site(i).name] = (d.site_xpos[i].copy(), d.site_xmat[i].reshape(3, 3).copy())
    for i in range(m.ncam):
        # MuJoCo cameras look along -z, y up; the optical frame looks along +z, y down
        out[f"{m.cam(i).name}_optical_frame"] = (d.cam_xpos[i].copy(), d.cam_xmat[i].reshape(3, 3) @ np.diag([1, -1, -1]))
    return out


@pytest.fixture(scope="module")
def urdf_root() -> ET.Element:
    return ET.fromstring(to_urdf())


@pytest.fixture(scope="module")
def mj():
    m = mujoco.MjModel.from_xml_string(to_mjcf_robot())
    return m, mujoco.MjData(m)


def _worst_mismatch(urdf_root, m, d, qs) -> tuple[float, float]:
    """Largest position (m) and rotation (Frobenius) gap over all frames and configurations."""
    worst_p = worst_r = 0.0
    for qv in qs:
        d.qpos[:] = qv
        mujoco.mj_kinematics(m, d)
        mujoco.mj_camlight(m, d)  # camera poses are not part of mj_kinematics
        mj_frames = _mj_frames(m, d)
        urdf = urdf_fk(urdf_root, dict(zip(JOINT_NAMES, qv, strict=True)))
        assert set(urdf) == set(mj_frames)
        for name, (pos, rot) in mj_frames.items():
            worst_p = max(worst_p, float(np.linalg.norm(pos - urdf[name][:3, 3])))
            worst_r = max(worst_r, float(np.linalg.norm(rot - urdf[name][:3, :3])))
    return worst_p, worst_r


def _random_configs(n, seed=0):
    lo = np.array([j.lower for j in SO100.actuated_joints])
    hi = np.array([j.upper for j in SO100.actuated_joints])
    return np.random.default_rng(seed).uniform(lo, hi, size=(n, 6))


# ---------------------------------------------------------------- tests


def test_urdf_has_six_revolute_joints_in_order_with_reference_limits(urdf_root):
    """The URDF parses and lists JOINT_NAMES as revolute z-axis joints with the reference limits."""
    revolute = [j for j in urdf_root.findall("joint") if j.get("type") == "revolute"]
    assert [j.get("name") for j in revolute] == list(JOINT_NAMES)
    for j in revolute:
        xyz, rpy, (lower, upper) = REFERENCE_JOINTS[j.get("name")]
        limit = j.find("limit")
        assert float(limit.get("lower")) == pytest.approx(lower, abs=1e-9)
        assert float(limit.get("upper")) == pytest.approx(upper, abs=1e-9)
        assert float(limit.get("effort")) > 0 and float(limit.get("velocity")) > 0
        assert _floats(j.find("axis").get("xyz")) == [0, 0, 1]
        assert _floats(j.find("origin").get("xyz")) == pytest.approx(xyz, abs=1e-9)
        assert _floats(j.find("origin").get("rpy")) == pytest.approx(rpy, abs=1e-9)


def test_urdf_links_inertials_materials_and_fixed_frames(urdf_root):
    """Masses are the reference's; every visual names a declared material; the fixed frames exist."""
    masses = [float(link.find("inertial/mass").get("value")) for link in urdf_root.findall("link")
              if link.find("inertial") is not None]
    assert masses == pytest.approx(REFERENCE_MASSES)
    assert urdf_root.findall("link")[0].get("name") == BASE_FRAME
    declared = {m.get("name") for m in urdf_root.findall("material")}
    used = {v.get("name") for v in urdf_root.findall("link/visual/material")}
    assert used and used <= declared
    for link in urdf_root.findall("link"):
        for tag in ("visual", "collision"):
            for g in link.findall(f"{tag}/geometry/*"):
                assert g.tag in ("box", "cylinder", "sphere")
    fixed = {j.find("child").get("link"): j for j in urdf_root.findall("joint") if j.get("type") == "fixed"}
    assert _floats(fixed["baseframe"].find("origin").get("xyz")) == pytest.approx(REFERENCE_BASEFRAME)
    assert _floats(fixed["gripperframe"].find("origin").get("xyz")) == pytest.approx(REFERENCE_GRIPPERFRAME[0])
    assert _floats(fixed["gripperframe"].find("origin").get("rpy")) == pytest.approx(REFERENCE_GRIPPERFRAME[1])
    assert fixed["wrist_optical_frame"].find("parent").get("link") == "gripper_link"
    for name in ("baseframe", "gripperframe"):
        assert urdf_root.find(f"link[@name='{name}']/inertial") is None


def test_urdf_and_mjcf_agree_on_every_frame_over_random_configurations(urdf_root, mj):
    """Every link, site and camera frame of the MJCF matches the URDF chain within 1 mm / 1e-3 over 250 configs."""
    m, d = mj
    worst_p, worst_r = _worst_mismatch(urdf_root, m, d, _random_configs(250))
    assert worst_p < 1e-3 and worst_r < 1e-3, (worst_p, worst_r)
    assert worst_p < 1e-6  # in fact the same numbers: only float rounding separates them


@pytest.mark.parametrize("mutation", ["origin", "axis", "rpy"])
def test_frame_comparison_catches_a_wrong_origin_or_axis(urdf_root, mj, mutation):
    """The URDF/MJCF comparison fails when one joint's origin, rpy or axis is altered in the URDF."""
    m, d = mj
    root = ET.fromstring(ET.tostring(urdf_root))
    joint = root.find("joint[@name='elbow_flex']")
    if mutation == "origin":
        xyz = _floats(joint.find("origin").get("xyz"))
        joint.find("origin").set("xyz", " ".join(map(str, [xyz[0] + 0.003, xyz[1], xyz[2]])))
    elif mutation == "rpy":
        joint.find("origin").set("rpy", "0 0 -1.5708")
    else:
        joint.find("axis").set("xyz", "0 0 -1")
    worst_p, worst_r = _worst_mismatch(root, m, d, _random_configs(20, seed=1))
    assert worst_p > 1e-3


def test_zero_pose_matches_the_reference_chain(mj):
    """At q = 0 the MJCF's gripperframe and baseframe sit where the reference table puts them."""
    m, d = mj
    d.qpos[:] = 0
    mujoco.mj_kinematics(m, d)
    t = np.eye(4)
    for name in JOINT_NAMES[:5]:
        xyz, rpy, _ = REFERENCE_JOINTS[name]
        step = np.eye(4)
        step[:3, :3], step[:3, 3] = _rpy_matrix(*rpy), xyz
        t = t @ step
    tool = np.eye(4)
    tool[:3, :3], tool[:3, 3] = _rpy_matrix(*REFERENCE_GRIPPERFRAME[1]), REFERENCE_GRIPPERFRAME[0]
    expected = t @ tool
    site = d.site("gripperframe")
    assert site.xpos == pytest.approx(expected[:3, 3], abs=1e-9)
    assert site.xmat.reshape(3, 3) == pytest.approx(expected[:3, :3], abs=1e-9)
    # the reference's zero pose: upper arm up, forearm and gripper reaching forward along -y
    assert site.xpos == pytest.approx([0.0204, -0.3756, 0.2590], abs=1e-4)
    assert d.site("baseframe").xpos == pytest.approx(REFERENCE_BASEFRAME, abs=1e-12)


def test_mjcf_names_actuators_keyframe_and_ranges(mj):
    """Actuators are named after their joints, ctrlrange = joint range, forcerange = ±effort; home is zeros."""
    m, _ = mj
    assert [m.joint(i).name for i in range(m.njnt)] == list(JOINT_NAMES)
    assert [m.actuator(i).name for i in range(m.nu)] == list(JOINT_NAMES)
    for i, j in enumerate(SO100.actuated_joints):
        assert m.actuator_trnid[i][0] == m.joint(j.name).id
        assert m.actuator_ctrlrange[i] == pytest.approx([j.lower, j.upper])
        assert m.jnt_range[m.joint(j.name).id] == pytest.approx([j.lower, j.upper])
        assert m.actuator_forcerange[i] == pytest.approx([-j.effort, j.effort])
        assert m.actuator_gainprm[i][0] > 0 and m.dof_damping[i] > 0 and m.dof_armature[i] > 0
    home = m.key("home")
    assert np.all(home.qpos == 0) and np.all(home.ctrl == 0)
    assert m.camera("wrist").id >= 0 and m.cam_bodyid[m.camera("wrist").id] == m.body("gripper_link").id
    assert m.site_bodyid[m.site("gripperframe").id] == m.body("gripper_link").id
    # the reference masses reach MuJoCo unchanged (inertials, not geom densities)
    assert [m.body_mass[i] for i in range(1, m.nbody)] == pytest.approx(REFERENCE_MASSES)


def test_mjcf_options_for_scenes():
    """A scene can move the base and drop the keyframe (which would clash with its free bodies)."""
    m = mujoco.MjModel.from_xml_string(to_mjcf_robot(base_pos=(0.1, 0.2, 0.75), keyframe=False))
    assert m.nkey == 0
    d = mujoco.MjData(m)
    mujoco.mj_kinematics(m, d)
    assert d.body(BASE_FRAME).xpos == pytest.approx([0.1, 0.2, 0.75])


def test_visual_geoms_never_collide_and_collision_geoms_are_hidden(mj):
    """Visual geoms (group 2) have no contacts; collision geoms (group 3) are not drawn by default."""
    m, _ = mj
    for i in range(m.ngeom):
        if m.geom_group[i] == 2:
            assert m.geom_contype[i] == 0 and m.geom_conaffinity[i] == 0
        else:
            assert m.geom_group[i] == 3 and m.geom_contype[i] == 1
    opt = mujoco.MjvOption()
    assert opt.geomgroup[2] and not opt.geomgroup[3]


def test_jaw_gap_fits_the_duplo_brick(mj):
    """The pad-to-static-jaw gap is ~0 when closed, 31.8 mm at the grasp angle, and wider when open."""
    m, d = mj
    pad, static = m.geom("moving_jaw_pad").id, m.geom("static_jaw").id
    fromto = np.zeros(6)

    def gap(angle):
        d.qpos[:] = 0
        d.qpos[5] = angle
        mujoco.mj_kinematics(m, d)
        return mujoco.mj_geomDistance(m, d, pad, static, 0.2, fromto)

    assert gap(0.0) < 0.002
    assert gap(description.JAW_GRASP_ANGLE) == pytest.approx(description.BRICK_WIDTH, abs=5e-4)
    assert gap(0.8) > 0.05
    # at the grasp angle the pad's face is parallel to the static jaw's (their box x axes agree)
    gap(description.JAW_GRASP_ANGLE)
    pad_normal, static_normal = d.geom_xmat[pad].reshape(3, 3)[:, 0], d.geom_xmat[static].reshape(3, 3)[:, 0]
    assert abs(pad_normal @ static_normal) == pytest.approx(1.0, abs=1e-9)
    # and the brick held there is centred on the tool frame, between the two faces
    face_mid = (fromto[:3] + fromto[3:]) / 2
    tool = d.site("gripperframe")
    across = d.geom_xmat[static].reshape(3, 3)[:, 0]
    assert abs((face_mid - tool.xpos) @ across) < 5e-4


def test_write_description_and_console_script(tmp_path, capsys):
    """write_description writes both files; so100_description prints the URDF or writes with --out."""
    urdf, mjcf = write_description(tmp_path / "a")
    assert urdf.read_text() == to_urdf() and mjcf.read_text() == to_mjcf_robot()
    mujoco.MjModel.from_xml_path(str(mjcf))
    assert description.main([]) == 0
    assert ET.fromstring(capsys.readouterr().out).get("name") == "so100"
    assert description.main(["--out", str(tmp_path / "b")]) == 0
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == ["so100.urdf", "so100.xml"]
