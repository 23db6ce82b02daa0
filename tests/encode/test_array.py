"""In-memory tiled encoding (probe features, change maps): same tiling and statistics as ``alise encode``."""

from __future__ import annotations

import torch

from alise.batch import SITS
from alise.downstream.features import encode_sits
from alise.encode.array import encode_array, extend

from .conftest import tiny_model


def series(h: int, w: int, t: int = 4, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
    base = torch.sin(xx / 9)[None, None] * torch.cos(yy / 13)[None, None] * torch.linspace(0.5, 1.5, 10)[None, :, None, None]
    x = base + 0.1 * torch.randn(t, 10, h, w, generator=g)
    return x, torch.arange(t, dtype=torch.float32) * 30 + 1500


def test_tiled_equals_whole_with_shared_statistics_and_not_without():
    model = tiny_model().eval()
    x, days = series(100, 90)
    with torch.inference_mode():
        whole = encode_array(model, x, days, tile=104, overlap=0)  # one tile (100 → 104 by reflection)
        tiled = encode_array(model, x, days, tile=48, overlap=16)
        per_tile = encode_array(model, x, days, tile=48, overlap=16, group_norm="tile")
        one = model.encode(extend(x, 104, 96)[None], days[None], torch.ones(1, 4, dtype=torch.bool))[0, ..., :100, :90]
    assert whole.shape == (model.config.n_q, model.config.d_model, 100, 90)
    torch.testing.assert_close(whole, one)  # one tile: plain GroupNorm over the whole (extended) image
    scale = whole.abs().mean()
    seam = (tiled - whole).abs().max() / scale
    assert seam < 5e-3
    assert (per_tile - whole).abs().max() / scale > 5 * seam


def test_encode_sits_tiles_large_windows_seamlessly():
    model = tiny_model().eval()
    x, days = series(70, 140, seed=1)
    with torch.inference_mode():
        sits = SITS(x=x, days=days, valid_pixels=torch.ones(x.shape[0], 70, 140, dtype=torch.bool))
        big = encode_sits(model, sits, tile=64, overlap=16)
        ref = encode_sits(model, sits, tile=144, overlap=0)
    assert big.shape == (model.config.n_q * model.config.d_model, 70, 140)
    assert (big - ref).abs().max() < 5e-3 * ref.abs().mean()


def test_a_deeper_unet_gets_tiles_on_its_own_grid(tmp_path):
    """A UNet that halves the resolution 4 times needs sides and tile starts on a 16-px grid."""
    from alise import ALISE

    from .conftest import TINY

    torch.manual_seed(0)
    model = ALISE(TINY.replace(encoder_widths=(8, 8, 8, 8, 16), decoder_widths=(8, 8, 8, 8, 16))).eval()
    x, days = series(70, 100, seed=2)
    with torch.inference_mode():
        tiled = encode_array(model, x, days, tile=48, overlap=16)
        whole = encode_array(model, x, days, tile=112, overlap=0)
    assert tiled.shape[-2:] == (70, 100)
    assert (tiled - whole).abs().max() < 5e-3 * whole.abs().mean()
