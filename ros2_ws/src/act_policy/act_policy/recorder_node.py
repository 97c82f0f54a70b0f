"""recorder: one rosbag2 (MCAP) per episode of the contract topics, with its metadata.

Subscribes raw to every configured topic and hands the CDR bytes, as received, to
:class:`act_policy.episode_writer.EpisodeWriter` (timestamp: the node clock at
reception, like ``ros2 bag record``). Episodes are controlled by the services
``/recorder/start``, ``/recorder/stop``, ``/recorder/discard`` (std_srvs/Trigger),
by the keyboard when stdin is a terminal (→ save and start the next episode,
← discard and re-record, Esc save and quit, as LeRobot's recorder), and
automatically: ``stop_after_success`` seconds after ``/task/success`` turns true,
and at ``max_duration``. With ``autostart`` an episode starts at start-up and
again whenever a new ``/episode/scene`` arrives while idle (the scripted expert
resets the sim after each episode). Latched topics are cached and their latest
message is written at the start of every episode, as ``ros2 bag`` records the
transient-local history it receives on subscribing.
"""

from __future__ import annotations

import json
import os
import queue
import sys
import threading
import time
from pathlib import Path
from typing import Any

from act_policy.episode_writer import (
    EpisodeWriter,
    TopicSpec,
    check_free_space,
    next_episode_name,
    software_version,
)
from act_policy.errors import RecorderError
from so100_common import messages, names
from so100_common.node import Node, run_node
from so100_common.qos import LATCHED, SENSOR_DATA, QoS

#: Types (and the QoS the publishers offer) of the contract topics (DESIGN.md §3).
KNOWN_TOPICS: dict[str, tuple[str, QoS]] = {
    names.LEADER_JOINT_STATES: ("sensor_msgs/msg/JointState", QoS(depth=50)),
    names.FOLLOWER_JOINT_STATES: ("sensor_msgs/msg/JointState", QoS(depth=50)),
    names.FOLLOWER_JOINT_COMMANDS: ("sensor_msgs/msg/JointState", QoS(depth=50)),
    names.TASK_SUCCESS: ("std_msgs/msg/Bool", LATCHED),
    names.EPISODE_SCENE: ("std_msgs/msg/String", LATCHED),
    names.ROBOT_DESCRIPTION: ("std_msgs/msg/String", LATCHED),
    **{names.camera_image_topic(c): ("sensor_msgs/msg/Image", SENSOR_DATA) for c in names.CAMERA_NAMES},
    **{names.camera_info_topic(c): ("sensor_msgs/msg/CameraInfo", SENSOR_DATA) for c in names.CAMERA_NAMES},
    **{names.camera_depth_topic(c): ("sensor_msgs/msg/Image", SENSOR_DATA) for c in names.CAMERA_NAMES},
}

DEFAULT_TOPICS = [
    names.LEADER_JOINT_STATES,
    names.FOLLOWER_JOINT_STATES,
    names.FOLLOWER_JOINT_COMMANDS,
    names.camera_image_topic("overhead"),
    names.camera_image_topic("wrist"),
    names.camera_info_topic("overhead"),
    names.camera_info_topic("wrist"),
    names.camera_depth_topic("overhead"),
    names.TASK_SUCCESS,
    names.EPISODE_SCENE,
]

SOURCES = ("leader", "vr", "expert", "policy", "other")


def topic_specs(topics: list[str], type_overrides: list[str]) -> list[TopicSpec]:
    """TopicSpecs for ``topics``: types from KNOWN_TOPICS or from ``topic:type[:latched]`` overrides."""
    overrides: dict[str, tuple[str, QoS]] = {}
    for item in type_overrides:
        parts = item.split(":")
        if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] != "latched"):
            raise RecorderError(f"topic_types entry {item!r}: write it as /topic:pkg/msg/Type[:latched]")
        overrides[parts[0]] = (parts[1], LATCHED if len(parts) == 3 else QoS(depth=50))
    specs = []
    for topic in topics:
        known = overrides.get(topic) or KNOWN_TOPICS.get(topic)
        if known is None:
            raise RecorderError(f"no type known for topic {topic}; add '{topic}:pkg/msg/Type' to topic_types")
        specs.append(TopicSpec(topic, known[0], known[1]))
    return specs


def scene_value(text: str | None) -> Any:
    """The /episode/scene JSON as an object for episode.json; kept as text when it is not JSON."""
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


