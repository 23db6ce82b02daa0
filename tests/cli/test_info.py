"""``alise info``: per-block parameter counts of a saved model; bad directories exit 2."""

from __future__ import annotations

import json

from alise.cli import main
from alise.model.network import ALISE


def test_info_on_default_model(tmp_path, capsys):
    ALISE().save(tmp_path / "m")
    assert main(["info", str(tmp_path / "m")]) == 0
    out = capsys.readouterr().out
    for block, count in [("unet", "1,007,552"), ("transformer", "100,416"), ("projector", "2,368"),
                         ("encoder_total", "1,110,336"), ("decoder", "8,906"), ("latent_projector", "12,480")]:
        assert any(line.split()[:2] == [block, count] for line in out.splitlines()), block
    assert "B8A" in out and "3016" in out and "2014-03-03" in out


def test_info_json(tmp_path, capsys):
    ALISE().save(tmp_path / "m")
    assert main(["info", str(tmp_path / "m"), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["parameters"]["encoder_total"] == 1_110_336
    assert info["architecture"]["n_q"] == 10 and info["normalisation"]["bands"][0] == "B02"


def test_info_bad_directory_exits_2(tmp_path, capsys):
    assert main(["info", str(tmp_path / "missing")]) == 2
    (tmp_path / "junk").mkdir()
    assert main(["info", str(tmp_path / "junk")]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "config.json" in err
