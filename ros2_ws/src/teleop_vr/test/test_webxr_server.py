"""webxr_server as a process against sim_bridge over a real router, driven like the page drives it."""

from __future__ import annotations

import json
import socket
import ssl
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from wsclient import PageClient

from so100_common import messages, names
from so100_common.node import Node
from so100_common.qos import LATCHED, QoS
from so100_common.testing import free_port, wait_for
from so100_sim.kinematics import Kinematics
from so100_sim.task import EpisodeScene

CHROMIUM = Path("/usr/bin/chromium")


class Watcher:
    """A node in the test process that records the leader and follower joint states."""

    def __init__(self) -> None:
        self.node = Node(f"vr_tester_{time.monotonic_ns()}", argv=[])
        self.leader: list[tuple[float, np.ndarray]] = []
        self.follower: list[np.ndarray] = []
        self.scene: list[EpisodeScene] = []
        self.node.create_subscription(messages.JointState, names.LEADER_JOINT_STATES, self._leader, QoS(depth=50))
        self.node.create_subscription(
            messages.JointState,
            names.FOLLOWER_JOINT_STATES,
            lambda m: self.follower.append(np.asarray(m.position, float)),
            QoS(depth=50),
        )
        self.node.create_subscription(
            messages.String, names.EPISODE_SCENE, lambda m: self.scene.append(EpisodeScene.from_json(m.data)), LATCHED
        )
        self.thread = threading.Thread(target=self.node.spin, daemon=True)
        self.thread.start()

    def _leader(self, msg: object) -> None:
        self.leader.append((time.monotonic(), np.asarray(msg.position, float)))  # type: ignore[attr-defined]

    def close(self) -> None:
        self.node.shutdown()
        self.thread.join(5)
        self.node.destroy()


@pytest.fixture(scope="module")
def watch(server):
    w = Watcher()
    wait_for(lambda: w.follower and w.leader, 15, "follower and leader joint states")
    yield w
    w.close()


@pytest.fixture(scope="module")
def kin() -> Kinematics:
    return Kinematics()


@pytest.fixture
def client(server):
    c = PageClient(f"ws://127.0.0.1:{server[1]}/ws?token={server[2]}")
    yield c
    c.close()


def drive(
    c: PageClient,
    start: np.ndarray,
    end: np.ndarray,
    seconds: float,
    hold: float = 0.0,
    rate: float = 72.0,
    grip: float = 1.0,
) -> None:
    """Send controller inputs moving linearly from ``start`` to ``end``, then holding there."""
    n = max(1, int(seconds * rate))
    for i in range(n + int(hold * rate)):
        s = min(1.0, i / n)
        c.send_input(start + s * (end - start), grip=grip)
        time.sleep(1.0 / rate)


def tool(kin: Kinematics, q: np.ndarray) -> np.ndarray:
    return kin.fk(q)[0]


def test_scene_and_poses_reach_the_page(client, watch):
    """The scene's geometry and streamed poses put the brick where the sim says it is."""
    scene = client.wait("scene")
    frames = {g["frame"] for g in scene["geometry"]}
    assert {"brick", "bowl", "base_link", "gripper_link", "world"} <= frames
    assert all(g["type"] in ("box", "sphere", "cylinder") and len(g["pose"]) == 7 for g in scene["geometry"])
    first, t0 = client.count("poses"), time.monotonic()
    wait_for(lambda: client.count("poses") - first >= 30, 10, "30 pose frames")
    rate = (client.count("poses") - first) / (time.monotonic() - t0)
    assert rate >= 10, f"{rate:.1f} pose frames/s; the sim publishes /tf at 30 Hz"
    poses = client.latest("poses")["frames"]
    wait_for(lambda: watch.scene, 10, "/episode/scene")
    brick = np.array(poses["brick"][:3])
    assert np.linalg.norm(brick[:2] - np.array(watch.scene[-1].brick_pos[:2])) < 0.005, (brick, watch.scene[-1])
    assert client.wait("image")["camera"] == "overhead"


