"""The act_inference control core without transport: schedule, refill, staleness, ramp, ensembling, misses."""

import math
import time

import numpy as np
import pytest

from act_policy.inference_core import (
    InferenceConfig,
    InferenceCore,
    Observation,
    Request,
    Result,
    SteppedPredictor,
    ThreadedPredictor,
)
from so100_common.testing import wait_for

RATE = 30.0
DT = 1.0 / RATE


class ScriptedPredictor:
    """Answers each request ``latency_ticks`` polls later with ``chunk_fn(request)`` (a deterministic worker)."""

    def __init__(self, latency_ticks: int, chunk_fn) -> None:
        self.latency_ticks = latency_ticks
        self.chunk_fn = chunk_fn
        self.pending: list[tuple[int, Request]] = []
        self.requests: list[Request] = []
        self.polls = 0

    def submit(self, request: Request) -> None:
        self.requests.append(request)
        self.pending.append((self.polls + self.latency_ticks, request))

    def poll(self) -> list[Result]:
        self.polls += 1
        ready = [r for due, r in self.pending if due <= self.polls]
        self.pending = [(d, r) for d, r in self.pending if d > self.polls]
        return [Result(r.id, self.chunk_fn(r), self.latency_ticks * DT) for r in ready]


def step_chunk(chunk_size: int = 10):
    """Joint 0 of action i of a chunk asked at tick s is (s + i) / 100: the executed value names its tick."""

    def fn(req: Request) -> np.ndarray:
        c = np.zeros((chunk_size, 6))
        c[:, 0] = (req.step + np.arange(chunk_size)) / 100
        return c

    return fn


def config(**kw) -> InferenceConfig:
    base = dict(
        rate=RATE,
        cameras=("overhead",),
        chunk_size=10,
        n_action_steps=10,
        max_obs_age=0.2,
        start_ramp_s=0.0,
        max_joint_speed=100.0,
    )
    return InferenceConfig(**(base | kw))


def run(core: InferenceCore, ticks: int, t0: float = 0.0, fresh: bool = True, state=None):
    """Tick ``ticks`` periods, feeding fresh observations; returns the commands."""
    out = []
    for k in range(ticks):
        t = t0 + k * DT
        if fresh:
            core.observe_state(np.zeros(6) if state is None else state, t)
            core.observe_image("overhead", np.zeros((4, 4, 3), np.uint8), t)
        out.append(core.tick(t))
    return out


def test_chunks_are_aligned_and_refilled_before_the_schedule_runs_dry():
    """With 4 ticks of latency every executed action is the one meant for its tick, and nothing underruns."""
    pred = ScriptedPredictor(4, step_chunk())
    core = InferenceCore(config(), pred)
    cmds = run(core, 120)
    policy = [(k, c) for k, c in enumerate(cmds) if c.mode == "policy"]
    assert len(policy) > 100 and all(c.position[0] == pytest.approx(k / 100) for k, c in policy)
    assert core.stats.underruns == 0 and core.stats.deadline_misses == 0
    assert all(c.mode == "hold" for c in cmds[:4])  # before the first chunk: hold the pose
    assert core.refill_steps >= 4 and len(pred.requests) > 120 / 10


def test_a_fixed_refill_too_late_underruns_and_holds():
    """refill_steps=1 with 4 ticks of latency: the schedule runs dry, the arm holds and it is counted."""
    core = InferenceCore(config(refill_steps=1), ScriptedPredictor(4, step_chunk()))
    cmds = run(core, 60)
    assert core.stats.underruns > 0
    late = [k for k, c in enumerate(cmds) if "inference late" in c.reason]
    assert late and np.array_equal(cmds[late[0]].position, cmds[late[0] - 1].position)


