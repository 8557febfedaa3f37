"""An in-process MQTT 3.1.1 broker (amqtt) for the demo and single-machine installs.

The only module of misto.cloud that imports amqtt. Anonymous access is off: amqtt's
``FileAuthPlugin`` checks each client against a password file of ``username:argon2-hash`` lines
(written here, mode 0600, in a temporary directory removed at stop). Topic rights follow each
account's :class:`~misto.cloud.settings.BrokerRole`, enforced by :class:`MistoTopicAcl`:

- ``gateway`` (username = gateway id): publish ``misto/v1/<id>/{telemetry,status,health,ack}``,
  subscribe ``misto/v1/<id>/{config,cmd}``;
- ``ingester``: subscribe every gateway's edge→cloud channels, publish config and cmd;
- ``admin``: publish and subscribe anything under ``misto/``.

amqtt speaks MQTT 3.1.1 only (an MQTT 5 CONNECT is refused) and has no shared subscriptions,
so the ingester connects to it with 3.1.1 and a persistent (``clean_session=False``) session.
It is not built for load (about 1,400 QoS 1 messages/s): use Mosquitto in production.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from amqtt.broker import Broker
from amqtt.contexts import Action
from amqtt.errors import AMQTTError, BrokerError
from amqtt.plugins.base import BaseTopicPlugin
from amqtt.session import Session
from pwdlib.hashers.argon2 import Argon2Hasher

from misto.cloud.errors import BrokerStartError
from misto.cloud.settings import BrokerRole
from misto.protocol import topics
from misto.protocol.topics import CLOUD_TO_EDGE, EDGE_TO_CLOUD, Channel

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class BrokerAccount:
    username: str
    password: str = field(repr=False)
    role: BrokerRole

    def __post_init__(self) -> None:
        if ":" in self.username or not self.username:
            raise ValueError(f"broker username {self.username!r} must be non-empty without ':'")
        if self.role is BrokerRole.GATEWAY:
            topics.check_gateway_id(self.username)


def _channels(gateway: str, channels: frozenset[Channel]) -> list[str]:
    return sorted(f"{topics.ROOT}/{topics.VERSION}/{gateway}/{channel.value}" for channel in channels)


def topic_rights(account: BrokerAccount) -> tuple[list[str], list[str]]:
    """``(publish, subscribe)`` topic patterns the account may use."""
    match account.role:
        case BrokerRole.GATEWAY:
            return _channels(account.username, EDGE_TO_CLOUD), _channels(account.username, CLOUD_TO_EDGE)
        case BrokerRole.INGESTER:
            return _channels("+", CLOUD_TO_EDGE), _channels("+", EDGE_TO_CLOUD)
        case BrokerRole.ADMIN:
            everything = [f"{topics.ROOT}/#"]
            return everything, everything


def covers(pattern: str, requested: str) -> bool:
    """True if every topic that ``requested`` (a topic or a filter) can match also matches ``pattern``."""
    want = requested.split("/")
    have = pattern.split("/")
    for index, level in enumerate(have):
        if level == "#":
            return True
        if index >= len(want):
            return False
        if level == "+":
            if want[index] == "#":
                return False
            continue
        if want[index] != level:
            return False
    return len(want) == len(have)


class MistoTopicAcl(BaseTopicPlugin):  # type: ignore[misc]  # amqtt ships no type information
    """amqtt topic plugin: allows a publish or subscribe only if one of the account's patterns covers it."""

    @dataclass
    class Config:
        publish: dict[str, list[str]] = field(default_factory=dict)
        subscribe: dict[str, list[str]] = field(default_factory=dict)

    async def topic_filtering(
        self, *, session: Session | None = None, topic: str | None = None, action: Action | None = None
    ) -> bool:
        if action is Action.RECEIVE:
            return True  # what a client may receive was decided when it subscribed
        username = session.username if session is not None else None
        if username is None or topic is None:
            return False
        config: MistoTopicAcl.Config = self.context.config
        rules = config.publish if action is Action.PUBLISH else config.subscribe
        allowed = any(covers(pattern, topic) for pattern in rules.get(username, ()))
        if not allowed:
            log.info("embedded broker: %s may not %s %r", username, action.value if action else "use", topic)
        return allowed


class EmbeddedBroker:
    """``async with EmbeddedBroker(host=..., port=..., accounts=[...]) as broker:``"""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        accounts: Sequence[BrokerAccount],
        session_expiry_s: int | None = 7 * 24 * 3600,
    ) -> None:
        if not accounts:
            raise ValueError("the embedded broker needs at least one account (anonymous access is off)")
        if not 0 < port < 65536:
            raise ValueError(f"embedded broker port must be 1-65535, got {port}")
        self.host = host
        self.port = port
        self.accounts = tuple(accounts)
        self.session_expiry_s = session_expiry_s
        self._broker: Any = None
        self._workdir: Path | None = None

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    async def __aenter__(self) -> EmbeddedBroker:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def start(self) -> None:
        if self._broker is not None:
            raise RuntimeError("embedded broker already started")
        loop = asyncio.get_running_loop()
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="misto-argon2") as pool:
            lines = await loop.run_in_executor(pool, _password_lines, self.accounts)
        self._workdir = Path(tempfile.mkdtemp(prefix="misto-broker-"))
        password_file = self._workdir / "passwd"
        password_file.touch(mode=0o600)
        password_file.write_text(lines, encoding="utf-8")
        rights = {account.username: topic_rights(account) for account in self.accounts}
        config: dict[str, Any] = {
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}"}},
            "session_expiry_interval": self.session_expiry_s,
            "plugins": {
                "amqtt.plugins.authentication.FileAuthPlugin": {"password_file": str(password_file)},
                f"{__name__}.MistoTopicAcl": {
                    "publish": {user: publish for user, (publish, _) in rights.items()},
                    "subscribe": {user: subscribe for user, (_, subscribe) in rights.items()},
                },
            },
        }
        try:
            broker = Broker(config)
            await broker.start()
        except (AMQTTError, BrokerError, OSError, ValueError) as exc:
            self._cleanup()
            cause = exc.__cause__ or exc
            raise BrokerStartError(f"{self.host}:{self.port}", str(cause)) from exc
        self._broker = broker
        log.info("embedded MQTT broker listening on %s with %d account(s)", self.url, len(self.accounts))

    async def stop(self) -> None:
        broker, self._broker = self._broker, None
        try:
            if broker is not None:
                await broker.shutdown()
        finally:
            self._cleanup()

    def _cleanup(self) -> None:
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None


def _password_lines(accounts: Sequence[BrokerAccount]) -> str:
    hasher = Argon2Hasher()
    return "".join(f"{account.username}:{hasher.hash(account.password)}\n" for account in accounts)
