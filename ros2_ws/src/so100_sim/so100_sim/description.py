"""The SO-100 robot description: one set of dataclasses, written out as URDF and as MJCF.

Every kinematic and inertial number (joint origins, axes, limits, masses, centres of mass,
the ``baseframe`` and ``gripperframe`` frames) is copied from ``shared/reference/so101_kinematics.md``
(TheRobotStudio's ``so101_new_calib.urdf``), whose zero pose is the middle of LeRobot's
calibrated range of each joint (DESIGN.md §3). Everything else is ours and marked as an
estimate where it is defined: primitive geometry sized around each link segment, inertia
diagonals of a box around each link's mass, and the Feetech STS3215 servo figures (effort,
speed) and MuJoCo servo gains.

:data:`SO100` is the robot. :func:`to_urdf` and :func:`to_mjcf_robot` write it;
:func:`write_description` writes both files; ``so100_description`` is the command line.

Dependency rule: imports ``so100_common.names`` and this package's ``errors`` and
``transforms`` only; never the ROS runtime, never MuJoCo (the MJCF is plain text).
"""

from __future__ import annotations

import argparse
import math
import sys
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from so100_common.names import BASE_FRAME, JOINT_NAMES
from so100_sim.errors import DescriptionError
from so100_sim.transforms import quat_from_rpy, quat_mul, rpy_from_matrix

Vec3 = tuple[float, float, float]

# ---------------------------------------------------------------- dataclasses


@dataclass(frozen=True)
class Origin:
    """A pose in the parent frame: ``xyz`` in metres, URDF ``rpy`` in radians (fixed axes X, Y, Z)."""

    xyz: Vec3 = (0.0, 0.0, 0.0)
    rpy: Vec3 = (0.0, 0.0, 0.0)

    def quat(self) -> np.ndarray:
        """The rotation as a MuJoCo quaternion ``[w, x, y, z]``."""
        return quat_from_rpy(*self.rpy)


@dataclass(frozen=True)
class Box:
    """A box of full extents ``size`` (x, y, z) in metres, centred on its origin."""

    size: Vec3


@dataclass(frozen=True)
class Cylinder:
    """A cylinder along its local z axis, centred on its origin."""

    radius: float
    length: float


@dataclass(frozen=True)
class Sphere:
    radius: float


Shape = Box | Cylinder | Sphere


@dataclass(frozen=True)
class Geom:
    """A primitive shape placed in its link's frame.

    ``pad`` marks a fingertip surface: MuJoCo gives it more sliding and torsional friction so
    that a grasped brick does not slip or spin; URDF has no such notion and ignores it.
    """

    name: str
    shape: Shape
    origin: Origin = Origin()
    material: str = "printed"
    pad: bool = False


@dataclass(frozen=True)
class Inertial:
    """Mass (kg), centre of mass (m, link frame) and the inertia diagonal (kg·m²) about it."""

    mass: float
    com: Vec3
    inertia: Vec3

    @classmethod
    def of_box(cls, mass: float, com: Vec3, size: Vec3) -> Inertial:
        """Inertia of a solid box of full extents ``size`` with the given mass, axes along the link's."""
        x, y, z = size
        return cls(mass, com, (mass * (y * y + z * z) / 12, mass * (x * x + z * z) / 12, mass * (x * x + y * y) / 12))

    @classmethod
    def of_cylinder(cls, mass: float, com: Vec3, radius: float, length: float) -> Inertial:
        """Inertia of a solid cylinder along the link's z axis."""
        side = mass * (3 * radius * radius + length * length) / 12
        return cls(mass, com, (side, side, mass * radius * radius / 2))


@dataclass(frozen=True)
class Link:
    """A rigid link. ``inertial=None`` makes a zero-mass frame (URDF link, MuJoCo site)."""

    name: str
    inertial: Inertial | None = None
    visuals: tuple[Geom, ...] = ()
    collisions: tuple[Geom, ...] = ()


