"""Writing many lines to InfluxDB durably: chunks of at most ``batch_points`` lines, posted
concurrently (at most ``max_concurrent_writes`` at once), each retried until the call's deadline.

A chunk InfluxDB refuses with 400 (a line it cannot parse, a field type conflict, a point beyond
the retention policy) is split in halves until the refused lines are alone: those are returned to
the caller (to dead-letter) and every other line is written. Writing a good line again is
harmless: the same series and timestamp overwrite, never add.

Also the lines the store writes besides readings and :mod:`measurements`: ``misto_dead_letters``
(nanosecond timestamps kept distinct by :class:`NanoClock`) and ``gateway_seen`` (when the cloud
last heard from a gateway, and how many messages).
"""

from __future__ import annotations

import asyncio
import base64
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from misto.cloud.errors import StoreError
from misto.cloud.storage.base import DeadLetter, to_ms
from misto.cloud.storage.influx_http import InfluxHttp, InfluxRefusedError
from misto.cloud.storage.line_protocol import line
from misto.cloud.storage.measurements import DEAD_LETTERS

GATEWAY_SEEN: Final = "gateway_seen"
NO_GATEWAY: Final = "-"  # the gateway tag of a dead letter whose gateway is unknown
_NS_PER_MS: Final = 1_000_000


@dataclass(frozen=True, slots=True)
class RefusedLine:
    index: int  # position in the lines given to :func:`write_lines`
    reason: str


async def write_lines(
    http: InfluxHttp,
    lines: Sequence[str],
    *,
    precision: str,
    batch_points: int,
    limit: asyncio.Semaphore,
    deadline: float,
    rp: str,
    operation: str = "write",
) -> list[RefusedLine]:
    """Write ``lines`` into retention policy ``rp``; return the ones InfluxDB refused for good.
    Raises :class:`StoreError`."""
    refused: list[RefusedLine] = []

    async def post(start: int, end: int) -> None:
        try:
            async with limit:
                await http.write(lines[start:end], precision=precision, deadline=deadline, operation=operation, rp=rp)
        except InfluxRefusedError as exc:
            if end - start == 1:
                refused.append(RefusedLine(start, exc.reason))
                return
            middle = (start + end) // 2
            await post(start, middle)
            await post(middle, end)

    chunks = [(i, min(i + batch_points, len(lines))) for i in range(0, len(lines), batch_points)]
    if len(chunks) == 1:
        await post(*chunks[0])
    elif chunks:
        try:
            async with asyncio.TaskGroup() as group:
                for start, end in chunks:
                    group.create_task(post(start, end))
        except* StoreError as errors:
            raise errors.exceptions[0] from None
    refused.sort(key=lambda r: r.index)
    return refused


class NanoClock:
    """Nanosecond timestamps in a given millisecond that differ from call to call (a counter in the
    sub-millisecond digits), so that two dead letters of one gateway and kind received in the same
    millisecond stay two points. The counter starts at random: another process rarely collides."""

    def __init__(self) -> None:
        self._counter = random.randrange(_NS_PER_MS)  # noqa: S311 - not a secret

    def at(self, ms: int) -> int:
        self._counter = (self._counter + 1) % _NS_PER_MS
        return ms * _NS_PER_MS + self._counter


def dead_letter_line(letter: DeadLetter, ns: int) -> str:
    fields: dict[str, float | int | bool | str] = {
        "topic": letter.topic,
        "reason": letter.reason,
        "payload": base64.b64encode(letter.payload).decode(),
        "seq": ns % _NS_PER_MS,
    }
    if letter.field is not None:
        fields["field"] = letter.field
    if letter.message_id is not None:
        fields["message_id"] = letter.message_id
    tags = {"gateway": letter.gateway or NO_GATEWAY, "kind": letter.kind.value}
    return line(DEAD_LETTERS, tags, fields, ns)


def seen_line(gateway: str, messages: int, ns: int) -> str:
    return line(GATEWAY_SEEN, {"gateway": gateway}, {"messages": messages}, ns)


def letter_ns(clock: NanoClock, letter: DeadLetter) -> int:
    return clock.at(to_ms(letter.received_at))
