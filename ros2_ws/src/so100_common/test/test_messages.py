"""Messages: type hashes, CDR bytes and builders match ROS 2 Jazzy."""

import numpy as np
import pytest

from so100_common import messages as m
from so100_common.errors import MessageError

# RIHS01 hashes of ROS 2 Jazzy's own interface packages
KNOWN_HASHES = {
    "std_msgs/msg/String": "RIHS01_df668c740482bbd48fb39d76a70dfd4bd59db1288021743503259e948f6b1a18",
    "std_srvs/srv/Trigger": "RIHS01_eeff2cd6fa5ad9d27cdf4dec64818317839b62f212a91e6b5304b634b2062c5f",
    "std_srvs/srv/SetBool": "RIHS01_abe9e4bb6b41b40e6789712c00ec8871923e089af3f667a79992a428cff2da0a",
    "std_srvs/srv/Empty": "RIHS01_5888399dedec5ccc85ea6451949fd2c9f97bfdf963f9a588821639fcd31b5d19",
}


@pytest.mark.parametrize("typename,expected", KNOWN_HASHES.items())
def test_type_hashes_match_rosidl(typename, expected):
    """Message and service hashes equal the ones rosidl generates."""
    assert m.type_hash(typename) == expected


def test_registered_service_hash_matches_design_doc_example():
    """A service registered from its fields hashes like rmw_zenoh's AddTwoInts example."""
    m.register_service("example_interfaces/srv/AddTwoInts", "int64 a\nint64 b", "int64 sum")
    assert m.type_hash("example_interfaces/srv/AddTwoInts") == (
        "RIHS01_e118de6bf5eeb66a2491b5bda11202e7b68f198d6f67922cf30364858239c81a"
    )


def test_string_cdr_bytes_match_rmw():
    """'Hello World: 1' serializes to the bytes in rmw_zenoh's design document."""
    assert m.serialize(m.string_msg("Hello World: 1")).hex() == "000100000f00000048656c6c6f20576f726c643a203100"


def test_empty_request_is_header_plus_one_byte():
    """An empty struct (Trigger request) is the CDR header and one dummy byte, as rmw writes it."""
    raw = m.serialize(m.new_message(m.TRIGGER.request))
    assert raw == b"\x00\x01\x00\x00\x00"
    m.deserialize(raw, m.TRIGGER.request)


def test_image_roundtrip_views_memory():
    """Images go to and from numpy without copying the pixel buffer."""
    frame = np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8)
    msg = m.image_from_numpy(frame, "rgb8", frame_id="cam")
    assert np.shares_memory(msg.data, frame)
    back = m.deserialize(m.serialize(msg), "sensor_msgs/msg/Image")
    arr = m.image_to_numpy(back)
    assert np.shares_memory(arr, back.data)
    assert arr.shape == (48, 64, 3) and np.array_equal(arr, frame)
    assert back.step == 64 * 3 and back.header.frame_id == "cam"


def test_depth_image_16uc1():
    """16UC1 depth keeps its millimetre values."""
    depth = np.arange(12, dtype=np.uint16).reshape(3, 4) * 1000
    back = m.image_to_numpy(m.deserialize(m.serialize(m.image_from_numpy(depth, "16UC1")), "sensor_msgs/msg/Image"))
    assert back.dtype == np.uint16 and np.array_equal(back, depth)


def test_image_rejects_wrong_dtype_and_short_data():
    with pytest.raises(MessageError, match="dtype uint8"):
        m.image_from_numpy(np.zeros((2, 2, 3), np.float32), "rgb8")
    msg = m.image_from_numpy(np.zeros((4, 4, 3), np.uint8), "rgb8")
    msg.height = 5
    with pytest.raises(MessageError, match="does not hold"):
        m.image_to_numpy(msg)


def test_joint_state_builder_checks_counts():
    js = m.joint_state(["a", "b"], [1.0, 2.0], stamp_ns=1_500_000_000)
    assert js.header.stamp.sec == 1 and js.header.stamp.nanosec == 500_000_000
    assert js.position.dtype == np.float64 and list(js.velocity) == []
    with pytest.raises(MessageError, match="2 joint names but 3 positions"):
        m.joint_state(["a", "b"], [1.0, 2.0, 3.0])
    with pytest.raises(MessageError, match="velocities"):
        m.joint_state(["a", "b"], [1.0, 2.0], velocity=[0.0])


def test_camera_info_projection():
    info = m.camera_info(640, 480, [[600, 0, 320], [0, 600, 240], [0, 0, 1]], frame_id="cam_optical_frame")
    back = m.deserialize(m.serialize(info), "sensor_msgs/msg/CameraInfo")
    assert back.k[0] == 600 and back.p[2] == 320 and back.p[3] == 0 and len(back.d) == 5


def test_garbage_payload_raises_message_error():
    """Truncated or random bytes raise MessageError, never another exception type."""
    good = m.serialize(m.joint_state(["a"], [1.0]))
    for bad in (b"", b"\x00\x01", good[:-5], b"\x00\x01\x00\x00" + b"\xff" * 7):
        with pytest.raises(MessageError):
            m.deserialize(bad, "sensor_msgs/msg/JointState")


def test_new_message_defaults_and_errors():
    msg = m.new_message("sensor_msgs/msg/JointState", {"name": ["a"], "position": [0.5], "header": {"frame_id": "x"}})
    assert msg.position.tolist() == [0.5] and msg.header.frame_id == "x" and msg.header.stamp.sec == 0
    info = m.new_message("sensor_msgs/msg/CameraInfo")
    assert len(info.k) == 9
    with pytest.raises(MessageError, match="no field"):
        m.new_message("std_msgs/msg/String", {"date": "x"})
    with pytest.raises(MessageError, match="expected a string"):
        m.new_message("std_msgs/msg/String", {"data": 3})
    with pytest.raises(MessageError, match="unknown message type"):
        m.msg_class("nope_msgs/msg/Nope")


def test_message_to_dict():
    d = m.message_to_dict(m.joint_state(["a"], [1.0], stamp_ns=0))
    assert d["name"] == ["a"] and d["position"] == [1.0] and d["header"]["stamp"] == {"sec": 0, "nanosec": 0}


def test_dds_type_names():
    assert m.dds_type_name("std_msgs/msg/String") == "std_msgs::msg::dds_::String_"
    assert m.ros_type_name("std_srvs::srv::dds_::Trigger_") == "std_srvs/srv/Trigger"
    with pytest.raises(MessageError):
        m.ros_type_name("std_msgs/msg/String")