def test_controller_moves_the_tool_to_the_target(client, watch, kin):
    """Clutch held: the controller's displacement moves the simulated tool there within 5 mm, at >= 60 Hz."""
    status = client.wait("status")
    start_target = np.array(client.latest("status")["target"])
    hand = np.array([0.3, 0.2, 1.1])  # anywhere: only its motion counts
    delta = np.array([0.04, 0.05, -0.06])
    drive(client, hand, hand, 0.1)
    drive(client, hand, hand + delta, 0.6, hold=1.8)
    st = client.latest("status")
    assert st["controller"] == client.id and st["engaged"], st
    goal = start_target + delta
    assert np.allclose(st["target"], goal, atol=1e-3), (st["target"], goal)
    reached = np.linalg.norm(tool(kin, watch.follower[-1]) - goal)
    assert reached < 0.005, f"the simulated tool is {1000 * reached:.1f} mm from the target"
    stamps = [t for t, _ in watch.leader if t > time.monotonic() - 1.0]
    assert len(stamps) >= 60, f"{len(stamps)} /leader/joint_states in the last second"
    del status
    # release-to-stop: letting go of the grip while moving stops the target where it is
    drive(client, hand + delta, hand + delta + np.array([0.0, 0.0, 0.2]), 0.1, grip=1.0)
    client.send_input(hand + delta + np.array([0.0, 0.0, 0.2]), grip=0.0)
    wait_for(lambda: not client.latest("status")["engaged"], 5, "the clutch to disengage")
    held = client.latest("status")["target"]
    drive(client, hand, hand + np.array([0.1, 0.0, 0.0]), 0.3, grip=0.0)  # motion without the clutch
    assert np.allclose(client.latest("status")["target"], held, atol=1e-4)
    assert not client.latest("status")["engaged"]
    client.send({"type": "release"})


def test_bad_messages_are_dropped(server, client):
    """Garbage, NaN, wrong shapes and oversized frames are refused; the node and other clients carry on."""
    bad = PageClient(f"ws://127.0.0.1:{server[1]}/ws?token={server[2]}")
    junk = [
        "not json {",
        "[1, 2, 3]",
        '{"type": 5}',
        '{"type": "fly"}',
        "[" * 5000 + "]" * 5000,
        '{"type": "input", "seq": 1, "controller": {"pose": [NaN, 0, 0, 0, 0, 0, 1], "grip": 1}}',
        '{"type": "input", "seq": 1, "controller": {"pose": [1e999, 0, 0, 0, 0, 0, 1], "grip": 1}}',
        '{"type": "input", "seq": 1, "controller": {"pose": [0, 0, 0, 0, 0, 0, 0], "grip": 1}}',
        '{"type": "input", "seq": 1, "controller": {"pose": [0, 0, 0], "grip": 1}}',
        '{"type": "input", "seq": -1, "controller": null}',
        '{"type": "input", "seq": 1, "controller": {"pose": [0, 0, 0, 0, 0, 0, 1], "grip": 7}}',
        json.dumps({"type": "hello", "client": "x" * 20000}),
        b"\x00\x01binary",
    ]
    for frame in junk:
        bad.send(frame)
    wait_for(lambda: bad.count("error") >= len(junk), 5, f"{len(junk)} error replies")
    assert any("exceeds" in e["error"] for e in bad.messages["error"])
    assert any("not finite" in e["error"] or "not a number" in e["error"] for e in bad.messages["error"])
    assert client.wait("status") and client.latest("status")["controller"] is None  # none of it took control
    bad.send("x" * (2 << 20))  # beyond the frame limit: that client is closed, nobody else
    wait_for(lambda: bad.closed is not None, 5, "the oversized client to be closed")
    assert bad.closed.rcvd is not None and bad.closed.rcvd.code == 1009
    before = client.count("poses")
    wait_for(lambda: client.count("poses") > before + 5, 5, "poses to keep flowing to the other client")
    again = PageClient(f"ws://127.0.0.1:{server[1]}/ws?token={server[2]}")
    again.wait("poses")
    again.close()
    proc = server[0]
    assert proc.alive()
    proc.wait_output("dropped a bad message", 5)


