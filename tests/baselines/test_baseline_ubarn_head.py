"""U-BARN shallow classifier: parameter counts, shapes, padding invariance, masking."""

from __future__ import annotations

import pytest
import torch

from alise.baselines.ubarn_head import UBarnShallowClassifier
from alise.errors import AliseError


@pytest.mark.parametrize("query,expected", [("learned", 13_779), ("mean", 13_843)])
def test_parameter_count_pastis(query, expected):
    head = UBarnShallowClassifier(d_model=64, num_classes=19, query=query)
    assert sum(p.numel() for p in head.parameters()) == expected


@pytest.mark.parametrize("query", ["learned", "mean"])
@pytest.mark.parametrize("n_head", [1, 4])
def test_padding_invariance_and_shape(query, n_head):
    torch.manual_seed(0)
    head = UBarnShallowClassifier(64, 7, n_head=n_head, query=query)
    head.train()
    head(torch.randn(2, 5, 64, 4, 4), torch.ones(2, 5, dtype=torch.bool))   # move BN stats off init
    head.eval()
    feats = torch.randn(2, 5, 64, 6, 6)
    valid = torch.tensor([[True] * 5, [True, True, False, False, False]])
    with torch.no_grad():
        ref = head(feats, valid)
        padded = head(torch.cat([feats, 100 * torch.randn(2, 3, 64, 6, 6)], 1),
                      torch.cat([valid, torch.zeros(2, 3, dtype=torch.bool)], 1))
    assert ref.shape == (2, 7, 6, 6)
    assert torch.allclose(ref, padded, atol=1e-5)


def test_single_valid_date_returns_its_value_projection():
    head = UBarnShallowClassifier(8, 3).eval()
    feats = torch.randn(1, 4, 8, 2, 2)
    valid = torch.tensor([[False, True, False, False]])
    z = head.compress(feats, valid)
    expected = head.out(head.value(feats[0, 1].permute(1, 2, 0))).permute(2, 0, 1)
    assert torch.allclose(z[0], expected, atol=1e-6)


def test_gradients_reach_every_parameter():
    head = UBarnShallowClassifier(16, 5)
    head(torch.randn(2, 4, 16, 3, 3), torch.ones(2, 4, dtype=torch.bool)).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in head.parameters())


def test_user_errors():
    head = UBarnShallowClassifier(64, 3)
    with pytest.raises(AliseError, match="64 feature channels"):
        head(torch.randn(1, 2, 32, 2, 2), torch.ones(1, 2, dtype=torch.bool))
    with pytest.raises(AliseError, match="no valid date"):
        head(torch.randn(1, 2, 64, 2, 2), torch.zeros(1, 2, dtype=torch.bool))
    with pytest.raises(AliseError, match="query"):
        UBarnShallowClassifier(64, 3, query="max")
