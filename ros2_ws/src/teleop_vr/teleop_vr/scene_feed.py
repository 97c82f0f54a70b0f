"""The scene as JSON for the page: geometry from the MarkerArray and the URDF, world poses from /tf.

- :func:`markers_to_json` — box/sphere/cylinder markers, each in its frame (``frame_locked``).
- :func:`urdf_visuals` — the URDF's primitive visuals per link; the page draws them for links
  the markers do not cover (a real follower with robot_state_publisher has no markers).
- :class:`TfTree` — parent/child transforms from ``/tf`` composed into poses in the root frame,
  the only thing that streams.
- :func:`jpeg` — an ``rgb8`` frame as a small JPEG for the camera panels.

Poses are 7-vectors ``[x, y, z, qw, qx, qy, qz]`` (metres; the project's quaternion order, as in
:mod:`so100_sim.transforms`), in the ``world`` frame; the page's JSON orders quaternions
``[x, y, z, w]`` (three.js), converted only where JSON is written (:func:`page_pose`).

Dependency rule: numpy, Pillow, the standard library and ``so100_sim.transforms``; never the ROS runtime.
"""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from typing import Any

import numpy as np

from so100_sim.transforms import quat_conj, quat_from_rpy, quat_mul
from teleop_vr.errors import ProtocolError

_MARKER_TYPES = {1: "box", 2: "sphere", 3: "cylinder"}  # visualization_msgs CUBE, SPHERE, CYLINDER
IDENTITY = (0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0)


def _r(x: float) -> float:
    return round(float(x), 5)