def test_second_controller_cannot_take_over(server, client):
    """While one client drives, another's inputs are refused; it becomes controller only after release."""
    other = PageClient(f"ws://127.0.0.1:{server[1]}/ws?token={server[2]}")
    stop = threading.Event()

    def keep_driving() -> None:
        while not stop.is_set():
            client.send_input([0.0, 0.0, 1.0], grip=0.0)
            time.sleep(1 / 72)

    t = threading.Thread(target=keep_driving)
    t.start()
    try:
        client.wait("status")
        wait_for(lambda: client.latest("status")["controller"] == client.id, 5, "client to control")
        for _ in range(20):
            other.send_input([0.5, 0.5, 1.5], grip=1.0)
            time.sleep(0.01)
        err = other.wait("error")
        assert f"client {client.id} is controlling" in err["error"]
        time.sleep(0.2)
        assert client.latest("status")["controller"] == client.id
        assert not client.latest("status")["engaged"]
    finally:
        stop.set()
        t.join()
    client.send({"type": "release"})
    wait_for(lambda: client.latest("status")["controller"] is None, 5, "release")
    other.send_input([0.5, 0.5, 1.5], grip=0.0)
    wait_for(lambda: client.latest("status")["controller"] == other.id, 5, "the other client to take control")
    other.close()  # a controller that disconnects releases the arm
    wait_for(lambda: client.latest("status")["controller"] is None, 5, "release on disconnect")
    server[0].wait_output("refused controller input", 5)


def test_arm_holds_when_the_controller_goes_silent(server, client, watch, kin):
    """A controller that stops sending mid-motion is released within 250 ms and the arm holds."""
    hand = np.array([0.0, 0.3, 1.0])
    client.wait("status")
    drive(client, hand, hand, 0.1)
    drive(client, hand, hand + np.array([-0.08, 0.0, 0.0]), 0.4)  # still moving when it goes quiet
    silent_at = time.monotonic()
    wait_for(lambda: client.latest("status")["controller"] is None, 2, "release after silence")
    released_after = time.monotonic() - silent_at
    # 250 ms exactly is the session's unit test; here the node's tick and the 10 Hz status add their
    # delays, which a machine busy with other jobs stretches
    assert released_after < 2.0, released_after
    line = server[0].wait_output("stopped sending (silent", 5)
    assert 250 <= float(line.split("silent ")[1].split(" ms")[0]) < 2000, line
    time.sleep(0.5)
    since = time.monotonic()
    wait_for(lambda: sum(t >= since for t, _ in watch.leader) >= 60, 10, "60 /leader/joint_states while held")
    held = np.array([q for t, q in watch.leader if t >= since])
    assert len(held) >= 60 and np.ptp(held, axis=0).max() < 0.01, np.ptp(held, axis=0)
    tools = np.array([tool(kin, q) for q in watch.follower[-30:]])
    assert np.ptp(tools, axis=0).max() < 0.003


