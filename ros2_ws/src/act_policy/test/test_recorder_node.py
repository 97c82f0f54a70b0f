"""recorder over a real router: services, raw CDR in real bags, metadata, auto-stop, kill -9, disk check, full disk."""

import json
import os
import signal
import sys
import time

import numpy as np
import pytest
from rosbags.rosbag2 import Reader

from act_policy.episode_writer import free_space_gb, read_episode_json, recover_partial
from so100_common import messages, names
from so100_common.node import Node
from so100_common.qos import LATCHED, SENSOR_DATA, QoS
from so100_common.testing import BIN, wait_for

EXTRA = "/test/extra"
TOPICS = [names.LEADER_JOINT_STATES, names.camera_image_topic("overhead"), names.TASK_SUCCESS,
          names.EPISODE_SCENE, EXTRA]


def _list(items):
    return "[" + ",".join(items) + "]"


SERVICES = (("start", names.RECORDER_START), ("stop", names.RECORDER_STOP), ("discard", names.RECORDER_DISCARD))
#: runs argv[2:] with a file-size limit of argv[1] bytes: a full disk without root (writes past it raise EFBIG)
LIMIT_FILE_SIZE = ("import os, resource, signal, sys; signal.signal(signal.SIGXFSZ, signal.SIG_IGN); "
                   "resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[1]),) * 2); os.execv(sys.argv[2], sys.argv[2:])")


def start_recorder(graph, out_dir, node_name, *params, prefix="", file_size_limit=None):
    """A recorder process; with ``prefix`` its services move to ``<prefix>/recorder/...``; with ``file_size_limit``
    (bytes) no file it writes can grow past that."""
    remaps = [a for _, s in SERVICES for a in ("-r", f"{s}:={prefix}{s}")] if prefix else []
    args = ["-r", f"__node:={node_name}", *remaps, "-p", f"out_dir:={out_dir}", "-p", f"topics:={_list(TOPICS)}",
            "-p", f"topic_types:=[{EXTRA}:std_msgs/msg/String]", "-p", "min_free_gb:=0.0",
            "-p", "start_tolerance:=0.0", *params]
    if file_size_limit is None:
        proc = graph.node("recorder", *args)
    else:
        proc = graph.start([sys.executable, "-c", LIMIT_FILE_SIZE, str(file_size_limit), str(BIN / "recorder"),
                            "--ros-args", *args])
    proc.wait_output("recorder up", 30)
    return proc


class Driver:
    """The test's own node: publishes the recorded topics and calls the recorder's services."""

    def __init__(self) -> None:
        self.node = Node(f"rec_tester_{time.monotonic_ns()}", argv=[])
        n = self.node
        self.joint = n.create_publisher(messages.JointState, names.LEADER_JOINT_STATES, QoS(depth=50))
        self.image = n.create_publisher(messages.Image, names.camera_image_topic("overhead"), SENSOR_DATA)
        self.success = n.create_publisher(messages.Bool, names.TASK_SUCCESS, LATCHED)
        self.scene = n.create_publisher(messages.String, names.EPISODE_SCENE, LATCHED)
        self.extra = n.create_publisher(messages.String, EXTRA)
        self.clients = {}

    def call(self, what: str, prefix: str = ""):
        service = prefix + dict(SERVICES)[what]
        if service not in self.clients:
            self.clients[service] = self.node.create_client("std_srvs/srv/Trigger", service)
        client = self.clients[service]
        assert client.wait_for_service(15), f"{client.name} not available"
        return client.call(timeout=10)


@pytest.fixture(scope="module")
def tester(graph):
    t = Driver()
    yield t
    t.node.destroy()


@pytest.fixture(scope="module")
def rec_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("recordings")


@pytest.fixture(scope="module")
def recorder(graph, tester, rec_dir):
    proc = start_recorder(graph, rec_dir, "recorder", "-p", "task:=pick the brick", "-p", "source:=expert",
                          "-p", "fps:=15", "-p", "stop_after_success:=0.5", "-p", "max_duration:=1.5",
                          "-p", "calibration:=cal_42")
    yield proc
    proc.stop()
    graph.procs.remove(proc)


