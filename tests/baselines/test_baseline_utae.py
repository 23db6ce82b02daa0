"""U-TAE: shapes, parameter count, padding invariance, gradients, attention masking."""

from __future__ import annotations

import pytest
import torch

from alise.baselines.utae import UTAE, LTAE2d, positional_encoding, temporal_aggregation
from alise.errors import AliseError

#: Our documented count for K = 20 (PASTIS); paper Table II says ≈ 1.1M.
UTAE_PARAMS_K20 = 1_087_260


def _series(b=2, t=5, c=10, h=16, w=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, t, c, h, w, generator=g)
    days = torch.sort(torch.rand(b, t, generator=g) * 365 + 1800, dim=1).values
    valid = torch.ones(b, t, dtype=torch.bool)
    valid[1, t - 2:] = False                       # second series is shorter
    x[~valid] = 0
    return x, days, valid


def _pad(x, days, valid, extra):
    b, _, c, h, w = x.shape
    x2 = torch.cat([x, torch.randn(b, extra, c, h, w)], 1)    # garbage in padded frames
    d2 = torch.cat([days, torch.full((b, extra), 5000.0)], 1)
    v2 = torch.cat([valid, torch.zeros(b, extra, dtype=torch.bool)], 1)
    return x2, d2, v2


def test_parameter_count_pastis():
    assert sum(p.numel() for p in UTAE(10, 20).parameters()) == UTAE_PARAMS_K20


@pytest.mark.parametrize("k,h,w", [(20, 16, 16), (5, 32, 16)])
def test_shapes(k, h, w):
    x, days, valid = _series(h=h, w=w)
    assert UTAE(10, k)(x, days, valid).shape == (2, k, h, w)


def test_padding_invariance_eval():
    torch.manual_seed(0)
    model = UTAE(10, 7).eval()
    x, days, valid = _series()
    with torch.no_grad():
        ref = model(x, days, valid)
        padded = model(*_pad(x, days, valid, 3))
    assert torch.allclose(ref, padded, atol=1e-5)


def test_gradients_reach_every_parameter():
    torch.manual_seed(0)
    model = UTAE(10, 4)
    x, days, valid = _series()
    model(x, days, valid).pow(2).mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert missing == []


def test_ltae_attention_is_zero_on_padding_and_sums_to_one():
    ltae = LTAE2d(in_channels=32, n_head=4, d_k=4, mlp=(64, 32), d_model=64).eval()
    feats = torch.randn(2, 6, 32, 4, 4)
    valid = torch.tensor([[True] * 6, [True, True, True, False, False, False]])
    _, attn = ltae(feats, torch.rand(2, 6) * 1000, valid)
    assert attn.shape == (4, 2, 6, 4, 4)
    assert torch.all(attn[:, 1, 3:] == 0)
    assert torch.allclose(attn.sum(2), torch.ones(4, 2, 4, 4), atol=1e-6)


def test_temporal_aggregation_uses_each_heads_weights_per_channel_group():
    x = torch.randn(1, 3, 4, 8, 8)                 # C = 4, two groups of 2 channels
    attn = torch.zeros(2, 1, 3, 4, 4)
    attn[0, :, 0] = 1.0                            # head 0 picks date 0
    attn[1, :, 2] = 1.0                            # head 1 picks date 2
    out = temporal_aggregation(x, attn)
    assert torch.allclose(out[:, :2], x[:, 0, :2]) and torch.allclose(out[:, 2:], x[:, 2, 2:])


def test_positional_encoding_is_sinusoid_tiled_per_head():
    pe = positional_encoding(torch.tensor([[0.0, 1000.0]]), d=4, period=1000.0, repeat=2)
    assert pe.shape == (1, 2, 8)
    assert torch.allclose(pe[0, 0], torch.tensor([0.0, 1, 0, 1] * 2))
    assert torch.allclose(pe[0, 1, :4], torch.tensor([torch.sin(torch.tensor(1000.0)), torch.cos(torch.tensor(1000.0)),
                                                      torch.sin(torch.tensor(1000.0 / 1000 ** 0.5)),
                                                      torch.cos(torch.tensor(1000.0 / 1000 ** 0.5))]), atol=1e-5)


def test_user_errors():
    model = UTAE(10, 3)
    x, days, valid = _series(h=12, w=12)
    with pytest.raises(AliseError, match="divisible by 8"):
        model(x, days, valid)
    x, days, valid = _series()
    valid[0] = False
    with pytest.raises(AliseError, match="no valid date"):
        model(x, days, valid)


def test_masked_group_norm_equals_group_norm_without_padding_and_ignores_padding():
    from alise.baselines.utae import masked_group_norm

    norm = torch.nn.GroupNorm(4, 16)
    torch.nn.init.normal_(norm.weight)
    torch.nn.init.normal_(norm.bias)
    seq = torch.randn(5, 7, 16)                                   # (N, T, C)
    ref = norm(seq.transpose(1, 2)).transpose(1, 2)
    assert torch.allclose(masked_group_norm(seq, torch.ones(5, 7, dtype=torch.bool), norm), ref, atol=1e-5)
    padded = torch.cat([seq, 50 * torch.randn(5, 2, 16)], 1)
    valid = torch.cat([torch.ones(5, 7, dtype=torch.bool), torch.zeros(5, 2, dtype=torch.bool)], 1)
    assert torch.allclose(masked_group_norm(padded, valid, norm)[:, :7], ref, atol=1e-5)
