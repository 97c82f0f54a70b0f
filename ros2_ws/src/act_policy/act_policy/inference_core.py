"""The control core of ``act_inference``: observations with ages, an action schedule, a smooth start.

The node calls :meth:`InferenceCore.tick` once per control period. Chunks are predicted off the
control thread (:class:`ThreadedPredictor`); the core asks for the next one while the schedule
still holds ``refill_steps`` actions, so the control loop keeps its period while a chunk is computed.
A chunk is aligned to the tick whose observation it was computed from (the actions for ticks that
passed during inference are skipped), then either replaces the schedule or, with temporal
ensembling, is averaged into it with ACT's weights ``exp(-coeff * i)`` (``i = 0`` the oldest).

Safety (DESIGN.md §6): an observation older than ``max_obs_age`` holds position (and warns); a
chunk with a non-finite value is dropped and the arm holds; every start (and every recovery from
a hold) ramps from the measured pose (not from a command sent before the stop or hold) to the
policy's actions: the gap between the pose and the
policy's first action closes linearly over ``start_ramp_s`` (longer when the gap would otherwise
close faster than ``max_joint_speed``), while the policy's own motion passes through unchanged.
Capping the arm's whole speed instead slowed the policy's trained reach (a min-jerk peak is above
1 rad/s) and cost success in graph evaluation (``benchmarks/RESULTS.md``).

Dependency rule: numpy and the standard library; no ROS runtime, no torch.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Protocol

import numpy as np

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class InferenceConfig:
    """Settings of the control core; the node's parameters map onto these fields."""

    rate: float  # control rate (Hz): the dataset fps the policy was trained at
    cameras: tuple[str, ...]  # the cameras the policy observes
    chunk_size: int  # actions per predicted chunk
    n_action_steps: int  # actions executed from each chunk (no ensembling)
    max_obs_age: float = 0.2  # an observation older than this (s) holds position: the policy would act blind
    temporal_ensemble_coeff: float = 0.0  # 0 = off; else ACT's ensembling weight exp(-coeff * i)
    refill_steps: int = 0  # ask for a chunk when this many actions are left; 0 = from the measured latency
    start_ramp_s: float = 1.0  # close the gap from the current pose to the policy's actions over this long (s)
    max_joint_speed: float = 1.0  # rad/s: the gap closes no faster (a first action far away is reached slowly)
    joint_count: int = 6

    def __post_init__(self) -> None:
        if self.rate <= 0:
            raise ValueError(f"rate must be > 0, got {self.rate}")
        if not 1 <= self.n_action_steps <= self.chunk_size:
            raise ValueError(f"n_action_steps must be in 1..{self.chunk_size}, got {self.n_action_steps}")
        safety = {"rate": self.rate, "max_obs_age": self.max_obs_age, "max_joint_speed": self.max_joint_speed,
                  "start_ramp_s": self.start_ramp_s}
        infinite = [k for k, v in safety.items() if not math.isfinite(v)]
        if infinite:  # an infinite age or speed would switch the hold or the ramp off
            raise ValueError(f"{', '.join(infinite)} must be finite")
        if self.max_obs_age <= 0 or self.max_joint_speed <= 0 or self.start_ramp_s < 0:
            raise ValueError("max_obs_age and max_joint_speed must be > 0 and start_ramp_s >= 0")
        if self.temporal_ensemble_coeff < 0 or self.refill_steps < 0:
            raise ValueError("temporal_ensemble_coeff and refill_steps must be >= 0")

    @property
    def period(self) -> float:
        return 1.0 / self.rate

    @property
    def ensembling(self) -> bool:
        return self.temporal_ensemble_coeff > 0


@dataclasses.dataclass(frozen=True)
class Observation:
    """What a chunk is predicted from: joint positions (rad) and RGB images (h, w, 3 uint8)."""

    state: np.ndarray
    images: Mapping[str, np.ndarray]


@dataclasses.dataclass(frozen=True)
class Request:
    id: int
    step: int  # the control tick the observation belongs to: the chunk's first action is for it
    observation: Observation


@dataclasses.dataclass(frozen=True)
class Result:
    id: int
    chunk: np.ndarray | None  # (chunk_size, joints), or None when inference failed
    latency: float  # seconds spent predicting
    error: str = ""


class Predictor(Protocol):
    """Computes chunks somewhere other than the control thread."""

    def submit(self, request: Request) -> None: ...

    def poll(self) -> list[Result]: ...