def wait_js(page, expression: str, timeout: float) -> None:
    """Poll a page expression from Python: the page's CSP forbids the eval that Playwright's wait_for_function
    uses for string predicates (and the tests run the page under its real CSP)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if page.evaluate(f"() => Boolean({expression})"):
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {expression}")


def _get(port: int, path: str = "/", host: str | None = None):
    import urllib.request

    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers={"Host": host} if host else {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, dict(r.headers), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read().decode()


def _ws_status(url: str, **kw) -> int:
    """The HTTP status of a WebSocket handshake (101 when it opened)."""
    from websockets.sync.client import connect

    try:
        with connect(url, open_timeout=10, **kw):
            return 101
    except InvalidStatus as e:
        return e.response.status_code


def test_only_the_operators_page_opens_the_websocket(server):
    """Loopback mode too: the token on every WebSocket, the page's own Origin only, the page's own Host only."""
    proc, port, token = server
    ws = f"ws://127.0.0.1:{port}/ws"
    assert _ws_status(ws) == 403  # no token (a foreign page cannot read it out of the operator's page)
    assert _ws_status(f"{ws}?token=wrong-token-123") == 403
    assert _ws_status(f"{ws}?token={token}", origin="http://evil.example") == 403  # cross-site WebSocket hijack
    assert _ws_status(f"{ws}?token={token}", origin=f"http://localhost:{port + 1}") == 403
    assert _ws_status(f"{ws}?token={token}", origin=f"http://localhost:{port}") == 101  # the page itself
    # DNS rebinding: a foreign name that resolves to 127.0.0.1 (here: a socket to loopback, the URL's host foreign)
    assert _ws_status(f"ws://evil.example:{port}/ws?token={token}",
                      sock=socket.create_connection(("127.0.0.1", port))) == 403
    proc.wait_output("WebSocket from a foreign page (http://evil.example) refused", 5)


def test_the_page_carries_the_token_to_this_machine_with_security_headers(server):
    proc, port, token = server
    status, headers, body = _get(port)
    assert status == 200 and f'content="{token}"' in body  # a local user opens one URL, nothing else
    assert headers["X-Frame-Options"] == "DENY" and "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert headers["Cache-Control"] == "no-store" and headers["Referrer-Policy"] == "no-referrer"
    assert "'sha256-" in headers["Content-Security-Policy"]  # the import map, by hash
    status, headers, body = _get(port, "/app.js")
    assert status == 200 and headers["X-Content-Type-Options"] == "nosniff"
    status, _, body = _get(port, "/", host=f"evil.example:{port}")  # DNS rebinding: a foreign name for 127.0.0.1
    assert status == 403 and token not in body


def test_a_flood_of_inputs_is_rate_limited_per_client(server):
    """3000 inputs at once: what is over 4x the input rate is dropped unparsed, and once max_input_rate frames were
    dropped the client is disconnected (1008) rather than left to spend the server's CPU; others are served."""
    proc, port, token = server
    flood = PageClient(f"ws://127.0.0.1:{port}/ws?token={token}")
    try:
        try:
            for _ in range(3000):
                flood.send_input(np.array([0.0, 0.3, 1.0]), grip=0.0)
        except ConnectionClosed:
            pass  # the server closed it mid-flood
        wait_for(lambda: flood.closed is not None, 10, "the flooding client disconnected")
        assert flood.closed.rcvd is not None and flood.closed.rcvd.code == 1008, flood.closed
        proc.wait_output("sends more than 960 messages/s: disconnecting it", 10)
        line = proc.wait_output("inputs over the rate limit", 12)
        wait_for(lambda: any(int(ln.split(" inputs over the rate limit")[0].rsplit(", ", 1)[1]) > 240
                             for ln in proc.lines if "inputs over the rate limit" in ln), 12,
                 f"the flood dropped by the rate limit until the client was closed: {line}")
        polite = PageClient(f"ws://127.0.0.1:{port}/ws?token={token}")
        polite.close()
    finally:
        flood.close()


def test_lan_mode_requires_the_token(procs, sim, tmp_path):
    """Serving the LAN: HTTPS with a generated certificate, and no WebSocket without the pairing token."""
    port = free_port()
    proc = procs.node(
        "webxr_server",
        "-r",
        "__node:=webxr_lan",
        "-p",
        "lan:=true",
        "-p",
        f"port:={port}",
        "-p",
        f"cert_dir:={tmp_path}",
        "-p",
        "cameras:=['']",
        "-p",
        "qr:=false",
    )
    line = proc.wait_output("webxr_server up", 30)
    token = proc.wait_output("pairing token:").split("pairing token: ")[1].split()[0]
    assert f"?token={token}" in line and "HTTPS" in line
    ctx = ssl.create_default_context(cafile=str(tmp_path / "cert.pem"))
    ctx.check_hostname = False  # the certificate names the LAN addresses; the chain is what is checked
    for url in (f"wss://127.0.0.1:{port}/ws", f"wss://127.0.0.1:{port}/ws?token=wrong-token-123"):
        with pytest.raises(InvalidStatus) as e:
            PageClient(url, ssl_context=ctx)
        assert e.value.response.status_code == 403
    proc.wait_output("refused a request from 127.0.0.1", 5)
    ok = PageClient(f"wss://127.0.0.1:{port}/ws?token={token}", ssl_context=ctx)
    assert ok.wait("scene")["geometry"]
    ok.close()
    with pytest.raises((ssl.SSLError, ConnectionClosed, OSError)):
        PageClient(f"wss://127.0.0.1:{port}/ws?token={token}", ssl_context=ssl.create_default_context())


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (./setup.sh installs it: apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--enable-unsafe-swiftshader", "--ignore-gpu-blocklist"],
        )
        yield b
        b.close()


