"""Untrusted model directories: loading never unpickles, damaged files are clean user errors, and
nothing in ``config.json`` can make alise read outside the model directory.

An attacker is assumed to control every byte of the directory, including the sha256 recorded in
``config.json`` (so the checksum is recomputed after each tampering: the reader itself must hold).
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alise.errors import AliseError
from alise.model.io import load

from .conftest import assert_user_error, run_cli, tiny_model


class _Bomb:
    """Unpickling this creates ``marker``: proof that something ran attacker code."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def _copy(model_dir: Path, tmp_path: Path, name: str = "model") -> Path:
    dest = tmp_path / name
    shutil.copytree(model_dir, dest)
    return dest


def _refused(model: Path, capsys, expected: str, load_match: str | None = None) -> str:
    """``load`` raises AliseError (matching ``load_match``) and ``alise info`` refuses the model
    as a user error naming ``expected``; returns that one stderr line."""
    with pytest.raises(AliseError, match=load_match):
        load(model)
    code, _, err = run_cli(capsys, "info", model)
    return assert_user_error(code, err, "info", expected)


def _reseal(model: Path) -> None:
    """Record the current weights' sha256 in config.json, as an attacker would."""
    meta = json.loads((model / "config.json").read_text())
    meta["weights"]["sha256"] = hashlib.sha256((model / "model.safetensors").read_bytes()).hexdigest()
    (model / "config.json").write_text(json.dumps(meta))


@pytest.mark.parametrize("writer", ["pickle", "torch.save"])
def test_pickle_named_safetensors_is_refused_without_running_it(writer, model_dir, tmp_path, capsys):
    model = _copy(model_dir, tmp_path)
    marker = tmp_path / "pwned"
    bomb = {"unet.inc.0.weight": _Bomb(marker)}
    with open(model / "model.safetensors", "wb") as f:
        pickle.dump(bomb, f) if writer == "pickle" else torch.save(bomb, f)
    _reseal(model)
    _refused(model, capsys, "model.safetensors", load_match="model.safetensors")
    assert not marker.exists()


def test_checkpoint_or_pickle_beside_a_missing_safetensors_is_ignored(model_dir, tmp_path, capsys):
    """Lightning checkpoints / .bin / .pt are for resuming training only: never a fallback of load."""
    model = _copy(model_dir, tmp_path)
    marker = tmp_path / "pwned"
    (model / "model.safetensors").unlink()
    for name in ("model.ckpt", "last.ckpt", "pytorch_model.bin", "model.pt", "model.pth"):
        torch.save({"state_dict": _Bomb(marker)}, model / name)
    code, _, err = run_cli(capsys, "info", model)
    assert_user_error(code, err, "info", "model.safetensors.*missing")
    assert not marker.exists()


def test_loading_calls_no_unpickler(model_dir, monkeypatch):
    """The whole load path of a good model runs with every unpickling entry point booby-trapped."""

    def trap(*a, **k):
        raise AssertionError("model loading tried to unpickle")

    class TrapUnpickler:
        def __init__(self, *a, **k):
            trap()

    monkeypatch.setattr(torch, "load", trap)
    monkeypatch.setattr(pickle, "load", trap)
    monkeypatch.setattr(pickle, "loads", trap)
    monkeypatch.setattr(pickle, "Unpickler", TrapUnpickler)
    model = load(model_dir)
    assert sum(p.numel() for p in model.parameters()) > 0


# ------------------------------------------------------------------------------- damaged weights
CUTS = [0, 1, 7, 8, 9, 64, "half", -1]


@pytest.mark.parametrize("cut", CUTS)
def test_truncated_weights_with_matching_checksum(cut, model_dir, tmp_path, capsys):
    model = _copy(model_dir, tmp_path)
    w = model / "model.safetensors"
    data = w.read_bytes()
    n = len(data) // 2 if cut == "half" else cut % len(data)
    w.write_bytes(data[:n])
    _reseal(model)
    _refused(model, capsys, "model.safetensors", load_match="model.safetensors")


def test_huge_header_length_is_refused_without_allocating(model_dir, tmp_path):
    """The 8-byte header length is attacker-controlled: 2**62 must not be taken at its word."""
    model = _copy(model_dir, tmp_path)
    w = model / "model.safetensors"
    data = bytearray(w.read_bytes())
    data[:8] = (2**62).to_bytes(8, "little")
    w.write_bytes(bytes(data))
    _reseal(model)
    with pytest.raises(AliseError, match="model.safetensors"):
        load(model)


def _header(model: Path) -> tuple[dict, bytes]:
    raw = (model / "model.safetensors").read_bytes()
    n = int.from_bytes(raw[:8], "little")
    return json.loads(raw[8:8 + n]), raw[8 + n:]


def _write_header(model: Path, header: dict, body: bytes) -> None:
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    (model / "model.safetensors").write_bytes(len(h).to_bytes(8, "little") + h + body)
    _reseal(model)


@pytest.mark.parametrize("edit, match", [
    ("offsets beyond the file", "model.safetensors"),
    ("overlapping offsets", "model.safetensors"),
    ("dtype changed to int64", "model.safetensors"),
    ("shape changed", "model.safetensors"),
    ("a tensor renamed", "model.safetensors"),
])
def test_tampered_header_is_a_clean_error(edit, match, model_dir, tmp_path):
    model = _copy(model_dir, tmp_path)
    header, body = _header(model)
    name = next(k for k in header if k != "__metadata__" and header[k]["shape"] and len(header[k]["shape"]) >= 2)
    t = header[name]
    if edit == "offsets beyond the file":
        t["data_offsets"] = [t["data_offsets"][0], len(body) + 1024]
    elif edit == "overlapping offsets":
        other = next(k for k in header if k not in ("__metadata__", name))
        header[other]["data_offsets"] = t["data_offsets"]
    elif edit == "dtype changed to int64":
        t["dtype"] = "I64"
        t["shape"] = [t["shape"][0] // 2 or 1] + t["shape"][1:] if t["shape"][0] % 2 == 0 else t["shape"]
    elif edit == "shape changed":
        t["shape"] = [1, (t["data_offsets"][1] - t["data_offsets"][0]) // 4]
    else:
        header[name + "_x"] = header.pop(name)
    _write_header(model, header, body)
    with pytest.raises(AliseError, match=match):
        load(model)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(flips=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 7)), min_size=1, max_size=4))
