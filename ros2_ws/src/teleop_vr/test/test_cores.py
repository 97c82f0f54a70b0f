"""The pure cores of teleop_vr, without transport: protocol, session, clutch, scene feed, TLS."""

from __future__ import annotations

import json
import ssl

import numpy as np
import pytest

from so100_common import messages
from so100_sim.description import to_urdf
from so100_sim.kinematics import Kinematics
from teleop_vr import protocol, scene_feed, tls
from teleop_vr.clutch import Clutch, ClutchConfig, ControllerSample
from teleop_vr.errors import ConfigError, ProtocolError
from teleop_vr.session import Session, SessionConfig, new_token

# ---------------------------------------------------------------- protocol


def _input(pose: list, **ctrl: float) -> str:
    return json.dumps(
        {
            "type": "input",
            "seq": 3,
            "t": 1.5,
            "head": None,
            "controller": {"pose": pose, "grip": 1.0, "trigger": 0.5, **ctrl},
        }
    )


def test_protocol_parses_an_input_and_normalizes_the_quaternion():
    msg = protocol.parse_client_message(_input([0.1, 0.2, 0.3, 0, 0, 0, 1.2]))
    assert isinstance(msg, protocol.Input) and msg.seq == 3 and msg.controller is not None
    assert np.allclose(msg.controller.pose.quat, [1, 0, 0, 0]) and msg.controller.trigger == 0.5  # [w, x, y, z]
    turned = protocol.parse_pose([1, 2, 3, 0, 0, 0.6, 0.8], "pose")  # the page sends [x, y, z, w]
    assert np.allclose(turned.quat, [0.8, 0, 0, 0.6]) and np.allclose(turned.to_list(), [1, 2, 3, 0, 0, 0.6, 0.8])


@pytest.mark.parametrize(
    "frame, why",
    [
        ("{", "not JSON"),
        ("[]", "JSON object"),
        ('{"type": "x"}', "unknown message type"),
        (_input([float("nan")] + [0] * 6), "not a number"),  # json.dumps writes a bare NaN
        ('{"type": "ping", "t": Infinity}', "not a number"),
        ('{"type": "ping", "t": 1e999}', "not finite"),
        (_input([0, 0, 0, 0, 0, 0, 0]), "unit quaternion"),
        (_input([0, 0, 0]), r"\[x, y, z"),
        (_input([99, 0, 0, 0, 0, 0, 1]), "outside"),
        (_input([0, 0, 0, 0, 0, 0, 1], grip=2), "outside"),
        (_input([0, 0, 0, 0, 0, 0, "1"]), "must be a number"),
        (_input([0, 0, 0, 0, 0, 0, True]), "must be a number"),
        ('{"type": "input", "seq": 1.5}', "seq"),
        ('{"type": "input", "seq": 1, "x": 1}', "unknown field"),
        ("[" * 4000 + "]" * 4000, "nested|JSON object"),
        ("x" * (protocol.MAX_MESSAGE_BYTES + 1), "exceeds"),
        (b"{}", "binary"),
    ],
)
def test_protocol_rejects_bad_frames(frame, why):
    with pytest.raises(ProtocolError, match=why):
        protocol.parse_client_message(frame)


def test_protocol_encodes_without_nan():
    assert protocol.encode({"a": [1, 2]}) == '{"a":[1,2]}'
    with pytest.raises(ValueError):
        protocol.encode({"a": float("nan")})


# ---------------------------------------------------------------- session


def test_session_one_controller_until_release_disconnect_or_silence():
    s = Session(SessionConfig(release_timeout=0.25))
    a, b = s.connect("a", 0.0), s.connect("b", 0.0)
    assert a and b and s.claim(a.id, 1.0) and not s.claim(b.id, 1.1) and s.controller == a.id
    assert b.refused_inputs == 1 and s.expire(1.2) is None
    assert s.expire(1.26) == a.id and s.controller is None  # silent for > 250 ms
    assert s.claim(b.id, 1.3) and not s.release(a.id) and s.release(b.id)
    assert s.claim(a.id, 2.0) and s.disconnect(a.id) and s.controller is None and not s.disconnect(b.id)


def test_session_tokens_and_capacity():
    token = new_token()
    s = Session(SessionConfig(token=token, max_clients=1))
    assert s.token_ok(token) and not s.token_ok(None) and not s.token_ok(token + "x")
    assert Session().token_ok(None)
    assert s.connect("a", 0) is not None and s.connect("b", 0) is None
    with pytest.raises(ConfigError):
        SessionConfig(token="short")
    with pytest.raises(ConfigError):
        SessionConfig(release_timeout=0.0)


# ---------------------------------------------------------------- clutch


@pytest.fixture(scope="module")
def kin() -> Kinematics:
    return Kinematics()


def _sample(pos, grip=1.0, trigger=0.0, quat=(1.0, 0, 0, 0)) -> ControllerSample:
    return ControllerSample(np.asarray(pos, float), np.asarray(quat, float), grip, trigger)


