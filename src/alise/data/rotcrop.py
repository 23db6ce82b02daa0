"""RotCrop (CropRot): crop change between two annual SITS of the same place ([P] §IV-A-4; docs/reference.md §8–9).

Data card
---------
* Source: Dumeur et al. (the ALISE paper), built from French LPIS labels (RPG Explorer) on PASTIS
  footprints; 2019 and 2020 Sentinel-2 L2A (Sen2Cor) series of each sample. Layout of the authors'
  loader (Alise-Minimal ``croprot.py``): one ``.pt`` file per sample holding a dict::

      {"year1": {"sits": (C, T, H, W) int16 DN (reflectance × 10 000), "doy": (T,) days,
                 "mask": {"mask_cld": (1, T, H, W) 1 = cloud, "mask_slc": (1, T, H, W) Sen2Cor SCL}},
       "year2": {... same ...},
       "raster": (3, H, W) [crop year 1, crop year 2, change]}

* ``doy`` counts days since the ALISE origin 2014-03-03; values ≤ 366 are taken as day-of-year of
  ``years`` (default 2019, 2020) instead. ``mask_slc`` holding only 0/1 is taken as a cloud mask.
* Classes: 0 background, 5 rapeseed, 6 cereal, 7 proteaginous, 8 soybean, 9 sunflower, 10 corn,
  11 rice, 12 tuber, 13 grassland (7, 8, 12 absent). Change truth is *derived* from the two crop
  channels (labels differ = changed; background in either year excluded), never trusted from the
  third channel's coding. Not georeferenced.
* Files are read with ``torch.load(weights_only=True)``: tensors and plain containers only, no
  arbitrary unpickling.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from alise.dates import DATE_ORIGIN
from alise.errors import AliseError
from alise.data.change_truth import change_truth_from_labels
from alise.data.source import RasterGrid, SITSSource, Window
from alise.data.validity import DEFAULT_CLEAR_SCL, valid_from_scl

#: RotCrop crop classes (id → name).
ROTCROP_CLASSES: dict[int, str] = {0: "background", 5: "rapeseed", 6: "cereal", 7: "proteaginous", 8: "soybean",
                                   9: "sunflower", 10: "corn", 11: "rice", 12: "tuber", 13: "grassland"}


def is_rotcrop(path: Path) -> bool:
    return Path(path).is_file() and Path(path).suffix == ".pt"


def load_sample(path: str | Path) -> dict:
    """The sample dict of a RotCrop ``.pt`` file, checked."""
    path = Path(path)
    try:
        d = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # any unpickling / format failure is a bad input file
        raise AliseError(f"cannot read RotCrop sample {path}: {str(e).splitlines()[0]}") from None
    for key in ("year1", "year2", "raster"):
        if not isinstance(d, dict) or key not in d:
            raise AliseError(f"{path}: not a RotCrop sample (missing {key!r}; expected year1, year2, raster)")
    for key in ("year1", "year2"):
        if not isinstance(d[key], dict) or not {"sits", "doy"} <= set(d[key]):
            raise AliseError(f"{path}: {key} must hold 'sits' (C, T, H, W) and 'doy' (T,)")
    return d


class RotCropYear(SITSSource):
    """One year of a RotCrop sample as a :class:`SITSSource` (labels = that year's crops)."""

    layout = "rotcrop"

    def __init__(self, path: Path, sample: dict, which: int, year: int, clear_scl=DEFAULT_CLEAR_SCL):
        part = sample[f"year{which}"]
        sits = np.asarray(part["sits"])
        if sits.ndim != 4 or sits.shape[0] != 10:
            raise AliseError(f"{path}: year{which} sits must be (10, T, H, W), got {sits.shape}")
        self._dn = np.moveaxis(sits, 0, 1)  # (T, C, H, W)
        doy = np.asarray(part["doy"], dtype=np.float64).reshape(-1)
        if doy.shape[0] != self._dn.shape[0]:
            raise AliseError(f"{path}: year{which} has {self._dn.shape[0]} images but {doy.shape[0]} dates")
        origin = dt.date(year, 1, 1) - dt.timedelta(days=1) if doy.max() <= 366 else DATE_ORIGIN
        dates = [origin + dt.timedelta(days=int(round(v))) for v in doy]
        order = np.argsort(doy, kind="stable")
        self._dn, dates = self._dn[order], [dates[i] for i in order]
        self._clear_mask = np.ones(self._dn.shape[:1] + self._dn.shape[2:], bool)  # (T, H, W)
        mask = part.get("mask") or {}
        if "mask_cld" in mask:
            self._clear_mask &= np.asarray(mask["mask_cld"]).reshape(self._clear_mask.shape)[order] == 0
        if "mask_slc" in mask:
            scl = np.asarray(mask["mask_slc"]).reshape(self._clear_mask.shape)[order]
            self._clear_mask &= (scl == 0) if scl.max() <= 1 else valid_from_scl(scl, clear_scl)
        self._labels = np.asarray(sample["raster"])[which - 1].astype(np.int64)
        h, w = self._dn.shape[2:]
        super().__init__(f"{Path(path).stem}_{year}", path, dates, RasterGrid(None, None, h, w),
                         class_names=dict(ROTCROP_CLASSES), ignore_labels=(0,))

    def _read_raw(self, window: Window, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        r, c, h, w = window
        dn = self._dn[idx, :, r:r + h, c:c + w].astype(np.float32)
        dn[dn <= 0] = np.nan  # 0 / negative = nodata in the int16 tensors
        return dn, self._clear_mask[idx, r:r + h, c:c + w].copy()

    def _read_overview(self, idx: np.ndarray, side: int) -> tuple[np.ndarray, np.ndarray]:
        step = max(1, -(-max(self.grid.height, self.grid.width) // side))
        b02 = self._dn[idx, 0, ::step, ::step].astype(np.float32)
        b02[b02 <= 0] = np.nan
        return b02, self._clear_mask[idx, ::step, ::step]

    def _read_labels(self, window: Window, year: int | None) -> np.ndarray | None:
        r, c, h, w = window
        return self._labels[r:r + h, c:c + w].copy()


@dataclass
class RotCropPair:
    """Both years of a sample and the derived change truth ``(H, W)`` uint8 (1 / 0 / 255 excluded)."""

    a: RotCropYear
    b: RotCropYear
    truth: np.ndarray


def open_rotcrop(path: str | Path, years: tuple[int, int] = (2019, 2020)) -> RotCropPair:
    """Open a RotCrop ``.pt`` sample as two sources plus change truth (docs/reference.md §8)."""

    path = Path(path)
    sample = load_sample(path)
    a, b = RotCropYear(path, sample, 1, years[0]), RotCropYear(path, sample, 2, years[1])
    if (a.grid.height, a.grid.width) != (b.grid.height, b.grid.width):
        raise AliseError(f"{path}: the two years differ in size ({a.grid.height}×{a.grid.width} vs "
                         f"{b.grid.height}×{b.grid.width})")
    return RotCropPair(a, b, change_truth_from_labels(a.labels(), b.labels()))
