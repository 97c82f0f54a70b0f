"""The reconnect state machine on its own: no transport, no SDK, an explicit clock."""

from __future__ import annotations

import logging

import pytest

from so100_driver.reconnect import Reconnector

LOG = logging.getLogger("test_reconnect")


class Camera:
    """A plain frame source: ``frames`` are handed out in order; ``fail`` makes ``poll()`` raise."""

    def __init__(self, serial: str = "0123", frames: list[int] | None = None) -> None:
        self.serial, self.name = serial, "D435"
        self.frames = list(frames or [])
        self.fail: Exception | None = None
        self.closed = False

    def poll(self) -> int | None:
        assert not self.closed, "polled after close()"
        if self.fail is not None:
            raise self.fail
        return self.frames.pop(0) if self.frames else None

    def close(self) -> None:
        self.closed = True


class Plug:
    """``reopen``: the camera comes back once ``present`` is set; records every attempt."""

    def __init__(self) -> None:
        self.present = False
        self.attempts: list[Camera] = []
        self.next = Camera()

    def __call__(self) -> Camera:
        if not self.present:
            self.attempts.append(Camera("absent"))
            raise RuntimeError("no RealSense device with serial_no '0123' found")
        self.attempts.append(self.next)
        return self.next


@pytest.fixture(autouse=True)
def _debug_log(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, LOG.name)


def _lines(caplog: pytest.LogCaptureFixture, level: int = logging.INFO) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= level]


def test_silence_loses_the_camera_once_then_retries_every_period_until_it_is_back(caplog):
    """No frames for frame_timeout: closed, one 'lost' line, reopen every period, 'back' with its first frames."""
    cam, plug = Camera(frames=[1, 2]), Plug()
    link = Reconnector(cam, plug, frame_timeout=5.0, period=1.0, now=0.0, log=LOG)
    assert link.tick(0.1) == [1, 2] and not link.lost
    assert link.tick(5.0) == [] and not link.lost  # 4.9 s of silence: still streaming
    assert link.tick(5.2) == [] and link.lost and cam.closed and link.source is None
    assert _lines(caplog) == ["camera 0123 lost: no frames for 5 s; retrying every 1 s"]
    for t in (5.5, 6.1, 6.5, 7.3, 7.9, 8.4):
        assert link.tick(t) == []
    assert len(plug.attempts) == 2  # at 6.5 and 7.9 s: a period apart at least, none at the loss itself
    assert _lines(caplog) == ["camera 0123 lost: no frames for 5 s; retrying every 1 s"]  # failures: debug only

    plug.present = True
    plug.next.frames = [3]
    assert link.tick(9.3) == []  # reopened; its frames come at the next tick
    assert link.source is plug.next and link.lost
    assert link.tick(9.35) == [3] and not link.lost and link.reconnects == 1
    assert _lines(caplog)[-1] == "camera 0123 back"


def test_a_failing_poll_loses_the_camera_at_once_and_no_old_frame_is_returned(caplog):
    """poll() raising: lost with the SDK's words; the old source is closed, never polled again."""
    cam, plug = Camera(frames=[1]), Plug()
    link = Reconnector(cam, plug, frame_timeout=5.0, period=0.5, now=0.0, log=LOG)
    assert link.tick(0.0) == [1]
    cam.fail, cam.frames = RuntimeError("Frame didn't arrive within 5000"), [99]
    assert link.tick(0.1) == [] and cam.closed
    assert _lines(caplog) == ["camera 0123 lost: Frame didn't arrive within 5000; retrying every 0.5 s"]
    plug.present = True
    link.tick(0.7)
    plug.next.frames = [2]
    assert link.tick(0.8) == [2]  # 99, left in the old source, is gone with it


def test_device_removed_from_another_thread_is_acted_on_at_the_next_tick(caplog):
    cam, plug = Camera(), Plug()
    link = Reconnector(cam, plug, frame_timeout=5.0, period=1.0, now=0.0, log=LOG)
    cam.frames = [1]
    link.device_removed()
    assert link.tick(0.1) == [1] and not link.lost  # frames already there are still delivered
    assert link.tick(0.2) == [] and link.lost
    assert _lines(caplog) == ["camera 0123 lost: device removed; retrying every 1 s"]


def test_a_reopened_camera_that_stays_silent_is_retried_without_a_second_lost_line(caplog):
    cam, plug = Camera(), Plug()
    link = Reconnector(cam, plug, frame_timeout=2.0, period=1.0, now=0.0, log=LOG)
    link.tick(2.1)  # lost
    plug.present = True
    link.tick(3.2)  # reopened, silent
    first = plug.next
    plug.next = Camera(frames=[5])
    assert link.tick(5.0) == [] and link.source is first
    assert link.tick(5.3) == [] and first.closed  # silent for 2.1 s since the reopen: closed ...
    assert link.source is plug.next  # ... and reopened in the same tick: the last attempt is a period ago
    assert link.tick(5.5) == [5]
    assert _lines(caplog, logging.WARNING) == ["camera 0123 lost: no frames for 2 s; retrying every 1 s"]
    assert _lines(caplog)[-1] == "camera 0123 back"


def test_without_reopen_a_loss_is_only_logged_and_the_source_kept(caplog):
    """A recording: silence is reported once per silence; the source stays open; frames resume it."""
    cam = Camera(serial="")
    link = Reconnector(cam, None, frame_timeout=5.0, period=1.0, now=0.0, log=LOG)
    for t in (5.1, 8.0, 10.2, 20.0):
        assert link.tick(t) == []
    assert not cam.closed and link.source is cam
    assert _lines(caplog) == ["camera D435 lost: no frames for 5 s; not reopened"]
    cam.frames = [7]
    assert link.tick(21.0) == [7] and _lines(caplog)[-1] == "camera D435 back"


def test_other_exceptions_propagate_and_bad_settings_are_refused():
    """Only the listed errors mean 'camera failed'; a bug in the caller is not swallowed into a retry loop."""
    cam = Camera()
    cam.fail = KeyError("bug")
    link = Reconnector(cam, Plug(), frame_timeout=1.0, period=1.0, now=0.0, log=LOG)
    with pytest.raises(KeyError):
        link.tick(0.1)
    with pytest.raises(ValueError, match="must be > 0"):
        Reconnector(Camera(), None, frame_timeout=0.0, period=1.0, now=0.0, log=LOG)
