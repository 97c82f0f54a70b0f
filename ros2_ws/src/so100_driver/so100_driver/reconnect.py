"""Keeping a camera streaming across unplugs: the reconnect state machine of ``realsense_camera``.

Transport- and SDK-free: :class:`Reconnector` sees a camera only through the :class:`Source`
protocol (``poll()``, ``close()``, ``serial``, ``name``) and a ``reopen`` callable that returns a
freshly opened source or raises. The node calls :meth:`Reconnector.tick` from its timer and
publishes what it returns; an SDK thread may call :meth:`Reconnector.device_removed`.

States: *streaming* (frames flow) -> *lost* (the source failed, went silent for ``frame_timeout``
or was reported removed: it is closed, logged once, and ``reopen`` is tried every ``period``) ->
*streaming* again once a reopened source delivers frames ("back"). A reopened source that stays
silent for ``frame_timeout`` is closed and retried without another "lost" line.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Protocol


class Source[T](Protocol):
    """What the reconnector needs of a camera: non-blocking frames, a close, and names for the log."""

    serial: str
    name: str

    def poll(self) -> T | None: ...  # raises when the camera failed

    def close(self) -> None: ...


class Reconnector[T]:
    """Polls ``source``; when it is lost, closes it and calls ``reopen()`` every ``period`` seconds.

    Args:
        source: the open source to start from.
        reopen: returns a new open source (by serial, or the first camera) or raises; ``None``
            never reopens (a recording): a loss is only logged.
        frame_timeout: seconds without frames after which the camera counts as lost.
        period: seconds between reopen attempts.
        errors: exceptions of ``poll()`` / ``reopen()`` that mean "the camera failed" (others propagate).
    """

    def __init__(self, source: Source[T], reopen: Callable[[], Source[T]] | None, *, frame_timeout: float,
                 period: float, now: float, log: logging.Logger,
                 errors: tuple[type[BaseException], ...] = (RuntimeError,)) -> None:
        if frame_timeout <= 0 or period <= 0:
            raise ValueError(f"frame_timeout and period must be > 0, got {frame_timeout!r} and {period!r}")
        self.source: Source[T] | None = source
        self._reopen = reopen
        self.frame_timeout = frame_timeout
        self.period = period
        self.log = log
        self.errors = errors
        self.label = _label(source)
        self.lost = False
        self.reconnects = 0  # times the camera came back
        self._last = now  # last frames, or the last (re)open
        self._next_try = now
        self._removed = threading.Event()

    def device_removed(self) -> None:
        """The SDK reports the camera unplugged (safe from any thread); acted on at the next tick."""
        self._removed.set()

    def tick(self, now: float) -> list[T]:
        """Everything the source has ready (empty while lost); runs the state machine."""
        frames: list[T] = []
        why = ""
        if self.source is not None:
            try:
                while (f := self.source.poll()) is not None:
                    frames.append(f)
            except self.errors as e:
                why = str(e) or type(e).__name__
        if frames:
            self._last = now
            if self.lost:
                self.lost = False
                self.reconnects += 1
                self.label = _label(self.source)
                self.log.info("camera %s back", self.label)
            return frames
        if self.source is not None and not why:
            if self._removed.is_set():
                why = "device removed"
            elif now - self._last > self.frame_timeout:
                why = f"no frames for {self.frame_timeout:g} s"
        if why:
            self._drop(now, why)
        if self.lost and self.source is None and self._reopen is not None and now >= self._next_try:
            self._next_try = now + self.period
            self._removed.clear()
            try:
                self.source = self._reopen()
            except self.errors as e:
                self.log.debug("camera %s not back yet: %s", self.label, e)
            else:
                self._last = now
                self.log.debug("camera %s reopened; waiting for frames", self.label)
        return frames

    def _drop(self, now: float, why: str) -> None:
        if self._reopen is None:  # nothing to reopen: say it once per silence, keep polling
            if not self.lost:
                self.lost = True
                self.log.warning("camera %s lost: %s; not reopened", self.label, why)
            self._last = now
            return
        if not self.lost:
            self.lost = True
            self._next_try = now + self.period
            self.log.warning("camera %s lost: %s; retrying every %g s", self.label, why, self.period)
        else:
            self.log.debug("camera %s reopened but %s; retrying", self.label, why)
        assert self.source is not None
        try:
            self.source.close()
        except self.errors as e:
            self.log.debug("closing camera %s: %s", self.label, e)
        self.source = None

    def close(self) -> None:
        """Close the current source, if any."""
        if self.source is not None:
            self.source.close()
            self.source = None


def _label(source: Source[object]) -> str:
    return source.serial or source.name or "?"
