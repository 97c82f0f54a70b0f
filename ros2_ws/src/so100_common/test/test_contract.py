"""The topic contract as data: every row names a known message type, the QoS the nodes use, and DESIGN's names."""

from so100_common import contract, messages, names
from so100_common.qos import Durability, Reliability


def test_every_contract_row_is_a_known_type_with_its_qos():
    rows = contract.topics()
    assert set(rows) >= {names.LEADER_JOINT_STATES, names.FOLLOWER_JOINT_COMMANDS, names.FOLLOWER_JOINT_STATES,
                         names.TASK_SUCCESS, names.EPISODE_SCENE, names.ROBOT_DESCRIPTION}
    for cam in names.CAMERA_NAMES:
        assert {names.camera_image_topic(cam), names.camera_info_topic(cam), names.camera_depth_topic(cam)} <= set(rows)
    for row in rows.values():
        messages.msg_class(row.type)  # in the typestore
        assert row.description
    latched = {n for n, r in rows.items() if r.qos.durability == Durability.TRANSIENT_LOCAL}
    assert latched == {names.TASK_SUCCESS, names.EPISODE_SCENE, names.ROBOT_DESCRIPTION}
    best_effort = {n for n, r in rows.items() if r.qos.reliability == Reliability.BEST_EFFORT}
    assert best_effort == {n for n in rows if n.startswith("/cameras/")}


def test_a_subscriber_keeps_its_depth_and_the_rows_other_qos(graph):
    from so100_common.node import Node

    node = Node("contract_check", argv=[])
    try:
        sub = contract.FOLLOWER_JOINT_STATES.subscription(node, lambda _m: None, depth=3)
        assert sub.queue.maxlen == 3
        latched = contract.EPISODE_SCENE.subscription(node, lambda _m: None)
        assert latched.queue.maxlen == contract.EPISODE_SCENE.qos.depth
        pub = contract.FOLLOWER_JOINT_COMMANDS.publisher(node)
        assert pub.qos == contract.JOINTS_QOS and pub.topic == names.FOLLOWER_JOINT_COMMANDS
    finally:
        node.destroy()
