"""Connected regions of a foreground mask (8-connectivity), without scipy.

The mask is run-length encoded row by row with numpy (each run: row, first column, end column),
runs that touch between consecutive rows are joined with a union-find, and each region's area,
centroid and bounding box are summed from its runs. The work in Python is proportional to the
number of runs (a few per object per row), not to the number of pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Mask = npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class Region:
    area: int
    x: float
    """Centroid column (pixels, 0 = left)."""
    y: float
    """Centroid row (pixels, 0 = top)."""
    left: int
    top: int
    right: int
    """Exclusive."""
    bottom: int
    """Exclusive."""


def runs(mask: Mask) -> tuple[list[int], list[int], list[int]]:
    """Rows, start columns and end columns (exclusive) of the horizontal runs of ``mask``, in row order."""
    h, w = mask.shape
    padded = np.zeros((h, w + 2), dtype=np.int8)
    padded[:, 1:-1] = mask
    edges = np.diff(padded, axis=1)
    rows, starts = np.nonzero(edges == 1)
    _, ends = np.nonzero(edges == -1)
    return rows.tolist(), starts.tolist(), ends.tolist()


def regions(mask: Mask, *, min_area: int = 1) -> list[Region]:
    """The 8-connected regions of ``mask`` with at least ``min_area`` pixels, largest first."""
    rows, starts, ends = runs(mask)
    n = len(rows)
    parent = list(range(n))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    # Runs of row r occupy span[r] = [first, last) of the run lists; join each run with the
    # touching runs of the next row.
    span: dict[int, list[int]] = {}
    for i, r in enumerate(rows):
        span.setdefault(r, [i, i])[1] = i + 1
    for r, (a_first, a_end) in span.items():
        below = span.get(r + 1)
        if below is None:
            continue
        i, (j, b_end) = a_first, below
        while i < a_end and j < b_end:
            if starts[j] <= ends[i] and starts[i] <= ends[j]:  # overlapping or diagonal neighbours
                ri, rj = root(i), root(j)
                if ri != rj:
                    parent[rj] = ri
            if ends[i] < ends[j]:
                i += 1
            else:
                j += 1
    sums: dict[int, list[float]] = {}
    for i in range(n):
        r, s, e = rows[i], starts[i], ends[i]
        length = e - s
        acc = sums.get(root(i))
        if acc is None:
            sums[root(i)] = [length, (s + e - 1) * length / 2, r * length, s, r, e, r + 1]
            continue
        acc[0] += length
        acc[1] += (s + e - 1) * length / 2
        acc[2] += r * length
        acc[3] = min(acc[3], s)
        acc[5] = max(acc[5], e)
        acc[6] = r + 1
    found = [
        Region(int(a), x / a, y / a, int(left), int(top), int(right), int(bottom))
        for a, x, y, left, top, right, bottom in sums.values()
        if a >= min_area
    ]
    return sorted(found, key=lambda region: -region.area)
