"""The PASTIS layout, the paper's crop-segmentation benchmark ([P] §IV-A-2; docs/reference.md §9).

::

    PASTIS/
      DATA_S2/S2_<ID>.npy           (T, 10, 128, 128) THEIA L2A DN, bands B02 … B12 (docs/reference.md §1.1)
      ANNOTATIONS/TARGET_<ID>.npy   (3, 128, 128); channel 0 = semantic class
      metadata.geojson              features with ID_PATCH, Fold (1–5), dates-S2 {index: YYYYMMDD}

Data card: 2,433 patches of 1.28 × 1.28 km in France, Sep 2018 – Nov 2019, 38–61 dates each,
18 crop classes + 0 background + 19 void (both ignored: ``ignore_labels = (0, 19)``). License and
citation: Sainte Fare Garnot & Landrieu, ICCV 2021 (see the PASTIS repository). PASTIS has no cloud
mask, so every finite, non-zero pixel is valid. Arrays are memory-mapped (``np.load(mmap_mode="r")``)
so a window read touches only that window. Georeferencing comes from each feature's geometry
(EPSG:2154 in PASTIS) when present.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from alise.dates import period_text
from alise.dates import parse_date
from alise.errors import AliseError
from alise.data.source import RasterGrid, SITSSource, Window, filter_dates
from alise.data.validity import nodata_to_nan

#: PASTIS semantic classes ([PB] label_names.json); 0 and 19 are ignored by the metric.
PASTIS_CLASSES: dict[int, str] = {
    0: "Background", 1: "Meadow", 2: "Soft winter wheat", 3: "Corn", 4: "Winter barley", 5: "Winter rapeseed",
    6: "Spring barley", 7: "Sunflower", 8: "Grapevine", 9: "Beet", 10: "Winter triticale",
    11: "Winter durum wheat", 12: "Fruits, vegetables, flowers", 13: "Potatoes", 14: "Leguminous fodder",
    15: "Soybeans", 16: "Orchard", 17: "Mixed cereal", 18: "Sorghum", 19: "Void label",
}
PASTIS_IGNORE = (0, 19)


def is_pastis_root(path: Path) -> bool:
    return (path / "metadata.geojson").is_file() and (path / "DATA_S2").is_dir()


def _load(path: Path) -> np.ndarray:
    try:
        return np.load(path, mmap_mode="r")
    except (OSError, ValueError) as e:
        raise AliseError(f"cannot read {path}: {e} (truncated or not a .npy file?)") from None


def _grid(feature: dict, crs, h: int, w: int) -> RasterGrid:
    from affine import Affine

    coords = np.asarray(_flatten((feature.get("geometry") or {}).get("coordinates", [])), dtype=float)
    if coords.size < 4:
        return RasterGrid(crs, None, h, w)
    (x0, y0), (x1, y1) = coords.reshape(-1, 2).min(axis=0), coords.reshape(-1, 2).max(axis=0)
    return RasterGrid(crs, Affine((x1 - x0) / w, 0.0, x0, 0.0, -(y1 - y0) / h, y1), h, w)


def _flatten(c) -> list:
    if isinstance(c, (list, tuple)) and c and isinstance(c[0], (int, float)):
        return [c[:2]]
    return [p for sub in (c or []) for p in _flatten(sub)]


class PastisSource(SITSSource):
    """One PASTIS patch (see the module docstring)."""

    layout = "pastis"

    def __init__(self, root: Path, feature: dict, crs=None, *, start=None, end=None, offset: float | str = "auto"):
        props = feature.get("properties", feature)
        pid = props.get("ID_PATCH")
        self.data_file = root / "DATA_S2" / f"S2_{pid}.npy"
        self.target_file = root / "ANNOTATIONS" / f"TARGET_{pid}.npy"
        arr = _load(self.data_file)
        if arr.ndim != 4 or arr.shape[1] != 10:
            raise AliseError(f"{self.data_file}: shape {arr.shape}, expected (T, 10, H, W)")
        raw = props.get("dates-S2")
        if isinstance(raw, str):
            raw = json.loads(raw)
        if not isinstance(raw, dict) or len(raw) != arr.shape[0]:
            n = len(raw) if isinstance(raw, dict) else 0
            raise AliseError(f"{root / 'metadata.geojson'}: patch {pid} lists {n} dates-S2 but {self.data_file.name} "
                             f"holds {arr.shape[0]} dates")
        where = f"{root / 'metadata.geojson'} patch {pid}"
        listed = [parse_date(str(raw[k]), where) for k in sorted(raw, key=int)]
        order = np.argsort(np.array(listed, dtype="datetime64[D]"), kind="stable")
        dates, keep = [], []
        for i in order:  # metadata order → chronological; a repeated date keeps its first array
            if not dates or listed[i] != dates[-1]:
                dates.append(listed[i])
                keep.append(i)
        sel = filter_dates(dates, start, end)
        if sel.size == 0:
            raise AliseError(f"{where}: no date {period_text(start, end)}")
        self._order = np.asarray(keep)[sel]  # chronological index → array index
        self._dtype = arr.dtype
        fold = props.get("Fold")
        super().__init__(f"S2_{pid}", self.data_file, [dates[i] for i in sel], _grid(feature, crs, *arr.shape[2:]),
                         class_names=dict(PASTIS_CLASSES), ignore_labels=PASTIS_IGNORE,
                         fold=None if fold is None else int(fold), offset=offset)

    def _is_float(self) -> bool:
        return self._dtype.kind == "f"

    def _read_raw(self, window: Window, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        r, c, h, w = window
        arr = _load(self.data_file)
        dn = nodata_to_nan(arr[self._order[idx], :, r:r + h, c:c + w], 0.0)  # (t, C, h, w); reads the window only
        return dn, np.ones((len(idx), h, w), bool)  # no cloud mask in PASTIS

    def _read_overview(self, idx: np.ndarray, side: int) -> tuple[np.ndarray, np.ndarray]:
        arr = _load(self.data_file)
        step = max(1, -(-max(arr.shape[2:]) // side))
        b02 = nodata_to_nan(arr[self._order[idx], 0, ::step, ::step], 0.0)  # (t, h', w')
        return b02, np.ones(b02.shape, bool)

    def _read_labels(self, window: Window, year: int | None) -> np.ndarray | None:
        if not self.target_file.is_file():
            return None
        r, c, h, w = window
        return np.asarray(_load(self.target_file)[0, r:r + h, c:c + w], dtype=np.int64)


def open_pastis(root: Path, *, start=None, end=None, offset: float | str = "auto", folds=None) -> list[PastisSource]:
    """One :class:`PastisSource` per patch of ``metadata.geojson`` whose ``DATA_S2`` file exists.

    Args:
        root: the PASTIS folder; folds: keep only these folds (e.g. ``(1, 2, 3)``), None = all.
    """
    meta = root / "metadata.geojson"
    try:
        gj = json.loads(meta.read_text())
        features = gj["features"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise AliseError(f"cannot read {meta}: {e} (expected a GeoJSON FeatureCollection)") from None
    crs = None
    name = ((gj.get("crs") or {}).get("properties") or {}).get("name")
    if name:
        from rasterio.crs import CRS

        crs = CRS.from_user_input(name.replace("urn:ogc:def:crs:", "").replace("::", ":"))
    out = []
    for feat in sorted(features, key=lambda f: int(f.get("properties", {}).get("ID_PATCH", -1))):
        props = feat.get("properties", {})
        if "ID_PATCH" not in props:
            raise AliseError(f"{meta}: a feature has no ID_PATCH property")
        if folds is not None and int(props.get("Fold", -1)) not in set(folds):
            continue
        if (root / "DATA_S2" / f"S2_{props['ID_PATCH']}.npy").is_file():
            out.append(PastisSource(root, feat, crs, start=start, end=end, offset=offset))
    if not out:
        raise AliseError(f"{root}: no DATA_S2/S2_<ID>.npy matches a patch of metadata.geojson")
    return out