@dataclass(frozen=True)
class Servo:
    """How a joint is driven and what resists it; one MuJoCo default class per servo.

    The numbers are ours (not from the reference): a stiff position servo that holds the arm
    against gravity within about half a degree and settles a 0.5 rad step within a degree in
    0.3 s; passive damping = effort / no-load speed, so a servo pushing at its force limit
    moves at about its rated speed.
    """

    name: str  # MuJoCo default class name
    kp: float  # N·m/rad, position gain of the MuJoCo position actuator
    kv: float  # N·m·s/rad, velocity gain of the actuator (inside the force limit, like a servo's D term)
    damping: float  # N·m·s/rad, passive joint damping (gearbox; acts with torque off too)
    armature: float  # kg·m², reflected rotor inertia of the 1:345 gearbox (estimate)
    frictionloss: float  # N·m, dry friction of the gearbox (estimate)


@dataclass(frozen=True)
class Joint:
    """A joint: ``revolute`` about ``axis`` in the child frame, or ``fixed``.

    ``origin`` is the child frame in the parent frame (URDF convention); limits in radians,
    ``effort`` in N·m, ``velocity`` in rad/s.
    """

    name: str
    parent: str
    child: str
    origin: Origin
    type: str = "revolute"
    axis: Vec3 = (0.0, 0.0, 1.0)
    lower: float = 0.0
    upper: float = 0.0
    effort: float = 0.0
    velocity: float = 0.0
    servo: Servo | None = None


@dataclass(frozen=True)
class Camera:
    """A camera: ``origin`` is its optical frame (z forward, x right, y down, REP-103) in ``parent``.

    The URDF gets a link ``<name>_optical_frame``; the MJCF gets a ``<camera name=name>``
    (MuJoCo cameras look along their -z with y up, i.e. the optical frame turned 180° about x).
    """

    name: str
    parent: str
    origin: Origin
    fovy: float  # degrees, vertical field of view

    @property
    def frame(self) -> str:
        return f"{self.name}_optical_frame"


@dataclass(frozen=True)
class Robot:
    """A kinematic tree of links and joints, rooted at ``links[0]``; validated on construction."""

    name: str
    links: tuple[Link, ...]
    joints: tuple[Joint, ...]
    materials: dict[str, tuple[float, float, float, float]]
    cameras: tuple[Camera, ...] = ()
    _by_name: dict[str, Link] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        names = [link.name for link in self.links]
        if len(set(names)) != len(names):
            raise DescriptionError(f"duplicate link names in {names}")
        object.__setattr__(self, "_by_name", {link.name: link for link in self.links})
        children = set()
        for j in self.joints:
            for end in (j.parent, j.child):
                if end not in self._by_name:
                    raise DescriptionError(f"joint {j.name!r} names unknown link {end!r}; links are {names}")
            if j.child in children or j.child == self.links[0].name:
                raise DescriptionError(f"link {j.child!r} has two parents (joint {j.name!r})")
            children.add(j.child)
            if j.type == "revolute":
                if not j.lower < j.upper:
                    raise DescriptionError(f"joint {j.name!r}: lower {j.lower} is not below upper {j.upper}")
                if j.servo is None:
                    raise DescriptionError(f"revolute joint {j.name!r} has no servo")
            elif j.type != "fixed":
                raise DescriptionError(f"joint {j.name!r}: type {j.type!r} is neither revolute nor fixed")
        if set(names[1:]) != children:
            raise DescriptionError(f"links without a parent joint: {sorted(set(names[1:]) - children)}")
        for link in self.links:
            for g in (*link.visuals, *link.collisions):
                if g.material not in self.materials:
                    raise DescriptionError(f"geom {g.name!r} of {link.name!r} uses unknown material {g.material!r}")
        for cam in self.cameras:
            if cam.parent not in self._by_name:
                raise DescriptionError(f"camera {cam.name!r} is mounted on unknown link {cam.parent!r}")

    def link(self, name: str) -> Link:
        return self._by_name[name]

    @property
    def root(self) -> Link:
        return self.links[0]

    @property
    def actuated_joints(self) -> tuple[Joint, ...]:
        """The revolute joints, in declaration order (JOINT_NAMES order for the SO-100)."""
        return tuple(j for j in self.joints if j.type == "revolute")

    def child_joints(self, link: str) -> tuple[Joint, ...]:
        return tuple(j for j in self.joints if j.parent == link)


# ---------------------------------------------------------------- geometry helpers


