"""The linear probe head: paper parameter count and query-major flattening ([P] Table II, Fig. 5)."""

from __future__ import annotations

import pytest
import torch

from alise.downstream.heads import LinearProbe, count_parameters, flatten_queries


def test_pastis_probe_has_12179_parameters():
    assert count_parameters(LinearProbe(10, 64, 19)) == 12_179  # 640·19 + 19, Table II "12.2K"


@pytest.mark.parametrize("q,d,k", [(10, 64, 19), (4, 16, 3)])
def test_head_is_per_pixel_linear_on_query_major_vector(q, d, k):
    torch.manual_seed(0)
    head = LinearProbe(q, d, k)
    y = torch.randn(2, q, d, 5, 3)
    out = head(y)
    assert out.shape == (2, k, 5, 3)
    # Pixel (b=1, i=2, j=1) by hand: channel q·D + d of the vector is channel d of query q.
    vec = torch.cat([y[1, n, :, 2, 1] for n in range(q)])
    assert torch.allclose(out[1, :, 2, 1], head.linear(vec), atol=1e-5)
    assert torch.equal(flatten_queries(y)[1, :, 2, 1], vec)
