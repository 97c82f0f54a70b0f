"""LeRobot env plugin: ``--env.type=so100_pick_place`` runs policies in the SO-100 pick-and-place world.

LeRobot's command-line tools (``lerobot-train``, ``lerobot-eval``, ...) call
``lerobot.utils.import_utils.register_third_party_plugins()`` at start-up: it imports every
installed distribution whose name starts with ``lerobot_env_`` under that very name, so
installing this distribution is all it takes; importing it registers the config below with
``EnvConfig.register_subclass``. The config makes ``gym_so100/PickPlace-v0`` (``so100_sim.gym_env``).

Keys: the env observes ``pixels/<camera>`` and ``agent_pos``; LeRobot turns them into
``observation.images.<camera>`` and ``observation.state``, and this plugin's env
preprocessor renames the images to the dataset keys this project records
(``observation.images.overhead_cam``, ``observation.images.wrist_cam``), so a policy trained
on those datasets is evaluated with no ``--rename_map``.

Dependency rule: lerobot, gym_so100, so100_common.names and so100_sim.task; MuJoCo is loaded only when an
env is made (every LeRobot command imports this module, most never make an env).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lerobot.configs import FeatureType, PolicyFeature
from lerobot.envs.configs import EnvConfig
from lerobot.envs.utils import parse_camera_names
from lerobot.processor import PolicyProcessorPipeline, RenameObservationsProcessorStep
from lerobot.utils.constants import ACTION, OBS_IMAGES, OBS_STATE

import gym_so100
from so100_common.names import CAMERA_NAMES, JOINT_NAMES
from so100_sim.task import TaskConfig

ENV_TYPE = "so100_pick_place"
_TASK = TaskConfig()


def dataset_image_key(camera: str) -> str:
    """The LeRobot dataset key of a camera's images (``overhead`` -> ``observation.images.overhead_cam``)."""
    return f"{OBS_IMAGES}.{camera}_cam"


@EnvConfig.register_subclass(ENV_TYPE)
@dataclass
class So100PickPlaceEnvConfig(EnvConfig):
    """``--env.type=so100_pick_place``; every field is a ``--env.<field>`` option."""

    # LeRobot builds the gym id as `<package_name>/<task>`: gym_so100/PickPlace-v0.
    task: str | None = gym_so100.PICK_PLACE
    fps: int = int(_TASK.fps)
    # Steps before truncation; 300 at 30 fps = 10 s, about 1.5x the scripted expert's episode.
    episode_length: int = _TASK.episode_steps
    # Comma-separated scene cameras to observe (LeRobot's convention for camera lists).
    cameras: str = ",".join(CAMERA_NAMES)
    # Must equal the image size of the dataset the policy was trained on (sim_bridge records
    # 480x640; CPU training usually uses 240x320, DESIGN.md §7).
    observation_height: int = 480
    observation_width: int = 640
    render_mode: str = "rgb_array"  # rollout videos show the overhead camera
    # Randomization of the brick (m, rad; uniform ±); None keeps the task's default.
    brick_xy_range: float | None = None
    brick_yaw_range: float | None = None
    features: dict[str, PolicyFeature] = field(default_factory=dict)
    features_map: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        cams = self.camera_list
        unknown = [c for c in cams if c not in CAMERA_NAMES]
        if unknown or len(set(cams)) != len(cams):
            raise ValueError(f"--env.cameras={self.cameras!r}: name each of {list(CAMERA_NAMES)} at most once")
        if self.observation_height < 8 or self.observation_width < 8:
            raise ValueError(f"image size {self.observation_height}x{self.observation_width} is too small (>= 8 px)")
        if self.episode_length < 1 or self.fps <= 0:
            raise ValueError(f"episode_length ({self.episode_length}) and fps ({self.fps}) must be positive")
        # Rebuilt from the fields every time, so a config loaded from a checkpoint with other
        # cameras or sizes cannot keep stale image features.
        n = len(JOINT_NAMES)
        self.features = {
            ACTION: PolicyFeature(type=FeatureType.ACTION, shape=(n,)),
            "agent_pos": PolicyFeature(type=FeatureType.STATE, shape=(n,)),
        }
        self.features_map = {ACTION: ACTION, "agent_pos": OBS_STATE}
        for cam in cams:
            shape = (self.observation_height, self.observation_width, 3)
            self.features[f"pixels/{cam}"] = PolicyFeature(type=FeatureType.VISUAL, shape=shape)
            self.features_map[f"pixels/{cam}"] = dataset_image_key(cam)

    @property
    def camera_list(self) -> list[str]:
        return parse_camera_names(self.cameras)

    @property
    def package_name(self) -> str:
        """The module LeRobot imports when the gym id is not registered yet."""
        return gym_so100.NAMESPACE

    @property
    def gym_kwargs(self) -> dict:
        kwargs = {
            "render_mode": self.render_mode,
            "cameras": tuple(self.camera_list),
            "height": self.observation_height,
            "width": self.observation_width,
            "fps": float(self.fps),
            "episode_steps": self.episode_length,
            "max_episode_steps": self.episode_length,  # taken by gym.make's TimeLimit
        }
        if self.brick_xy_range is not None:
            kwargs["brick_xy_range"] = self.brick_xy_range
        if self.brick_yaw_range is not None:
            kwargs["brick_yaw_range"] = self.brick_yaw_range
        return kwargs

    def get_env_processors(self) -> tuple[PolicyProcessorPipeline, PolicyProcessorPipeline]:
        """Rename ``observation.images.<camera>`` to the dataset's ``..._cam`` keys; actions pass as they are."""
        rename = {f"{OBS_IMAGES}.{cam}": dataset_image_key(cam) for cam in self.camera_list}
        return (
            PolicyProcessorPipeline(steps=[RenameObservationsProcessorStep(rename_map=rename)]),
            PolicyProcessorPipeline(steps=[]),
        )


__all__ = ["ENV_TYPE", "So100PickPlaceEnvConfig", "dataset_image_key"]
