"""ROS 2 Jazzy messages: one typestore, one CDR path, and builders.

Every node, the transport and the bag writer use :data:`TYPESTORE` (rosbags'
``Stores.ROS2_JAZZY`` plus std_srvs, which rosbags does not ship). Messages are
rosbags' dataclasses; ``serialize``/``deserialize`` give and take CDR bytes with the
4-byte encapsulation header, byte-identical to rmw's.

Dependency rule: imports only ``names`` and ``errors`` from the project.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
from rosbags.typesys import Stores, get_typestore
from rosbags.typesys.base import Nodetype

from so100_common.errors import MessageError

TYPESTORE = get_typestore(Stores.ROS2_JAZZY)
# A second store for type hashes only: rosidl hashes a ``char`` field as ``uint8``
# (``.msg`` char is IDL uint8) while rosbags keeps ``char``; serialization is unaffected.
_HASH_STORE = get_typestore(Stores.ROS2_JAZZY)


def _fields(text: str) -> list[tuple[str, Any]]:
    """Parse ``"type name"`` lines into rosbags field descriptors (base types only)."""
    out = []
    for line in text.strip().splitlines():
        typ, name = line.split()
        out.append((name, (Nodetype.BASE, (typ, 0))))
    return out


@cache
def type_hash(typename: str) -> str:
    """RIHS01 hash of a message or service type, as rosidl computes it."""
    if typename not in _HASH_STORE.fielddefs:
        raise MessageError(f"unknown type {typename!r}")
    return _HASH_STORE.hash_rihs01(typename)


@dataclass(frozen=True)
class ServiceType:
    """A service type: its name and request/response message type names."""

    name: str  # e.g. "std_srvs/srv/Trigger"

    @property
    def request(self) -> str:
        return f"{self.name}_Request"

    @property
    def response(self) -> str:
        return f"{self.name}_Response"


def register_service(name: str, request_fields: str, response_fields: str) -> ServiceType:
    """Register a service type (request, response, event and the service itself).

    The service's own entry (``request_message``, ``response_message``,
    ``event_message``) exists so that :func:`type_hash` gives the RIHS01 hash
    rosidl computes for the whole service, which rmw_zenoh puts in its keys.
    """
    base = [
        (f"{name}_Request", _fields(request_fields) if request_fields.strip() else []),
        (f"{name}_Response", _fields(response_fields) if response_fields.strip() else []),
    ]
    event = (
        f"{name}_Event",
        [
            ("info", (Nodetype.NAME, "service_msgs/msg/ServiceEventInfo")),
            ("request", (Nodetype.SEQUENCE, ((Nodetype.NAME, f"{name}_Request"), 1))),
            ("response", (Nodetype.SEQUENCE, ((Nodetype.NAME, f"{name}_Response"), 1))),
        ],
    )
    service = (
        name,
        [
            ("request_message", (Nodetype.NAME, f"{name}_Request")),
            ("response_message", (Nodetype.NAME, f"{name}_Response")),
            ("event_message", (Nodetype.NAME, f"{name}_Event")),
        ],
    )
    defs = {k: ([], v) for k, v in [*base, event, service]}
    for store in (TYPESTORE, _HASH_STORE):
        store.register({k: v for k, v in defs.items() if k not in store.fielddefs})
    type_hash.cache_clear()
    return ServiceType(name)


def _patch_hash_store() -> None:
    for typ, (consts, fields) in list(_HASH_STORE.fielddefs.items()):
        new = []
        for fname, desc in fields:
            if desc[0] == Nodetype.BASE and desc[1][0] == "char":
                desc = (Nodetype.BASE, ("uint8", 0))
            elif desc[0] in (Nodetype.ARRAY, Nodetype.SEQUENCE) and desc[1][0] == (
                Nodetype.BASE,
                ("char", 0),
            ):
                desc = (desc[0], ((Nodetype.BASE, ("uint8", 0)), desc[1][1]))
            new.append((fname, desc))
        _HASH_STORE.fielddefs[typ] = (consts, new)


_patch_hash_store()

TRIGGER = register_service("std_srvs/srv/Trigger", "", "bool success\nstring message")
SET_BOOL = register_service(
    "std_srvs/srv/SetBool", "bool data", "bool success\nstring message"
)
EMPTY = register_service("std_srvs/srv/Empty", "", "")


def msg_class(typename: str) -> type:
    """The dataclass of a message type, e.g. ``msg_class("std_msgs/msg/String")``."""
    try:
        return TYPESTORE.types[typename]
    except KeyError:
        raise MessageError(
            f"unknown message type {typename!r}; the typestore has the ROS 2 Jazzy set "
            "plus std_srvs"
        ) from None


def service_type(name: str) -> ServiceType:
    """Look up a registered service type by name (``std_srvs/srv/Trigger``)."""
    if f"{name}_Request" not in TYPESTORE.types:
        raise MessageError(f"unknown service type {name!r}")
    return ServiceType(name)


def typename_of(msg: Any) -> str:
    """ROS type name of a message instance."""
    return msg.__msgtype__


def serialize(msg: Any, typename: str | None = None) -> bytes:
    """CDR bytes of a message (with header), exactly as rmw publishes them."""
    typename = typename or msg.__msgtype__
    raw = TYPESTORE.serialize_cdr(msg, typename)
    if len(raw) == 4:  # an empty struct: rmw writes one dummy byte
        return bytes(raw) + b"\x00"
    return bytes(raw) if not isinstance(raw, bytes) else raw


def deserialize(raw: bytes | memoryview, typename: str) -> Any:
    """Message from CDR bytes; raises :class:`MessageError` on a malformed payload."""
    try:
        if len(raw) < 4:
            raise ValueError(f"payload of {len(raw)} bytes is shorter than the CDR header")
        return TYPESTORE.deserialize_cdr(raw, typename)
    except MessageError:
        raise
    except Exception as e:  # rosbags raises several types on bad input
        raise MessageError(f"cannot deserialize {typename}: {e}") from e


def dds_type_name(typename: str) -> str:
    """``std_msgs/msg/String`` -> ``std_msgs::msg::dds_::String_``."""
    pkg, kind, name = typename.split("/")
    return f"{pkg}::{kind}::dds_::{name}_"


def ros_type_name(dds_name: str) -> str:
    """``std_msgs::msg::dds_::String_`` -> ``std_msgs/msg/String``."""
    parts = dds_name.split("::")
    if len(parts) != 4 or parts[2] != "dds_" or not parts[3].endswith("_"):
        raise MessageError(f"not a DDS type name: {dds_name!r}")
    return f"{parts[0]}/{parts[1]}/{parts[3][:-1]}"


# ---------------------------------------------------------------- builders
Time = TYPESTORE.types["builtin_interfaces/msg/Time"]
Header = TYPESTORE.types["std_msgs/msg/Header"]
JointState = TYPESTORE.types["sensor_msgs/msg/JointState"]
Image = TYPESTORE.types["sensor_msgs/msg/Image"]
CameraInfo = TYPESTORE.types["sensor_msgs/msg/CameraInfo"]
RegionOfInterest = TYPESTORE.types["sensor_msgs/msg/RegionOfInterest"]
Bool = TYPESTORE.types["std_msgs/msg/Bool"]
String = TYPESTORE.types["std_msgs/msg/String"]


def time_msg(stamp_ns: int | None = None) -> Any:
    """``builtin_interfaces/Time`` from nanoseconds (now when omitted)."""
    ns = time.time_ns() if stamp_ns is None else int(stamp_ns)
    return Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)


def stamp_to_ns(stamp: Any) -> int:
    """Nanoseconds of a ``builtin_interfaces/Time``."""
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def header(frame_id: str = "", stamp_ns: int | None = None) -> Any:
    return Header(stamp=time_msg(stamp_ns), frame_id=frame_id)


def _f64(values: Any) -> np.ndarray:
    if values is None:
        return np.zeros(0, dtype=np.float64)
    return np.ascontiguousarray(values, dtype=np.float64).reshape(-1)


def joint_state(
    names: list[str] | tuple[str, ...],
    position: Any,
    velocity: Any = None,
    effort: Any = None,
    *,
    stamp_ns: int | None = None,
    frame_id: str = "",
) -> Any:
    """``sensor_msgs/JointState``; ``position`` must match ``names`` in length."""
    pos = _f64(position)
    if len(pos) != len(names):
        raise MessageError(f"{len(names)} joint names but {len(pos)} positions")
    vel, eff = _f64(velocity), _f64(effort)
    for label, arr in (("velocities", vel), ("efforts", eff)):
        if len(arr) not in (0, len(names)):
            raise MessageError(f"{len(names)} joint names but {len(arr)} {label}")
    return JointState(
        header=header(frame_id, stamp_ns), name=list(names), position=pos, velocity=vel, effort=eff
    )


# encoding -> (numpy dtype, channels)
IMAGE_ENCODINGS: dict[str, tuple[str, int]] = {
    "rgb8": ("uint8", 3),
    "bgr8": ("uint8", 3),
    "rgba8": ("uint8", 4),
    "bgra8": ("uint8", 4),
    "mono8": ("uint8", 1),
    "mono16": ("uint16", 1),
    "16UC1": ("uint16", 1),
    "32FC1": ("float32", 1),
}


def image_from_numpy(
    array: np.ndarray, encoding: str, *, frame_id: str = "", stamp_ns: int | None = None
) -> Any:
    """``sensor_msgs/Image`` viewing ``array``'s memory (no copy when contiguous)."""
    if encoding not in IMAGE_ENCODINGS:
        raise MessageError(f"unsupported encoding {encoding!r}; use one of {sorted(IMAGE_ENCODINGS)}")
    dtype, channels = IMAGE_ENCODINGS[encoding]
    if array.dtype != np.dtype(dtype):
        raise MessageError(f"{encoding} needs dtype {dtype}, got {array.dtype}")
    shape_ok = array.ndim == 2 and channels == 1 or array.ndim == 3 and array.shape[2] == channels
    if not shape_ok:
        want = "(h, w)" if channels == 1 else f"(h, w, {channels})"
        raise MessageError(f"{encoding} needs shape {want}, got {array.shape}")
    arr = np.ascontiguousarray(array)
    height, width = arr.shape[:2]
    return Image(
        header=header(frame_id, stamp_ns),
        height=height,
        width=width,
        encoding=encoding,
        is_bigendian=0,
        step=width * channels * arr.dtype.itemsize,
        data=arr.reshape(-1).view(np.uint8),
    )


