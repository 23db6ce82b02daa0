"""Presto: vendored weights, reproduction of the official reference fixture, masking, LP head."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from alise.baselines.presto import (PRESTO_WEIGHTS, PrestoEncoder, PrestoLP, month_encoding_table,
                                    position_encoding_table)
from alise.errors import AliseError

TOL = 1e-5


@pytest.fixture(scope="module")
def presto() -> PrestoEncoder:
    return PrestoEncoder.from_pretrained()      # the vendored copy, not the shared one


@pytest.fixture(scope="module")
def ref(shared_weights):
    return load_file(str(shared_weights / "presto" / "presto_reference_io.safetensors"))


def _months(start: torch.Tensor, t: int) -> torch.Tensor:
    return (start[:, None] + torch.arange(t)) % 12


def test_vendored_tensors_are_the_published_encoder(shared_weights):
    vendored = load_file(str(PRESTO_WEIGHTS))
    original = load_file(str(shared_weights / "presto" / "presto.safetensors"))
    encoder = {k.removeprefix("encoder."): v for k, v in original.items() if k.startswith("encoder.")}
    assert vendored.keys() == encoder.keys()
    assert all(torch.equal(vendored[k], encoder[k]) for k in encoder)


def test_parameter_counts_and_fixed_tables(presto):
    assert sum(p.numel() for p in presto.parameters()) == 404_160          # Presto^FT "404K", Table II
    assert sum(p.numel() for p in presto.parameters() if p.requires_grad) == 402_240
    assert torch.allclose(presto.month_embed.weight, month_encoding_table(32), atol=1e-6)
    assert torch.allclose(presto.pos_embed, position_encoding_table(24, 64), atol=1e-6)


@torch.no_grad()
def test_reproduces_official_reference_outputs(presto, ref):
    months = _months(ref["start_month"], 12)
    full = presto(ref["x"], ref["dynamic_world"], ref["latlons"], ref["mask_full"] == 0, months)
    s2 = presto(ref["x"], ref["dynamic_world_missing"], ref["latlons"], ref["mask_s2only"] == 0, months)
    first6 = presto(ref["x"][:, :6], ref["dynamic_world_missing"][:, :6], ref["latlons"],
                    ref["mask_s2only"][:, :6] == 0, _months(torch.full((3,), 10), 6))
    assert (full - ref["embedding_full"]).abs().max() < TOL
    assert (s2 - ref["embedding_s2only"]).abs().max() < TOL
    assert (first6 - ref["embedding_s2only_first6_startmonth10"]).abs().max() < TOL


@torch.no_grad()
def test_encode_s2_from_digital_numbers_matches_reference(presto, ref):
    dn = ref["x"][:, :, 2:12] * 10000.0          # fixture S2 channels are DN / 10000; NDVI recomputed
    out = presto.encode_s2(dn, _months(ref["start_month"], 12), torch.ones(3, 12, dtype=torch.bool), ref["latlons"])
    assert out.shape == (3, 128)
    assert (out - ref["embedding_s2only"]).abs().max() < TOL


@torch.no_grad()
def test_masked_months_are_ignored_whatever_they_hold(presto):
    g = torch.Generator().manual_seed(0)
    dn = torch.rand(4, 12, 10, generator=g) * 4000
    month = _months(torch.tensor([0, 3, 6, 9]), 12)
    mask = torch.rand(4, 12, generator=g) > 0.4
    mask[:, 0] = True
    garbage = torch.where(mask[..., None], dn, torch.full_like(dn, float("nan")))
    a = presto.encode_s2(dn, month, mask, None)
    b = presto.encode_s2(garbage, month, mask, None)
    assert torch.isfinite(b).all() and torch.allclose(a, b, atol=TOL)
    c = presto.encode_s2(dn, month, torch.ones_like(mask), None)
    assert not torch.allclose(a, c, atol=1e-3)     # and the mask does change the embedding


@torch.no_grad()
def test_encode_image_equals_per_pixel_encode_s2(presto):
    g = torch.Generator().manual_seed(1)
    comp = torch.rand(6, 10, 3, 5, generator=g) * 3000
    month = torch.arange(6) + 3
    valid = torch.rand(6, 3, 5, generator=g) > 0.3
    emb = presto.encode_image(comp, month, valid, latlon=(50.0, 4.0), chunk=4)
    assert emb.shape == (128, 3, 5)
    i, j = 2, 4
    one = presto.encode_s2(comp[:, :, i, j][None], month[None], valid[:, i, j][None], torch.tensor([[50.0, 4.0]]))
    assert torch.allclose(emb[:, i, j], one[0], atol=TOL)


def test_user_errors(presto):
    with pytest.raises(AliseError, match="1 to 24"):
        presto.encode_s2(torch.zeros(1, 25, 10), torch.zeros(1, 25, dtype=torch.long), torch.ones(1, 25, dtype=torch.bool))
    with pytest.raises(AliseError, match="0 \\(January\\)"):
        presto.encode_s2(torch.zeros(1, 2, 10), torch.tensor([[11, 12]]), torch.ones(1, 2, dtype=torch.bool))
    with pytest.raises(AliseError, match="\\(N, M, 10\\)"):
        presto.encode_s2(torch.zeros(1, 2, 13), torch.zeros(1, 2, dtype=torch.long), torch.ones(1, 2, dtype=torch.bool))
    with pytest.raises(AliseError, match="not found"):
        PrestoEncoder.from_pretrained("/nonexistent/presto.safetensors")


def test_linear_probe_head():
    head = PrestoLP(19)
    assert sum(p.numel() for p in head.parameters()) == 2_451
    z = torch.randn(2, 128, 4, 4)
    out = head(z)
    assert out.shape == (2, 19, 4, 4)
    assert torch.allclose(out[:, :, 1, 2], head(z[:, :, 1, 2]), atol=1e-6)