def saved_lines(proc):
    return [ln for ln in proc.lines if "saved " in ln]


def wait_saved(proc, before: int, reason: str, timeout: float = 10.0) -> str:
    wait_for(lambda: len(saved_lines(proc)) > before, timeout, f"an episode saved by {reason}:\n{proc.output}")
    line = saved_lines(proc)[before]
    assert f"({reason})" in line, line
    return line


def read_bag(path):
    with Reader(path) as reader:
        counts = {c.topic: c.msgcount for c in reader.connections}
        raws: dict[str, list[bytes]] = {}
        for c, _, raw in reader.messages():
            raws.setdefault(c.topic, []).append(bytes(raw))
    return counts, raws


def test_start_stop_records_raw_cdr_and_metadata(recorder, tester, rec_dir):
    """Every configured topic is recorded, byte for byte, with the episode's metadata beside it."""
    scene = json.dumps({"seed": 5, "brick": [0.1, 0.2, 0.0]})
    tester.scene.publish(messages.string_msg(scene))
    ok = tester.call("start")
    assert ok.success, ok.message
    assert ok.message.endswith("episode_000000.partial")
    again = tester.call("start")
    assert not again.success and "already recording" in again.message
    joints, images, extras = [], [], []
    for i in range(40):
        raw = messages.serialize(messages.joint_state(names.JOINT_NAMES, np.full(6, 0.01 * i)))
        joints.append(raw)
        tester.joint.publish(raw)
        if i % 10 == 0:
            pattern = np.full((12, 16, 3), i, dtype=np.uint8)
            img = messages.serialize(messages.image_from_numpy(pattern, "rgb8", frame_id="overhead_optical_frame"))
            images.append(img)
            tester.image.publish(img)
            extra = messages.serialize(messages.string_msg(f"extra {i}"))
            extras.append(extra)
            tester.extra.publish(extra)
        time.sleep(0.005)  # pacing like a 200 Hz source, not a wait for a condition
    before = len(saved_lines(recorder))
    # the recorder is reliable on joints: wait until all have been seen by stopping only after a round trip
    stop = tester.call("stop")
    assert stop.success, stop.message
    path = rec_dir / "episode_000000"
    assert stop.message == str(path)
    wait_saved(recorder, before, "service")
    counts, raws = read_bag(path)
    assert set(counts) == set(TOPICS)
    assert raws[names.LEADER_JOINT_STATES] == joints
    assert raws[names.camera_image_topic("overhead")] == images
    assert raws[EXTRA] == extras
    assert [messages.deserialize(r, "std_msgs/msg/String").data for r in raws[names.EPISODE_SCENE]] == [scene]
    meta = read_episode_json(path)
    assert meta["task"] == "pick the brick" and meta["source"] == "expert" and meta["fps"] == 15
    assert meta["scene"] == json.loads(scene) and meta["calibration"] == "cal_42"
    assert meta["complete"] is True and meta["success"] is False and meta["stop_reason"] == "service"
    assert meta["software"]["so100_common"] and meta["software"]["act_policy"] == "0.1.0"
    assert meta["stop_ns"] > meta["start_ns"] > 0
    assert meta["message_counts"][names.LEADER_JOINT_STATES] == 40
    assert meta["topics"][EXTRA] == "std_msgs/msg/String"
    assert "episode_000000" in saved_lines(recorder)[before] and "/leader/joint_states 40" in saved_lines(
        recorder)[before]


def test_discard_removes_the_episode(recorder, tester, rec_dir):
    before = set(p.name for p in rec_dir.iterdir())
    assert tester.call("start").success
    tester.joint.publish(messages.joint_state(names.JOINT_NAMES, np.zeros(6)))
    res = tester.call("discard")
    assert res.success and "discarded" in res.message
    assert set(p.name for p in rec_dir.iterdir()) == before
    assert not tester.call("stop").success


