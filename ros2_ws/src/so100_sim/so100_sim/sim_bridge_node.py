"""sim_bridge: the MuJoCo world as a drop-in follower on the contract's topics.

Consumes ``/follower/joint_commands`` (through the shared command guard: rejected,
clamped, held when stale), publishes ``/follower/joint_states``, the cameras
(``rgb8`` + ``camera_info``, overhead depth ``16UC1`` in mm), ``/task/success`` on
change, latched ``/episode/scene``, ``/robot_description`` and ``/scene/markers``,
and ``/tf``. Services ``/sim/reset`` and ``/follower/enable_torque``. Real time by
default; ``realtime:=false`` runs as fast as it can and publishes ``/clock``.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

from so100_common import contract, messages, names
from so100_common.command_guard import BurstLog, CommandGuard, GuardConfig
from so100_common.node import Node, run_node
from so100_common.qos import LATCHED, QoS
from so100_sim import ros_msgs
from so100_sim.description import to_urdf
from so100_sim.render import RenderSettings
from so100_sim.scene import OVERHEAD_CAMERA
from so100_sim.task import TaskConfig
from so100_sim.world import World

#: most physics ticks run in one timer callback to catch up with the wall clock (no spiral of death)
MAX_CATCH_UP = 10


class SimBridge(Node):
    def __init__(self, argv: list[str]) -> None:
        super().__init__("sim_bridge", argv=argv)
        p = self.declare_parameter
        self.rate = p("rate", 100.0, description="physics control and joint state rate (Hz)",
                      min_value=30.0, max_value=200.0)
        self.camera_rate = p("camera_rate", 30.0, description="camera frame rate (Hz), 0 = no cameras",
                             min_value=0.0, max_value=60.0)
        self.tf_rate = p("tf_rate", 30.0, description="/tf rate (Hz), 0 = none", min_value=0.0, max_value=200.0)
        self.realtime = p("realtime", True, description="pace to the wall clock; false = as fast as possible + /clock")
        cameras = p("cameras", ["overhead", "wrist"], description="cameras to render", element_type=str)
        depth = p("depth_cameras", ["overhead"], description="cameras that also publish depth (16UC1 mm)",
                  element_type=str)
        width = p("width", 640, description="image width (px)", min_value=16, max_value=1920)
        height = p("height", 480, description="image height (px)", min_value=16, max_value=1080)
        shadows = p("shadows", False, description="shadow mapping (costly on software GL)")
        msaa = p("msaa_samples", 0, description="multisampling (costly on software GL)", min_value=0, max_value=16)
        self.seed = p("seed", 0, description="seed of the first episode; /sim/reset uses the next ones")
        xy_range = p("brick_xy_range", 0.04, description="brick position randomization ± (m)", min_value=0.0,
                     max_value=0.1)
        yaw_range = p("brick_yaw_range", math.pi, description="brick yaw randomization ± (rad)", min_value=0.0,
                      max_value=math.pi)
        stale = p("stale_timeout", 0.5, description="hold position when no command came for this long (s)",
                  min_value=0.05)
        max_step = p("max_step", 0.0, description="largest joint move per tick (rad), 0 = unlimited", min_value=0.0)
        self.publish_robot_tf = p("publish_robot_tf", True,
                                  description="publish the arm links on /tf (false when robot_state_publisher runs)")
        self.end_parameters()  # --help stops here, before the world and its GL context
        unknown = set(depth) - set(cameras)
        if unknown:
            raise ValueError(f"depth_cameras {sorted(unknown)} are not in cameras {cameras}")

        self.world = World(TaskConfig(brick_xy_range=xy_range, brick_yaw_range=yaw_range),
                           render=RenderSettings(width, height, shadows=shadows, msaa_samples=msaa))
        self.cameras = [(c, self.world.renderer.camera_id(c)) for c in cameras] if self.camera_rate > 0 else []
        self.depth_cameras = set(depth)
        self.guard = CommandGuard(GuardConfig(tuple(self.world.lower), tuple(self.world.upper),
                                              stale_timeout=stale, max_step=max_step or None))
        self.burst = {k: BurstLog(self.logger) for k in ("count", "names", "non_finite", "clamped")}

        self.js_pub = contract.FOLLOWER_JOINT_STATES.publisher(self)
        self.success_pub = contract.TASK_SUCCESS.publisher(self)
        self.scene_pub = contract.EPISODE_SCENE.publisher(self)
        self.tf_pub = self.create_publisher("tf2_msgs/msg/TFMessage", names.TF, QoS(depth=100))
        self.clock_pub = None if self.realtime else self.create_publisher("rosgraph_msgs/msg/Clock", names.CLOCK)
        self.image_pubs = {c: contract.camera_image(c).publisher(self)
                           for c, _ in self.cameras}
        self.info_pubs = {c: contract.camera_info(c).publisher(self)
                          for c, _ in self.cameras}
        self.depth_pubs = {c: contract.camera_depth(c).publisher(self)
                           for c in self.depth_cameras}
        contract.ROBOT_DESCRIPTION.publisher(self).publish(
            messages.string_msg(to_urdf()))
        contract.FOLLOWER_JOINT_COMMANDS.subscription(self, self.on_command, depth=10)
        self.create_service("std_srvs/srv/Trigger", names.SIM_RESET, self.on_reset)
        self.create_service("std_srvs/srv/SetBool", names.FOLLOWER_ENABLE_TORQUE, self.on_torque)

        self.episode = 0
        self.tick = 0
        self.t_epoch0 = time.time_ns()
        self.success = False
        self.markers_pub = self.create_publisher("visualization_msgs/msg/MarkerArray", names.SCENE_MARKERS, LATCHED)
        self.start_episode()
        self.camera_every = max(1, round(self.rate / self.camera_rate)) if self.camera_rate > 0 else 0
        self.tf_every = max(1, round(self.rate / self.tf_rate)) if self.tf_rate > 0 else 0
        self.success_every = max(1, round(self.rate / self.world.task.fps))
        self.t_wall0 = time.monotonic()
        self.t_epoch0 = time.time_ns()  # the wall-clock time of tick 0 (header stamps)
        self.sim_elapsed = 0.0  # simulated seconds since start, across episodes
        self.create_timer(1.0 / self.rate if self.realtime else 1e-4, self.step)
        self.create_timer(5.0, self.report)
        self.logger.info("sim_bridge up: %.0f Hz physics, cameras %s at %.0f Hz (%dx%d, %s), realtime=%s",
                         self.rate, [c for c, _ in self.cameras], self.camera_rate, width, height,
                         self.world.renderer.backend if self.cameras else "no GL", self.realtime)

    # ------------------------------------------------------------ episodes
    def start_episode(self) -> None:
        scene = self.world.reset(self.seed + self.episode)
        self.guard.reset()
        self.success = False
        self.success_pub.publish(messages.bool_msg(False))
        self.scene_pub.publish(messages.string_msg(scene.to_json()))
        self.markers_pub.publish(ros_msgs.scene_markers(self.world.model, self.world.data, self.stamp_ns()))
        self.logger.info("episode %d: seed %d, brick at (%.3f, %.3f) yaw %.2f rad", self.episode, scene.seed,
                         scene.brick_pos[0], scene.brick_pos[1], scene.brick_yaw)

    def on_reset(self, request: Any, response: Any) -> Any:
        self.episode += 1
        self.start_episode()
        response.success = True
        response.message = self.world.scene.to_json() if self.world.scene else ""
        return response

    def on_torque(self, request: Any, response: Any) -> Any:
        self.world.set_torque(bool(request.data))
        self.guard.reset()
        response.success = True
        response.message = f"torque {'enabled' if request.data else 'disabled'}"
        self.logger.info(response.message)
        return response

    # ------------------------------------------------------------ commands
    def on_command(self, msg: Any) -> None:
        verdict = self.guard.submit(msg.name, msg.position, self.now_s())
        if not verdict.accepted:
            self.burst[verdict.kind](logging.WARNING, "rejected a joint command: %s", verdict.reason)
        elif verdict.clamped:
            self.burst["clamped"](logging.WARNING, "clamped a joint command to the limits: %s",
                                  {k: round(v, 3) for k, v in verdict.clamped.items()})

    # ------------------------------------------------------------ time
    def stamp_ns(self) -> int:
        """Header time of the current physics tick: its place on the wall clock in real time (never later
        than now), the simulation clock otherwise."""
        if not self.realtime:
            return int(self.world.time * 1e9)
        return min(self.t_epoch0 + round(self.tick * 1e9 / self.rate), time.time_ns())

    def now_s(self) -> float:
        return time.monotonic() if self.realtime else self.world.time

    # ------------------------------------------------------------ the loop
    def step(self) -> None:
        """One timer tick: physics up to now (catching up after a slow camera tick), then publish.

        Every physics tick publishes its joint state stamped with the tick's own time, so states stay
        evenly spaced in header time even when a camera frame delays the timer (catch-up ticks used to
        publish one state for several ticks, and recordings repeated states).
        """
        w = self.world
        if self.realtime:
            due = int((time.monotonic() - self.t_wall0) * self.rate)
            n = min(max(due - self.tick, 1), MAX_CATCH_UP)
        else:
            n = 1
        camera_due = tf_due = False
        for _ in range(n):
            target = self.guard.target(w.joint_positions(), self.now_s()) if w.torque_enabled else None
            if target is not None:
                w.set_targets(target)
            w.step(1.0 / self.rate)
            self.sim_elapsed += 1.0 / self.rate
            self.tick += 1
            if self.tick % self.success_every == 0:
                self.check_success()
            camera_due |= bool(self.camera_every) and self.tick % self.camera_every == 0
            tf_due |= bool(self.tf_every) and self.tick % self.tf_every == 0
            self.js_pub.publish(messages.joint_state(names.JOINT_NAMES, w.joint_positions(), w.joint_velocities(),
                                                     w.joint_efforts(), stamp_ns=self.stamp_ns(),
                                                     frame_id=names.BASE_FRAME))
        stamp = self.stamp_ns()
        if self.clock_pub is not None:
            self.clock_pub.publish(_clock(stamp))
        if tf_due:  # before the cameras: poses must not wait for rendering (the VR page streams them)
            self.publish_tf(stamp)
        if camera_due:
            self.publish_cameras(stamp)

    def check_success(self) -> None:
        ok = self.world.update_success()
        if ok != self.success:
            self.success = ok
            self.success_pub.publish(messages.bool_msg(ok))
            if ok:
                self.logger.info("episode %d: success", self.episode)

    def publish_cameras(self, stamp: int) -> None:
        for name, cid in self.cameras:
            frame = names.optical_frame(name)
            rgb, depth = self.world.render(name, depth=name in self.depth_cameras)
            self.image_pubs[name].publish(messages.image_from_numpy(rgb, "rgb8", frame_id=frame, stamp_ns=stamp))
            k = self.world.renderer.intrinsics(cid)
            self.info_pubs[name].publish(messages.camera_info(rgb.shape[1], rgb.shape[0], k, frame_id=frame,
                                                              stamp_ns=stamp))
            if depth is not None:
                self.depth_pubs[name].publish(messages.image_from_numpy(depth, "16UC1", frame_id=frame,
                                                                        stamp_ns=stamp))

    def publish_tf(self, stamp: int) -> None:
        m, d = self.world.model, self.world.data
        bodies = list(range(1, m.nbody)) if self.publish_robot_tf else [
            b for b in range(1, m.nbody) if m.body_parentid[b] == 0]
        msg = ros_msgs.tf_message(m, d, stamp, bodies)
        for name, cid in self.cameras:
            if name == OVERHEAD_CAMERA or self.publish_robot_tf:
                msg.transforms.append(ros_msgs.optical_transform(m, d, cid, names.optical_frame(name), stamp))
        self.tf_pub.publish(msg)

    def report(self) -> None:
        elapsed = time.monotonic() - self.t_wall0
        self.logger.info("simulated %.1f s in %.1f s (real-time factor %.2f), %d commands rejected, %d clamped",
                         self.sim_elapsed, elapsed, self.sim_elapsed / max(elapsed, 1e-9), self.guard.rejected,
                         self.guard.clamped)

    def destroy(self) -> None:
        super().destroy()
        self.world.close()


def _clock(stamp_ns: int) -> Any:
    msg = messages.new_message("rosgraph_msgs/msg/Clock")
    msg.clock = messages.time_msg(stamp_ns)
    return msg


def main() -> int:
    return run_node(SimBridge)


if __name__ == "__main__":
    raise SystemExit(main())