def segment(name: str, a: Sequence[float], b: Sequence[float], radius: float, material: str = "printed") -> Geom:
    """A cylinder of ``radius`` from point ``a`` to point ``b`` (link frame)."""
    pa, pb = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    d = pb - pa
    length = float(np.linalg.norm(d))
    z = d / length
    x = np.cross((0.0, 1.0, 0.0) if abs(z[1]) < 0.9 else (1.0, 0.0, 0.0), z)
    x /= np.linalg.norm(x)
    rot = np.column_stack((x, np.cross(z, x), z))
    return Geom(name, Cylinder(radius, length), Origin(_r3((pa + pb) / 2), _r3(rpy_from_matrix(rot))), material)


def box(name: str, center: Vec3, size: Vec3, material: str = "printed", rpy: Vec3 = (0.0, 0.0, 0.0), *,
        pad: bool = False) -> Geom:
    """A box of full extents ``size`` centred at ``center`` (link frame)."""
    return Geom(name, Box(size), Origin(center, rpy), material, pad)


def _r3(v: Sequence[float], nd: int = 7) -> Vec3:
    return (round(float(v[0]), nd), round(float(v[1]), nd), round(float(v[2]), nd))


def look_rpy(forward: Sequence[float], right: Sequence[float]) -> Vec3:
    """URDF rpy of an optical frame with z along ``forward`` and x along ``right`` (made orthogonal)."""
    z = np.asarray(forward, dtype=float)
    z /= np.linalg.norm(z)
    x = np.asarray(right, dtype=float)
    x = x - (x @ z) * z
    x /= np.linalg.norm(x)
    return _r3(rpy_from_matrix(np.column_stack((x, np.cross(z, x), z))))


def mjcf_camera_quat(optical: Origin) -> np.ndarray:
    """The MJCF ``<camera quat>`` of an optical frame: MuJoCo looks along -z with y up, i.e. the
    optical frame (z forward, y down) turned 180° about its x axis."""
    return quat_mul(optical.quat(), (0.0, 1.0, 0.0, 0.0))


# ---------------------------------------------------------------- the SO-100

MATERIALS: dict[str, tuple[float, float, float, float]] = {
    "printed": (0.95, 0.75, 0.15, 1.0),  # the common yellow PLA print
    "servo": (0.12, 0.12, 0.12, 1.0),  # STS3215 housings
    "jaw": (0.85, 0.35, 0.1, 1.0),  # fingertips, coloured apart so they stand out in camera images
    "camera": (0.05, 0.05, 0.05, 1.0),
}

# Feetech STS3215 (the follower's servo on every joint), 7.4 V figures from Feetech's datasheet,
# NOT from the reference file: stall torque 19.5 kg·cm = 1.9 N·m, no-load speed 0.222 s/60° = 4.7 rad/s.
STS3215_EFFORT = 1.9
STS3215_VELOCITY = 4.7
# LeRobot's SO follower writes Max_Torque_Limit = 500 (50 %) to the gripper servo "to avoid burnout".
JAW_EFFORT = STS3215_EFFORT * 0.5

ARM_SERVO = Servo("sts3215_arm", kp=60.0, kv=1.5, damping=round(STS3215_EFFORT / STS3215_VELOCITY, 3),
                  armature=0.01, frictionloss=0.03)
JAW_SERVO = Servo("sts3215_jaw", kp=15.0, kv=0.2, damping=round(JAW_EFFORT / STS3215_VELOCITY, 3),
                  armature=0.002, frictionloss=0.01)

# The Duplo 2×2 brick the task grasps (reference file): 31.8 mm wide.
BRICK_WIDTH = 0.0318

# Tool frame in the gripper link (reference): between the jaws, near the fingertips.
GRIPPERFRAME = Origin((-0.0079, -0.000218121, -0.0981274), (1.5708, 0.0, 1.5708))
# Moving-jaw joint origin in the gripper link (reference).
JAW_ORIGIN = Origin((0.0202, 0.0188, -0.0234), (1.5708, 0.0, 0.0))

