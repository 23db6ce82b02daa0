"""Properties the paper relies on: alignment (any T → Q), padding/batch invariance, date sensitivity, gradients."""

from __future__ import annotations

import pytest
import torch

from alise.batch import SITSBatch
from alise.errors import AliseError


def _pad(batch: SITSBatch, extra: int, seed: int = 1) -> SITSBatch:
    """Append ``extra`` padded dates holding garbage values and arbitrary days."""
    g = torch.Generator().manual_seed(seed)
    b, _, c, h, w = batch.x.shape
    return SITSBatch(
        x=torch.cat([batch.x, 1e3 * torch.randn(b, extra, c, h, w, generator=g)], 1),
        days=torch.cat([batch.days, torch.randint(-500, 9000, (b, extra), generator=g).float()], 1),
        valid_dates=torch.cat([batch.valid_dates, torch.zeros(b, extra, dtype=torch.bool)], 1),
        valid_pixels=torch.cat([batch.valid_pixels, torch.zeros(b, extra, h, w, dtype=torch.bool)], 1),
    )


def _enc(model, batch, **kw):
    with torch.no_grad():
        return model.encode(batch.x, batch.days, batch.valid_dates, **kw)


def test_padding_invariance(make_model, make_batch):
    model = make_model().eval()
    batch = make_batch(b=2, t=5)
    ref = _enc(model, batch)
    assert (ref - _enc(model, _pad(batch, 3))).abs().max() < 1e-5
    # Also a batch where only one sample is padded, inside the batch's common T.
    partial = _pad(batch, 2)
    partial.valid_dates[0, 5:] = True
    partial.days[0, 5:] = torch.tensor([2600.0, 2610.0])
    assert (_enc(model, partial)[1] - ref[1]).abs().max() < 1e-5


def test_unet_batchnorm_never_sees_padding(make_model, make_batch):
    """Train mode: BatchNorm running statistics are the same with or without padded frames (P4)."""
    batch = make_batch(b=2, t=4)
    stats = []
    for b in (batch, _pad(batch, 3)):
        model = make_model().train()
        model.encode(b.x, b.days, b.valid_dates)
        stats.append(model.unet.out_conv[1].running_mean.clone())
    torch.testing.assert_close(stats[0], stats[1])


@pytest.mark.parametrize("t", [1, 3, 9])
def test_any_t_gives_aligned_shape(make_model, make_batch, tiny_cfg, t):
    model = make_model().eval()
    batch = make_batch(b=2, t=t)
    y = _enc(model, batch)
    assert y.shape == (2, tiny_cfg.n_q, tiny_cfg.d_model, 16, 16) and bool(torch.isfinite(y).all())
    s = model.sste(batch.x, batch.days, batch.valid_dates)
    assert s.shape == (2, t, tiny_cfg.d_model, 16, 16)
    targets = torch.tensor([[1200.0, 1300.0, 1400.0, 1500.0]] * 2)  # gap-filling at any dates
    assert model.decode(y, targets).shape == (2, 4, tiny_cfg.in_channels, 16, 16)
    assert model.project(y).shape == (2, tiny_cfg.n_q, tiny_cfg.d_emb, 16, 16)


def test_batch_composition_does_not_matter(make_model, make_batch):
    model = make_model().eval()
    batch = make_batch(b=3, t=4)
    together = _enc(model, batch)
    for i in range(3):
        alone = SITSBatch(batch.x[i:i + 1], batch.days[i:i + 1], batch.valid_dates[i:i + 1], batch.valid_pixels[i:i + 1])
        assert (_enc(model, alone)[0] - together[i]).abs().max() < 1e-5


def test_chunked_pixels_equal_unchunked(make_model, make_batch):
    model = make_model().eval()
    batch = _pad(make_batch(b=2, t=4), 2)
    torch.testing.assert_close(_enc(model, batch, chunk_pixels=37), _enc(model, batch), atol=1e-6, rtol=1e-6)
    with torch.no_grad():
        torch.testing.assert_close(model.sste(batch.x, batch.days, batch.valid_dates, chunk_pixels=100)[:, :4],
                                   model.sste(batch.x, batch.days, batch.valid_dates)[:, :4], atol=1e-6, rtol=1e-6)


def test_dates_matter_but_their_order_does_not(make_model, make_batch):
    model = make_model().eval()
    batch = make_batch(b=1, t=6)
    ref = _enc(model, batch)
    shifted = SITSBatch(batch.x, batch.days + 100.0, batch.valid_dates, batch.valid_pixels)
    assert (_enc(model, shifted) - ref).abs().max() > 1e-3
    perm = torch.tensor([3, 0, 5, 1, 4, 2])
    permuted = SITSBatch(batch.x[:, perm], batch.days[:, perm], batch.valid_dates[:, perm], batch.valid_pixels[:, perm])
    assert (_enc(model, permuted) - ref).abs().max() < 1e-5


def test_inference_mode_autocast_and_channels_last(make_model, make_batch):
    model = make_model().eval()
    batch = make_batch(b=1, t=3)
    ref = _enc(model, batch)
    with torch.inference_mode():
        torch.testing.assert_close(model.set_channels_last().encode(batch.x, batch.days, batch.valid_dates), ref,
                                   atol=1e-5, rtol=1e-5)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            y = model.encode(batch.x, batch.days, batch.valid_dates)
    assert bool(torch.isfinite(y).all()) and (y.float() - ref).abs().max() < 0.25 * ref.abs().max()


