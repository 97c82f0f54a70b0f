"""The page <-> server protocol: JSON text frames, validated before anything acts on them.

Client -> server (``type``):

- ``hello``   ``{"type": "hello", "client": "xr"|"desktop"|"<any short name>"}`` (optional, logged)
- ``input``   ``{"type": "input", "seq": int, "t": ms, "head": POSE|null,
  "controller": {"pose": POSE, "grip": 0..1, "trigger": 0..1}|null}`` — poses in the scene's
  ``world`` frame (ROS, z up), ``POSE = [x, y, z, qx, qy, qz, qw]`` in metres. An input asks for
  control; the first client to send one gets it, others stay viewers.
- ``release`` ``{"type": "release"}`` gives control back (the arm holds).
- ``ping``    ``{"type": "ping", "t": ms}`` is answered with ``pong`` (clock offset, round trip).

Server -> client: ``welcome``, ``scene``, ``poses``, ``image``, ``status``, ``pong``, ``error``
(see :mod:`teleop_vr.ws_server`). :data:`CLIENT_SCHEMA` is the JSON Schema of client messages,
served at ``/schema.json``; :func:`parse_client_message` enforces it (and the limits the schema
cannot say: finite numbers, unit quaternions, frame size).

Dependency rule: standard library and numpy only; never the ROS runtime.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from teleop_vr.errors import ProtocolError

#: a client text frame larger than this is dropped with an error reply (the connection survives)
MAX_MESSAGE_BYTES = 16 * 1024
#: frames larger than this make the WebSocket library close that connection (code 1009)
MAX_FRAME_BYTES = 1 << 20
#: positions further than this from the scene origin are not a controller in a room (m)
MAX_ABS_POSITION = 20.0

_POSE_SCHEMA = {"type": "array", "items": {"type": "number"}, "minItems": 7, "maxItems": 7}
CLIENT_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "teleop_vr client message",
    "oneOf": [
        {
            "type": "object",
            "required": ["type"],
            "additionalProperties": False,
            "properties": {"type": {"const": "hello"}, "client": {"type": "string", "maxLength": 32}},
        },
        {
            "type": "object",
            "required": ["type", "seq"],
            "additionalProperties": False,
            "properties": {
                "type": {"const": "input"},
                "seq": {"type": "integer", "minimum": 0},
                "t": {"type": "number"},
                "head": {"oneOf": [{"type": "null"}, _POSE_SCHEMA]},
                "controller": {
                    "oneOf": [
                        {"type": "null"},
                        {
                            "type": "object",
                            "required": ["pose"],
                            "additionalProperties": False,
                            "properties": {
                                "pose": _POSE_SCHEMA,
                                "grip": {"type": "number", "minimum": 0, "maximum": 1},
                                "trigger": {"type": "number", "minimum": 0, "maximum": 1},
                            },
                        },
                    ]
                },
            },
        },
        {
            "type": "object",
            "required": ["type"],
            "additionalProperties": False,
            "properties": {"type": {"const": "release"}},
        },
        {
            "type": "object",
            "required": ["type"],
            "additionalProperties": False,
            "properties": {"type": {"const": "ping"}, "t": {"type": "number"}},
        },
    ],
}


@dataclass(frozen=True)
class Pose:
    """A pose in the scene's world frame: position (m) and unit quaternion ``[w, x, y, z]`` (the project's order,
    :mod:`so100_sim.transforms`); the page's JSON orders it ``[x, y, z, w]`` and is converted only here."""

    position: np.ndarray
    quat: np.ndarray

    def to_list(self) -> list[float]:
        """The page's ``[x, y, z, qx, qy, qz, qw]``."""
        w, x, y, z = map(float, self.quat)
        return [*map(float, self.position), x, y, z, w]


@dataclass(frozen=True)
class Controller:
    pose: Pose
    grip: float  # 0..1; the clutch engages above ClutchConfig.grip_threshold
    trigger: float  # 0..1; 0 = jaw open, 1 = closed


@dataclass(frozen=True)
class Hello:
    client: str


@dataclass(frozen=True)
class Input:
    seq: int
    sent_ms: float | None
    head: Pose | None
    controller: Controller | None


@dataclass(frozen=True)
class Release:
    pass


@dataclass(frozen=True)
class Ping:
    t: float | None


ClientMessage = Hello | Input | Release | Ping


def _reject_constant(name: str) -> Any:
    raise ProtocolError(f"{name} is not a number the protocol accepts (send finite numbers)")