class ThreadedPredictor:
    """Runs ``predict(observation) -> (chunk_size, joints) array`` on a worker thread, one request at a time."""

    def __init__(self, predict: Callable[[Observation], np.ndarray], name: str = "inference") -> None:
        self._predict = predict
        self._requests: queue.Queue[Request | None] = queue.Queue()
        self._results: deque[Result] = deque()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, request: Request) -> None:
        self._requests.put(request)

    def poll(self) -> list[Result]:
        out = []
        while self._results:
            out.append(self._results.popleft())
        return out

    def _run(self) -> None:
        while (req := self._requests.get()) is not None:
            t0 = time.perf_counter()
            try:
                chunk = np.asarray(self._predict(req.observation), dtype=np.float64)
                self._results.append(Result(req.id, chunk, time.perf_counter() - t0))
            except Exception as e:  # noqa: BLE001 - reported to the control thread, which holds
                log.debug("inference failed", exc_info=True)
                self._results.append(Result(req.id, None, time.perf_counter() - t0, f"{type(e).__name__}: {e}"))

    def close(self, timeout: float = 5.0) -> None:
        self._requests.put(None)
        self._thread.join(timeout)


class SteppedPredictor:
    """Inference in simulated time: a chunk is handed over ``latency`` seconds after it was asked for.

    For evaluating act_inference's schedule without a clock (``so100 eval --inference-latency``):
    each :meth:`poll` is one control tick; a request submitted during a tick is returned by the
    poll of the first later tick at or after the latency (at least the next one, as a worker
    thread's result is).
    """

    def __init__(self, predict: Callable[[Observation], np.ndarray], latency: float, rate: float) -> None:
        if latency < 0 or rate <= 0:
            raise ValueError(f"latency must be >= 0 s and rate > 0 Hz, got {latency} and {rate}")
        self._predict = predict
        self.latency = latency
        self.ticks = max(1, math.ceil(latency * rate - 1e-9))  # polls from a submit to its result
        self._pending: list[list] = []  # [polls left, request]

    def submit(self, request: Request) -> None:
        self._pending.append([self.ticks, request])

    def poll(self) -> list[Result]:
        out = []
        for item in self._pending:
            item[0] -= 1
            if item[0] <= 0:
                req = item[1]
                try:
                    chunk = np.asarray(self._predict(req.observation), dtype=np.float64)
                    out.append(Result(req.id, chunk, self.latency))
                except Exception as e:  # noqa: BLE001 - as ThreadedPredictor: the core holds
                    out.append(Result(req.id, None, self.latency, f"{type(e).__name__}: {e}"))
        self._pending = [item for item in self._pending if item[0] > 0]
        return out


@dataclasses.dataclass
class Stats:
    """Counters the node reports periodically and at shutdown."""

    ticks: int = 0
    commands: int = 0
    deadline_misses: int = 0  # control periods that passed without a command (a tick > 3/4 period late)
    underruns: int = 0  # running ticks with no action scheduled (inference did not refill in time)
    stale_holds: int = 0  # ticks held because an observation was too old
    bad_chunks: int = 0  # chunks dropped for a non-finite value or an inference error
    chunks: int = 0
    #: the latest chunk latencies (bounded: a day's run must not grow the report's work)
    latencies: deque[float] = dataclasses.field(default_factory=lambda: deque(maxlen=2000))

    def latency_summary(self) -> str:
        if not self.latencies:
            return "no chunk yet"
        ms = np.asarray(self.latencies) * 1000
        return (
            f"p50 {np.percentile(ms, 50):.0f} ms, p95 {np.percentile(ms, 95):.0f} ms, max {ms.max():.0f} ms "
            f"over {len(ms)} chunks"
        )

    def line(self) -> str:
        return (
            f"{self.commands} commands, {self.deadline_misses} deadline misses, {self.underruns} underruns, "
            f"{self.stale_holds} stale holds, {self.bad_chunks} bad chunks; inference {self.latency_summary()}"
        )


@dataclasses.dataclass(frozen=True)
class Command:
    """What a tick decided: joint positions to publish (None = publish nothing) and why."""

    position: np.ndarray | None
    mode: str  # "stopped" | "waiting" (no state yet) | "hold" (stale/first chunk pending) | "ramp" | "policy"
    reason: str = ""


