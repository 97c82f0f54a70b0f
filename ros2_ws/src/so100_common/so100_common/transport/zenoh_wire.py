"""rmw_zenoh's wire format (Jazzy, rmw_zenoh_cpp >= 0.2.4), as pure functions.

Key expressions, liveliness tokens, QoS strings, GIDs and attachments, checked
against the examples of rmw_zenoh's ``docs/design.md`` in the tests. No zenoh import
here: these functions are the protocol, the backend only moves their bytes.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import xxhash

from so100_common.errors import TransportError
from so100_common.messages import dds_type_name, ros_type_name, type_hash
from so100_common.qos import Durability, History, QoS, Reliability

ADMIN_SPACE = "@ros2_lv"
ATTACHMENT_SIZE = 33
# rmw_zenoh's QoS defaults: a field equal to these is written empty
_RMW_DEFAULT_DEPTH = 42


def mangle(name: str) -> str:
    """``/`` -> ``%``; an empty name becomes ``%`` (rmw_zenoh's ``mangle_name``)."""
    return name.replace("/", "%") if name else "%"


def demangle(text: str) -> str:
    return text.replace("%", "/")


def strip_slashes(name: str) -> str:
    """Remove one leading and one trailing ``/``, as rmw_zenoh's key builder does."""
    if name.startswith("/"):
        name = name[1:]
    if name.endswith("/"):
        name = name[:-1]
    return name


def topic_key(domain_id: int, fq_name: str, typename: str) -> str:
    """Data key of a topic or service: ``<domain>/<name>/<dds type>/<RIHS01 hash>``."""
    return f"{domain_id}/{strip_slashes(fq_name)}/{dds_type_name(typename)}/{type_hash(typename)}"


def qos_to_keyexpr(qos: QoS) -> str:
    """rmw_zenoh's QoS field of a liveliness token (fields equal to its defaults are empty)."""
    rel = "" if qos.reliability == Reliability.RELIABLE else str(int(qos.reliability))
    dur = "" if qos.durability == Durability.VOLATILE else str(int(qos.durability))
    hist = "" if qos.history == History.KEEP_LAST else str(int(qos.history))
    depth = "" if qos.depth == _RMW_DEFAULT_DEPTH else str(qos.depth)
    return f"{rel}:{dur}:{hist},{depth}:,:,:,,"


def qos_from_keyexpr(text: str) -> QoS:
    """Inverse of :func:`qos_to_keyexpr` (deadline, lifespan and liveliness ignored)."""
    parts = text.split(":")
    if len(parts) < 6:
        raise TransportError(f"malformed QoS field {text!r}")
    hist, _, depth = parts[2].partition(",")
    return QoS(
        depth=int(depth) if depth else _RMW_DEFAULT_DEPTH,
        reliability=Reliability(int(parts[0])) if parts[0] else Reliability.RELIABLE,
        durability=Durability(int(parts[1])) if parts[1] else Durability.VOLATILE,
        history=History(int(hist)) if hist else History.KEEP_LAST,
    )


KINDS = {"NN": "node", "MP": "publisher", "MS": "subscription", "SS": "service", "SC": "client"}


@dataclass(frozen=True)
class Token:
    """One liveliness token of the ROS graph, parsed or to be declared."""

    domain_id: int
    zid: str
    node_id: int
    entity_id: int
    kind: str  # NN, MP, MS, SS, SC
    enclave: str
    namespace: str
    node_name: str
    topic: str = ""  # fully qualified
    typename: str = ""  # ROS form, e.g. std_msgs/msg/String
    type_hash: str = ""
    qos: str = ""

    def keyexpr(self) -> str:
        head = (
            f"{ADMIN_SPACE}/{self.domain_id}/{self.zid}/{self.node_id}/{self.entity_id}/{self.kind}/"
            f"{mangle(self.enclave)}/{mangle(self.namespace)}/{mangle(self.node_name)}"
        )
        if self.kind == "NN":
            return head
        return (
            f"{head}/{mangle(self.topic)}/{mangle(dds_type_name(self.typename))}/"
            f"{mangle(self.type_hash)}/{self.qos}"
        )

    @property
    def node_fqn(self) -> str:
        return f"{self.namespace.rstrip('/')}/{self.node_name}"

    @property
    def gid(self) -> bytes:
        return gid_of(self.keyexpr())

    @classmethod
    def parse(cls, keyexpr: str) -> Token:
        parts = keyexpr.split("/")
        if len(parts) < 9 or parts[0] != ADMIN_SPACE or parts[5] not in KINDS:
            raise TransportError(f"not an rmw_zenoh liveliness token: {keyexpr!r}")
        kind = parts[5]
        if kind != "NN" and len(parts) != 13:
            raise TransportError(f"liveliness token of kind {kind} needs 13 fields: {keyexpr!r}")
        common = dict(
            domain_id=int(parts[1]),
            zid=parts[2],
            node_id=int(parts[3]),
            entity_id=int(parts[4]),
            kind=kind,
            enclave=demangle(parts[6]),
            namespace=demangle(parts[7]),
            node_name=demangle(parts[8]),
        )
        if kind == "NN":
            return cls(**common)
        return cls(
            **common,
            topic=demangle(parts[9]),
            typename=ros_type_name(demangle(parts[10])),
            type_hash=demangle(parts[11]),
            qos=parts[12],
        )


def liveliness_prefix(domain_id: int) -> str:
    return f"{ADMIN_SPACE}/{domain_id}/**"


def gid_of(token_keyexpr: str) -> bytes:
    """Entity GID: XXH3-128 (seed 0) of its token, low 64 bits then high, little-endian."""
    return xxhash.xxh3_128_intdigest(token_keyexpr.encode()).to_bytes(16, "little")


_ATT = struct.Struct("<qqB")


def encode_attachment(sequence: int, timestamp_ns: int, gid: bytes) -> bytes:
    """The 33-byte attachment of every sample, request and reply."""
    if len(gid) != 16:
        raise TransportError(f"GID must be 16 bytes, got {len(gid)}")
    return _ATT.pack(sequence, timestamp_ns, 16) + gid


def decode_attachment(raw: bytes) -> tuple[int, int, bytes]:
    """(sequence, source timestamp ns, GID) of an attachment; raises on a bad layout."""
    if len(raw) != ATTACHMENT_SIZE or raw[16] != 16:
        raise TransportError(f"attachment of {len(raw)} bytes is not rmw_zenoh's 33-byte layout")
    seq, ts, _ = _ATT.unpack_from(raw)
    return seq, ts, bytes(raw[17:33])
