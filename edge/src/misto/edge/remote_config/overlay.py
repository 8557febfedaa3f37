"""Which keys the cloud may set, and how a remote config combines with the local file.

The local file stays the authority for what keeps the gateway reachable and its data safe:
the broker, the gateway id and the buffer can only be changed on the gateway itself, so a bad
remote config can never cut the gateway off or lose buffered readings.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

REMOTE_KEYS = frozenset({"poll_interval", "device_backoff_max", "log_level", "devices", "report"})


class RemoteConfigRejected(ValueError):
    """A remote config that cannot be applied; the message says why (it goes into the Ack)."""


def overlay(local: Mapping[str, Any], remote: Mapping[str, Any]) -> dict[str, Any]:
    """The configuration data to validate: ``local`` with the remote keys replaced."""
    refused = sorted(set(remote) - REMOTE_KEYS)
    if refused:
        allowed = ", ".join(sorted(REMOTE_KEYS))
        raise RemoteConfigRejected(
            f"key(s) {', '.join(refused)} can only be set in the gateway's local file; remote keys: {allowed}"
        )
    return {**local, **remote}
