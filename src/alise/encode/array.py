"""Tiled encoding of one in-memory series, with the tiling, blending and shared GroupNorm
statistics of ``alise encode`` (``tiling.py``, ``groupstats.py``) but no files.

Used by the downstream tasks (probe features, change maps, reconstructions) for windows larger
than one tile; ``runner.py`` is the same recipe streamed from and to disk for whole rasters.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from alise.encode.tiling import TileGrid

def inference_copy(model, device=None):
    """The model as every encoder runs it: for an ALISE model ``model.for_inference(device)`` (an
    eval copy with BatchNorm folded and, on CPU, a channels_last UNet: same outputs, faster), else
    ``model`` in eval mode on ``device``. ``device`` None: the model's own."""
    if device is None:
        device = next(model.parameters()).device
    if hasattr(model, "for_inference"):
        return model.for_inference(device)
    return model.to(device).eval()


def extend(x: Tensor, height: int, width: int) -> Tensor:
    """``x (..., h, w)`` → ``(..., height, width)``: extended at the bottom and right by reflection
    (replication when the image is too small to reflect), as the UNet's input padding."""
    h, w = x.shape[-2:]
    ph, pw = height - h, width - w
    if not ph and not pw:
        return x
    mode = "reflect" if ph < h and pw < w else "replicate"
    lead = x.shape[:-2]
    return F.pad(x.reshape(-1, 1, h, w), (0, pw, 0, ph), mode=mode).reshape(*lead, height, width)


def encode_array(model, x: Tensor, days: Tensor, *, tile: int = 256, overlap: int = 64,
                 group_norm: str = "raster", stats_windows: int = 16, forward=None,
                 multiple: int | None = None) -> Tensor:
    """Encode one series of any size: ``x (T, C, H, W)`` normalised, ``days (T,)`` → ``(Q, D, H, W)`` float32.

    A window within one tile is encoded at once (reflect-extended to the UNet's size multiple, 8 in the paper);
    a larger one is cut into tiles on the model's ``config.multiple`` grid and blended (``tiling.py``). With
    ``group_norm="raster"`` a GroupNorm model uses one set of statistics for the whole window
    (``groupstats.py``), so the result does not depend on the tiling. The caller sets the model's
    mode and the autograd context (``torch.inference_mode`` for frozen features).

    ``forward(x (1, T, C, h, w), days (1, T), valid (1, T)) → (1, ..., h, w)`` replaces
    ``model.encode`` for other per-pixel networks (e.g. segmentation logits ``(1, K, h, w)``);
    ``multiple`` then gives their side multiple (default: the model's UNet).
    """
    from alise.encode.groupstats import estimate, stats_samples

    t, _, h, w = x.shape
    grid = TileGrid(h, w, tile, overlap, multiple or model.config.multiple)
    run = model.encode if forward is None else forward
    device = next(model.parameters()).device
    d = days.to(device=device, dtype=torch.float32).view(1, t)
    valid = torch.ones(1, t, dtype=torch.bool, device=device)

    def window(tl) -> Tensor:  # (T, C, th, tw) on the model's device
        r, c, rh, rw = tl.window
        return extend(x[..., r:r + rh, c:c + rw], tl.height, tl.width).to(device)

    kw = {}
    if group_norm == "raster" and forward is None and model.config.uses_group_norm and len(grid) > 1:
        picked = stats_samples(grid, stats_windows)
        th, tw = picked[0][0].height, picked[0][0].width
        stats = estimate(model.unet, [(window(tl), own) for tl, own in picked], len(picked),
                         chunk_frames=model.frames_per_chunk(th, tw))
        kw["group_stats"] = stats.pairs(device)
    out = None
    for tl in grid.tiles:  # a loop over tiles (bounded memory), not over dates or pixels
        y = run(window(tl)[None], d, valid, **kw)[0].float()  # (Q, D, th, tw), or (..., th, tw)
        r, c, rh, rw = tl.window
        if len(grid) == 1:
            return y[..., :rh, :rw]
        if out is None:
            out = y.new_zeros((*y.shape[:-2], h, w))
        wgt = torch.from_numpy(grid.weight(tl)[:rh, :rw]).to(y.device)
        out[..., r:r + rh, c:c + rw] += y[..., :rh, :rw] * wgt
    return out
