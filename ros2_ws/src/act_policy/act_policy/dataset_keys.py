"""The keys of our LeRobot datasets and policies, defined once.

They are LeRobot's own (``lerobot.utils.constants``: ``OBS_STATE``, ``OBS_IMAGES``, ``ACTION``; a test checks they
stay equal) spelled here as strings, because importing ``lerobot.utils`` takes about 3 s on this machine and the
recorder, the converter's CLI and ``--help`` should not pay it. Camera images are ``observation.images.<camera>_cam``
(the ``_cam`` suffix is kept: every dataset and checkpoint recorded so far uses it; ``lerobot_env_so100`` renames
its env's ``observation.images.<camera>`` to it), depth ``observation.images.<camera>_depth``.

Dependency rule: nothing from the project.
"""

from __future__ import annotations

OBS_STATE = "observation.state"
OBS_IMAGES = "observation.images"
ACTION = "action"
IMAGE_PREFIX = f"{OBS_IMAGES}."
CAMERA_SUFFIX = "_cam"
DEPTH_SUFFIX = "_depth"


def image_key(camera: str) -> str:
    """``overhead`` -> ``observation.images.overhead_cam``."""
    return f"{IMAGE_PREFIX}{camera}{CAMERA_SUFFIX}"


def depth_key(camera: str) -> str:
    """``overhead`` -> ``observation.images.overhead_depth``."""
    return f"{IMAGE_PREFIX}{camera}{DEPTH_SUFFIX}"


def camera_of_key(key: str) -> str:
    """``observation.images.overhead_cam`` -> ``overhead`` (the scene/topic camera name)."""
    return key.removeprefix(IMAGE_PREFIX).removesuffix(CAMERA_SUFFIX)


def is_image_key(key: str) -> bool:
    return key.startswith(IMAGE_PREFIX)