def test_user_mistakes_are_alise_errors(make_model, make_batch):
    model = make_model().eval()
    batch = make_batch(b=2, t=3)
    with pytest.raises(AliseError, match="at least one valid"):
        model.encode(batch.x, batch.days, torch.tensor([[True, True, True], [False, False, False]]))
    with pytest.raises(AliseError, match="bands"):
        model.encode(batch.x[:, :, :2], batch.days, batch.valid_dates)
    with pytest.raises(AliseError, match="multiples of 8"):
        model.encode(batch.x[..., :12, :12], batch.days, batch.valid_dates)
    with pytest.raises(AliseError, match="chunk_pixels"):
        model.encode(batch.x, batch.days, batch.valid_dates, chunk_pixels=0)


# ---------------------------------------------------------------- gradients of each loss (Eq. 2)

def _views(make_batch):
    a, b = make_batch(b=2, t=4, seed=1), make_batch(b=2, t=3, seed=2)
    b.valid_dates[1, 2] = False  # one padded date in view B
    return a, b


def _grads(model, term: torch.Tensor) -> dict[str, bool]:
    model.zero_grad(set_to_none=True)
    term.backward(retain_graph=True)
    return {n: p.grad is not None and bool(p.grad.abs().sum() > 0) for n, p in model.named_parameters()}


def test_each_loss_trains_the_right_blocks(make_model, make_batch):
    model = make_model(w_cov=0.05).train()
    out = model.pretrain_step(*_views(make_batch))
    assert set(out) == {"loss", "rec", "inv", "cov"} and all(v.dim() == 0 for v in out.values())
    torch.testing.assert_close(out["loss"], out["rec"] + out["inv"] + 0.05 * out["cov"])
    encoder = ("unet.", "transformer.", "projector.")
    rec = _grads(model, out["rec"])
    assert all(g for n, g in rec.items() if n.startswith(encoder + ("decoder.",))), [n for n, g in rec.items() if not g]
    assert not any(g for n, g in rec.items() if n.startswith("latent."))
    for name in ("inv", "cov"):  # the latent losses must reach the encoder (P1: MALICE froze it)
        g = _grads(model, out[name])
        assert all(v for n, v in g.items() if n.startswith(encoder + ("latent.",))), [n for n, v in g.items() if not v]
        assert not any(v for n, v in g.items() if n.startswith("decoder."))


def test_latent_projector_skipped_without_latent_losses(make_model, make_batch):
    model = make_model(w_inv=0.0, w_cov=0.0).train()
    out = model.pretrain_step(*_views(make_batch))
    assert out["inv"].item() == 0.0 and out["cov"].item() == 0.0
    out["loss"].backward()
    assert all(p.grad is None for p in model.latent.parameters())
    assert model.latent.net[1].num_batches_tracked.item() == 0  # never even run
    assert all(p.grad is not None for p in model.unet.parameters())


def test_pretrain_step_reconstructs_across_views(make_model, make_batch):
    """rec is ½(l(A | Y^B) + l(B | Y^A)) (Eq. 10), computed here by hand from encode/decode."""
    from alise.model.losses import reconstruction_loss

    model = make_model(dropout=0.0).eval()
    a, b = _views(make_batch)
    with torch.no_grad():
        out = model.pretrain_step(a, b)
        ya, yb = model.encode(a.x, a.days, a.valid_dates), model.encode(b.x, b.days, b.valid_dates)
        l_ab = reconstruction_loss(a.x, model.decode(yb, a.days), a.valid_pixels, a.valid_dates)
        l_ba = reconstruction_loss(b.x, model.decode(ya, b.days), b.valid_pixels, b.valid_dates)
    torch.testing.assert_close(out["rec"], 0.5 * (l_ab + l_ba), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("chunk_frames,chunk_pixels", [(1, None), (3, None), (None, 7), (2, 50)])
def test_chunking_frames_and_pixels_does_not_change_the_output(make_model, make_batch, chunk_frames, chunk_pixels):
    model = make_model().eval()
    batch = make_batch(b=2, t=5)
    batch.valid_dates[1, 3:] = False  # padding + chunks of frames that straddle series
    with torch.inference_mode():
        ref = model.encode(batch.x, batch.days, batch.valid_dates, chunk_frames=10_000)
        out = model.encode(batch.x, batch.days, batch.valid_dates, chunk_frames=chunk_frames, chunk_pixels=chunk_pixels)
        feats = model.sste(batch.x, batch.days, batch.valid_dates, chunk_frames=chunk_frames, chunk_pixels=chunk_pixels)
        feats_ref = model.sste(batch.x, batch.days, batch.valid_dates)
    assert (out - ref).abs().max().item() < 1e-5
    assert (feats - feats_ref)[batch.valid_dates].abs().max().item() < 1e-5


def test_chunk_frames_must_be_positive(make_model, make_batch):
    batch = make_batch()
    with pytest.raises(AliseError, match="chunk_frames"):
        make_model().eval().encode(batch.x, batch.days, batch.valid_dates, chunk_frames=0)
