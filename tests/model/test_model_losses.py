"""Losses (Eq. 5–7, 10–11) against slow, obvious loop implementations; masking is exact."""

from __future__ import annotations

import torch

from alise.model.losses import covariance_loss, cross_reconstruction_loss, invariance_loss, reconstruction_loss


def _rec_loop(x, x_hat, vp, vd):
    terms = []
    b, t, c, h, w = x.shape
    for i in range(b):
        for j in range(t):
            if not vd[i, j]:
                continue
            s, n = 0.0, 0
            for r in range(h):
                for q in range(w):
                    if vp[i, j, r, q]:
                        s += sum((x[i, j, k, r, q].item() - x_hat[i, j, k, r, q].item()) ** 2 for k in range(c))
                        n += c
            if n:
                terms.append(s / n)
    return sum(terms) / len(terms)


def _inputs(seed=0):
    g = torch.Generator().manual_seed(seed)
    x, x_hat = torch.randn(2, 4, 3, 3, 3, generator=g), torch.randn(2, 4, 3, 3, 3, generator=g)
    vp = torch.rand(2, 4, 3, 3, generator=g) > 0.4
    vp[0, 1] = False  # a fully cloudy date: dropped, not counted as 0
    vd = torch.tensor([[True, True, True, True], [True, True, False, False]])
    return x, x_hat, vp, vd


def test_reconstruction_golden():
    x, x_hat, vp, vd = _inputs()
    assert abs(reconstruction_loss(x, x_hat, vp, vd).item() - _rec_loop(x, x_hat, vp, vd)) < 1e-5


def test_reconstruction_ignores_cloudy_and_padded_exactly():
    x, x_hat, vp, vd = _inputs()
    ref = reconstruction_loss(x, x_hat, vp, vd)
    masked = ~(vp & vd[:, :, None, None])[:, :, None].expand_as(x)
    x_hat2, x2 = x_hat.clone(), x.clone()
    x_hat2[masked] = 1e6
    x2[masked] = float("nan")
    x_hat2.requires_grad_(True)
    out = reconstruction_loss(x2, x_hat2, vp, vd)
    assert out.item() == ref.item()
    out.backward()
    assert bool(torch.isfinite(x_hat2.grad).all()) and bool((x_hat2.grad[masked] == 0).all())


def test_reconstruction_without_clear_pixels_is_zero_with_graph():
    x, x_hat, _, vd = _inputs()
    x_hat.requires_grad_(True)
    out = reconstruction_loss(x, x_hat, torch.zeros(2, 4, 3, 3, dtype=torch.bool), vd)
    out.backward()
    assert out.item() == 0.0 and bool((x_hat.grad == 0).all())


def test_cross_reconstruction_is_mean_of_views():
    assert cross_reconstruction_loss(torch.tensor(1.0), torch.tensor(3.0)).item() == 2.0


def test_invariance_golden():
    g = torch.Generator().manual_seed(1)
    za, zb = torch.randn(2, 3, 5, 2, 2, generator=g), torch.randn(2, 3, 5, 2, 2, generator=g)
    total = 0.0
    for b in range(2):
        for n in range(3):
            for i in range(2):
                for j in range(2):
                    total += sum((za[b, n, e, i, j].item() - zb[b, n, e, i, j].item()) ** 2 for e in range(5))
    eq5 = total / (2 * 3 * 2 * 2)  # Eq. 5 sums over d_emb; we use the mean (docs/reference.md D14)
    assert abs(invariance_loss(za, zb).item() - eq5 / 5) < 1e-5
    assert invariance_loss(za, za).item() == 0.0


def test_covariance_golden_and_gather_hook():
    g = torch.Generator().manual_seed(2)
    z = torch.randn(2, 3, 4, 2, 2, generator=g) * torch.tensor([1.0, 2.0, 0.5, 1.0])[None, None, :, None, None]
    samples = [[z[b, n, :, i, j].tolist() for b in range(2) for n in range(3) for i in range(2) for j in range(2)]][0]
    n, e = len(samples), 4
    mean = [sum(s[k] for s in samples) / n for k in range(e)]
    cov = [[sum((s[p] - mean[p]) * (s[q] - mean[q]) for s in samples) / (n - 1) for q in range(e)] for p in range(e)]
    want = sum(cov[p][q] ** 2 for p in range(e) for q in range(e) if p != q) / e
    assert abs(covariance_loss(z).item() - want) < 1e-5
    # The gather hook sees (N, E) samples; gathering two identical "processes" scales C by 2(N−1)/(2N−1).
    seen = []

    def gather(flat):
        seen.append(flat.shape)
        return torch.cat([flat, flat])

    assert abs(covariance_loss(z, gather).item() - want * (2 * (n - 1) / (2 * n - 1)) ** 2) < 1e-5
    assert seen == [torch.Size([n, e])]


def test_covariance_of_decorrelated_features_is_zero():
    z = torch.zeros(1, 1, 2, 2, 2)
    z[0, 0, 0] = torch.tensor([[1.0, -1.0], [1.0, -1.0]])
    z[0, 0, 1] = torch.tensor([[1.0, 1.0], [-1.0, -1.0]])
    assert covariance_loss(z).item() == 0.0
