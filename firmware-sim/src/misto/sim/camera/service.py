"""Serving the synthetic camera over HTTP:

- ``GET /frame.pgm``: the current frame, binary PGM (``image/x-portable-graymap``), with headers
  ``X-Frame-Time`` (scene seconds: the capture time) and ``X-Frame-Seq``;
- ``GET /truth``: objects present and crossings so far, by class and direction (JSON);
- ``GET /``: what is served (size, counting line, mode).

Scene time runs with the clock (``speed`` times real time), or, with ``step``, advances by exactly
``step`` seconds per frame served: a camera that never drops a frame however slowly it is read,
which makes counting tests independent of machine load.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from misto.sim.camera.render import Renderer, encode_pgm
from misto.sim.camera.scene import LINE_X, Scene
from misto.sim.http_lite import HttpError, HttpServer, Request, Response, json_response
from misto.sim.state_file import utc_text

TITLE = "Misto street camera (synthetic)"


class CameraService:
    def __init__(
        self,
        *,
        host: str,
        port: int,
        width: int = 160,
        height: int = 120,
        seed: int = 0,
        limit: int | None = None,
        step: float | None = None,
        start: datetime | None = None,
        speed: float = 1.0,
    ) -> None:
        if step is not None and not step > 0:
            raise ValueError(f"step must be positive, got {step}")
        if not speed > 0:
            raise ValueError(f"speed must be positive, got {speed}")
        self.scene = Scene(seed=seed, start=start, limit=limit)
        self.renderer = Renderer(width, height, seed=seed)
        self.step = step
        self.speed = speed
        self.frames = 0
        self.server = HttpServer(host=host, port=port, handler=self.handle)
        self._t0: float | None = None

    @property
    def url(self) -> str:
        host = f"[{self.server.host}]" if ":" in self.server.host else self.server.host
        return f"http://{host}:{self.server.port}/frame.pgm"

    def serving_line(self) -> str:
        size = f"{self.renderer.width}x{self.renderer.height}"
        return f'serving camera "{TITLE}" on {self.url} ({size}, truth at /truth)'

    async def start(self) -> None:
        self._t0 = asyncio.get_running_loop().time()
        await self.server.start()

    async def close(self) -> None:
        await self.server.close()

    def now(self) -> float:
        """Scene seconds: of the last frame served (stepped), or since start times the speed."""
        if self.step is not None:
            return max(self.frames - 1, 0) * self.step
        assert self._t0 is not None, "not started"
        return (asyncio.get_running_loop().time() - self._t0) * self.speed

    def frame(self) -> tuple[bytes, float]:
        t = self.frames * self.step if self.step is not None else self.now()
        self.frames += 1
        image = self.renderer.frame(self.scene.visible(t), t, self.scene.light(t))
        return encode_pgm(image), t

    def info(self) -> dict[str, Any]:
        at = self.scene.at(self.now())
        return {
            "title": TITLE,
            "width": self.renderer.width,
            "height": self.renderer.height,
            "line": {"start": [LINE_X, 0.0], "end": [LINE_X, 1.0]},
            "mode": "stepped" if self.step is not None else "realtime",
            "step": self.step,
            "speed": self.speed,
            "frames": self.frames,
            "at": utc_text(at) if at else None,
        }

    async def handle(self, request: Request) -> Response:
        if request.method != "GET":
            raise HttpError(405, "use GET")
        match request.path:
            case "/frame.pgm":
                body, t = self.frame()
                headers = {"X-Frame-Time": f"{t:.4f}", "X-Frame-Seq": str(self.frames - 1)}
                return Response(200, body, "image/x-portable-graymap", headers)
            case "/truth":
                return json_response(self.scene.truth(self.now()))
            case "/":
                return json_response(self.info())
        raise HttpError(404, "routes: GET /frame.pgm, GET /truth, GET /")
