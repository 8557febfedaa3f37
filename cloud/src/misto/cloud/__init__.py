"""Misto cloud: the MQTT ingester, the reading store, the HTTP API and the public page.

Data walks one way: broker, :mod:`misto.cloud.ingest` (validate, dedup, dead-letter),
:mod:`misto.cloud.storage`, then :mod:`misto.cloud.api` reads from the store.
"""

__version__ = "0.1.0"
