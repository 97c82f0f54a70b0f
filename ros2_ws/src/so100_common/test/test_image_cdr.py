"""image_cdr: Image fields and pixels read from CDR bytes equal rosbags' deserialize; malformed bytes fail clearly."""

import struct

import numpy as np
import pytest

from so100_common import messages
from so100_common.image_cdr import ImageCdrError, image_array, parse_image_header
from so100_common.messages import TYPESTORE, deserialize, image_to_numpy, stamp_to_ns

IMAGE = "sensor_msgs/msg/Image"
RNG = np.random.default_rng(7)


def make(
    encoding: str,
    h: int = 5,
    w: int = 7,
    *,
    frame_id: str = "overhead_optical_frame",
    pad: int = 0,
    bigendian: bool = False,
    stamp_ns: int = 1_700_000_000_123_456_789,
) -> object:
    """An Image message with random pixels, ``pad`` spare bytes per row, optionally big-endian pixels."""
    dtype, channels = messages.IMAGE_ENCODINGS[encoding]
    shape = (h, w, channels) if channels > 1 else (h, w)
    if np.dtype(dtype).kind == "f":
        pixels = RNG.normal(size=shape).astype(dtype)
    else:
        pixels = RNG.integers(0, np.iinfo(dtype).max, size=shape, endpoint=True).astype(dtype)
    if bigendian:
        pixels = pixels.astype(np.dtype(dtype).newbyteorder(">"))
    row = w * channels * np.dtype(dtype).itemsize
    data = np.zeros((h, row + pad), dtype=np.uint8)
    data[:, :row] = np.frombuffer(pixels.tobytes(), dtype=np.uint8).reshape(h, row)
    msg = messages.image_from_numpy(np.zeros(shape, dtype=dtype), encoding, frame_id=frame_id, stamp_ns=stamp_ns)
    msg.is_bigendian = int(bigendian)
    msg.step = row + pad
    msg.data = data.reshape(-1)
    return msg


CASES = [
    ("rgb8", {}),
    ("bgr8", {"frame_id": "a"}),
    ("rgba8", {"frame_id": "ab"}),
    ("mono8", {"frame_id": ""}),
    ("16UC1", {"frame_id": "abc"}),
    ("mono16", {"bigendian": True}),
    ("32FC1", {"pad": 3}),
    ("rgb8", {"pad": 5}),
    ("16UC1", {"h": 1, "w": 1}),
    ("rgb8", {"h": 2, "w": 0}),
    ("rgb8", {"stamp_ns": 0}),
]


@pytest.mark.parametrize("little_endian", [True, False], ids=["cdr_le", "cdr_be"])
@pytest.mark.parametrize(("encoding", "kw"), CASES)
def test_fields_and_pixels_equal_rosbags_deserialize(encoding, kw, little_endian):
    """Every field and the pixel array equal rosbags' deserialize + image_to_numpy, for either CDR byte order."""
    raw = bytes(TYPESTORE.serialize_cdr(make(encoding, **kw), IMAGE, little_endian=little_endian))
    ref = deserialize(raw, IMAGE)
    h = parse_image_header(raw)
    assert (h.stamp_ns, h.frame_id, h.height, h.width, h.encoding, h.is_bigendian, h.step) == (
        stamp_to_ns(ref.header.stamp),
        ref.header.frame_id,
        ref.height,
        ref.width,
        ref.encoding,
        bool(ref.is_bigendian),
        ref.step,
    )
    assert h.data_size == len(ref.data)
    arr, want = image_array(raw), image_to_numpy(ref)
    assert arr.shape == want.shape and arr.dtype == want.dtype
    np.testing.assert_array_equal(arr, want)


def test_pixels_are_a_view_of_the_buffer():
    """No copy: the array shares memory with the message bytes."""
    raw = bytearray(messages.serialize(make("rgb8")))
    arr = image_array(raw)
    raw[parse_image_header(raw).data_offset] ^= 0xFF
    assert arr[0, 0, 0] == deserialize(bytes(raw), IMAGE).data[0]


def test_negative_stamp_seconds():
    """int32 seconds before the epoch parse like rosbags' (signed)."""
    msg = make("mono8")
    msg.header.stamp.sec, msg.header.stamp.nanosec = -2, 5
    assert parse_image_header(messages.serialize(msg)).stamp_ns == -2 * 10**9 + 5


def test_every_truncation_is_rejected():
    """A payload cut anywhere before its last byte fails with ImageCdrError, never an IndexError or a short array."""
    raw = messages.serialize(make("rgb8", 2, 3))
    for n in range(len(raw)):
        with pytest.raises(ImageCdrError):
            image_array(raw[:n])


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda b: b[:1] + b"\x07" + b[2:], "encapsulation 0x0007"),
        (lambda b: b[:3], "shorter than the 4-byte CDR header"),
    ],
)
def test_bad_encapsulation(mutate, match):
    raw = messages.serialize(make("rgb8"))
    with pytest.raises(ImageCdrError, match=match):
        parse_image_header(mutate(raw))


def _patch_u32(raw: bytes, offset: int, value: int) -> bytes:
    return raw[:offset] + struct.pack("<I", value) + raw[offset + 4 :]


def test_malformed_fields_name_the_problem():
    """A string without its NUL, an is_bigendian byte out of range, rows the data cannot hold, an unknown encoding."""
    msg = make("rgb8", 2, 3, frame_id="abc")  # frame_id length at 12, "abc\0" at 16..19
    raw = messages.serialize(msg)
    with pytest.raises(ImageCdrError, match="frame_id is not a NUL-terminated"):
        parse_image_header(raw[:19] + b"x" + raw[20:])
    h = parse_image_header(raw)
    big = h.data_offset - 4 - 4 - 3  # is_bigendian sits before 3 padding bytes, step and the data length
    with pytest.raises(ImageCdrError, match="is_bigendian is 2"):
        parse_image_header(raw[:big] + b"\x02" + raw[big + 1 :])
    with pytest.raises(ImageCdrError, match="does not hold 2 rows of step 100"):
        image_array(_patch_u32(raw, h.data_offset - 8, 100))
    with pytest.raises(ImageCdrError, match="step of at least 9"):
        image_array(_patch_u32(raw, h.data_offset - 8, 8))
    with pytest.raises(ImageCdrError, match="ends inside data"):
        parse_image_header(_patch_u32(raw, h.data_offset - 4, 10_000))
    msg.encoding = "yuv422"
    with pytest.raises(ImageCdrError, match="unsupported image encoding 'yuv422'"):
        image_array(messages.serialize(msg))