def _rotate(q: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Rotate ``v`` by the ``[w, x, y, z]`` quaternion ``q``."""
    w, u = q[0], q[1:]
    return v + 2.0 * np.cross(u, np.cross(u, v) + w * v)


def compose(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pose ``a ∘ b`` (both 7-vectors): ``b`` expressed in ``a``'s parent frame."""
    return np.concatenate((a[:3] + _rotate(a[3:], b[:3]), quat_mul(a[3:], b[3:])))


def inverse(a: np.ndarray) -> np.ndarray:
    qi = quat_conj(a[3:])
    return np.concatenate((-_rotate(qi, a[:3]), qi))


def page_pose(p: Any) -> list[float]:
    """A 7-vector as the page's JSON: ``[x, y, z, qx, qy, qz, qw]``, rounded."""
    return [_r(p[0]), _r(p[1]), _r(p[2]), _r(p[4]), _r(p[5]), _r(p[6]), _r(p[3])]


def _pose7(pose: Any) -> list[float]:
    p, o = pose.position, pose.orientation
    return page_pose([p.x, p.y, p.z, o.w, o.x, o.y, o.z])


def markers_to_json(msg: Any) -> list[dict[str, Any]]:
    """The drawable markers of a ``visualization_msgs/MarkerArray`` (ADD actions of box/sphere/cylinder)."""
    out = []
    for m in msg.markers:
        kind = _MARKER_TYPES.get(int(m.type))
        if kind is None or int(m.action) != 0:
            continue
        out.append(
            {
                "frame": m.header.frame_id,
                "name": f"{m.ns}/{m.id}",
                "type": kind,
                "pose": _pose7(m.pose),
                "scale": [_r(m.scale.x), _r(m.scale.y), _r(m.scale.z)],
                "color": [_r(m.color.r), _r(m.color.g), _r(m.color.b), _r(m.color.a)],
            }
        )
    return out


def _floats(text: str | None, n: int, default: float = 0.0) -> list[float]:
    if not text:
        return [default] * n
    vals = [float(v) for v in text.split()]
    if len(vals) != n:
        raise ProtocolError(f"URDF attribute {text!r} should have {n} numbers")
    return vals


def urdf_visuals(urdf: str) -> list[dict[str, Any]]:
    """Box, cylinder and sphere visuals of every link, in the link's frame (meshes are skipped)."""
    try:
        root = ET.fromstring(urdf)
    except ET.ParseError as e:
        raise ProtocolError(f"/robot_description is not XML: {e}") from e
    colors = {
        m.get("name"): _floats(m.find("color").get("rgba"), 4, 1.0)
        for m in root.iter("material")
        if m.find("color") is not None
    }
    out = []
    for link in root.iter("link"):
        for i, vis in enumerate(link.findall("visual")):
            geom = vis.find("geometry")
            if geom is None:
                continue
            origin = vis.find("origin")
            xyz = _floats(origin.get("xyz") if origin is not None else None, 3)
            rpy = _floats(origin.get("rpy") if origin is not None else None, 3)
            mat = vis.find("material")
            color = [0.7, 0.7, 0.7, 1.0]
            if mat is not None:
                c = mat.find("color")
                color = _floats(c.get("rgba"), 4, 1.0) if c is not None else colors.get(mat.get("name"), color)
            if (g := geom.find("box")) is not None:
                kind, scale = "box", _floats(g.get("size"), 3)
            elif (g := geom.find("cylinder")) is not None:
                rad, length = float(g.get("radius", 0)), float(g.get("length", 0))
                kind, scale = "cylinder", [2 * rad, 2 * rad, length]
            elif (g := geom.find("sphere")) is not None:
                d = 2 * float(g.get("radius", 0))
                kind, scale = "sphere", [d, d, d]
            else:
                continue
            out.append(
                {
                    "frame": link.get("name"),
                    "name": f"{link.get('name')}/visual{i}",
                    "type": kind,
                    "pose": page_pose([*xyz, *quat_from_rpy(*rpy)]),
                    "scale": [_r(s) for s in scale],
                    "color": [_r(c) for c in color],
                }
            )
    return out


def scene_geometry(markers: list[dict[str, Any]], urdf: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Markers, plus the URDF's visuals for links no marker is attached to."""
    covered = {m["frame"] for m in markers}
    return markers + [v for v in urdf if v["frame"] not in covered]


class TfTree:
    """Latest parent->child transforms, composed into poses in ``root``'s frame."""

    def __init__(self, root: str = "world") -> None:
        self.root = root
        self._edges: dict[str, tuple[str, np.ndarray]] = {}

    def update(self, msg: Any) -> None:
        """Take a ``tf2_msgs/TFMessage``; non-finite transforms are skipped."""
        for t in msg.transforms:
            tr, rot = t.transform.translation, t.transform.rotation
            pose = np.array([tr.x, tr.y, tr.z, rot.w, rot.x, rot.y, rot.z], float)
            norm = float(np.linalg.norm(pose[3:]))
            if not np.all(np.isfinite(pose)) or norm < 1e-9 or t.child_frame_id == t.header.frame_id:
                continue
            pose[3:] /= norm
            self._edges[t.child_frame_id] = (t.header.frame_id, pose)

    def poses(self) -> dict[str, np.ndarray]:
        """Every frame connected to the root, as a 7-vector in the root frame."""
        out: dict[str, np.ndarray] = {self.root: np.array(IDENTITY)}

        def resolve(frame: str, depth: int = 0) -> np.ndarray | None:
            if frame in out:
                return out[frame]
            edge = self._edges.get(frame)
            if edge is None or depth > 64:
                return None
            parent = resolve(edge[0], depth + 1)
            if parent is None:
                return None
            out[frame] = compose(parent, edge[1])
            return out[frame]

        for frame in list(self._edges):
            resolve(frame)
        return out


def poses_json(poses: dict[str, np.ndarray]) -> dict[str, list[float]]:
    return {k: page_pose(p) for k, p in poses.items()}


def jpeg(rgb: np.ndarray, *, quality: int = 70, max_width: int = 320) -> bytes:
    """An ``rgb8`` image (H, W, 3) as JPEG, scaled down to ``max_width``."""
    from PIL import Image

    img = Image.fromarray(np.ascontiguousarray(rgb), "RGB")
    if img.width > max_width:
        img = img.resize((max_width, max(1, round(img.height * max_width / img.width))), Image.BILINEAR)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    return buf.getvalue()
