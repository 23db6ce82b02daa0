"""Raster-wide GroupNorm statistics: seamless tiles for GroupNorm models.

The paper's UNet normalises its encoder activations with GroupNorm(4) ([P] Table VIII): every
frame is normalised by the mean and variance of *its own pixels*. Applied tile by tile, each tile
uses other statistics than its neighbours and than the whole raster, and the blended embedding
shows seams (measured: 4 % of the mean |value| between 64-px tiles of a 96-px raster). No overlap
fixes that, because the statistics are global to the tile.

What ``alise encode`` does instead (``--group-norm raster``, the default): estimate, once per
raster, the statistics GroupNorm would compute on the whole raster — for every GroupNorm layer and
every date, the mean and variance of each channel group — and give these same numbers to every
tile (:meth:`alise.model.ALISE.encode` ``group_stats``). The UNet is then one fixed function of
each pixel's neighbourhood, tiles blend like those of a BatchNorm model, and when the estimate
covers the whole raster the result is the whole-raster encoding (tests/encode).

Estimation (:func:`estimate`). Layer ``l``'s statistics are those of its input, which depends on
the statistics of the layers before it, so the layers are estimated in order: pass ``l`` runs the
UNet on the sample windows with layers ``< l`` frozen to their raster statistics, sums the input
of layer ``l`` over each window's counted pixels (its centre, or all of it for a whole-raster
window; down-sampled levels take the same region, which sits on the UNet's grid) and stops
there. Sums are accumulated in float64 per (date, group).
Cost: the UNet's encoder prefix once per GroupNorm layer (11 in the paper configuration) on the
sample — measured about 2× encoding the same pixels. A raster no larger than ``--stats-windows N``
(default 16) windows of 64 × 64 pixels (the pre-training patch size) is taken as one window:
exact whole-raster statistics. A larger one is sampled through N such windows centred on tiles spread
evenly over the grid (:func:`stats_samples`): a fixed cost of about two 256² tile encodings,
whatever the raster. The output is seamless either way (every tile uses the same numbers); only
the statistics are then an estimate.

``--group-norm tile`` keeps the paper's per-tile behaviour (each tile normalised by itself).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from alise.encode.tiling import Tile, TileGrid
from alise.errors import AliseError
from alise.outputs import atomic_path

MODES = ("raster", "tile")
STATS_FILE = "groupnorm.safetensors"


class _Stop(Exception):
    """Raised by the observer once the layer being estimated has been seen (the rest is not needed)."""


@dataclass
class GroupStats:
    """Per GroupNorm layer, the mean and ``1/sqrt(var + eps)`` of every (date, group): ``(T, G)`` float32."""

    mean: list[Tensor]
    rstd: list[Tensor]
    n_tiles: int

    def pairs(self, device: torch.device | str = "cpu") -> list[tuple[Tensor, Tensor]]:
        """``[(mean (T, G), rstd (T, G)), ...]`` as :meth:`alise.model.ALISE.encode` takes them."""
        return [(m.to(device), r.to(device)) for m, r in zip(self.mean, self.rstd)]

    def save(self, path: str | Path) -> None:
        """Write the statistics to ``path`` (safetensors) atomically."""
        from safetensors.torch import save_file

        tensors = {f"mean.{i:02d}": m.contiguous() for i, m in enumerate(self.mean)}
        tensors |= {f"rstd.{i:02d}": r.contiguous() for i, r in enumerate(self.rstd)}
        with atomic_path(path) as tmp:
            save_file(tensors, str(tmp), metadata={"format": "alise-groupnorm-stats", "n_tiles": str(self.n_tiles)})

    @classmethod
    def load(cls, path: str | Path, n_layers: int, n_dates: int) -> "GroupStats":
        """Read statistics written by :meth:`save`; checks they fit ``n_layers`` layers and ``n_dates`` dates."""
        from safetensors import safe_open

        try:
            with safe_open(str(path), "pt") as f:
                meta = f.metadata() or {}
                mean = [f.get_tensor(f"mean.{i:02d}") for i in range(n_layers)]
                rstd = [f.get_tensor(f"rstd.{i:02d}") for i in range(n_layers)]
        except Exception as e:  # truncated file, missing tensor, not safetensors
            raise AliseError(f"{path}: unreadable GroupNorm statistics ({e}); delete it to estimate them again") from None
        if meta.get("format") != "alise-groupnorm-stats" or any(m.shape[0] != n_dates for m in mean):
            raise AliseError(f"{path}: GroupNorm statistics for another model or date list; delete it to re-estimate")
        if not all(bool(torch.isfinite(t).all()) for t in mean + rstd):
            raise AliseError(f"{path}: GroupNorm statistics contain NaN or infinity; delete it to re-estimate")
        return cls(mean, rstd, int(meta.get("n_tiles", 0)))


def sample_indices(n_tiles: int, n_sample: int) -> list[int]:
    """``n_sample`` tile indices spread evenly over ``0 .. n_tiles - 1`` (all of them if fewer)."""
    if n_sample >= n_tiles:
        return list(range(n_tiles))
    return sorted({int(round(v)) for v in np.linspace(0, n_tiles - 1, n_sample)})


def estimate(unet, samples: Iterable[tuple[Tensor, tuple[slice, slice]]], n_samples: int,
             chunk_frames: int = 8, progress: Callable[[int], None] | None = None) -> GroupStats:
    """Raster-wide statistics of every GroupNorm layer of ``unet`` (module docstring).

    Args:
        unet: a :class:`alise.model.nn.unet.SpatialSpectralEncoder` in eval mode, on its device.
        samples: re-iterable of ``(x (T, C, h, w), (rows, cols))``: a tile's normalised stack (on
            the UNet's device, h and w multiples of the model's ``config.multiple``) and the slices of the pixels it counts.
        n_samples: how many items ``samples`` yields (for the progress count).
        chunk_frames: frames per UNet call (memory).
        progress: called with 1 after each (layer, sample) pass.

    Returns:
        :class:`GroupStats` with ``(T, G)`` tensors on the CPU.
    """
    layers = unet.group_norms()
    mean: list[Tensor] = []
    rstd: list[Tensor] = []
    for li, layer in enumerate(layers):
        acc: dict[str, Tensor] = {}
        owned: tuple[slice, slice] = (slice(None), slice(None))
        frames: Tensor = torch.empty(0)
        full_h, first_chunk = 0, True

        def observe(mod, a: Tensor) -> None:  # a: (n, C, h_l, w_l), the input of layer li
            if mod is not layer:
                return
            f = full_h // a.shape[-2]  # down-sampling factor of this level (1, 2, 4, 8)
            rows, cols = owned
            part = a[..., rows.start // f:rows.stop // f, cols.start // f:cols.stop // f].float()
            n, c = part.shape[:2]
            g = part.reshape(n, mod.num_groups, -1)  # (n, G, c/G · pixels)
            acc["s1"][frames] += g.sum(-1, dtype=torch.float64)
            acc["s2"][frames] += (g * g).sum(-1, dtype=torch.float64)
            if first_chunk:  # every frame of a window counts the same pixels: count them once per window
                acc["count"] += g.shape[-1]
            raise _Stop

        for m in layers:
            m.observer = observe
        try:
            for x, own in samples:
                t = x.shape[0]
                if not acc:
                    acc = {"s1": torch.zeros(t, layer.num_groups, dtype=torch.float64, device=x.device),
                           "s2": torch.zeros(t, layer.num_groups, dtype=torch.float64, device=x.device),
                           "count": 0}
                owned, full_h = own, x.shape[-2]
                for s in range(0, t, chunk_frames):
                    first_chunk = s == 0
                    frames = torch.arange(s, min(s + chunk_frames, t), device=x.device)
                    known = [(m_[frames], r_[frames]) for m_, r_ in zip(mean, rstd)]
                    # Layers li.. are never normalised in this pass (the observer stops at li):
                    # placeholders keep the forward's bookkeeping simple.
                    dummy = [(torch.zeros(len(frames), m.num_groups, device=x.device),) * 2 for m in layers[li:]]
                    try:
                        unet(x[frames], known + dummy)
                    except _Stop:
                        pass
                if progress is not None:
                    progress(1)
        finally:
            for m in layers:
                m.observer = None
        if not acc or acc["count"] == 0:
            raise AliseError("no pixels to estimate GroupNorm statistics from")
        mu = acc["s1"] / acc["count"]
        var = (acc["s2"] / acc["count"] - mu * mu).clamp_min(0)
        mean.append(mu.float())
        rstd.append(torch.rsqrt(var + layer.eps).float())
    return GroupStats([m.cpu() for m in mean], [r.cpu() for r in rstd], n_samples)


def stats_samples(grid: TileGrid, n: int) -> list[tuple[Tile, tuple[slice, slice]]]:
    """Where the shared GroupNorm statistics are estimated: ``(window as a Tile, owned slices)``.

    A raster no larger than ``n`` windows of :data:`STATS_WINDOW`² pixels (at most 256² for the
    default 16) is one window covering the whole (extended) raster: the statistics are exactly
    GroupNorm's on the whole raster, at the cost of about twice encoding it once. A larger raster:
    ``n`` windows centred on tiles spread evenly over the grid, each counting its centre (a
    :data:`STATS_MARGIN`-pixel border, where the window's own edge shows, is left out) — a
    spread-out sample whose cost does not grow with the raster.
    """
    (th, tw), (ph, pw) = grid.tile_shape, grid.padded_shape
    wh, ww = min(th, STATS_WINDOW), min(tw, STATS_WINDOW)
    if ph * pw <= n * STATS_WINDOW * STATS_WINDOW:
        return [(Tile(-1, 0, 0, 0, 0, ph, pw, grid.height, grid.width), (slice(0, ph), slice(0, pw)))]
    out = []
    for i in sample_indices(len(grid), n):
        t = grid.tiles[i]
        m = grid.multiple
        r = min(max(0, t.row_off + (th - wh) // 2), ph - wh) // m * m
        c = min(max(0, t.col_off + (tw - ww) // 2), pw - ww) // m * m
        win = Tile(-1, t.grid_row, t.grid_col, r, c, wh, ww, min(wh, grid.height - r), min(ww, grid.width - c))
        mr, mc = (STATS_MARGIN if wh >= 4 * STATS_MARGIN else 0), (STATS_MARGIN if ww >= 4 * STATS_MARGIN else 0)
        out.append((win, (slice(mr, wh - mr), slice(mc, ww - mc))))
    return out


#: Size and ignored border (px) of the windows the GroupNorm statistics of a large raster are
#: estimated on (64 px: the paper's pre-training patch size).
STATS_WINDOW, STATS_MARGIN = 64, 8
