"""InfluxDB's v1 HTTP API as the InfluxDB store uses it: ``POST /write`` (line protocol, gzip) and
``POST /query`` (InfluxQL). The only module that imports httpx.

InfluxDB 1.x serves this API natively; 2.x serves it through its v1 compatibility endpoints (a DBRP
mapping names the bucket) and 3.x through its v1 API, so the same client talks to all three
(docs/influxdb.md). Authentication: ``username``/``password`` as HTTP Basic (1.x users; 2.x and 3.x
accept a token as the Basic password too) or ``Authorization: Token <token>`` (2.x, 3.x).

Errors are sorted here: a connection error, a timeout, a 5xx or a 429 is retried with capped
exponential backoff and jitter until the call's deadline, then raised as a retryable
:class:`StoreError`; 401/403 and an unknown database or retention policy raise
:class:`InfluxUnusableError` (permanent); a 400 (or 413) for a write raises :class:`InfluxRefusedError`
so that the caller can find the points InfluxDB will not take.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

import httpx

from misto.cloud.errors import StoreError
from misto.cloud.settings import Compression, InfluxStoreSettings

log = logging.getLogger(__name__)
T = TypeVar("T")

GZIP_LEVEL: Final = 1  # fastest: line protocol still shrinks about 5-10 times
_MAX_REASON: Final = 2000
_PERMANENT_MESSAGES: Final = ("database not found", "retention policy not found", "bucket not found")


class InfluxUnusableError(StoreError):
    """InfluxDB refuses every request: bad credentials, no permission, or no such database or
    retention policy. Retrying cannot help until an operator fixes the set-up."""

    retryable = False


class InfluxRefusedError(Exception):
    """InfluxDB refused (some of) the lines of one write (400 bad point, 413 body too large)."""

    def __init__(self, status: int, reason: str) -> None:
        self.status = status
        self.reason = reason
        super().__init__(f"HTTP {status}: {reason}")


class _Retryable(Exception):
    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        self.reason = reason
        self.retry_after = retry_after
        super().__init__(reason)


@dataclass(frozen=True, slots=True)
class SentRequest:
    """What went on the wire (for tests and diagnostics): ``content`` as sent (maybe gzip'd)."""

    method: str
    path: str
    params: Mapping[str, str]
    headers: Mapping[str, str]
    content: bytes


@dataclass(frozen=True, slots=True)
class StatementResult:
    """One InfluxQL statement's answer: its series (``name``, ``tags``, ``columns``, ``values``) or error."""

    series: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None


@dataclass(slots=True)
class HttpStats:
    requests: int = 0
    retries: int = 0
    failures: int = 0  # calls that gave up (deadline passed) or were refused for good
    points_written: int = 0
    bytes_sent: int = 0


class InfluxHttp:
    """One connection pool to one InfluxDB database. Close with :meth:`close`."""

    def __init__(
        self, settings: InfluxStoreSettings, *, request_hook: Callable[[SentRequest], None] | None = None
    ) -> None:
        self.settings = settings
        self.url = settings.url
        self.database = settings.database
        self.stats = HttpStats()
        self._failing = False
        headers = {"User-Agent": "misto-cloud"}
        token = settings.token_value()
        if token is not None:
            headers["Authorization"] = f"Token {token}"
        username = settings.username
        password = settings.password_value()
        auth = httpx.BasicAuth(username, password) if username is not None and password is not None else None
        hooks: dict[str, list[Callable[[httpx.Request], Any]]] = {}
        if request_hook is not None:

            async def on_request(request: httpx.Request) -> None:
                request_hook(_sent(request))

            hooks["request"] = [on_request]
        self._client = httpx.AsyncClient(
            base_url=settings.url,
            headers=headers,
            auth=auth,
            timeout=httpx.Timeout(settings.timeout_s),
            limits=httpx.Limits(max_connections=settings.max_concurrent_writes + 4),
            event_hooks=hooks,
        )

    def where(self) -> str:
        return f"InfluxDB {self.url} database {self.database!r}"

    def deadline(self) -> float:
        """A monotonic deadline ``retry_deadline_s`` from now."""
        return time.monotonic() + self.settings.retry_deadline_s

    async def close(self) -> None:
        await self._client.aclose()

    async def ping(self) -> None:
        """One ``GET /ping`` (no retries): :class:`StoreError` unless InfluxDB answers 204."""
        try:
            response = await self._send("GET", "/ping", "ping")
        except _Retryable as exc:
            raise StoreError("ping", str(exc)) from None
        self._check(response, "ping")

    # -- writes ----------------------------------------------------------------------------

    async def write(
        self, lines: Sequence[str], *, precision: str, deadline: float, operation: str = "write", rp: str | None = None
    ) -> None:
        """POST ``lines`` (each without its newline) in one request; retried until ``deadline``."""
        body = "\n".join(lines).encode()
        headers = {"Content-Type": "text/plain; charset=utf-8"}
        if self.settings.compression is Compression.GZIP:
            body = gzip.compress(body, compresslevel=GZIP_LEVEL)
            headers["Content-Encoding"] = "gzip"
        params = {"db": self.database, "precision": precision, **({"rp": rp} if rp else {})}

        async def attempt() -> None:
            response = await self._send("POST", "/write", operation, params=params, content=body, headers=headers)
            if response.status_code in (400, 413):
                raise InfluxRefusedError(response.status_code, _reason(response))
            self._check(response, operation)

        await self._retrying(operation, attempt, deadline)
        self.stats.points_written += len(lines)
        self.stats.bytes_sent += len(body)

    # -- queries ---------------------------------------------------------------------------

    async def query(
        self, statements: Sequence[str], *, operation: str, epoch: str = "ms", deadline: float | None = None
    ) -> list[StatementResult]:
        """Run InfluxQL ``statements`` in one request; one result each (errors left in the result)."""
        data = {"q": ";\n".join(statements), "db": self.database, "epoch": epoch}

        async def attempt() -> list[StatementResult]:
            response = await self._send("POST", "/query", operation, data=data)
            if response.status_code == 400:
                self.stats.failures += 1
                raise StoreError(operation, f"{self.where()} refused the query: {_reason(response)}")
            self._check(response, operation)
            try:
                results = response.json()["results"]
            except (ValueError, KeyError, TypeError) as exc:
                raise _Retryable(f"unreadable answer to /query: {exc}") from None
            out = [StatementResult(r.get("series", []), r.get("error")) for r in results]
            return out + [StatementResult(error="no result")] * (len(statements) - len(out))

        return await self._retrying(operation, attempt, deadline if deadline is not None else self.deadline())

    async def query_ok(self, statements: Sequence[str], *, operation: str, epoch: str = "ms") -> list[StatementResult]:
        """:meth:`query`, raising :class:`StoreError` for the first statement that failed."""
        results = await self.query(statements, operation=operation, epoch=epoch)
        for statement, result in zip(statements, results, strict=True):
            if result.error is not None:
                self._statement_failed(operation, statement, result.error)
        return results

    def _statement_failed(self, operation: str, statement: str, error: str) -> None:
        self.stats.failures += 1
        if any(text in error for text in _PERMANENT_MESSAGES):
            raise InfluxUnusableError(operation, f"{self.where()}: {error}")
        raise StoreError(operation, f"{self.where()}: {error} (in {statement[:300]!r})")

    # -- the transport ---------------------------------------------------------------------

    async def _send(self, method: str, path: str, operation: str, **kwargs: Any) -> httpx.Response:
        self.stats.requests += 1
        try:
            return await self._client.request(method, path, **kwargs)
        except httpx.TimeoutException as exc:
            raise _Retryable(
                f"{self.where()} did not answer in {self.settings.timeout_s}s ({type(exc).__name__})"
            ) from None
        except httpx.TransportError as exc:
            raise _Retryable(f"{self.where()} unreachable: {type(exc).__name__}: {exc}") from None

    def _check(self, response: httpx.Response, operation: str) -> None:
        status = response.status_code
        if status < 300:
            return
        reason = _reason(response)
        if status in (401, 403):
            self.stats.failures += 1
            what = "credentials refused" if status == 401 else "permission denied"
            raise InfluxUnusableError(
                operation, f"{self.where()}: {what} (HTTP {status}: {reason}); check store.username/password or token"
            )
        if any(text in reason for text in _PERMANENT_MESSAGES) or status == 404:
            self.stats.failures += 1
            raise InfluxUnusableError(operation, f"{self.where()}: HTTP {status}: {reason}")
        if status == 429 or status >= 500:
            raise _Retryable(f"{self.where()}: HTTP {status}: {reason}", _retry_after(response))
        self.stats.failures += 1
        raise StoreError(operation, f"{self.where()}: unexpected HTTP {status}: {reason}")

    async def _retrying(self, operation: str, attempt: Callable[[], Awaitable[T]], deadline: float) -> T:
        delay = self.settings.retry_initial_s
        while True:
            try:
                result = await attempt()
            except _Retryable as exc:
                now = time.monotonic()
                if now >= deadline:
                    self.stats.failures += 1
                    raise StoreError(operation, f"{exc.reason}; gave up at the deadline, will be retried") from None
                if not self._failing:
                    self._failing = True
                    log.warning("%s: %s; retrying", operation, exc.reason)
                wait = exc.retry_after if exc.retry_after is not None else delay / 2 + random.uniform(0, delay / 2)  # noqa: S311 - jitter
                self.stats.retries += 1
                await asyncio.sleep(max(0.0, min(wait, self.settings.retry_max_s, deadline - now)))
                delay = min(delay * 2, self.settings.retry_max_s)
                continue
            if self._failing:
                self._failing = False
                log.warning("%s: %s answers again", operation, self.where())
            return result


def _reason(response: httpx.Response) -> str:
    """InfluxDB's error text: ``{"error": ...}`` (1.x, 3.x) or ``{"message": ...}`` (2.x), else the body."""
    text = response.text
    try:
        document = json.loads(text)
    except ValueError:
        return text.strip()[:_MAX_REASON] or response.reason_phrase
    if isinstance(document, dict):
        for key in ("error", "message"):
            if isinstance(document.get(key), str):
                return str(document[key])[:_MAX_REASON]
    return text.strip()[:_MAX_REASON]


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None  # an HTTP date: use our own backoff


def _sent(request: httpx.Request) -> SentRequest:
    return SentRequest(
        method=request.method,
        path=request.url.path,
        params=dict(request.url.params),
        headers=dict(request.headers),
        content=request.content,
    )
