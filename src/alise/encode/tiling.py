"""Cutting a raster into overlapping tiles and blending their embeddings back seamlessly.

A raster of ``H × W`` pixels is covered by a regular grid of equal tiles of ``tile × tile`` pixels
whose starts advance by ``stride = tile − overlap``; the last row and column of tiles are shifted
back so that they end exactly on the raster edge (every tile has the same shape, so tiles batch
together, and no tile is a thin sliver). A raster smaller than ``tile`` along an axis gets one tile
of the raster's size along that axis.

Blending. Each tile's output is multiplied by a separable weight ``w(y, x) = a(y) · b(x)`` and the
weighted outputs of all tiles are summed, divided by the sum of the weights. Along one axis the
weight of a tile is 1 in its interior and on sides that touch the raster edge; on a side that
touches a neighbour tile it is 0 for the first ``margin = overlap // 4`` pixels (where the tile's
output is spoiled by its border padding), then rises as a raised cosine up to 1 at ``overlap −
margin`` pixels from the edge. Because the grid is a product of row starts and column starts, the
sum of weights is itself separable, so a tile's *normalised* weight ``a(y)/Σa · b(x)/Σb`` can be
computed from the grid alone, without seeing any other tile. The final value of a pixel is then
the plain sum of the ≤ 4 normalised, weighted tile outputs that cover it (``overlap < tile / 2``
guarantees at most two tiles per axis).

For a model whose output at a pixel depends only on inputs within ``margin`` pixels (its receptive
radius), the blended result equals the whole-raster result exactly; for a real U-Net the
difference is small and measured in the tests (see ``docs/encode.md``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from alise.errors import AliseError

#: The UNet halves the resolution three times: tile shapes fed to it must be multiples of this.
UNET_MULTIPLE = 8


@dataclass(frozen=True)
class Tile:
    """One tile of the grid: its index, grid position and window in raster pixels."""

    index: int
    grid_row: int
    grid_col: int
    row_off: int
    col_off: int
    height: int
    width: int

    @property
    def window(self) -> tuple[int, int, int, int]:
        """``(row_off, col_off, height, width)`` in raster pixels."""
        return (self.row_off, self.col_off, self.height, self.width)

    @property
    def name(self) -> str:
        return f"r{self.grid_row:04d}_c{self.grid_col:04d}"


def validate_tiling(tile: int, overlap: int) -> None:
    """Raise :class:`AliseError` for a tile size or overlap the grid cannot use."""
    if tile < 2 * UNET_MULTIPLE:
        raise AliseError(f"--tile {tile}: must be at least {2 * UNET_MULTIPLE} pixels (e.g. --tile 256)")
    if overlap < 0:
        raise AliseError(f"--overlap {overlap}: must be ≥ 0 pixels (e.g. --overlap 32)")
    if 2 * overlap >= tile:
        raise AliseError(f"--overlap {overlap}: must be less than half the tile ({tile} px); use e.g. --overlap {tile // 8}")


def axis_starts(size: int, tile: int, overlap: int) -> list[int]:
    """Tile starts along one axis of ``size`` pixels; the last tile is shifted to end on the edge."""
    if size <= tile:
        return [0]
    stride = tile - overlap
    n = math.ceil((size - tile) / stride) + 1
    starts = [i * stride for i in range(n - 1)]
    starts.append(size - tile)
    return starts


def raised_cosine_ramp(length: int, overlap: int) -> np.ndarray:
    """Weights ``(length,)`` of the first ``length`` pixels from a shared edge (0 → 1).

    0 for the first ``overlap // 4`` pixels, then a raised cosine reaching 1 at ``overlap −
    overlap // 4`` pixels, 1 beyond.
    """
    d = np.arange(length, dtype=np.float64)
    if overlap <= 0:
        return np.ones(length)
    margin = overlap // 4
    ramp = overlap - 2 * margin  # ≥ 1 whenever overlap ≥ 1
    t = np.clip((d - margin + 0.5) / ramp, 0.0, 1.0)
    return 0.5 - 0.5 * np.cos(np.pi * t)


def axis_weights(size: int, starts: list[int], length: int, overlap: int) -> list[np.ndarray]:
    """Normalised blending weights along one axis: one ``(length,)`` array per start.

    For every pixel of the axis the weights of the tiles covering it sum to 1.
    """
    raw = []
    for s in starts:
        w = np.ones(length)
        if s > 0:  # a neighbour on the low side
            w = w * raised_cosine_ramp(length, overlap)
        if s + length < size:  # a neighbour on the high side
            w = w * raised_cosine_ramp(length, overlap)[::-1]
        raw.append(w)
    total = np.zeros(size)
    for s, w in zip(starts, raw):
        total[s : s + length] += w
    if np.any(total <= 0):  # pragma: no cover - guaranteed by validate_tiling and axis_starts
        raise AssertionError("tile grid leaves pixels without weight")
    return [w / total[s : s + length] for s, w in zip(starts, raw)]


@dataclass(frozen=True)
class TileGrid:
    """The tiles covering an ``height × width`` raster (see the module docstring).

    Attributes:
        height, width: raster size in pixels.
        tile: nominal tile size in pixels.
        overlap: nominal overlap between neighbouring tiles in pixels.
    """

    height: int
    width: int
    tile: int = 256
    overlap: int = 32

    def __post_init__(self):
        validate_tiling(self.tile, self.overlap)
        if self.height < 1 or self.width < 1:
            raise AliseError(f"raster of {self.height}×{self.width} pixels has nothing to encode")

    @property
    def tile_shape(self) -> tuple[int, int]:
        """``(h, w)`` shared by every tile (smaller than ``tile`` only for a small raster)."""
        return (min(self.tile, self.height), min(self.tile, self.width))

    @cached_property
    def row_starts(self) -> list[int]:
        return axis_starts(self.height, self.tile, self.overlap)

    @cached_property
    def col_starts(self) -> list[int]:
        return axis_starts(self.width, self.tile, self.overlap)

    @cached_property
    def _row_weights(self) -> list[np.ndarray]:
        return axis_weights(self.height, self.row_starts, self.tile_shape[0], self.overlap)

    @cached_property
    def _col_weights(self) -> list[np.ndarray]:
        return axis_weights(self.width, self.col_starts, self.tile_shape[1], self.overlap)

    def __len__(self) -> int:
        return len(self.row_starts) * len(self.col_starts)

    @cached_property
    def tiles(self) -> list[Tile]:
        """All tiles in row-major order (``index`` = position in this list)."""
        h, w = self.tile_shape
        out = []
        for i, r in enumerate(self.row_starts):
            for j, c in enumerate(self.col_starts):
                out.append(Tile(len(out), i, j, r, c, h, w))
        return out

    def weight(self, t: Tile) -> np.ndarray:
        """Normalised blending weight ``(h, w)`` float32 of tile ``t`` (sums to 1 over tiles)."""
        return np.outer(self._row_weights[t.grid_row], self._col_weights[t.grid_col]).astype(np.float32)

    def tiles_in(self, row_off: int, col_off: int, height: int, width: int) -> list[Tile]:
        """Tiles intersecting a raster window, in ``index`` order (the fixed summation order)."""
        th, tw = self.tile_shape
        rows = [i for i, r in enumerate(self.row_starts) if r < row_off + height and r + th > row_off]
        cols = [j for j, c in enumerate(self.col_starts) if c < col_off + width and c + tw > col_off]
        n_cols = len(self.col_starts)
        return [self.tiles[i * n_cols + j] for i in rows for j in cols]


def pad_to_multiple(size: int, multiple: int = UNET_MULTIPLE) -> int:
    """Pixels to add so that ``size`` becomes a multiple of ``multiple``."""
    return (-size) % multiple