# Jaw design (ours): the static jaw's inner face and the moving jaw's pad lie BRICK_WIDTH/2 either
# side of the tool frame when the jaw is at JAW_GRASP_ANGLE, the pad then parallel to the static
# face, so a grasped brick is centred on ``gripperframe``. Closing further, the pad's tip meets
# the static jaw near 0 rad; opening toward the upper limit gives a gap of several centimetres.
JAW_GRASP_ANGLE = 0.37  # rad
_PAD_THICKNESS = 0.006
_PAD_WIDTH = 0.022  # across the jaw (gripper y)
_PAD_SPAN = (-0.052, -0.088)  # along the jaw from its pivot (jaw y; the gripper's -z)
_JAW_MID_Z = 0.0188  # jaw z of the gripper's mid-plane (gripper y = 0)


def _moving_jaw_geoms() -> tuple[Geom, ...]:
    """Pad and arm of the moving jaw in its own frame (jaw x = gripper x, jaw y = gripper z)."""
    # Pad in the "grasp" frame (the jaw frame turned by JAW_GRASP_ANGLE): inner face at gripper
    # x = tool x + BRICK_WIDTH/2, i.e. jaw x = that - the pivot's gripper x.
    face_x = GRIPPERFRAME.xyz[0] + BRICK_WIDTH / 2 - JAW_ORIGIN.xyz[0]
    y0, y1 = _PAD_SPAN
    centre_grasp = np.array([face_x + _PAD_THICKNESS / 2, (y0 + y1) / 2, _JAW_MID_Z])
    c, s = math.cos(JAW_GRASP_ANGLE), math.sin(JAW_GRASP_ANGLE)
    back = np.array([[c, s, 0.0], [-s, c, 0.0], [0.0, 0.0, 1.0]])  # Rz(-grasp angle)
    pad = box(
        "moving_jaw_pad",
        _r3(back @ centre_grasp),
        (_PAD_THICKNESS, abs(y1 - y0), _PAD_WIDTH),
        "jaw",
        rpy=(0.0, 0.0, -JAW_GRASP_ANGLE),
        pad=True,
    )
    # Arm from the servo horn at the pivot to the top of the pad, on the outer side of the pad.
    top_outer = back @ np.array([face_x + _PAD_THICKNESS, y0 + 0.004, _JAW_MID_Z])
    arm = segment("moving_jaw_arm", (0.004, -0.004, _JAW_MID_Z), top_outer, 0.006)
    return pad, arm


_STATIC_FACE_X = GRIPPERFRAME.xyz[0] - BRICK_WIDTH / 2  # gripper x of the static jaw's inner face
_STATIC_JAW = box("static_jaw", (round(_STATIC_FACE_X - 0.004, 7), 0.0, -0.079), (0.008, _PAD_WIDTH, 0.066), "jaw",
                  pad=True)

# Wrist camera (ours): on the side of the gripper body, level with the gap between the jaws and
# looking down the fingers to a point just beyond the tool frame, so both fingertips and what lies
# between them are in view; image "down" is the static-jaw side (world down at the zero pose).
_WRIST_CAMERA_POS: Vec3 = (-0.008, -0.03, -0.052)
WRIST_CAMERA = Camera(
    "wrist",
    "gripper_link",
    Origin(_WRIST_CAMERA_POS, look_rpy(forward=(0.0, 0.03, -0.053), right=(0.0, -1.0, 0.0))),
    fovy=65.0,  # a typical small USB wrist camera (estimate)
)


