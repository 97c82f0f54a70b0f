"""World state as ROS messages: /tf transforms and the scene's MarkerArray.

Pure conversions (no runtime): they build rosbags message objects from a
:class:`so100_sim.world.World`. ROS quaternions are [x, y, z, w]; MuJoCo's [w, x, y, z].
"""

from __future__ import annotations

from typing import Any

import mujoco
import numpy as np

from so100_common import messages
from so100_common.names import WORLD_FRAME

_MARKER_TYPE = {
    int(mujoco.mjtGeom.mjGEOM_BOX): 1,  # CUBE
    int(mujoco.mjtGeom.mjGEOM_SPHERE): 2,  # SPHERE
    int(mujoco.mjtGeom.mjGEOM_CYLINDER): 3,  # CYLINDER
}


def _pose(pos: Any, quat_wxyz: Any) -> dict[str, Any]:
    w, x, y, z = (float(v) for v in quat_wxyz)
    return {"position": {"x": float(pos[0]), "y": float(pos[1]), "z": float(pos[2])},
            "orientation": {"x": x, "y": y, "z": z, "w": w}}


def body_frame(model: Any, body: int) -> str:
    return WORLD_FRAME if body == 0 else mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_BODY, body)


def relative_pose(data: Any, parent: int, child: int) -> tuple[np.ndarray, np.ndarray]:
    """Pose of ``child`` in ``parent``'s frame (position, quaternion wxyz)."""
    rp = data.xmat[parent].reshape(3, 3)
    pos = rp.T @ (data.xpos[child] - data.xpos[parent])
    q = np.empty(4)
    qinv = np.empty(4)
    mujoco.mju_negQuat(qinv, data.xquat[parent])
    mujoco.mju_mulQuat(q, qinv, data.xquat[child])
    return pos, q


def tf_message(model: Any, data: Any, stamp_ns: int, bodies: list[int] | None = None) -> Any:
    """``tf2_msgs/TFMessage`` with each body relative to its parent body (the world for free bodies)."""
    transforms = []
    for b in bodies if bodies is not None else range(1, model.nbody):
        parent = int(model.body_parentid[b])
        pos, q = relative_pose(data, parent, b)
        pose = _pose(pos, q)
        transforms.append({
            "header": {"frame_id": body_frame(model, parent)},
            "child_frame_id": body_frame(model, b),
            "transform": {"translation": pose["position"], "rotation": pose["orientation"]},
        })
    msg = messages.new_message("tf2_msgs/msg/TFMessage", {"transforms": transforms})
    for t in msg.transforms:
        t.header.stamp = messages.time_msg(stamp_ns)
    return msg


def optical_transform(model: Any, data: Any, camera: int, frame: str, stamp_ns: int) -> Any:
    """``geometry_msgs/TransformStamped`` world → camera optical frame (z forward, x right, y down)."""
    rot = data.cam_xmat[camera].reshape(3, 3) @ np.diag([1.0, -1.0, -1.0])
    q = np.empty(4)
    mujoco.mju_mat2Quat(q, rot.reshape(-1))
    pose = _pose(data.cam_xpos[camera], q)
    msg = messages.new_message("geometry_msgs/msg/TransformStamped", {
        "header": {"frame_id": WORLD_FRAME}, "child_frame_id": frame,
        "transform": {"translation": pose["position"], "rotation": pose["orientation"]},
    })
    msg.header.stamp = messages.time_msg(stamp_ns)
    return msg


def scene_markers(model: Any, data: Any, stamp_ns: int) -> Any:
    """``visualization_msgs/MarkerArray`` of every visible box/sphere/cylinder geom, in its body's frame.

    Markers are ``frame_locked`` so RViz moves them with the bodies' TF; the VR page uses the same.
    """
    markers = []
    for g in range(model.ngeom):
        mtype = _MARKER_TYPE.get(int(model.geom_type[g]))
        if mtype is None or model.geom_rgba[g][3] == 0 or model.geom_group[g] > 2:
            continue
        body = int(model.geom_bodyid[g])
        size = model.geom_size[g]
        if mtype == 1:
            scale = 2 * size
        elif mtype == 2:
            scale = np.full(3, 2 * size[0])
        else:
            scale = np.array([2 * size[0], 2 * size[0], 2 * size[1]])
        mat = model.geom_matid[g]
        rgba = model.mat_rgba[mat] if mat >= 0 else model.geom_rgba[g]
        name = mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_GEOM, g) or f"geom{g}"
        markers.append({
            "header": {"frame_id": body_frame(model, body)},
            "ns": name, "id": g, "type": mtype, "action": 0,
            "pose": _pose(model.geom_pos[g], model.geom_quat[g]),
            "scale": {"x": float(scale[0]), "y": float(scale[1]), "z": float(scale[2])},
            "color": {"r": float(rgba[0]), "g": float(rgba[1]), "b": float(rgba[2]), "a": float(rgba[3])},
            "frame_locked": True,
        })
    msg = messages.new_message("visualization_msgs/msg/MarkerArray", {"markers": markers})
    for m in msg.markers:
        m.header.stamp = messages.time_msg(stamp_ns)
    return msg
