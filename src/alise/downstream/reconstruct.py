"""Gap-filling with the decoder: cloud-free reflectance at any date from the aligned embedding.

The cross-reconstruction decoder ([P] Eq. 8–9, Fig. 3) queries the aligned representation
``Y (Q, D, H, W)`` with ``M_β + PE(δ_t)`` for any target day ``δ_t`` (days since 2014-03-03) and
returns normalised reflectance; inverting the model's normalisation (§IV-A) gives digital numbers
(reflectance × 10 000). Pre-training only ever scores the decoder on clear pixels, so its output
is a cloud-free estimate — a learned gap-filling, compared with linear gap-filling
(:func:`alise.baselines.gapfill.gapfill_linear`) in :func:`heldout_comparison` and ``benchmarks/reconstruct.py``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from alise.batch import SITS
from alise.errors import AliseError

#: Largest and smallest storable DN of the uint16 output.
DN_MAX = 65535
#: Farthest a target date may lie outside the encoded dates (days): beyond, the decoder is not asked.
MAX_EXTRAPOLATION_DAYS = 366


def reconstruct(model, sits: SITS, days_target: Sequence[float] | np.ndarray, chunk_dates: int = 16) -> np.ndarray:
    """Decoder reconstruction of ``sits`` at ``days_target``.

    Args:
        model: ALISE model (eval mode, no gradient here).
        sits: ``x (T, C, H, W)`` normalised, ``days (T,)`` days since 2014-03-03.
        days_target: ``(T',)`` target dates, days since 2014-03-03 (any, inside or outside the series).
        chunk_dates: target dates decoded at once (bounds memory on large rasters).

    Returns:
        ``(T', C, H, W)`` float32 digital numbers (reflectance × 10 000), not rounded.
    """
    from alise.downstream.features import encode_sits
    from alise.encode.array import inference_copy

    days_t = torch.as_tensor(np.asarray(days_target, dtype=np.float32)).view(1, -1)
    model = inference_copy(model)
    with torch.inference_mode():
        y = encode_sits(model, sits, flatten=False).unsqueeze(0)  # (1, Q, D, H, W)
        parts = [model.decode(y, days_t[:, s:s + chunk_dates].to(y.device)) for s in range(0, days_t.shape[1], chunk_dates)]
        x_hat = torch.cat(parts, dim=1)[0]  # (T', C, H, W) normalised
        dn = model.norm.invert(x_hat, band_axis=-3)
    return dn.float().cpu().numpy()


def to_uint16(dn: np.ndarray) -> np.ndarray:
    """Round and clip digital numbers to the uint16 range of the input layout: finite values to
    [1, 65535], NaN (no embedding) to 0, the layout's nodata."""
    out = np.clip(np.rint(np.nan_to_num(dn, nan=1.0)), 1, DN_MAX).astype(np.uint16)
    out[np.isnan(dn)] = 0
    return out


def heldout_comparison(model, sits: SITS, heldout: Sequence[int], min_clear: float = 0.0) -> dict:
    """Reconstruction error on held-out clear observations: decoder vs linear gap-filling.

    The dates ``heldout`` are removed from the series; the rest is encoded (ALISE) or linearly
    interpolated per pixel (GF), both predict the held-out dates, and errors are measured on the
    held-out pixels that are clear.

    Args:
        model: ALISE model.
        sits: full series ``x (T, C, H, W)`` normalised, ``valid_pixels (T, H, W)``.
        heldout: indices into T of the dates to hide.
        min_clear: the encoder reads only the remaining dates at least this clear (its
            ``input_min_clear``); GF reads every remaining clear pixel.

    Returns:
        ``{"n_pixels", "alise": {"rmse_dn", "mae_dn", "rmse_norm"}, "gf": {...}}`` (DN = reflectance × 1e4),
        over held-out clear pixels and all bands.
    """
    from alise.baselines.gapfill import gapfill_linear

    t = sits.x.shape[0]
    held = np.zeros(t, bool)
    held[np.asarray(list(heldout), dtype=np.int64)] = True
    if held.all() or not held.any():
        raise AliseError("hold out at least one date and keep at least one")
    keep_idx = np.flatnonzero(~held)
    ctx = sits.select_dates(torch.from_numpy(keep_idx))
    target = sits.select_dates(torch.from_numpy(np.flatnonzero(held)))
    mask = target.valid_pixels.numpy()  # (T', H, W)
    if not mask.any():
        raise AliseError("no clear pixel on the held-out dates: choose clearer dates to hold out")
    truth_dn = model.norm.invert(target.x).numpy()
    enc_ctx = ctx.keep_clear(min_clear)
    pred = {"alise": reconstruct(model, enc_ctx, target.days.numpy())}
    gf = gapfill_linear(ctx.x[None], ctx.days[None], ctx.valid_pixels[None], target.days.numpy().astype(np.float64))[0]
    gf = torch.nan_to_num(gf, nan=0.0)  # pixels never clear: the median (0 normalised)
    pred["gf"] = model.norm.invert(gf).numpy()
    out: dict = {"n_pixels": int(mask.sum()), "n_heldout_dates": int(held.sum()), "n_context_dates": int(len(keep_idx)),
                 "n_encoder_dates": int(enc_ctx.x.shape[0])}
    scale = (np.asarray(model.norm.qmax) - np.asarray(model.norm.qmin)).reshape(1, -1, 1, 1)
    for name, p in pred.items():
        err = (p - truth_dn)  # (T', C, H, W)
        e = np.moveaxis(err, 1, -1)[mask]  # (N, C)
        en = np.moveaxis(err / scale, 1, -1)[mask]
        out[name] = {"rmse_dn": float(np.sqrt(np.mean(e**2))), "mae_dn": float(np.mean(np.abs(e))),
                     "rmse_norm": float(np.sqrt(np.mean(en**2)))}
    return out


def extrapolation(targets: Sequence, encoded: Sequence, what: str = "dates") -> str | None:
    """The rule of ``alise reconstruct`` and :func:`alise.xarray.reconstruct` for target dates
    outside the encoded ones: more than :data:`MAX_EXTRAPOLATION_DAYS` away is an
    :class:`AliseError` (naming them after ``what``, e.g. ``--dates``); closer ones are
    extrapolated, and the warning to show is returned (None when every target is inside)."""
    first, last = min(encoded), max(encoded)
    outside = [(d, (first - d).days if d < first else (d - last).days) for d in targets if not first <= d <= last]
    far = [d.isoformat() for d, gap in outside if gap > MAX_EXTRAPOLATION_DAYS]
    if far:
        raise AliseError(f"{what} {', '.join(far)}: more than {MAX_EXTRAPOLATION_DAYS} days outside the encoded "
                         f"dates ({first} to {last}); the decoder does not extrapolate that far")
    if not outside:
        return None
    return ", ".join(f"{d} is {gap} days outside" for d, gap in outside) + f" the encoded dates ({first} to {last}): extrapolated"
