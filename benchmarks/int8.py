"""``--dtype int8`` against float32 → JSON on stdout: output size and linear-probe macro-F1.

The real Flanders patch (``worldcereal-flanders-2018``: 64 × 64 px, crop-type labels) is encoded
with the built-in model by the ``alise encode`` command, once in float32 and once in int8, as a
COG and as a zarr store. Each int8 raster is read back the way its users read it — the COG with
rasterio's band scales/offsets, the zarr store with ``xarray.open_zarr`` and the documented
``embedding * embedding_scale + embedding_offset`` (one scale and offset per (query, feature)) —
and a linear probe (``StandardScaler`` + ``LogisticRegression``) is fitted on the labelled pixels
(``labels.tif``, 0 = no label) of spatial splits: a checkerboard of 16 × 16 px blocks (even blocks
for training, odd ones for testing), and ``--seeds`` random half/half assignments of the same
blocks (:func:`alise.splits.spatial_block_split`, seeds 0…). Reported per format: the size of
the embedding (COG file, zarr ``embedding`` array) and its int8/float32 ratio, the macro-F1 (over
the classes present in the test blocks) of float32 and int8 and their difference on every split,
and the largest dequantisation error relative to the scale (≤ 0.5 by construction). For
comparison, ``global_scale`` is the same probe on the float32 embedding quantised with one scale
and offset for the whole array (what CF ``scale_factor``/``add_offset`` allows).

Usage: ``python benchmarks/int8.py [--data DIR] [--model NAME_OR_DIR] [--block 16] [--seeds 5]``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

DEFAULT_DATA = "/work/shared/data/worldcereal-flanders-2018"


def size_of(path: Path) -> int:
    return path.stat().st_size if path.is_file() else sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def read_cog(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """``(Q·D, H, W)`` float32 (dequantised, NaN = no data) and the per-band scales (None: float)."""
    import rasterio

    with rasterio.open(path) as f:
        a = f.read(masked=True)
        scale, offset = np.asarray(f.scales, np.float64), np.asarray(f.offsets, np.float64)
        quantised = f.dtypes[0] == "int8"
    v = a.astype(np.float64) * scale[:, None, None] + offset[:, None, None]
    return v.filled(np.nan).astype(np.float32), (scale if quantised else None)


def read_zarr(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    import xarray as xr

    with xr.open_zarr(path) as ds:
        e = ds.embedding  # (query, feature, y, x); xarray turns the int8 fill value −128 into NaN
        if "embedding_scale" in ds:  # int8: one scale and offset per (query, feature)
            scale = ds.embedding_scale.values.ravel()
            e = e * ds.embedding_scale + ds.embedding_offset
        else:
            scale = None
        v = e.values.astype(np.float32)
    q, d, h, w = v.shape
    return v.reshape(q * d, h, w), scale


def probe(emb: np.ndarray, labels: np.ndarray, train: np.ndarray) -> float:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score
    from sklearn.preprocessing import StandardScaler

    x = emb.reshape(emb.shape[0], -1).T
    y = labels.ravel()
    ok = (y > 0) & np.isfinite(x).all(axis=1)
    tr, te = ok & train.ravel(), ok & ~train.ravel()
    scaler = StandardScaler().fit(x[tr])
    clf = LogisticRegression(max_iter=5000).fit(scaler.transform(x[tr]), y[tr])
    pred = clf.predict(scaler.transform(x[te]))
    return float(f1_score(y[te], pred, labels=np.unique(y[te]), average="macro", zero_division=0))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=DEFAULT_DATA, help="site folder with labels.tif (0 = no label)")
    p.add_argument("--model", default=None, help="model directory or built-in name (default: the built-in model)")
    p.add_argument("--block", type=int, default=16, help="side of the blocks of the splits (px)")
    p.add_argument("--seeds", type=int, default=5, help="random half/half block splits besides the checkerboard")
    a = p.parse_args()

    import rasterio

    from alise.cli import main as alise
    from alise.encode.writers import Quantisation
    from alise.splits import spatial_block_split

    with rasterio.open(Path(a.data) / "labels.tif") as f:
        labels = f.read(1)
    rr, cc = np.indices(labels.shape)
    splits = {"checkerboard": ((rr // a.block + cc // a.block) % 2) == 0}
    for seed in range(a.seeds):
        splits[f"blocks_seed{seed}"] = spatial_block_split(*labels.shape, a.block, (0.5, 0.0, 0.5), seed=seed) == 0
    result: dict = {"data": str(a.data), "model": a.model or "built-in default",
                    "splits": f"checkerboard of {a.block}x{a.block} px blocks (even: train, odd: test), and "
                              f"{a.seeds} random half/half assignments of those blocks",
                    "train_pixels": int(((labels > 0) & splits["checkerboard"]).sum()),
                    "test_pixels": int(((labels > 0) & ~splits["checkerboard"]).sum())}

    def scores(emb, f32):
        d = {k: round(probe(emb, labels, tr) - f32[k], 4) for k, tr in splits.items()}
        return d, round(max(abs(v) for v in d.values()), 4)

    with tempfile.TemporaryDirectory() as tmp:
        for fmt, suffix, reader in (("cog", ".tif", read_cog), ("zarr", ".zarr", read_zarr)):
            emb, sizes = {}, {}
            for dtype in ("float32", "int8"):
                out = Path(tmp) / f"emb_{dtype}{suffix}"
                argv = ["encode", *([a.model] if a.model else []), a.data, "--out", str(out), "--dtype", dtype,
                        "--no-progress", "--device", "cpu"]
                if alise(argv) != 0:
                    raise SystemExit(f"alise {' '.join(argv)} failed")
                emb[dtype], scale = reader(out)
                sizes[dtype] = size_of(out / "embedding" if fmt == "zarr" else out)
            ok = np.isfinite(emb["float32"])
            rel = np.abs(emb["int8"] - emb["float32"]) / scale[:, None, None]
            f32 = {k: probe(emb["float32"], labels, tr) for k, tr in splits.items()}
            deltas, worst = scores(emb["int8"], f32)
            result[fmt] = {"bytes_float32": sizes["float32"], "bytes_int8": sizes["int8"],
                           "size_ratio": round(sizes["int8"] / sizes["float32"], 4),
                           "scale": "per band" if len(set(scale.tolist())) > 1 else "global",
                           "max_error_over_scale": round(float(rel[ok].max()), 4),
                           "macro_f1_float32": round(f32["checkerboard"], 4),
                           "macro_f1_int8": round(f32["checkerboard"] + deltas["checkerboard"], 4),
                           "delta_macro_f1": deltas["checkerboard"], "delta_macro_f1_by_split": deltas,
                           "max_abs_delta_over_splits": worst}
        flat = emb["float32"].reshape(emb["float32"].shape[0], -1)
        glob = Quantisation.from_range(np.nanmin(flat, 1), np.nanmax(flat, 1), per_band=False)
        deltas, worst = scores(glob.dequantise(glob.quantise(emb["float32"])), f32)
        result["global_scale"] = {"scale": float(glob.scale[0]), "per_band_scale_median": float(np.median(scale)),
                                  "delta_macro_f1_by_split": deltas, "max_abs_delta_over_splits": worst}
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
