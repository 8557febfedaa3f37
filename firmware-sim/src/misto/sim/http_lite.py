"""A minimal HTTP/1.1 server on asyncio streams, for the simulator's camera frames and control
endpoints: one request per connection (``Connection: close``), bodies by ``Content-Length``,
no dependency beyond the standard library. Not a general web server: loopback tools only."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from misto.sim.errors import ServeError

log = logging.getLogger(__name__)

MAX_HEADER_LINE = 8192
MAX_HEADERS = 100
MAX_BODY = 1 << 20
REQUEST_TIMEOUT = 10.0
REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    413: "Payload Too Large",
    500: "Internal Server Error",
}


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        """The body as JSON; :class:`HttpError` 400 if it is not."""
        try:
            return json.loads(self.body or b"null")
        except ValueError as exc:
            raise HttpError(400, f"body is not JSON: {exc}") from None


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    body: bytes
    content_type: str = "application/octet-stream"
    headers: Mapping[str, str] = field(default_factory=dict)


class HttpError(Exception):
    """Raised by a handler to answer with ``status`` and a JSON ``{"error": message}``."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        self.message = message
        super().__init__(f"{status}: {message}")


def json_response(document: Any, status: int = 200) -> Response:
    body = json.dumps(document, indent=2, allow_nan=False).encode() + b"\n"
    return Response(status, body, "application/json")


Handler = Callable[[Request], Awaitable[Response]]


class HttpServer:
    """Serves ``handler`` on ``host:port`` (port 0: the OS picks; see :attr:`port` once started)."""

    def __init__(self, *, host: str, port: int, handler: Handler) -> None:
        self.host = host
        self.requested_port = port
        self.handler = handler
        self.requests = 0
        self.errors = 0
        self._server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        assert self._server is not None, "not started"
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def start(self) -> None:
        try:
            self._server = await asyncio.start_server(self._serve, self.host, self.requested_port)
        except OSError as exc:
            raise ServeError(self.host, self.requested_port, exc.strerror or str(exc)) from exc

    async def close(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
            await server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT):
                try:
                    request = await _read_request(reader)
                    response = await self.handler(request)
                except HttpError as exc:
                    response = json_response({"error": exc.message}, exc.status)
                except Exception:
                    self.errors += 1
                    log.exception("request handler failed")
                    response = json_response({"error": "internal error (see the simulator's log)"}, 500)
                self.requests += 1
                writer.write(_head(response) + response.body)
                await writer.drain()
        except (TimeoutError, ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass  # the client went away or never finished its request
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()


async def _read_request(reader: asyncio.StreamReader) -> Request:
    line = await reader.readuntil(b"\r\n")
    try:
        method, target, version = line.decode("latin-1").split()
    except ValueError:
        raise HttpError(400, "malformed request line") from None
    if not version.startswith("HTTP/1."):
        raise HttpError(400, f"unsupported version {version}")
    headers: dict[str, str] = {}
    for _ in range(MAX_HEADERS):
        raw = await reader.readuntil(b"\r\n")
        if len(raw) > MAX_HEADER_LINE:
            raise HttpError(400, "header line too long")
        if raw == b"\r\n":
            break
        name, sep, value = raw.decode("latin-1").partition(":")
        if not sep:
            raise HttpError(400, "malformed header")
        headers[name.strip().lower()] = value.strip()
    else:
        raise HttpError(400, "too many headers")
    length = int(headers.get("content-length", "0") or 0)
    if length > MAX_BODY:
        raise HttpError(413, f"body over {MAX_BODY} bytes")
    body = await reader.readexactly(length) if length else b""
    parts = urlsplit(target)
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    return Request(method.upper(), parts.path, query, headers, body)


def _head(response: Response) -> bytes:
    reason = REASONS.get(response.status, "Unknown")
    lines = [
        f"HTTP/1.1 {response.status} {reason}",
        f"Content-Type: {response.content_type}",
        f"Content-Length: {len(response.body)}",
        "Cache-Control: no-store",
        "Connection: close",
        *(f"{k}: {v}" for k, v in response.headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