def _links() -> tuple[Link, ...]:
    # Geometry is ours: boxes and cylinders around each segment between joint origins, in the
    # link frames of the reference; each arm link's mid-plane is 18 mm off its joint frame along
    # the joint axis, as the reference's centres of mass show. Inertia: a box around the link.
    arm_z = 0.0183
    base_geoms = (
        box("base_plate", (0.0208, 0.0, 0.004), (0.09, 0.11, 0.008)),
        box("base_housing", (0.0208, -0.008, 0.05), (0.056, 0.075, 0.084), "servo"),
    )
    shoulder_geoms = (box("shoulder_bracket", (-0.024, -0.004, -0.031), (0.066, 0.046, 0.052)),)
    upper_geoms = (
        segment("upper_arm_beam", (0.0, 0.0, arm_z), (-0.11257, -0.028, arm_z), 0.015),
        # the elbow servo lies along the beam, which runs 14° off the link's -x axis
        box("elbow_servo", (-0.098, -0.024, arm_z), (0.036, 0.028, 0.034), "servo",
            rpy=(0.0, 0.0, round(math.atan2(0.028, 0.11257), 4))),
    )
    lower_geoms = (
        segment("lower_arm_beam", (0.0, 0.0, arm_z), (-0.1349, 0.0052, arm_z), 0.014),
        box("wrist_flex_servo", (-0.118, 0.004, arm_z), (0.036, 0.028, 0.034), "servo"),
    )
    wrist_geoms = (box("wrist_roll_servo", (0.0, -0.0315, 0.0181), (0.032, 0.053, 0.04), "servo"),)
    cam = WRIST_CAMERA.origin.xyz
    gripper_geoms = (
        box("gripper_body", (-0.0035, 0.0, -0.025), (0.057, 0.04, 0.046)),
        _STATIC_JAW,
        box("wrist_camera_housing", (cam[0], cam[1] - 0.006, cam[2] + 0.008), (0.032, 0.012, 0.032), "camera"),
    )
    jaw_geoms = _moving_jaw_geoms()
    return (
        Link(BASE_FRAME, Inertial.of_box(0.147, (0.020739, 0.00204287, 0.065966), (0.07, 0.09, 0.09)), base_geoms, base_geoms),
        Link("shoulder_link", Inertial.of_box(0.100006, (-0.0307604, -1.67e-05, -0.0252713), (0.06, 0.045, 0.05)),
             shoulder_geoms, shoulder_geoms),
        Link("upper_arm_link", Inertial.of_box(0.103, (-0.0898471, -0.00838224, 0.0184089), (0.12, 0.035, 0.035)),
             upper_geoms, upper_geoms),
        Link("lower_arm_link", Inertial.of_box(0.104, (-0.0980701, 0.00324376, 0.0182831), (0.14, 0.03, 0.035)),
             lower_geoms, lower_geoms),
        Link("wrist_link", Inertial.of_box(0.079, (-0.000103312, -0.0386143, 0.0281156), (0.032, 0.05, 0.04)),
             wrist_geoms, wrist_geoms),
        Link("gripper_link", Inertial.of_box(0.087, (0.000213627, 0.000245138, -0.025187), (0.05, 0.04, 0.05)),
             gripper_geoms, gripper_geoms),
        Link("moving_jaw_link", Inertial.of_box(0.012, (-0.00157495, -0.0300244, 0.0192755), (0.014, 0.07, 0.02)),
             jaw_geoms, jaw_geoms),
        Link("baseframe"),
        Link("gripperframe"),
    )


def _joints() -> tuple[Joint, ...]:
    def rev(name: str, parent: str, child: str, xyz: Vec3, rpy: Vec3, lim: float | tuple[float, float],
            servo: Servo = ARM_SERVO, effort: float = STS3215_EFFORT) -> Joint:
        lower, upper = (-lim, lim) if isinstance(lim, float) else lim
        return Joint(name, parent, child, Origin(xyz, rpy), lower=lower, upper=upper,
                     effort=effort, velocity=STS3215_VELOCITY, servo=servo)

    pan, lift, elbow, wflex, roll, jaw = JOINT_NAMES
    return (
        rev(pan, BASE_FRAME, "shoulder_link", (0.0207909, -0.0230745, 0.0948817), (-3.14159, 0.0, 1.5708), 1.91986),
        rev(lift, "shoulder_link", "upper_arm_link", (-0.0303992, -0.0182778, -0.0542), (-1.5708, -1.5708, 0.0),
            1.74533),
        rev(elbow, "upper_arm_link", "lower_arm_link", (-0.11257, -0.028, 0.0), (0.0, 0.0, 1.5708), 1.69),
        rev(wflex, "lower_arm_link", "wrist_link", (-0.1349, 0.0052, 0.0), (0.0, 0.0, -1.5708), 1.65806),
        rev(roll, "wrist_link", "gripper_link", (0.0, -0.0611, 0.0181), (1.5708, 0.0, 3.14159), 2.79253),
        rev(jaw, "gripper_link", "moving_jaw_link", JAW_ORIGIN.xyz, JAW_ORIGIN.rpy, (-0.174533, 1.74533), JAW_SERVO,
            JAW_EFFORT),
        Joint("baseframe_joint", BASE_FRAME, "baseframe", Origin((0.020791, 0.0157608, 0.0324817)), type="fixed"),
        Joint("gripperframe_joint", "gripper_link", "gripperframe", GRIPPERFRAME, type="fixed"),
    )


