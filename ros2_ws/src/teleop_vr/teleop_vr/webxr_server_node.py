"""webxr_server: the VR operator as a leader arm, and the scene for the page.

Serves the page and its WebSocket (:mod:`teleop_vr.ws_server`), forwards the scene (geometry from
``/scene/markers`` and ``/robot_description``, body poses from ``/tf`` as they arrive, optional
JPEG camera frames) and turns the controlling client's controller into ``/leader/joint_states``
at ``rate`` through :class:`teleop_vr.clutch.Clutch`. It starts from ``/follower/joint_states``
and publishes nothing before it has seen them; afterwards it always publishes, so a released arm
holds where it is. Loopback and plain HTTP by default; ``lan:=true`` serves every interface
over HTTPS with a self-signed certificate and a pairing token, printed with a QR code at start-up.
"""

from __future__ import annotations

import base64
import logging
import math
import socket
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from so100_common import contract, messages, names
from so100_common.node import Node, run_node
from so100_common.qos import LATCHED, QoS
from teleop_vr import protocol, scene_feed, tls
from teleop_vr.clutch import Clutch, ClutchConfig, ControllerSample
from teleop_vr.serve_settings import ServeSettings
from teleop_vr.session import SessionConfig
from teleop_vr.ws_server import ServerConfig, WebXrServer, find_web_dir

REPORT_PERIOD = 5.0  # s between rate/drop log lines
STATUS_PERIOD = 0.1  # s between status frames to the pages


