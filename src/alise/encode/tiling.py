"""Cutting a raster into overlapping tiles and blending their embeddings back seamlessly.

The UNet halves the resolution ``n`` times, so the raster is seen on a grid of cells of
``multiple = 2**n`` pixels (the model's ``config.multiple``: 8 in the paper, the example below):
it is (virtually) extended by reflection to ``H8 × W8``, the next multiples of 8 (at least 16) —
exactly what encoding the whole raster at once would do. That extended raster is covered by a
regular grid of equal tiles of ``tile × tile`` pixels whose starts advance by ``stride = tile −
overlap``; the last row and column of tiles are shifted back so that they end exactly on the
extended edge. ``tile`` and ``overlap`` are multiples of 8, so **every tile starts on the UNet's
8-pixel grid**: its down-sampled levels line up with those of the whole raster (a tile starting at
an odd offset would see its 2×2 poolings shifted, which no overlap can hide). Every tile has the
same shape (tiles batch together, no thin slivers); a tile's read window is clipped to the raster
and the part beyond the edge is filled by reflection. A raster smaller than ``tile`` along an axis
gets one tile of the extended size along that axis.

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
from alise.model.config import ALISEConfig

#: The paper UNet's size multiple (``ALISEConfig().multiple``), the default of grids built without a model.
UNET_MULTIPLE = ALISEConfig().multiple


@dataclass(frozen=True)
class Tile:
    """One tile of the grid: its index, grid position and window in raster pixels."""

    index: int
    grid_row: int
    grid_col: int
    row_off: int
    col_off: int
    height: int  # the tile the model sees (may reach beyond the raster by < 8 px, filled by reflection)
    width: int
    read_height: int  # the part inside the raster
    read_width: int

    @property
    def window(self) -> tuple[int, int, int, int]:
        """``(row_off, col_off, read_height, read_width)``: the raster pixels to read."""
        return (self.row_off, self.col_off, self.read_height, self.read_width)

    @property
    def name(self) -> str:
        return f"r{self.grid_row:04d}_c{self.grid_col:04d}"


#: Default tile side, and the memory one tile's per-date UNet features may take when the tile
#: size is chosen automatically (the largest activation of a tile: T × D × tile² float32).
DEFAULT_TILE, FEATURE_BUDGET = 256, 1 << 30


def auto_tile(n_dates: int, d_model: int = 64, budget: int = FEATURE_BUDGET,
              size: tuple[int, int] | None = None, overlap: int = 32, multiple: int = UNET_MULTIPLE) -> int:
    """The tile side used when none is given.

    The largest side :data:`DEFAULT_TILE`, lowered in steps of 32 px (not below 64) until one
    tile's features ``T × D × tile² × 4 B`` fit in ``budget`` — so memory stays bounded for long
    series (256 px up to 64 dates, 192 px for 100, 128 px for 256). Given the raster ``size``,
    the side (a multiple of ``multiple``, at most that, at least half of it) that covers the raster with the
    fewest tile pixels: 176 rather than 192 px for a 1024² raster (1.45× instead of 1.72× the area
    encoded, the last tile of a row being shifted back over its neighbour).
    """
    step = max(32, multiple)
    cap = max(DEFAULT_TILE // step * step, 2 * multiple)
    while cap > max(64, 2 * multiple) and n_dates * d_model * cap * cap * 4 > budget:
        cap -= step
    if size is None:
        return cap
    h, w = padded_size(size[0], multiple), padded_size(size[1], multiple)

    def encoded(t: int) -> int:  # pixels of all tiles of the grid
        th, tw = min(t, h), min(t, w)
        return len(axis_starts(h, t, overlap)) * th * len(axis_starts(w, t, overlap)) * tw

    sides = [t for t in range(cap, max(2 * multiple, cap // 2) - 1, -multiple) if t > 2 * overlap] or [cap]
    return min(sides, key=lambda t: (encoded(t), -t))


def validate_tiling(tile: int, overlap: int, multiple: int = UNET_MULTIPLE) -> None:
    """Raise :class:`AliseError` for a tile size or overlap the grid cannot use (``multiple``: the
    UNet's down-sampling factor, 8 in the paper)."""
    m = multiple
    if tile < 2 * m:
        raise AliseError(f"--tile {tile}: must be at least {2 * m} pixels (e.g. --tile 256)")
    if tile % m:
        raise AliseError(f"--tile {tile}: must be a multiple of {m} pixels (the UNet works on {m}-pixel cells); "
                         f"use e.g. --tile {tile - tile % m}")
    if overlap < 0:
        raise AliseError(f"--overlap {overlap}: must be ≥ 0 pixels (e.g. --overlap 32)")
    if overlap % m:
        raise AliseError(f"--overlap {overlap}: must be a multiple of {m} pixels so that every tile starts on the "
                         f"UNet's {m}-pixel grid; use e.g. --overlap {max(m, overlap - overlap % m)}")
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
    multiple: int = UNET_MULTIPLE  # the UNet's down-sampling factor: tiles start on this grid

    def __post_init__(self):
        validate_tiling(self.tile, self.overlap, self.multiple)
        if self.height < 1 or self.width < 1:
            raise AliseError(f"raster of {self.height}×{self.width} pixels has nothing to encode")

    @property
    def padded_shape(self) -> tuple[int, int]:
        """``(H8, W8)``: the raster extended to the UNet's multiple (what a whole-raster encode sees)."""
        return (padded_size(self.height, self.multiple), padded_size(self.width, self.multiple))

    @property
    def tile_shape(self) -> tuple[int, int]:
        """``(h, w)`` shared by every tile (smaller than ``tile`` only for a small raster)."""
        ph, pw = self.padded_shape
        return (min(self.tile, ph), min(self.tile, pw))

    @cached_property
    def row_starts(self) -> list[int]:
        return axis_starts(self.padded_shape[0], self.tile, self.overlap)

    @cached_property
    def col_starts(self) -> list[int]:
        return axis_starts(self.padded_shape[1], self.tile, self.overlap)

    @cached_property
    def _row_weights(self) -> list[np.ndarray]:
        return axis_weights(self.padded_shape[0], self.row_starts, self.tile_shape[0], self.overlap)

    @cached_property
    def _col_weights(self) -> list[np.ndarray]:
        return axis_weights(self.padded_shape[1], self.col_starts, self.tile_shape[1], self.overlap)

    def __len__(self) -> int:
        return len(self.row_starts) * len(self.col_starts)

    @cached_property
    def tiles(self) -> list[Tile]:
        """All tiles in row-major order (``index`` = position in this list)."""
        h, w = self.tile_shape
        out = []
        for i, r in enumerate(self.row_starts):
            for j, c in enumerate(self.col_starts):
                out.append(Tile(len(out), i, j, r, c, h, w, min(h, self.height - r), min(w, self.width - c)))
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


def padded_size(size: int, multiple: int = UNET_MULTIPLE) -> int:
    """``size`` rounded up to a multiple of ``multiple``, and at least two multiples (the UNet's
    reflect padding needs ≥ 2 pixels at its coarsest level)."""
    return max(size + pad_to_multiple(size, multiple), 2 * multiple)
