"""From the broker to the store: the MQTT subscriber adapter (:mod:`.mqtt`, the only module that
imports paho-mqtt), the bounded hand-off (:mod:`.inbound`), the checks at the door (:mod:`.door`,
:mod:`.ownership`) and the :class:`Ingester`, which takes messages in batches, validates,
deduplicates, stores or dead-letters them and only then acknowledges them."""

from misto.cloud.ingest.inbound import InboundMessage, MessageSource
from misto.cloud.ingest.ingester import Ingester
from misto.cloud.ingest.stats import IngestStats

__all__ = ["InboundMessage", "IngestStats", "Ingester", "MessageSource"]
