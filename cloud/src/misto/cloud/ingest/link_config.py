"""Where and how the MQTT adapter connects (no MQTT library here)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from misto.cloud.settings import BrokerSettings, MqttVersion


@dataclass(frozen=True, slots=True)
class SubscriberConfig:
    """Where and how to connect; usually :meth:`from_settings`."""

    host: str
    port: int
    client_id: str
    username: str | None = None
    password: str | None = None
    tls: bool = False
    ca_file: Path | None = None
    protocol: MqttVersion = MqttVersion.V5
    session_expiry_s: int = 7 * 24 * 3600
    keepalive_s: int = 30
    reconnect_min_s: float = 0.5
    reconnect_max_s: float = 30.0
    connect_timeout_s: float = 5.0
    publish_timeout_s: float = 10.0

    @classmethod
    def from_settings(cls, broker: BrokerSettings) -> SubscriberConfig:
        return cls(
            host=broker.host,
            port=broker.port,
            client_id=broker.client_id,
            username=broker.username,
            password=broker.password_value(),
            tls=broker.tls,
            ca_file=broker.ca_file,
            protocol=broker.protocol,
            session_expiry_s=broker.session_expiry_s,
            keepalive_s=broker.keepalive_s,
            reconnect_min_s=broker.reconnect_min_s,
            reconnect_max_s=broker.reconnect_max_s,
        )

    @property
    def address(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"