def _run(clutch: Clutch, sample: ControllerSample | None, seconds: float, dt: float = 0.01) -> np.ndarray:
    q = None
    for _ in range(int(seconds / dt)):
        q = clutch.step(sample, dt)
    return q


def test_clutch_moves_the_tool_by_the_controller_motion(kin):
    c = Clutch(ClutchConfig(trim_gain=0.0), kin)
    assert c.step(_sample([0, 0, 0]), 0.01) is None  # nothing before sync
    q0 = np.array([0.0, 0.2, -0.2, 0.3, 0.0, 0.3])
    c.sync(q0)
    start = kin.fk(q0)[0]
    hand = np.array([1.0, 2.0, 1.0])
    _run(c, _sample(hand), 0.05)
    q = _run(c, _sample(hand + [0.03, -0.04, -0.05]), 2.0)
    assert np.linalg.norm(kin.fk(q)[0] - (start + [0.03, -0.04, -0.05])) < 1e-3
    assert np.all(q >= kin.lower) and np.all(q <= kin.upper)


def test_clutch_without_grip_holds_and_release_stops(kin):
    c = Clutch(ClutchConfig(trim_gain=0.0, max_speed=0.2), kin)
    q0 = np.array([0.0, 0.2, -0.2, 0.3, 0.0, 0.3])
    c.sync(q0)
    q = _run(c, _sample([0.5, 0, 0], grip=0.2), 0.5)
    assert np.allclose(q[:5], q0[:5])  # no clutch, no motion (the trigger still sets the jaw)
    _run(c, _sample([0, 0, 0]), 0.02)
    moving = _run(c, _sample([0, 0.3, 0]), 0.3)  # 0.3 m away at 0.2 m/s: still on the way
    tool_then = kin.fk(moving)[0]
    q = _run(c, _sample([0, 0.3, 0], grip=0.0), 1.0)  # let go: stop here, do not finish the move
    assert np.linalg.norm(kin.fk(q)[0] - tool_then) < 0.01
    assert np.linalg.norm(kin.fk(q)[0] - kin.fk(q0)[0]) < 0.08


def test_clutch_limits_speed_workspace_and_sets_the_jaw(kin):
    cfg = ClutchConfig(trim_gain=0.0, max_speed=0.1, workspace_min=(-0.3, -0.4, 0.1))
    c = Clutch(cfg, kin)
    q0 = np.array([0.0, 0.2, -0.2, 0.3, 0.0, 0.3])
    c.sync(q0)
    start = c.target_pos.copy()
    _run(c, _sample([0, 0, 0], trigger=1.0), 0.02)
    _run(c, _sample([0, 0, -1.0], trigger=1.0), 0.5)
    assert np.linalg.norm(c.target_pos - start) <= 0.1 * 0.5 + 1e-6  # max_speed
    q = _run(c, _sample([0, 0, -1.0], trigger=1.0), 5.0)
    assert c.target_pos[2] == pytest.approx(0.1) and c.clamped > 0  # the floor of the workspace
    assert q[5] == pytest.approx(cfg.gripper_closed)
    prev = c.step(_sample([0, 0, -1.0], trigger=0.0), 0.01)
    assert prev[5] - q[5] == pytest.approx(cfg.max_joint_speed * 0.01)  # joint speed limit on the jaw


def test_clutch_trim_removes_the_followers_sag(kin):
    c = Clutch(ClutchConfig(trim_gain=5.0, trim_limit=0.05), kin)
    q0 = np.array([0.0, 0.2, -0.2, 0.3, 0.0, 0.3])
    c.sync(q0)
    sagging = q0.copy()
    for _ in range(300):  # a follower that lags every command by 0.02 rad on the shoulder
        out = c.step(None, 0.01, follower=sagging, follower_age=0.0)
        sagging = out - np.array([0, 0.02, 0, 0, 0, 0])
    assert out[1] - q0[1] == pytest.approx(0.02, abs=1e-3)
    stale = c.step(None, 0.01, follower=q0 - 1.0, follower_age=1.0)
    assert np.allclose(stale, out)  # a stale follower state pauses the trim


def test_clutch_config_is_validated():
    with pytest.raises(ConfigError, match="workspace_min"):
        ClutchConfig(workspace_min=(0, 0, 0), workspace_max=(0.1, 0.1, -0.1))
    with pytest.raises(ConfigError, match="max_speed"):
        ClutchConfig(max_speed=0)


# ---------------------------------------------------------------- scene feed


def _tf(*edges):
    return messages.new_message(
        "tf2_msgs/msg/TFMessage",
        {
            "transforms": [
                {
                    "header": {"frame_id": p},
                    "child_frame_id": c,
                    "transform": {
                        "translation": dict(zip("xyz", t, strict=True)),
                        "rotation": dict(zip("xyzw", q, strict=True)),
                    },
                }
                for p, c, t, q in edges
            ]
        },
    )


