"""The page's HTTP(S) and WebSocket server, on its own asyncio thread.

One port serves the page (``/``), its npm dependencies (``/vendor/...``, an allow-list out of
``web/node_modules``), the protocol's schema (``/schema.json``) and the WebSocket (``/ws``).
Everything that decides who may drive the arm is in :mod:`teleop_vr.session` and
:mod:`teleop_vr.web_security`; this module enforces it: the Host allow-list on every request, the
Origin allow-list and the pairing token at the WebSocket handshake (403 otherwise), the token in
the page for a loopback peer, security headers, ``max_clients``, one controller, and a per-client
input rate limit. Client frames are validated by :mod:`teleop_vr.protocol`; a bad one is dropped with
an ``error`` reply, a frame over :data:`~teleop_vr.protocol.MAX_FRAME_BYTES` closes that client
only. Outgoing frames skip a client whose unsent data exceeds ``write_buffer_limit`` (counted as
drops) so a slow client never delays the others.

The node talks to it from its own thread: :meth:`WebXrServer.publish` (thread-safe broadcast),
:meth:`WebXrServer.expire` (release a silent controller), and the ``on_input``/``on_release``
callbacks, which run on the server's thread.

Dependency rule: websockets, the standard library and this package's pure modules; never the ROS runtime.
"""

from __future__ import annotations

import asyncio
import json
import logging
import mimetypes
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, broadcast, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from teleop_vr import protocol
from teleop_vr.errors import ConfigError, ProtocolError, WebAssetsError
from teleop_vr.session import Session, SessionConfig
from teleop_vr.web_security import (
    RateLimit,
    allowed_hosts,
    content_security_policy,
    host_ok,
    inject_token,
    is_loopback,
    origin_ok,
    security_headers,
)

log = logging.getLogger(__name__)

WS_PATH = "/ws"
#: the only files served out of node_modules (what the page imports)
VENDOR_FILES = (
    "three/build/three.module.js",
    "three/build/three.core.js",
    "three/examples/jsm/controls/OrbitControls.js",
    "iwer/build/iwer.min.js",
)
PAGE_FILES = ("index.html", "app.js", "style.css")


def find_web_dir(explicit: str = "") -> Path:
    """The page's folder: ``explicit``, the source tree (editable install), or the colcon share folder."""
    candidates = [Path(explicit)] if explicit else []
    here = Path(__file__).resolve()
    candidates.append(here.parents[1] / "web")  # the source tree (pip install -e)
    candidates.append(here.parents[4] / "share" / "teleop_vr" / "web")  # colcon: lib/python3.x/site-packages/
    try:
        from ament_index_python.packages import get_package_share_directory

        candidates.append(Path(get_package_share_directory("teleop_vr")) / "web")
    except Exception:  # no ament index outside a sourced ROS 2
        pass
    for c in candidates:
        if (c / "index.html").is_file():
            missing = [f for f in VENDOR_FILES if not (c / "node_modules" / f).is_file()]
            if missing:
                raise WebAssetsError(f"{c}/node_modules lacks {missing[0]}: run `npm ci` in {c} (./setup.sh does it)")
            return c
    raise WebAssetsError(
        f"no teleop_vr web folder with index.html in {[str(c) for c in candidates]}; "
        "pass -p web_dir:=/path/to/teleop_vr/web"
    )


#: frames of any kind a client may send per second, as a multiple of max_input_rate (bursts: max_input_rate);
#: max_input_rate frames dropped beyond it close the connection (1008)
FRAME_RATE_FACTOR = 4.0


@dataclass(frozen=True)
class ServerConfig:
    web_dir: Path
    host: str = "127.0.0.1"  # loopback unless serving the LAN
    port: int = 8080  # 0 = any free port
    ssl_context: Any = None  # ssl.SSLContext for HTTPS/WSS
    session: SessionConfig = field(default_factory=SessionConfig)
    write_buffer_limit: int = 512 * 1024  # bytes queued for one client beyond which its frames are dropped
    #: names the server is reached by besides localhost/127.0.0.1/::1/host (serving the LAN: its addresses)
    extra_hosts: tuple[str, ...] = ()
    #: controller inputs a client may send per second on average (a headset sends one per frame: 72-120)
    max_input_rate: float = 240.0


