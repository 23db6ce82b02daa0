"""``alise encode`` / ``alise encode-merge`` end to end, including a SIGKILL in the middle of a run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import rasterio

from alise.cli import main
from alise.encode import parts_dir

from .conftest import tiny_model


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("model") / "model"
    tiny_model().save(d)
    return d


def run(*argv):
    return main(["encode", *map(str, argv), "--no-progress", "--device", "cpu"])


def test_encode_writes_cog_and_refuses_mistakes(model_dir, site, tmp_path, capsys):
    out = tmp_path / "emb.tif"
    assert run(model_dir, site, "--out", out, "--tile", 64, "--overlap", 16, "--start", "2018-04-01") == 0
    with rasterio.open(out) as f:
        assert f.count == 32 and f.descriptions[-1] == "q01_d15"
    with rasterio.open(tmp_path / "emb.n_clear.tif") as f:
        assert f.read(1).max() <= 4  # 4 dates from 2018-04-01
    for argv, msg in [((), "already exists"), (("--overlap", 32, "--tile", 64), "half the tile"),
                      (("--tile", -5), "at least"), (("--shard", "4/4"), "shard"), (("--shard", "x"), "I/N"),
                      (("--start", "2019-01-01", "--end", "2018-01-01"), "before")]:
        capsys.readouterr()
        assert run(model_dir, site, "--out", out, *argv) == 2
        err = capsys.readouterr().err
        assert msg in err and err.count("\n") == 1
    assert main(["encode-merge", str(tmp_path / "nothing.tif")]) == 2


def test_cli_shards_and_merge(model_dir, site, tmp_path):
    out = tmp_path / "emb.zarr"
    for i in range(2):
        assert run(model_dir, site, "--out", out, "--tile", 32, "--overlap", 8, "--shard", f"{i}/2") == 0
    assert not out.exists()
    assert main(["encode-merge", str(out), "--no-progress"]) == 0
    assert out.is_dir() and not parts_dir(out).exists()


@pytest.mark.slow
def test_sigkill_then_rerun_gives_identical_output(model_dir, site, tmp_path):
    ref = tmp_path / "ref.tif"
    assert run(model_dir, site, "--out", ref, "--tile", 32, "--overlap", 8) == 0
    out = tmp_path / "emb.tif"
    cmd = [sys.executable, "-m", "alise.cli", "encode", str(model_dir), str(site), "--out", str(out),
           "--tile", "32", "--overlap", "8", "--device", "cpu", "--no-progress"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    tiles = parts_dir(out) / "tiles"
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        if tiles.is_dir() and len(list(tiles.glob("*.npy"))) >= 3:
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.02)
    proc.wait()
    killed = proc.returncode == -signal.SIGKILL
    assert killed, "the run finished before it could be interrupted"
    assert not out.exists()
    assert run(model_dir, site, "--out", out, "--tile", 32, "--overlap", 8) == 0
    with rasterio.open(ref) as a, rasterio.open(out) as b:
        assert np.array_equal(a.read(), b.read(), equal_nan=True)


def test_the_output_format_follows_the_suffix(model_dir, site, tmp_path, capsys):
    """CLI and API: .tif → COG, .zarr → zarr store; other suffixes and contradictions refused, nothing written."""
    from alise.encode import EncodeOptions, encode
    from alise.data import open_source

    for name, extra, msg in [("e1.nc", (), "suffix '.nc'; the output format follows the suffix: .tif (cog), "
                                           ".tiff (cog), .zarr (zarr)"), ("e1", (), "no suffix"),
                             ("e1.tif", ("--format", "zarr"), "contradicts the suffix .tif (cog); name the output "
                                                              "e1.zarr")]:
        capsys.readouterr()
        assert run(model_dir, site, "--out", tmp_path / name, *extra) == 2
        err = capsys.readouterr().err
        assert msg in err and err.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    report = encode(tiny_model(), open_source(site), tmp_path / "api.zarr", EncodeOptions(tile=32, overlap=8,
                                                                                          progress=False))
    assert report.out.is_dir() and (tmp_path / "api.zarr" / ".zmetadata").is_file()
    assert main(["change", str(model_dir), str(site), str(site), "--out", str(tmp_path / "c.zarr")]) == 2
    assert "the change map is a GeoTIFF; name it c.tif" in capsys.readouterr().err
    assert main(["reconstruct", str(model_dir), str(site), "--dates", "2018-05-01", "--out",
                 str(tmp_path / "g.tif")]) == 2
    assert "OUT is a folder" in capsys.readouterr().err


def test_a_read_error_mid_way_says_what_is_kept_and_a_rerun_resumes(model_dir, site, tmp_path, capsys,
                                                                     monkeypatch):
    """A block that fails to read after some tiles are done (an I/O error, a file damaged meanwhile):
    one line that says the finished tiles are resume state; the rerun completes the output."""
    import alise.encode.runner as runner
    from alise.errors import AliseError

    real, calls = runner.read_batch, []

    def flaky(*a, **k):
        calls.append(1)
        if len(calls) == 3:
            raise AliseError("cannot read pixels of s2/2018-06-01.tif: TIFFReadEncodedStrip() failed")
        return real(*a, **k)

    monkeypatch.setattr(runner, "read_batch", flaky)
    out = tmp_path / "emb.tif"
    capsys.readouterr()
    assert run(model_dir, site, "--out", out, "--tile", 32, "--overlap", 8, "--workers", 1) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "was not written" in err and "rerun the same command to resume" in err
    assert not out.exists() and len(list(parts_dir(out).glob("**/*.npy"))) >= 1
    monkeypatch.setattr(runner, "read_batch", real)
    assert run(model_dir, site, "--out", out, "--tile", 32, "--overlap", 8) == 0
    assert out.is_file() and not parts_dir(out).exists()
