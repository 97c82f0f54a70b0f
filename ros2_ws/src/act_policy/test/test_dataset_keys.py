"""Dataset keys are LeRobot's own, defined once; the env plugin and the recorder agree with them."""

from lerobot.utils.constants import ACTION, OBS_IMAGES, OBS_STATE

from act_policy import dataset_keys
from act_policy.recorder_node import KNOWN_TOPICS
from so100_common import contract


def test_keys_are_lerobots_constants():
    assert (dataset_keys.OBS_STATE, dataset_keys.OBS_IMAGES, dataset_keys.ACTION) == (OBS_STATE, OBS_IMAGES, ACTION)
    assert dataset_keys.image_key("overhead") == "observation.images.overhead_cam"
    assert dataset_keys.depth_key("wrist") == "observation.images.wrist_depth"
    assert dataset_keys.camera_of_key(dataset_keys.image_key("wrist")) == "wrist"


def test_the_env_plugin_names_images_as_the_datasets_do():
    from lerobot_env_so100 import dataset_image_key

    assert all(dataset_image_key(c) == dataset_keys.image_key(c) for c in ("overhead", "wrist"))


def test_the_recorders_table_is_the_contract():
    assert KNOWN_TOPICS == {name: (row.type, row.qos) for name, row in contract.topics().items()}