def image_to_numpy(msg: Any) -> np.ndarray:
    """A (h, w[, c]) array viewing an Image's data buffer (no copy)."""
    if msg.encoding not in IMAGE_ENCODINGS:
        raise MessageError(f"unsupported encoding {msg.encoding!r}")
    dtype, channels = IMAGE_ENCODINGS[msg.encoding]
    dt = np.dtype(dtype).newbyteorder(">" if msg.is_bigendian else "<")
    row = msg.width * channels * dt.itemsize
    data = np.asarray(msg.data, dtype=np.uint8)
    if msg.step < row or len(data) < msg.step * msg.height:
        raise MessageError(
            f"image data of {len(data)} bytes does not hold {msg.height} rows of step {msg.step}"
        )
    rows = data[: msg.step * msg.height].reshape(msg.height, msg.step)[:, :row]
    arr = rows.view(dt)
    return arr.reshape(msg.height, msg.width, channels) if channels > 1 else arr.reshape(msg.height, msg.width)


def camera_info(
    width: int,
    height: int,
    k: Any,
    *,
    d: Any = None,
    distortion_model: str = "plumb_bob",
    frame_id: str = "",
    stamp_ns: int | None = None,
) -> Any:
    """``sensor_msgs/CameraInfo`` for a pinhole camera with intrinsics ``k`` (3x3)."""
    kk = np.asarray(k, dtype=np.float64).reshape(3, 3)
    p = np.zeros((3, 4))
    p[:, :3] = kk
    return CameraInfo(
        header=header(frame_id, stamp_ns),
        height=height,
        width=width,
        distortion_model=distortion_model,
        d=_f64(d if d is not None else [0.0] * 5),
        k=kk.reshape(-1),
        r=np.eye(3).reshape(-1),
        p=p.reshape(-1),
        binning_x=0,
        binning_y=0,
        roi=RegionOfInterest(x_offset=0, y_offset=0, height=0, width=0, do_rectify=False),
    )