def test_random_bit_flips_load_or_fail_cleanly(flips, model_dir, tmp_path_factory):
    """Flipped bits anywhere (header or data), checksum resealed: an AliseError or a model, nothing else."""
    model = _copy(model_dir, tmp_path_factory.mktemp("flip"))
    w = model / "model.safetensors"
    data = bytearray(w.read_bytes())
    for pos, bit in flips:
        data[int(pos * len(data))] ^= 1 << bit
    w.write_bytes(bytes(data))
    _reseal(model)
    try:
        m = load(model)
    except AliseError as e:
        assert "\n" not in str(e) and "model.safetensors" in str(e)
    else:
        assert isinstance(m, torch.nn.Module)


# ------------------------------------------------------------------------------- damaged config.json
def _edit(model: Path, fn) -> None:
    meta = json.loads((model / "config.json").read_text())
    fn(meta)
    (model / "config.json").write_text(json.dumps(meta))


CONFIG_CASES = {
    "truncated": (lambda m: (m / "config.json").write_text((m / "config.json").read_text()[:57]), "JSON"),
    "empty": (lambda m: (m / "config.json").write_text(""), "JSON"),
    "binary": (lambda m: (m / "config.json").write_bytes(b"\xff\xfe\x00garbage"), "JSON"),
    "a list": (lambda m: (m / "config.json").write_text("[1, 2]"), "format"),
    "architecture is a list": (lambda m: _edit(m, lambda d: d.update(architecture=[1])), "architecture"),
    "unknown key": (lambda m: _edit(m, lambda d: d["architecture"].update(__class__="os.system")), "__class__"),
    "string for an int": (lambda m: _edit(m, lambda d: d["architecture"].update(d_model="16; rm -rf /")), "d_model"),
    "negative width": (lambda m: _edit(m, lambda d: d["architecture"].update(n_q=-1)), "n_q"),
    "bool for an int": (lambda m: _edit(m, lambda d: d["architecture"].update(n_layers=True)), "n_layers"),
    "NaN statistics": (lambda m: _edit(m, lambda d: d["normalisation"].update(qmin=[float("nan")] * 10)), "q05"),
    "statistics missing": (lambda m: _edit(m, lambda d: d["normalisation"].pop("median")), "normalisation"),
    "median above q95": (lambda m: _edit(m, lambda d: d["normalisation"]["median"].__setitem__(0, 1e6)), "median"),
    "other date origin": (lambda m: _edit(m, lambda d: d.update(date_origin="2000-01-01")), "date origin"),
    "future format": (lambda m: _edit(m, lambda d: d.update(format_version=2)), "newer"),
    "checksum of other weights": (lambda m: _edit(m, lambda d: d["weights"].update(sha256="0" * 64)), "checksum"),
}


@pytest.mark.parametrize("case", list(CONFIG_CASES))
def test_damaged_config_is_a_clean_error(case, model_dir, tmp_path, capsys):
    spoil, expected = CONFIG_CASES[case]
    model = _copy(model_dir, tmp_path)
    spoil(model)
    line = _refused(model, capsys, expected)
    assert "config.json" in line or "model.safetensors" in line or "statistics" in line, line


# ------------------------------------------------------------------------------- escaping the directory
def test_weights_path_in_config_is_not_followed(model_dir, tmp_path):
    """``weights.file`` is informative: alise always reads MODEL/model.safetensors, never a path from the file."""
    model = _copy(model_dir, tmp_path)
    other = tmp_path / "other"
    tiny_model(seed=7).save(other)
    for target in ("../other/model.safetensors", str(other / "model.safetensors"), "/etc/passwd"):
        _edit(model, lambda d: d["weights"].update(file=target))
        loaded = load(model)
        own = load(model_dir)
        assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), own.state_dict().values()))


@pytest.mark.parametrize("name", ["config.json", "model.safetensors"])
def test_symlinks_out_of_the_directory_are_refused(name, model_dir, tmp_path, capsys):
    model = _copy(model_dir, tmp_path)
    outside = tmp_path / f"outside-{name}"
    os.replace(model / name, outside)
    os.symlink(os.path.relpath(outside, model), model / name)
    _refused(model, capsys, "outside", load_match="outside")


def test_symlink_inside_the_directory_is_fine(model_dir, tmp_path):
    model = _copy(model_dir, tmp_path)
    os.replace(model / "model.safetensors", model / "weights.bin")
    os.symlink("weights.bin", model / "model.safetensors")
    assert isinstance(load(model), torch.nn.Module)


def test_pretrain_config_file_cannot_inject_keys(tmp_path, site, capsys):
    """``pretrain --config`` accepts a model's config.json but only the architecture's known keys."""
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"architecture": {"d_model": 16, "weights_file": "../../etc/passwd"}}))
    code, _, err = run_cli(capsys, "pretrain", site, "--out", tmp_path / "run", "--config", cfg, "--no-progress")
    assert_user_error(code, err, "pretrain", "weights_file")
    assert not (tmp_path / "run").exists()
