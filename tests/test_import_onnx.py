"""`alise import-onnx`: the authors' published MALICE S2 export reproduces its own outputs (issue 5)."""

from __future__ import annotations

import torch
from safetensors.torch import load_file

import alise
from alise.cli import main
from alise.weights.malice import load_malice
from alise.weights.published import read_stats_csv


def _encode(model, x, days, valid):
    model.eval()
    with torch.inference_mode():
        return model.encode(x, days, valid)


def test_import_reproduces_onnx_runtime_outputs(tmp_path, shared_weights, capsys):
    onnx_file = shared_weights / "alise" / "malice_s2.onnx"
    out = tmp_path / "malice"
    assert main(["import-onnx", str(onnx_file), "--out", str(out)]) == 0
    assert "pe_base" in capsys.readouterr().out
    model = alise.load(out)
    ref = load_file(shared_weights / "alise" / "malice_s2_reference_io.safetensors")
    valid = ~ref["padd_mask"].bool()  # the export's mask is True = padded; ours is True = real date
    assert not valid.all(), "fixture should contain padded dates"
    y = _encode(model, ref["sits"], ref["tpe"], valid)
    assert y.shape == ref["output"].shape
    assert (y - ref["output"]).abs().max().item() < 1e-4


def test_import_matches_safetensors_on_random_inputs(tmp_path, shared_weights):
    from alise.weights.published import import_onnx

    imported, facts = import_onnx(shared_weights / "alise" / "malice_s2.onnx")
    assert facts["pe_base"] == 10000.0 and facts["variant"]["down_kernel"] == 2
    direct = load_malice(load_file(shared_weights / "alise" / "malice_s2_encoder.safetensors"))
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 5, 10, 16, 16, generator=g)
    days = torch.sort(torch.randint(1000, 2500, (2, 5), generator=g).float(), dim=1).values
    valid = torch.tensor([[True] * 5, [True, True, True, False, False]])
    assert torch.equal(_encode(imported, x, days, valid), _encode(direct, x, days, valid))


def test_import_refuses_non_onnx_and_existing_output(tmp_path, shared_weights, capsys):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not an onnx file")
    assert main(["import-onnx", str(bad), "--out", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "bad.onnx" in err
    assert not (tmp_path / "m").exists()
    (tmp_path / "exists").mkdir()
    assert main(["import-onnx", str(shared_weights / "alise" / "malice_s2.onnx"), "--out", str(tmp_path / "exists")]) == 2


def test_stats_csv(tmp_path):
    p = tmp_path / "dataset_s2.csv"
    p.write_text(",B02,B03,B04,B05,B06,B07,B08,B8A,B11,B12\n"
                 "med,1,2,3,4,5,6,7,8,9,10\nqmin,0,0,0,0,0,0,0,0,0,0\nqmax,20,20,20,20,20,20,20,20,20,20\n")
    st = read_stats_csv(p)
    assert st.median[:3] == (1.0, 2.0, 3.0) and st.qmax[-1] == 20.0 and st.bands[-1] == "B12"
    p.write_text("med,1,2\n")
    try:
        read_stats_csv(p)
    except alise.AliseError as e:
        assert "qmin" in str(e)
    else:
        raise AssertionError("incomplete statistics accepted")
