"""The background model: what the scene looks like without anything moving in it, and the
foreground mask of each frame against it.

- **Start**: the median of the first :data:`WARMUP_FRAMES` frames (objects passing by during them
  do not stay in it, as a plain average would keep their ghosts).
- **Lighting**: a cloud or the evening changes the whole frame at once; the frame's overall gain
  against the background (the median of their ratio) is divided out before comparing.
- **Foreground**: pixels more than ``threshold`` grey levels from the background, without the
  specks (a pixel needs at least 3 foreground neighbours in its 3x3 neighbourhood).
- **Update**: a running average, ``learning_rate`` per frame on background pixels and a tenth of
  it under objects (something that stops for long, a parked car, becomes background).
- **Disturbance**: when over :data:`DISTURBED_FRACTION` of the frame is foreground (the camera
  moved, a flash), the model starts again from this frame; the frame is reported as disturbed.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from misto.edge.drivers.camera.regions import Mask

Gray = npt.NDArray[np.uint8]
Floats = npt.NDArray[np.float32]

WARMUP_FRAMES = 9
DISTURBED_FRACTION = 0.4
FOREGROUND_SLOWDOWN = 0.1
MIN_NEIGHBOURS = 4  # counting the pixel itself


class BackgroundModel:
    def __init__(self, *, threshold: float, learning_rate: float) -> None:
        self.threshold = np.float32(threshold)
        self.learning_rate = np.float32(learning_rate)
        self.background: Floats | None = None
        self._warmup: list[Gray] = []

    @property
    def warming_up(self) -> bool:
        return self.background is None

    def reset(self) -> None:
        self.background = None
        self._warmup.clear()

    def foreground(self, frame: Gray) -> Mask | None:
        """The frame's foreground mask (and the model updated), or ``None`` while warming up or
        when the frame is disturbed (the model then starts again)."""
        if self.background is None:
            self._warmup.append(frame)
            if len(self._warmup) >= WARMUP_FRAMES:
                self.background = np.median(np.stack(self._warmup), axis=0).astype(np.float32)
                self._warmup.clear()
            return None
        background = self.background
        pixels = frame.astype(np.float32)
        sample = (slice(None, None, 4), slice(None, None, 4))
        gain = np.float32(np.median(pixels[sample] / np.maximum(background[sample], 1.0)))
        raw = np.abs(pixels - background * gain) > self.threshold
        mask = despeckle(raw)
        if mask.mean() > DISTURBED_FRACTION:
            self.reset()
            self._warmup.append(frame)
            return None
        rate = np.where(mask, self.learning_rate * FOREGROUND_SLOWDOWN, self.learning_rate).astype(np.float32)
        background += rate * (pixels - background)
        return mask


def despeckle(mask: Mask) -> Mask:
    """``mask`` without pixels that have fewer than ``MIN_NEIGHBOURS`` set in their 3x3 neighbourhood."""
    h, w = mask.shape
    padded = np.zeros((h + 2, w + 2), dtype=np.uint8)
    padded[1:-1, 1:-1] = mask
    count = np.zeros((h, w), dtype=np.uint8)
    for dy in range(3):
        for dx in range(3):
            count += padded[dy : dy + h, dx : dx + w]
    result: Mask = mask & (count >= MIN_NEIGHBOURS)
    return result
