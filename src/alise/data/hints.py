""""Did you mean …": one line saying what to pass instead of a path that is not a series.

Used by :func:`alise.data.open_sources` before and after layout detection:

* :func:`misplaced` — a path *inside* a series (the ``s2/`` folder, a date folder, a single image,
  a file or folder inside a ``.SAFE`` product, a table of a site, a zipped product): never a series
  itself, so it is checked first;
* :func:`deeper` — a folder with no series within the scanned depth: the first one further down.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from alise.dates import dates_in_name
from alise.data.filelist import is_file_list
from alise.data.folder import IMAGE_DIRS, IMAGE_EXT

#: The layout detector (:func:`alise.data.discover.detect_layout`, given by the caller): path → layout or None.
Detect = Callable[[Path], "str | None"]

#: How far :func:`deeper` looks, and how many folders it visits at most.
DEEP_LEVELS = 6
_MAX_VISITS = 5000


def _safe_ancestor(p: Path) -> Path | None:
    for a in [p, *p.parents]:
        if a.suffix.lower() == ".safe" and a.is_dir():
            return a
    return None


def _series_of(folder: Path, detect_layout: Detect) -> Path | None:
    """The series folder that ``folder`` belongs to, if it is an image/mask folder or a date folder."""
    if folder.name.lower() in IMAGE_DIRS:
        return folder.parent
    if folder.parent.name.lower() == "s2" and dates_in_name(folder.name):
        return folder.parent.parent
    if dates_in_name(folder.name) and detect_layout(folder.parent) in ("folder", "flat"):
        return folder.parent
    return None


def misplaced(p: Path, detect_layout: Detect) -> str | None:
    """The hint for a path inside a series (see the module docstring), or None."""
    safe = _safe_ancestor(p)
    if safe is not None and safe != p:
        return (f"{p}: this is inside the Sentinel-2 product {safe.name}; pass {safe} (one date) or "
                f"{safe.parent} (the series of every .SAFE there)")
    name = p.name.lower()
    if p.is_file():
        if name.endswith(".zip") and ("msil2a" in name or ".safe" in name):
            return f"{p}: a zipped Sentinel-2 product; unzip it and pass the .SAFE folder (or the folder holding them)"
        if p.suffix.lower() == ".csv" and not is_file_list(p):
            owner = p.parent if detect_layout(p.parent) else None
            if owner is not None:
                return f"{p}: this is a table of the series {owner.name}; pass its folder {owner}"
            return f"{p}: not a file list; its first line must be the header path,date[,mask]"
        if p.suffix.lower() in IMAGE_EXT:
            folder = p.parent
            series = _series_of(folder, detect_layout) or (folder if detect_layout(folder) else None)
            if name.startswith("labels."):
                what = "the labels of a site"
            else:
                what = "a single image of a time series"
            if series is not None:
                return f"{p}: {what}; pass the series folder {series}"
            return (f"{p}: {what}; alise reads a series: put one image per date in a folder (YYYY-MM-DD.tif) and "
                    "pass the folder, or list the images in a CSV (path,date) and pass it with --files LIST.csv")
        return None
    if not p.is_dir() or (p / "s2").is_dir():
        return None
    if name in IMAGE_DIRS:
        kind = {"s2": "image folder", "scl": "SCL mask folder", "mask": "cloud-mask folder"}[name]
        return f"{p}: this is the {kind} of a site; pass its parent {p.parent}"
    series = _series_of(p, detect_layout)
    if series is not None:
        return f"{p}: this is one date of the series {series.name}; pass {series}"
    return None


def deeper(p: Path, skip: int, detect_layout: Detect) -> str | None:
    """A hint naming the first series between ``skip`` + 1 and :data:`DEEP_LEVELS` levels below ``p``."""
    level, frontier, visits = 0, [p], 0
    while frontier and level < DEEP_LEVELS:
        level += 1
        nxt = []
        for d in frontier:
            try:
                children = sorted(c for c in d.iterdir() if c.is_dir() and not c.name.startswith("."))
            except OSError:
                continue
            for c in children:
                visits += 1
                if visits > _MAX_VISITS:
                    return None
                if level > skip and detect_layout(c) is not None:
                    return (f"{p}: no series within {skip} levels, but {c} ({level} levels down) is one; "
                            f"pass it, or a folder at most {skip} levels above it")
                nxt.append(c)
        frontier = nxt
    zipped = sorted(c.name for c in p.iterdir() if c.is_file() and c.name.lower().endswith(".zip")
                    and "msil2a" in c.name.lower()) if p.is_dir() else []
    if zipped:
        return f"{p}: holds zipped Sentinel-2 products ({zipped[0]} …); unzip them here and pass {p} again"
    return None
