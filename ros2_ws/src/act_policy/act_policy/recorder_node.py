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

A full disk: free space is checked at every start and once a second during an episode,
which is stopped and saved below ``min_free_gb``. The first write error stops the episode
with one error line (what was written stays recoverable, see :mod:`act_policy.episode_writer`);
later starts are refused until a test write in ``out_dir`` succeeds.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any

from act_policy.episode_control import EpisodeControl, EpisodeRules, Start, Stop
from act_policy.episode_writer import (
    EpisodeWriter,
    TopicSpec,
    check_free_space,
    free_space_gb,
    next_episode_name,
    probe_write,
    software_version,
)
from act_policy.errors import RecorderError
from act_policy.terminal_keys import KeyboardControl
from so100_common import contract, messages, names
from so100_common.node import Node, run_node
from so100_common.qos import LATCHED, QoS

#: Types (and the QoS the publishers offer) of the contract topics (DESIGN.md §3), from so100_common.contract.
KNOWN_TOPICS: dict[str, tuple[str, QoS]] = {name: (row.type, row.qos) for name, row in contract.topics().items()}

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
#: reader queue depth of the recorder's subscriptions (see RecorderNode)
RECORD_DEPTH = 100
#: seconds between free-space checks during an episode
DISK_CHECK_PERIOD = 1.0
#: after a write error, an episode starts only once a file this big can be written in out_dir (a few chunks)
PROBE_BYTES = 8 * 2**20


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