class KeyboardControl:
    """Arrow keys and Esc from a terminal, read in raw mode on a thread, queued for the executor."""

    ARROWS = {b"\x1b[C": "next", b"\x1b[D": "rerecord", b"\x1bOC": "next", b"\x1bOD": "rerecord"}

    @classmethod
    def parse(cls, data: bytes) -> list[str]:
        """Commands in what one read returned: arrows (CSI or SS3 form), a lone Esc; other keys ignored."""
        out, i = [], 0
        while i < len(data):
            cmd = cls.ARROWS.get(data[i:i + 3])
            if cmd:
                out.append(cmd)
                i += 3
                continue
            if data[i:i + 1] == b"\x1b" and data[i + 1:i + 2] not in (b"[", b"O"):
                out.append("quit")
            i += 1
        return out

    def __init__(self) -> None:
        import termios

        self.commands: queue.SimpleQueue[str] = queue.SimpleQueue()
        self.fd = sys.stdin.fileno()
        self._saved = termios.tcgetattr(self.fd)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="keyboard", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        import select
        import termios
        import tty

        tty.setcbreak(self.fd, termios.TCSANOW)
        try:
            while not self._stop.is_set():
                ready, _, _ = select.select([self.fd], [], [], 0.2)
                if not ready:
                    continue
                for cmd in self.parse(os.read(self.fd, 64)):
                    self.commands.put(cmd)
        finally:
            termios.tcsetattr(self.fd, termios.TCSADRAIN, self._saved)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=1.0)


