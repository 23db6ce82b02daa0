"""Writing results safely: refuse to clobber, never leave a half-written file under its final name.

Every command writes through these helpers: a file (or a directory) is written under a temporary
name next to its destination, flushed to disk, and renamed in one step at the end. A crash or a
SIGKILL at any moment leaves either the old state or the complete new one.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from alise.errors import AliseError


def check_output(path: str | os.PathLike, overwrite: bool = False) -> Path:
    """Validate an output path before any work starts.

    Raises :class:`AliseError` if it exists (unless ``overwrite``) or its parent is not a
    writable directory.
    """
    p = Path(path)
    if p.exists() and not overwrite:
        raise AliseError(f"output {p} already exists: choose another path or pass --overwrite")
    parent = p.parent if str(p.parent) else Path(".")
    probe = parent
    while not probe.exists():  # the nearest existing ancestor must be writable
        probe = probe.parent
    if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
        raise AliseError(f"cannot write output {p}: {probe} is not a writable directory")
    return p


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _public_mode(path: Path, directory: bool = False) -> None:
    """mkstemp/mkdtemp create private (0600/0700) entries; give them the usual umask-based mode."""
    os.chmod(path, (0o777 if directory else 0o666) & ~_umask())


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike, mode: str = "wb") -> Iterator:
    """Open a temporary file beside ``path``; on success fsync it and rename it onto ``path``."""
    dest = Path(path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    _public_mode(Path(tmp))
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, dest)
        _fsync_dir(dest.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary *file path* beside ``path`` (for libraries that open files by name).

    On success the file is fsynced and renamed onto ``path``; on failure it is removed.
    """
    dest = Path(path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=dest.suffix or ".tmp", dir=dest.parent)
    os.close(fd)
    tmp_p = Path(tmp)
    _public_mode(tmp_p)
    try:
        yield tmp_p
        with open(tmp_p, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp_p, dest)
        _fsync_dir(dest.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_p.unlink()
        raise


def _remove(path: Path) -> None:
    """Remove a file or a directory tree if it exists."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Build a directory under a temporary name; on success move it to ``path`` in one rename.

    With ``overwrite`` an existing ``path`` is replaced only once the new one is complete.
    """
    dest = Path(path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent))
    _public_mode(tmp, directory=True)
    try:
        yield tmp
        if dest.exists():
            if not overwrite:
                raise AliseError(f"output {dest} already exists: choose another path or pass --overwrite")
            old = dest.with_name(f".{dest.name}.old")
            _remove(old)
            os.replace(dest, old)
            try:
                os.replace(tmp, dest)
            except BaseException:
                os.replace(old, dest)  # put the previous output back: never lose both versions
                raise
            _remove(old)
        else:
            os.replace(tmp, dest)
        _fsync_dir(dest.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_geotiff(path: str | os.PathLike, array: np.ndarray, grid=None, *, nodata=None,
                  descriptions: Sequence[str] | None = None, tags: dict | None = None) -> None:
    """Write ``array (h, w)`` or ``(bands, h, w)`` as a GeoTIFF on ``grid`` (CRS + transform), atomically.

    The one place single-raster outputs (reconstructions, change maps, class maps) are written.

    ``grid`` is a :class:`alise.data.source.RasterGrid` (or None: no georeferencing). DEFLATE
    compressed, tiled when large.
    """
    import rasterio

    a = np.asarray(array)
    if a.ndim == 2:
        a = a[None]
    if a.ndim != 3:
        raise ValueError(f"write_geotiff expects (h, w) or (bands, h, w), got {a.shape}")
    n, h, w = a.shape
    if grid is not None and (grid.height, grid.width) != (h, w):
        raise ValueError(f"array {h}×{w} does not match the grid {grid.height}×{grid.width}")
    with atomic_path(path) as tmp:
        with open_geotiff(tmp, h, w, n, a.dtype, grid, nodata=nodata, descriptions=descriptions, tags=tags) as dst:
            dst.write(a)


@contextlib.contextmanager
def open_geotiff(path, height: int, width: int, count: int, dtype, grid=None, *, nodata=None,
                 descriptions: Sequence[str] | None = None, tags: dict | None = None, **creation):
    """A GeoTIFF opened for writing (``dst.write(block, window=...)``), with the profile of
    :func:`write_geotiff`: DEFLATE, 256-px tiles when large, ``grid``'s CRS and transform;
    ``creation``: other GDAL creation options, replacing those (e.g. the scratch files of the COG
    writer, ``alise.encode.writers``). Not atomic by itself: write under :func:`atomic_path` /
    :func:`atomic_dir`."""
    import warnings

    import rasterio

    profile = dict(driver="GTiff", height=height, width=width, count=count, dtype=np.dtype(dtype).name,
                   compress="deflate")
    if height >= 256 and width >= 256:
        profile.update(tiled=True, blockxsize=256, blockysize=256)
    if grid is not None and grid.crs is not None:
        profile["crs"] = grid.crs
    if grid is not None and grid.transform is not None:
        profile["transform"] = grid.transform
    if nodata is not None:
        profile["nodata"] = nodata
    profile.update(creation)
    with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True), warnings.catch_warnings():
        # A raster without a transform is legitimate (e.g. RotCrop tensors): no warning.
        warnings.filterwarnings("ignore", category=rasterio.errors.NotGeoreferencedWarning)
        with rasterio.open(path, "w", **profile) as dst:
            for i, d in enumerate(descriptions or (), start=1):
                dst.set_band_description(i, str(d))
            if tags:
                dst.update_tags(**{k: str(v) for k, v in tags.items()})
            yield dst
