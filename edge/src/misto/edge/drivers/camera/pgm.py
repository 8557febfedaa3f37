"""Decoding binary PGM (Netpbm P5) frames into numpy arrays.

A P5 file is a short ASCII header (``P5``, width, height, maximum grey value, separated by
whitespace, with ``#`` comments allowed) followed by one binary byte per pixel (two bytes, most
significant first, when the maximum is above 255: scaled down to 8 bits here).
"""

from __future__ import annotations

import re

import numpy as np
import numpy.typing as npt

Gray = npt.NDArray[np.uint8]
MAX_SIDE = 8192
_HEADER = re.compile(rb"P5(?:\s+|#[^\n]*\n)+(\d+)(?:\s+|#[^\n]*\n)+(\d+)(?:\s+|#[^\n]*\n)+(\d+)\s")


class FrameFormatError(ValueError):
    """The bytes are not a usable PGM frame (the reason says why, without quoting the data)."""


def decode_pgm(data: bytes) -> Gray:
    """The frame as a ``(height, width)`` array of 8-bit grey levels."""
    m = _HEADER.match(data, 0, 256)
    if m is None:
        raise FrameFormatError(f"not a binary PGM (P5) image ({len(data)} bytes)")
    width, height, maxval = (int(g) for g in m.groups())
    if not (0 < width <= MAX_SIDE and 0 < height <= MAX_SIDE):
        raise FrameFormatError(f"frame size {width}x{height} is outside 1..{MAX_SIDE}")
    if not 0 < maxval < 65536:
        raise FrameFormatError(f"maximum grey value {maxval} is outside 1..65535")
    wide = maxval > 255
    expected = width * height * (2 if wide else 1)
    raster = data[m.end() :]
    if len(raster) < expected:
        raise FrameFormatError(f"frame {width}x{height} needs {expected} bytes of pixels, got {len(raster)}")
    if wide:
        pixels = np.frombuffer(raster, dtype=">u2", count=width * height).astype(np.uint32) * 255 // maxval
    else:
        pixels = np.frombuffer(raster, dtype=np.uint8, count=width * height)
        if maxval != 255:
            pixels = pixels.astype(np.uint32) * 255 // maxval
    return np.asarray(pixels, dtype=np.uint8).reshape(height, width)