class RecorderNode(Node):
    def __init__(self, argv: list[str]) -> None:
        super().__init__("recorder", argv=argv)
        self.out_dir = Path(self.declare_parameter("out_dir", "./recordings", description="folder for episodes"))
        topics = self.declare_parameter("topics", DEFAULT_TOPICS, description="topics to record")
        type_overrides = self.declare_parameter(
            "topic_types", [], type_=list, element_type=str, description="types of topics outside the contract: '/topic:pkg/msg/Type[:latched]'"
        )
        self.task = self.declare_parameter("task", "", description="task text stored with each episode")
        self.source = self.declare_parameter("source", "leader", choices=SOURCES,
                                             description="who drives the demonstrations")
        self.fps = self.declare_parameter("fps", 30, min_value=1, description="dataset fps the episodes are for")
        self.stop_after_success = self.declare_parameter(
            "stop_after_success", 1.0, min_value=0.0, description="seconds to keep recording after /task/success")
        self.max_duration = self.declare_parameter("max_duration", 30.0, min_value=0.1,
                                                   description="an episode stops after this many seconds")
        self.autostart = self.declare_parameter(
            "autostart", False, description="start at start-up and on each new /episode/scene while idle")
        self.episodes = self.declare_parameter("episodes", 0, min_value=0,
                                               description="exit after saving this many episodes; 0 = never")
        self.min_free_gb = self.declare_parameter("min_free_gb", 2.0, min_value=0.0,
                                                  description="refuse to start an episode with less free disk")
        self.calibration = self.declare_parameter("calibration", "", description="calibration id or file in use")
        self.flush_interval = self.declare_parameter(
            "flush_interval", 1.0, min_value=0.0, description="seconds between flushes to disk (bounds crash loss)")
        self.specs = topic_specs(list(topics), list(type_overrides))
        self.software = software_version()
        self.writer: EpisodeWriter | None = None
        self.start_ns = 0
        self.start_mono = 0.0
        self.success_at: float | None = None
        self.success_seen = False
        self.success_value = False
        self.latched: dict[str, bytes] = {}
        self.scene: str | None = None
        self.saved = 0
        self.idle_wants_scene = False
        for spec in self.specs:
            self.create_subscription(spec.msgtype, spec.topic, self._make_callback(spec), spec.qos, raw=True)
        if names.EPISODE_SCENE not in self.topics:
            self.create_subscription(messages.String, names.EPISODE_SCENE,
                                     lambda m: self.on_scene(m.data), LATCHED)
        if names.TASK_SUCCESS not in self.topics:
            self.create_subscription(messages.Bool, names.TASK_SUCCESS,
                                     lambda m: self.on_success(bool(m.data)), LATCHED)
        self.create_service("std_srvs/srv/Trigger", names.RECORDER_START, self.srv_start)
        self.create_service("std_srvs/srv/Trigger", names.RECORDER_STOP, self.srv_stop)
        self.create_service("std_srvs/srv/Trigger", names.RECORDER_DISCARD, self.srv_discard)
        self.create_timer(0.05, self.tick)
        self.keyboard = KeyboardControl() if sys.stdin.isatty() else None
        self.logger.info("recorder up: %d topics into %s%s", len(self.specs), self.out_dir,
                         "; keys: → next, ← re-record, Esc stop" if self.keyboard else "")
        if self.autostart:
            self.try_start()

    @property
    def topics(self) -> list[str]:
        return [s.topic for s in self.specs]

    # ------------------------------------------------------------ messages
    def _make_callback(self, spec: TopicSpec):
        def on_raw(sample: tuple[bytes, int]) -> None:
            raw, _source_ts = sample
            if self.writer is not None:  # before the handlers below: a scene may start the next episode
                self.writer.write(spec.topic, self.now_ns(), raw)
            if spec.qos.transient_local:
                self.latched[spec.topic] = raw  # written at the start of the next episode
            if spec.topic == names.EPISODE_SCENE:
                self.on_scene(messages.deserialize(raw, spec.msgtype).data)
            elif spec.topic == names.TASK_SUCCESS:
                self.on_success(bool(messages.deserialize(raw, spec.msgtype).data))

        return on_raw

    def on_scene(self, text: str) -> None:
        self.scene = text
        if self.writer is None and self.idle_wants_scene:
            self.idle_wants_scene = False
            self.try_start()

    def on_success(self, value: bool) -> None:
        if value and not self.success_value and self.writer is not None and self.success_at is None:
            self.success_at = time.monotonic()
            self.success_seen = True
            self.logger.info("task success; stopping in %.1f s", self.stop_after_success)
        self.success_value = value

    # ------------------------------------------------------------ episodes
    def try_start(self) -> tuple[bool, str]:
        if self.writer is not None:
            return False, f"already recording {self.writer.name}"
        try:
            check_free_space(self.out_dir, self.min_free_gb)
            name = next_episode_name(self.out_dir)
            self.start_ns = self.now_ns()
            meta = {
                "task": self.task, "source": self.source, "fps": self.fps, "scene": scene_value(self.scene),
                "calibration": self.calibration or None, "software": self.software, "start_ns": self.start_ns,
                "topics": {s.topic: s.msgtype for s in self.specs}, "recorder": self.fqn,
            }
            self.writer = EpisodeWriter(self.out_dir, name, self.specs, metadata=meta,
                                        flush_interval=self.flush_interval)
        except (RecorderError, OSError) as e:
            self.logger.error("cannot start an episode: %s", e)
            return False, str(e)
        self.start_mono = time.monotonic()
        self.success_at, self.success_seen, self.idle_wants_scene = None, False, False
        for topic, raw in self.latched.items():  # the transient-local history a new subscriber would get
            if topic != names.TASK_SUCCESS:
                self.writer.write(topic, self.start_ns, raw)
        self.logger.info("recording %s", self.writer.partial)
        return True, str(self.writer.partial)

    def try_stop(self, reason: str) -> tuple[bool, str]:
        writer, self.writer = self.writer, None
        if writer is None:
            return False, "not recording"
        stop_ns = self.now_ns()
        try:
            path = writer.close(stop_ns=stop_ns, success=self.success_seen, extra={"stop_reason": reason,
                                                                                   "scene": scene_value(self.scene)})
        except RecorderError as e:
            self.logger.error("%s", e)
            return False, str(e)
        self.saved += 1
        counts = ", ".join(f"{t} {n}" for t, n in writer.counts.items())
        self.logger.info("saved %s (%s): %.2f s, %s; messages: %s", path, reason, (stop_ns - self.start_ns) / 1e9,
                         "success" if self.success_seen else "no success", counts)
        if self.episodes and self.saved >= self.episodes:
            self.logger.info("%d episodes saved; exiting", self.saved)
            self.shutdown()
        elif self.autostart:
            self.idle_wants_scene = True  # the next scene (after a sim reset) starts the next episode
        return True, str(path)

    def try_discard(self) -> tuple[bool, str]:
        writer, self.writer = self.writer, None
        if writer is None:
            return False, "not recording"
        writer.discard()
        self.logger.info("discarded %s", writer.name)
        return True, f"discarded {writer.name}"

    # ------------------------------------------------------------ control
    @staticmethod
    def _reply(response: Any, result: tuple[bool, str]) -> Any:
        response.success, response.message = result
        return response

    def srv_start(self, _request: Any, response: Any) -> Any:
        self.idle_wants_scene = False
        return self._reply(response, self.try_start())

    def srv_stop(self, _request: Any, response: Any) -> Any:
        self.idle_wants_scene = False
        return self._reply(response, self.try_stop("service"))

    def srv_discard(self, _request: Any, response: Any) -> Any:
        self.idle_wants_scene = False
        return self._reply(response, self.try_discard())

    def tick(self) -> None:
        now = time.monotonic()
        if self.writer is not None:
            if self.success_at is not None and now - self.success_at >= self.stop_after_success:
                self.try_stop("success")
            elif now - self.start_mono >= self.max_duration:
                self.try_stop("max_duration")
        if self.keyboard is not None:
            while not self.keyboard.commands.empty():
                self.on_key(self.keyboard.commands.get())

    def on_key(self, cmd: str) -> None:
        if cmd == "next":
            self.try_stop("key")
            self.try_start()
        elif cmd == "rerecord":
            self.try_discard()
            self.try_start()
        elif cmd == "quit":
            self.try_stop("key")
            self.shutdown()

    def destroy(self) -> None:
        if self.keyboard is not None:
            self.keyboard.close()
        if self.writer is not None:  # a clean shutdown keeps what was recorded
            self.try_stop("shutdown")
        super().destroy()


def main() -> int:
    return run_node(RecorderNode)


if __name__ == "__main__":
    raise SystemExit(main())
