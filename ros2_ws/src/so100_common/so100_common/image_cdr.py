"""``sensor_msgs/msg/Image`` read straight from its CDR bytes: the header fields, and the pixels as a view.

Dependency rule: numpy and ``so100_common.messages`` (for the encoding table) only.

rosbags' ``deserialize_cdr`` copies an image's data array into a new message object; the bag
converter only needs the stamp and size of every image and the pixels of the few it keeps, so
it parses the fixed layout itself (OMG CDR, as ROS 2 serializes it: a 4-byte encapsulation
header, then ``header.stamp`` (int32 sec, uint32 nanosec), ``header.frame_id`` (string),
``height``, ``width`` (uint32), ``encoding`` (string), ``is_bigendian`` (uint8), ``step``
(uint32) and ``data`` (uint32 length + bytes), each field aligned to its size from the end of
the encapsulation header). :func:`image_array` returns a numpy view of the payload (no copy),
laid out like :func:`so100_common.messages.image_to_numpy`. Malformed bytes raise
:class:`ImageCdrError` naming what is wrong.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from so100_common.errors import MessageError
from so100_common.messages import IMAGE_ENCODINGS

#: Encapsulation identifiers (first two bytes, big-endian): plain CDR, big- or little-endian.
_CDR_BE, _CDR_LE = 0x0000, 0x0001
_U32 = {"<": struct.Struct("<I"), ">": struct.Struct(">I")}
_STAMP = {"<": struct.Struct("<iI"), ">": struct.Struct(">iI")}


class ImageCdrError(MessageError):
    """The bytes are not a well-formed CDR ``sensor_msgs/msg/Image``."""


@dataclass(frozen=True)
class ImageHeader:
    """The fields of an Image message, with the pixel bytes' place in the buffer (not the bytes)."""

    stamp_ns: int
    frame_id: str
    height: int
    width: int
    encoding: str
    is_bigendian: bool
    step: int
    data_offset: int
    data_size: int


def parse_image_header(raw: bytes | bytearray | memoryview) -> ImageHeader:
    """Every field of a CDR Image except the pixel bytes, which are only located."""
    buf = memoryview(raw)
    n = len(buf)
    if n < 4:
        raise ImageCdrError(f"Image payload of {n} bytes is shorter than the 4-byte CDR header")
    kind = (buf[0] << 8) | buf[1]
    if kind not in (_CDR_BE, _CDR_LE):
        raise ImageCdrError(f"Image payload has encapsulation 0x{kind:04x}; expected plain CDR (0x0000 or 0x0001)")
    order = "<" if kind == _CDR_LE else ">"
    u32 = _U32[order]
    pos = 4  # alignment is counted from here

    def need(size: int, what: str) -> None:
        if pos + size > n:
            raise ImageCdrError(
                f"Image payload of {n} bytes ends inside {what} (needs {pos + size - 4} after the "
                "CDR header); truncated message?"
            )

    def align(size: int) -> None:
        nonlocal pos
        pos += -(pos - 4) % size

    def string(what: str) -> str:
        nonlocal pos
        align(4)
        need(4, f"the length of {what}")
        (length,) = u32.unpack_from(buf, pos)
        pos += 4
        need(length, what)
        if length == 0 or buf[pos + length - 1] != 0:
            raise ImageCdrError(f"Image {what} is not a NUL-terminated CDR string (length {length})")
        try:
            text = bytes(buf[pos : pos + length - 1]).decode("utf8")
        except UnicodeDecodeError as e:
            raise ImageCdrError(f"Image {what} is not UTF-8: {e}") from e
        pos += length
        return text

    def uint32(what: str) -> int:
        nonlocal pos
        align(4)
        need(4, what)
        (value,) = u32.unpack_from(buf, pos)
        pos += 4
        return value

    need(8, "header.stamp")
    sec, nanosec = _STAMP[order].unpack_from(buf, pos)
    pos += 8
    frame_id = string("header.frame_id")
    height = uint32("height")
    width = uint32("width")
    encoding = string("encoding")
    need(1, "is_bigendian")
    is_bigendian = buf[pos]
    pos += 1
    if is_bigendian > 1:
        raise ImageCdrError(f"Image is_bigendian is {is_bigendian}; expected 0 or 1")
    step = uint32("step")
    size = uint32("the length of data")
    need(size, "data")
    return ImageHeader(
        stamp_ns=sec * 1_000_000_000 + nanosec,
        frame_id=frame_id,
        height=height,
        width=width,
        encoding=encoding,
        is_bigendian=bool(is_bigendian),
        step=step,
        data_offset=pos,
        data_size=size,
    )


def image_array(raw: bytes | bytearray | memoryview, header: ImageHeader | None = None) -> np.ndarray:
    """The pixels of a CDR Image as an (h, w[, c]) numpy view of ``raw`` (no copy; read-only for bytes).

    Same layout and dtype as :func:`so100_common.messages.image_to_numpy` of the deserialized message.
    """
    h = header if header is not None else parse_image_header(raw)
    if h.encoding not in IMAGE_ENCODINGS:
        raise ImageCdrError(f"unsupported image encoding {h.encoding!r}; known: {', '.join(IMAGE_ENCODINGS)}")
    dtype, channels = IMAGE_ENCODINGS[h.encoding]
    dt = np.dtype(dtype).newbyteorder(">" if h.is_bigendian else "<")
    row = h.width * channels * dt.itemsize
    if h.step < row or h.data_size < h.step * h.height:
        raise ImageCdrError(
            f"image data of {h.data_size} bytes does not hold {h.height} rows of step {h.step} "
            f"({h.width} x {h.encoding} needs a step of at least {row})"
        )
    data = np.frombuffer(raw, dtype=np.uint8, count=h.step * h.height, offset=h.data_offset)
    arr = data.reshape(h.height, h.step)[:, :row].view(dt)
    return arr.reshape(h.height, h.width, channels) if channels > 1 else arr.reshape(h.height, h.width)