def _number(value: Any, what: str, lo: float | None = None, hi: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ProtocolError(f"{what} must be a number, got {type(value).__name__}")
    x = float(value)
    if not math.isfinite(x):
        raise ProtocolError(f"{what} is not finite")
    if (lo is not None and x < lo) or (hi is not None and x > hi):
        raise ProtocolError(f"{what}={x:g} is outside [{lo}, {hi}]")
    return x


def parse_pose(value: Any, what: str) -> Pose:
    """The page's ``[x, y, z, qx, qy, qz, qw]`` -> :class:`Pose` (quaternion normalized, reordered ``[w, x, y, z]``)."""
    if not isinstance(value, list) or len(value) != 7:
        raise ProtocolError(f"{what} must be [x, y, z, qx, qy, qz, qw]")
    v = np.array([_number(x, f"{what}[{i}]", -MAX_ABS_POSITION, MAX_ABS_POSITION) for i, x in enumerate(value)])
    norm = float(np.linalg.norm(v[3:]))
    if not 0.5 < norm < 1.5:
        raise ProtocolError(f"{what} quaternion has norm {norm:.3g}; send a unit quaternion")
    qx, qy, qz, qw = v[3:] / norm
    return Pose(v[:3], np.array([qw, qx, qy, qz]))


def _keys(obj: dict[str, Any], allowed: set[str], what: str) -> None:
    extra = set(obj) - allowed
    if extra:
        raise ProtocolError(f"{what} has unknown field(s) {sorted(extra)[:5]}")


def parse_client_message(frame: str | bytes) -> ClientMessage:
    """Validate one client frame; raises :class:`ProtocolError` saying what is wrong."""
    if not isinstance(frame, str):
        raise ProtocolError("binary frames are not part of the protocol; send JSON text")
    if len(frame) > MAX_MESSAGE_BYTES:
        raise ProtocolError(f"message of {len(frame)} bytes exceeds {MAX_MESSAGE_BYTES}")
    try:
        obj = json.loads(frame, parse_constant=_reject_constant)
    except json.JSONDecodeError as e:
        raise ProtocolError(f"not JSON: {e.msg} at {e.pos}") from None
    except RecursionError:
        raise ProtocolError("JSON nested too deeply") from None
    except ValueError as e:  # an integer past Python's 4300-digit conversion limit (it raised out of the handler)
        raise ProtocolError(f"not a number the protocol accepts: {str(e)[:80]}") from None
    if not isinstance(obj, dict) or not isinstance(obj.get("type"), str):
        raise ProtocolError('a message must be a JSON object with a string "type"')
    kind = obj["type"]
    if kind == "input":
        _keys(obj, {"type", "seq", "t", "head", "controller"}, "input")
        seq = obj.get("seq")
        if isinstance(seq, bool) or not isinstance(seq, int) or seq < 0:
            raise ProtocolError("input.seq must be an integer >= 0")
        sent = _number(obj["t"], "input.t") if obj.get("t") is not None else None
        head = parse_pose(obj["head"], "input.head") if obj.get("head") is not None else None
        ctrl = obj.get("controller")
        controller = None
        if ctrl is not None:
            if not isinstance(ctrl, dict):
                raise ProtocolError("input.controller must be an object or null")
            _keys(ctrl, {"pose", "grip", "trigger"}, "input.controller")
            controller = Controller(
                parse_pose(ctrl.get("pose"), "input.controller.pose"),
                _number(ctrl.get("grip", 0.0), "input.controller.grip", 0.0, 1.0),
                _number(ctrl.get("trigger", 0.0), "input.controller.trigger", 0.0, 1.0),
            )
        return Input(seq, sent, head, controller)
    if kind == "ping":
        _keys(obj, {"type", "t"}, "ping")
        return Ping(_number(obj["t"], "ping.t") if obj.get("t") is not None else None)
    if kind == "hello":
        _keys(obj, {"type", "client"}, "hello")
        client = obj.get("client", "unknown")
        if not isinstance(client, str) or len(client) > 32:
            raise ProtocolError("hello.client must be a string of at most 32 characters")
        if not client.isprintable():  # it is logged: no terminal escapes or control characters
            raise ProtocolError("hello.client must be printable text (no control characters)")
        return Hello(client)
    if kind == "release":
        _keys(obj, {"type"}, "release")
        return Release()
    raise ProtocolError(f"unknown message type {kind[:32]!r}; expected hello, input, release or ping")


def encode(message: dict[str, Any]) -> str:
    """A server message as compact JSON (never NaN: the page's JSON.parse would reject it)."""
    return json.dumps(message, separators=(",", ":"), allow_nan=False)