@dataclass
class Stats:
    received: Counter = field(default_factory=Counter)  # client messages by type
    sent: Counter = field(default_factory=Counter)  # server messages by type (per client)
    dropped_bad: int = 0  # invalid client messages
    dropped_slow: Counter = field(default_factory=Counter)  # frames not sent to a slow client, by type
    refused_inputs: int = 0  # inputs from a client that is not the controller
    rate_limited: int = 0  # inputs over a client's max_input_rate, and frames over its frame rate, dropped
    rejected_connections: int = 0
    rejected_requests: Counter = field(default_factory=Counter)  # refused by reason: host, origin, token


InputCallback = Callable[[int, protocol.Input, float], None]
ReleaseCallback = Callable[[int, str], None]


class WebXrServer:
    """Serves the page and the WebSocket; see the module docstring."""

    def __init__(self, config: ServerConfig, on_input: InputCallback, on_release: ReleaseCallback) -> None:
        self.config = config
        self.on_input = on_input
        self.on_release = on_release
        self.session = Session(config.session)
        self.stats = Stats()
        self._lock = threading.Lock()  # guards session and stats across the two threads
        self._conns: dict[int, ServerConnection] = {}
        self._kept: dict[str, str] = {}  # latest frame per kind replayed to new clients (scene, poses)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: Server | None = None
        self._thread: threading.Thread | None = None
        self._last_refusal_log: dict[int, float] = {}
        self._rates: dict[int, RateLimit] = {}
        self._refusal_logged: dict[str, float] = {}
        self.port = config.port
        self.allowed = allowed_hosts(config.host, config.extra_hosts)
        self.scheme = "https" if config.ssl_context is not None else "http"

    # ------------------------------------------------------------ lifecycle
    def start(self, timeout: float = 10.0) -> None:
        ready = threading.Event()
        error: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                self._server = loop.run_until_complete(self._serve())
                self.port = self._server.sockets[0].getsockname()[1]
            except BaseException as e:  # reported to start()
                error.append(e)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

        self._thread = threading.Thread(target=run, name="webxr_server", daemon=True)
        self._thread.start()
        if not ready.wait(timeout):
            raise ConfigError(f"the web server did not start within {timeout} s")
        if error:
            raise ConfigError(f"cannot serve on {self.config.host}:{self.config.port}: {error[0]}") from error[0]

    async def _serve(self) -> Server:
        return await serve(
            self._handle,
            self.config.host,
            self.config.port,
            ssl=self.config.ssl_context,
            process_request=self._process_request,
            max_size=protocol.MAX_FRAME_BYTES,
            max_queue=64,
            ping_interval=5,
            ping_timeout=10,
            compression=None,
        )

    def stop(self) -> None:
        loop, server = self._loop, self._server
        if loop is None or server is None or not loop.is_running():
            return

        async def close() -> None:
            server.close()
            try:
                await asyncio.wait_for(server.wait_closed(), 3)
            except TimeoutError:
                pass

        try:
            asyncio.run_coroutine_threadsafe(close(), loop).result(5)
        except Exception as e:
            log.debug("closing the server: %s", e)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(5)

    # ------------------------------------------------------------ from the node's thread
    def publish(self, kind: str, message: dict[str, Any] | str, *, keep: bool = False) -> None:
        """Send to every client (thread-safe); ``keep``: also to clients that connect later."""
        text = message if isinstance(message, str) else protocol.encode(message)
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._broadcast, kind, text, keep)

    def expire(self, now: float) -> None:
        """Release a controller silent for longer than the release timeout (the arm holds)."""
        with self._lock:
            silent = now - self.session.last_input
            gone = self.session.expire(now)
        if gone is not None:
            log.warning(
                "client %d stopped sending (silent %.0f ms > %.0f ms): released the arm (it holds position)",
                gone,
                1000 * silent,
                1000 * self.config.session.release_timeout,
            )
            self.on_release(gone, "timeout")

    def status(self) -> dict[str, Any]:
        with self._lock:
            return {"controller": self.session.controller, "clients": len(self.session.clients)}

    def take_stats(self) -> Stats:
        """The counters since the last call (the node logs them)."""
        with self._lock:
            stats, self.stats = self.stats, Stats()
        return stats

    # ------------------------------------------------------------ on the server's thread
    def _broadcast(self, kind: str, text: str, keep: bool) -> None:
        if keep:
            self._kept[kind] = text
        for conn in list(self._conns.values()):
            self._send(conn, kind, text)

    def _send(self, conn: ServerConnection, kind: str, text: str) -> None:
        transport = conn.transport
        if transport is None or transport.is_closing():
            return
        if transport.get_write_buffer_size() > self.config.write_buffer_limit:
            self.stats.dropped_slow[kind] += 1
            return
        broadcast([conn], text)
        self.stats.sent[kind] += 1

    def _refuse(self, conn: ServerConnection, why: str, status: int, text: str) -> Response:
        with self._lock:
            self.stats.rejected_requests[why] += 1
            if why in ("origin", "token"):
                self.stats.rejected_connections += 1
        now = time.monotonic()
        if now - self._refusal_logged.get(why, 0.0) > 1.0:  # a flood logs once a second per reason
            self._refusal_logged[why] = now
            log.warning("refused a request from %s: %s", _address(conn), text.strip())
        return _response(conn, status, text.encode(), "text/plain")

    def _process_request(self, conn: ServerConnection, request: Request) -> Response | None:
        url = urllib.parse.urlsplit(request.path)
        hosts = request.headers.get_all("Host")
        host = hosts[0] if len(hosts) == 1 else None  # none or several: refused like a foreign one
        if not host_ok(host, self.allowed):
            return self._refuse(conn, "host", 403, f"unknown host {host!r}: open the address the server printed\n")
        if url.path == WS_PATH:
            origins = request.headers.get_all("Origin")
            origin = origins[0] if len(origins) == 1 else (None if not origins else "several")
            if not origin_ok(origin, self.allowed, self.scheme, self.port):
                return self._refuse(conn, "origin", 403, f"WebSocket from a foreign page ({origin}) refused\n")
            token = urllib.parse.parse_qs(url.query).get("token", [None])[0]
            if not self.session.token_ok(token):
                return self._refuse(conn, "token", 403, f"{'no' if token is None else 'a wrong'} pairing token: "
                                                        "a valid one is required (?token=...)\n")
            return None  # go on with the WebSocket handshake
        return self._file(conn, url.path)

    def _file(self, conn: ServerConnection, path: str) -> Response:
        web = self.config.web_dir
        if path in ("/", ""):
            path = "/index.html"
        if path == "/favicon.ico":
            return _response(conn, 204, b"", "image/x-icon")
        if path == "/schema.json":
            return _response(conn, 200, json.dumps(protocol.CLIENT_SCHEMA, indent=1).encode(), "application/json")
        rel = path.lstrip("/")
        if rel in PAGE_FILES:
            file = web / rel
        elif rel.startswith("vendor/") and rel.removeprefix("vendor/") in VENDOR_FILES:
            file = web / "node_modules" / rel.removeprefix("vendor/")
        else:
            return _response(conn, 404, b"not found\n", "text/plain")
        try:
            body = file.read_bytes()
        except OSError:
            return _response(conn, 404, b"not found\n", "text/plain")
        if rel == "index.html":
            page = body.decode()
            token = self.config.session.token
            peer = conn.remote_address[0] if conn.remote_address else ""
            if token and is_loopback(str(peer)):  # a LAN peer brings the token in the URL (the QR code)
                page = inject_token(page, token)
            return _response(conn, 200, page.encode(), "text/html; charset=utf-8",
                             csp=content_security_policy(page), store=False)
        ctype = "text/javascript" if file.suffix == ".js" else mimetypes.guess_type(file.name)[0] or "text/plain"
        return _response(conn, 200, body, ctype)

    async def _handle(self, conn: ServerConnection) -> None:
        addr = _address(conn)
        now = time.monotonic()
        with self._lock:
            info = self.session.connect(addr, now)
            if info is None:
                self.stats.rejected_connections += 1
        if info is None:
            log.warning(
                "refused a WebSocket from %s: %d clients already connected", addr, self.config.session.max_clients
            )
            await conn.close(1013, "too many clients")
            return
        cid = info.id
        self._conns[cid] = conn
        log.info("client %d connected from %s", cid, addr)
        self._send(
            conn,
            "welcome",
            protocol.encode(
                {
                    "type": "welcome",
                    "id": cid,
                    "server_ms": time.time() * 1000,
                    "release_timeout_ms": 1000 * self.config.session.release_timeout,
                }
            ),
        )
        for kind, text in list(self._kept.items()):
            self._send(conn, kind, text)
        reason = "closed"
        # every frame, before it is parsed: a client far over any page's rate is flooding, and is disconnected
        frame_rate = FRAME_RATE_FACTOR * self.config.max_input_rate
        frames = RateLimit(frame_rate, self.config.max_input_rate)
        try:
            async for frame in conn:
                if frames.allow(time.monotonic()):
                    self._on_frame(cid, conn, frame)
                    continue
                with self._lock:
                    self.stats.rate_limited += 1
                if frames.dropped > self.config.max_input_rate:  # a page never goes over: this one floods
                    reason = f"disconnected: more than {frame_rate:.0f} messages/s"
                    log.warning("client %d (%s) sends more than %.0f messages/s: disconnecting it", cid, addr,
                                frame_rate)
                    await conn.close(1008, "message rate over the limit")
                    break
        except ConnectionClosed as e:
            reason = f"connection lost ({e.rcvd.reason or e.rcvd.code if e.rcvd else 'no close frame'})"
        finally:
            self._conns.pop(cid, None)
            self._rates.pop(cid, None)
            with self._lock:
                was_controller = self.session.disconnect(cid)
            log.info("client %d (%s) disconnected: %s", cid, addr, reason)
            if was_controller:
                log.warning("the controlling client %d left: released the arm (it holds position)", cid)
                self.on_release(cid, "disconnected")

    def _on_frame(self, cid: int, conn: ServerConnection, frame: str | bytes) -> None:
        now = time.monotonic()
        try:
            msg = protocol.parse_client_message(frame)
        except ProtocolError as e:
            with self._lock:
                self.stats.dropped_bad += 1
                bad = self.stats.dropped_bad
            if bad <= 3 or bad % 100 == 0:
                log.warning("client %d: dropped a bad message (%d this period): %s", cid, bad, e)
            self._send(conn, "error", protocol.encode({"type": "error", "error": str(e)[:200]}))
            return
        with self._lock:
            self.stats.received[type(msg).__name__.lower()] += 1
        if isinstance(msg, protocol.Input):
            if msg.controller is None:
                return  # a viewer's head pose: nothing to drive
            limit = self._rates.setdefault(cid, RateLimit(self.config.max_input_rate, self.config.max_input_rate / 4))
            if not limit.allow(now):
                with self._lock:
                    self.stats.rate_limited += 1
                return
            with self._lock:
                granted = self.session.claim(cid, now)
                was_new = granted and self.session.clients[cid].inputs == 1
                holder = self.session.controller
                if not granted:
                    self.stats.refused_inputs += 1
            if granted:
                if was_new:
                    log.info("client %d takes control of the arm", cid)
                self.on_input(cid, msg, now)
            elif now - self._last_refusal_log.get(cid, 0.0) > 1.0:
                self._last_refusal_log[cid] = now
                log.warning("client %d: refused controller input, client %s holds the arm", cid, holder)
                self._send(
                    conn,
                    "error",
                    protocol.encode(
                        {"type": "error", "error": f"client {holder} is controlling the arm; you are watching"}
                    ),
                )
        elif isinstance(msg, protocol.Ping):
            self._send(conn, "pong", protocol.encode({"type": "pong", "t": msg.t, "server_ms": time.time() * 1000}))
        elif isinstance(msg, protocol.Release):
            with self._lock:
                released = self.session.release(cid)
            if released:
                log.info("client %d released the arm", cid)
                self.on_release(cid, "released")
        elif isinstance(msg, protocol.Hello):
            with self._lock:
                if cid in self.session.clients:
                    self.session.clients[cid].name = msg.client
            log.info("client %d is a %s page", cid, msg.client)


def _address(conn: ServerConnection) -> str:
    try:
        host, port = conn.remote_address[:2]
        return f"{host}:{port}"
    except Exception:
        return "?"


def _response(conn: ServerConnection, status: int, body: bytes, content_type: str, *, csp: str | None = None,
              store: bool = True) -> Response:
    resp = conn.respond(status, "")
    headers = Headers(
        [(k, v) for k, v in resp.headers.raw_items() if k.lower() not in ("content-type", "content-length")]
    )
    headers["Content-Type"] = content_type
    headers["Content-Length"] = str(len(body))
    headers["Cache-Control"] = "no-cache" if store else "no-store"  # the page may carry the pairing token
    for k, v in security_headers(csp).items():
        headers[k] = v
    return Response(resp.status_code, resp.reason_phrase, headers, body)
