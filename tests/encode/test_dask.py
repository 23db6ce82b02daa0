"""``--dask``: tiles encoded by Dask workers, the output written region by region, a stopped run
resumed from its finished regions and tiles, and the output identical to a one-process run.

The output regions are the zarr chunks (``writers.BLOCK`` px); the tests shrink them to 32 px so
that the 96 × 96 px test site has 9 regions (3 × 3) sharing tiles of 32 px. Torch runs on one
thread throughout: float sums of the tiny model differ at 1e-6 between thread counts, and
identity is promised at equal thread counts (the in-process cluster's tasks set one thread).
"""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
import torch

from alise.cli import main
from alise.encode import EncodeOptions, encode, parts_dir
from alise.errors import AliseError

from .conftest import tiny_model

pytest.importorskip("distributed")  # a declared dependency: this only guards a broken install

FAST = dict(tile=32, overlap=8, device="cpu", progress=False)


@pytest.fixture(scope="module")
def client():
    from distributed import Client, LocalCluster

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster, \
            Client(cluster) as c:
        yield c
    torch.set_num_threads(threads)


@pytest.fixture
def small_regions(monkeypatch):
    from alise.encode import writers

    monkeypatch.setattr(writers, "BLOCK", 32)  # zarr chunks, output blocks and regions


def idle(client) -> None:
    """Wait until the tasks still running when a run failed have ended (a killed run has no such tasks)."""
    import time

    def running(dask_worker) -> int:  # a cancelled task runs on until it returns
        return sum(ts.state in ("executing", "cancelled", "resumed", "long-running")
                   for ts in dask_worker.state.tasks.values())

    while any(client.run(running).values()):
        time.sleep(0.05)


def same_output(a, b) -> bool:
    """The same values, variables and metadata (zarr), or the same bands and tags (COG)."""
    if a.suffix == ".zarr":
        import xarray as xr

        x, y = xr.open_zarr(a, mask_and_scale=False), xr.open_zarr(b, mask_and_scale=False)
        return (set(x.variables) == set(y.variables) and x.attrs == y.attrs
                and all(repr(x[v].attrs) == repr(y[v].attrs) for v in x.variables)  # _FillValue NaN ≠ NaN
                and all(np.array_equal(x[v].values, y[v].values, equal_nan=True) for v in x.variables))
    with rasterio.open(a) as f, rasterio.open(b) as g:
        return np.array_equal(f.read(), g.read(), equal_nan=True) and f.tags() == g.tags() and f.scales == g.scales


def test_dask_workers_resume_and_match_one_process(site, tmp_path, client):
    from alise.data import open_source
    from alise.encode.distributed import encode_on_dask

    model, src = tiny_model(), open_source(site)
    opts = EncodeOptions(**FAST)
    ref = tmp_path / "ref.tif"
    encode(model, src, ref, opts)
    out = tmp_path / "out.tif"
    encode(model, src, out, EncodeOptions(**FAST, shard=(0, 2)))
    done_before = len(list((parts_dir(out) / "tiles").glob("*.npy")))  # half the tiles, as after a kill
    res = encode_on_dask(model, src, out, opts, "unused", client=client)
    assert 0 < done_before < res["tiles_total"] and res["tiles_done"] == res["tiles_total"] - done_before
    assert res["workers"] == 2 and not parts_dir(out).exists()
    assert same_output(ref, out)


@pytest.mark.parametrize("suffix,dtype", [(".zarr", "float32"), (".tif", "float32"), (".zarr", "int8")])
def test_dask_regions_are_identical_to_one_process(site, tmp_path, client, small_regions, suffix, dtype):
    from alise.data import open_source
    from alise.encode.distributed import encode_on_dask

    model, src = tiny_model(), open_source(site)
    ref, out = tmp_path / f"ref{suffix}", tmp_path / f"out{suffix}"
    encode(model, src, ref, EncodeOptions(**FAST, dtype=dtype))
    res = encode_on_dask(model, src, out, EncodeOptions(**FAST, dtype=dtype), "unused", client=client)
    assert res["regions_total"] == res["regions_done"] == 9
    assert res["tiles_done"] == res["tiles_total"] == 16  # tiles shared by regions are encoded once
    assert same_output(ref, out) and not parts_dir(out).exists()


