"""``misto-sim camera``: serve a synthetic street camera over HTTP. numpy is imported only when
the command runs, so the rest of ``misto-sim`` works without it."""

from __future__ import annotations

import asyncio
import re
import signal
from typing import Annotated

import typer

from misto.sim.command_options import fail, host_port, make_clock, pick_seed, setup_logging
from misto.sim.errors import SimError


async def _serve(options: dict[str, object]) -> None:
    from misto.sim.camera.service import CameraService

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    camera = CameraService(**options)  # type: ignore[arg-type]
    try:
        await camera.start()
        print(camera.serving_line(), flush=True)
        await stop.wait()
    finally:
        await camera.close()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def camera_command(  # noqa: PLR0917 - typer maps parameters to options
    listen: Annotated[str, typer.Option(metavar="HOST:PORT", help="Where to serve HTTP (port 0: any free port).")],
    size: Annotated[str, typer.Option(metavar="WxH", help="Frame size in pixels.")] = "160x120",
    seed: Annotated[int | None, typer.Option(help="Seed of the scene (default: random).")] = None,
    objects: Annotated[
        int | None, typer.Option(min=1, metavar="N", help="Stop after N objects (then the street stays empty).")
    ] = None,
    step: Annotated[
        float | None,
        typer.Option(min=0.001, metavar="SECONDS", help="Advance scene time by this much per frame served."),
    ] = None,
    start: Annotated[str | None, typer.Option(metavar="TIME", help="Scene start (ISO 8601): time of day.")] = None,
    speed: Annotated[float, typer.Option(min=0.001, metavar="FACTOR", help="Scene speed in real-time mode.")] = 1.0,
    log_level: Annotated[str, typer.Option(metavar="LEVEL", help="Logging level on stderr.")] = "warning",
) -> None:
    """Serve a synthetic street camera (PGM frames and ground truth) until SIGINT or SIGTERM."""
    host, port = host_port("--listen", listen)
    m = re.fullmatch(r"(\d{2,5})x(\d{2,5})", size)
    if m is None or not (32 <= int(m[1]) <= 4096 and 32 <= int(m[2]) <= 4096):
        raise fail(f"--size {size!r}: expected WIDTHxHEIGHT, each 32..4096, e.g. 160x120")
    setup_logging(log_level)
    try:
        import numpy  # noqa: F401 - checked here for a clear message
    except ImportError:
        raise fail("the camera needs numpy: pip install numpy", code=1) from None
    options: dict[str, object] = {
        "host": host,
        "port": port,
        "width": int(m[1]),
        "height": int(m[2]),
        "seed": pick_seed(seed),
        "limit": objects,
        "step": step,
        "start": make_clock(start, 1.0)(),
        "speed": speed,
    }
    try:
        asyncio.run(_serve(options))
    except SimError as exc:
        raise fail(str(exc), code=1) from None