def bool_msg(value: bool) -> Any:
    return Bool(data=bool(value))


def string_msg(value: str) -> Any:
    return String(data=str(value))


# ---------------------------------------------------------------- generic construction
_NUMPY_OF = {
    "bool": "bool", "byte": "uint8", "char": "uint8", "octet": "uint8",
    "int8": "int8", "uint8": "uint8", "int16": "int16", "uint16": "uint16",
    "int32": "int32", "uint32": "uint32", "int64": "int64", "uint64": "uint64",
    "float32": "float32", "float64": "float64",
}


def _base_default(typ: str) -> Any:
    if typ == "string" or typ == "wstring":
        return ""
    if typ == "bool":
        return False
    if typ.startswith("float"):
        return 0.0
    return 0


def _convert(desc: Any, value: Any, path: str) -> Any:
    kind, rest = desc
    if kind == Nodetype.BASE:
        typ = rest[0]
        if value is None:
            return _base_default(typ)
        if typ in ("string", "wstring"):
            if not isinstance(value, str):
                raise MessageError(f"{path}: expected a string, got {value!r}")
            return value
        if typ == "bool":
            return bool(value)
        if typ.startswith("float"):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise MessageError(f"{path}: expected a number, got {value!r}")
            return float(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise MessageError(f"{path}: expected an integer, got {value!r}")
        return value
    if kind == Nodetype.NAME:
        if value is not None and not isinstance(value, dict):
            raise MessageError(f"{path}: expected a mapping for {rest}, got {value!r}")
        return new_message(rest, value or {}, _path=path)
    # array or sequence
    (sub_kind, sub_rest), count = rest
    fixed = kind == Nodetype.ARRAY
    items = [] if value is None else value
    if not isinstance(items, (list, tuple, np.ndarray)):
        raise MessageError(f"{path}: expected a list, got {items!r}")
    if fixed and value is None:
        items = [None] * count
    if fixed and len(items) != count:
        raise MessageError(f"{path}: expected {count} elements, got {len(items)}")
    if not fixed and count and len(items) > count:
        raise MessageError(f"{path}: at most {count} elements, got {len(items)}")
    if sub_kind == Nodetype.BASE and sub_rest[0] in _NUMPY_OF:
        return np.array([0 if v is None else v for v in items], dtype=_NUMPY_OF[sub_rest[0]])
    return [_convert((sub_kind, sub_rest), v, f"{path}[{i}]") for i, v in enumerate(items)]


def new_message(typename: str, values: dict[str, Any] | None = None, *, _path: str = "") -> Any:
    """A message with every field defaulted (0, "", empty), then set from ``values``.

    ``values`` is a nested mapping as ``ros2 topic pub`` takes it; unknown fields raise.
    """
    cls = msg_class(typename)
    _, fields = TYPESTORE.fielddefs[typename]
    values = dict(values or {})
    kwargs = {}
    for name, desc in fields:
        kwargs[name] = _convert(desc, values.pop(name, None), f"{_path}.{name}" if _path else name)
    if values:
        raise MessageError(
            f"{typename} has no field(s) {', '.join(sorted(values))}; fields: {', '.join(n for n, _ in fields)}"
        )
    return cls(**kwargs)


def message_to_dict(msg: Any, *, max_array: int | None = None) -> Any:
    """Plain Python (dicts, lists, numbers) of a message, for printing as YAML."""
    if hasattr(msg, "__msgtype__"):
        _, fields = TYPESTORE.fielddefs[msg.__msgtype__]
        return {name: message_to_dict(getattr(msg, name), max_array=max_array) for name, _ in fields}
    if isinstance(msg, np.ndarray):
        msg = msg.tolist()
    if isinstance(msg, list):
        if max_array is not None and len(msg) > max_array:
            return f"<sequence of {len(msg)} elements>"
        return [message_to_dict(v, max_array=max_array) for v in msg]
    return msg
