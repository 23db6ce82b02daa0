"""MultiSenGE: land-cover segmentation patches of eastern France, 2020 ([P] §IV-A-3; docs/reference.md §9).

Data card
---------
* Source: Wenger et al., MultiSenGE (Sentinel-1/2 + land-cover reference, Grand-Est, France);
  tools and per-patch JSON: github.com/r-wenger/MultiSenGE-Tools. 8,157 patches of 256 × 256 px at
  10 m; ALISE used 4,145 with 3–14 S2 dates, year 2020. THEIA L2A (not Sen2Cor), no cloud mask
  (patches were chosen with < 10 % clouds), so every pixel with finite data is taken as clear.
* Layout (folder names free: files are found by name anywhere below the root, ≤ 2 levels)::

      ROOT/labels/{tile}_{x}_{y}.json          per patch: "corresponding_s2" (';'-separated S2
                                               file names), "corresponding_s1", "projection"
                                               (WKT), "labels" (';'-separated class ids present)
      ROOT/**/{tile}_{YYYYMMDD}_S2_{x}_{y}.tif 10 bands B02 B03 B04 B05 B06 B07 B08 B8A B11 B12,
                                               reflectance × 10 000 (bands 1–10 are read)
      ROOT/**/{tile}_GR_{x}_{y}.tif            ground reference, 1 band, class ids 0–14

* Classes: 0 background/no-data (ignored), 1 dense built-up, 2 sparse built-up, 3 specialised
  built-up, 4 specialised but vegetative, 5 large-scale networks, 6 arable lands, 7 vineyards,
  8 orchards, 9 grasslands, 10 groves/hedges, 11 forest, 12 open spaces/mineral, 13 wetlands,
  14 water surfaces.
* Protocol (docs/reference.md §7): random 60 / 16 / 24 % split of patches, 2 seeds
  (``alise probe ROOT --split sits --fractions 0.6,0.16,0.24 --repeats 2``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from rasterio.windows import Window as RioWindow

from alise.dates import period_text
from alise.dates import parse_date
from alise.errors import AliseError
from alise.data.folder import grid_of, open_raster
from alise.data.source import SITSSource, Window, filter_dates
from alise.data.validity import nodata_to_nan

#: MultiSenGE land-cover classes (id → name).
MULTISENGE_CLASSES: dict[int, str] = {
    0: "background", 1: "dense_built_up", 2: "sparse_built_up", 3: "specialized_built_up",
    4: "specialized_vegetative", 5: "large_scale_networks", 6: "arable_lands", 7: "vineyards", 8: "orchards",
    9: "grasslands", 10: "groves_hedges", 11: "forest", 12: "open_spaces_mineral", 13: "wetlands",
    14: "water_surfaces",
}


def is_multisenge_root(path: Path) -> bool:
    """A folder with ``labels/*.json`` patch descriptions."""
    d = Path(path) / "labels"
    return d.is_dir() and any(d.glob("*_*_*.json"))


def _index(root: Path) -> dict[str, Path]:
    """File name → path of every ``.tif`` up to two levels below ``root``."""
    out: dict[str, Path] = {}
    for pattern in ("*.tif", "*/*.tif", "*/*/*.tif"):
        for p in root.glob(pattern):
            out.setdefault(p.name, p)
    return out


class MultiSenGESource(SITSSource):
    """One MultiSenGE patch: its S2 dates (from the JSON) and its ground reference."""

    layout = "multisenge"

    def __init__(self, json_path: Path, files: dict[str, Path], *, start=None, end=None, offset="auto"):
        json_path = Path(json_path)
        try:
            meta = json.loads(json_path.read_text())
            names = [n.strip() for n in str(meta["corresponding_s2"]).split(";") if n.strip()]
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise AliseError(f"{json_path}: not a MultiSenGE patch description ({e})") from None
        tile, x, y = json_path.stem.split("_")[:3]
        by_date = {}
        for n in names:
            parts = n.split("_")
            if len(parts) < 5 or parts[2] != "S2":
                raise AliseError(f"{json_path}: S2 file name {n!r} is not {{tile}}_{{YYYYMMDD}}_S2_{{x}}_{{y}}.tif")
            if n not in files:
                raise AliseError(f"{json_path}: listed S2 file {n} not found below {json_path.parent.parent}")
            by_date[parse_date(parts[1], where=n)] = files[n]
        dates = sorted(by_date)
        dates = [dates[i] for i in filter_dates(dates, start, end)]
        if not dates:
            raise AliseError(f"{json_path}: no S2 date {period_text(start, end)}")
        self.files = [by_date[d] for d in dates]
        gr = f"{tile}_GR_{x}_{y}.tif"
        self.label_file = files.get(gr)
        with open_raster(self.files[0], "image") as src:
            if src.count < 10:
                raise AliseError(f"{self.files[0]}: {src.count} bands, MultiSenGE S2 patches have 10")
            grid = grid_of(src)
            self.nodata = src.nodata
        super().__init__(json_path.stem, json_path, dates, grid, class_names=dict(MULTISENGE_CLASSES),
                         ignore_labels=(0,), offset=offset)

    def _read_raw(self, window: Window, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        r, c, h, w = window
        dn = np.empty((len(idx), 10, h, w), np.float32)  # (t, C, h, w)
        for k, i in enumerate(idx):  # one file per date: I/O
            with open_raster(self.files[i], "image") as src:
                if (src.height, src.width) != (self.grid.height, self.grid.width):
                    raise AliseError(f"{self.files[i]}: {src.height}×{src.width} px, other dates are "
                                     f"{self.grid.height}×{self.grid.width}")
                dn[k] = nodata_to_nan(src.read(list(range(1, 11)), window=RioWindow(c, r, w, h)), self.nodata)
        return dn, np.ones((len(idx), h, w), bool)  # no cloud mask in MultiSenGE

    def _read_overview(self, idx: np.ndarray, side: int) -> tuple[np.ndarray, np.ndarray]:
        H, W = self.grid.height, self.grid.width
        step = max(1, -(-max(H, W) // side))
        dn, _ = self._read_raw((0, 0, H, W), idx)
        b02 = dn[:, 0, ::step, ::step]
        return b02, np.ones(b02.shape, bool)

    def _read_labels(self, window: Window, year: int | None) -> np.ndarray | None:
        if self.label_file is None:
            return None
        r, c, h, w = window
        with open_raster(self.label_file, "ground reference") as src:
            return src.read(1, window=RioWindow(c, r, w, h)).astype(np.int64)


def open_multisenge(root: str | Path, *, start=None, end=None, offset="auto") -> list[MultiSenGESource]:
    """Every patch described in ``root/labels/*.json`` (sorted by name)."""
    root = Path(root)
    if not is_multisenge_root(root):
        raise AliseError(f"{root}: not a MultiSenGE folder (expected labels/{{tile}}_{{x}}_{{y}}.json)")
    files = _index(root)
    return [MultiSenGESource(j, files, start=start, end=end, offset=offset)
            for j in sorted((root / "labels").glob("*_*_*.json"))]
