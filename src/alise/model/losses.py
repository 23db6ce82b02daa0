"""The pre-training losses, as pure functions named after their equations ([P] Eq. 2, 5–7, 10–11).

    L = w_inv · L_inv + w_cov · L_cov + w_rec · L_rec                                    (Eq. 2)

Reductions follow docs/reference.md §6.4: the reconstruction loss is a per-date mean over clear pixels and
bands, then a mean over the dates that have at least one clear pixel (Eq. 11); the invariance loss
is a mean over all elements (the authors' ``nn.MSELoss``, D14); the covariance loss normalises the
covariance with N − 1 over N = B·Q·H·W samples (VICReg).

Distributed training: :func:`covariance_loss` takes a ``gather`` hook, a function
``(N_local, E) → (N_global, E)`` that concatenates the samples of every process *with gradient*
(e.g. ``lambda z: torch.cat(torch.distributed.nn.functional.all_gather(z))``) so that the
covariance is estimated on the global batch. The other two losses are means of per-sample terms:
DDP's gradient averaging already makes them global (up to unequal per-process counts).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor


def reconstruction_loss(x: Tensor, x_hat: Tensor, valid_pixels: Tensor, valid_dates: Tensor) -> Tensor:
    """Masked per-date MSE, l_rec of Eq. 11.

    Args:
        x: ``(B, T, C, H, W)`` target normalised reflectance (may hold anything where invalid).
        x_hat: ``(B, T, C, H, W)`` prediction.
        valid_pixels: ``(B, T, H, W)`` bool, True = clear observation.
        valid_dates: ``(B, T)`` bool, True = real (not padded) date.

    Returns:
        Scalar: for each (b, t), the mean of ``(x − x̂)²`` over clear pixels and the C bands; then
        the mean over the (b, t) with at least one clear pixel (0 if there is none). Values at
        cloudy or padded pixels do not enter the result nor its gradient.
    """
    mask = valid_pixels & valid_dates[:, :, None, None]  # (B, T, H, W)
    # where() rather than a product: NaN/inf at masked pixels must not leak into value or gradient.
    diff = torch.where(mask[:, :, None], x_hat - x, torch.zeros((), dtype=x_hat.dtype, device=x_hat.device))
    sq = diff.float().square().sum(dim=(2, 3, 4))  # (B, T)
    n = mask.sum(dim=(2, 3)) * x.shape[2]  # (B, T) clear pixel-bands
    has = n > 0
    per_date = sq / n.clamp(min=1)
    if not bool(has.any()):
        return per_date.sum() * 0.0  # keeps the graph; no clear pixel anywhere
    return per_date[has].mean()


def cross_reconstruction_loss(l_rec_ab: Tensor, l_rec_ba: Tensor) -> Tensor:
    """Eq. 10: ``L_rec = ½ (l_rec(X^A, g(Y^B)) + l_rec(X^B, g(Y^A)))`` from the two scalars."""
    return 0.5 * (l_rec_ab + l_rec_ba)


def invariance_loss(z_a: Tensor, z_b: Tensor) -> Tensor:
    """L_inv of Eq. 5 with mean reduction (docs/reference.md D14).

    Args:
        z_a, z_b: ``(B, Q, E, H, W)`` embeddings of the two views (E = d_emb).

    Returns:
        Scalar mean over all B·Q·E·H·W elements of ``(z_a − z_b)²`` (Eq. 5 divided by E).
    """
    return F.mse_loss(z_a.float(), z_b.float())


def covariance_loss(z: Tensor, gather: Callable[[Tensor], Tensor] | None = None) -> Tensor:
    """l_cov of Eq. 6 for one view: squared off-diagonal covariances / E.

    Args:
        z: ``(B, Q, E, H, W)`` embeddings of one view (E = d_emb).
        gather: optional hook ``(N_local, E) → (N_global, E)`` for distributed training (see the
            module docstring); ``None`` uses the local samples only.

    Returns:
        Scalar ``(1/E) Σ_{i≠j} C_ij²`` with ``C = Z̄ᵀ Z̄ / (N − 1)``, Z̄ the (N, E) samples centred
        per column, N = B·Q·H·W. Eq. 7 sums this over the two views.
    """
    flat = rearrange(z.float(), "b q e h w -> (b q h w) e")
    if gather is not None:
        flat = gather(flat)
    n, e = flat.shape
    centred = flat - flat.mean(dim=0, keepdim=True)
    cov = centred.T @ centred / max(n - 1, 1)  # (E, E)
    off = cov - torch.diag_embed(torch.diagonal(cov))
    return off.square().sum() / e
