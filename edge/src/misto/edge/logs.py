"""Log set-up for the agent: one human-readable line per event; messages about a device start
with ``device <id>:``. Libraries' own chatter is kept out unless the level is ``debug``."""

from __future__ import annotations

import logging
import sys

FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
LIBRARY_LOGGERS = ("pymodbus", "misto.edge.uplink.paho")


def configure_logging(level: str = "info") -> None:
    numeric = logging.getLevelNamesMapping()[level.upper()]
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric)
    for name in LIBRARY_LOGGERS:
        # pymodbus logs every failed attempt at ERROR; the driver reports the outcome itself.
        logging.getLogger(name).setLevel(logging.DEBUG if numeric <= logging.DEBUG else logging.CRITICAL)