def _project(state: dict, world: np.ndarray) -> np.ndarray:
    """Pixel (x, y) of a point of the scene's world frame, from the page's own camera matrices."""
    m = lambda key: np.array(state[key]).reshape(4, 4).T  # three.js stores column-major  # noqa: E731
    clip = m("projection") @ m("view") @ m("root") @ np.append(world, 1.0)
    ndc = clip[:3] / clip[3]
    return np.array([(ndc[0] + 1) / 2 * state["width"], (1 - ndc[1]) / 2 * state["height"]])


def _colour_near(img: np.ndarray, px: np.ndarray, test, radius: int = 6) -> float:
    """Share of pixels within ``radius`` of ``px`` for which ``test(r, g, b)`` holds."""
    x, y = int(round(px[0])), int(round(px[1]))
    patch = img[max(0, y - radius) : y + radius + 1, max(0, x - radius) : x + radius + 1].astype(float)
    r, g, b = patch[..., 0], patch[..., 1], patch[..., 2]
    return float(np.mean(test(r, g, b)))


def test_page_renders_the_scene_in_chromium(server, browser, client):
    """Headless Chromium draws the arm, the brick and the bowl where the sim's poses put them."""
    from io import BytesIO

    from PIL import Image

    page = browser.new_page(viewport={"width": 800, "height": 600})
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"http://localhost:{server[1]}/?panels=0")
    wait_js(page, "window.teleop && teleop.scene && teleop.posesReceived > 5", 20)
    page.wait_for_timeout(300)
    state = page.evaluate("teleop.cameraState()")
    age = page.evaluate("teleop.poseAgeMs")
    shot = np.array(Image.open(BytesIO(page.screenshot())).convert("RGB"))
    hud = page.inner_text("#hud")
    page.close()
    assert not errors, errors
    assert age is not None and age < 3000 and "pose age" in hud  # poses are live (software GL on a busy CPU)
    poses = client.latest("poses")["frames"]
    scale = shot.shape[1] / state["width"]
    brick = _project(state, np.array(poses["brick"][:3])) * scale
    bowl = _project(state, np.array(poses["bowl"][:3]) + [0, 0, 0.003]) * scale
    # the upper arm's beam, half way between the shoulder and the elbow
    arm = _project(state, (np.array(poses["upper_arm_link"][:3]) + np.array(poses["lower_arm_link"][:3])) / 2) * scale
    red = lambda r, g, b: (r > 90) & (r > 2 * g) & (r > 2 * b)  # noqa: E731
    blue = lambda r, g, b: (b > 80) & (b > 1.3 * r) & (b > g)  # noqa: E731
    yellow = lambda r, g, b: (r > 120) & (g > 90) & (b < 0.6 * g)  # noqa: E731
    assert _colour_near(shot, brick, red) > 0.5, f"no brick at {brick}"
    assert _colour_near(shot, bowl, blue) > 0.5, f"no bowl at {bowl}"
    assert _colour_near(shot, arm, yellow, radius=4) > 0.2, f"no arm at {arm}"
    # and nothing red where there is no brick: the bowl's spot is not red, the brick's not blue
    assert _colour_near(shot, bowl, red) < 0.05 and _colour_near(shot, brick, blue) < 0.05


def test_vr_session_streams_the_controller(server, browser, client):
    """Under Meta's WebXR emulator (iwer) the page enters immersive-vr and streams head and controller poses."""
    page = browser.new_page(viewport={"width": 800, "height": 600})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"http://localhost:{server[1]}/?emulate=quest&panels=0")
    wait_js(page, "window.teleop && teleop.ready && teleop.connected && teleop.id", 20)
    page.evaluate("teleop.enterVR()")
    wait_js(page, "teleop.inXR && teleop.inputsSent > 20", 20)
    page_id = page.evaluate("teleop.id")
    wait_for(lambda: client.latest("status")["controller"] == page_id, 5, "the emulated headset to take control")
    page.close()
    wait_for(lambda: client.latest("status")["controller"] is None, 5, "release when the page goes away")
    assert not errors, errors
