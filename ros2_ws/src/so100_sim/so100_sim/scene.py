"""The world MJCF: table, SO-100, Duplo 2×2 brick (free body), bowl and cameras.

The arm comes from :mod:`so100_sim.description` (the one source of the robot);
this module adds the task's objects around it and merges both into one model.
Cameras: ``overhead`` (a D435-like colour + depth camera on a stand at the table's front-left
corner, looking down at the workspace at about 40°, 42° vertical field of view) and ``wrist``
(from the description). The overhead camera is oblique on purpose: straight above the
workspace, the arm at home and the gripper above the brick hide the brick (a third of the
expert's reach-and-grasp frames show fewer than 3 brick pixels at 96×128; from the corner
the brick is never hidden).

Dependency rule: no ROS runtime, no mujoco; builds XML text (numpy for the camera's pose).
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET

import numpy as np

from so100_sim.description import Origin, look_rpy, mjcf_camera_quat, to_mjcf_robot
from so100_sim.errors import SimError
from so100_sim.task import TaskConfig

BRICK_BODY = "brick"
BRICK_JOINT = "brick_free"
BOWL_BODY = "bowl"
TABLE_GEOM = "table"
OVERHEAD_CAMERA = "overhead"
D435_COLOR_FOVY = 42.0  # degrees (colour sensor ≈ 69° × 42°)
D435_DEPTH_RANGE_M = (0.2, 10.0)
OVERHEAD_CAMERA_OFFSET = (-0.33, -0.37, 0.42)  # m: the camera, from the workspace centre it looks at

_STUD_RADIUS = 0.0047
_STUD_HEIGHT = 0.0045


def _bowl_walls(config: TaskConfig, segments: int = 16) -> str:
    """A bowl as a floor disc and a ring of wall boxes (no mesh needed)."""
    r = config.bowl_inner_radius
    h = config.bowl_rim_height
    wall = 0.004
    half_len = r * math.tan(math.pi / segments) + wall
    geoms = [f'<geom name="bowl_floor" type="cylinder" size="{r + wall:.4f} 0.002" pos="0 0 0.002" material="bowl"/>']
    for i in range(segments):
        a = 2 * math.pi * i / segments
        x, y = (r + wall / 2) * math.cos(a), (r + wall / 2) * math.sin(a)
        geoms.append(
            f'<geom name="bowl_wall{i}" type="box" size="{wall / 2:.4f} {half_len:.4f} {h / 2:.4f}" '
            f'pos="{x:.4f} {y:.4f} {h / 2:.4f}" euler="0 0 {a:.5f}" material="bowl"/>'
        )
    return "\n      ".join(geoms)


def _brick(config: TaskConfig) -> str:
    sx, sy, sz = (s / 2 for s in config.brick_size)
    studs = []
    for i, (dx, dy) in enumerate(((1, 1), (1, -1), (-1, 1), (-1, -1))):
        studs.append(
            f'<geom name="brick_stud{i}" type="cylinder" size="{_STUD_RADIUS} {_STUD_HEIGHT / 2}" '
            f'pos="{dx * sx / 2:.4f} {dy * sy / 2:.4f} {sz + _STUD_HEIGHT / 2:.4f}" material="duplo" '
            f'contype="0" conaffinity="0" mass="0"/>'
        )
    return (
        f'<body name="{BRICK_BODY}" pos="{config.brick_xy[0]} {config.brick_xy[1]} {sz + 0.0005}">\n'
        f'      <freejoint name="{BRICK_JOINT}"/>\n'
        f'      <geom name="brick_body" type="box" size="{sx:.4f} {sy:.4f} {sz:.4f}" mass="0.0055" '
        f'material="duplo" friction="1.2 0.01 0.001" condim="4"/>\n'
        f'      {chr(10).join(studs)}\n'
        f"    </body>"
    )


def scene_xml(config: TaskConfig | None = None, *, timestep: float = 0.002) -> str:
    """The whole world as MJCF text."""
    config = config or TaskConfig()
    bx, by = config.bowl_xy
    centre = np.array([0.5 * (config.brick_xy[0] + bx), 0.5 * (config.brick_xy[1] + by), 0.0])
    eye = centre + OVERHEAD_CAMERA_OFFSET
    forward = centre - eye  # the image's right is level, so its up points toward world +z
    overhead = Origin(tuple(eye), look_rpy(forward=forward, right=np.cross(forward, (0.0, 0.0, 1.0))))
    cam_pos = " ".join(f"{v:.4f}" for v in overhead.xyz)
    cam_quat = " ".join(f"{v:.6f}" for v in mjcf_camera_quat(overhead))
    world = f"""
<mujoco model="so100_pick_place">
  <compiler angle="radian" autolimits="true"/>
  <option timestep="{timestep}" integrator="implicitfast" cone="elliptic" impratio="10"/>
  <visual>
    <global offwidth="1280" offheight="960"/>
    <quality shadowsize="1024"/>
    <map znear="0.01" zfar="50"/>
    <headlight ambient="0.4 0.4 0.4" diffuse="0.6 0.6 0.6" specular="0.1 0.1 0.1"/>
  </visual>
  <asset>
    <material name="table" rgba="0.76 0.66 0.52 1"/>
    <material name="duplo" rgba="0.85 0.12 0.1 1" specular="0.3"/>
    <material name="bowl" rgba="0.2 0.45 0.8 1"/>
    <material name="floor" rgba="0.3 0.3 0.32 1"/>
  </asset>
  <worldbody>
    <light name="sun" directional="true" pos="0 0 2" dir="0 0.2 -1" castshadow="false" diffuse="0.5 0.5 0.5"/>
    <geom name="floor" type="plane" size="2 2 0.1" pos="0 0 -0.75" material="floor" contype="0" conaffinity="0"/>
    <geom name="{TABLE_GEOM}" type="box" size="0.45 0.45 0.02" pos="0 -0.15 -0.02" material="table"
          friction="1 0.005 0.0001"/>
    <camera name="{OVERHEAD_CAMERA}" pos="{cam_pos}" quat="{cam_quat}" fovy="{D435_COLOR_FOVY}"/>
    {_brick(config)}
    <body name="{BOWL_BODY}" pos="{bx} {by} 0">
      {_bowl_walls(config)}
    </body>
  </worldbody>
</mujoco>
"""
    return merge(world, to_mjcf_robot())


_SECTIONS = ("default", "asset", "worldbody", "contact", "equality", "tendon", "actuator", "sensor")


def merge(world_xml: str, robot_xml: str) -> str:
    """Put the robot's sections into the world (its keyframes are dropped: the world adds a brick)."""
    world = ET.fromstring(world_xml)
    robot = ET.fromstring(robot_xml)
    for tag in _SECTIONS:
        src = robot.find(tag)
        if src is None:
            continue
        dst = world.find(tag)
        if dst is None:
            dst = ET.SubElement(world, tag)
        if tag == "default":
            # the robot's default classes nest under the world's (top-level) default
            for child in list(src):
                dst.append(child)
            for key, value in src.attrib.items():
                dst.set(key, value)
        else:
            for child in list(src):
                dst.append(child)
    for tag in ("compiler", "option"):
        if robot.find(tag) is not None and world.find(tag) is None:
            raise SimError(f"robot MJCF sets <{tag}> that the world does not: merge it explicitly")
    return ET.tostring(world, encoding="unicode")
