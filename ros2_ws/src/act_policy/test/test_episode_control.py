"""The recorder's episode rules (act_policy.episode_control) and its terminal keys, with no transport."""

from __future__ import annotations

import numpy as np
import pytest

from act_policy.episode_control import EpisodeControl, EpisodeRules, Phase, Start, Stop
from act_policy.errors import RecorderError
from act_policy.terminal_keys import KeyboardControl

HOME = np.zeros(6)
OLD_POSE = np.array([0.3, -0.5, 0.8, 1.5, 1.0, 0.6])


def started(control: EpisodeControl, now: float) -> Start | Stop | None:
    decision = control.tick(now)
    if isinstance(decision, Start):
        control.started(now)
    return decision


def test_without_any_command_an_episode_starts_after_the_timeout():
    """A leader arm's first command may be anywhere: the first episode waits for it too; a passive recording
    (no command ever) starts after start_timeout, flagged as not converged."""
    c = EpisodeControl(EpisodeRules(start_timeout=3.0))
    assert c.request(0.0)[0]
    c.on_state(HOME, 0.5)
    assert c.tick(2.9) is None
    decision = started(c, 3.0)
    assert isinstance(decision, Start) and not decision.converged and decision.gap is None
    assert c.phase is Phase.RECORDING
    assert not c.request(3.1)[0]  # one episode at a time


def test_waits_until_the_follower_agrees_with_a_fresh_command():
    """The dirty start the graph recorded: the reset pose (home) against the previous episode's pose."""
    c = EpisodeControl(EpisodeRules(start_tolerance=0.1, start_timeout=3.0))
    c.on_command(OLD_POSE, 0.0)  # the previous episode's last command
    c.on_state(HOME, 0.05)
    c.request(0.1)
    assert c.tick(0.2) is None  # nothing received since the request
    c.on_command(OLD_POSE, 0.3)
    c.on_state(HOME, 0.3)
    assert c.tick(0.3) is None  # 1.5 rad apart
    c.on_state(OLD_POSE - 0.05, 0.9)
    decision = c.tick(0.9)
    assert isinstance(decision, Start) and decision.converged
    assert decision.gap == pytest.approx(0.05) and decision.waited == pytest.approx(0.8)


def test_stale_agreement_from_before_the_request_does_not_count():
    c = EpisodeControl(EpisodeRules())
    c.on_command(HOME, 0.0)
    c.on_state(HOME, 0.0)
    c.request(1.0)
    assert c.tick(1.5) is None
    c.on_command(HOME, 1.6)
    assert c.tick(1.6) is None  # the state is still from before the request
    c.on_state(HOME, 1.7)
    assert isinstance(c.tick(1.7), Start)


def test_starts_anyway_after_the_timeout_naming_the_largest_gap():
    c = EpisodeControl(EpisodeRules(start_timeout=2.0))
    c.on_command(OLD_POSE, 0.0)
    c.request(0.0)
    c.on_command(OLD_POSE, 0.5)
    c.on_state(HOME, 0.5)
    assert c.tick(1.9) is None
    decision = c.tick(2.0)
    assert isinstance(decision, Start) and not decision.converged
    assert decision.joint == 3 and decision.gap == pytest.approx(1.5)


def test_zero_tolerance_never_waits_and_non_finite_inputs_are_ignored():
    c = EpisodeControl(EpisodeRules(start_tolerance=0.0))
    c.on_command(OLD_POSE, 0.0)
    c.request(0.0)
    assert isinstance(c.tick(0.0), Start)
    c2 = EpisodeControl(EpisodeRules())
    c2.on_command(HOME, 0.0)
    c2.request(0.0)
    c2.on_command(np.full(6, np.nan), 0.1)
    c2.on_state(HOME, 0.1)
    assert c2.gap() == (0.0, 0)  # the NaN command did not replace the finite one


def test_stop_after_success_and_at_max_duration():
    c = EpisodeControl(EpisodeRules(stop_after_success=1.0, max_duration=10.0, start_tolerance=0.0))
    c.request(0.0)
    started(c, 0.0)
    assert not c.on_success(False, 1.0)
    assert c.on_success(True, 2.0)
    assert not c.on_success(True, 2.5)  # still true: no second rise
    assert c.tick(2.9) is None
    assert c.tick(3.0) == Stop("success")
    c.stopped()
    c.request(5.0)
    started(c, 5.0)
    assert not c.success_seen
    assert c.tick(14.9) is None
    assert c.tick(15.0) == Stop("max_duration")


def test_success_before_the_episode_starts_is_not_counted():
    c = EpisodeControl(EpisodeRules(start_tolerance=0.0))
    assert not c.on_success(True, 0.0)
    c.request(0.0)
    started(c, 0.0)
    assert not c.success_seen and c.tick(100.0) == Stop("max_duration")


def test_autostart_requests_the_next_episode_on_the_next_scene_only():
    c = EpisodeControl(EpisodeRules(autostart=True, start_tolerance=0.0))
    assert not c.on_scene(0.0)  # idle, but nothing ended yet: the node requests the first one itself
    c.request(0.0)
    started(c, 0.0)
    assert not c.on_scene(1.0)  # recording
    c.stopped()
    assert c.on_scene(2.0) and c.phase is Phase.WAITING
    c.cancel()
    assert c.phase is Phase.IDLE and not c.on_scene(3.0)  # a stop while waiting ends the autostart chain
    manual = EpisodeControl(EpisodeRules(autostart=False, start_tolerance=0.0))
    manual.request(0.0)
    started(manual, 0.0)
    manual.stopped()
    assert not manual.on_scene(1.0)


@pytest.mark.parametrize("kwargs", [{"start_tolerance": float("nan")}, {"start_timeout": float("inf")},
                                    {"max_duration": 0.0}, {"stop_after_success": -1.0}])
def test_rules_refuse_values_that_disable_them(kwargs):
    with pytest.raises(RecorderError):
        EpisodeRules(**kwargs)


def test_terminal_keys_parse_arrows_in_both_forms_and_a_lone_escape():
    assert KeyboardControl.parse(b"\x1b[C\x1bOD") == ["next", "rerecord"]
    assert KeyboardControl.parse(b"a\x1b") == ["quit"]
    assert KeyboardControl.parse(b"\x1b[A") == []  # up arrow: not a command
