"""act_inference: a trained ACT checkpoint drives the follower, on sim or real unchanged.

Subscribes to ``/follower/joint_states`` and the cameras the checkpoint observes
(``/cameras/<name>/image_raw``), publishes ``/follower/joint_commands`` at the dataset fps.
Chunks are predicted on a worker thread; :mod:`act_policy.inference_core` keeps the schedule,
holds on stale observations, ramps in from the current pose and counts deadline misses.
Services ``/act_inference/start``, ``/act_inference/stop``, ``/act_inference/reset`` (std_srvs/Trigger).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from act_policy.inference_core import Command, InferenceConfig, InferenceCore, Observation, ThreadedPredictor
from act_policy.policy_io import CheckpointError, LoadedPolicy, load_policy, predict_chunk, resolve_checkpoint
from so100_common import contract, messages, names
from so100_common.node import Node, run_node

WARN_EVERY_S = 5.0  # while holding, repeat the warning this often
STARTUP_GRACE_S = 2.0  # a topic not yet received this soon after start-up is only worth an info line


class ActInference(Node):
    def __init__(self, argv: list[str]) -> None:
        super().__init__("act_inference", argv=argv)
        p = self.declare_parameter
        checkpoint = p(
            "checkpoint",
            "",
            description="checkpoint: a `so100 train` run folder, a checkpoint step "
            "folder or a pretrained_model folder (required)",
        )
        device = p("device", "auto", description="torch device: auto (the GPU when there is one), cpu, cuda, ...")
        rate = p(
            "rate",
            0.0,
            description="command rate (Hz); 0 = the checkpoint's dataset fps",
            min_value=0.0,
            max_value=200.0,
        )
        max_obs_age = p(
            "max_obs_age", 0.2, description="hold position when an observation is older than this (s)", min_value=0.01
        )
        coeff = p(
            "temporal_ensemble_coeff", 0.0, description="ACT temporal ensembling coefficient; 0 = off", min_value=0.0
        )
        n_steps = p("n_action_steps", 0, description="actions executed per chunk; 0 = the checkpoint's", min_value=0)
        refill = p(
            "refill_steps",
            0,
            description="request the next chunk when this many actions are left; "
            "0 = from the measured inference latency",
            min_value=0,
        )
        self.autostart = p(
            "autostart", True, description="run the policy at start-up (else wait for the start service)"
        )
        ramp = p(
            "start_ramp_s",
            1.0,
            description="close the gap from the current pose to the policy's actions over this long (s)",
            min_value=0.0,
            max_value=10.0,
        )
        speed = p("max_joint_speed", 1.0, description="the start gap closes no faster than this (rad/s)", min_value=0.01)
        threads = p("torch_threads", 0, description="torch intra-op threads; 0 = torch's default", min_value=0)
        report = p("report_period", 5.0, description="seconds between status lines", min_value=0.5)
        self.end_parameters()  # --help stops here, before loading the checkpoint
        if not checkpoint:
            raise CheckpointError(
                "act_inference needs a checkpoint: --ros-args -p checkpoint:=<run folder or "
                "pretrained_model> (train one with `so100 train`)"
            )
        resolve_checkpoint(checkpoint)  # a wrong path fails here, before torch is imported
        if threads:
            import torch

            torch.set_num_threads(threads)
        self.lp = load_policy(
            checkpoint,
            None if device == "auto" else device,
            n_action_steps=n_steps or None,
            temporal_ensemble_coeff=coeff or None,
        )
        inputs = self.lp.inputs
        self.rate = rate or inputs.fps
        self.cfg = InferenceConfig(
            rate=self.rate,
            cameras=inputs.cameras,
            chunk_size=self.lp.chunk_size,
            n_action_steps=1 if coeff else self.lp.n_action_steps,
            max_obs_age=max_obs_age,
            temporal_ensemble_coeff=coeff,
            refill_steps=refill,
            start_ramp_s=ramp,
            max_joint_speed=speed,
        )
        self._resize_logged: set[str] = set()
        warmup = self._warmup()
        self.predictor = ThreadedPredictor(self.predict)
        self.core = InferenceCore(self.cfg, self.predictor, running=self.autostart)
        self.core.set_latency_estimate(warmup)

        self.pub = contract.FOLLOWER_JOINT_COMMANDS.publisher(self)
        contract.FOLLOWER_JOINT_STATES.subscription(self, self.on_state, depth=5)
        for cam in inputs.cameras:
            contract.camera_image(cam).subscription(self, lambda msg, cam=cam: self.on_image(cam, msg))
        self.create_service("std_srvs/srv/Trigger", names.ACT_INFERENCE_START, self.on_start)
        self.create_service("std_srvs/srv/Trigger", names.ACT_INFERENCE_STOP, self.on_stop)
        self.create_service("std_srvs/srv/Trigger", names.ACT_INFERENCE_RESET, self.on_reset)
        self._last_kind: tuple[str, bool, bool] = ("", False, False)
        self._last_warn = 0.0
        self.t_up = time.monotonic()
        self.create_timer(1.0 / self.rate, self.tick)
        self.create_timer(report, self.report)
        self.logger.info(
            "act_inference up: %s on %s, cameras %s at %dx%d, %.1f Hz, chunk %d, %s, max_obs_age "
            "%.2f s, warm-up inference %.0f ms, %s",
            self.lp.path,
            self.lp.device,
            ",".join(inputs.cameras),
            inputs.width,
            inputs.height,
            self.rate,
            self.cfg.chunk_size,
            f"temporal ensembling {coeff}" if coeff else f"{self.cfg.n_action_steps} actions/chunk",
            max_obs_age,
            1000 * warmup,
            "running" if self.autostart else "waiting for start",
        )

    # ------------------------------------------------------------ inference (worker thread)
    def predict(self, obs: Observation) -> np.ndarray:
        """One chunk (chunk_size, 6) in radians from one observation."""
        lp: LoadedPolicy = self.lp
        h, w = lp.inputs.height, lp.inputs.width
        images = {}
        for cam in lp.inputs.cameras:
            img = obs.images[cam]
            if img.shape[:2] != (h, w) and cam not in self._resize_logged:
                self._resize_logged.add(cam)
                self.logger.info("camera %s sends %dx%d images; resizing to the checkpoint's %dx%d as training did",
                                 cam, img.shape[1], img.shape[0], w, h)
            images[cam] = img
        return predict_chunk(lp, obs.state, images)

    def _warmup(self) -> float:
        """One inference on a blank observation: loads kernels and measures the latency."""
        inputs = self.lp.inputs
        blank = np.zeros((*inputs.render_size, 3), np.uint8)  # the camera size it expects: resize included
        obs = Observation(np.zeros(inputs.state_dim), {c: blank for c in inputs.cameras})
        t0 = time.perf_counter()
        chunk = self.predict(obs)
        if chunk.shape != (self.lp.chunk_size, inputs.action_dim):
            raise CheckpointError(
                f"the policy predicts chunks of shape {chunk.shape}; expected "
                f"({self.lp.chunk_size}, {inputs.action_dim})"
            )
        self.predict(obs)
        return (time.perf_counter() - t0) / 2

    # ------------------------------------------------------------ observations
    def _stamp(self, header: Any) -> float:
        """The capture time in the monotonic clock (the header's wall time; arrival when unset)."""
        now_mono, now_wall = time.monotonic(), time.time_ns()
        stamp = messages.stamp_to_ns(header.stamp)
        if stamp <= 0:
            return now_mono
        return now_mono - max(0.0, (now_wall - stamp) / 1e9)

    def on_state(self, msg: Any) -> None:
        if list(msg.name) != list(names.JOINT_NAMES):
            return
        self.core.observe_state(np.asarray(msg.position, dtype=np.float64), self._stamp(msg.header))

    def on_image(self, camera: str, msg: Any) -> None:
        if msg.encoding not in ("rgb8", "bgr8"):
            return
        img = messages.image_to_numpy(msg)
        if msg.encoding == "bgr8":
            img = img[:, :, ::-1]
        self.core.observe_image(camera, img, self._stamp(msg.header))

    # ------------------------------------------------------------ control
    def tick(self) -> None:
        now = time.monotonic()
        cmd = self.core.tick(now)
        if cmd.position is not None:
            self.pub.publish(messages.joint_state(names.JOINT_NAMES, cmd.position, stamp_ns=time.time_ns()))
        self._log_mode(cmd, now)

    def _log_mode(self, cmd: Command, now: float) -> None:
        """One line when the mode changes; while holding, the reason again every WARN_EVERY_S."""
        quiet = "first chunk" in cmd.reason or ("never received" in cmd.reason and now - self.t_up < STARTUP_GRACE_S)
        kind = (cmd.mode, quiet, "never received" in cmd.reason)
        changed = kind != self._last_kind
        self._last_kind = kind
        if cmd.mode == "hold" and (changed or now - self._last_warn > WARN_EVERY_S):
            self._last_warn = now
            (self.logger.info if quiet else self.logger.warning)("holding position: %s", cmd.reason)
        elif changed and cmd.mode in ("ramp", "policy"):
            self.logger.info("%s", "ramping in from the current pose" if cmd.mode == "ramp" else "policy in control")

    def on_start(self, request: Any, response: Any) -> Any:
        self.core.start()
        response.success, response.message = True, "policy running"
        self.logger.info("start: policy running")
        return response

    def on_stop(self, request: Any, response: Any) -> Any:
        self.core.stop()
        response.success, response.message = True, "policy stopped"
        self.logger.info("stop: policy stopped")
        return response

    def on_reset(self, request: Any, response: Any) -> Any:
        self.core.reset()
        if hasattr(self.lp.policy, "reset"):
            self.lp.policy.reset()
        response.success, response.message = True, "policy reset (stopped; call start)"
        self.logger.info("reset: schedule cleared, policy stopped")
        return response

    def report(self, final: bool = False) -> None:
        self.logger.info("%s%.1f Hz: %s", "final: " if final else "", self.rate, self.core.stats.line())

    def destroy(self) -> None:
        if hasattr(self, "core"):
            self.report(final=True)
            self.predictor.close()
        super().destroy()


def main() -> int:
    return run_node(ActInference)


if __name__ == "__main__":
    raise SystemExit(main())