def test_tf_tree_composes_world_poses():
    s = np.sqrt(0.5)
    tree = scene_feed.TfTree("world")
    tree.update(
        _tf(
            ("world", "base", (1, 0, 0), (0, 0, s, s)),  # 90° about z
            ("base", "tool", (0.5, 0, 0), (0, 0, 0, 1)),
            ("nowhere", "orphan", (0, 0, 0), (0, 0, 0, 1)),
            ("world", "bad", (float("nan"), 0, 0), (0, 0, 0, 1)),
        )
    )
    poses = tree.poses()
    assert np.allclose(poses["tool"][:3], [1, 0.5, 0]) and np.allclose(poses["tool"][3:], [s, 0, 0, s])  # [w, x, y, z]
    assert np.allclose(scene_feed.poses_json(poses)["tool"], [1, 0.5, 0, 0, 0, s, s], atol=1e-5)  # the page: [x, y, z, w]
    assert "orphan" not in poses and "bad" not in poses
    a = poses["tool"]
    assert np.allclose(scene_feed.compose(scene_feed.inverse(a), a), scene_feed.IDENTITY)


def test_urdf_visuals_cover_every_link_and_defer_to_markers():
    visuals = scene_feed.urdf_visuals(to_urdf())
    links = {v["frame"] for v in visuals}
    assert {"base_link", "upper_arm_link", "gripper_link", "moving_jaw_link"} <= links
    assert all(len(v["pose"]) == 7 and len(v["color"]) == 4 and min(v["scale"]) > 0 for v in visuals)
    markers = [
        {
            "frame": "base_link",
            "type": "box",
            "pose": list(scene_feed.IDENTITY),
            "scale": [1, 1, 1],
            "color": [1, 1, 1, 1],
            "name": "m",
        }
    ]
    merged = scene_feed.scene_geometry(markers, visuals)
    assert [g for g in merged if g["frame"] == "base_link"] == markers and len(merged) > len(markers)
    with pytest.raises(ProtocolError):
        scene_feed.urdf_visuals("<robot")


def test_jpeg_is_small_and_scaled():
    from io import BytesIO

    from PIL import Image

    rgb = np.zeros((480, 640, 3), np.uint8)
    rgb[:, :320] = (200, 30, 30)
    data = scene_feed.jpeg(rgb, max_width=320)
    img = Image.open(BytesIO(data))
    assert img.size == (320, 240) and len(data) < 20_000
    assert np.array(img.convert("RGB"))[120, 40, 0] > 150


# ---------------------------------------------------------------- TLS


def test_certificate_is_generated_once_and_names_the_hosts(tmp_path):
    cert = tls.ensure_certificate(["192.168.7.9", "myhost"], tmp_path)
    assert {"localhost", "127.0.0.1", "192.168.7.9", "myhost"} <= set(cert.names)
    assert len(cert.fingerprint.split(":")) == 32 and (cert.key.stat().st_mode & 0o777) == 0o600
    again = tls.ensure_certificate(["myhost"], tmp_path)
    assert again.fingerprint == cert.fingerprint  # reused: the headset accepts it once
    other = tls.ensure_certificate(["10.1.2.3"], tmp_path)
    assert other.fingerprint != cert.fingerprint  # a new address needs a new certificate
    assert isinstance(other.server_context(), ssl.SSLContext)


# ---------------------------------------------------------------- serve settings


def test_serve_settings_resolve_and_banner():
    from teleop_vr.serve_settings import ServeSettings

    local = ServeSettings.resolve(lan=False, host="", port=0, https="auto", token="")
    assert (local.host, local.port, local.use_tls, local.binds_every_interface) == ("127.0.0.1", 8080, False, False)
    assert len(local.token) >= 16  # a token in every mode, random when none is given
    assert local.urls(8080, ["10.0.0.5"]) == ["http://localhost:8080/"]  # the served page carries the token
    text = local.banner(8080, [], qr=True)
    assert "loopback only" in text and local.token in text and "█" not in text  # no QR code on loopback
    lan = ServeSettings.resolve(lan=True, host="", port=0, https="auto", token="abc")
    assert (lan.host, lan.port, lan.use_tls) == ("0.0.0.0", 8443, True)
    assert lan.urls(8443, ["10.0.0.5", "192.168.1.9"]) == ["https://10.0.0.5:8443/?token=abc",
                                                          "https://192.168.1.9:8443/?token=abc"]
    text = lan.banner(8443, ["10.0.0.5"], fingerprint="AA:BB", qr=False)
    assert "Proceed to 10.0.0.5:8443" in text and "SHA-256 AA:BB" in text and "loopback only" not in text
    plain_lan = ServeSettings.resolve(lan=True, host="0.0.0.0", port=9000, https="off", token="t")
    assert not plain_lan.use_tls and plain_lan.urls(9000, []) == ["http://localhost:9000/?token=t"]