def test_stale_observation_holds_then_recovers_with_a_ramp():
    core = InferenceCore(config(start_ramp_s=0.5, max_joint_speed=1.0), ScriptedPredictor(1, step_chunk()))
    cmds = run(core, 60)
    assert cmds[-1].mode == "policy"
    t = 59 * DT
    held = [core.tick(t + k * DT) for k in range(1, 20)]  # no new observation for 19 ticks
    first = next(i for i, c in enumerate(held) if c.mode == "hold")
    assert 5 <= first <= 7  # 0.2 s of the schedule still runs on the last fresh observation
    stale = held[first:]
    assert all(c.mode == "hold" for c in stale)
    assert "observation too old" in stale[0].reason and "limit 0.20 s" in stale[0].reason
    assert all(np.array_equal(c.position, held[first - 1].position) for c in stale)
    assert core.stats.stale_holds == len(stale)
    again = run(core, 40, t0=t + 20 * DT)
    ramp = [c for c in again if c.mode == "ramp"]
    assert ramp and again[-1].mode == "policy"  # back in control through a ramp, not a jump
    steps = np.abs(np.diff([c.position[0] for c in again[: len(ramp) + 1]]))
    # the ramp starts from the measured pose (0 here) and closes that gap within max_joint_speed, while the
    # policy's own motion (0.01 rad a tick in step_chunk) passes through on top
    assert abs(again[0].position[0]) < 1e-9
    assert steps.max() <= 1.0 * DT + 0.01 + 1e-9


def test_never_received_camera_holds_the_current_pose():
    core = InferenceCore(config(), ScriptedPredictor(1, step_chunk()))
    pose = np.linspace(-0.5, 0.5, 6)
    for k in range(10):
        core.observe_state(pose, k * DT)
        cmd = core.tick(k * DT)
    assert cmd.mode == "hold" and "overhead never received" in cmd.reason
    assert np.allclose(cmd.position, pose)


def test_smooth_start_ramps_from_the_pose_within_the_speed_cap():
    """The first action is 1 rad away: the ramp takes it at <= max_joint_speed and ends on the policy."""
    target = np.full(6, 1.0)
    core = InferenceCore(
        config(start_ramp_s=0.5, max_joint_speed=2.0), ScriptedPredictor(1, lambda r: np.tile(target, (10, 1)))
    )
    cmds = run(core, 60)
    pos = np.array([c.position for c in cmds])
    assert np.abs(np.diff(pos, axis=0)).max() <= 2.0 * DT + 1e-9
    modes = [c.mode for c in cmds]
    assert "ramp" in modes and modes[-1] == "policy" and np.allclose(pos[-1], target)
    first_policy = modes.index("policy")
    assert first_policy * DT >= 0.5  # no sooner than start_ramp_s


def test_ramp_closes_the_start_gap_but_lets_the_policys_own_motion_through():
    """A policy moving at 2 rad/s (a trained reach) is not slowed by the 1 rad/s cap: only the gap
    between the pose and its first action closes, within the cap, and then the policy is followed exactly."""
    speed, cap = 2.0, 1.0

    def moving(offset: float):
        def fn(req: Request) -> np.ndarray:
            c = np.zeros((10, 6))
            c[:, 0] = offset + speed * DT * (req.step + np.arange(10))  # the action for tick k names k
            return c
        return fn

    def target(k: int, offset: float) -> float:
        return offset + speed * DT * k

    for offset in (0.0, 0.5):
        core = InferenceCore(config(start_ramp_s=0.3, max_joint_speed=cap), ScriptedPredictor(1, moving(offset)))
        cmds = run(core, 60)
        acting = [(k, c) for k, c in enumerate(cmds) if c.mode in ("ramp", "policy")]
        assert acting and acting[-1][1].mode == "policy"
        gap = np.array([c.position[0] - target(k, offset) for k, c in acting])
        assert np.all(np.abs(np.diff(np.abs(gap))) <= cap * DT + 1e-9)  # the gap closes within the cap
        assert np.all(np.diff(np.abs(gap)) <= 1e-12) and gap[-1] == pytest.approx(0.0)  # and only closes
        ramp_ticks = sum(c.mode == "ramp" for _, c in acting)
        if offset == 0.0:  # a small gap (the policy is one tick ahead): closed over start_ramp_s
            assert abs(gap[0]) < 0.1 and ramp_ticks * DT <= 0.3 + 1e-9
        else:
            assert ramp_ticks * DT >= 0.5 / cap - 1e-9  # 0.5 rad at <= 1 rad/s: at least 0.5 s of ramp
        moved = np.diff([c.position[0] for _, c in acting[-10:]])
        assert np.allclose(moved, speed * DT)  # after the ramp the arm follows the policy's speed


