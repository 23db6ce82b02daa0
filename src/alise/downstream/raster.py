"""Reconstruction and change maps of whole rasters, in bounded memory and resumable.

Both heads of the frozen encoder are per pixel: the decoder ([P] Eq. 8–9) turns a pixel's aligned
embedding ``Y (Q, D)`` into reflectance at any date, and the change score ([P] Eq. 12) compares
two pixels' embeddings. So a whole raster is done in two passes:

1. **encode** each series with the tiled encoder of ``alise encode`` (:mod:`alise.encode.runner`:
   overlapping tiles, raster-wide GroupNorm statistics, one piece per finished tile) into a zarr
   store in the work folder ``OUT.parts/``. A run that is killed keeps its finished tiles there; the
   same command run again encodes only the missing ones (bit-identical, the encoder's guarantee);
2. **apply the head** block of rows by block of rows, reading the stored embedding back, and
   write the output under a temporary name, renamed when complete
   (:func:`alise.outputs.atomic_dir` / :func:`~alise.outputs.atomic_path`). The work folder is
   removed afterwards.

Memory: the encoder's (tile-bounded) plus one block of rows of embeddings (:data:`BLOCK_BYTES`).
The GF baseline of ``alise change`` reads the two series window by window instead
(:func:`gf_change_blocks`). Pixels that never had a clear observation have no embedding (NaN in
the store): nodata in the outputs.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

#: Embedding bytes (float32) held per block of rows.
BLOCK_BYTES = 128 << 20


def work_dir(out: str | Path) -> Path:
    """``OUT`` → ``OUT.parts``: the resume state of a raster head (removed when the output is written)."""
    out = Path(out)
    return out.with_name(out.name + ".parts")


def embed(model, source, dest: Path, opts=None) -> Path:
    """Encode ``source`` into the zarr store ``dest`` with the tiled encoder; a store finished by an
    earlier run is reused, an interrupted one resumed (:func:`alise.encode.runner.encode`)."""
    from alise.encode import EncodeOptions, encode, parts_dir

    dest = Path(dest)
    if dest.is_dir():  # outputs appear by an atomic rename: a store that exists is complete
        shutil.rmtree(parts_dir(dest), ignore_errors=True)  # stopped before its tiles were dropped
        return dest
    encode(model, source, dest, replace(opts or EncodeOptions(), fmt="zarr", shard=(0, 1), prepare_only=False))
    return dest


def row_blocks(height: int, width: int, features: int, block_bytes: int = BLOCK_BYTES) -> list[tuple[int, int]]:
    """``[(r0, r1), ...]`` row ranges covering ``height`` with at most ``block_bytes`` of float32 features."""
    rows = max(1, min(height, block_bytes // max(1, width * features * 4)))
    return [(r, min(r + rows, height)) for r in range(0, height, rows)]


def embedding_rows(store: Path, q: int, d: int) -> Callable[[int, int], torch.Tensor]:
    """``read(r0, r1) → (Q, D, r1 − r0, W)`` float32 rows of the embedding in the zarr ``store``:
    ``embedding (query, feature, y, x)`` (or the flat ``(Q·D, y, x)`` of older stores); an int8
    store is dequantised (:func:`alise.encode.writers.zarr_quantisation`: per (query, feature),
    −128 → NaN)."""
    import zarr

    from alise.encode.writers import zarr_quantisation

    group = zarr.open_group(str(store), mode="r")
    arr = group["embedding"]
    quant = zarr_quantisation(group)

    def read(r0: int, r1: int) -> torch.Tensor:
        raw = np.asarray(arr[..., r0:r1, :])
        flat = raw.reshape(-1, r1 - r0, raw.shape[-1])
        block = quant.dequantise(flat) if quant is not None else flat.astype(np.float32)
        return torch.from_numpy(np.ascontiguousarray(block)).view(q, d, r1 - r0, block.shape[-1])

    return read


def reconstruct_blocks(model, store: Path, days_target: Sequence[float], height: int, width: int,
                       chunk_dates: int = 16) -> Iterator[tuple[int, int, np.ndarray]]:
    """Decoder reconstruction of the stored embedding, block by block.

    Yields ``(r0, r1, dn)`` with ``dn (T', C, r1 − r0, W)`` float32 digital numbers (reflectance ×
    10 000, not rounded), NaN where the embedding is NaN (no clear observation).
    """
    from alise.encode.array import inference_copy

    c = model.config
    net = inference_copy(model)
    device = next(net.parameters()).device
    days = torch.as_tensor(np.asarray(days_target, dtype=np.float32)).view(1, -1).to(device)
    read = embedding_rows(store, c.n_q, c.d_model)
    for r0, r1 in row_blocks(height, width, c.n_q * c.d_model):
        yield r0, r1, decode_embedding(net, read(r0, r1).to(device), days, chunk_dates)


def decode_embedding(net, y: torch.Tensor, days: torch.Tensor, chunk_dates: int = 16) -> np.ndarray:
    """Decoder reconstruction of one block of embedding: ``y (Q, D, h, w)`` float32 (NaN: no
    clear observation) on ``net``'s device, ``days (1, T')`` target days since 2014-03-03 →
    ``(T', C, h, w)`` float32 digital numbers (not rounded), NaN where ``y`` is NaN. ``net``: an
    inference copy of the model (:func:`alise.encode.array.inference_copy`)."""
    missing = torch.isnan(y).any(dim=(0, 1))  # (h, w)
    y = torch.nan_to_num(y, nan=0.0).unsqueeze(0)
    with torch.inference_mode():
        parts = [net.decode(y, days[:, s:s + chunk_dates]) for s in range(0, days.shape[1], chunk_dates)]
        dn = net.norm.invert(torch.cat(parts, dim=1)[0], band_axis=-3).float().cpu()  # (T', C, h, w)
        dn = torch.where(missing.cpu(), float("nan"), dn)
    return dn.numpy()


def change_blocks(store_a: Path, store_b: Path, q: int, d: int, height: int, width: int
                  ) -> Iterator[tuple[int, int, np.ndarray]]:
    """Eq. 12 distance of two stored embeddings, block by block: ``(r0, r1, (r1 − r0, W) float32)``,
    NaN where either embedding is NaN."""
    from alise.downstream.change import embedding_distance

    ra, rb = embedding_rows(store_a, q, d), embedding_rows(store_b, q, d)
    for r0, r1 in row_blocks(height, width, 2 * q * d):
        yield r0, r1, embedding_distance(ra(r0, r1), rb(r0, r1)).numpy().astype(np.float32)


def gf_change_blocks(store, height: int, width: int, n_dates: int, channels: int
                     ) -> Iterator[tuple[int, int, np.ndarray]]:
    """GF baseline change score ([P] §IV-C-2) of sources 0 and 1 of ``store`` (a
    :class:`~alise.downstream.features.SITSStore`), window by window: ``(r0, r1, (r1 − r0, W))``."""
    from alise.downstream.change import gf_change_map

    for r0, r1 in row_blocks(height, width, 4 * n_dates * channels):
        win = (r0, 0, r1 - r0, width)
        yield r0, r1, gf_change_map(store.read(0, win), store.read(1, win))


def write_blocks(path: Path, blocks: Iterator[tuple[int, int, np.ndarray]], grid, *, dtype, nodata,
                 convert: Callable[[np.ndarray], np.ndarray] = lambda a: a, descriptions=None, tags=None,
                 progress=None) -> np.ndarray | None:
    """Write the single-band ``(rows, W)`` blocks into the GeoTIFF ``path`` (already a temporary name);
    returns the whole map (``(H, W)``, small: one band) for evaluation."""
    from alise.outputs import open_geotiff

    full = np.empty((grid.height, grid.width), np.float32)
    with open_geotiff(path, grid.height, grid.width, 1, dtype, grid, nodata=nodata, descriptions=descriptions,
                      tags=tags) as dst:
        from rasterio.windows import Window

        for r0, r1, block in blocks:
            full[r0:r1] = block
            dst.write(convert(block)[None], window=Window(0, r0, grid.width, r1 - r0))
            if progress is not None:
                progress(r1 - r0)
    return full


def remove_work(work: Path) -> None:
    """Drop the work folder once the output it served is in place."""
    shutil.rmtree(work, ignore_errors=True)
