"""Every user mistake, every command: exit code 2, one line on stderr, nothing half-written.

A case is (command, a way to spoil the input / model / output / arguments, a word the message must
contain). The command runs in-process through :func:`alise.cli.main`; afterwards the output path
must not exist and its parent must hold nothing new (no temporary file, no ``OUT.parts``, no
metrics sidecar of a half-done ``change``). A few cases run as a real subprocess for the exit code.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio

from .conftest import DATES, TINY, TRANSFORM, assert_user_error, leftovers, run_cli

D0, D1, D2 = (d.isoformat() for d in DATES[:3])
TINY_SET = ["encoder_widths=8,8,8,16", "decoder_widths=8,8,8,16", "d_model=16", "n_layers=1", "n_heads=2",
            "d_ffn=32", "n_q=2", "proj_d_k=4", "d_emb=16", "d_proj_hidden=16"]


# ------------------------------------------------------------------------------- the commands
def _argv(command: str, model: Path, data: Path, out: Path) -> list:
    """A working command line of ``command`` (with the good model/site it succeeds)."""
    return {
        "check": ["check", data],
        "info": ["info", model],
        "encode": ["encode", model, data, "--out", out / "emb.tif", "--tile", 32, "--overlap", 8, "--no-progress",
                   "--device", "cpu"],
        "reconstruct": ["reconstruct", model, data, "--dates", "2018-05-01", "--out", out / "rec"],
        "change": ["change", model, data, "--years", "2018,2019", "--out", out / "change.tif"],
        "probe": ["probe", model, data, "--mode", "lp", "--epochs", 1, "--out", out / "probe"],
        "pretrain": ["pretrain", data, "--out", out / "run", "--max-steps", 1, "--crop", 32, "--n-dates", 4,
                     "--no-progress", "--accelerator", "cpu", "--set", *TINY_SET],
        "synth": ["synth", out / "synth", "--size", 16, "--sites", 1, "--start", "2018-04-01", "--end", "2018-05-01"],
        "import-onnx": ["import-onnx", data, "--out", out / "imported"],
        "compare": ["compare", data, "--out", out / "cmp", "--models", "gf-lp", "--epochs", 1],
        "demo": ["demo", "--out", out / "demo", "--quick", "--real", data, "--no-progress"],
    }[command]


DATA_COMMANDS = ("check", "encode", "reconstruct", "change", "probe", "pretrain", "compare")
MODEL_COMMANDS = ("info", "encode", "reconstruct", "change", "probe")
OUTPUT_COMMANDS = ("encode", "reconstruct", "change", "probe", "pretrain", "synth", "compare", "demo")


# ------------------------------------------------------------------------------- spoiling a site
def _rewrite(f: Path, fn, **profile) -> None:
    """Replace raster ``f`` by ``fn(data)``, same grid unless ``transform`` is given."""
    with rasterio.open(f) as src:
        data, prof = src.read(), src.profile
    out = np.asarray(fn(data))
    prof.update(count=out.shape[0], dtype=out.dtype, **profile)
    f.unlink()
    with rasterio.open(f, "w", **prof) as dst:
        dst.write(out)


def _s2(site: Path, d: str) -> Path:
    return site / "s2" / f"{d}.tif"


def _shifted():
    t = TRANSFORM
    return rasterio.Affine(t.a, t.b, t.c + 20, t.d, t.e, t.f)


def _empty(site: Path) -> None:
    shutil.rmtree(site)
    site.mkdir()


def _truncate(site: Path) -> None:
    f = _s2(site, D1)
    f.write_bytes(f.read_bytes()[:300])


def _rename(site: Path, old: str, new: str) -> None:
    _s2(site, old).rename(site / "s2" / new)
    (site / "scl" / f"{old}.tif").rename(site / "scl" / new)


def _every_date(fn, **profile):
    def spoil(site: Path) -> None:
        for d in DATES:
            _rewrite(_s2(site, d.isoformat()), fn, **profile)

    return spoil


DATA_CASES = {
    "empty folder": (_empty, "no Sentinel-2 series found"),
    "truncated GeoTIFF": (_truncate, f"{D1}.tif"),
    "zero-byte GeoTIFF": (lambda s: _s2(s, D2).write_bytes(b""), f"{D2}.tif"),
    "wrong band count": (lambda s: _rewrite(_s2(s, D1), lambda x: x[:8]), "8 bands, expected 10"),
    "float 0-1 reflectance": (_every_date(lambda x: (x / 1e4).astype(np.float32), nodata=None), "10000"),
    "duplicate dates": (lambda s: shutil.copy(_s2(s, D0), s / "s2" / (D0.replace("-", "") + ".tif")), "duplicate date"),
    "unparseable date": (lambda s: _rename(s, D0, "scene_1.tif"), "cannot parse date"),
    "grid mismatch between dates": (lambda s: _rewrite(_s2(s, D2), lambda x: x, transform=_shifted()), "grid"),
    "mask on another grid": (lambda s: _rewrite(s / "scl" / f"{D0}.tif", lambda x: x, transform=_shifted()), "grid"),
    "labels on another grid": (lambda s: _rewrite(s / "labels.tif", lambda x: x, transform=_shifted()), "labels"),
    "no such path": (lambda s: shutil.rmtree(s), "no such file|does not exist"),
}


def _assert_nothing_left(out_parent: Path, before: set[str]) -> None:
    assert leftovers(out_parent, before) == [], "partial output or temporary files left behind"


def _check_failure(code: int, err: str, command: str, expected: str, out: Path, before: set[str]) -> None:
    assert_user_error(code, err, command, expected)
    _assert_nothing_left(out, before)


@pytest.mark.parametrize("case", list(DATA_CASES))
@pytest.mark.parametrize("command", DATA_COMMANDS)
def test_bad_data(command, case, model_dir, site_copy, tmp_path, capsys):
    spoil, expected = DATA_CASES[case]
    data = site_copy()
    spoil(data)
    out = tmp_path / "out"
    out.mkdir()
    code, _, err = run_cli(capsys, *_argv(command, model_dir, data, out))
    _check_failure(code, err, command, expected, out, set())


# ------------------------------------------------------------------------------- spoiling the model
def _model_copy(model_dir: Path, tmp_path: Path) -> Path:
    dest = tmp_path / "model"
    shutil.copytree(model_dir, dest)
    return dest


def _edit_config(fn):
    def spoil(m: Path) -> Path:
        meta = json.loads((m / "config.json").read_text())
        fn(meta)
        (m / "config.json").write_text(json.dumps(meta))
        return m

    return spoil


def _other_bands(m: Path) -> Path:
    """A valid model for 4 bands (B02 B03 B04 B08): the 10-band data cannot feed it."""
    from alise.model.network import ALISE
    from alise.normalise import NormStats

    shutil.rmtree(m)
    norm = NormStats((400.0, 700.0, 600.0, 2900.0), (100.0,) * 4, (4000.0,) * 4, ("B02", "B03", "B04", "B08"))
    ALISE(TINY.replace(in_channels=4), norm).save(m)
    return m


def _band_list_mismatch(meta: dict) -> None:
    """config.json whose normalisation lists 9 bands for a 10-band network."""
    n = meta["normalisation"]
    for k in ("bands", "median", "qmin", "qmax"):
        n[k] = n[k][:9]


MODEL_CASES = {
    "missing model directory": (lambda m: [shutil.rmtree(m), m][-1], "does not exist"),
    "not a model directory": (lambda m: [shutil.rmtree(m), m.mkdir(), m][-1], "config.json"),
    "model is a file": (lambda m: [shutil.rmtree(m), m.write_text("x"), m][-1], "not a directory"),
    "weights missing": (lambda m: [(m / "model.safetensors").unlink(), m][-1], "model.safetensors"),
    "config names 9 bands, network has 10": (_edit_config(_band_list_mismatch), "bands"),
    "model for other bands than the data": (_other_bands, "band"),
}


@pytest.mark.parametrize("command, case", [(c, k) for c in MODEL_COMMANDS for k in MODEL_CASES
                                            if not (c == "info" and k == "model for other bands than the data")])
def test_bad_model(command, case, model_dir, site, tmp_path, capsys):
    spoil, expected = MODEL_CASES[case]
    model = spoil(_model_copy(model_dir, tmp_path))
    out = tmp_path / "out"
    out.mkdir()
    code, _, err = run_cli(capsys, *_argv(command, model, site, out))
    _check_failure(code, err, command, expected, out, set())


# ------------------------------------------------------------------------------- spoiling the output
def _output_of(command: str, out: Path) -> Path:
    argv = _argv(command, Path("m"), Path("s"), out)
    return Path(argv[argv.index("--out") + 1]) if "--out" in argv else Path(argv[1])


@pytest.mark.parametrize("command", OUTPUT_COMMANDS)
def test_existing_output_is_refused_and_kept(command, model_dir, site, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    dest = _output_of(command, out)
    if dest.suffix:
        dest.write_bytes(b"precious")
    else:
        dest.mkdir()
        (dest / "precious.txt").write_bytes(b"precious")
    before = set(os.listdir(out))
    code, _, err = run_cli(capsys, *_argv(command, model_dir, site, out))
    assert_user_error(code, err, command, "exists")
    _assert_nothing_left(out, before)
    kept = dest if dest.is_file() else dest / "precious.txt"
    assert kept.read_bytes() == b"precious"
    if dest.is_dir():
        assert os.listdir(dest) == ["precious.txt"]


@pytest.mark.parametrize("command", OUTPUT_COMMANDS)
def test_output_under_a_file_is_refused(command, model_dir, site, tmp_path, capsys):
    """The output's parent is a regular file (the root-proof form of 'not writable')."""
    blocker = tmp_path / "blocker"
    blocker.write_bytes(b"not a folder")
    code, _, err = run_cli(capsys, *_argv(command, model_dir, site, blocker))
    assert_user_error(code, err, command)
    assert blocker.read_bytes() == b"not a folder"
    assert sorted(os.listdir(tmp_path)) == ["blocker"]


