"""MultiSenGE and RotCrop readers on fixtures written in their exact layouts (docs/reference.md §9)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from alise.data.multisenge import MULTISENGE_CLASSES, open_multisenge
from alise.data.rotcrop import open_rotcrop
from alise.dates import days_since_origin
from alise.downstream import open_inputs
from alise.errors import AliseError
from alise.normalise import NormStats


def make_multisenge(write_tif, root, tile="31TFN", xy=(4626, 514), dates=("20200805", "20200731", "20200914"), size=16):
    rng = np.random.default_rng(0)
    names = []
    for d in dates:
        name = f"{tile}_{d}_S2_{xy[0]}_{xy[1]}.tif"
        write_tif(root / "s2" / name, rng.integers(100, 4000, (10, size, size)).astype(np.int16))
        names.append(name)
    gr = np.zeros((size, size), np.uint8)
    gr[4:, :8], gr[4:, 8:] = 6, 11
    write_tif(root / "ground_reference" / f"{tile}_GR_{xy[0]}_{xy[1]}.tif", gr)
    (root / "labels").mkdir(parents=True, exist_ok=True)
    (root / "labels" / f"{tile}_{xy[0]}_{xy[1]}.json").write_text(json.dumps({
        "corresponding_s2": ";".join(names), "corresponding_s1": f"{tile}_20200110_S1_{xy[0]}_{xy[1]}.tif",
        "projection": "EPSG:32631", "labels": "6;11"}))
    return root


def test_multisenge_patch_reads_dates_bands_and_ground_reference(tmp_path, write_tif_fn):
    root = make_multisenge(write_tif_fn, tmp_path / "msg")
    (src,) = open_multisenge(root)
    assert [d.isoformat() for d in src.dates] == ["2020-07-31", "2020-08-05", "2020-09-14"]
    assert src.shape == (3, 10, 16, 16) and src.grid.crs.to_epsg() == 32631
    raw = src.read(window=(2, 3, 8, 8), dates=[0, 2])
    assert raw.dn.shape == (2, 10, 8, 8) and raw.valid.all()  # no cloud mask in MultiSenGE
    np.testing.assert_array_equal(raw.days, days_since_origin(["2020-07-31", "2020-09-14"]))
    lab = src.labels()
    assert set(np.unique(lab)) == {0, 6, 11} and src.class_names == MULTISENGE_CLASSES
    assert src.ignore_labels == (0,)
    assert len(open_inputs(root)) == 1


def test_multisenge_missing_file_is_a_user_error(tmp_path, write_tif_fn):
    root = make_multisenge(write_tif_fn, tmp_path / "msg")
    next((root / "s2").iterdir()).unlink()
    with pytest.raises(AliseError, match="not found"):
        open_multisenge(root)


def make_rotcrop(path, size=8, t=(4, 5)):
    rng = np.random.default_rng(1)
    sample = {}
    for k, (n, year) in enumerate(zip(t, (2019, 2020)), start=1):
        scl = np.full((1, n, size, size), 4, np.int64)
        scl[0, 0, :2] = 9  # a cloud on the first date
        sample[f"year{k}"] = {
            "sits": torch.from_numpy(rng.integers(100, 4000, (10, n, size, size)).astype(np.int16)),
            "doy": torch.from_numpy(np.asarray(days_since_origin([f"{year}-{m:02d}-10" for m in range(3, 3 + n)]))),
            "mask": {"mask_cld": torch.zeros(1, n, size, size, dtype=torch.int64), "mask_slc": torch.from_numpy(scl)},
        }
    c19 = np.full((size, size), 6)
    c20 = c19.copy()
    c20[:, 4:] = 10
    c19[0, :] = 0
    sample["raster"] = torch.from_numpy(np.stack([c19, c20, np.zeros_like(c19)]))
    torch.save(sample, path)
    return path


def test_rotcrop_pair_sources_and_derived_truth(tmp_path):
    pair = open_rotcrop(make_rotcrop(tmp_path / "s.pt"))
    assert pair.a.n_dates == 4 and pair.b.n_dates == 5
    assert pair.a.dates[0].isoformat() == "2019-03-10" and pair.b.dates[0].isoformat() == "2020-03-10"
    raw = pair.a.read()
    assert raw.dn.shape == (4, 10, 8, 8)
    assert not raw.valid[0, :2].any() and raw.valid[1:].all()  # SCL 9 = cloud
    truth = pair.truth
    assert (truth[0] == 255).all()  # background in 2019 → excluded
    assert (truth[1:, 4:] == 1).all() and (truth[1:, :4] == 0).all()  # cereal → corn on the right
    sits = raw.to_sits(NormStats.paper())
    assert sits.labels is not None


@pytest.mark.slow
def test_change_cli_on_rotcrop_sample(tiny_model_dir, tmp_path):
    from alise.cli import main

    sample = make_rotcrop(tmp_path / "s.pt", size=16)
    out = tmp_path / "o" / "map.tif"
    assert main(["change", str(tiny_model_dir), str(sample), "--out", str(out)]) == 0
    m = json.loads((out.parent / "map.metrics.json").read_text())
    assert 0 <= m["auc"] <= 1 and m["n_pixels"] == int((open_rotcrop(sample).truth != 255).sum())


def test_rotcrop_rejects_other_files(tmp_path):
    p = tmp_path / "bad.pt"
    torch.save({"year1": {}}, p)
    with pytest.raises(AliseError, match="not a RotCrop sample"):
        open_rotcrop(p)
