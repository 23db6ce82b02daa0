"""``--dask``: the tiles encoded by Dask workers, resumed from finished tiles, identical output."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio

from alise.cli import main
from alise.encode import EncodeOptions, encode, parts_dir

from .conftest import tiny_model

pytest.importorskip("distributed")  # a declared dependency: this only guards a broken install


def test_dask_workers_resume_and_match_one_process(site, tmp_path):
    from distributed import Client, LocalCluster

    from alise.data import open_source
    from alise.encode.distributed import encode_on_dask

    model, src = tiny_model(), open_source(site)
    opts = EncodeOptions(tile=32, overlap=8, device="cpu", progress=False)
    ref = tmp_path / "ref.tif"
    encode(model, src, ref, opts)
    out = tmp_path / "out.tif"
    encode(model, src, out, EncodeOptions(tile=32, overlap=8, device="cpu", progress=False, shard=(0, 2)))
    done_before = len(list((parts_dir(out) / "tiles").glob("*.npy")))  # half the tiles, as after a kill
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        res = encode_on_dask(model, src, out, opts, "unused", client=client)
    assert 0 < done_before < res["tiles_total"] and res["tiles_done"] == res["tiles_total"] - done_before
    assert res["workers"] == 2 and not parts_dir(out).exists()
    with rasterio.open(ref) as a, rasterio.open(out) as b:
        assert np.array_equal(a.read(), b.read(), equal_nan=True)


def test_dask_option_errors_are_one_line(site, tmp_path, capsys):
    model = tmp_path / "m"
    tiny_model().save(model)
    for extra, msg in [(["--dask", "local:0"], "local:N with N ≥ 1"),
                       (["--dask", "local:2", "--shard", "0/2"], "leave out --shard and --prepare")]:
        assert main(["encode", str(model), str(site), "--out", str(tmp_path / "e.tif"), "--no-progress", *extra]) == 2
        err = capsys.readouterr().err
        assert msg in err and err.count("\n") == 1
