"""A fitted linear probe applied to a whole embedding raster: a class map of any size.

``alise probe`` fits ``Linear(Q·D → K)`` on the standardised embedding of labelled pixels and saves
it as ``DIR/head.safetensors`` (the standardisation, the weights, the classes seen in training,
the class names). :func:`classify_raster` applies it to every pixel of an embedding written by
``alise encode`` — of the labelled series, or of any other place and period encoded by the same
model — block by block, so that memory is one block of features whatever the raster's size:

``class = argmax_k (W · (x − mean) / scale + b)_k`` over the classes seen in training ([P] Fig. 5),
``NODATA`` where the pixel had no clear observation (NaN in the embedding).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from alise.errors import AliseError

#: Class-map value of a pixel without a clear observation (uint8 maps; uint16 maps use 65535).
NODATA_U8 = 255


def load_head(path: str | os.PathLike):
    """The head ``alise probe`` saved: ``(LinearProbe, metadata)``; ``path`` is the probe's
    output folder or its ``head.safetensors``."""
    import torch
    from safetensors import SafetensorError
    from safetensors.torch import safe_open

    from alise.downstream.heads import LinearProbe

    p = Path(path)
    if p.is_dir():
        p = p / "head.safetensors"
    if not p.is_file():
        raise AliseError(f"{p}: no such file (give the output folder of alise probe --mode lp, or its head.safetensors)")
    try:
        with safe_open(str(p), framework="pt") as f:
            meta = dict(f.metadata() or {})
            state = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError) as e:
        raise AliseError(f"{p}: not a safetensors file ({e})") from None
    if "linear.weight" not in state or "class_names" not in meta:
        raise AliseError(f"{p}: not a head saved by alise probe --mode lp (no linear.weight / class_names)")
    k, n_features = state["linear.weight"].shape
    head = LinearProbe(1, n_features, k)
    state["active"] = state["active"].to(torch.bool)
    head.load_state_dict(state)
    meta["class_names"] = json.loads(meta["class_names"])
    return head.eval(), meta


def classify_raster(emb, head, out: str | os.PathLike, *, tags: dict | None = None, overwrite: bool = False,
                    progress: bool = True, block: int | None = None) -> dict:
    """Write the class map of ``emb`` under ``head`` as a GeoTIFF on the embedding's grid.

    Args:
        emb: ``xarray.DataArray (query, feature, y, x)`` (:func:`alise.encode.readers.open_embedding`).
        head: a :class:`~alise.downstream.heads.LinearProbe` over ``Q·D`` features (:func:`load_head`).
        out: ``.tif`` path; uint8 (nodata 255) for fewer than 255 classes, else uint16 (nodata 65535).

    Returns:
        ``out``, ``size``, ``pixels`` per class id (``counts``) and ``nodata`` pixels.
    """
    import torch
    from rasterio.windows import Window
    from tqdm.auto import tqdm

    from alise.encode.readers import embedding_grid
    from alise.encode.writers import BLOCK, blocks
    from alise.outputs import atomic_path, check_output, open_geotiff

    out = Path(out)
    if out.suffix.lower() not in (".tif", ".tiff"):
        raise AliseError(f"{out}: a class map is a GeoTIFF: name it {out.stem}.tif")
    check_output(out, overwrite)
    n_q, n_d, h, w = emb.shape
    k, f = head.linear.weight.shape
    if n_q * n_d != f:
        raise AliseError(f"the head takes {f} features but the embedding has {n_q} × {n_d} = {n_q * n_d}: "
                         "use the embedding of the model the head was fitted on")
    dtype, nodata = (np.uint8, NODATA_U8) if k < NODATA_U8 else (np.uint16, 65535)
    feats = emb.data.reshape(f, h, w)
    counts, missing = np.zeros(k, np.int64), 0
    windows = list(blocks(h, w, block or BLOCK))
    with atomic_path(out) as tmp, open_geotiff(tmp, h, w, 1, dtype, embedding_grid(emb), nodata=nodata,
                                               descriptions=["class"], tags=tags) as dst, \
            tqdm(total=h * w, desc="classify", unit="px", unit_scale=True, disable=not progress) as bar, \
            torch.inference_mode():
        for r, c, bh, bw in windows:
            x = np.asarray(feats[:, r:r + bh, c:c + bw], np.float32).reshape(f, -1).T
            ok = np.isfinite(x).all(1)
            cls = head.forward_flat(torch.from_numpy(np.where(ok[:, None], x, 0.0))).argmax(1).numpy()
            counts += np.bincount(cls[ok], minlength=k)
            missing += int((~ok).sum())
            dst.write(np.where(ok, cls, nodata).astype(dtype).reshape(1, bh, bw), window=Window(c, r, bw, bh))
            bar.update(bh * bw)
    return {"out": str(out), "size": [h, w], "counts": counts.tolist(), "nodata": missing}
