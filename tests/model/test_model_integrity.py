"""config.json is covered by ``config_sha256``: edits after saving are refused, older directories
without the field still load, :func:`alise.model.io.reseal` records an intended edit."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from alise.model import builtin as models
from alise.errors import AliseError
from alise.model.directory import config_digest
from alise.model.io import load, load_model, reseal


@pytest.fixture
def saved(tmp_path, make_model):
    path = tmp_path / "model"
    make_model().save(path)
    return path


def _edit(path, fn):
    meta = json.loads((path / "config.json").read_text())
    fn(meta)
    (path / "config.json").write_text(json.dumps(meta, indent=2))


def test_saved_config_records_its_checksum(saved):
    meta = json.loads((saved / "config.json").read_text())
    assert len(meta["config_sha256"]) == 64 and meta["config_sha256"] == config_digest(meta)
    _edit(saved, lambda m: None)  # rewritten with other whitespace and key order: same content
    _edit(saved, lambda m: m.update(alise_version="9.9", note="free text"))  # not covered
    assert isinstance(load(saved), torch.nn.Module)


@pytest.mark.parametrize("edit", [
    lambda m: m["architecture"].update(dropout=0.5),  # same tensors, other network
    lambda m: m["architecture"].update(pe_base=10000.0),
    lambda m: m["normalisation"]["median"].__setitem__(0, 0.5),  # a valid statistic, other inputs
    lambda m: m["normalisation"]["qmax"].__setitem__(2, 3.0),
    lambda m: m["input"].update(min_clear=0.9),
    lambda m: m.pop("input"),
])
def test_an_edit_after_saving_is_refused(saved, edit):
    _edit(saved, edit)
    with pytest.raises(AliseError, match=r"config\.json was modified after saving \(.*reseal") as e:
        load(saved)
    assert "\n" not in str(e.value) and str(saved) in str(e.value)


def test_specific_errors_come_before_the_checksum(saved):
    _edit(saved, lambda m: m["normalisation"]["median"].__setitem__(0, 1e6))
    with pytest.raises(AliseError, match="median"):
        load(saved)
    _edit(saved, lambda m: m["normalisation"]["median"].__setitem__(0, 0.0))
    load(saved)  # back as saved
    _edit(saved, lambda m: m.update(config_sha256="nope"))
    with pytest.raises(AliseError, match="malformed.*config_sha256"):
        load(saved)


def test_old_directory_without_the_field_loads_and_reseal_adds_it(saved, make_model):
    _edit(saved, lambda m: m.pop("config_sha256"))
    _edit(saved, lambda m: m["input"].update(min_clear=0.25))  # unchecked without the field
    assert load(saved).input_min_clear == 0.25
    before = (saved / "model.safetensors").read_bytes()
    reseal(saved)
    meta = json.loads((saved / "config.json").read_text())
    assert meta["config_sha256"] == config_digest(meta) and (saved / "model.safetensors").read_bytes() == before
    assert load(saved).input_min_clear == 0.25
    _edit(saved, lambda m: m["input"].update(min_clear=0.75))
    with pytest.raises(AliseError, match="modified after saving"):
        load(saved)
    reseal(saved)  # the edit was intended
    assert load(saved).input_min_clear == 0.75


def test_reseal_refuses_a_directory_that_does_not_load(saved):
    (saved / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(AliseError, match="model.safetensors"):
        reseal(saved)


def test_builtin_model_carries_the_field_and_its_edit_is_refused(tmp_path):
    d = models.path(models.DEFAULT)
    meta = json.loads((d / "config.json").read_text())
    assert meta["config_sha256"] == config_digest(meta)
    assert meta["weights"]["sha256"] == "7e5fd82f7e070a85d9c59c58822ff0524f400a0f736e287c2f15d847e5ca4ea1"
    copy = tmp_path / "builtin"
    shutil.copytree(d, copy)
    _edit(copy, lambda m: m["normalisation"]["median"].__setitem__(0, 600.0))
    with pytest.raises(AliseError, match="modified after saving"):
        load_model(copy)
