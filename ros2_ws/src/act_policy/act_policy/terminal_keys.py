"""Episode keys from a terminal, as LeRobot's recorder reads them: → next, ← re-record, Esc quit.

:meth:`KeyboardControl.parse` is pure; the reader thread puts the terminal in cbreak mode and
restores it on close. POSIX terminals only (``termios``); elsewhere use the recorder's services.
"""

from __future__ import annotations

import os
import queue
import sys
import threading


class KeyboardControl:
    """Arrow keys and Esc from a terminal, read in raw mode on a thread, queued for the executor."""

    ARROWS = {b"\x1b[C": "next", b"\x1b[D": "rerecord", b"\x1bOC": "next", b"\x1bOD": "rerecord"}

    @classmethod
    def parse(cls, data: bytes) -> list[str]:
        """Commands in what one read returned: arrows (CSI or SS3 form), a lone Esc; other keys ignored."""
        out, i = [], 0
        while i < len(data):
            cmd = cls.ARROWS.get(data[i:i + 3])
            if cmd:
                out.append(cmd)
                i += 3
                continue
            if data[i:i + 1] == b"\x1b" and data[i + 1:i + 2] not in (b"[", b"O"):
                out.append("quit")
            i += 1
        return out

    def __init__(self) -> None:
        import termios

        self.commands: queue.SimpleQueue[str] = queue.SimpleQueue()
        self.fd = sys.stdin.fileno()
        self._saved = termios.tcgetattr(self.fd)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="keyboard", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        import select
        import termios
        import tty

        tty.setcbreak(self.fd, termios.TCSANOW)
        try:
            while not self._stop.is_set():
                ready, _, _ = select.select([self.fd], [], [], 0.2)
                if not ready:
                    continue
                for cmd in self.parse(os.read(self.fd, 64)):
                    self.commands.put(cmd)
        finally:
            termios.tcsetattr(self.fd, termios.TCSADRAIN, self._saved)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=1.0)