def test_stops_after_success(recorder, tester, rec_dir):
    """stop_after_success seconds after /task/success turns true, the episode is saved with success."""
    tester.success.publish(messages.bool_msg(False))
    before = len(saved_lines(recorder))
    res = tester.call("start")
    assert res.success
    path = rec_dir / res.message.split("/")[-1].removesuffix(".partial")
    t0 = time.monotonic()
    tester.success.publish(messages.bool_msg(True))
    wait_saved(recorder, before, "success", timeout=15)
    assert 0.4 < time.monotonic() - t0 < 10  # it waited stop_after_success (0.5 s); the bound only catches a hang
    meta = read_episode_json(path)
    assert meta["success"] is True and meta["stop_reason"] == "success"
    assert 0.45e9 < meta["stop_ns"] - meta["start_ns"] < 5e9
    counts, raws = read_bag(path)
    values = [messages.deserialize(r, "std_msgs/msg/Bool").data for r in raws[names.TASK_SUCCESS]]
    assert values[-1] is True  # the False published before start may land in the episode too


def test_stops_at_max_duration(recorder, tester, rec_dir):
    before = len(saved_lines(recorder))
    res = tester.call("start")
    assert res.success
    path = rec_dir / res.message.split("/")[-1].removesuffix(".partial")
    wait_saved(recorder, before, "max_duration", timeout=15)
    meta = read_episode_json(path)
    assert meta["stop_reason"] == "max_duration" and meta["success"] is False
    assert 1.45e9 < meta["stop_ns"] - meta["start_ns"] < 5e9  # max_duration 1.5 s, plus a busy machine's delays


def test_kill_9_keeps_finished_episodes_and_marks_the_unfinished(graph, tester, tmp_path):
    """kill -9 mid-episode: earlier episodes stay readable; the cut one is .partial and recoverable."""
    proc = start_recorder(graph, tmp_path, "recorder_crash", "-p", "flush_interval:=0.1", prefix="/crash")

    def record_until_flushed(name: str) -> None:
        res = tester.call("start", "/crash")
        assert res.success, res.message
        mcap = tmp_path / f"{name}.partial" / f"{name}.partial.mcap"
        size0 = mcap.stat().st_size

        def flushed():
            tester.joint.publish(messages.joint_state(names.JOINT_NAMES, np.zeros(6)))
            time.sleep(0.01)
            return mcap.stat().st_size > size0 + 500

        wait_for(flushed, 10, f"the recorder to flush messages of {name}")

    try:
        for name in ("episode_000000", "episode_000001"):
            before = len(saved_lines(proc))
            record_until_flushed(name)
            assert tester.call("stop", "/crash").success
            wait_saved(proc, before, "service")
        record_until_flushed("episode_000002")
        proc.signal(signal.SIGKILL)
        assert proc.popen.wait(5) == -signal.SIGKILL
    finally:
        proc.stop()
        graph.procs.remove(proc)
    partial = tmp_path / "episode_000002.partial"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["episode_000000", "episode_000001", "episode_000002.partial"]
    for name in ("episode_000000", "episode_000001"):
        counts, _ = read_bag(tmp_path / name)
        meta = read_episode_json(tmp_path / name)
        assert meta["complete"] is True
        assert counts[names.LEADER_JOINT_STATES] == meta["message_counts"][names.LEADER_JOINT_STATES] > 0
    assert not (partial / "metadata.yaml").exists()
    assert read_episode_json(partial)["complete"] is False
    recovered = recover_partial(partial)
    counts, _ = read_bag(recovered)
    assert counts[names.LEADER_JOINT_STATES] > 0


def test_refuses_to_start_without_free_space(graph, tester, tmp_path):
    proc = start_recorder(graph, tmp_path, "recorder_full", "-p", "min_free_gb:=1000000000.0", prefix="/full")
    try:
        res = tester.call("start", "/full")
        assert not res.success and "min_free_gb" in res.message and "free" in res.message
        proc.wait_output("cannot start an episode", 5)
    finally:
        proc.stop()
        graph.procs.remove(proc)
    assert list(tmp_path.iterdir()) == []


def error_lines(proc):
    return [ln for ln in proc.lines if ln.startswith("[ERROR]")]


