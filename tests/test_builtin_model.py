"""The built-in model: listed, loaded by name or by default, used when a command is given no MODEL,
and named in what the commands write."""

from __future__ import annotations

import json

import pytest
import rasterio

from alise.model import builtin as models, presets
from alise.cli import main
from alise.model.io import load_model


def test_the_default_model_is_shipped_with_its_card():
    assert models.DEFAULT in models.names()
    d = models.path(models.DEFAULT)
    card = (d / "MODEL_CARD.md").read_text()
    for must in ("Licence", "Training data", "Measured", "alise pretrain", "benchmarks/representation.py"):
        assert must in card, must
    model, info = load_model(None)
    assert info["builtin"] and info["name"].startswith(models.DEFAULT) and len(info["sha256"]) == 64
    assert not model.training and model.input_min_clear == 0.5
    # the model is what its recipe says: `alise pretrain --preset cpu-small` trains this architecture
    assert model.config == presets.preset("cpu-small").config


def test_alise_models_lists_it(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert f"{models.DEFAULT}  (default)" in out
    assert main(["models", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["name"] == models.DEFAULT and rows[0]["default"]
    assert main(["info", models.DEFAULT]) == 0
    assert "encoder_total" in capsys.readouterr().out


@pytest.mark.slow
def test_encode_without_a_model_uses_the_builtin_one_and_says_so(flanders, tmp_path, capsys):
    out = tmp_path / "emb.tif"
    assert main(["encode", str(flanders), "--out", str(out), "--start", "2018-05-01", "--end", "2018-06-30",
                 "--no-progress"]) == 0
    assert models.DEFAULT in capsys.readouterr().err
    with rasterio.open(out) as f:
        tags = f.tags()
        assert tags["ALISE_MODEL"].startswith(models.DEFAULT) and len(tags["ALISE_MODEL_SHA256"]) == 64
        assert tags["ALISE_DATES"].startswith("2018-05") and "queries" in tags["ALISE_LAYOUT"]
        assert f.descriptions[0] == "q00_d00"