SO100 = Robot("so100", _links(), _joints(), MATERIALS, (WRIST_CAMERA,))

#: Names of the MuJoCo sites at the reference's fixed frames.
BASEFRAME_SITE = "baseframe"
GRIPPERFRAME_SITE = "gripperframe"

# ---------------------------------------------------------------- writers


def _f(v: float) -> str:
    """A float as text with 12 significant digits (far below any tolerance), -0 written as 0."""
    text = f"{float(v):.12g}"
    return "0" if text == "-0" else text


def _fs(vs: Sequence[float]) -> str:
    return " ".join(_f(v) for v in vs)


def _pretty(root: ET.Element) -> str:
    ET.indent(root, space="  ")
    return ET.tostring(root, encoding="unicode") + "\n"


def _urdf_geometry(parent: ET.Element, shape: Shape) -> None:
    g = ET.SubElement(parent, "geometry")
    if isinstance(shape, Box):
        ET.SubElement(g, "box", size=_fs(shape.size))
    elif isinstance(shape, Cylinder):
        ET.SubElement(g, "cylinder", radius=_f(shape.radius), length=_f(shape.length))
    else:
        ET.SubElement(g, "sphere", radius=_f(shape.radius))


def _urdf_origin(parent: ET.Element, origin: Origin) -> None:
    ET.SubElement(parent, "origin", xyz=_fs(origin.xyz), rpy=_fs(origin.rpy))


def to_urdf(robot: Robot = SO100) -> str:
    """URDF XML of ``robot``: links with inertials, primitive visuals and collisions, materials, joints.

    Fixed frames (``baseframe``, ``gripperframe``, camera optical frames) are zero-mass links on
    fixed joints, so robot_state_publisher broadcasts them.
    """
    root = ET.Element("robot", name=robot.name)
    root.append(ET.Comment(" generated by so100_sim.description; numbers from shared/reference/so101_kinematics.md "))
    for name, rgba in robot.materials.items():
        ET.SubElement(ET.SubElement(root, "material", name=name), "color", rgba=_fs(rgba))
    for link in robot.links:
        el = ET.SubElement(root, "link", name=link.name)
        if link.inertial is not None:
            i = link.inertial
            inertial = ET.SubElement(el, "inertial")
            ET.SubElement(inertial, "origin", xyz=_fs(i.com), rpy="0 0 0")
            ET.SubElement(inertial, "mass", value=_f(i.mass))
            ET.SubElement(inertial, "inertia", ixx=_f(i.inertia[0]), ixy="0", ixz="0", iyy=_f(i.inertia[1]), iyz="0",
                          izz=_f(i.inertia[2]))
        for tag, geoms in (("visual", link.visuals), ("collision", link.collisions)):
            for g in geoms:
                ge = ET.SubElement(el, tag, name=g.name)
                _urdf_origin(ge, g.origin)
                _urdf_geometry(ge, g.shape)
                if tag == "visual":
                    ET.SubElement(ge, "material", name=g.material)
    for cam in robot.cameras:
        ET.SubElement(root, "link", name=cam.frame)
    for j in robot.joints:
        el = ET.SubElement(root, "joint", name=j.name, type=j.type)
        ET.SubElement(el, "parent", link=j.parent)
        ET.SubElement(el, "child", link=j.child)
        _urdf_origin(el, j.origin)
        if j.type == "revolute":
            ET.SubElement(el, "axis", xyz=_fs(j.axis))
            ET.SubElement(el, "limit", lower=_f(j.lower), upper=_f(j.upper), effort=_f(j.effort),
                          velocity=_f(j.velocity))
            assert j.servo is not None
            ET.SubElement(el, "dynamics", damping=_f(j.servo.damping), friction=_f(j.servo.frictionloss))
    for cam in robot.cameras:
        el = ET.SubElement(root, "joint", name=f"{cam.frame}_joint", type="fixed")
        ET.SubElement(el, "parent", link=cam.parent)
        ET.SubElement(el, "child", link=cam.frame)
        _urdf_origin(el, cam.origin)
    return '<?xml version="1.0"?>\n' + _pretty(root)


