"""The follower safety core rejects, clamps, limits and holds as DESIGN.md §6 says."""

import logging

import numpy as np
import pytest

from so100_common.command_guard import BurstLog, CommandGuard, GuardConfig
from so100_common.errors import So100Error
from so100_common.names import JOINT_NAMES

LOWER = (-1.9, -1.7, -1.7, -1.6, -2.7, -0.17)
UPPER = (1.9, 1.7, 1.7, 1.6, 2.7, 1.7)


def guard(**kw):
    return CommandGuard(GuardConfig(LOWER, UPPER, **kw))


def test_valid_command_in_any_order_becomes_target():
    g = guard()
    names = list(reversed(JOINT_NAMES))
    v = g.submit(names, [0.6, 0.5, 0.4, 0.3, 0.2, 0.1], now=0.0)
    assert v.accepted and not v.clamped
    assert np.allclose(g.target(np.zeros(6), now=0.1), [0.1, 0.2, 0.3, 0.4, 0.5, 0.6])


@pytest.mark.parametrize(
    "names,pos,reason",
    [
        (["a", "b", "c", "d", "e", "f"], [0.0] * 6, "unknown joint"),
        (list(JOINT_NAMES), [0.0] * 5, "6 names but 5 positions"),
        (list(JOINT_NAMES[:5]), [0.0] * 5, "missing joint"),
        (list(JOINT_NAMES[:5]) + ["shoulder_pan"], [0.0] * 6, "duplicate"),
        (list(JOINT_NAMES), [0.0, np.nan, 0, 0, 0, 0], "non-finite"),
        (list(JOINT_NAMES), [0.0, 0, np.inf, 0, 0, 0], "non-finite"),
        ([], [], "missing joint"),
    ],
)
def test_bad_commands_are_rejected_and_never_applied(names, pos, reason):
    g = guard()
    g.submit(JOINT_NAMES, [0.1] * 6, now=0.0)
    v = g.submit(names, pos, now=0.01)
    assert not v.accepted and reason in v.reason
    assert g.rejected == 1
    assert np.allclose(g.target(np.zeros(6), now=0.02), 0.1)  # the last good target stands


def test_beyond_limits_is_clamped_and_reported():
    g = guard()
    v = g.submit(JOINT_NAMES, [5.0, -5.0, 0, 0, 0, 0], now=0.0)
    assert v.accepted and v.clamped == {"shoulder_pan": 5.0, "shoulder_lift": -5.0}
    t = g.target(np.zeros(6), now=0.0)
    assert t[0] == UPPER[0] and t[1] == LOWER[1]


def test_stale_commands_hold_the_position_at_timeout():
    g = guard(stale_timeout=0.5)
    g.submit(JOINT_NAMES, [1.0] * 6, now=0.0)
    assert np.allclose(g.target(np.zeros(6), now=0.4), 1.0)
    held = g.target(np.full(6, 0.3), now=0.6)  # stale: hold where the arm is, do not chase 1.0
    assert np.allclose(held, 0.3)
    assert np.allclose(g.target(np.full(6, 0.35), now=0.7), 0.3)  # held, not re-captured
    g.submit(JOINT_NAMES, [0.2] * 6, now=1.0)
    assert np.allclose(g.target(np.full(6, 0.3), now=1.0), 0.2)


def test_no_command_yet_holds_current_position_clamped():
    g = guard()
    assert np.allclose(g.target([3.0, 0, 0, 0, 0, 0], now=0.0), [1.9, 0, 0, 0, 0, 0])


def test_max_step_limits_motion_per_tick():
    g = guard(max_step=0.1)
    g.submit(JOINT_NAMES, [1.0] * 6, now=0.0)
    assert np.allclose(g.target(np.zeros(6), now=0.0), 0.1)
    assert np.allclose(g.target(np.full(6, 0.95), now=0.0), 1.0)


def test_config_validation():
    with pytest.raises(So100Error, match="below"):
        GuardConfig((0.0,) * 6, (0.0,) * 6)
    with pytest.raises(So100Error, match="limits for 5"):
        GuardConfig((0.0,) * 5, (1.0,) * 6)


def test_burst_log_logs_once_per_burst(caplog):
    t = [0.0]
    log = BurstLog(logging.getLogger("burst"), quiet=1.0, clock=lambda: t[0])
    with caplog.at_level(logging.WARNING):
        for i in range(10):
            t[0] = i * 0.1
            log(logging.WARNING, "clamped %d", i)
        t[0] = 5.0
        log(logging.WARNING, "clamped again")
    lines = [r.getMessage() for r in caplog.records]
    assert lines == ["clamped 0", "clamped again (9 similar before were not logged)"]


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_a_non_finite_measured_position_never_reaches_the_servos(bad):
    """The review's probe: a NaN present position passed through target() and became int64.min in ticks."""
    g = guard(max_step=0.1)
    cur = np.zeros(6)
    cur[2] = bad
    assert g.target(cur, now=0.0) is None  # nothing given yet: write nothing
    assert g.non_finite_states == 1
    g.submit(JOINT_NAMES, np.full(6, 0.5), now=0.0)
    last = g.target(np.zeros(6), now=0.01)
    assert np.allclose(last, 0.1)
    again = g.target(cur, now=0.02)  # fresh command, unknown position: the last target stands
    assert np.array_equal(again, last)
    assert g.target(cur, now=5.0) is not None and np.isfinite(g.target(cur, now=5.0)).all()  # stale too
    assert g.target(np.zeros(5), now=0.03) is not None and g.non_finite_states == 5  # a short read: same
    g.reset()
    assert g.target(cur, now=6.0) is None


@pytest.mark.parametrize("kw", [{"stale_timeout": float("inf")}, {"stale_timeout": float("nan")},
                                {"max_step": float("inf")}, {"max_step": float("nan")}])
def test_values_that_would_switch_a_safety_off_are_refused(kw):
    with pytest.raises(So100Error, match="finite"):
        guard(**kw)
    with pytest.raises(So100Error, match="finite"):
        GuardConfig((-np.inf, *LOWER[1:]), UPPER)
