"""``GET /metrics``: the ingester's self-metrics in the Prometheus text format.

The only module that imports prometheus-client. Each app has its own registry (nothing global),
holding one collector that reads :class:`~misto.cloud.ingest.stats.IngestStats` at scrape time, so
the ingester's hot path only adds to plain integers.

The metrics name gateways (rejections per gateway), so they are not public: a scrape needs
``Authorization: Bearer`` with ``api.metrics_token`` (read-only, for Prometheus'
``authorization.credentials_file``), or the credentials of an admin or operator (the operator
token, a JWT or an API key).
"""

from __future__ import annotations

import hmac
import math
from collections.abc import Iterator
from datetime import UTC, datetime

from fastapi import APIRouter, Depends, HTTPException, Request, Response, status
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric

from misto.cloud.api.access import AuthenticatorDep, Credentials, refused, require
from misto.cloud.api.deps import StateDep
from misto.cloud.api.state import ApiState
from misto.cloud.auth import keys, tokens
from misto.cloud.auth.authenticator import Authenticator
from misto.cloud.auth.errors import AuthError, Refusal
from misto.cloud.auth.roles import Role
from misto.cloud.ingest.stats import Histogram, IngestStats

router = APIRouter(tags=["operators"])
#: The classic text format: what every Prometheus version scrapes (the names here need no escaping).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
#: Who may scrape besides the holder of ``api.metrics_token``.
SCRAPERS = frozenset({Role.ADMIN, Role.OPERATOR})


def new_registry(state: ApiState) -> CollectorRegistry:
    """A registry of this app alone, collecting from ``state.ingest`` at each scrape."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(IngestCollector(state))
    return registry


async def require_metrics_reader(state: StateDep, authenticator: AuthenticatorDep, credentials: Credentials) -> None:
    """401 without a bearer credential or with one that proves no one; the metrics token, or an
    admin's or operator's credentials; 403 for another role, and when neither the metrics nor the
    operator token is configured."""
    if credentials is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "metrics token required: send 'Authorization: Bearer <api.metrics_token or api.operator_token>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    given = credentials.credentials
    metrics_token = state.settings.api.metrics_token_value()
    if metrics_token is not None and hmac.compare_digest(given.encode(), metrics_token.encode()):
        return
    if not (keys.looks_like_key(given) or tokens.looks_like_jwt(given)):  # a plain token
        if metrics_token is None and authenticator.operator_token is None:
            raise HTTPException(status.HTTP_403_FORBIDDEN, "/metrics is disabled: set api.metrics_token")
        if authenticator.operator_token is None or not hmac.compare_digest(
            given.encode(), authenticator.operator_token.encode()
        ):
            raise refused(AuthError(Refusal.INVALID, "invalid metrics token"))
    try:
        caller = await authenticator.identify(given)
    except AuthError as error:
        raise refused(error) from None
    require(caller, SCRAPERS)


require_metrics_reader.admitted = SCRAPERS  # type: ignore[attr-defined]


@router.get(
    "/metrics",
    dependencies=[Depends(require_metrics_reader)],
    summary="Ingest self-metrics in the Prometheus text format (metrics token, admins, operators)",
    response_class=Response,
    responses={
        200: {"content": {CONTENT_TYPE: {}}, "description": "Prometheus text exposition format 0.0.4"},
        401: {"description": "No credentials"},
        403: {"description": "Credentials refused, or a role not admitted"},
    },
)
async def metrics(request: Request) -> Response:
    registry: CollectorRegistry = request.app.state.metrics_registry
    access = CollectorRegistry(auto_describe=False)  # the authenticator of this app, as it is now
    access.register(AccessCollector(request.app.state.auth))
    return Response(content=generate_latest(registry) + generate_latest(access), media_type=CONTENT_TYPE)


class AccessCollector:
    """Requests refused by the per-key rate limits (and sign-in attempt limits) of this process;
    absent until a key is used or a sign-in attempted (``or vector(0)`` in PromQL)."""

    def __init__(self, authenticator: Authenticator) -> None:
        self._authenticator = authenticator

    def collect(self) -> Iterator[Metric]:
        limiter = self._authenticator.limiter
        if not limiter.in_use:
            return
        refused = limiter.refused
        yield _counter("misto_api_rate_limited", "Requests refused by a rate limit (429)", sum(refused.values()))
        by_key = CounterMetricFamily(
            "misto_api_rate_limited_by_key", "Requests refused by an API key's rate limit", labels=["key"]
        )
        for name, count in sorted(refused.items()):
            if name.startswith("key:"):
                by_key.add_metric([name.removeprefix("key:")], count)
        yield by_key


class IngestCollector:
    """Turns the ingester's counters into metric families (none when no ingester runs here)."""

    def __init__(self, state: ApiState) -> None:
        self._state = state

    def collect(self) -> Iterator[Metric]:
        stats = self._state.ingest
        if stats is None:
            yield _gauge("misto_ingest_running", "1 if this process runs an ingester", 0)
            return
        yield _gauge("misto_ingest_running", "1 if this process runs an ingester", 1)
        yield from _counters(stats)
        yield from _rejections(stats)
        yield _histogram("misto_ingest_batch_readings", "Readings per store write", stats.batch_readings)
        yield _histogram("misto_ingest_write_seconds", "Duration of a store write of one batch", stats.write_seconds)
        yield from _gauges(stats, datetime.now(UTC))


