"""Applies remote configs as they arrive, and answers each version with an Ack.

For a ``ConfigUpdate`` of version V on ``misto/v1/<gw>/config``:

1. V not newer than the applied version: acknowledged again (``already applied``) or refused
   (``older than``), nothing changes. The config topic is retained, so every reconnect
   delivers the current version once more.
2. The remote keys are overlaid on the local file and validated like the file itself; a
   refused key or an invalid value is an error Ack naming it.
3. The change plan says which devices to add, remove, restart or reschedule; the applier (the
   agent) does exactly that while polling goes on. If applying fails, the previous settings are
   applied again (roll back) and the Ack says why.
4. Success is written to disk (the last good config, used at the next start) and acknowledged.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

from misto.edge.clock import Clock
from misto.edge.errors import ConfigError, EdgeError
from misto.edge.remote_config.diff import plan_changes
from misto.edge.remote_config.last_good import LastGood
from misto.edge.remote_config.overlay import RemoteConfigRejected, overlay
from misto.edge.settings import Settings, settings_from_data
from misto.protocol import Ack, AckResult, ConfigUpdate, DecodeError, codec

log = logging.getLogger(__name__)


class ConfigApplier(Protocol):
    async def apply_settings(self, settings: Settings) -> None:
        """Switch to ``settings``, touching only the devices that differ from what runs (see
        :func:`plan_changes`); nothing if they are what runs. Raise if it cannot."""
        ...


def settings_with_remote(
    local: Mapping[str, Any], remote: Mapping[str, Any], *, base_dir: Path, env: Mapping[str, str] | None = None
) -> Settings:
    """The settings of the local file with ``remote`` overlaid; raises RemoteConfigRejected or ConfigError."""
    return settings_from_data(overlay(local, remote), source="remote config", base_dir=base_dir, env=env)


class RemoteConfigManager:
    def __init__(
        self,
        *,
        gateway_id: str,
        local: Mapping[str, Any],
        base_dir: Path,
        current: Settings,
        applied_version: int | None,
        last_good: LastGood,
        applier: ConfigApplier,
        send_ack: Callable[[Ack], Awaitable[None]],
        clock: Clock,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.gateway_id = gateway_id
        self._local = dict(local)
        self._base_dir = base_dir
        self._env = env
        self.current = current
        self.applied_version = applied_version
        self._last_good = last_good
        self._applier = applier
        self._send_ack = send_ack
        self._clock = clock
        self.rejected = 0

    async def handle(self, topic: str, payload: bytes) -> None:
        if not payload:
            return  # the retained config was cleared: keep what runs
        try:
            update = codec.decode(payload, ConfigUpdate, topic=topic)
        except DecodeError as exc:
            self.rejected += 1
            log.error("remote config refused: %s", exc)  # no version to acknowledge
            return
        if update.gateway != self.gateway_id:
            self.rejected += 1
            log.error("remote config for gateway %r arrived on %s; ignored", update.gateway, topic)
            return
        await self._apply(update)

    async def _apply(self, update: ConfigUpdate) -> None:
        version = update.version
        if self.applied_version is not None and version <= self.applied_version:
            if version == self.applied_version:
                await self._ack(version, AckResult.OK, "already applied")
            else:
                await self._ack(version, AckResult.ERROR, f"older than the applied version {self.applied_version}")
            return
        try:
            new = settings_with_remote(self._local, update.config, base_dir=self._base_dir, env=self._env)
        except (RemoteConfigRejected, ConfigError) as exc:
            self.rejected += 1
            log.error("remote config version %d refused: %s", version, exc)
            await self._ack(version, AckResult.ERROR, str(exc))
            return
        old = self.current
        changes = plan_changes(old, new)
        try:
            await self._applier.apply_settings(new)
        except (EdgeError, ValueError, OSError) as exc:
            self.rejected += 1
            log.error("remote config version %d failed to apply (%s); rolling back", version, exc)
            await self._applier.apply_settings(old)
            await self._ack(version, AckResult.ERROR, f"rolled back: {exc}")
            return
        self.current, self.applied_version = new, version
        self._last_good.save(version, dict(update.config))
        log.info("remote config version %d applied: %s", version, changes.summary())
        await self._ack(version, AckResult.OK, changes.summary())

    async def _ack(self, version: int, result: AckResult, detail: str) -> None:
        ack = Ack(
            schema=1, gateway=self.gateway_id, ref=f"config:{version}", result=result, at=self._clock.now(),
            detail=detail[:1000],
        )  # fmt: skip
        await self._send_ack(ack)