def test_a_write_error_stops_the_episode_once_and_keeps_what_was_written(graph, tester, tmp_path):
    """A full disk (a 2 MB file-size limit): the first failed write ends the episode with one error line, the
    messages written before it are recoverable, and the next start is refused while writes still fail."""
    proc = start_recorder(graph, tmp_path, "recorder_efbig", "-p", "flush_interval:=0.1", "-p", "max_duration:=60.0",
                          prefix="/efbig", file_size_limit=2_000_000)
    partial = tmp_path / "episode_000000.partial"
    joints: list[bytes] = []
    image = messages.serialize(messages.image_from_numpy(np.zeros((240, 320, 3), np.uint8), "rgb8"))

    def publish(with_image: bool) -> None:
        raw = messages.serialize(messages.joint_state(names.JOINT_NAMES, np.full(6, 0.001 * len(joints))))
        joints.append(raw)
        tester.joint.publish(raw)
        if with_image:
            tester.image.publish(image)
        time.sleep(0.01)  # pacing like a 100 Hz source, not a wait for a condition

    try:
        res = tester.call("start", "/efbig")
        assert res.success, res.message
        mcap = partial / "episode_000000.partial.mcap"
        size0 = mcap.stat().st_size
        wait_for(lambda: publish(False) or mcap.stat().st_size > size0 + 2000, 10, "flushed joint states")
        # within 20 s, where max_duration is 60 s
        wait_for(lambda: publish(True) or error_lines(proc), 20, f"a write error:\n{proc.output}")
        for _ in range(50):  # messages after the error are not written, and log nothing
            publish(True)
        res = tester.call("stop", "/efbig")
        assert not res.success and res.message == "not recording"
        errors = error_lines(proc)
        assert len(errors) == 1 and "Traceback" not in proc.output, proc.output
        assert "episode_000000 stopped at its first write error" in errors[0] and "File too large" in errors[0]
        assert " GB free in " in errors[0]
        res = tester.call("start", "/efbig")
        assert not res.success and "episode_000000 stopped on a write error" in res.message, res.message
        assert "test write of 8.4 MB" in res.message and "File too large" in res.message
        assert proc.alive() and not (tmp_path / "episode_000001.partial").exists()
    finally:
        proc.stop()
        graph.procs.remove(proc)
    assert mcap.stat().st_size <= 2_000_000 and not (partial / "metadata.yaml").exists()
    meta = read_episode_json(partial)
    assert meta["complete"] is False and meta["stop_reason"] == "write_error" and "File too large" in meta["error"]
    counts, raws = read_bag(recover_partial(partial))
    kept = raws[names.LEADER_JOINT_STATES]
    assert 0 < len(kept) < len(joints) and kept == joints[: len(kept)]
    assert counts == meta["message_counts"]
    assert f"the {sum(counts.values())} messages written before stay in it" in errors[0]


def test_low_free_space_during_an_episode_stops_and_saves_it(graph, tester, tmp_path):
    """Free space is checked during the episode: under min_free_gb it is saved, and starts wait for space."""
    out = tmp_path / "recordings"
    filler = tmp_path / "filler"
    margin = 0.25
    proc = start_recorder(graph, out, "recorder_low", "-p", f"min_free_gb:={free_space_gb(tmp_path) - margin:.4f}",
                          "-p", "max_duration:=60.0", prefix="/low")
    try:
        res = tester.call("start", "/low")
        assert res.success, res.message
        before = len(saved_lines(proc))
        with filler.open("wb") as fh:  # takes 4 x the margin: the disk is "full"
            os.posix_fallocate(fh.fileno(), 0, int(4 * margin * 1e9))
        tester.joint.publish(messages.joint_state(names.JOINT_NAMES, np.zeros(6)))
        wait_saved(proc, before, "low_disk", timeout=15)
        errors = error_lines(proc)
        assert len(errors) == 1 and "stopping episode_000000 to save it: only" in errors[0], proc.output
        assert "below min_free_gb" in errors[0]
        meta = read_episode_json(out / "episode_000000")
        assert meta["complete"] is True and meta["stop_reason"] == "low_disk"
        read_bag(out / "episode_000000")
        res = tester.call("start", "/low")
        assert not res.success and "min_free_gb" in res.message, res.message
        filler.unlink()
        res = tester.call("start", "/low")
        assert res.success, res.message
        assert tester.call("stop", "/low").success
        assert proc.alive()
    finally:
        filler.unlink(missing_ok=True)
        proc.stop()
        graph.procs.remove(proc)