def test_dask_stopped_run_resumes_only_unfinished_regions(site, tmp_path, client, small_regions, monkeypatch):
    from alise.data import open_source
    from alise.encode import distributed
    from alise.encode.runner import grid_of_plan, piece_path, read_plan

    model, src = tiny_model(), open_source(site)
    opts = EncodeOptions(**FAST)
    ref, out = tmp_path / "ref.zarr", tmp_path / "out.zarr"
    encode(model, src, ref, opts)
    write = distributed.write_region

    def dies_on_centre(o, region, *deps):
        if region[:2] == (32, 32):
            raise RuntimeError("worker lost")
        return write(o, region, *deps)

    monkeypatch.setattr(distributed, "write_region", dies_on_centre)
    with pytest.raises(RuntimeError, match="worker lost"):
        distributed.encode_on_dask(model, src, out, opts, "unused", client=client)
    monkeypatch.setattr(distributed, "write_region", write)
    idle(client)
    parts = parts_dir(out)
    plan, markers = read_plan(out), sorted((parts / "regions").glob("*.json"))
    assert not out.exists() and (parts / distributed.STORE).is_dir() and 0 < len(markers) < 9
    stamps = {m: m.stat().st_mtime_ns for m in markers}
    with pytest.raises(AliseError, match="rerun it with --dask"):  # pieces were pruned: only --dask resumes it
        encode(model, src, out, opts)

    grid = grid_of_plan(plan)
    unfinished = [r for r in distributed.regions(plan) if not distributed.marker_path(parts, r).is_file()]
    missing = {t.index for r in unfinished for t in grid.tiles_in(*r) if not piece_path(parts, t).is_file()}
    res = distributed.encode_on_dask(model, src, out, EncodeOptions(**FAST, keep_parts=True), "unused", client=client)
    assert res["regions_done"] == 9 - len(markers) == len(unfinished)
    assert res["tiles_done"] == len(missing) < res["tiles_total"]  # only the tiles the missing regions lack
    assert all(m.stat().st_mtime_ns == s for m, s in stamps.items())  # finished regions were not written again
    assert same_output(ref, out)


def test_dask_prunes_pieces_and_a_rerun_only_writes_the_output(site, tmp_path, client, small_regions, monkeypatch):
    from alise.data import open_source
    from alise.encode import distributed

    model, src = tiny_model(), open_source(site)
    opts = EncodeOptions(**FAST, dtype="int8")
    ref, out = tmp_path / "ref.zarr", tmp_path / "out.zarr"
    encode(model, src, ref, opts)
    finish = distributed.finish

    def killed(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(distributed, "finish", killed)  # stopped after the last region, before the output
    with pytest.raises(KeyboardInterrupt):
        distributed.encode_on_dask(model, src, out, opts, "unused", client=client)
    parts = parts_dir(out)
    assert len(list((parts / "regions").glob("*.json"))) == 9
    assert not list((parts / "tiles").glob("*.npy"))  # every piece deleted once its regions were written
    monkeypatch.setattr(distributed, "finish", finish)
    res = distributed.encode_on_dask(model, src, out, opts, "unused", client=client)
    assert res["tiles_done"] == 0 and res["regions_done"] == 0
    assert same_output(ref, out)  # int8: the bands' ranges came from the markers, as the merge's from the pieces


def test_dask_option_errors_are_one_line(site, tmp_path, capsys):
    model = tmp_path / "m"
    tiny_model().save(model)
    for extra, msg in [(["--dask", "local:0"], "local:N with N ≥ 1"),
                       (["--dask", "local:2", "--shard", "0/2"], "leave out --shard and --prepare")]:
        assert main(["encode", str(model), str(site), "--out", str(tmp_path / "e.tif"), "--no-progress", *extra]) == 2
        err = capsys.readouterr().err
        assert msg in err and err.count("\n") == 1