class WebXrServerNode(Node):
    def __init__(self, argv: list[str]) -> None:
        super().__init__("webxr_server", argv=argv)
        p = self.declare_parameter
        self.lan = p("lan", False, description="serve every interface (Quest browser over Wi-Fi): HTTPS + token")
        host = p("host", "", description="address to bind; empty = 127.0.0.1, or 0.0.0.0 with lan:=true")
        port = p("port", 0, description="TCP port; 0 = 8080 (HTTP) or 8443 (HTTPS)", min_value=0, max_value=65535)
        https = p("https", "auto", choices=["auto", "on", "off"], description="TLS; auto = on with lan:=true")
        token = p("token", "", description="pairing token required by the WebSocket in every mode; empty = a random "
                               "one (a page served to this machine carries it; a LAN browser needs the printed URL)")
        self.rate = p("rate", 100.0, description="/leader/joint_states rate (Hz)", min_value=60.0, max_value=500.0)
        release = p(
            "release_timeout",
            0.25,
            description="controller silence that releases the arm (s)",
            min_value=0.02,
            max_value=5.0,
        )
        self.cameras = p(
            "cameras",
            ["overhead", "wrist"],
            element_type=str,
            description="camera feeds for the page's panels; [''] or [] = none",
        )
        self.camera_rate = p(
            "camera_rate", 10.0, description="JPEG frames per second per camera", min_value=0.5, max_value=30.0
        )
        self.camera_width = p(
            "camera_width", 320, description="width of the JPEG frames (px)", min_value=32, max_value=1280
        )
        cfg = ClutchConfig()
        clutch = ClutchConfig(
            workspace_min=tuple(
                p(
                    "workspace_min",
                    list(cfg.workspace_min),
                    element_type=float,
                    description="tool workspace lower corner x, y, z (m, base frame)",
                )
            ),
            workspace_max=tuple(
                p(
                    "workspace_max",
                    list(cfg.workspace_max),
                    element_type=float,
                    description="tool workspace upper corner x, y, z (m, base frame)",
                )
            ),
            max_speed=p("max_speed", cfg.max_speed, description="tool target speed limit (m/s)", min_value=0.01),
            max_joint_speed=p(
                "max_joint_speed", cfg.max_joint_speed, description="joint target speed limit (rad/s)", min_value=0.1
            ),
            scale=p("scale", cfg.scale, description="tool motion per controller motion", min_value=0.1, max_value=5.0),
            follow_orientation=p(
                "follow_orientation", cfg.follow_orientation, description="the controller's rotation turns the tool"
            ),
            trim_gain=p(
                "trim_gain",
                cfg.trim_gain,
                description="follower trim integral gain (1/s), 0 = off",
                min_value=0.0,
                max_value=20.0,
            ),
        )
        web_dir = p("web_dir", "", description="the page's folder; empty = found next to the package")
        cert_dir = p("cert_dir", "", description="where the self-signed certificate is kept; empty = ~/.cache/so100")
        self.qr = p("qr", True, description="print the LAN URL as a QR code")
        self.end_parameters()  # --help stops here, before the certificate and the port

        self.serve = ServeSettings.resolve(lan=self.lan, host=host, port=port, https=https, token=token)
        host, port = self.serve.host, self.serve.port
        self.cert = None
        ssl_ctx = None
        if self.serve.use_tls:
            self.cert = tls.ensure_certificate(
                tls.lan_addresses() + ([] if self.serve.binds_every_interface else [host]),
                **({"directory": Path(cert_dir).expanduser()} if cert_dir else {}),
            )
            ssl_ctx = self.cert.server_context()
        self.clutch = Clutch(clutch)
        self.tf = scene_feed.TfTree(names.WORLD_FRAME)
        self.markers: list[dict[str, Any]] = []
        self.urdf: list[dict[str, Any]] = []
        self.follower: np.ndarray | None = None
        self.follower_at = -math.inf
        self.base_pose = np.array(scene_feed.IDENTITY)
        self._lock = threading.Lock()  # the input slot, shared with the server's thread
        self._input: tuple[protocol.Input, float] | None = None
        self._release = False
        self._last_tick = time.monotonic()
        self._pose_seq = 0
        self._published = 0
        self._camera_last: dict[str, float] = {}

        self.pub = contract.LEADER_JOINT_STATES.publisher(self)
        contract.FOLLOWER_JOINT_STATES.subscription(self, self.on_follower, depth=5)
        self.create_subscription("visualization_msgs/msg/MarkerArray", names.SCENE_MARKERS, self.on_markers, LATCHED)
        contract.ROBOT_DESCRIPTION.subscription(self, self.on_description)
        self.create_subscription("tf2_msgs/msg/TFMessage", names.TF, self.on_tf, QoS(depth=20))
        for cam in [c for c in self.cameras if c]:
            contract.camera_image(cam).subscription(self, lambda raw, cam=cam: self.on_image(cam, raw), raw=True)

        extra_hosts = tuple(tls.lan_addresses()) + (socket.gethostname(), f"{socket.gethostname()}.local") \
            if self.serve.binds_every_interface else ()
        self.server = WebXrServer(
            ServerConfig(
                find_web_dir(web_dir), host, port, ssl_ctx,
                SessionConfig(release_timeout=release, token=self.serve.token),
                extra_hosts=extra_hosts,
            ),
            on_input=self._on_input,
            on_release=self._on_release,
        )
        logging.getLogger("websockets").setLevel(logging.WARNING)  # ws_server logs clients itself
        self.server.start()
        self.create_timer(1.0 / self.rate, self.tick)
        self.create_timer(STATUS_PERIOD, self.send_status)
        self.create_timer(REPORT_PERIOD, self.report)
        self.logger.info(self.serve.banner(self.server.port, tls.lan_addresses(),
                                           fingerprint=self.cert.fingerprint if self.cert else None, qr=self.qr))

    # ------------------------------------------------------------ server thread
    def _on_input(self, client: int, msg: protocol.Input, now: float) -> None:
        with self._lock:
            self._input = (msg, now)

    def _on_release(self, client: int, reason: str) -> None:
        with self._lock:
            self._input = None
            self._release = True

    # ------------------------------------------------------------ ROS callbacks
    def on_follower(self, msg: Any) -> None:
        if list(msg.name) == list(names.JOINT_NAMES) and np.all(np.isfinite(msg.position)):
            self.follower = np.asarray(msg.position, float)
            self.follower_at = time.monotonic()

    def on_markers(self, msg: Any) -> None:
        self.markers = scene_feed.markers_to_json(msg)
        self._send_scene()

    def on_description(self, msg: Any) -> None:
        try:
            self.urdf = scene_feed.urdf_visuals(msg.data)
        except Exception as e:
            self.logger.warning("ignoring an unreadable /robot_description: %s", e)
            return
        self._send_scene()

    def _send_scene(self) -> None:
        geometry = scene_feed.scene_geometry(self.markers, self.urdf)
        self.server.publish("scene", {"type": "scene", "root": names.WORLD_FRAME, "geometry": geometry}, keep=True)

    def on_tf(self, msg: Any) -> None:
        received_ms = time.time() * 1000
        self.tf.update(msg)
        poses = self.tf.poses()
        if names.BASE_FRAME in poses:
            self.base_pose = poses[names.BASE_FRAME]
        stamp = messages.stamp_to_ns(msg.transforms[0].header.stamp) if msg.transforms else 0
        self._pose_seq += 1
        self.server.publish(
            "poses",
            {
                "type": "poses",
                "seq": self._pose_seq,
                "stamp_ns": stamp,
                "rx_ms": received_ms,
                "sent_ms": time.time() * 1000,
                "frames": scene_feed.poses_json(poses),
            },
            keep=True,
        )

    def on_image(self, camera: str, raw: tuple[bytes, int]) -> None:
        now = time.monotonic()
        if now - self._camera_last.get(camera, -1e9) < 1.0 / self.camera_rate or not self.server.status()["clients"]:
            return
        self._camera_last[camera] = now
        img = messages.deserialize(raw[0], messages.Image.__msgtype__)
        if img.encoding != "rgb8":
            return
        data = scene_feed.jpeg(messages.image_to_numpy(img), max_width=self.camera_width)
        self.server.publish(
            f"image/{camera}",
            {
                "type": "image",
                "camera": camera,
                "stamp_ns": messages.stamp_to_ns(img.header.stamp),
                "jpeg": base64.b64encode(data).decode(),
            },
        )

    # ------------------------------------------------------------ control loop
    def tick(self) -> None:
        now = time.monotonic()
        dt, self._last_tick = now - self._last_tick, now
        self.server.expire(now)
        with self._lock:
            pending = self._input
            release, self._release = self._release, False
        if release:
            self.clutch.release()
        if not self.clutch.synced:
            if self.follower is None:
                return
            self.clutch.sync(self.follower)
            self.logger.info("starting from the follower's joints %s", np.round(self.follower, 3).tolist())
        sample = self._sample(pending[0]) if pending is not None else None
        q = self.clutch.step(sample, dt, self.follower, now - self.follower_at)
        if q is not None:
            self.pub.publish(messages.joint_state(names.JOINT_NAMES, q, stamp_ns=time.time_ns()))
            self._published += 1

    def _sample(self, msg: protocol.Input) -> ControllerSample | None:
        """The controller in the arm's base frame (the page sends the scene's world frame)."""
        if msg.controller is None:
            return None
        world = np.concatenate((msg.controller.pose.position, msg.controller.pose.quat))
        local = scene_feed.compose(scene_feed.inverse(self.base_pose), world)
        return ControllerSample(local[:3], local[3:], msg.controller.grip, msg.controller.trigger)

    def send_status(self) -> None:
        st = self.server.status()
        tool = [
            round(float(v), 4)
            for v in scene_feed.compose(
                self.base_pose,
                np.concatenate((self.clutch.target_pos, self.clutch.target_quat)),
            )[:3]
        ]
        self.server.publish(
            "status",
            {"type": "status", **st, "engaged": self.clutch.engaged, "synced": self.clutch.synced, "target": tool},
        )

    def report(self) -> None:
        s = self.server.take_stats()
        sent = sum(v for k, v in s.sent.items() if k == "poses")
        self.logger.info(
            "%d client(s), controller %s; per s: %.1f pose frames sent, %.1f inputs in, %.1f leader commands; "
            "dropped: %d bad messages, %d frames to slow clients %s, %d refused inputs, %d inputs over the rate limit, "
            "%d refused connections %s",
            self.server.status()["clients"],
            self.server.status()["controller"],
            sent / REPORT_PERIOD,
            s.received["input"] / REPORT_PERIOD,
            self._published / REPORT_PERIOD,
            s.dropped_bad,
            sum(s.dropped_slow.values()),
            dict(s.dropped_slow) or "",
            s.refused_inputs,
            s.rate_limited,
            s.rejected_connections,
            dict(s.rejected_requests) or "",
        )
        self._published = 0
        if self.clutch.clamped or self.clutch.ik_misses:
            self.logger.info(
                "workspace clamps %d, unreachable targets %d ticks", self.clutch.clamped, self.clutch.ik_misses
            )
            self.clutch.clamped = self.clutch.ik_misses = 0

    def destroy(self) -> None:
        self.server.stop()
        super().destroy()


def main() -> int:
    return run_node(WebXrServerNode)


if __name__ == "__main__":
    raise SystemExit(main())
