"""Every documented input layout × every data command, in a fresh process per layout.

Layouts are built from six real dates of the Flanders patch (``tests/data/test_layouts_real.py``);
each runs ``check``, ``encode``, ``probe``, ``reconstruct`` and ``change`` through ``alise.cli.main``
in one new Python process, so an import that only the test process happens to have done cannot
hide a crash (each reader is first used by that process's ``check``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.data.test_layouts_real import DATES6, LAYOUTS, _site_extras

DRIVER = r"""
import json, sys
from alise.cli import main
model, data, out = sys.argv[1:4]
d = "2018-01-10"
runs = {
    "check": ["check", data],
    "encode": ["encode", model, data, "--out", f"{out}/e.tif", "--no-progress"],
    "probe": ["probe", model, data, "--out", f"{out}/p", "--repeats", "1", "--C", "1", "--no-progress"],
    "reconstruct": ["reconstruct", model, data, "--dates", d, "--out", f"{out}/g", "--no-progress"],
    "change": ["change", model, data, data, "--out", f"{out}/c.tif", "--no-progress"],
}
print(json.dumps({k: main(v) for k, v in runs.items()}))
"""


def _plain(flanders: Path, dest: Path) -> Path:
    for sub in ("s2", "scl"):
        (dest / sub).mkdir(parents=True)
        for d in DATES6:
            shutil.copy(flanders / sub / f"{d}.tif", dest / sub / f"{d}.tif")
    _site_extras(flanders, dest)
    return dest


def _zarr_cube(flanders: Path, dest: Path) -> Path:
    """The six dates as a ``(time, band, y, x)`` zarr cube with ``valid`` and ``labels`` (docs/data-formats.md §3)."""
    import warnings

    import numpy as np
    import pandas as pd
    import rioxarray  # noqa: F401  (registers .rio for writing; the CLI process imports nothing from here)
    import xarray as xr

    from alise.data import open_source

    src = open_source(_plain(flanders, dest.parent / "plain"))
    raw, t, g = src.read(), src.grid.transform, src.grid
    ds = xr.Dataset({"s2": (("time", "band", "y", "x"), raw.dn.astype(np.uint16)),
                     "valid": (("time", "y", "x"), raw.valid), "labels": (("y", "x"), raw.labels.astype(np.int16))},
                    coords={"time": pd.to_datetime([d.isoformat() for d in src.dates]), "band": list(src.bands),
                            "y": t.f + t.e * (np.arange(g.height) + 0.5), "x": t.c + t.a * (np.arange(g.width) + 0.5)})
    out = dest.with_suffix(".zarr")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds.rio.write_crs(g.crs.to_string()).to_zarr(out, mode="w")
    return out


MATRIX = {"site folder": _plain, "zarr cube": _zarr_cube, **{k: v[0] for k, v in LAYOUTS.items()}}


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    from tests.encode.conftest import tiny_model

    d = tmp_path_factory.mktemp("model") / "tiny"
    tiny_model().save(d)
    return d


@pytest.mark.slow
@pytest.mark.parametrize("layout", list(MATRIX))
def test_every_command_on_every_layout_in_a_fresh_process(layout, flanders, model_dir, tmp_path):
    data = MATRIX[layout](flanders, tmp_path / "series")
    out = tmp_path / "out"
    out.mkdir()
    r = subprocess.run([sys.executable, "-c", DRIVER, str(model_dir), str(data), str(out)], capture_output=True,
                       text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr[-3000:]
    codes = json.loads(r.stdout.strip().splitlines()[-1])
    assert codes == {k: 0 for k in ("check", "encode", "probe", "reconstruct", "change")}, r.stderr[-3000:]
    assert (out / "e.tif").is_file() and (out / "c.tif").is_file() and (out / "p" / "metrics.json").is_file()
    assert sorted(p.name for p in (out / "g" / "s2").iterdir()) == ["2018-01-10.tif"]
