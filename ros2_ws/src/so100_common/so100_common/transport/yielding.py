"""A cooperative CPU yield after a thread has handled a large payload (a camera frame).

On a machine with few cores the transport threads that carry small, latency-critical messages
(joint states) are often woken onto the CPU of a thread that is busy with a frame: serializing
it, handing it to zenoh, copying it out of a sample. Linux then leaves the woken thread queued
behind that burst (about 1 ms measured on a 2-core VM, while the other core sat idle) rather than
preempting it. A ``sched_yield`` at the end of each large step lets whatever waits on this CPU run
first; it costs about a microsecond, and only large payloads pay it. Measured in
``benchmarks/transport.py`` (see ``benchmarks/RESULTS.md``) with two 640x480 image streams
alongside: JointState p99 median of 10 runs 1.72 -> 1.32 ms, and the image flood lossless.

``SO100_YIELD_AFTER_LARGE=0`` turns it off (for A/B measurements); platforms without
``os.sched_yield`` (Windows) never yield.
"""

from __future__ import annotations

import os

#: payloads from this size on (bytes) count as large: a 320x240 mono8 frame is 75 KiB
LARGE_PAYLOAD = 64 * 1024


def _enabled() -> bool:
    setting = os.environ.get("SO100_YIELD_AFTER_LARGE", "1").strip().lower()
    return hasattr(os, "sched_yield") and setting not in ("0", "false", "off", "no")


ENABLED = _enabled()


def after_payload(nbytes: int) -> None:
    """Yield the CPU if ``nbytes`` was a large payload (and yielding is enabled)."""
    if ENABLED and nbytes >= LARGE_PAYLOAD:
        os.sched_yield()
