"""The building blocks one by one: parameter counts (docs/reference.md §11), golden values computed another way."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from alise.model.config import ALISEConfig
from alise.model.network import ALISE
from alise.model.nn import CrossReconstructionDecoder, SpatialSpectralEncoder, TemporalProjector, TransformerLayer, date_encoding


def test_paper_parameter_counts():
    counts = ALISE(ALISEConfig()).param_counts()
    assert counts == {"unet": 1_007_552, "transformer": 100_416, "projector": 2_368, "encoder_total": 1_110_336,
                      "decoder": 8_906, "latent_projector": 12_480}
    c = ALISEConfig()
    k = 19  # PASTIS classes: a linear probe on the flattened (Q·D) representation, Table II
    probe = nn.Linear(c.n_q * c.d_model, k)
    assert sum(p.numel() for p in probe.parameters()) == c.n_q * c.d_model * k + k == 12_179


def test_unet_shapes_table_viii_and_relu_output():
    unet = SpatialSpectralEncoder(ALISEConfig()).eval()
    x = torch.randn(2, 10, 32, 32)
    skips = [unet.in_conv(x)]
    for blk in unet.down_blocks:
        skips.append(blk(skips[-1]))
    # Table VIII at 32×32 instead of 64×64: 64 → 64@/2 → 64@/4 → 128@/8.
    assert [tuple(s.shape[1:]) for s in skips] == [(64, 32, 32), (64, 16, 16), (64, 8, 8), (128, 4, 4)]
    y = unet(x)
    assert y.shape == (2, 64, 32, 32) and bool((y >= 0).all())  # out_conv ends with ReLU (P5)


def test_unet_norms_per_variant():
    paper = SpatialSpectralEncoder(ALISEConfig())
    assert isinstance(paper.in_conv[0][1], nn.GroupNorm) and paper.in_conv[0][1].num_groups == 4
    assert isinstance(paper.up_blocks[0].conv1[1], nn.BatchNorm2d)
    assert paper.in_conv[0][0].padding_mode == "reflect" and paper.down_blocks[0].down[0].kernel_size == (4, 4)
    folded = SpatialSpectralEncoder(ALISEConfig(fold_bn=True, down_kernel=2))
    assert isinstance(folded.in_conv[0][1], nn.Identity) and isinstance(folded.up_blocks[0].up[1], nn.BatchNorm2d)
    assert folded(torch.randn(1, 10, 16, 16)).shape == (1, 64, 16, 16)


def test_date_encoding_golden():
    days = torch.tensor([[0.0, 1035.0, 2495.5]])
    pe = date_encoding(days, 8, base=1000.0)
    for t, p in enumerate(days[0].tolist()):
        for j in range(8):
            angle = p / 1000.0 ** (2 * (j // 2) / 8)
            want = math.sin(angle) if j % 2 == 0 else math.cos(angle)
            assert abs(pe[0, t, j].item() - want) < 1e-4
    assert pe.dtype == torch.float32 and pe.shape == (1, 3, 8)


def _attention(q, k, v, valid):  # slow obvious single-head attention over keys, masked
    s = q @ k.T / math.sqrt(q.shape[-1])
    s = s.masked_fill(~valid[None, :], float("-inf"))
    return torch.softmax(s, dim=-1) @ v


def test_temporal_projector_matches_loop():
    torch.manual_seed(0)
    proj = TemporalProjector(d_model=8, n_q=3, n_heads=2, d_k=4)
    x = torch.randn(5, 6, 8)
    valid = torch.rand(5, 6) > 0.3
    valid[:, 0] = True
    out = proj(x, valid)
    assert out.shape == (5, 3, 8)
    w = proj.key.weight  # (heads·d_k, D)
    for n in range(5):
        k = x[n] @ w.T
        for h in range(2):
            ref = _attention(proj.queries[h], k[:, 4 * h:4 * h + 4], x[n][:, 4 * h:4 * h + 4], valid[n])
            torch.testing.assert_close(out[n, :, 4 * h:4 * h + 4], ref, atol=1e-5, rtol=1e-5)


def test_decoder_matches_equations_8_9():
    torch.manual_seed(0)
    dec = CrossReconstructionDecoder(d_model=8, out_channels=3, pe_base=1000.0)
    y = torch.randn(2, 4, 8, 2, 3)  # (B, Q, D, H, W)
    days = torch.tensor([[1000.0, 1010.0], [1500.0, 1600.0]])
    out = dec(y, days)
    assert out.shape == (2, 2, 3, 2, 3)
    for b in range(2):
        q = dec.mask_token + date_encoding(days[b], 8, 1000.0)  # Eq. 8
        for i in range(2):
            for j in range(3):
                yy = y[b, :, :, i, j]  # (Q, D)
                att = torch.softmax(dec.w_1(q) @ dec.w_2(yy).T / math.sqrt(8), dim=-1) @ yy  # Eq. 9
                torch.testing.assert_close(out[b, :, :, i, j], dec.out(att), atol=1e-5, rtol=1e-5)


def test_postnorm_layer_equals_pytorch_layer():
    torch.manual_seed(0)
    ours = TransformerLayer(16, 4, 32, dropout=0.1, block="postnorm").eval()
    ref = nn.TransformerEncoderLayer(16, 4, 32, dropout=0.1, batch_first=True, norm_first=False).eval()
    sd = {k.replace("self_attn.", ""): v for k, v in ref.state_dict().items()}
    ours.load_state_dict(sd)  # parameter layout maps 1:1 onto nn.MultiheadAttention's
    x = torch.randn(3, 7, 16)
    valid = torch.ones(3, 7, dtype=torch.bool)
    valid[1, 4:] = False
    got = ours(x, valid[:, None, None, :])
    with torch.no_grad():
        want = ref(x, src_key_padding_mask=~valid)  # PyTorch wants True = padded
    torch.testing.assert_close(got[valid], want[valid], atol=1e-5, rtol=1e-5)


def test_double_ln_block_as_described():
    torch.manual_seed(0)
    layer = TransformerLayer(8, 2, 16, dropout=0.0, block="double_ln").eval()
    x = torch.randn(2, 5, 8)
    attend = torch.ones(2, 1, 1, 5, dtype=torch.bool)
    mha = nn.MultiheadAttention(8, 2, batch_first=True)
    mha.load_state_dict({"in_proj_weight": layer.in_proj_weight, "in_proj_bias": layer.in_proj_bias,
                         "out_proj.weight": layer.out_proj.weight, "out_proj.bias": layer.out_proj.bias})
    h = layer.norm1(x)
    a = x + mha(h, h, h, need_weights=False)[0]
    b = layer.norm1(a)
    c = b + layer.linear2(torch.relu(layer.linear1(b)))
    torch.testing.assert_close(layer(x, attend), layer.norm2(c), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("heads, d_k, count", [(2, 16, 2_368), (2, 64, 9_472), (4, 32, 9_472)])
def test_projector_variant_counts(heads, d_k, count):
    assert sum(p.numel() for p in TemporalProjector(64, 10, heads, d_k).parameters()) == count