def _counter(name: str, documentation: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, documentation, value=value)


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


def _counters(stats: IngestStats) -> Iterator[Metric]:
    ingest, mqtt = "misto_ingest_", "misto_mqtt_"
    yield _counter(f"{ingest}messages_received", "MQTT messages handed to the ingester", stats.messages_received)
    yield _counter(f"{ingest}messages_acknowledged", "Messages acknowledged after their commit", stats.acked)
    yield _counter(f"{ingest}telemetry_written", "Telemetry messages written", stats.telemetry_stored)
    yield _counter(f"{ingest}readings_received", "Readings in decoded telemetry", stats.readings_received)
    yield _counter(f"{ingest}readings_written", "Readings written to the store", stats.readings_stored)
    yield _counter(f"{ingest}duplicates", "Redelivered messages dropped by message id", stats.duplicates)
    yield _counter(f"{ingest}decode_errors", "Messages that could not be decoded", stats.decode_errors)
    yield _counter(f"{ingest}batches", "Store writes of a batch of telemetry", stats.batches)
    yield _counter(f"{ingest}store_errors", "Failed store calls (retried or not)", stats.store_errors)
    yield _counter(f"{ingest}store_retries", "Store calls retried after a failure that may pass", stats.store_retries)
    yield _counter(f"{ingest}internal_errors", "Messages dead-lettered after an ingester bug", stats.internal_errors)
    yield _counter(f"{ingest}status_stored", "Gateway status messages stored", stats.status_stored)
    yield _counter(f"{ingest}health_stored", "Gateway health messages stored", stats.health_stored)
    yield _counter(f"{ingest}acks_stored", "Gateway acks of configurations and commands", stats.acks_stored)
    yield _counter(f"{ingest}ignored", "Messages ignored on purpose (a cleared retained status)", stats.ignored)
    yield _counter(f"{mqtt}connects", "Sessions opened with the broker", stats.connects)
    yield _counter(f"{mqtt}connection_failures", "Failed or lost broker connections", stats.connection_failures)
    yield _counter(f"{mqtt}published", "Configurations and commands the broker acknowledged", stats.published)
    yield _counter(f"{mqtt}publish_failures", "Configurations and commands not published", stats.publish_failures)


def _rejections(stats: IngestStats) -> Iterator[Metric]:
    by_kind = CounterMetricFamily("misto_ingest_dead_letters", "Dead-lettered messages or readings", labels=["kind"])
    for kind, count in stats.dead_letters.items():
        by_kind.add_metric([kind.value], count)
    yield by_kind
    documentation = "Refused messages or readings by gateway ('-': unknown) and kind"
    by_gateway = CounterMetricFamily("misto_ingest_rejected", documentation, labels=["gateway", "kind"])
    for gateway, kinds in sorted(stats.rejected_by_gateway.items()):
        for kind, count in kinds.items():
            if count:
                by_gateway.add_metric([gateway, kind.value], count)
    yield by_gateway


def _histogram(name: str, documentation: str, histogram: Histogram) -> HistogramMetricFamily:
    buckets = [("+Inf" if math.isinf(bound) else repr(float(bound)), count) for bound, count in histogram.cumulative()]
    return HistogramMetricFamily(name, documentation, buckets=buckets, sum_value=histogram.total)


def _gauges(stats: IngestStats, now: datetime) -> Iterator[Metric]:
    yield _gauge("misto_ingest_queue_depth", "Received messages waiting for the ingester", stats.queue_depth())
    if stats.receive_maximum is not None:
        maximum = stats.receive_maximum
        yield _gauge("misto_ingest_receive_maximum", "Unacknowledged messages the broker may send (MQTT 5)", maximum)
    oldest = "Now minus the receive time of the oldest unacknowledged message"
    yield _gauge("misto_ingest_lag_seconds", oldest, stats.lag_s(now))
    age = stats.reading_age_s(now)
    if age is not None:
        yield _gauge("misto_ingest_reading_age_seconds", "Now minus the newest reading time written", age)
    yield _gauge("misto_mqtt_connected", "1 while subscribed to the broker", int(stats.connected))
