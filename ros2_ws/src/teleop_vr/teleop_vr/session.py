"""Who may drive the arm: pairing token, one controlling client at a time, release on silence.

The first client that sends controller input takes control; every other client is a viewer
until the controller releases, disconnects, or stays silent for ``release_timeout`` (then the
arm holds where it is). A second client cannot take over a session that is held.

Dependency rule: standard library only; never the ROS runtime. Not thread-safe: the owner locks.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass, field

from teleop_vr.errors import ConfigError


@dataclass(frozen=True)
class SessionConfig:
    release_timeout: float = 0.25  # s of controller silence after which the arm is released (and holds)
    token: str | None = None  # required in the WebSocket URL (?token=...) when set; serving the LAN sets it
    max_clients: int = 8  # viewers included; more are refused (a headset and a few desktop watchers)

    def __post_init__(self) -> None:
        if not 0.01 <= self.release_timeout <= 10.0:
            raise ConfigError(f"release_timeout={self.release_timeout} s; use 0.01..10 s (default 0.25)")
        if self.token is not None and len(self.token) < 8:
            raise ConfigError("a pairing token needs at least 8 characters; leave it empty to generate one")
        if self.max_clients < 1:
            raise ConfigError(f"max_clients={self.max_clients}; at least 1")


@dataclass
class ClientInfo:
    id: int
    address: str
    connected_at: float
    name: str = "unknown"
    inputs: int = 0
    refused_inputs: int = 0


def new_token() -> str:
    """A random URL-safe pairing token (about 96 bits)."""
    return secrets.token_urlsafe(12)


@dataclass
class Session:
    config: SessionConfig = field(default_factory=SessionConfig)
    clients: dict[int, ClientInfo] = field(default_factory=dict)
    controller: int | None = None
    last_input: float = 0.0
    _next_id: int = 1

    def token_ok(self, presented: str | None) -> bool:
        """True when no token is required or ``presented`` matches (constant time)."""
        if self.config.token is None:
            return True
        return presented is not None and hmac.compare_digest(presented.encode(), self.config.token.encode())

    def connect(self, address: str, now: float) -> ClientInfo | None:
        """Register a client; None when ``max_clients`` are already connected."""
        if len(self.clients) >= self.config.max_clients:
            return None
        info = ClientInfo(self._next_id, address, now)
        self._next_id += 1
        self.clients[info.id] = info
        return info

    def disconnect(self, client_id: int) -> bool:
        """Forget a client; True when it was the controller (the arm is released)."""
        self.clients.pop(client_id, None)
        if self.controller == client_id:
            self.controller = None
            return True
        return False

    def claim(self, client_id: int, now: float) -> bool:
        """An input from ``client_id``: True when it is (or now becomes) the controller."""
        info = self.clients.get(client_id)
        if info is None:
            return False
        if self.controller is None:
            self.controller = client_id
        if self.controller != client_id:
            info.refused_inputs += 1
            return False
        info.inputs += 1
        self.last_input = now
        return True

    def release(self, client_id: int) -> bool:
        """The controller gives control back; False for anyone else."""
        if self.controller == client_id:
            self.controller = None
            return True
        return False

    def expire(self, now: float) -> int | None:
        """Release a controller silent for longer than ``release_timeout``; returns its id."""
        if self.controller is not None and now - self.last_input > self.config.release_timeout:
            gone, self.controller = self.controller, None
            return gone
        return None
