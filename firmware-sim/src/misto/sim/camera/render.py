"""Drawing the street: 8-bit grayscale frames with numpy, and their PGM (Netpbm P5) encoding.

A static background (pavements, a darker road with a dashed centre line, kerbs, a fixed texture),
scaled by the scene's light (daylight and passing clouds), people as dark ellipses, vehicles as
bright boxes with lighter windows, and fresh sensor noise in every frame.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from misto.sim.camera.scene import LANES, ROAD, ObjectClass, SceneObject

Image = npt.NDArray[np.uint8]
FloatImage = npt.NDArray[np.float32]

PAVEMENT, ROAD_LEVEL, MARKING, KERB = 150.0, 95.0, 205.0, 120.0
PERSON_LEVEL, VEHICLE_LEVEL, WINDOW_LEVEL = 40.0, 215.0, 172.0
NOISE_SD = 3.0


class Renderer:
    def __init__(self, width: int, height: int, *, seed: int) -> None:
        if width < 32 or height < 32:
            raise ValueError(f"frames must be at least 32x32, not {width}x{height}")
        self.width, self.height = width, height
        self._rng = np.random.default_rng(seed)
        self.background = self._background()

    def _background(self) -> FloatImage:
        w, h = self.width, self.height
        ys = np.arange(h, dtype=np.float32)[:, None] / h
        xs = np.arange(w, dtype=np.float32)[None, :] / w
        bg = np.full((h, w), PAVEMENT, dtype=np.float32)
        top, bottom = round(ROAD[0] * h), round(ROAD[1] * h)
        bg[top:bottom] = ROAD_LEVEL
        bg[max(top - 1, 0)] = KERB
        bg[min(bottom, h - 1)] = KERB
        vehicle_lanes = [lane.y for lane in LANES if lane.cls is ObjectClass.VEHICLE]
        middle = round(sum(vehicle_lanes) / len(vehicle_lanes) * h)
        dashes = (np.arange(w) * 10 // w) % 2 == 0
        bg[middle, dashes] = MARKING
        texture = 6 * np.sin(2 * np.pi * (3 * xs + 0.5 * ys)) + 4 * np.sin(2 * np.pi * (7 * ys - 2 * xs))
        bg += texture + self._rng.normal(0.0, 4.0, size=(h, w)).astype(np.float32)
        return bg

    def frame(self, objects: list[SceneObject], t: float, light: float) -> Image:
        """The frame at scene time ``t`` showing ``objects``."""
        img = self.background * np.float32(light)
        for obj in objects:
            self._draw(img, obj, t, light)
        img += self._rng.normal(0.0, NOISE_SD, size=img.shape).astype(np.float32)
        frame: Image = np.clip(img, 0, 255).astype(np.uint8)
        return frame

    def _draw(self, img: FloatImage, obj: SceneObject, t: float, light: float) -> None:
        w, h = self.width, self.height
        ow, oh = max(2, round(obj.shape.width * w)), max(2, round(obj.shape.height * h))
        x0 = round(obj.x(t) * w - ow / 2)
        y0 = round(obj.y * h - oh / 2)
        xa, xb, ya, yb = max(x0, 0), min(x0 + ow, w), max(y0, 0), min(y0 + oh, h)
        if xa >= xb or ya >= yb:
            return
        region = img[ya:yb, xa:xb]
        if obj.cls is ObjectClass.PERSON:
            yy, xx = np.mgrid[0:oh, 0:ow].astype(np.float32)
            inside = ((xx + 0.5 - ow / 2) / (ow / 2)) ** 2 + ((yy + 0.5 - oh / 2) / (oh / 2)) ** 2 <= 1.0
            mask = inside[ya - y0 : yb - y0, xa - x0 : xb - x0]
            region[mask] = PERSON_LEVEL * light
        else:
            region[:] = VEHICLE_LEVEL
            left, right = max(x0 + round(ow * 0.3), 0), min(x0 + round(ow * 0.7), w)
            top, bottom = max(y0 + round(oh * 0.2), 0), min(y0 + round(oh * 0.8), h)
            if left < right and top < bottom:  # (a negative slice end would count from the far edge)
                img[top:bottom, left:right] = WINDOW_LEVEL


def encode_pgm(image: Image) -> bytes:
    """Binary PGM (P5): ``P5\\n<width> <height>\\n255\\n`` then the rows, top first."""
    h, w = image.shape
    return f"P5\n{w} {h}\n255\n".encode("ascii") + np.ascontiguousarray(image, dtype=np.uint8).tobytes()
