"""Who may load the page and open its WebSocket: host and origin allow-lists, the token in the page,
security headers, and a per-client input rate limit.

The arm moves only for the operator's own page (DESIGN.md §6, issue 15):

- **Host allow-list** on every request: the names the server is reached by (``localhost``,
  ``127.0.0.1``, ``[::1]``, the bound address and, serving the LAN, this machine's addresses). A
  page of a foreign site whose name was re-pointed at 127.0.0.1 (DNS rebinding) asks with its own
  name and is refused, so it can neither read the page (and its token) nor open the WebSocket.
- **Origin allow-list** on the WebSocket: a browser always sends ``Origin``; only the page's own
  origins are accepted (a foreign page in the same browser is refused: cross-site WebSocket
  hijacking). Clients that are not browsers send none and still need the token.
- **Pairing token** on every WebSocket, in every mode. A page served to a loopback peer carries
  it (a ``<meta>`` the page reads), so a local user opens one URL and nothing else changes; a LAN
  peer must bring it in the URL (``?token=``, the QR code).
- **Headers**: a Content-Security-Policy (scripts from the server only, inline ones by hash;
  ``frame-ancestors 'none'``), ``X-Frame-Options: DENY``, ``nosniff``, ``Referrer-Policy:
  no-referrer`` (the token never leaks in a Referer) and ``no-store`` on the page.

Dependency rule: standard library only.
"""

from __future__ import annotations

import base64
import hashlib
import html
import ipaddress
import re
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass

TOKEN_META = "so100-pairing-token"
_INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>(.*?)</script>", re.S | re.I)


def allowed_hosts(bind_host: str, extra: Iterable[str] = ()) -> frozenset[str]:
    """Host names (lower case, IPv6 without brackets) the server may be reached by."""
    names = {"localhost", "127.0.0.1", "::1"}
    if bind_host and bind_host not in ("0.0.0.0", "::"):
        names.add(bind_host)
    names.update(extra)
    return frozenset(n.lower().strip("[]") for n in names if n)


def split_host(host_header: str | None) -> tuple[str, int | None] | None:
    """``Host`` or an origin's authority -> (name, port); None when malformed."""
    if not host_header:
        return None
    try:
        parsed = urllib.parse.urlsplit("//" + host_header.strip())
        return (parsed.hostname or "").lower(), parsed.port
    except ValueError:
        return None


def host_ok(host_header: str | None, allowed: frozenset[str]) -> bool:
    """The request's ``Host`` names this server (any port: a proxy may map it)."""
    parts = split_host(host_header)
    return parts is not None and parts[0] in allowed


def origin_ok(origin: str | None, allowed: frozenset[str], scheme: str, port: int) -> bool:
    """The WebSocket's ``Origin`` is one of the page's own (``scheme://allowed-host:port``); absent is a
    non-browser client (the token decides)."""
    if origin is None:
        return True
    try:
        parsed = urllib.parse.urlsplit(origin)
        origin_port = parsed.port or {"http": 80, "https": 443}.get(parsed.scheme)
    except ValueError:
        return False
    return parsed.scheme == scheme and (parsed.hostname or "").lower() in allowed and origin_port == port


def is_loopback(host: str) -> bool:
    """``host`` (a peer's IP address) is this machine."""
    try:
        ip = ipaddress.ip_address(host.strip("[]").split("%")[0])
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)
    return ip.is_loopback or (mapped is not None and mapped.is_loopback)


def inject_token(page: str, token: str) -> str:
    """The page with the pairing token in a ``<meta>`` (read by app.js) right after ``<head>``."""
    meta = f'<meta name="{TOKEN_META}" content="{html.escape(token, quote=True)}">'
    return re.sub(r"(<head[^>]*>)", lambda m: m.group(1) + "\n  " + meta, page, count=1, flags=re.I)


def content_security_policy(page: str) -> str:
    """Scripts from this server, and the page's inline ones (its import map) by their SHA-256 only."""
    hashes = " ".join(
        f"'sha256-{base64.b64encode(hashlib.sha256(s.encode()).digest()).decode()}'"
        for s in _INLINE_SCRIPT.findall(page)
    )
    return ("default-src 'self'; " f"script-src 'self'{(' ' + hashes) if hashes else ''}; "
            "connect-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; "
            "object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")


def security_headers(csp: str | None = None) -> dict[str, str]:
    """Headers for every response (``csp`` for HTML pages)."""
    out = {"X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
           "Cross-Origin-Resource-Policy": "same-origin"}
    if csp:
        out["Content-Security-Policy"] = csp
    return out


@dataclass
class RateLimit:
    """A token bucket: ``rate`` events per second on average, bursts of ``burst``."""

    rate: float
    burst: float
    _tokens: float = -1.0
    _last: float = 0.0
    dropped: int = 0

    def allow(self, now: float) -> bool:
        if self._tokens < 0:
            self._tokens, self._last = self.burst, now
        self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
        self._last = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        self.dropped += 1
        return False
