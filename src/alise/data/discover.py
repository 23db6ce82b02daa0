"""From paths to sources: detect the layout of each path and expand roots (DESIGN §2).

``open_source(PATH)`` opens exactly one series; ``open_sources(PATHS)`` expands each path into all
the series it holds:

* a **site folder** (has ``s2/``) → one :class:`FolderSource`;
* a **PASTIS root** (``metadata.geojson`` + ``DATA_S2/``) → one :class:`PastisSource` per patch;
  a single ``DATA_S2/S2_<ID>.npy`` path → that patch;
* a **cube** (``*.zarr`` store, ``*.nc`` file) → one :class:`CubeSource`;
* a **MultiSenGE root** (``labels/*.json``) → one :class:`MultiSenGESource` per patch;
* any other **folder** → every site folder / PASTIS root / cube below it (up to 3 levels, hidden
  folders skipped), e.g. the output of ``alise synth`` (``OUT/site_000/`` …).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from alise.errors import AliseError
from alise.data.cube import CubeSource, is_cube
from alise.data.folder import FolderSource
from alise.data.multisenge import is_multisenge_root, open_multisenge
from alise.data.pastis import PastisSource, is_pastis_root, open_pastis
from alise.data.source import SITSSource
from alise.data.validity import DEFAULT_CLEAR_SCL

_MAX_DEPTH = 3


def detect_layout(path: Path) -> str | None:
    """``"folder"``, ``"pastis"``, ``"pastis-patch"``, ``"cube"``, ``"multisenge"`` or None (maybe a root of several)."""
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
    return None


def _open_one(path: Path, layout: str, kw: dict) -> list[SITSSource]:
    clear_scl = kw.get("clear_scl", DEFAULT_CLEAR_SCL)
    common = {k: kw[k] for k in ("start", "end", "offset") if k in kw}
    if layout == "folder":
        return [FolderSource(path, clear_scl=clear_scl, **common)]
    if layout == "cube":
        return [CubeSource(path, clear_scl=clear_scl, **common)]
    if layout == "pastis":
        return open_pastis(path, folds=kw.get("folds"), **common)
    if layout == "multisenge":
        return open_multisenge(path, **{k: common[k] for k in ("start", "end") if k in common})
    pid = path.stem.removeprefix("S2_")
    patches = [s for s in open_pastis(path.parent.parent, **common) if s.name == f"S2_{pid}"]
    if not patches:
        raise AliseError(f"{path}: patch {pid} is not listed in {path.parent.parent / 'metadata.geojson'}")
    return patches


def _walk(root: Path, depth: int) -> Iterable[tuple[Path, str]]:
    try:
        children = sorted(p for p in root.iterdir() if not p.name.startswith("."))
    except OSError as e:
        raise AliseError(f"cannot list {root}: {e}") from None
    for child in children:
        layout = detect_layout(child)
        if layout is not None:
            yield child, layout
        elif child.is_dir() and depth > 1:
            yield from _walk(child, depth - 1)


def open_sources(paths: str | os.PathLike | Iterable[str | os.PathLike], *, clear_scl=DEFAULT_CLEAR_SCL,
                 start=None, end=None, offset: float | str = "auto", folds=None) -> list[SITSSource]:
    """Every series held by ``paths`` (see the module docstring), in path order then name order.

    Args:
        paths: one path or several.
        clear_scl: SCL classes counted as clear (default {4, 5, 6}).
        start, end: keep dates in ``[start, end]`` (``date`` or ``"YYYY-MM-DD"``).
        offset: ``"auto"`` (units.py rules) or a number of DN subtracted from every date.
        folds: PASTIS folds to keep (None = all).

    Raises:
        AliseError: a path does not exist, or nothing readable was found.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    kw = dict(clear_scl=clear_scl, start=start, end=end, offset=offset, folds=folds)
    out: list[SITSSource] = []
    for p in map(Path, paths):
        if not p.exists():
            raise AliseError(f"{p}: no such file or folder")
        layout = detect_layout(p)
        if layout is not None:
            out.extend(_open_one(p, layout, kw))
            continue
        found = list(_walk(p, _MAX_DEPTH)) if p.is_dir() else []
        if not found:
            raise AliseError(f"{p}: no Sentinel-2 series found (expected s2/YYYY-MM-DD.tif, a PASTIS folder with "
                             "metadata.geojson and DATA_S2/, or a .zarr/.nc cube)")
        for child, child_layout in found:
            out.extend(_open_one(child, child_layout, kw))
    if not out:
        raise AliseError("no input paths given")
    return out


def open_source(path: str | os.PathLike, *, clear_scl=DEFAULT_CLEAR_SCL, start=None, end=None,
                offset: float | str = "auto") -> SITSSource:
    """Open the one series at ``path`` (layout detected); raise if it holds none or several."""
    sources = open_sources(path, clear_scl=clear_scl, start=start, end=end, offset=offset)
    if len(sources) > 1:
        names = ", ".join(s.name for s in sources[:5]) + (" …" if len(sources) > 5 else "")
        raise AliseError(f"{path} holds {len(sources)} series ({names}): pass one of them, or use open_sources")
    return sources[0]


__all__ = ["open_source", "open_sources", "detect_layout", "FolderSource", "PastisSource", "CubeSource"]