def _mjcf_geom(parent: ET.Element, g: Geom, cls: str) -> None:
    attrs = {"name": f"{g.name}_{cls}" if cls == "visual" else g.name, "class": cls,
             "pos": _fs(g.origin.xyz)}
    if any(g.origin.rpy):
        attrs["quat"] = _fs(g.origin.quat())
    if isinstance(g.shape, Box):
        attrs["type"], attrs["size"] = "box", _fs(np.asarray(g.shape.size) / 2)
    elif isinstance(g.shape, Cylinder):
        attrs["type"], attrs["size"] = "cylinder", _fs((g.shape.radius, g.shape.length / 2))
    else:
        attrs["type"], attrs["size"] = "sphere", _f(g.shape.radius)
    if cls == "visual":
        attrs["material"] = g.material
    elif g.pad:
        attrs["class"] = "pad"
    ET.SubElement(parent, "geom", attrs)


def to_mjcf_robot(
    robot: Robot = SO100,
    *,
    base_pos: Sequence[float] = (0.0, 0.0, 0.0),
    base_quat: Sequence[float] = (1.0, 0.0, 0.0, 0.0),
    keyframe: bool = True,
) -> str:
    """MJCF of the arm alone: nested bodies, hinge joints, position actuators, sites, wrist camera.

    Args:
        base_pos, base_quat: where the base link sits in the world (``[w, x, y, z]``).
        keyframe: write the ``home`` keyframe (all joints 0). A scene that adds free bodies must
            leave it out (an MJCF keyframe lists every qpos) and write its own.

    Body ``pos``/``quat`` are each joint's origin (rpy → quaternion); the joint sits at the body
    frame, about local z. Actuators are named after their joints, with ``ctrlrange`` = the joint
    range and ``forcerange`` = ± the joint's effort. Collisions between adjacent links are
    excluded; visual geoms (group 2) never collide, collision geoms (group 3) are not drawn by
    default, so a rendered frame draws each link once.
    """
    root = ET.Element("mujoco", model=robot.name)
    root.append(ET.Comment(" generated by so100_sim.description; numbers from shared/reference/so101_kinematics.md "))
    ET.SubElement(root, "compiler", angle="radian", autolimits="true")
    # elliptic friction cones with impratio 10: grasped objects do not creep out of the jaws, as they
    # do with the default pyramidal cones (about 1 mm/s for a brick held from the sides)
    ET.SubElement(root, "option", timestep="0.002", integrator="implicitfast", cone="elliptic", impratio="10")
    visual = ET.SubElement(root, "visual")
    # cheap rendering: no multisampling, a small shadow map (only lights that cast shadows use it)
    ET.SubElement(visual, "quality", shadowsize="1024", offsamples="0")
    ET.SubElement(visual, "global", offwidth="640", offheight="480")

    default = ET.SubElement(ET.SubElement(root, "default"), "default", {"class": robot.name})
    ET.SubElement(default, "joint", axis="0 0 1")
    ET.SubElement(default, "site", group="4", size="0.004", rgba="1 0 0 1")
    d = ET.SubElement(default, "default", {"class": "visual"})
    ET.SubElement(d, "geom", contype="0", conaffinity="0", group="2", density="0")
    d = ET.SubElement(default, "default", {"class": "collision"})
    ET.SubElement(d, "geom", group="3", density="0", rgba="0.5 0.5 0.8 0.4")
    dp = ET.SubElement(d, "default", {"class": "pad"})
    # condim 4 adds torsional friction: a brick held by its sides does not spin about the jaw normal.
    # MuJoCo's soft contacts are mass-normalised, so a 1 N squeeze on a few-gram brick sinks the
    # default contact (solref 0.02) by millimetres: the pads are stiffer (time constant 2 timesteps,
    # impedance up to 0.99) and, by priority, their parameters win over the object's.
    ET.SubElement(dp, "geom", condim="4", friction="1.5 0.02 0.0001", priority="1", solref="0.004 1",
                  solimp="0.95 0.99 0.001")
    servos = {j.servo.name: j.servo for j in robot.actuated_joints if j.servo is not None}
    for s in servos.values():
        d = ET.SubElement(default, "default", {"class": s.name})
        ET.SubElement(d, "joint", damping=_f(s.damping), armature=_f(s.armature), frictionloss=_f(s.frictionloss))
        ET.SubElement(d, "position", kp=_f(s.kp), kv=_f(s.kv))

    asset = ET.SubElement(root, "asset")
    for name, rgba in robot.materials.items():
        ET.SubElement(asset, "material", name=name, rgba=_fs(rgba))

    world = ET.SubElement(root, "worldbody")
    frames = {j.child: j for j in robot.joints if j.type == "fixed" and robot.link(j.child).inertial is None}

    def add_body(parent: ET.Element, link: Link, joint: Joint | None) -> None:
        if joint is None:
            attrs = {"name": link.name, "childclass": robot.name, "pos": _fs(base_pos)}
            if tuple(base_quat) != (1.0, 0.0, 0.0, 0.0):
                attrs["quat"] = _fs(base_quat)
        else:
            attrs = {"name": link.name, "pos": _fs(joint.origin.xyz), "quat": _fs(joint.origin.quat())}
        body = ET.SubElement(parent, "body", attrs)
        if link.inertial is not None:
            i = link.inertial
            ET.SubElement(body, "inertial", pos=_fs(i.com), mass=_f(i.mass), diaginertia=_fs(i.inertia))
        if joint is not None and joint.type == "revolute":
            assert joint.servo is not None
            ET.SubElement(body, "joint", {"name": joint.name, "class": joint.servo.name, "axis": _fs(joint.axis),
                                          "range": _fs((joint.lower, joint.upper))})
        for g in link.visuals:
            _mjcf_geom(body, g, "visual")
        for g in link.collisions:
            _mjcf_geom(body, g, "collision")
        for fj in robot.child_joints(link.name):
            if fj.child in frames:
                site = {"name": fj.child, "pos": _fs(fj.origin.xyz)}
                if any(fj.origin.rpy):
                    site["quat"] = _fs(fj.origin.quat())
                ET.SubElement(body, "site", site)
        for cam in robot.cameras:
            if cam.parent == link.name:
                ET.SubElement(body, "camera", name=cam.name, pos=_fs(cam.origin.xyz),
                              quat=_fs(mjcf_camera_quat(cam.origin)), fovy=_f(cam.fovy))
        for cj in robot.child_joints(link.name):
            if cj.child not in frames:
                add_body(body, robot.link(cj.child), cj)

    add_body(world, robot.root, None)

    contact = ET.SubElement(root, "contact")
    for j in robot.joints:
        if j.child not in frames:
            ET.SubElement(contact, "exclude", name=f"{j.parent}__{j.child}", body1=j.parent, body2=j.child)

    actuator = ET.SubElement(root, "actuator")
    for j in robot.actuated_joints:
        assert j.servo is not None
        ET.SubElement(actuator, "position", {"name": j.name, "joint": j.name, "class": j.servo.name,
                                             "ctrlrange": _fs((j.lower, j.upper)),
                                             "forcerange": _fs((-j.effort, j.effort))})
    if keyframe:
        n = len(robot.actuated_joints)
        zeros = " ".join(["0"] * n)
        ET.SubElement(ET.SubElement(root, "keyframe"), "key", name="home", qpos=zeros, ctrl=zeros)
    return _pretty(root)


def write_description(out_dir: str | Path, robot: Robot = SO100) -> tuple[Path, Path]:
    """Write ``so100.urdf`` and ``so100.xml`` (the MJCF robot) into ``out_dir``; return their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    urdf, mjcf = out / f"{robot.name}.urdf", out / f"{robot.name}.xml"
    urdf.write_text(to_urdf(robot))
    mjcf.write_text(to_mjcf_robot(robot))
    return urdf, mjcf


def main(argv: list[str] | None = None) -> int:
    """``so100_description``: print the URDF, or write ``so100.urdf`` and ``so100.xml`` with ``--out DIR``."""
    parser = argparse.ArgumentParser(prog="so100_description", description=main.__doc__)
    parser.add_argument("--out", metavar="DIR", help="write so100.urdf and so100.xml into DIR instead of printing")
    args = parser.parse_args(argv)
    if args.out is None:
        sys.stdout.write(to_urdf())
        return 0
    try:
        for path in write_description(args.out):
            print(path)
    except OSError as e:
        print(f"so100_description: cannot write to {args.out}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
