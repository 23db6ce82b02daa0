"""Sentinel-2 Level-2A products in ESA's ``.SAFE`` format: one product = one date.

::

    S2A_MSIL2A_20170804T105031_N0205_R051_T31UFS_20170804T105435.SAFE/
      MTD_MSIL2A.xml                                   processing baseline, BOA_ADD_OFFSET per band
      GRANULE/L2A_T31UFS_A011162_20170804T105435/IMG_DATA/
        R10m/T31UFS_20170804T105031_B02_10m.jp2        B02 B03 B04 B08 (+ AOT, TCI, WVP: ignored)
        R20m/T31UFS_20170804T105031_B05_20m.jp2        B05 B06 B07 B8A B11 B12, SCL (and 20 m B02 …)
        R60m/…                                         B01 B09 (ignored)

A ``.SAFE`` folder is a series of one date; a folder holding several ``.SAFE`` folders is one series
(one date each; ``labels.tif`` / ``classes.csv`` beside them are its labels). Each band is read at
its finest resolution; the grid is the 10 m grid of B02; 20 m bands are resampled onto it with
bilinear interpolation and SCL with nearest neighbour (``folder.SceneSource``). The date is the
sensing date of the product name. Files are read through GDAL (JPEG 2000: JP2OpenJPEG driver).

Offset: baseline ≥ 04.00 stores ``DN = 10 000 · reflectance + 1000`` and says so with
``<BOA_ADD_OFFSET band_id="…">-1000</BOA_ADD_OFFSET>`` in ``MTD_MSIL2A.xml``; that value becomes the
date's ``BOA_ADD_OFFSET`` tag, which ``units.py`` treats as authoritative. A baseline ≥ 04.00
product without the element gets the standard −1000; older products (and products without the XML)
get no tag and follow the values test of ``units.py``.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

from alise.dates import date_from_name
from alise.errors import AliseError
from alise.normalise import S2_BANDS
from alise.data.folder import Scene, SceneSource, band_name, check_unique_dates, select_scenes
from alise.data.units import S2_OFFSET
from alise.data.validity import DEFAULT_CLEAR_SCL

_BAND_FILE = re.compile(r"_(B0[1-9]|B1[0-2]|B8A|SCL)_(10|20|60)m\.(jp2|tif|tiff)$", re.IGNORECASE)
#: ``band_id`` of the product metadata → band name (PSD order; used without Spectral_Information).
SAFE_BAND_IDS = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12")


def is_safe(path: Path) -> bool:
    """A ``*.SAFE`` product folder."""
    return path.is_dir() and path.suffix.lower() == ".safe"


def safe_products(folder: Path) -> list[Path]:
    """The ``*.SAFE`` folders directly in ``folder``, sorted."""
    try:
        return sorted(p for p in folder.iterdir() if is_safe(p) and not p.name.startswith("."))
    except OSError:
        return []


def is_safe_series(path: Path) -> bool:
    """A ``.SAFE`` product, or a folder holding at least one."""
    return is_safe(path) or (path.is_dir() and bool(safe_products(path)))


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def product_offset(safe: Path) -> float | None:
    """DN to subtract from every band of a product (1000 for baseline ≥ 04.00), None if unknown.

    Read from ``MTD_MSIL2A.xml`` (standard library XML parser); without it, from the ``_Nxxyy_``
    baseline of the product name.

    Raises:
        AliseError: unreadable XML, a quantification value other than 10 000, or offsets that differ
        between the 10 bands alise reads.
    """
    mtd = safe / "MTD_MSIL2A.xml"
    baseline = None
    m = re.search(r"_N(\d{2})(\d{2})_", safe.name)
    if m:
        baseline = float(f"{m.group(1)}.{m.group(2)}")
    if not mtd.is_file():
        return S2_OFFSET if baseline is not None and baseline >= 4.0 else None
    try:
        root = ET.parse(mtd).getroot()
    except (ET.ParseError, OSError) as e:
        raise AliseError(f"cannot read {mtd}: {e}") from None
    ids: dict[str, str] = {}
    offsets: dict[str, float] = {}
    for el in root.iter():
        tag = _local(el.tag)
        try:
            if tag == "PROCESSING_BASELINE" and el.text:
                baseline = float(el.text.strip())
            elif tag == "BOA_QUANTIFICATION_VALUE" and el.text and float(el.text) != 10000:
                raise AliseError(f"{mtd}: BOA_QUANTIFICATION_VALUE {el.text.strip()}; alise expects 10000 "
                                 "(DN = reflectance × 10000)")
            elif tag == "Spectral_Information" and el.get("bandId") is not None:
                ids[el.get("bandId")] = band_name(el.get("physicalBand")) or ""
            elif tag == "BOA_ADD_OFFSET":
                offsets[el.get("band_id", "")] = float((el.text or "").strip())
        except ValueError:
            raise AliseError(f"{mtd}: <{tag}> {el.text!r} is not a number") from None
    by_band = {}
    for bid, value in offsets.items():
        name = ids.get(bid) or (SAFE_BAND_IDS[int(bid)] if bid.isdigit() and int(bid) < len(SAFE_BAND_IDS) else None)
        if name in S2_BANDS:
            by_band[name] = value
    if by_band:
        values = sorted(set(by_band.values()))
        if len(values) > 1:
            raise AliseError(f"{mtd}: BOA_ADD_OFFSET differs between bands ({by_band}); alise subtracts one "
                             "offset per date")
        return -values[0]
    return S2_OFFSET if baseline is not None and baseline >= 4.0 else None


def safe_scene(safe: Path, date_pattern=None, date=None) -> Scene:
    """The :class:`Scene` of one L2A product: its band files at the finest resolution, SCL, offset tag.

    ``date`` (e.g. from a file list) replaces the date of the product name.
    """
    if re.search(r"MSIL1C", safe.name, re.IGNORECASE):
        raise AliseError(f"{safe}: a Level-1C (top-of-atmosphere) product; alise reads Level-2A "
                         "(surface reflectance, S2x_MSIL2A_…) products")
    d = date if date is not None else date_from_name(safe.name, str(safe), date_pattern)
    img_dirs = sorted((safe / "GRANULE").glob("*/IMG_DATA"))
    if not img_dirs:
        raise AliseError(f"{safe}: no GRANULE/*/IMG_DATA folder (incomplete download or not an L2A product?)")
    if len(img_dirs) > 1:
        raise AliseError(f"{safe}: {len(img_dirs)} granules in GRANULE/; alise reads single-tile products")
    best: dict[str, tuple[int, Path]] = {}
    for f in sorted(img_dirs[0].rglob("*")):
        m = _BAND_FILE.search(f.name)
        if m is None or not f.is_file():
            continue
        band, res = m.group(1).upper(), int(m.group(2))
        if band not in best or res < best[band][0]:
            best[band] = (res, f)
    missing = [b for b in (*S2_BANDS, "SCL") if b not in best]
    if missing:
        raise AliseError(f"{safe}: no {' '.join(missing)} image in {img_dirs[0].relative_to(safe)} "
                         "(expected R10m/*_B02_10m.jp2 … R20m/*_SCL_20m.jp2)")
    offset = product_offset(safe)
    tags = {} if offset is None else {"BOA_ADD_OFFSET": f"{-offset:g}"}
    return Scene(d, safe, tuple(best[b][1] for b in S2_BANDS), best["SCL"][1], tags)


class SafeSource(SceneSource):
    """One ``.SAFE`` product (one date) or a folder of them (one series); see the module docstring."""

    layout = "safe"

    def __init__(self, path: str | Path, *, clear_scl=DEFAULT_CLEAR_SCL, start=None, end=None,
                 offset: float | str = "auto", date_pattern=None):
        path = Path(path)
        single = is_safe(path)
        products = [path] if single else safe_products(path)
        if not products:
            raise AliseError(f"{path}: no .SAFE product folder")
        scenes = sorted((safe_scene(p, date_pattern) for p in products), key=lambda s: s.date)
        check_unique_dates(scenes)
        scenes = select_scenes(scenes, start, end, path)
        name = path.resolve().name
        super().__init__(path, scenes, name=name[:-5] if single else name, mask_kind="scl",
                         site=None if single else path, clear_scl=clear_scl, offset=offset)
