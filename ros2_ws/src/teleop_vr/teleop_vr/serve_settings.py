"""Where and how webxr_server serves: the bind address, port, TLS and token its parameters resolve to, and the
start-up banner (URLs, certificate hint, pairing token, QR code). Pure: no sockets are opened here.

Dependency rule: the standard library, ``segno`` (the QR code) and ``teleop_vr.session``.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from teleop_vr.session import new_token

LOOPBACK = ("127.0.0.1", "localhost", "::1")
ANY = ("0.0.0.0", "::")


@dataclass(frozen=True)
class ServeSettings:
    host: str
    port: int
    use_tls: bool
    token: str
    lan: bool

    @classmethod
    def resolve(cls, *, lan: bool, host: str, port: int, https: str, token: str) -> ServeSettings:
        """The parameters' meaning: loopback HTTP by default, every interface over HTTPS with ``lan``; a token in
        every mode (a random one when none is given), so a page of another site never opens the WebSocket."""
        use_tls = https == "on" or (https == "auto" and lan)
        return cls(host=host or ("0.0.0.0" if lan else "127.0.0.1"), port=port or (8443 if use_tls else 8080),
                   use_tls=use_tls, token=token or new_token(), lan=lan)

    @property
    def binds_every_interface(self) -> bool:
        return self.host in ANY

    def urls(self, port: int, lan_addresses: list[str]) -> list[str]:
        """The URLs to open; a browser on another machine needs the token in the URL (a page served to this
        machine carries it)."""
        scheme = "https" if self.use_tls else "http"
        query = f"/?token={self.token}" if self.token and self.host not in LOOPBACK else "/"
        hosts = lan_addresses if self.binds_every_interface else [self.host]
        return [f"{scheme}://{'localhost' if h == '127.0.0.1' else h}:{port}{query}" for h in hosts or ["localhost"]]

    def banner(self, port: int, lan_addresses: list[str], *, fingerprint: str | None = None, qr: bool = True) -> str:
        """The start-up message: where to point the browser, and what the operator must know."""
        urls = self.urls(port, lan_addresses)
        scheme = "HTTPS" if self.use_tls else "HTTP"
        lines = [f"webxr_server up on {self.host}:{port} ({scheme}); open {urls[0]}"]
        lines += [f"  also: {u}" for u in urls[1:]]
        if fingerprint is not None:
            lines.append("  the certificate is self-signed: in the Quest browser choose Advanced -> Proceed to "
                         f"{urls[0].split('/')[2]} (unsafe); SHA-256 {fingerprint}")
        lines.append(f"  pairing token: {self.token} (the WebSocket is refused without it; a page opened on this "
                     "machine carries it)")
        if not self.lan:
            lines.append("  loopback only (desktop browser or Quest Link); lan:=true serves the Quest's own browser")
        if qr and self.lan:
            lines.append(qr_text(urls[0]))
        return "\n".join(lines)


def qr_text(url: str) -> str:
    """``url`` as a QR code for a terminal (or why there is none)."""
    try:
        import segno

        buf = io.StringIO()
        segno.make(url, error="l").terminal(out=buf, compact=True)
        return buf.getvalue()
    except Exception as e:  # noqa: BLE001 - the URL above is enough
        return f"  (no QR code: {e})"
