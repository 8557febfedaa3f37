"""From the broker to the store: the MQTT subscriber adapter (:mod:`.mqtt`, the only module that
imports paho-mqtt) and the :class:`Ingester`, which validates, deduplicates, stores or
dead-letters each message and only then acknowledges it."""

from misto.cloud.ingest.inbound import InboundMessage, MessageSource
from misto.cloud.ingest.ingester import Ingester
from misto.cloud.ingest.stats import IngestStats

__all__ = ["InboundMessage", "IngestStats", "Ingester", "MessageSource"]