def test_non_finite_chunk_is_dropped_and_the_arm_holds(caplog):
    chunks = iter([np.full((10, 6), np.nan)] + [np.zeros((10, 6))] * 100)
    core = InferenceCore(config(), ScriptedPredictor(1, lambda r: next(chunks)))
    cmds = run(core, 3)
    assert core.stats.bad_chunks == 1 and "non-finite" in caplog.text
    assert [c.mode for c in cmds[:2]] == ["hold", "hold"] and cmds[2].mode in ("ramp", "policy")  # the next chunk
    assert all(np.all(np.isfinite(c.position)) for c in cmds)


def test_missed_periods_are_counted_as_deadline_misses():
    core = InferenceCore(config(), ScriptedPredictor(1, step_chunk()))
    run(core, 10)
    core.tick(10.6 * DT)  # late by 0.6 of a period: jitter, not a miss
    core.tick(11 * DT)
    assert core.stats.deadline_misses == 0
    core.tick(15 * DT)  # ticks 12, 13 and 14 never ran
    assert core.stats.deadline_misses == 3


def test_temporal_ensembling_weights_older_predictions_more():
    """Two overlapping predictions a (older) and b: exp(-m*i) weights give (a + e^-m b) / (1 + e^-m)."""
    m = 0.5
    values = iter(range(1, 100))
    core = InferenceCore(
        config(temporal_ensemble_coeff=m, n_action_steps=1),
        ScriptedPredictor(1, lambda r: np.full((10, 6), float(next(values)))),
    )
    cmds = run(core, 4)
    # tick 1 executes chunk 1 (asked at tick 0); tick 2 averages chunk 1 and chunk 2 (asked at tick 1)
    assert cmds[1].position[0] == pytest.approx(1.0)
    assert cmds[2].position[0] == pytest.approx((1 + math.exp(-m) * 2) / (1 + math.exp(-m)))


def test_stop_publishes_nothing_and_reset_starts_over():
    pred = ScriptedPredictor(1, step_chunk())
    core = InferenceCore(config(start_ramp_s=0.2), pred)
    run(core, 20)
    core.stop()
    assert run(core, 5, t0=20 * DT)[-1].position is None
    core.reset()
    core.start()
    cmds = run(core, 20, t0=25 * DT)
    assert cmds[0].mode == "hold" and any(c.mode == "ramp" for c in cmds) and cmds[-1].mode == "policy"


def test_threaded_predictor_computes_off_the_calling_thread():
    import threading

    seen = []

    def predict(obs: Observation) -> np.ndarray:
        seen.append(threading.current_thread().name)
        time.sleep(0.05)
        return np.ones((5, 6)) * obs.state[0]

    p = ThreadedPredictor(predict)
    try:
        p.submit(Request(1, 0, Observation(np.full(6, 2.0), {})))
        results = wait_for(p.poll, 5, "a result")
        assert results[0].chunk[0, 0] == 2.0 and results[0].latency >= 0.05 and seen == ["inference"]
        p.submit(Request(3, 0, None))  # predict fails: reported as a result with an error
        results = wait_for(lambda: [r for r in p.poll() if r.id == 3], 5, "the failed result")
        assert results[0].chunk is None and "AttributeError" in results[0].error
    finally:
        p.close()


@pytest.mark.parametrize(("latency", "ticks"), [(0.0, 1), (0.02, 1), (1 / 30, 1), (0.04, 2), (0.1, 3)])
def test_stepped_predictor_hands_a_chunk_over_after_its_latency(latency, ticks):
    """The result comes with the first tick at or after the latency, never in the tick that asked."""
    calls = []

    def predict(obs: Observation) -> np.ndarray:
        calls.append(obs)
        return np.full((5, 6), obs.state[0])

    p = SteppedPredictor(predict, latency, RATE)
    p.submit(Request(1, 0, Observation(np.full(6, 3.0), {})))
    polls = [p.poll() for _ in range(ticks)]
    assert all(r == [] for r in polls[:-1])
    assert polls[-1][0].chunk[0, 0] == 3.0 and polls[-1][0].latency == latency
    assert p.poll() == [] and len(calls) == 1
    p.submit(Request(2, 0, None))  # predict fails: reported as a result with an error, as the worker thread does
    failed = [r for _ in range(ticks) for r in p.poll()]
    assert failed[0].chunk is None and "AttributeError" in failed[0].error