class RecorderNode(Node):
    def __init__(self, argv: list[str]) -> None:
        super().__init__("recorder", argv=argv)
        p = self.declare_parameter
        self.out_dir = Path(p("out_dir", "./recordings", description="folder for episodes"))
        topics = p("topics", DEFAULT_TOPICS, description="topics to record")
        type_overrides = p("topic_types", [], type_=list, element_type=str,
                           description="types of topics outside the contract: '/topic:pkg/msg/Type[:latched]'")
        self.task = p("task", "", description="task text stored with each episode")
        self.source = p("source", "leader", choices=SOURCES, description="who drives the demonstrations")
        self.fps = p("fps", 30, min_value=1, description="dataset fps the episodes are for")
        rules = EpisodeRules(
            stop_after_success=p("stop_after_success", 1.0, min_value=0.0,
                                 description="seconds to keep recording after /task/success"),
            max_duration=p("max_duration", 30.0, min_value=0.1, description="an episode stops after this many seconds"),
            autostart=p("autostart", False, description="start at start-up and on each new /episode/scene while idle"),
            start_tolerance=p("start_tolerance", 0.1, min_value=0.0,
                              description="an episode starts once the follower is within this of its command on "
                                          "every joint (rad); 0 = start at once"),
            start_timeout=p("start_timeout", 3.0, min_value=0.0,
                            description="seconds to wait for that before starting anyway (with a warning)"),
        )
        self.control = EpisodeControl(rules)
        self.episodes = p("episodes", 0, min_value=0, description="exit after saving this many episodes; 0 = never")
        self.min_free_gb = p("min_free_gb", 2.0, min_value=0.0, description="refuse to start an episode with less "
                                                                            "free disk, and stop one (saved)")
        self.calibration = p("calibration", "", description="calibration id or file in use")
        self.flush_interval = p("flush_interval", 1.0, min_value=0.0,
                                description="seconds between flushes to disk (bounds crash loss)")
        self.specs = topic_specs(list(topics), list(type_overrides))
        self.software = software_version()
        self.writer: EpisodeWriter | None = None
        self.start_ns = 0
        self.start_info: dict[str, Any] = {}
        self.latched: dict[str, bytes] = {}
        self.scene: str | None = None
        self.saved = 0
        self.write_failure: str | None = None  # set by a write error, cleared by a test write that succeeds
        self.disk_checked = 0.0
        for spec in self.specs:
            # the recorder wants every message: a deep reader queue rides out a slow executor (ROS mode over
            # Fast DDS dropped a fifth of the camera frames at depth 5); the publishers' QoS is what the bag keeps
            qos = spec.qos if spec.qos.transient_local else dataclasses.replace(spec.qos, depth=max(spec.qos.depth,
                                                                                                 RECORD_DEPTH))
            self.create_subscription(spec.msgtype, spec.topic, self._make_callback(spec), qos, raw=True)
        if names.EPISODE_SCENE not in self.topics:
            contract.EPISODE_SCENE.subscription(self, lambda m: self.on_scene(m.data))
        if names.TASK_SUCCESS not in self.topics:
            contract.TASK_SUCCESS.subscription(self, lambda m: self.on_success(bool(m.data)))
        for row in (contract.FOLLOWER_JOINT_COMMANDS, contract.FOLLOWER_JOINT_STATES):
            if row.name not in self.topics:  # the clean-start rule compares them even when they are not recorded
                row.subscription(self, self._make_joint_callback(row.name), depth=10)
        self.create_service("std_srvs/srv/Trigger", names.RECORDER_START, self.srv_start)
        self.create_service("std_srvs/srv/Trigger", names.RECORDER_STOP, self.srv_stop)
        self.create_service("std_srvs/srv/Trigger", names.RECORDER_DISCARD, self.srv_discard)
        self.create_timer(0.02, self.tick)
        self.keyboard = KeyboardControl() if sys.stdin.isatty() else None
        self.logger.info("recorder up: %d topics into %s%s", len(self.specs), self.out_dir,
                         "; keys: → next, ← re-record, Esc stop" if self.keyboard else "")
        if rules.autostart:
            self.request_start()

    @property
    def topics(self) -> list[str]:
        return [s.topic for s in self.specs]

    # ------------------------------------------------------------ messages
    def _make_callback(self, spec: TopicSpec):
        on_joints = self._make_joint_callback(spec.topic)

        def on_raw(sample: tuple[bytes, int]) -> None:
            raw, _source_ts = sample
            if self.writer is not None:  # before the handlers below: a scene may start the next episode
                self.record(spec.topic, self.now_ns(), raw)
            if spec.qos.transient_local:
                self.latched[spec.topic] = raw  # written at the start of the next episode
            if spec.topic == names.EPISODE_SCENE:
                self.on_scene(messages.deserialize(raw, spec.msgtype).data)
            elif spec.topic == names.TASK_SUCCESS:
                self.on_success(bool(messages.deserialize(raw, spec.msgtype).data))
            elif spec.topic in (names.FOLLOWER_JOINT_COMMANDS, names.FOLLOWER_JOINT_STATES):
                on_joints(messages.deserialize(raw, spec.msgtype))

        return on_raw

    def _make_joint_callback(self, topic: str):
        feed = self.control.on_command if topic == names.FOLLOWER_JOINT_COMMANDS else self.control.on_state
        order = list(names.JOINT_NAMES)

        def on_joints(msg: Any) -> None:
            by_name = dict(zip(msg.name, msg.position, strict=False))
            if all(j in by_name for j in order):
                feed([by_name[j] for j in order], time.monotonic())

        return on_joints

    def on_scene(self, text: str) -> None:
        self.scene = text
        if self.control.on_scene(time.monotonic()):
            self.logger.info("new scene: waiting for the follower to agree with its command")

    def on_success(self, value: bool) -> None:
        if self.control.on_success(value, time.monotonic()):
            self.logger.info("task success; stopping in %.1f s", self.control.rules.stop_after_success)

    def record(self, topic: str, timestamp_ns: int, raw: bytes) -> None:
        """Write one message; the first write error ends the episode."""
        writer = self.writer
        if writer is None:
            return
        try:
            writer.write(topic, timestamp_ns, raw)
        except RecorderError as e:
            self.writer = None
            self.control.stopped()
            self.episode_failed(writer, e)

    # ------------------------------------------------------------ episodes
    def request_start(self) -> tuple[bool, str]:
        """Ask for an episode; it starts at once when it can (see :mod:`act_policy.episode_control`)."""
        if self.writer is not None:
            return False, f"already recording {self.writer.name}"
        ok, message = self.control.request(time.monotonic())
        if not ok:
            return ok, message
        return self.apply_rules() or (True, f"{message}; recording starts when it does (at most "
                                     f"{self.control.rules.start_timeout:g} s)")

    def start_episode(self, start: Start) -> tuple[bool, str]:
        try:
            check_free_space(self.out_dir, self.min_free_gb)
            if self.write_failure is not None:
                try:
                    probe_write(self.out_dir, PROBE_BYTES)
                except RecorderError as e:
                    raise RecorderError(f"{self.write_failure}; {e}") from e
                self.logger.info("%s takes writes again", self.out_dir)
                self.write_failure = None
            name = next_episode_name(self.out_dir)
            self.start_ns = self.now_ns()
            self.start_info = {"converged": start.converged, "waited_s": round(start.waited, 3),
                               "gap_rad": None if start.gap is None else round(start.gap, 4),
                               "gap_joint": None if start.joint is None else names.JOINT_NAMES[start.joint]}
            meta = {
                "task": self.task, "source": self.source, "fps": self.fps, "scene": scene_value(self.scene),
                "calibration": self.calibration or None, "software": self.software, "start_ns": self.start_ns,
                "topics": {s.topic: s.msgtype for s in self.specs}, "recorder": self.fqn, "start": self.start_info,
            }
            self.writer = EpisodeWriter(self.out_dir, name, self.specs, metadata=meta,
                                        flush_interval=self.flush_interval)
        except (RecorderError, OSError) as e:
            self.control.start_failed()
            self.logger.error("cannot start an episode: %s", e)
            return False, str(e)
        self.control.started(time.monotonic())
        self.disk_checked = time.monotonic()
        for topic, raw in self.latched.items():  # the transient-local history a new subscriber would get
            if topic != names.TASK_SUCCESS:
                self.record(topic, self.start_ns, raw)
        if self.writer is None:
            return False, str(self.write_failure)
        if not start.converged:
            gap = "no command or state received" if start.gap is None else \
                f"largest gap {start.gap:.2f} rad on {self.start_info['gap_joint']}"
            self.logger.warning("the follower did not reach its command within %.1f s (%s); recording %s anyway: its "
                                "first frames may show the follower catching up (so100 dataset from-bags "
                                "--trim-start drops them)", start.waited, gap, self.writer.name)
        self.logger.info("recording %s", self.writer.partial)
        return True, str(self.writer.partial)

    def try_stop(self, reason: str) -> tuple[bool, str]:
        writer, self.writer = self.writer, None
        if writer is None:
            self.control.cancel()
            return False, "not recording"
        stop_ns = self.now_ns()
        success = self.control.success_seen
        self.control.stopped()
        try:
            path = writer.close(stop_ns=stop_ns, success=success, extra={"stop_reason": reason,
                                                                         "scene": scene_value(self.scene)})
        except RecorderError as e:
            self.episode_failed(writer, e)
            return False, str(e)
        self.saved += 1
        counts = ", ".join(f"{t} {n}" for t, n in writer.counts.items())
        self.logger.info("saved %s (%s): %.2f s, %s; messages: %s", path, reason, (stop_ns - self.start_ns) / 1e9,
                         "success" if success else "no success", counts)
        if self.episodes and self.saved >= self.episodes:
            self.logger.info("%d episodes saved; exiting", self.saved)
            self.shutdown()
        return True, str(path)

    def episode_failed(self, writer: EpisodeWriter, error: RecorderError) -> None:
        """Log the write error that ended ``writer``'s episode, once; later starts first test a write."""
        self.write_failure = f"{writer.name} stopped on a write error ({writer.error or error})"
        self.logger.error("%s stopped at its first write error, %.2f GB free in %s: %s", writer.name,
                          free_space_gb(self.out_dir), self.out_dir, error)

    def check_disk(self) -> None:
        """Every DISK_CHECK_PERIOD during an episode: below ``min_free_gb`` free, stop and save it."""
        now = time.monotonic()
        if self.writer is None or self.min_free_gb <= 0 or now - self.disk_checked < DISK_CHECK_PERIOD:
            return
        self.disk_checked = now
        try:
            check_free_space(self.out_dir, self.min_free_gb)
        except (RecorderError, OSError) as e:
            self.logger.error("stopping %s to save it: %s", self.writer.name, e)
            self.try_stop("low_disk")

    def try_discard(self) -> tuple[bool, str]:
        writer, self.writer = self.writer, None
        if writer is None:
            self.control.cancel()
            return False, "not recording"
        self.control.stopped()
        writer.discard()
        self.logger.info("discarded %s", writer.name)
        return True, f"discarded {writer.name}"

    # ------------------------------------------------------------ control
    @staticmethod
    def _reply(response: Any, result: tuple[bool, str]) -> Any:
        response.success, response.message = result
        return response

    def srv_start(self, _request: Any, response: Any) -> Any:
        return self._reply(response, self.request_start())

    def srv_stop(self, _request: Any, response: Any) -> Any:
        self.control.wants_scene = False
        return self._reply(response, self.try_stop("service"))

    def srv_discard(self, _request: Any, response: Any) -> Any:
        self.control.wants_scene = False
        return self._reply(response, self.try_discard())

    def apply_rules(self) -> tuple[bool, str] | None:
        """Start or stop as the episode rules say now; returns the result of a start it made."""
        decision = self.control.tick(time.monotonic())
        if isinstance(decision, Start):
            return self.start_episode(decision)
        if isinstance(decision, Stop):
            self.try_stop(decision.reason)
        return None

    def tick(self) -> None:
        self.apply_rules()
        self.check_disk()
        if self.keyboard is not None:
            while not self.keyboard.commands.empty():
                self.on_key(self.keyboard.commands.get())

    def on_key(self, cmd: str) -> None:
        if cmd == "next":
            self.try_stop("key")
            self.request_start()
        elif cmd == "rerecord":
            self.try_discard()
            self.request_start()
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
