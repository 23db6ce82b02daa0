"""The authors' MALICE S2 export runs through our one code path and reproduces their ONNX output."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from alise.errors import AliseError
from alise.weights.malice import load_malice, malice_config, malice_state_dict
from alise.model.network import ALISE


@pytest.fixture(scope="module")
def export(shared_weights):
    return load_file(str(shared_weights / "alise" / "malice_s2_encoder.safetensors"))


def test_state_dict_covers_the_encoder(export):
    model = ALISE(malice_config())
    state = malice_state_dict(export)
    own = model.state_dict()
    encoder = {k for k in own if k.split(".")[0] in ("unet", "transformer", "projector")}
    assert set(state) == encoder
    assert all(state[k].shape == own[k].shape for k in state)
    assert model.param_counts()["encoder_total"] == 832_384 - 256  # README total minus 2×128 BN buffers


def test_reproduces_reference_output(export, shared_weights):
    io = load_file(str(shared_weights / "alise" / "malice_s2_reference_io.safetensors"))
    model = load_malice(export).eval()
    valid_dates = io["padd_mask"] == 0  # the export's mask is 1 = padded; ours is True = real date
    with torch.inference_mode():
        y = model.encode(io["sits"], io["tpe"], valid_dates)
    assert y.shape == io["output"].shape
    # Required: 1e-4. We reach ~2e-6 (float32 rounding only), so a tighter bound catches regressions.
    assert (y - io["output"]).abs().max().item() < 2e-5


def test_foreign_or_incomplete_tensors_refused(export):
    with pytest.raises(AliseError, match="unexpected tensor"):
        malice_state_dict({**export, "s1_encoder.weight": torch.zeros(1)})
    partial = dict(export)
    partial.pop("temp_proj.fc1_k.weight")
    with pytest.raises(AliseError, match="projector.key.weight"):
        load_malice(partial)
