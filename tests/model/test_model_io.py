"""Model directories: bit-identical round trip, atomic writes, tampering/truncation refused."""

from __future__ import annotations

import json
import os

import pytest
import torch

from alise.errors import AliseError
from alise.model.directory import save
from alise.model.io import load


@pytest.fixture
def saved(tmp_path, make_model, make_batch):
    model = make_model()
    batch = make_batch(b=1, t=3)
    model.train()  # move BatchNorm running statistics away from their initial values
    with torch.no_grad():
        model.encode(batch.x, batch.days, batch.valid_dates)
    model.eval()
    path = tmp_path / "model"
    model.save(path)
    return model, path, batch


def test_roundtrip_is_bit_identical(saved):
    model, path, batch = saved
    assert sorted(os.listdir(path)) == ["config.json", "model.safetensors"]
    loaded = load(path)
    assert not loaded.training and loaded.config == model.config and loaded.norm == model.norm
    for (k, a), (k2, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert k == k2 and torch.equal(a, b)
    with torch.no_grad():
        y1 = model.encode(batch.x, batch.days, batch.valid_dates)
        y2 = loaded.encode(batch.x, batch.days, batch.valid_dates)
        assert torch.equal(y1, y2)
        assert torch.equal(model.decode(y1, batch.days), loaded.decode(y2, batch.days))
    meta = json.loads((path / "config.json").read_text())
    assert meta["date_origin"] == "2014-03-03" and meta["bands"] == ["B02", "B03", "B04"]
    assert meta["format_version"] == 1 and "alise_version" in meta and meta["normalisation"]["median"] == [0.0] * 3


def test_existing_output_refused_unless_overwrite(saved, make_model):
    _, path, _ = saved
    with pytest.raises(AliseError, match="already exists"):
        save(make_model(seed=1), path)
    other = make_model(seed=1)
    save(other, path, overwrite=True)
    assert torch.equal(load(path).projector.queries, other.projector.queries)
    assert not [p for p in os.listdir(path.parent) if p.startswith(".")]  # no temporary leftovers


def test_truncated_or_tampered_weights(saved):
    _, path, _ = saved
    w = path / "model.safetensors"
    data = bytearray(w.read_bytes())
    data[-7] ^= 0xFF  # one flipped bit in the tensor data: the header still parses
    w.write_bytes(bytes(data))
    with pytest.raises(AliseError, match="model.safetensors.*checksum"):
        load(path)
    w.write_bytes(bytes(data[: len(data) // 2]))
    meta = json.loads((path / "config.json").read_text())
    del meta["weights"]  # without a checksum, the reader itself must refuse the truncated file
    (path / "config.json").write_text(json.dumps(meta))
    with pytest.raises(AliseError, match="model.safetensors"):
        load(path)


@pytest.mark.parametrize("edit, match", [
    (lambda m: m["architecture"].update(n_query=3), "config.json.*'n_query'"),
    (lambda m: m["architecture"].update(n_q=4), "model.safetensors.*shape"),
    (lambda m: m["architecture"].update(n_layers=2), "model.safetensors.*unexpected"),
    (lambda m: m.update(format="something"), "config.json.*format"),
    (lambda m: m.update(format_version=99), "config.json.*newer"),
])
def test_bad_config(saved, edit, match):
    _, path, _ = saved
    meta = json.loads((path / "config.json").read_text())
    edit(meta)
    (path / "config.json").write_text(json.dumps(meta))
    with pytest.raises(AliseError, match=match):
        load(path)


def test_bad_directories(tmp_path, saved):
    _, path, _ = saved
    with pytest.raises(AliseError, match="does not exist"):
        load(tmp_path / "nope")
    (path / "config.json").write_text("{not json")
    with pytest.raises(AliseError, match="config.json.*JSON"):
        load(path)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(AliseError, match="config.json.*missing"):
        load(empty)


def test_symlink_escaping_directory_refused(tmp_path, saved):
    _, path, _ = saved
    outside = tmp_path / "elsewhere.safetensors"
    os.replace(path / "model.safetensors", outside)
    os.symlink(outside, path / "model.safetensors")
    with pytest.raises(AliseError, match="outside"):
        load(path)


def test_load_refuses_non_finite_weights(tmp_path):
    import hashlib
    import json

    import pytest
    from safetensors.torch import load_file, save_file

    from alise import ALISE, ALISEConfig, AliseError
    from alise.model.io import load

    cfg = ALISEConfig(encoder_widths=(8, 8, 8, 16), decoder_widths=(8, 8, 8, 16), d_model=16, n_heads=2,
                      d_ffn=32, proj_d_k=4, d_emb=16, d_proj_hidden=16)
    ALISE(cfg).save(tmp_path / "m")
    w = tmp_path / "m" / "model.safetensors"
    tensors = load_file(str(w))
    key = next(k for k, v in tensors.items() if v.is_floating_point())
    tensors[key][...] = float("nan")
    save_file(tensors, str(w))
    cfg_path = tmp_path / "m" / "config.json"
    meta = json.loads(cfg_path.read_text())
    meta["weights"]["sha256"] = hashlib.sha256(w.read_bytes()).hexdigest()
    cfg_path.write_text(json.dumps(meta))
    with pytest.raises(AliseError, match="non-finite"):
        load(tmp_path / "m")