class InferenceCore:
    """Observation buffer, action schedule, smooth start and deadline accounting for one policy."""

    def __init__(self, config: InferenceConfig, predictor: Predictor, *, running: bool = True) -> None:
        self.cfg = config
        self.predictor = predictor
        self.stats = Stats()
        self.running = running
        self._state: tuple[np.ndarray, float] | None = None
        self._images: dict[str, tuple[np.ndarray, float]] = {}
        self._last_tick: float | None = None
        self._step = -1
        self._next_id = 0
        self._in_flight: int | None = None  # id of the request whose result is still wanted
        self._busy = False  # the predictor is working (on a wanted or an abandoned request)
        self._request_steps: dict[int, int] = {}  # request id -> the tick its observation belongs to
        self._sum: dict[int, np.ndarray] = {}  # step -> sum of weighted actions (or the action)
        self._weight: dict[int, float] = {}
        self._count: dict[int, int] = {}
        self._last_cmd: np.ndarray | None = None
        self._ramp_gap: np.ndarray | None = None  # pose minus the policy's first action, at the ramp's start
        self._ramp_t0 = 0.0
        self._ramp_s = 0.0
        self._ramping = True
        self._holding = False
        self._latency_est = 0.0

    # ------------------------------------------------------------ observations
    def observe_state(self, position: np.ndarray, stamp: float) -> None:
        """Joint positions (rad) captured at ``stamp`` (the core's clock, seconds)."""
        pos = np.asarray(position, dtype=np.float64)
        if pos.shape != (self.cfg.joint_count,) or not np.all(np.isfinite(pos)):
            return
        self._state = (pos, stamp)

    def observe_image(self, camera: str, image: np.ndarray, stamp: float) -> None:
        if camera in self.cfg.cameras:
            self._images[camera] = (image, stamp)

    def ages(self, now: float) -> dict[str, float]:
        """Age (s) of the newest joint state and image of each camera; inf when never seen."""
        out = {"joint_states": now - self._state[1] if self._state else math.inf}
        for cam in self.cfg.cameras:
            out[cam] = now - self._images[cam][1] if cam in self._images else math.inf
        return out

    @property
    def current_pose(self) -> np.ndarray | None:
        return None if self._state is None else self._state[0].copy()

    # ------------------------------------------------------------ episode control
    def start(self) -> None:
        """Run the policy, ramping from the measured pose (never from a command sent before the stop: the arm
        may have been moved since)."""
        if not self.running:
            self.running = True
            self._last_cmd = None
            self._begin_ramp()

    def stop(self) -> None:
        """Stop publishing; queued actions are dropped (the follower holds on its own timeout)."""
        self.running = False
        self._clear()

    def reset(self) -> None:
        """Between episodes: stop and forget every action and the ramp state; start() begins anew."""
        self.stop()
        self._last_cmd = None

    def _clear(self) -> None:
        self._sum.clear()
        self._weight.clear()
        self._count.clear()
        self._in_flight = None  # a result still coming is ignored
        self._begin_ramp()

    def _begin_ramp(self) -> None:
        self._ramping = True
        self._ramp_gap = None

    # ------------------------------------------------------------ the control tick
    @property
    def refill_steps(self) -> int:
        """Actions left when the next chunk is requested: enough to cover inference with margin."""
        if self.cfg.refill_steps:
            return self.cfg.refill_steps
        need = math.ceil(1.5 * self._latency_est * self.cfg.rate) + 2
        return max(1, min(need, self.cfg.n_action_steps - 1)) if self.cfg.n_action_steps > 1 else 0

    def set_latency_estimate(self, seconds: float) -> None:
        """Seed the refill threshold (e.g. from a warm-up inference) before the first measured chunk."""
        self._latency_est = max(self._latency_est, seconds)

    def tick(self, now: float) -> Command:
        """One control period at ``now`` (seconds, the clock of the observation stamps)."""
        if self._last_tick is None:
            step = 0
        else:
            # periods since the last tick: a tick up to 3/4 of a period late is on time (jitter), later is a
            # period without a command; the step index follows the clock so chunks stay aligned
            periods = max(1, math.floor((now - self._last_tick) * self.cfg.rate + 0.25))
            self.stats.deadline_misses += periods - 1
            step = self._step + periods
        self._last_tick = now
        self._step = step
        self.stats.ticks += 1
        self._collect(step)
        for s in [s for s in self._sum if s < step]:
            self._drop(s)

        if not self.running:
            return Command(None, "stopped")
        if self._state is None:
            return Command(None, "waiting", "no /follower/joint_states yet")
        stale = {k: a for k, a in self.ages(now).items() if a > self.cfg.max_obs_age}
        if stale:
            self.stats.stale_holds += 1
            if not self._holding:
                self._clear()
            self._holding = True
            reason = ", ".join(
                f"{k} {'never received' if math.isinf(a) else f'{a:.2f} s old'}" for k, a in sorted(stale.items())
            )
            return self._emit(
                self._hold_pose(), "hold", f"observation too old ({reason}; limit {self.cfg.max_obs_age:.2f} s)"
            )
        if self._holding:  # recovering: ramp from where the arm is now, not from the held command
            self._holding = False
            self._last_cmd = None
        self._maybe_request(step)
        action = self._action_at(step)
        if action is None:
            if self._ramping and self._ramp_gap is None:
                return self._emit(self._hold_pose(), "hold", "waiting for the first chunk")
            if not self._ramping:
                self.stats.underruns += 1
            return self._emit(self._hold_pose(), "hold", "no action scheduled (inference late)")
        if self._ramping:
            return self._emit(self._ramp(action, now), "ramp")
        return self._emit(action, "policy")

    def _emit(self, position: np.ndarray, mode: str, reason: str = "") -> Command:
        self._last_cmd = position.copy()
        self.stats.commands += 1
        return Command(position, mode, reason)

    def _hold_pose(self) -> np.ndarray:
        return self._last_cmd.copy() if self._last_cmd is not None else self._state[0].copy()

    def _ramp(self, target: np.ndarray, now: float) -> np.ndarray:
        """The policy's action plus what is left of the start gap (closed by a linear share each period)."""
        if self._ramp_gap is None:
            self._ramp_gap = self._hold_pose() - target
            self._ramp_t0 = now - self.cfg.period  # the first command already takes one period's share
            self._ramp_s = max(self.cfg.start_ramp_s, float(np.max(np.abs(self._ramp_gap))) / self.cfg.max_joint_speed)
        alpha = 1.0 if self._ramp_s <= 0 else min(1.0, (now - self._ramp_t0) / self._ramp_s)
        if alpha >= 1.0:
            self._ramping = False
            return target.copy()
        return target + (1.0 - alpha) * self._ramp_gap

    # ------------------------------------------------------------ the schedule
    def _scheduled_ahead(self, step: int) -> int:
        n = 0
        while (step + n) in self._sum:
            n += 1
        return n

    def _maybe_request(self, step: int) -> None:
        if self._busy:
            return
        if not self.cfg.ensembling and self._scheduled_ahead(step) > self.refill_steps:
            return
        state = self._state[0].copy()
        images = {cam: self._images[cam][0] for cam in self.cfg.cameras}
        self._next_id += 1
        self._in_flight = self._next_id
        self._busy = True
        self.predictor.submit(Request(self._next_id, step, Observation(state, images)))
        self._request_steps[self._next_id] = step

    def _collect(self, step: int) -> None:
        for res in self.predictor.poll():
            self._busy = False
            origin = self._request_steps.pop(res.id, None)
            if res.id != self._in_flight or origin is None:
                continue  # abandoned by stop/reset/stale hold
            self._in_flight = None
            self.stats.latencies.append(res.latency)
            self._latency_est = max(0.8 * self._latency_est, res.latency)
            if (
                res.chunk is None
                or res.chunk.ndim != 2
                or res.chunk.shape[1] != self.cfg.joint_count
                or not np.all(np.isfinite(res.chunk))
            ):
                self.stats.bad_chunks += 1
                why = res.error or (
                    "a non-finite action"
                    if res.chunk is not None and res.chunk.ndim == 2
                    else f"shape {None if res.chunk is None else res.chunk.shape}"
                )
                log.warning("dropped a chunk (%s); holding position", why)
                continue
            self.stats.chunks += 1
            self._merge(origin, res.chunk)

    def _merge(self, origin: int, chunk: np.ndarray) -> None:
        horizon = len(chunk) if self.cfg.ensembling else min(len(chunk), self.cfg.n_action_steps)
        first = origin
        if not self.cfg.ensembling:
            for s in [s for s in self._sum if s >= origin]:
                self._drop(s)  # the fresher chunk replaces what is left of the old one
        for i in range(horizon):
            s = first + i
            a = chunk[i]
            if self.cfg.ensembling and s in self._sum:
                w = math.exp(-self.cfg.temporal_ensemble_coeff * self._count[s])
                self._sum[s] = self._sum[s] + w * a
                self._weight[s] += w
                self._count[s] += 1
            else:
                self._sum[s], self._weight[s], self._count[s] = a.copy(), 1.0, 1

    def _drop(self, step: int) -> None:
        self._sum.pop(step, None)
        self._weight.pop(step, None)
        self._count.pop(step, None)

    def _action_at(self, step: int) -> np.ndarray | None:
        if step not in self._sum:
            return None
        return self._sum[step] / self._weight[step]
