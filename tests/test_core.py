"""Core data model, dates, normalisation, safe outputs and CLI error handling."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
import torch

from alise.batch import SITS, collate
from alise.cli import main
from alise.dates import DATE_ORIGIN, date_from_days, days_since_origin, parse_date
from alise.errors import AliseError
from alise.normalise import NormStats
from alise.outputs import atomic_dir, atomic_file, check_output


def _sits(t: int, h: int = 4, w: int = 4, labels: bool = False) -> SITS:
    return SITS(
        x=torch.randn(t, 10, h, w),
        days=torch.arange(t, dtype=torch.float32) * 5 + 1000,
        valid_pixels=torch.rand(t, h, w) > 0.3,
        labels=torch.randint(0, 5, (h, w)) if labels else None,
    )


def test_dates_origin_and_roundtrip():
    assert days_since_origin([DATE_ORIGIN, "2014-03-04", "20170101"]).tolist() == [0.0, 1.0, 1035.0]
    assert date_from_days(1035) == dt.date(2017, 1, 1)
    with pytest.raises(AliseError, match="cannot parse date"):
        parse_date("2017-13-45", where="s2/2017-13-45.tif")


def test_collate_right_pads_with_invalid():
    a, b = _sits(3, labels=True), _sits(5)
    batch = collate([a, b])
    assert batch.x.shape == (2, 5, 10, 4, 4)
    assert batch.valid_dates.tolist() == [[True] * 3 + [False] * 2, [True] * 5]
    assert torch.all(batch.x[0, 3:] == 0) and not batch.valid_pixels[0, 3:].any()
    assert torch.equal(batch.x[1], b.x) and torch.equal(batch.valid_pixels[0, :3], a.valid_pixels)
    assert batch.labels is not None and torch.all(batch.labels[1] == -100)
    assert collate([a], pad_to=7).x.shape[1] == 7


def test_sits_crop_and_select():
    s = _sits(6, h=8, w=8, labels=True)
    c = s.crop(2, 3, 4)
    assert c.x.shape == (6, 10, 4, 4) and c.labels.shape == (4, 4)
    assert torch.equal(c.x, s.x[:, :, 2:6, 3:7])
    assert s.select_dates(slice(1, 4)).days.tolist() == s.days[1:4].tolist()


def test_normalisation_formula_and_roundtrip():
    st = NormStats.paper()
    dn = torch.tensor([100.0, 414.0, 9000.0]).view(1, 3, 1).expand(10, 3, 1)  # (C, H=3, W=1)
    out = st.apply(dn)
    # band B02: clip(100)->130, (130-414)/3650 ; median -> 0 ; clip(9000)->3780
    assert out[0, 0, 0].item() == pytest.approx((130 - 414) / 3650)
    assert out[0, 1, 0].item() == pytest.approx(0.0)
    assert out[0, 2, 0].item() == pytest.approx((3780 - 414) / 3650)
    inside = torch.full((10, 1, 1), 1500.0)  # inside every band's [q05, q95]
    assert torch.allclose(st.invert(st.apply(inside)), inside, atol=1e-3)
    assert torch.isfinite(st.apply(torch.full((10, 1, 1), float("nan")))).all()
    assert NormStats.from_dict(st.to_dict()) == st


def test_normalisation_from_samples_and_bad_stats():
    rng = np.random.default_rng(0)
    st = NormStats.from_samples(rng.uniform(0, 1000, size=(1000, 10)))
    assert all(lo < m < hi for lo, m, hi in zip(st.qmin, st.median, st.qmax))
    with pytest.raises(AliseError):
        NormStats(st.median, st.qmax, st.qmin)


def test_atomic_file_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.bin"
    with pytest.raises(RuntimeError):
        with atomic_file(target) as f:
            f.write(b"half")
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []
    with atomic_file(target) as f:
        f.write(b"whole")
    assert target.read_bytes() == b"whole"


def test_atomic_dir_and_check_output(tmp_path):
    out = tmp_path / "run"
    with atomic_dir(out) as d:
        (d / "a.txt").write_text("x")
    assert (out / "a.txt").exists()
    with pytest.raises(AliseError, match="already exists"):
        check_output(out)
    assert check_output(out, overwrite=True) == out
    with pytest.raises(RuntimeError):
        with atomic_dir(tmp_path / "run2") as d:
            (d / "b").write_text("y")
            raise RuntimeError
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_cli_help_lists_commands(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    assert "COMMAND" in capsys.readouterr().out


def test_outputs_get_umask_permissions(tmp_path):
    import os
    import stat

    mask = os.umask(0o022)
    try:
        with atomic_dir(tmp_path / "d") as d:
            with atomic_file(d / "f.bin") as f:
                f.write(b"x")
        assert stat.S_IMODE((tmp_path / "d").stat().st_mode) == 0o755
        assert stat.S_IMODE((tmp_path / "d" / "f.bin").stat().st_mode) == 0o644
    finally:
        os.umask(mask)


def test_atomic_dir_failure_between_renames_keeps_the_old_output(tmp_path, monkeypatch):
    import os

    import alise.outputs

    dest = tmp_path / "out"
    dest.mkdir()
    (dest / "old").write_text("old")
    real, calls = os.replace, []

    def flaky(a, b):
        calls.append((a, b))
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return real(a, b)

    monkeypatch.setattr(alise.outputs.os, "replace", flaky)
    with pytest.raises(OSError):
        with atomic_dir(dest, overwrite=True) as tmp:
            (tmp / "new").write_text("new")
    assert os.listdir(dest) == ["old"] and os.listdir(tmp_path) == ["out"]


def test_atomic_dir_replacing_a_file_leaves_nothing_behind(tmp_path):
    import os

    (tmp_path / "out").write_text("a file")
    with atomic_dir(tmp_path / "out", overwrite=True) as tmp:
        (tmp / "x").write_text("1")
    assert os.listdir(tmp_path) == ["out"] and os.listdir(tmp_path / "out") == ["x"]


def test_sigterm_during_a_command_leaves_no_temporary_output(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    script = (
        "import sys, time\n"
        "from alise import cli, outputs\n"
        "def run(args):\n"
        "    with outputs.atomic_dir(args.out) as d:\n"
        "        (d / 'partial').write_text('x')\n"
        "        print('ready', flush=True)\n"
        "        time.sleep(60)\n"
        "import types, argparse\n"
        "mod = types.SimpleNamespace(HELP='t', add_arguments=lambda p: p.add_argument('out'), run=run)\n"
        "cli._command_modules = lambda: [('slow', mod)]\n"
        "sys.exit(cli.main(['slow', sys.argv[1]]))\n"
    )
    p = subprocess.Popen([sys.executable, "-c", script, str(tmp_path / "out")], stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "ready"
    p.send_signal(signal.SIGTERM)
    assert p.wait(timeout=30) == 130
    time.sleep(0.1)
    assert list(tmp_path.iterdir()) == []
