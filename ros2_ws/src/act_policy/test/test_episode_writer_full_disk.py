"""EpisodeWriter on a full disk, made real by a file-size limit (RLIMIT_FSIZE): writes past it raise EFBIG."""

import contextlib
import gc
import resource
import signal
import weakref

import pytest
from rosbags.rosbag2 import Reader

from act_policy.episode_writer import EpisodeWriter, TopicSpec, probe_write, read_episode_json, recover_partial
from act_policy.errors import RecorderError
from so100_common import messages, names
from so100_common.qos import LATCHED, QoS

SPECS = [
    TopicSpec(names.LEADER_JOINT_STATES, "sensor_msgs/msg/JointState", QoS(depth=50)),
    TopicSpec(names.EPISODE_SCENE, "std_msgs/msg/String", LATCHED),
]


@contextlib.contextmanager
def file_size_limit(nbytes: int):
    """No file this process writes may grow past ``nbytes`` (SIGXFSZ ignored, so the write raises)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (nbytes, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)


def _joint_raw(i: int) -> bytes:
    return messages.serialize(messages.joint_state(names.JOINT_NAMES, [0.01 * i] * 6, stamp_ns=i))


def _joints(path) -> list[bytes]:
    with Reader(path) as reader:
        return [bytes(raw) for c, _, raw in reader.messages() if c.topic == names.LEADER_JOINT_STATES]


def test_first_write_error_ends_the_episode_frees_its_buffer_and_keeps_what_was_written(tmp_path):
    w = EpisodeWriter(tmp_path, "episode_000000", SPECS, metadata={"task": "full"}, flush_interval=0)
    for i in range(20):
        w.write(names.LEADER_JOINT_STATES, 1_000 + i, _joint_raw(i))
    w.flush()
    assert w.written == {names.LEADER_JOINT_STATES: 20, names.EPISODE_SCENE: 0}
    mcap = w.partial / "episode_000000.partial.mcap"
    limit = mcap.stat().st_size + 100_000
    storage = weakref.ref(w._writer.storage)
    big = messages.serialize(messages.string_msg("x" * 300_000))
    with file_size_limit(limit), pytest.raises(RecorderError) as info:
        for i in range(20, 40):  # rosbags writes its 1 MiB chunk on the 4th: past the limit
            w.write(names.LEADER_JOINT_STATES, 1_000 + i, _joint_raw(i))
            w.write(names.EPISODE_SCENE, 1_000 + i, big)
    message = str(info.value)
    del info
    assert "File too large" in message and "the 20 messages written before stay in it" in message
    assert "File too large" in (w.error or "")
    gc.collect()
    assert storage() is None  # the pending chunk (over 1 MiB) is gone with rosbags' writer
    with pytest.raises(RecorderError, match="is closed"):
        w.write(names.LEADER_JOINT_STATES, 2_000, _joint_raw(0))
    assert mcap.stat().st_size < limit  # cut back to the last whole chunk
    meta = read_episode_json(w.partial)
    assert meta["stop_reason"] == "write_error" and meta["complete"] is False
    assert meta["message_counts"] == w.written
    assert _joints(recover_partial(w.partial)) == [_joint_raw(i) for i in range(20)]


def test_a_close_that_cannot_write_the_summary_keeps_every_chunk(tmp_path):
    w = EpisodeWriter(tmp_path, "episode_000000", SPECS, metadata={}, flush_interval=0)
    for i in range(20):
        w.write(names.LEADER_JOINT_STATES, 1_000 + i, _joint_raw(i))
    w.flush()
    mcap = w.partial / "episode_000000.partial.mcap"
    with file_size_limit(mcap.stat().st_size + 10), pytest.raises(RecorderError, match="closing .* File too large"):
        w.close(stop_ns=5, success=False)
    assert w.partial.is_dir() and not (w.partial / "metadata.yaml").exists() and not w.final.exists()
    assert _joints(recover_partial(w.partial)) == [_joint_raw(i) for i in range(20)]


def test_probe_write_names_the_error_and_leaves_nothing(tmp_path):
    probe_write(tmp_path, 1 << 20)
    with file_size_limit(1_000_000), pytest.raises(RecorderError, match=r"test write of 8\.4 MB .*File too large"):
        probe_write(tmp_path, 8 << 20)
    assert list(tmp_path.iterdir()) == []
