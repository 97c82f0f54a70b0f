"""Who may load the page and open the WebSocket (teleop_vr.web_security), and the LAN certificate."""

from __future__ import annotations

import base64
import hashlib
import os
import stat

import pytest

from teleop_vr import tls
from teleop_vr.web_security import (
    TOKEN_META,
    RateLimit,
    allowed_hosts,
    content_security_policy,
    host_ok,
    inject_token,
    is_loopback,
    origin_ok,
    security_headers,
)

ALLOWED = allowed_hosts("127.0.0.1")
LAN = allowed_hosts("0.0.0.0", ["192.168.1.20", "myhost"])


@pytest.mark.parametrize("host,ok", [("localhost:8080", True), ("127.0.0.1:8080", True), ("[::1]:8080", True),
                                     ("LOCALHOST", True), ("evil.example:8080", False), ("", False), (None, False),
                                     ("192.168.1.20:8443", False), ("127.0.0.1.evil.example", False)])
def test_host_allow_list_refuses_rebound_names(host, ok):
    assert host_ok(host, ALLOWED) is ok


def test_lan_mode_allows_its_own_addresses_only():
    assert host_ok("192.168.1.20:8443", LAN) and host_ok("myhost:8443", LAN)
    assert not host_ok("192.168.1.21:8443", LAN) and "0.0.0.0" not in LAN


@pytest.mark.parametrize("origin,ok", [
    (None, True),  # not a browser: the token decides
    ("http://localhost:8080", True), ("http://127.0.0.1:8080", True), ("http://[::1]:8080", True),
    ("http://localhost:8081", False), ("https://localhost:8080", False), ("http://evil.example:8080", False),
    ("null", False), ("http://localhost", False), ("garbage", False),
])
def test_origin_must_be_the_pages_own(origin, ok):
    assert origin_ok(origin, ALLOWED, "http", 8080) is ok


def test_loopback_peers():
    assert is_loopback("127.0.0.1") and is_loopback("127.3.2.1") and is_loopback("::1")
    assert is_loopback("::ffff:127.0.0.1")
    assert not is_loopback("192.168.1.5") and not is_loopback("172.17.0.1") and not is_loopback("")


def test_the_token_goes_into_the_page_escaped():
    page = "<!doctype html>\n<html><head>\n<title>x</title></head></html>"
    out = inject_token(page, 'a"b<c')
    assert f'<meta name="{TOKEN_META}" content="a&quot;b&lt;c">' in out
    assert out.index(TOKEN_META) < out.index("<title>")


def test_csp_allows_the_pages_inline_import_map_by_hash_only():
    script = '\n    {"imports": {"three": "/vendor/three.js"}}\n  '
    page = f'<head><script type="importmap">{script}</script><script type="module" src="/app.js"></script></head>'
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    csp = content_security_policy(page)
    assert f"script-src 'self' 'sha256-{digest}';" in csp
    assert "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
    headers = security_headers(csp)
    assert headers["X-Frame-Options"] == "DENY" and headers["Referrer-Policy"] == "no-referrer"
    assert headers["Content-Security-Policy"] == csp and "Content-Security-Policy" not in security_headers()


def test_rate_limit_allows_the_rate_and_a_burst_then_drops():
    limit = RateLimit(rate=100.0, burst=10.0)
    assert sum(limit.allow(0.0) for _ in range(50)) == 10  # a burst of 50 at once: 10 pass
    assert sum(limit.allow(1.0 + k / 100) for k in range(100)) >= 99  # 100/s for a second: all pass
    assert limit.dropped >= 40


def test_the_lan_certificate_is_a_leaf_and_its_key_is_private_from_the_start(tmp_path):
    from cryptography import x509

    old_umask = os.umask(0)  # even with a permissive umask the key is never readable by others
    try:
        cert = tls.ensure_certificate(["192.168.7.9"], tmp_path)
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(cert.key.stat().st_mode) == 0o600
    c = x509.load_pem_x509_certificate(cert.cert.read_bytes())
    assert c.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    usage = c.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and not usage.key_cert_sign
    san = c.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in san.get_values_for_type(x509.DNSName)
    assert not list(tmp_path.glob(".*.tmp"))
