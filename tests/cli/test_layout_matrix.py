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


MATRIX = {"site folder": _plain, **{k: v[0] for k, v in LAYOUTS.items()}}


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
