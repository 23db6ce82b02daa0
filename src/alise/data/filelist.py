"""A CSV file listing the images of one series (``--files LIST.csv``, or LIST.csv as a DATA path).

::

    path,date,mask
    images/T31UFS_20180601_all.tif,2018-06-01,masks/scl_0601.tif
    /data/other/2018-06-04.tif,2018-06-04,
    S2A_MSIL2A_20180609T105031_N0206_R051_T31UFS_20180609T135420.SAFE,2018-06-09,

* ``path``: a 10-band image (bands as in the folder layout), a folder holding one date's files (one
  per band), or a ``.SAFE`` product; relative to the CSV's folder, or absolute.
* ``date``: YYYY-MM-DD or YYYYMMDD; left empty, it is read from the file name (built-in rules or
  ``--date-pattern``).
* ``mask`` (optional column): the date's Sen2Cor SCL file. Given for every row or for none (a
  ``.SAFE`` or a date folder with an SCL file brings its own).

``labels.tif`` and ``classes.csv`` next to the CSV, if present, are the series' labels.
"""

from __future__ import annotations

import csv
from pathlib import Path

from alise.dates import date_from_name, parse_date
from alise.errors import AliseError
from alise.data.folder import (IMAGE_EXT, Scene, SceneSource, check_unique_dates, image_files, scene_from_files,
                               select_scenes)
from alise.data.safe import is_safe, safe_scene
from alise.data.validity import DEFAULT_CLEAR_SCL


def _header(path: Path) -> list[str]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            first = next(csv.reader(f), [])
    except (OSError, UnicodeDecodeError, csv.Error):
        return []
    return [c.strip().lower() for c in first]


def is_file_list(path: Path) -> bool:
    """A ``.csv`` file whose header has the columns ``path`` and ``date``."""
    return path.is_file() and path.suffix.lower() == ".csv" and {"path", "date"} <= set(_header(path))


def read_file_list(path: Path, date_pattern=None) -> tuple[list[Scene], str | None]:
    """``(scenes sorted by date, mask kind)`` of a file list; every problem names the CSV line."""
    path = Path(path)
    if not {"path", "date"} <= set(_header(path)):
        raise AliseError(f"{path}: a file list needs the header path,date[,mask] (got {','.join(_header(path))!r})")
    with open(path, newline="", encoding="utf-8-sig") as f:
        rows = list(csv.DictReader(f))
    scenes, with_mask = [], []
    for line, row in enumerate(rows, start=2):
        row = {str(k).strip().lower(): (v or "").strip() for k, v in row.items() if k is not None}
        where = f"{path}:{line}"
        if not row.get("path"):
            if not any(row.values()):
                continue
            raise AliseError(f"{where}: empty path")
        p = Path(row["path"]).expanduser()
        p = p if p.is_absolute() else path.parent / p
        if not p.exists():
            raise AliseError(f"{where}: {p}: no such file or folder")
        d = parse_date(row["date"], where) if row.get("date") else date_from_name(p.name, where, date_pattern)
        if is_safe(p):
            sc = safe_scene(p, date=d)
        elif p.is_dir():
            sc = scene_from_files(d, image_files(p), p)
        elif p.suffix.lower() in IMAGE_EXT:
            sc = Scene(d, p, (p,))
        else:
            raise AliseError(f"{where}: {p} is not an image ({', '.join(IMAGE_EXT)}), a date folder or a .SAFE")
        if row.get("mask"):
            m = Path(row["mask"]).expanduser()
            m = m if m.is_absolute() else path.parent / m
            if not m.is_file():
                raise AliseError(f"{where}: mask {m}: no such file")
            sc.mask = m
        with_mask.append(sc.mask is not None)
        scenes.append(sc)
    if not scenes:
        raise AliseError(f"{path}: the file list has no rows")
    if any(with_mask) and not all(with_mask):
        i = with_mask.index(False)
        raise AliseError(f"{path}: row {i + 2} ({scenes[i].where.name}) has no mask while others have one; give a "
                         "mask for every date or for none")
    scenes.sort(key=lambda s: s.date)
    check_unique_dates(scenes)
    return scenes, "scl" if all(with_mask) else None


class ListSource(SceneSource):
    """The series listed in a CSV file (see the module docstring); ``name`` is the CSV's stem."""

    layout = "list"

    def __init__(self, path: str | Path, *, clear_scl=DEFAULT_CLEAR_SCL, start=None, end=None,
                 offset: float | str = "auto", date_pattern=None):
        path = Path(path)
        scenes, mask_kind = read_file_list(path, date_pattern)
        scenes = select_scenes(scenes, start, end, path)
        super().__init__(path, scenes, name=path.stem, mask_kind=mask_kind, site=path.parent,
                         clear_scl=clear_scl, offset=offset)
