"""From digital numbers and dates to embeddings in one call: :func:`encode_array`.

::

    import alise
    emb = alise.encode_array(dn, dates, valid)     # dn (T, 10, H, W) L2A DN, valid (T, H, W) clear
    emb.shape                                      # (n_q, d_model, H, W) float32, NaN = never clear

It is ``alise encode`` without files: the series goes through the same steps, with the same code,
as a raster the command reads (an in-memory :class:`~alise.data.source.SITSSource`):

1. units: the +1000 offset of processing baseline 04.00 is detected and removed per date regime,
   float 0–1 reflectance is refused (:mod:`alise.data.units`; ``offset=`` as the readers');
2. date selection: dates whose clear fraction over the image (``valid``, decimated to ≤ 128 px as
   the readers do) is below ``min_clear`` are left out — by default the model's own
   ``input_min_clear``, the filter of its pre-training data (0.5 for the built-in model; 0 keeps
   every date) (:func:`alise.data.subset.clear_dates`);
3. normalisation with the model's statistics (``model.norm.apply``);
4. tiled encoding with blending and raster-wide GroupNorm statistics
   (:func:`alise.encode.array.encode_array`, the tiling of ``alise encode``: tiles of 256 px or
   fewer for long series, overlap 32) by an inference copy of the model (eval, no autograd);
5. NaN at the pixels that have no clear observation among the kept dates.

The encoder has no per-pixel mask input: like ``alise encode``, cloudy pixels of the kept dates
are fed as they are (the model was pre-trained on such series); ``valid`` only decides which dates
are kept and which pixels come out NaN.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from alise.data.source import RasterGrid, SITSSource
from alise.dates import DATE_ORIGIN, date_from_days, parse_date
from alise.errors import AliseError

#: How messages name the array handed to :func:`encode_array`.
WHERE = "encode_array input"


class ArraySource(SITSSource):
    """One in-memory series as a :class:`~alise.data.source.SITSSource` (no georeferencing).

    Args:
        dn: ``(T, C, H, W)`` digital numbers (any real dtype; NaN = no data), not copied.
        valid: ``(T, H, W)`` bool, True = clear; None: every finite pixel is clear.
        dates: the T acquisition dates, sorted and unique.
        bands: band names of the C axis; offset: as the readers' (``"auto"`` or DN).
    """

    layout = "array"

    def __init__(self, dn: np.ndarray, valid: np.ndarray | None, dates: list[dt.date],
                 bands: Sequence[str], offset: float | str = "auto"):
        h, w = dn.shape[-2:]
        super().__init__("array", Path(WHERE), dates, RasterGrid(None, None, h, w), ignore_labels=(), offset=offset)
        self.bands = tuple(bands)
        self._dn, self._valid = dn, valid
        self._b02 = self.bands.index("B02") if "B02" in self.bands else 0

    def _read_raw(self, window, idx):
        r, c, h, w = window
        dn = np.array(self._dn[idx, :, r:r + h, c:c + w], dtype=np.float32)  # a copy: read() corrects it in place
        clear = self._clear_mask(idx, slice(r, r + h), slice(c, c + w))
        return dn, clear

    def _read_overview(self, idx, side):
        step = max(1, -(-max(self.grid.height, self.grid.width) // side))  # as the cube reader decimates
        ys = xs = slice(None, None, step)
        return np.array(self._dn[idx, self._b02, ys, xs], dtype=np.float32), self._clear_mask(idx, ys, xs)

    def _clear_mask(self, idx, ys: slice, xs: slice) -> np.ndarray:
        if self._valid is None:
            h, w = self._dn[0, 0, ys, xs].shape
            return np.ones((len(idx), h, w), bool)
        return np.array(self._valid[idx, ys, xs], dtype=bool)

    def _read_labels(self, window, year):
        return None

    def _is_float(self) -> bool:
        return bool(np.issubdtype(self._dn.dtype, np.floating))


def encode_array(dn, dates, valid=None, model=None, *, min_clear: float | None = None, offset: float | str = "auto",
                 tile: int | None = None, overlap: int = 32, group_norm: str = "raster", stats_windows: int = 16,
                 device: str | torch.device | None = None) -> np.ndarray:
    """Embeddings of a Sentinel-2 series given as arrays of digital numbers (module docstring).

    Args:
        dn: ``(T, C, H, W)`` (one series) or ``(B, T, C, H, W)`` (B series on the same grid) L2A
            digital numbers = reflectance × 10 000, bands in the model's order (``model.norm.bands``,
            B02 B03 B04 B05 B06 B07 B08 B8A B11 B12 for the built-in model), numpy or torch, any
            real dtype; NaN marks missing values (mark the nodata of an integer array in ``valid``).
            Not normalised: this function normalises (``model.encode`` takes normalised input).
        dates: the T acquisition dates: ``datetime.date`` / ISO ``"YYYY-MM-DD"`` strings,
            ``numpy.datetime64``, or numbers of days since 2014-03-03 (:func:`alise.days_since_origin`);
            for a batch, one such sequence shared by the B series or B of them. Unsorted dates are
            sorted (with their images); a date twice is an error.
        valid: optional ``(T, H, W)`` (or ``(B, T, H, W)``) bool clear mask, True = clear
            observation (e.g. from the SCL band); default: every finite pixel is clear.
        model: an :class:`~alise.model.ALISE`, a model directory or a built-in model name; None:
            the built-in default model (loaded once per process).
        min_clear: leave out the dates whose clear fraction is below this (0 keeps every date);
            default: the model's ``input_min_clear``, as ``alise encode --min-clear``.
        offset: DN subtracted from every date: ``"auto"`` (the readers' rule: 1000 for dates from
            2022-01-25 whose values carry the offset of processing baseline 04.00) or a number
            (0: the values are already offset-free).
        tile, overlap, group_norm, stats_windows: the tiling of ``alise encode`` (``--tile``,
            ``--overlap``, ``--group-norm``, ``--stats-windows``; default tile: 256 px, smaller for
            long series).
        device: where the model runs (``"cpu"``, ``"cuda"``, ``"auto"``, a ``torch.device``);
            default: the model's device.

    Returns:
        ``(Q, D, H, W)`` float32 numpy array (``(B, Q, D, H, W)`` for a batch): ``Q = n_q``
        queries × ``D = d_model`` channels per pixel; NaN where a pixel has no clear observation
        among the dates used. Each series of a batch is encoded on its own (its own dates).

    Raises:
        AliseError: wrong shapes, dates or units, no date clear enough, bad tiling options.
    """
    from alise.data.subset import clear_dates
    from alise.encode.array import encode_array as encode_normalised
    from alise.encode.array import inference_copy
    from alise.encode.groupstats import MODES
    from alise.encode.tiling import auto_tile, validate_tiling
    from alise.model.network import _input_warnings

    model = _resolve_model(model)
    arr = _as_numpy(dn, "dn")
    if arr.ndim not in (4, 5):
        raise AliseError(f"dn must be (T, C, H, W) or (B, T, C, H, W) digital numbers, got shape {arr.shape}")
    batched = arr.ndim == 5
    series = arr if batched else arr[None]
    b, t, c, h, w = series.shape
    bands = tuple(model.norm.bands)
    if c != len(bands):
        raise AliseError(f"dn has {c} bands on axis {-3} but the model expects {len(bands)} ({' '.join(bands)})")
    if t == 0 or h == 0 or w == 0:
        raise AliseError(f"dn has an empty axis: shape {arr.shape}")
    masks = None
    if valid is not None:
        v = _as_numpy(valid, "valid").astype(bool, copy=False)
        if v.shape == (t, h, w):
            v = np.broadcast_to(v, (b, t, h, w))
        if v.shape != (b, t, h, w):
            raise AliseError(f"valid must be (T, H, W) = {(t, h, w)}" + (f" or (B, T, H, W) = {(b, t, h, w)}"
                                                                         if batched else "") + f", got {v.shape}")
        masks = v
    per_series = _series_dates(dates, b, t, batched)
    _check_not_normalised(series)
    if min_clear is None:
        min_clear = float(getattr(model, "input_min_clear", 0.0))
    elif not 0.0 <= float(min_clear) <= 1.0:
        raise AliseError(f"min_clear must be in [0, 1], got {min_clear}")
    if group_norm not in MODES:
        raise AliseError(f"group_norm={group_norm!r}: choose one of {', '.join(MODES)}")
    if stats_windows < 1:
        raise AliseError(f"stats_windows={stats_windows}: must be ≥ 1 window")
    _input_warnings(None, torch.from_numpy(np.concatenate([days for days, _ in per_series])), None)

    dev = _device(model, device)
    infer = inference_copy(model, dev)
    multiple = model.config.multiple
    outs = []
    for i in range(b):  # a loop over series (each has its own date selection), not over dates or pixels
        days, order = per_series[i]
        same = bool((order == np.arange(t)).all())  # already sorted: no copy of the series
        src = ArraySource(series[i] if same else series[i][order],
                          None if masks is None else masks[i] if same else masks[i][order],
                          [date_from_days(d) for d in days], bands, offset)
        src = clear_dates(src, min_clear)
        n = tile if tile is not None else auto_tile(src.n_dates, model.config.d_model, size=(h, w), overlap=overlap,
                                                    multiple=multiple)
        validate_tiling(n, overlap, multiple)
        if n <= 2 * overlap:
            raise AliseError(f"overlap={overlap} must be less than half the tile ({n} px)")
        raw = src.read()
        x = model.norm.apply(raw.dn, inplace=True)  # (T', C, H, W), NaN → 0
        with torch.no_grad():
            y = encode_normalised(infer, x, torch.from_numpy(raw.days), tile=n, overlap=overlap,
                                  group_norm=group_norm, stats_windows=stats_windows)
        y = y.float().cpu().numpy()
        y[:, :, ~raw.valid.any(axis=0)] = np.nan  # never clear among the dates used, as alise encode
        outs.append(y)
    return np.stack(outs) if batched else outs[0]


# ---------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=4)
def _builtin(name: str | None):
    from alise.model.io import load_model

    return load_model(name)[0]


def _resolve_model(model):
    if model is None:
        return _builtin(None)
    if isinstance(model, (str, Path)):
        from alise.model import builtin as models

        if str(model) in models.names():
            return _builtin(str(model))
        from alise.model.io import load

        return load(model)
    return model


def _device(model, device) -> torch.device:
    if device is None:
        p = next(model.parameters(), None)
        return torch.device("cpu") if p is None else p.device
    if isinstance(device, str) and device in ("auto", "cpu", "cuda"):
        from alise.encode.runner import resolve_device

        return resolve_device(device)
    return torch.device(device)


def _as_numpy(a, name: str) -> np.ndarray:
    if isinstance(a, torch.Tensor):
        return a.detach().cpu().numpy()
    try:
        out = np.asarray(a)
    except (TypeError, ValueError) as e:
        raise AliseError(f"{name}: not an array ({e})") from None
    if out.dtype == object or not (np.issubdtype(out.dtype, np.number) or out.dtype == bool):
        raise AliseError(f"{name}: expected a numeric array, got dtype {out.dtype}")
    return out


def _check_not_normalised(series: np.ndarray) -> None:
    """Refuse float input that is already normalised (values in [-2, 2] with negatives): the
    0–1 reflectance test of the readers would otherwise tell the user to multiply it by 10 000."""
    if not np.issubdtype(series.dtype, np.floating):
        return
    lo, hi = float(np.nanmin(series, initial=np.inf)), float(np.nanmax(series, initial=-np.inf))
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return  # only NaN / inf: the readers' checks say what is wrong
    if lo < -0.01 and max(abs(lo), abs(hi)) <= 2.0:
        raise AliseError(f"{WHERE}: values in [{lo:.3g}, {hi:.3g}] look already normalised; encode_array takes "
                         "L2A digital numbers (reflectance × 10000) and normalises them with the model's statistics: "
                         "pass the digital numbers, or call model.encode(x, days) with the normalised x")


def _series_dates(dates, b: int, t: int, batched: bool) -> list[tuple[np.ndarray, np.ndarray]]:
    """``[(days since origin (T,) float32 sorted, order (T,) indices into the T axis)]`` per series."""
    if batched and _is_nested(dates):
        rows = list(dates)
        if len(rows) != b:
            raise AliseError(f"dates: {len(rows)} sequences for {b} series (give one shared sequence or one per series)")
    else:
        rows = [dates] * b
    out = []
    cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for row in rows:
        if id(row) in cache:
            out.append(cache[id(row)])
            continue
        days = _days(row)
        if days.shape != (t,):
            raise AliseError(f"dates: {days.size} dates for the {t} images of the T axis of dn")
        order = np.argsort(days, kind="stable")
        s = days[order]
        dup = np.flatnonzero(np.diff(s) == 0)
        if dup.size:
            raise AliseError(f"dates: {date_from_days(s[dup[0]])} appears twice; give each acquisition once")
        cache[id(row)] = (s, order)
        out.append(cache[id(row)])
    return out


def _is_nested(dates) -> bool:
    """True for B sequences of dates (a 2-D array, a list of lists), False for one sequence."""
    if isinstance(dates, (np.ndarray, torch.Tensor)):
        return dates.ndim == 2
    if isinstance(dates, (str, bytes)) or not isinstance(dates, Sequence) or not len(dates):
        return False
    first = dates[0]
    return not isinstance(first, (str, bytes, dt.date)) and isinstance(first, (Sequence, np.ndarray, torch.Tensor))


def _days(dates) -> np.ndarray:
    """One sequence of dates (dates, ISO strings, datetime64, numbers) → days since 2014-03-03 (float32)."""
    if isinstance(dates, torch.Tensor):
        dates = dates.detach().cpu().numpy()
    if isinstance(dates, np.ndarray) and np.issubdtype(dates.dtype, np.datetime64):
        return (dates.astype("datetime64[D]") - np.datetime64(DATE_ORIGIN.isoformat(), "D")).astype(np.float32)
    if isinstance(dates, np.ndarray) and np.issubdtype(dates.dtype, np.number):
        return _numeric_days(dates)
    if isinstance(dates, (str, bytes)) or not isinstance(dates, (Sequence, np.ndarray)):
        raise AliseError(f"dates: expected a sequence of dates (datetime.date, 'YYYY-MM-DD', or days since "
                         f"2014-03-03), got {type(dates).__name__}")
    items = list(dates)
    if items and all(isinstance(d, (int, float, np.integer, np.floating)) and not isinstance(d, bool) for d in items):
        return _numeric_days(np.asarray(items, dtype=np.float64))
    out = []
    for k, d in enumerate(items):
        if isinstance(d, dt.datetime):
            d = d.date()
        elif isinstance(d, np.datetime64):
            d = d.astype("datetime64[D]").item()
        elif not isinstance(d, dt.date):
            d = parse_date(d, f"dates[{k}]")
        out.append((d - DATE_ORIGIN).days)
    return np.asarray(out, dtype=np.float32)


def _numeric_days(a: np.ndarray) -> np.ndarray:
    if a.ndim != 1 or not np.isfinite(a).all():
        raise AliseError(f"dates: expected one finite number of days since 2014-03-03 per image, got {a.shape} values")
    return np.round(a).astype(np.float32)  # whole days, as the readers' dates
