"""A self-signed certificate for serving the page over HTTPS to the Quest's own browser.

WebXR needs a secure context: ``localhost`` is one, a LAN address over plain HTTP is not. The
certificate (EC P-256, one year) names ``localhost``, the machine's name and its LAN addresses;
it is kept in ``~/.cache/so100/teleop_vr`` and regenerated when those names change or it nears
expiry, so the headset's "proceed anyway" is asked for once, not at every start.

Dependency rule: ``cryptography`` and the standard library; never the ROS runtime.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path

from teleop_vr.errors import ConfigError

DEFAULT_DIR = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "so100" / "teleop_vr"


@dataclass(frozen=True)
class Certificate:
    cert: Path
    key: Path
    names: tuple[str, ...]
    fingerprint: str  # SHA-256, colon-separated hex (what browsers show under "certificate details")

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.cert, self.key)
        return ctx


def lan_addresses() -> list[str]:
    """This machine's IPv4 addresses other hosts may reach (the default route's first)."""
    found: list[str] = []
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("192.0.2.1", 9))  # TEST-NET address: picks the outgoing interface, sends nothing
        found.append(probe.getsockname()[0])
    except OSError:
        pass
    finally:
        probe.close()
    try:
        for info in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET):
            found.append(str(info[4][0]))
    except OSError:
        pass
    return [a for i, a in enumerate(found) if a not in found[:i] and not a.startswith("127.")]


def ensure_certificate(names: list[str], directory: Path = DEFAULT_DIR) -> Certificate:
    """Load the cached certificate if it covers ``names`` and is valid for 30 more days, else make one."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    wanted = tuple(dict.fromkeys(["localhost", "127.0.0.1", *names]))
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    now = dt.datetime.now(dt.UTC)
    if cert_path.exists() and key_path.exists():
        try:
            cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
            san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            have = {str(v) for v in san.get_values_for_type(x509.DNSName)}
            have |= {str(v) for v in san.get_values_for_type(x509.IPAddress)}
            leaf = not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
            if leaf and set(wanted) <= have and cert.not_valid_after_utc - now > dt.timedelta(days=30):
                return Certificate(cert_path, key_path, wanted, _fingerprint(cert))
        except (ValueError, x509.ExtensionNotFound):
            pass  # unreadable or foreign: replace it
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"cannot create {directory} for the TLS certificate: {e}; set XDG_CACHE_HOME") from e
    key = ec.generate_private_key(ec.SECP256R1())
    alt: list[x509.GeneralName] = []
    for n in wanted:
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(n)))
        except ValueError:
            alt.append(x509.DNSName(n))
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "so100 teleop_vr (self-signed)")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        # a leaf: it can sign nothing else, so trusting it in a browser trusts only this server's names
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=False, content_commitment=False,
                                     data_encipherment=False, key_agreement=True, key_cert_sign=False,
                                     crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write_private(key_path, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return Certificate(cert_path, key_path, wanted, _fingerprint(cert))


def _write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to a new file created with mode 0600 (never readable by others, not even briefly),
    then move it over ``path``."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _fingerprint(cert: object) -> str:
    from cryptography.hazmat.primitives import hashes

    return cert.fingerprint(hashes.SHA256()).hex(":").upper()  # type: ignore[attr-defined]
