"""The composition root: store, control database, registry, embedded broker (optional), MQTT link +
ingester, remote control and the HTTP API, in one asyncio loop, started in that order and stopped
in reverse. With ``registry.broker_files`` set, the service also keeps Mosquitto's password and ACL
files in step with the registry (:class:`BrokerFilesKeeper`); with ``ingest.validation.
device_ownership: registry`` the ingester takes device owners from the registry.

Stopping (``stop`` is set, e.g. by SIGINT/SIGTERM): the subscriber stops taking new messages, the
ingester completes the message in flight and those already received (each acknowledged after its
commit, within ``ingest.shutdown_drain_s``), the MQTT session is closed (kept by the broker), then
the API, the embedded broker and the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import socket
import time
from collections.abc import Callable, Coroutine, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

import uvicorn

from misto.cloud.api import create_app
from misto.cloud.api.routes.provisioning import attach_broker_files
from misto.cloud.control import RemoteControl, open_control
from misto.cloud.embedded_broker import BrokerAccount, EmbeddedBroker
from misto.cloud.errors import ServiceStartError
from misto.cloud.ingest import Ingester, IngestStats
from misto.cloud.ingest.door import Door
from misto.cloud.ingest.ingester import Batching
from misto.cloud.ingest.mqtt import MqttSubscriber, SubscriberConfig
from misto.cloud.ingest.ownership import DeviceOwnership, FirstGatewayOwnership, RegistryOwnership
from misto.cloud.ingest.snapshots import SnapshotRecorder
from misto.cloud.registry import RegistryRepository, open_registry
from misto.cloud.registry.mosquitto_files import BrokerFilesKeeper
from misto.cloud.registry.sql import SqlRegistry
from misto.cloud.settings import BrokerRole, CloudSettings, DeviceOwnershipMode, IngestSettings, MqttVersion
from misto.cloud.storage import open_store
from misto.cloud.storage.base import Store
from misto.protocol import Channel, topics

log = logging.getLogger(__name__)

API_START_TIMEOUT_S = 15.0
EMBEDDED_INGESTER_USER = "misto-cloud"


@dataclass(frozen=True, slots=True)
class ServiceUrls:
    api: str
    broker: str
    embedded_broker: bool

    def lines(self) -> list[str]:
        broker = "embedded MQTT broker on" if self.embedded_broker else "ingesting from MQTT broker"
        return [
            f"misto-cloud: public page {self.api}/  API docs {self.api}/docs  health {self.api}/health",
            f"misto-cloud: {broker} {self.broker}",
        ]


def subscriptions(settings: CloudSettings) -> list[str]:
    """Telemetry and health are shared among the ingesters of ``broker.share_group`` (each message
    goes to one of them). Status is not: it is retained, and a broker sends no retained messages to
    a shared subscription, so every ingester reads it (storing a status twice changes nothing).
    Acks are not either: recording an ack twice changes nothing."""
    share_group = settings.broker.share_group
    return [
        topics.subscription(Channel.TELEMETRY, share_group=share_group),
        topics.subscription(Channel.STATUS),
        topics.subscription(Channel.HEALTH, share_group=share_group),  # not retained: sharing loses nothing
        topics.subscription(Channel.ACK),
    ]


def batching(settings: IngestSettings) -> Batching:
    return Batching(
        max_messages=settings.batch_max_messages,
        max_readings=settings.batch_max_readings,
        max_wait_s=settings.batch_max_wait_ms / 1000.0,
    )


async def door(settings: IngestSettings, store: Store, registry: RegistryRepository | None = None) -> Door:
    """The checks of ``ingest.validation``; device ownership seeded from the stored devices
    (``first_gateway``) or read from ``registry`` (``registry``: keep it fresh with its ``run``)."""
    validation = settings.validation
    ownership: DeviceOwnership | None = None
    if validation.device_ownership is DeviceOwnershipMode.FIRST_GATEWAY:
        first = await FirstGatewayOwnership.load(store)
        log.info("device ownership: %d known device(s), each kept to its first gateway", len(first))
        ownership = first
    elif validation.device_ownership is DeviceOwnershipMode.REGISTRY:
        if registry is None:
            raise ServiceStartError("ingester", "ingest.validation.device_ownership: registry needs the registry")
        owners = await RegistryOwnership.load(
            registry, unregistered=validation.unregistered_devices, refresh_s=validation.registry_refresh_s
        )
        log.info(
            "device ownership: %d registered device(s); unregistered ones: %s",
            len(owners),
            validation.unregistered_devices.value,
        )
        ownership = owners
    return Door(
        max_future=timedelta(seconds=validation.max_future_s),
        max_age=timedelta(days=validation.max_age_days),
        ownership=ownership,
    )


def embedded_accounts(settings: CloudSettings) -> tuple[list[BrokerAccount], BrokerAccount]:
    """The embedded broker's accounts, and the one the ingester uses.

    The ingester uses ``broker.username``/``password`` when set (added as an ``ingester``
    account unless ``embedded_broker.users`` has that name); otherwise a one-off account with a
    random password that lives as long as the process.
    """
    accounts = [BrokerAccount(u.username, u.password_value(), u.role) for u in settings.embedded_broker.users]
    name = settings.broker.username
    if name is not None:
        own = next((a for a in accounts if a.username == name), None)
        if own is None:
            password = settings.broker.password_value()
            assert password is not None  # settings require it with a username
            own = BrokerAccount(name, password, BrokerRole.INGESTER)
            accounts.append(own)
        return accounts, own
    own = BrokerAccount(EMBEDDED_INGESTER_USER, secrets.token_urlsafe(24), BrokerRole.INGESTER)
    if any(a.username == own.username for a in accounts):
        raise ServiceStartError("embedded broker", f"set broker.username: {own.username!r} is taken by a user")
    return [*accounts, own], own


class _ApiServer(uvicorn.Server):
    """uvicorn without its own signal handling: the service owns SIGINT/SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def bind_socket(host: str, port: int) -> socket.socket:
    """A bound TCP socket for the API, or :class:`ServiceStartError` saying why not."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise ServiceStartError("HTTP API", f"cannot resolve {host!r}: {exc}") from exc
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise ServiceStartError("HTTP API", f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    return sock


class CloudService:
    """Runs everything ``misto-cloud serve`` runs, until ``stop`` is set."""

    def __init__(self, settings: CloudSettings) -> None:
        self.settings = settings
        self.stats = IngestStats()
        self.urls: ServiceUrls | None = None

    async def run(self, stop: asyncio.Event, *, on_ready: Callable[[ServiceUrls], None] | None = None) -> None:
        settings = self.settings
        async with AsyncExitStack() as stack:
            store = await open_store(settings.store)
            stack.push_async_callback(store.close)
            repository = await open_control(settings)
            stack.push_async_callback(repository.close)
            registry, keeper = await self._open_registry(stack)

            config = SubscriberConfig.from_settings(settings.broker)
            if settings.embedded_broker.enabled:
                config = await self._start_embedded_broker(stack, config)

            sock = bind_socket(settings.api.host, settings.api.port)
            stack.callback(sock.close)
            subscriber = MqttSubscriber(
                replace(config, publish_timeout_s=settings.control.publish_timeout_s),
                subscriptions(settings),
                queue_size=settings.ingest.queue_size,
                stats=self.stats,
            )
            control = RemoteControl.from_settings(repository, subscriber, settings.control)
            app = create_app(settings, store=store, ingest=self.stats, control=control, registry=registry)
            attach_broker_files(app, keeper)
            server = _ApiServer(
                uvicorn.Config(app, log_config=None, access_log=settings.log_level == "debug", lifespan="on")
            )
            ingester = Ingester(
                store,
                subscriber,
                acks=repository,
                stats=self.stats,
                door=await self._door(stack, store, registry),
                batching=batching(settings.ingest),
                retry_max_s=settings.ingest.store_retry_max_s,
            )
            await subscriber.start()
            stack.push_async_callback(subscriber.stop)
            ingest_task = asyncio.create_task(ingester.run(), name="misto-ingester")
            self._record_snapshots(stack, store, config.client_id)
            api_task = asyncio.create_task(server.serve(sockets=[sock]), name="misto-api")
            stop_task = asyncio.create_task(stop.wait(), name="misto-stop")
            try:
                await self._wait_api_started(server, api_task)
                host, port = sock.getsockname()[:2]
                api_host = f"[{host}]" if ":" in host else host
                self.urls = ServiceUrls(
                    api=f"http://{api_host}:{port}",
                    broker=config.address,
                    embedded_broker=settings.embedded_broker.enabled,
                )
                if on_ready is not None:
                    on_ready(self.urls)
                await asyncio.wait({ingest_task, api_task, stop_task}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                log.info("stopping: finishing received messages, then closing")
                subscriber.pause()
                ingest_task.cancel()
                ingest_failure = (await asyncio.gather(ingest_task, return_exceptions=True))[0]
                done = await ingester.finish(settings.ingest.shutdown_drain_s)
                if done:
                    log.info("stored and acknowledged %d message(s) received before the stop", done)
                await subscriber.stop()
                server.should_exit = True
                api_failure = (await asyncio.gather(api_task, return_exceptions=True))[0]
                stop_task.cancel()
                await asyncio.gather(stop_task, return_exceptions=True)
            for task, failure in ((ingest_task, ingest_failure), (api_task, api_failure)):
                if isinstance(failure, Exception):
                    raise failure
                if isinstance(failure, SystemExit):
                    raise ServiceStartError(task.get_name(), "stopped unexpectedly") from failure

    async def _open_registry(self, stack: AsyncExitStack) -> tuple[RegistryRepository, BrokerFilesKeeper | None]:
        """The registry, and with ``registry.broker_files`` the keeper of Mosquitto's files (running
        until the stop)."""
        registry = await open_registry(self.settings.registry.database_url(self.settings.store))
        stack.push_async_callback(registry.close)
        files = self.settings.registry.broker_files
        if files is None:
            return registry, None
        if not isinstance(registry, SqlRegistry):
            raise ServiceStartError("broker files", "registry.broker_files needs the SQL registry")
        keeper = BrokerFilesKeeper(
            registry,
            files.passwd,
            files.acl,
            reload_pid=files.reload_pid,
            reload_pid_file=files.reload_pid_file,
            interval_s=files.interval_s,
        )
        self._background(stack, keeper.run(), "misto-broker-files")
        return registry, keeper

    async def _door(self, stack: AsyncExitStack, store: Store, registry: RegistryRepository) -> Door:
        checks = await door(self.settings.ingest, store, registry)
        if isinstance(checks.ownership, RegistryOwnership):
            self._background(stack, checks.ownership.run(), "misto-device-owners")
        return checks

    @staticmethod
    def _background(stack: AsyncExitStack, work: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(work, name=name)
        stack.push_async_callback(_cancel, task)

    def _record_snapshots(self, stack: AsyncExitStack, store: Store, instance: str) -> None:
        """Store the ingester's counters every ``ingest.snapshot_interval_s`` until the service stops."""
        interval_s = self.settings.ingest.snapshot_interval_s
        if interval_s <= 0:
            return
        recorder = SnapshotRecorder(store, self.stats, instance=instance, interval_s=interval_s)
        task = asyncio.create_task(recorder.run(), name="misto-ingest-snapshots")
        stack.push_async_callback(_cancel, task)

    async def _start_embedded_broker(self, stack: AsyncExitStack, config: SubscriberConfig) -> SubscriberConfig:
        embedded = self.settings.embedded_broker
        accounts, own = embedded_accounts(self.settings)
        broker = EmbeddedBroker(
            host=embedded.host,
            port=embedded.port,
            accounts=accounts,
            session_expiry_s=self.settings.broker.session_expiry_s,
        )
        await broker.start()
        stack.push_async_callback(broker.stop)
        connect_host = "127.0.0.1" if embedded.host in ("0.0.0.0", "") else embedded.host  # noqa: S104
        log.info("ingesting from the embedded broker (broker.url and broker.protocol are not used)")
        return replace(
            config,
            host=connect_host,
            port=embedded.port,
            tls=False,
            ca_file=None,
            protocol=MqttVersion.V311,
            username=own.username,
            password=own.password,
        )

    @staticmethod
    async def _wait_api_started(server: uvicorn.Server, api_task: asyncio.Task[None]) -> None:
        deadline = time.monotonic() + API_START_TIMEOUT_S
        while not server.started:
            if api_task.done():
                failure = api_task.exception() if not api_task.cancelled() else None
                raise ServiceStartError("HTTP API", f"server stopped during start-up: {failure!r}")
            if time.monotonic() > deadline:
                raise ServiceStartError("HTTP API", f"not started within {API_START_TIMEOUT_S:.0f}s")
            await asyncio.sleep(0.02)


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
