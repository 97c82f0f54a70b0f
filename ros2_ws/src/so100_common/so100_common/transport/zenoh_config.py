"""Zenoh session and router configuration, with rmw_zenoh's defaults and variables.

- ``ZENOH_SESSION_CONFIG_URI`` / ``ZENOH_ROUTER_CONFIG_URI``: a json5 file replacing the defaults.
- ``ZENOH_CONFIG_OVERRIDE``: ``key=json5;key=json5`` pairs applied on top, e.g.
  ``connect/endpoints=["tcp/192.168.1.2:7447"]``.
- ``ROS_DOMAIN_ID``: the first chunk of every key (default 0).
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

from so100_common.errors import TransportError

log = logging.getLogger(__name__)

DEFAULT_ROUTER_ENDPOINT = "tcp/127.0.0.1:7447"

# rmw_zenoh's DEFAULT_RMW_ZENOH_SESSION_CONFIG, the settings that matter here
SESSION_DEFAULTS: dict[str, Any] = {
    "mode": "peer",
    "connect/endpoints": [DEFAULT_ROUTER_ENDPOINT],
    "listen/endpoints": ["tcp/127.0.0.1:0"],
    "scouting/multicast/enabled": False,
    "scouting/gossip/enabled": True,
    "timestamping/enabled": True,
    "queries_default_timeout": 60000,
}
ROUTER_DEFAULTS: dict[str, Any] = {
    "mode": "router",
    "listen/endpoints": [DEFAULT_ROUTER_ENDPOINT],
    "connect/endpoints": [],
    "scouting/multicast/enabled": False,
    "scouting/gossip/enabled": True,
    "timestamping/enabled": True,
}


def domain_id() -> int:
    text = os.environ.get("ROS_DOMAIN_ID", "0") or "0"
    try:
        value = int(text)
    except ValueError:
        raise TransportError(f"ROS_DOMAIN_ID={text!r} is not an integer") from None
    if not 0 <= value <= 232:
        raise TransportError(f"ROS_DOMAIN_ID={value} is outside 0..232")
    return value


def parse_overrides(text: str) -> list[tuple[str, str]]:
    """``ZENOH_CONFIG_OVERRIDE`` pairs; a malformed pair raises with the offending text."""
    pairs = []
    for item in filter(None, (p.strip() for p in text.split(";"))):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise TransportError(
                f"ZENOH_CONFIG_OVERRIDE entry {item!r} must be key=value, e.g. "
                'connect/endpoints=["tcp/127.0.0.1:7447"]'
            )
        pairs.append((key.strip(), value.strip()))
    return pairs


def build_config(*, router: bool = False, extra: dict[str, Any] | None = None) -> Any:
    """A ``zenoh.Config`` for a node session (peer) or for ``so100 router``."""
    import zenoh

    uri_var = "ZENOH_ROUTER_CONFIG_URI" if router else "ZENOH_SESSION_CONFIG_URI"
    uri = os.environ.get(uri_var)
    if uri:
        try:
            config = zenoh.Config.from_file(uri)
        except Exception as e:
            raise TransportError(f"{uri_var}={uri!r}: cannot load the zenoh config: {e}") from e
        if router and json.loads(config.get_json("mode") or "null") is None:
            config.insert_json5("mode", '"router"')  # a router file without mode would open a peer
    else:
        config = zenoh.Config()
        for key, value in (ROUTER_DEFAULTS if router else SESSION_DEFAULTS).items():
            config.insert_json5(key, json.dumps(value))
    for key, value in (extra or {}).items():
        config.insert_json5(key, json.dumps(value))
    for key, value in parse_overrides(os.environ.get("ZENOH_CONFIG_OVERRIDE", "")):
        try:
            config.insert_json5(key, value)
        except Exception as e:
            raise TransportError(f"ZENOH_CONFIG_OVERRIDE {key}={value}: {e}") from e
    return config


def connect_endpoints(config: Any) -> list[str]:
    """The endpoints a session config connects to (for messages about the router)."""
    try:
        return list(json.loads(config.get_json("connect/endpoints")))
    except Exception:
        return []