def test_stepped_predictor_drives_the_core_like_the_worker_thread():
    """Through the core in simulated time: the first action at tick 0 + 3 (100 ms), each action at its own tick."""
    pred = SteppedPredictor(lambda obs: ((obs.state[0] + np.arange(10))[:, None] / 100) * np.ones((1, 6)), 0.1, RATE)
    core = InferenceCore(config(), pred)
    core.set_latency_estimate(0.1)
    cmds = []
    for k in range(90):
        core.observe_state(np.full(6, float(k)), k * DT)  # the state names its tick: chunks encode where they start
        core.observe_image("overhead", np.zeros((4, 4, 3), np.uint8), k * DT)
        cmds.append(core.tick(k * DT))
    assert [c.mode for c in cmds[:3]] == ["hold"] * 3  # no ramp here (start_ramp_s 0): policy from tick 3 on
    assert all(c.mode in ("ramp", "policy") and c.position[0] == pytest.approx(k / 100) for k, c in enumerate(cmds)
               if k >= 3)
    assert core.stats.underruns == 0


def test_stop_move_start_ramps_from_the_measured_pose_not_the_old_command():
    """The review's case: commands at 0.5, stopped, the arm moved to -0.8, started: no jump back to 0.5."""
    core = InferenceCore(config(start_ramp_s=0.3, max_joint_speed=1.0),
                         ScriptedPredictor(1, lambda r: np.full((10, 6), 0.5)))
    cmds = run(core, 40, state=np.full(6, 0.5))
    assert cmds[-1].mode == "policy" and np.allclose(cmds[-1].position, 0.5)
    core.stop()
    moved = np.full(6, -0.8)
    run(core, 10, t0=40 * DT, state=moved)  # stopped: the arm is moved by hand (or another source)
    core.start()
    after = run(core, 90, t0=50 * DT, state=moved)
    pos = np.array([c.position for c in after])
    assert np.allclose(pos[0], moved)  # the first command is where the arm is
    assert np.abs(np.diff(pos, axis=0)).max() <= 1.0 * DT + 1e-9  # then within max_joint_speed
    assert after[-1].mode == "policy" and np.allclose(pos[-1], 0.5)


def test_recovery_from_a_stale_hold_ramps_from_the_measured_pose():
    core = InferenceCore(config(start_ramp_s=0.2, max_joint_speed=1.0),
                         ScriptedPredictor(1, lambda r: np.full((10, 6), 0.5)))
    run(core, 40, state=np.full(6, 0.5))
    t = 39 * DT
    held = [core.tick(t + k * DT) for k in range(1, 15)]  # observations stop: hold
    assert held[-1].mode == "hold"
    pushed = np.full(6, 0.1)  # during the hold the arm was pushed away
    again = run(core, 60, t0=t + 15 * DT, state=pushed)
    pos = np.array([c.position for c in again])
    assert np.allclose(pos[0], pushed)
    assert np.abs(np.diff(pos, axis=0)).max() <= 1.0 * DT + 1e-9


def test_latency_statistics_are_bounded():
    core = InferenceCore(config(), ScriptedPredictor(0, step_chunk()))
    for _ in range(5000):
        core.stats.latencies.append(0.01)
    assert len(core.stats.latencies) == 2000 and "2000 chunks" in core.stats.latency_summary()


@pytest.mark.parametrize("field", ["max_obs_age", "max_joint_speed", "start_ramp_s"])
def test_settings_that_would_switch_a_safety_off_are_refused(field):
    with pytest.raises(ValueError, match=f"{field} must be finite"):
        config(**{field: math.inf})
