"""From paths to sources: detect the layout of each path and expand roots (docs/design.md §2).

``open_source(PATH)`` opens exactly one series; ``open_sources(PATHS)`` expands each path into all
the series it holds:

* a **site folder** (has ``s2/``) → one :class:`FolderSource`; a folder of **dated images without
  ``s2/``** ("flat": ``SITE/2018-06-01.tif`` …, or one folder / one file per band and date) → one
  :class:`FolderSource`;
* a Sentinel-2 L2A **``.SAFE`` product**, or a folder of them → one :class:`SafeSource`;
* a **file list** (``LIST.csv`` with header ``path,date[,mask]``) → one :class:`ListSource`;
* a **PASTIS root** (``metadata.geojson`` + ``DATA_S2/``) → one :class:`PastisSource` per patch;
  a single ``DATA_S2/S2_<ID>.npy`` path → that patch;
* a **cube** (``*.zarr`` store, ``*.nc`` file) → one :class:`CubeSource`;
* a **STAC ItemCollection** (``*.json`` / ``*.geojson`` of Sentinel-2 L2A items) → one
  :class:`~alise.data.stac.StacSource`, loaded lazily through odc-stac;
* a **MultiSenGE root** (``labels/*.json``) → one :class:`MultiSenGESource` per patch;
* any other **folder** → every site folder / PASTIS root / cube below it (up to 3 levels, hidden
  folders skipped), e.g. the output of ``alise synth`` (``OUT/site_000/`` …).

A path that lies *inside* a series (``SITE/s2``, a date folder, one image, a file of a ``.SAFE``)
or holds none within 3 levels is refused with one line saying what to pass instead (``hints.py``).
Dates in file and folder names follow :func:`alise.dates.date_from_name`; ``date_pattern`` (the
``--date-pattern`` option) replaces its built-in rules.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from alise.dates import compile_date_pattern
from alise.errors import AliseError
from alise.data.cube import CubeSource, is_cube
from alise.data.stac import StacSource, is_stac
from alise.data.filelist import ListSource, is_file_list
from alise.data.folder import IMAGE_DIRS, FolderSource, has_dated_images
from alise.data.hints import deeper, misplaced
from alise.data.multisenge import is_multisenge_root, open_multisenge
from alise.data.pastis import PastisSource, is_pastis_root, open_pastis
from alise.data.safe import SafeSource, is_safe_series
from alise.data.source import SITSSource
from alise.data.validity import DEFAULT_CLEAR_SCL

_MAX_DEPTH = 3


def detect_layout(path: Path, date_pattern=None) -> str | None:
    """``"folder"``, ``"flat"``, ``"safe"``, ``"list"``, ``"pastis"``, ``"pastis-patch"``, ``"cube"``,
    ``"multisenge"``, ``"stac"`` or None (maybe a root of several). ``date_pattern``: see :func:`open_sources`."""
    path = Path(path)
    if is_cube(path):  # before "folder": a zarr store may hold an s2/ variable folder
        return "cube"
    if is_multisenge_root(path):  # before "folder": its S2 GeoTIFFs may sit in an s2/ folder
        return "multisenge"
    if path.is_dir() and (path / "s2").is_dir():
        return "folder"
    if is_pastis_root(path):
        return "pastis"
    if path.is_file() and path.suffix == ".npy" and path.parent.name == "DATA_S2":
        return "pastis-patch"
    if is_file_list(path):
        return "list"
    if is_stac(path):
        return "stac"
    if is_safe_series(path):
        return "safe"
    if path.is_dir() and path.name.lower() not in IMAGE_DIRS and has_dated_images(path, date_pattern):
        return "flat"
    return None


def _open_one(path: Path, layout: str, kw: dict) -> list[SITSSource]:
    clear_scl = kw.get("clear_scl", DEFAULT_CLEAR_SCL)
    common = {k: kw[k] for k in ("start", "end", "offset") if k in kw}
    dated = {"folder": FolderSource, "flat": FolderSource, "safe": SafeSource, "list": ListSource}
    if layout in dated:
        return [dated[layout](path, clear_scl=clear_scl, date_pattern=kw.get("date_pattern"), **common)]
    if layout == "cube":
        return [CubeSource(path, clear_scl=clear_scl, **common)]
    if layout == "stac":
        return [StacSource(path, clear_scl=clear_scl, **common)]
    if layout == "pastis":
        return open_pastis(path, folds=kw.get("folds"), **common)
    if layout == "multisenge":
        return open_multisenge(path, **{k: common[k] for k in ("start", "end") if k in common})
    pid = path.stem.removeprefix("S2_")
    patches = [s for s in open_pastis(path.parent.parent, **common) if s.name == f"S2_{pid}"]
    if not patches:
        raise AliseError(f"{path}: patch {pid} is not listed in {path.parent.parent / 'metadata.geojson'}")
    return patches


def _walk(root: Path, depth: int, date_pattern=None) -> Iterable[tuple[Path, str]]:
    try:
        children = sorted(p for p in root.iterdir() if not p.name.startswith("."))
    except OSError as e:
        raise AliseError(f"cannot list {root}: {e}") from None
    for child in children:
        layout = detect_layout(child, date_pattern)
        if layout is not None:
            yield child, layout
        elif child.is_dir() and depth > 1:
            yield from _walk(child, depth - 1, date_pattern)


def open_sources(paths: str | os.PathLike | Iterable[str | os.PathLike], *, clear_scl=DEFAULT_CLEAR_SCL,
                 start=None, end=None, offset: float | str = "auto", folds=None,
                 date_pattern: str | None = None) -> list[SITSSource]:
    """Every series held by ``paths`` (see the module docstring), in path order then name order.

    Args:
        paths: one path or several.
        clear_scl: SCL classes counted as clear (default {4, 5, 6}).
        start, end: keep dates in ``[start, end]`` (``date`` or ``"YYYY-MM-DD"``).
        offset: ``"auto"`` (units.py rules) or a number of DN subtracted from every date.
        folds: PASTIS folds to keep (None = all).
        date_pattern: a regex with named groups ``year``, ``month``, ``day`` (or one ``date``) that
            replaces the built-in rules for dates in file and folder names (``--date-pattern``).

    Raises:
        AliseError: a path does not exist or lies inside a series (the message says what to pass),
        or nothing readable was found.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    if date_pattern is not None:
        date_pattern = compile_date_pattern(date_pattern)
    kw = dict(clear_scl=clear_scl, start=start, end=end, offset=offset, folds=folds, date_pattern=date_pattern)
    out: list[SITSSource] = []
    for p in map(Path, paths):
        if not p.exists():
            raise AliseError(f"{p}: no such file or folder")
        hint = misplaced(p, detect_layout)
        if hint is not None:
            raise AliseError(hint)
        layout = detect_layout(p, date_pattern)
        if layout is not None:
            out.extend(_open_one(p, layout, kw))
            continue
        found = list(_walk(p, _MAX_DEPTH, date_pattern)) if p.is_dir() else []
        if not found:
            hint = deeper(p, _MAX_DEPTH, detect_layout) if p.is_dir() else None
            raise AliseError(hint or f"{p}: no Sentinel-2 series found (expected s2/YYYY-MM-DD.tif or dated images "
                             "YYYY-MM-DD.tif, .SAFE products, a file list LIST.csv with header path,date, a PASTIS "
                             "folder with metadata.geojson and DATA_S2/, or a .zarr/.nc cube)")
        for child, child_layout in found:
            out.extend(_open_one(child, child_layout, kw))
    if not out:
        raise AliseError("no input paths given (a series folder, or --files LIST.csv)")
    return out


def open_source(path: str | os.PathLike, *, clear_scl=DEFAULT_CLEAR_SCL, start=None, end=None,
                offset: float | str = "auto", date_pattern: str | None = None) -> SITSSource:
    """Open the one series at ``path`` (layout detected); raise if it holds none or several."""
    sources = open_sources(path, clear_scl=clear_scl, start=start, end=end, offset=offset, date_pattern=date_pattern)
    if len(sources) > 1:
        names = ", ".join(s.name for s in sources[:5]) + (" …" if len(sources) > 5 else "")
        raise AliseError(f"{path} holds {len(sources)} series ({names}): pass one of them, or use open_sources")
    return sources[0]


__all__ = ["open_source", "open_sources", "detect_layout", "FolderSource", "ListSource", "PastisSource", "SafeSource",
           "CubeSource"]
