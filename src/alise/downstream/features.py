"""Frozen ALISE embeddings for the downstream tasks, computed once and cached ([P] §IV-B).

In linear probing (ALISE^LP) and change detection the encoder is frozen: eval mode (BatchNorm
running statistics, no dropout) and ``torch.inference_mode``. The embedding of a source never
changes during head training, so it is computed **once** per source and kept in a cache (RAM, or
``.npy`` memory maps under ``cache_dir`` for datasets larger than memory); the head then trains on
the cache, which is orders of magnitude cheaper than re-encoding each epoch.

Windows of any size are encoded: the U-Net needs sides that are multiples of ``2**n_down`` (8 in
the paper), so windows are reflect-extended; large windows are cut into overlapping tiles and
blended exactly as ``alise encode`` does (:mod:`alise.encode.array`).

Shapes: ``Q`` = n_q, ``D`` = d_model; an embedding of an ``(h, w)`` window is ``(Q·D, h, w)``
flattened query-major (see :func:`alise.downstream.heads.flatten_queries`).
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from alise.batch import SITS
from alise.downstream.heads import flatten_queries
from alise.encode.array import inference_copy

#: Largest window side encoded in one piece; larger windows are tiled (overlap in pixels).
TILE, OVERLAP = 256, 64
#: Sources whose normalised series is smaller than this many bytes stay in RAM once read.
RAM_SOURCE_BYTES = 256 * 1024 * 1024


def encode_sits(model, sits: SITS, *, flatten: bool = True, tile: int = TILE, overlap: int = OVERLAP) -> Tensor:
    """Encode one series, whatever its size, with the model as it is (caller sets mode/grad).

    Windows larger than ``tile`` are tiled and blended like ``alise encode`` does, with one set of
    GroupNorm statistics for the whole window (:func:`alise.encode.array.encode_array`).

    Args:
        model: ALISE model (``encode(x (B,T,C,H,W), days (B,T), valid_dates (B,T)) -> (B,Q,D,H,W)``).
        sits: ``x (T, C, h, w)`` normalised reflectance, ``days (T,)`` days since 2014-03-03.
        flatten: return ``(Q·D, h, w)`` (query-major) instead of ``(Q, D, h, w)``.

    Returns:
        float32 embedding of the window, ``(Q·D, h, w)`` or ``(Q, D, h, w)``.
    """
    from alise.encode.array import encode_array

    y = encode_array(model, sits.x, sits.days, tile=tile, overlap=overlap)
    return flatten_queries(y.unsqueeze(0))[0] if flatten else y


class SITSStore:
    """Reads normalised windows of sources, keeping small sources in RAM after the first read.

    Args:
        sources: :class:`alise.data.source.SITSSource` objects.
        norm: :class:`alise.normalise.NormStats` of the model (never recomputed).

    ``min_clear`` > 0 (see :meth:`clear_dates`): reads keep only the dates at least that clear,
    measured over each whole source (:func:`alise.data.subset.clear_date_index`).
    """

    def __init__(self, sources, norm):
        self.sources, self.norm = list(sources), norm
        self._ram: dict[int, SITS] = {}
        self.min_clear = 0.0
        self._keep: dict[int, Tensor | None] = {}

    def read(self, i: int, window=None) -> SITS:
        """``SITS`` of ``window = (row, col, h, w)`` (default: whole grid) of source ``i``, labels raw ids."""
        s = self._read(i, window)
        keep = self._kept_dates(i)
        return s if keep is None else s.select_dates(keep)

    def _read(self, i: int, window) -> SITS:
        src = self.sources[i]
        if i in self._ram:
            full = self._ram[i]
        else:
            t, c, h, w = src.shape
            if t * c * h * w * 4 > RAM_SOURCE_BYTES:
                return _raw_sits(src.read(window), self.norm)
            full = _raw_sits(src.read(None), self.norm)
            self._ram[i] = full
        if window is None:
            return full
        r, c, h, w = window
        return full.crop(r, c, h, w)

    def n_dates(self, i: int) -> int:
        """Number of dates a read of source ``i`` returns."""
        keep = self._kept_dates(i)
        return self.sources[i].n_dates if keep is None else int(keep.numel())

    def _kept_dates(self, i: int) -> Tensor | None:
        """Indices of the dates of source ``i`` that reads keep (None: all), computed once."""
        if self.min_clear <= 0:
            return None
        if i not in self._keep:
            from alise.data.subset import clear_date_index

            idx = clear_date_index(self.sources[i], self.min_clear)
            self._keep[i] = None if idx.size == self.sources[i].n_dates else torch.from_numpy(idx)
        return self._keep[i]

    def clear_dates(self, min_clear: float) -> "SITSStore":
        """A view of this store whose reads keep the dates at least ``min_clear`` clear (0: every
        date); it shares the decoded series already in memory."""
        if float(min_clear) == self.min_clear:
            return self
        view = copy.copy(self)  # same sources and RAM cache
        view.min_clear, view._keep = float(min_clear), {}
        return view


def _raw_sits(raw, norm) -> SITS:
    """Normalise a RawSITS but keep labels as raw ids (the probe maps them itself)."""
    labels = raw.labels
    raw.labels = None
    s = raw.to_sits(norm)
    s.labels = None if labels is None else torch.from_numpy(np.asarray(labels, dtype=np.int64))
    return s


class FeatureTable:
    """Frozen per-pixel features ``(F, H, W)`` of whole sources, each computed once by ``fn(i)``.

    The probe's frozen feature source (:class:`alise.downstream.probe.ProbeParts`): ALISE
    embeddings (:class:`FeatureCache`), U-BARN per-date features, Presto, gap-filled series.

    Args:
        fn: ``fn(i) → (F, H, W)`` array of source ``i``.
        cache_dir: None to keep features in RAM, else a directory for ``.npy`` memory maps.
        dtype: storage dtype (float32, or float16 to halve the footprint).
        progress: optional callable ``progress(i)`` called after each source is computed.
    """

    def __init__(self, fn, cache_dir: str | Path | None = None, dtype: np.dtype = np.float32, progress=None):
        self.fn = fn
        self.cache_dir = None if cache_dir is None else Path(cache_dir)
        self.dtype = np.dtype(dtype)
        self.progress = progress
        self._data: dict[int, np.ndarray] = {}
        self.n_encoded = 0

    def get(self, i: int) -> np.ndarray:
        """Features of source ``i``: ``(F, H, W)`` array (memory map if ``cache_dir``)."""
        if i not in self._data:
            y = np.asarray(self.fn(i)).astype(self.dtype, copy=False)
            if self.cache_dir is not None:
                self.cache_dir.mkdir(parents=True, exist_ok=True)
                mm = np.lib.format.open_memmap(self.cache_dir / f"source_{i:06d}.npy", mode="w+", dtype=self.dtype,
                                               shape=y.shape)
                mm[...] = y
                mm.flush()
                y = mm
            self._data[i] = y
            self.n_encoded += 1
            if self.progress is not None:
                self.progress(i)
        return self._data[i]

    def window(self, i: int, window) -> Tensor:
        """``(F, h, w)`` float32 tensor of ``window = (row, col, h, w)`` of source ``i``."""
        r, c, h, w = window
        return torch.from_numpy(np.ascontiguousarray(self.get(i)[:, r:r + h, c:c + w], dtype=np.float32))


class FeatureCache(FeatureTable):
    """Frozen ALISE embeddings ``(Q·D, H, W)`` of whole sources, each computed once.

    Args:
        model: ALISE model; encoded through an inference copy, only ever under ``inference_mode``.
        store: :class:`SITSStore` giving the normalised series.
        cache_dir, dtype, progress: as :class:`FeatureTable`.
        min_clear: encode only the dates at least this clear (None: the model's
            ``input_min_clear``; 0: every date), :mod:`alise.data.subset`.
    """

    def __init__(self, model, store: SITSStore, cache_dir: str | Path | None = None,
                 dtype: np.dtype = np.float32, progress=None, min_clear: float | None = None):
        super().__init__(self._encode, cache_dir, dtype, progress)
        self.min_clear = getattr(model, "input_min_clear", 0.0) if min_clear is None else float(min_clear)
        self.model, self.store = model, store.clear_dates(self.min_clear)  # the dates clear enough for the model
        self._infer = None

    def _frozen(self):
        """The model as it encodes: an inference copy (BatchNorm folded, channels_last on CPU) when
        the model offers one (:meth:`alise.model.ALISE.for_inference`), else the model in eval mode."""
        if self._infer is None:
            self._infer = inference_copy(self.model)
        return self._infer

    def _encode(self, i: int) -> np.ndarray:
        with torch.inference_mode():
            return encode_sits(self._frozen(), self.store.read(i)).cpu().numpy()


class StoredEmbedding(FeatureTable):
    """Frozen features read from embedding rasters written by ``alise encode``, one per source.

    The features of a series encoded once (``alise encode DATA --out EMB``) are the
    ``(Q·D, H, W)`` values of EMB (query-major, as :class:`FeatureCache` gives them), decoded to
    float32 by :func:`alise.encode.readers.open_embedding` (COG or zarr, float32, float16 or int8).
    A pixel without any clear observation (NaN in EMB) gets its series' mean feature, so that its
    label still counts; :attr:`n_filled` says how many pixels of each source were filled.

    Args:
        paths: one embedding raster per source, in the order of ``sources``.
        sources: the labelled series; each embedding must lie on its source's grid.
        cache_dir: as :class:`FeatureTable`.

    Raises:
        AliseError: one line, for a count, grid or layout that does not match.
    """

    def __init__(self, paths, sources, cache_dir: str | Path | None = None):
        from alise.encode.readers import embedding_grid, open_embedding
        from alise.errors import AliseError

        super().__init__(self._read, cache_dir)
        paths = [Path(p) for p in paths]
        if len(paths) != len(sources):
            raise AliseError(f"--embedding: {len(paths)} embedding(s) for {len(sources)} series: give one per "
                             "series, in the order of DATA")
        self.paths, self.embeddings = paths, [open_embedding(p) for p in paths]
        for p, emb, src in zip(paths, self.embeddings, sources):
            grid = embedding_grid(emb)
            if not grid.overlays(src.grid):
                raise AliseError(f"{p} ({grid.describe()}) is not on the grid of {src.path} ({src.grid.describe()}): "
                                 f"encode that series (alise encode {src.path} --out EMB)")
        layouts = {emb.shape[:2] for emb in self.embeddings}
        if len(layouts) > 1:
            raise AliseError(f"--embedding: the embeddings have different (query, feature) layouts {sorted(layouts)}")
        (self.n_q, self.n_d), = layouts
        self.n_filled: dict[int, int] = {}

    def _read(self, i: int) -> np.ndarray:
        emb = self.embeddings[i]
        y = np.array(emb.values, np.float32).reshape(self.n_q * self.n_d, *emb.shape[-2:])
        missing = ~np.isfinite(y).all(0)
        self.n_filled[i] = int(missing.sum())
        if missing.any():
            clear = y[:, ~missing]
            y[:, missing] = (clear.mean(1) if clear.size else np.zeros(y.shape[0], np.float32))[:, None]
        return y
