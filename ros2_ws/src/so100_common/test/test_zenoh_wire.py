"""rmw_zenoh wire format: keys, tokens, QoS, GIDs and attachments against its design document."""

import pytest

from so100_common.errors import TransportError
from so100_common.qos import DEFAULT, LATCHED, SENSOR_DATA, Durability, QoS
from so100_common.transport import zenoh_wire as w

STRING_HASH = "RIHS01_df668c740482bbd48fb39d76a70dfd4bd59db1288021743503259e948f6b1a18"
ZID = "8b20917502ee955ac4476e0266340d5c"


def test_topic_key_of_chatter():
    """The design document's chatter key, and its namespaced form."""
    assert w.topic_key(0, "/chatter", "std_msgs/msg/String") == f"0/chatter/std_msgs::msg::dds_::String_/{STRING_HASH}"
    assert w.topic_key(0, "/robot1/chatter", "std_msgs/msg/String").startswith("0/robot1/chatter/")


def test_service_key_uses_service_type_and_hash():
    key = w.topic_key(2, "/sim/reset", "std_srvs/srv/Trigger")
    assert key == "2/sim/reset/std_srvs::srv::dds_::Trigger_/RIHS01_eeff2cd6fa5ad9d27cdf4dec64818317839b62f212a91e6b5304b634b2062c5f"


@pytest.mark.parametrize(
    "qos,text",
    [
        (DEFAULT, "::,10:,:,:,,"),
        (LATCHED, ":1:,1:,:,:,,"),
        (SENSOR_DATA, "2::,5:,:,:,,"),
        (QoS(depth=42), "::,:,:,:,,"),
        (QoS(depth=7), "::,7:,:,:,,"),
    ],
)
def test_qos_strings(qos, text):
    """QoS fields equal to rmw_zenoh's defaults are written empty."""
    assert w.qos_to_keyexpr(qos) == text
    assert w.qos_from_keyexpr(text) == qos


def test_node_token_matches_design_doc():
    tok = w.Token(2, "aac3178e146ba6f1fc6e6a4085e77f21", 0, 0, "NN", "/", "/", "listener")
    assert tok.keyexpr() == "@ros2_lv/2/aac3178e146ba6f1fc6e6a4085e77f21/0/0/NN/%/%/listener"
    assert w.Token.parse(tok.keyexpr()) == tok
    ns = w.Token(0, ZID, 3, 3, "NN", "/", "/ns", "talker")
    assert ns.keyexpr() == f"@ros2_lv/0/{ZID}/3/3/NN/%/%ns/talker"


def test_publisher_token_matches_design_doc():
    tok = w.Token(2, ZID, 0, 10, "MP", "/", "/", "talker", "/chatter", "std_msgs/msg/String", STRING_HASH, "::,7:,:,:,,")
    expected = f"@ros2_lv/2/{ZID}/0/10/MP/%/%/talker/%chatter/std_msgs::msg::dds_::String_/{STRING_HASH}/::,7:,:,:,,"
    assert tok.keyexpr() == expected
    parsed = w.Token.parse(expected)
    assert parsed == tok and parsed.node_fqn == "/talker"


def test_service_server_token():
    h = "RIHS01_eeff2cd6fa5ad9d27cdf4dec64818317839b62f212a91e6b5304b634b2062c5f"
    tok = w.Token(0, ZID, 1, 4, "SS", "/", "/", "sim_bridge", "/sim/reset", "std_srvs/srv/Trigger", h, "::,10:,:,:,,")
    assert tok.keyexpr() == (
        f"@ros2_lv/0/{ZID}/1/4/SS/%/%/sim_bridge/%sim%reset/std_srvs::srv::dds_::Trigger_/{h}/::,10:,:,:,,"
    )


def test_gid_worked_example():
    """GID = XXH3-128 of the token: the reference's worked example (zid, node 0, entity 10)."""
    tok = w.Token(0, ZID, 0, 10, "MP", "/", "/", "talker", "/chatter", "std_msgs/msg/String", STRING_HASH, "::,10:,:,:,,")
    assert tok.gid.hex() == "9d5a86bb111be850ef30a9ac58e8dd1f"


def test_attachment_bytes():
    gid = bytes.fromhex("9d5a86bb111be850ef30a9ac58e8dd1f")
    raw = w.encode_attachment(1, 1700000000123456789, gid)
    assert raw.hex() == "0100000000000000" + "15cd853dfe9c9717" + "10" + gid.hex()
    assert w.decode_attachment(raw) == (1, 1700000000123456789, gid)


def test_bad_attachment_and_token_raise():
    with pytest.raises(TransportError):
        w.decode_attachment(b"\x00" * 32)
    with pytest.raises(TransportError):
        w.decode_attachment(b"\x00" * 16 + b"\x08" + b"\x00" * 16)
    with pytest.raises(TransportError):
        w.Token.parse("@ros2_lv/0/zid/1/2/MP/%/%/talker")
    with pytest.raises(TransportError):
        w.encode_attachment(1, 2, b"short")


def test_durability_roundtrip_in_token():
    tok = w.Token(0, ZID, 1, 2, "MS", "/", "/", "n", "/robot_description", "std_msgs/msg/String", STRING_HASH,
                  w.qos_to_keyexpr(LATCHED))
    assert w.qos_from_keyexpr(w.Token.parse(tok.keyexpr()).qos).durability == Durability.TRANSIENT_LOCAL
