"""scripted_expert: a virtual leader arm that picks the brick and places it in the bowl.

Reads the latched ``/episode/scene`` and ``/follower/joint_states``, plans the episode
with :class:`so100_sim.expert.ScriptedExpert` from where the follower is, and
publishes ``/leader/joint_states`` at 100 Hz — the same topic a human's leader arm
or the VR page drives, so demonstrations take the same path. A new scene (after
``/sim/reset``) starts a new plan; with ``episodes`` > 0 it calls ``/sim/reset``
itself after each finished episode and exits when they are done.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from so100_common import contract, messages, names
from so100_common.node import Node, run_node
from so100_sim.expert import ExpertPlan, ScriptedExpert
from so100_sim.task import EpisodeScene

#: follower joint states to receive after a new scene before planning from the measured pose: the
#: state held when the scene arrives is the previous episode's final pose (the reset happened after it)
FRESH_STATES = 3


class ScriptedExpertNode(Node):
    def __init__(self, argv: list[str]) -> None:
        super().__init__("scripted_expert", argv=argv)
        rate = self.declare_parameter("rate", 100.0, description="leader joint state rate (Hz)", min_value=10.0,
                                      max_value=500.0)
        self.speed = self.declare_parameter("speed", 1.0, description="time scale of the motion (2 = twice as fast)",
                                            min_value=0.25, max_value=4.0)
        self.episodes = self.declare_parameter("episodes", 0, description="episodes to run, resetting the sim "
                                               "between them; 0 = follow scenes forever", min_value=0)
        self.settle = self.declare_parameter("settle", 1.5, description="seconds to keep publishing after the plan "
                                             "ends (or after success) before the next reset", min_value=0.0)
        self.expert = ScriptedExpert()
        self.pub = contract.LEADER_JOINT_STATES.publisher(self)
        contract.EPISODE_SCENE.subscription(self, self.on_scene)
        contract.FOLLOWER_JOINT_STATES.subscription(self, self.on_state, depth=5)
        contract.TASK_SUCCESS.subscription(self, self.on_success)
        self.reset_client = self.create_client("std_srvs/srv/Trigger", names.SIM_RESET)
        self.follower: np.ndarray | None = None
        self.states_since_scene = 0
        self.scene: EpisodeScene | None = None
        self.plan: ExpertPlan | None = None
        self.t0 = 0.0
        self.done_at: float | None = None
        self.finished = 0
        self.successes = 0
        self.succeeded = False
        self.pending_reset = None
        self.create_timer(1.0 / rate, self.tick)

    def on_state(self, msg: Any) -> None:
        if list(msg.name) == list(names.JOINT_NAMES):
            position = np.asarray(msg.position, dtype=float)
            if position.shape == (len(names.JOINT_NAMES),) and np.isfinite(position).all():
                self.follower = position
                self.states_since_scene += 1

    def on_scene(self, msg: Any) -> None:
        try:
            self.scene = EpisodeScene.from_json(msg.data)
        except Exception as e:
            self.logger.warning("ignoring an unreadable /episode/scene: %s", e)
            return
        # plan from the follower's pose measured after this scene (after the reset), never from an older one
        self.plan, self.follower, self.states_since_scene = None, None, 0
        self.pending_reset = None

    def on_success(self, msg: Any) -> None:
        if msg.data and self.plan is not None:
            self.succeeded = True

    def tick(self) -> None:
        now = time.monotonic()
        if self.pending_reset is not None:
            if self.pending_reset.done():
                self.pending_reset = None
            return
        if self.scene is None or self.follower is None or (self.plan is None and
                                                            self.states_since_scene < FRESH_STATES):
            return
        if self.plan is None:
            self.plan = self.expert.plan(self.scene, self.follower)
            self.t0, self.done_at, self.succeeded = now, None, False
            if not self.plan.converged:
                self.logger.warning("seed %d: plan reaches within %.1f mm and %.1f° only", self.scene.seed,
                                    1000 * self.plan.worst_error, math.degrees(self.plan.worst_rot_error))
            self.logger.info("seed %d: executing a %.1f s pick-and-place", self.scene.seed,
                             self.plan.duration / self.speed)
        t = (now - self.t0) * self.speed
        self.pub.publish(messages.joint_state(names.JOINT_NAMES, self.plan.at(t)))
        if self.done_at is None and (t >= self.plan.duration or self.succeeded):
            self.done_at = now
        if self.episodes and self.done_at is not None and now - self.done_at >= self.settle:
            self.finish_episode()

    def finish_episode(self) -> None:
        self.finished += 1
        self.successes += int(self.succeeded)
        self.logger.info("episode %d/%d (seed %d): %s; %d/%d successful so far", self.finished, self.episodes,
                         self.scene.seed if self.scene else -1, "success" if self.succeeded else "no success",
                         self.successes, self.finished)
        self.scene, self.plan = None, None
        if self.finished >= self.episodes:
            self.exit_code = 0 if self.successes == self.finished else 3
            self.shutdown()
            return
        self.pending_reset = self.reset_client.call_async(timeout=10.0)


def main() -> int:
    return run_node(ScriptedExpertNode)


if __name__ == "__main__":
    raise SystemExit(main())