# ------------------------------------------------------------------------------- absurd arguments
ABSURD = [
    ("encode", ["--tile", -5], "tile"),
    ("encode", ["--tile", 32, "--overlap", 32], "overlap"),
    ("encode", ["--overlap", -1], "overlap"),
    ("encode", ["--tile", 100], "multiple of 8"),
    ("encode", ["--overlap", 12], "multiple of 8"),
    ("encode", ["--stats-windows", 0], "stats-windows"),
    ("encode", ["--chunk-pixels", 0], "chunk"),
    ("encode", ["--batch-tiles", 0], "batch-tiles"),
    ("encode", ["--workers", 0], "workers"),
    ("encode", ["--shard", "2/2"], "shard"),
    ("encode", ["--start", "2019-13-45"], "cannot parse date"),
    ("encode", ["--start", "2030-01-01"], "no date"),
    ("reconstruct", ["--dates", ","], "--dates"),
    ("reconstruct", ["--dates", "yesterday"], "cannot parse date"),
    ("change", ["--years", "2018"], "--years"),
    ("change", ["--years", "2018,2018"], "--years"),
    ("change", ["--method", "magic"], "--method"),
    ("change", ["--truth", "/nonexistent/truth.tif"], "--truth"),
    ("probe", ["--mode", "zz"], "mode"),
    ("probe", ["--epochs", 0], "epochs"),
    ("probe", ["--batch-size", 0], "batch"),
    ("probe", ["--crop", 0], "crop"),
    ("probe", ["--lr", -1], "lr"),
    ("probe", ["--fractions", "0.5,0.5,0.5"], "fractions"),
    ("probe", ["--block", 0], "block"),
    ("probe", ["--split", "folds"], "fold"),
    ("probe", ["--scarcity", -1], "scarcity"),
    ("pretrain", ["--batch-size", 0], "batch-size"),
    ("pretrain", ["--crop", 12], "crop"),
    ("pretrain", ["--max-steps", 0], "max-steps"),
    ("pretrain", ["--lr", 0], "lr"),
    ("pretrain", ["--min-clear", 2], "min-clear"),
    ("pretrain", ["--set", "no_such_key=1"], "no_such_key"),
    ("pretrain", ["--set", "t_w=40"], "t_w"),
    ("pretrain", ["--config", "/nonexistent.json"], "--config"),
    ("synth", ["--size", 0], "size"),
    ("synth", ["--sites", 0], "sites"),
    ("synth", ["--cloudiness", 2], "cloudiness"),
    ("synth", ["--revisit", 0], "revisit"),
    ("synth", ["--years", "2019-2018"], "years"),
    ("compare", ["--models", "alise-lp,magic"], "--models"),
    ("compare", ["--epochs", 0], "epochs"),
    ("compare", ["--model-dir", "alise=/nonexistent"], "--model-dir"),
    ("compare", ["--model-dir", "other=."], "--model-dir"),
    ("compare", ["--crop", 12], "crop"),
    ("compare", ["--set", "d_model=-4"], "d_model"),
    ("demo", ["--max-steps", 0], "max-steps"),
    ("demo", ["--seed", -1], "seed"),
    ("demo", ["--real", "/nonexistent/real"], "--real"),
    ("check", ["--clear-scl", "a,b"], "clear"),
    ("check", ["--offset", "lots"], "offset"),
]


@pytest.mark.parametrize("command, extra, expected", ABSURD, ids=[f"{c}{' '.join(map(str, e))}" for c, e, _ in ABSURD])
def test_absurd_arguments(command, extra, expected, model_dir, site, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    code, _, err = run_cli(capsys, *_argv(command, model_dir, site, out), *extra)
    assert_user_error(code, err, command, expected)
    _assert_nothing_left(out, set())


# ------------------------------------------------------------------------------- the real process
@pytest.mark.slow
def test_real_exit_code_and_stderr(tmp_path):
    """The real entry point in its own process: exit status 2, one stderr line, no traceback, no output."""
    empty = tmp_path / "empty"
    empty.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    argv = _argv("encode", empty, empty, out)
    proc = subprocess.run([sys.executable, "-m", "alise.cli", *map(str, argv)], capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=300)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("alise encode: error: ") and "Traceback" not in proc.stderr
    assert os.listdir(out) == []
