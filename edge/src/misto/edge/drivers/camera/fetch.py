"""Fetching one frame from a camera's snapshot URL: HTTP/1.1 GET on asyncio streams (no HTTP
library on the gateway), one connection per frame, bounded in time and size.

Errors become edge errors: refused or unreachable -> :class:`DeviceConnectionError`, no complete
answer in time -> :class:`DeviceTimeout`, an error status -> :class:`DeviceRejected` (5xx, 408 and
429 retryable), anything malformed -> :class:`DriverError`. Error messages name the URL, the
status and sizes, never the body: frames are images and stay out of logs.
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

from misto.edge.errors import DeviceConnectionError, DeviceRejected, DeviceTimeout, DriverError

MAX_FRAME_BYTES = 16 * 1024 * 1024
MAX_HEADER_BYTES = 16 * 1024
RETRYABLE_STATUSES = frozenset({408, 429})


@dataclass(frozen=True, slots=True)
class Fetched:
    body: bytes
    headers: dict[str, str]


class FrameSource:
    """GETs ``url`` (http or https) for each frame."""

    def __init__(self, *, device_id: str, url: str, timeout: float, max_bytes: int = MAX_FRAME_BYTES) -> None:
        parts = urlsplit(url)
        self.device_id = device_id
        self.url = url
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.tls = parts.scheme == "https"
        self.host = parts.hostname or ""
        self.port = parts.port or (443 if self.tls else 80)
        target = parts.path or "/"
        if parts.query:
            target += f"?{parts.query}"
        host_header = parts.netloc.rpartition("@")[2]
        self._request = (
            f"GET {target} HTTP/1.1\r\nHost: {host_header}\r\nUser-Agent: misto-edge\r\n"
            "Accept: image/x-portable-graymap\r\nConnection: close\r\n\r\n"
        ).encode("latin-1")
        self._ssl: ssl.SSLContext | None = ssl.create_default_context() if self.tls else None

    async def fetch(self) -> Fetched:
        try:
            async with asyncio.timeout(self.timeout):
                reader, writer = await asyncio.open_connection(
                    self.host, self.port, ssl=self._ssl, limit=MAX_HEADER_BYTES
                )
                try:
                    writer.write(self._request)
                    await writer.drain()
                    return await self._response(reader)
                finally:
                    writer.close()
        except TimeoutError:
            raise DeviceTimeout(
                self.device_id, f"GET {self.url}: no complete answer within {self.timeout:g}s"
            ) from None
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
            raise DriverError(
                self.device_id, f"GET {self.url}: malformed answer ({type(exc).__name__})", retryable=True
            ) from None
        except ssl.SSLError as exc:
            raise DeviceConnectionError(self.device_id, f"GET {self.url}: TLS failed: {exc.reason}") from None
        except OSError as exc:
            raise DeviceConnectionError(self.device_id, f"GET {self.url}: {exc.strerror or exc}") from None

    async def _response(self, reader: asyncio.StreamReader) -> Fetched:
        status_line = (await reader.readuntil(b"\r\n")).decode("latin-1").split(" ", 2)
        if len(status_line) < 2 or not status_line[0].startswith("HTTP/1.") or not status_line[1].isdigit():
            raise DriverError(self.device_id, f"GET {self.url}: not an HTTP answer", retryable=True)
        status = int(status_line[1])
        headers: dict[str, str] = {}
        while (line := await reader.readuntil(b"\r\n")) != b"\r\n":
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        if status != 200:
            retryable = status >= 500 or status in RETRYABLE_STATUSES
            raise DeviceRejected(self.device_id, f"GET {self.url}: HTTP {status}", code=status, retryable=retryable)
        if headers.get("transfer-encoding", "").lower() == "chunked":
            body = await self._chunked(reader)
        elif "content-length" in headers:
            length = int(headers["content-length"])
            self._check_size(length)
            body = await reader.readexactly(length)
        else:
            body = await reader.read(self.max_bytes + 1)
            while chunk := await reader.read(self.max_bytes + 1 - len(body)):
                body += chunk
            self._check_size(len(body))
        return Fetched(body, headers)

    async def _chunked(self, reader: asyncio.StreamReader) -> bytes:
        parts: list[bytes] = []
        total = 0
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";", 1)[0].strip(), 16)
            if size == 0:
                return b"".join(parts)
            total += size
            self._check_size(total)
            parts.append(await reader.readexactly(size))
            await reader.readexactly(2)

    def _check_size(self, size: int) -> None:
        if size > self.max_bytes:
            raise DriverError(
                self.device_id, f"GET {self.url}: frame of {size} bytes is over {self.max_bytes}", retryable=False
            )
