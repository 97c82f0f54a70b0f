"""EpisodeWriter: bag layout, raw bytes, QoS, partial marking, recovery, disk check."""

from pathlib import Path

import pytest
from rosbags.interfaces import QosDurability
from rosbags.rosbag2 import Reader

from act_policy.episode_writer import (
    EpisodeWriter,
    TopicSpec,
    check_free_space,
    next_episode_name,
    read_episode_json,
    recover_partial,
)
from act_policy.errors import RecorderError
from so100_common import messages, names
from so100_common.qos import LATCHED, QoS

SPECS = [
    TopicSpec(names.LEADER_JOINT_STATES, "sensor_msgs/msg/JointState", QoS(depth=50)),
    TopicSpec(names.EPISODE_SCENE, "std_msgs/msg/String", LATCHED),
]


def _joint_raw(i: int) -> bytes:
    return messages.serialize(messages.joint_state(names.JOINT_NAMES, [0.01 * i] * 6, stamp_ns=i))


def test_closed_episode_is_a_readable_bag_with_raw_bytes_and_qos(tmp_path):
    """A closed episode is renamed from .partial and reads back byte for byte with its QoS."""
    w = EpisodeWriter(tmp_path, next_episode_name(tmp_path), SPECS, metadata={"task": "t"}, flush_interval=0)
    assert w.partial.name == "episode_000000.partial" and w.partial.is_dir()
    raws = [_joint_raw(i) for i in range(20)]
    for i, raw in enumerate(raws):
        w.write(names.LEADER_JOINT_STATES, 1_000 + i, raw)
    w.write(names.EPISODE_SCENE, 1_000, messages.serialize(messages.string_msg('{"seed": 1}')))
    path = w.close(stop_ns=5, success=True)
    assert path == tmp_path / "episode_000000" and not w.partial.exists()
    assert sorted(p.name for p in path.iterdir()) == ["episode.json", "episode_000000.mcap", "metadata.yaml"]
    with Reader(path) as reader:
        by_topic = {c.topic: c for c in reader.connections}
        assert by_topic[names.LEADER_JOINT_STATES].msgcount == 20
        assert by_topic[names.EPISODE_SCENE].ext.offered_qos_profiles[0].durability == QosDurability.TRANSIENT_LOCAL
        got = [bytes(raw) for c, _, raw in reader.messages() if c.topic == names.LEADER_JOINT_STATES]
    assert got == raws
    meta = read_episode_json(path)
    assert meta["complete"] and meta["success"] and meta["task"] == "t" and meta["message_counts"][
        names.LEADER_JOINT_STATES] == 20
    assert next_episode_name(tmp_path) == "episode_000001"


def test_discard_removes_the_episode(tmp_path):
    w = EpisodeWriter(tmp_path, "episode_000000", SPECS, metadata={})
    w.write(names.LEADER_JOINT_STATES, 1, _joint_raw(1))
    w.discard()
    assert list(tmp_path.iterdir()) == []


def test_unfinished_episode_stays_partial_and_recovers_flushed_chunks(tmp_path):
    """Without close the bag has no metadata.yaml; recover_partial keeps every flushed chunk."""
    w = EpisodeWriter(tmp_path, "episode_000004", SPECS, metadata={"task": "crash"}, flush_interval=0)
    for i in range(30):
        w.write(names.LEADER_JOINT_STATES, 1_000 + i, _joint_raw(i))
    w.flush()
    for i in range(30, 40):  # never flushed: lost in a crash
        w.write(names.LEADER_JOINT_STATES, 1_000 + i, _joint_raw(i))
    mcap = next(w.partial.glob("*.mcap"))
    with mcap.open("ab") as fh:  # a chunk cut off half way
        fh.write(b"\x06" + (10_000).to_bytes(8, "little") + b"\x00" * 100)
    assert not (w.partial / "metadata.yaml").exists()
    out = recover_partial(w.partial)
    assert out.name == "episode_000004.recovered" and w.partial.exists()
    with Reader(out) as reader:
        got = [bytes(raw) for c, _, raw in reader.messages() if c.topic == names.LEADER_JOINT_STATES]
    assert got == [_joint_raw(i) for i in range(30)]
    meta = read_episode_json(out)
    assert meta["recovered"] and not meta["complete"] and meta["task"] == "crash"
    assert next_episode_name(tmp_path) == "episode_000005"


def test_refuses_to_overwrite_and_checks_disk(tmp_path):
    (tmp_path / "episode_000000").mkdir()
    with pytest.raises(RecorderError, match="exists already"):
        EpisodeWriter(tmp_path, "episode_000000", SPECS, metadata={})
    assert check_free_space(tmp_path, 0.0) > 0
    with pytest.raises(RecorderError, match="min_free_gb"):
        check_free_space(Path(tmp_path), 1e9)
    with pytest.raises(RecorderError, match="unknown message type"):
        TopicSpec("/x", "nope/msg/Nope", QoS())