def test_keyboard_next_rerecord_and_esc_on_a_terminal(graph, tmp_path):
    """On a terminal (a pty here): → saves and starts the next, ← discards and re-records, Esc saves and exits."""
    import pty
    import subprocess
    import threading

    master, slave = pty.openpty()
    remaps = [a for _, s in SERVICES for a in ("-r", f"{s}:=/keys{s}")]
    cmd = [str(BIN / "recorder"), "--ros-args", "-r", "__node:=recorder_keys", *remaps, "-p", f"out_dir:={tmp_path}",
           "-p", f"topics:={_list([names.LEADER_JOINT_STATES])}", "-p", "min_free_gb:=0.0", "-p", "autostart:=true",
           "-p", "start_tolerance:=0.0"]
    proc = subprocess.Popen(cmd, stdin=slave, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=graph.env,
                            start_new_session=True)
    os.close(slave)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(ln.decode(errors="replace") for ln in proc.stdout),
                              daemon=True)
    reader.start()

    def logged(text: str, count: int = 1):
        wait_for(lambda: sum(text in ln for ln in lines) >= count, 20, f"{text!r} x{count} in:\n{''.join(lines)}")

    try:
        logged("keys: → next")
        logged("recording")
        os.write(master, b"\x1b[C")
        logged("recording", 2)
        os.write(master, b"\x1b[D")
        logged("discarded episode_000001")
        logged("recording", 3)
        os.write(master, b"\x1b")
        assert proc.wait(20) == 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        os.close(master)
        reader.join(2)
    out = "".join(lines)
    assert out.count("(key)") == 2, out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["episode_000000", "episode_000001"]
    assert all(read_episode_json(tmp_path / n)["stop_reason"] == "key" for n in ("episode_000000", "episode_000001"))


def test_an_episode_starts_only_once_the_follower_agrees_with_its_command(graph, tester, tmp_path):
    """The graph's dirty start: the follower at the reset pose, its command elsewhere. Recording waits."""
    proc = start_recorder(graph, tmp_path, "recorder_clean", "-p", "start_tolerance:=0.1", "-p", "start_timeout:=30.0",
                          prefix="/clean")
    commands = tester.node.create_publisher(messages.JointState, names.FOLLOWER_JOINT_COMMANDS, QoS(depth=10))
    states = tester.node.create_publisher(messages.JointState, names.FOLLOWER_JOINT_STATES, QoS(depth=10))
    far = np.zeros(6)
    far[3] = 1.5

    def publish(state: np.ndarray, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            commands.publish(messages.joint_state(names.JOINT_NAMES, far))
            states.publish(messages.joint_state(names.JOINT_NAMES, state))
            time.sleep(0.02)

    try:
        publish(np.zeros(6), 0.5)
        res = tester.call("start", prefix="/clean")
        assert res.success and "waiting for the follower" in res.message, res.message
        publish(np.zeros(6), 1.0)
        assert not any("recording " in ln for ln in proc.lines), proc.output
        assert not [p for p in tmp_path.iterdir() if p.name.startswith("episode_")]
        publish(far - 0.05, 0.2)
        wait_for(lambda: any("recording " in ln for ln in proc.lines), 10, f"the episode to start:\n{proc.output}")
        res = tester.call("stop", prefix="/clean")
        assert res.success, res.message
        meta = read_episode_json(tmp_path / "episode_000000")
        assert meta["start"]["converged"] is True and meta["start"]["waited_s"] >= 1.0
        assert meta["start"]["gap_joint"] == "wrist_flex" and meta["start"]["gap_rad"] == pytest.approx(0.05, abs=1e-3)
    finally:
        commands.destroy()
        states.destroy()
        proc.stop()
        graph.procs.remove(proc)
