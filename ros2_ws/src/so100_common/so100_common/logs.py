"""Console logging in ROS 2's format: ``[LEVEL] [epoch.ns] [logger]: message``.

``SO100_LOG_LEVEL`` (or ``--ros-args --log-level``) sets the level; default INFO.
"""

from __future__ import annotations

import logging
import os
import sys

_configured = False


class RosFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        text = f"[{record.levelname}] [{record.created:.9f}] [{record.name}]: {record.getMessage()}"
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


def setup_logging(level: str | None = None) -> None:
    """Install the ROS-style handler on the root logger once per process."""
    global _configured
    if _configured:
        return
    _configured = True
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(RosFormatter())
    root = logging.getLogger()
    # replace, not add: a library that logged before us (lerobot does at import) may have
    # installed logging.basicConfig's handler, which would print every line twice
    root.handlers = [handler]
    root.setLevel((level or os.environ.get("SO100_LOG_LEVEL", "INFO")).upper())
