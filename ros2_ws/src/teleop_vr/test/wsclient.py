"""A WebSocket client that speaks the page's protocol, for the tests and benchmarks/vr.py."""

from __future__ import annotations

import json
import ssl
import threading
import time
from typing import Any

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect


class PageClient:
    """Connects like the page does; a thread collects every server message by type."""

    def __init__(self, url: str, *, ssl_context: ssl.SSLContext | None = None) -> None:
        self.conn: ClientConnection = connect(url, ssl=ssl_context, open_timeout=10, max_size=None).__enter__()
        self.messages: dict[str, list[dict[str, Any]]] = {}
        self.arrivals: list[tuple[float, dict[str, Any]]] = []  # (time.time(), poses message)
        self.closed: ConnectionClosed | None = None
        self.seq = 0
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()
        self.id = self.wait("welcome")["id"]

    def _read(self) -> None:
        try:
            for frame in self.conn:
                msg = json.loads(frame)
                if msg["type"] == "poses":
                    self.arrivals.append((time.time(), msg))
                self.messages.setdefault(msg["type"], []).append(msg)
        except ConnectionClosed as e:
            self.closed = e

    def latest(self, kind: str) -> dict[str, Any] | None:
        got = self.messages.get(kind)
        return got[-1] if got else None

    def wait(self, kind: str, timeout: float = 10.0, after: int = 0) -> dict[str, Any]:
        """The first message of ``kind`` beyond the ``after`` already received."""
        deadline = time.monotonic() + timeout
        while len(self.messages.get(kind, [])) <= after:
            if time.monotonic() > deadline:
                raise AssertionError(f"no {kind!r} message within {timeout} s (got {sorted(self.messages)})")
            time.sleep(0.01)
        return self.messages[kind][after]

    def count(self, kind: str) -> int:
        return len(self.messages.get(kind, []))

    def send(self, obj: Any) -> None:
        self.conn.send(obj if isinstance(obj, (str, bytes)) else json.dumps(obj))

    def send_input(
        self, position: Any, grip: float = 1.0, trigger: float = 0.0, quat_xyzw: Any = (0.0, 0.0, 0.0, 1.0)
    ) -> None:
        self.seq += 1
        self.send(
            {
                "type": "input",
                "seq": self.seq,
                "t": time.time() * 1000,
                "head": None,
                "controller": {
                    "pose": [*map(float, position), *map(float, quat_xyzw)],
                    "grip": grip,
                    "trigger": trigger,
                },
            }
        )

    def close(self) -> None:
        self.conn.close()
        self._thread.join(2)


def pairing_token(proc: Any, timeout: float = 30.0) -> str:
    """The pairing token webxr_server printed (every mode requires it on the WebSocket)."""
    return proc.wait_output("pairing token:", timeout).split("pairing token: ")[1].split()[0]
