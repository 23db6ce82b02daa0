"""The Lightning edge of pre-training: optimiser, schedule, logging, reproducible steps.

:class:`PretrainModule` wraps a plain :class:`alise.model.ALISE` and adds nothing to the model
itself: the forward pass and the losses (Eq. 2, 5–7, 10–11) are ``ALISE.pretrain_step``.

* Optimiser: Adam, lr 1e-3, default betas, no weight decay ([P] §III-C, docs/reference.md §6.5).
* Schedule: cosine annealing with warm restarts ([P] §III-C, [36]), T_0 = 2 epochs, T_mult = 2,
  eta_min = 0, stepped per epoch (restarts at epochs 2, 6, 14, 30, 62, 126, 254; docs/reference.md §6.5).
  The learning rate of epoch e is set at the start of the epoch by ``scheduler.step(e)``, a pure
  function of e, so a resumed run follows exactly the same schedule.
* Every training step first reseeds the global generators from ``(seed, epoch, step, rank)``
  (:func:`alise.train.checkpoint.seed_everything_for`): dropout masks do not depend on history.
* Logged (CSVLogger, per step): ``train/loss``, ``train/rec``, ``train/inv``, ``train/cov``,
  ``train/lr``; per validation epoch: ``val/loss``, ``val/rec``, ``val/inv``, ``val/cov`` and
  ``val/rec_baseline`` — the reconstruction loss (same Eq. 10–11 reduction) of predicting, for
  every target pixel-date, the mean of each band over the clear target pixels of the batch
  (normalised units). A model that learned nothing scores about the baseline. Also per validation
  epoch, on the aligned representation Y of view A (collapse and artefact watch, docs/pretraining.md):
  ``val/emb_std`` (mean over the Q·D features of their standard deviation over pixels),
  ``val/emb_erank`` (effective rank of the pixels × Q·D matrix: exp of the entropy of its
  normalised singular values, Roy & Vetterli 2007; Q·D at most) and ``val/nyquist_share``
  (share of the spatial power of Y at the Nyquist frequency, :func:`alise.metrics.nyquist_share`).
"""

from __future__ import annotations

import lightning as L
import torch
from torch import Tensor

from alise.batch import SITSBatch
from alise.model.config import ALISEConfig
from alise.model.losses import cross_reconstruction_loss, reconstruction_loss
from alise.normalise import NormStats
from alise.train.checkpoint import collect_rng_state, restore_rng_state, seed_everything_for

_DROPOUT = 303  # salt of the per-step global reseed
TERMS = ("loss", "rec", "inv", "cov")


def embedding_health(y: Tensor) -> dict[str, float]:
    """``val/emb_std``, ``val/emb_erank``, ``val/nyquist_share`` of ``y (B, Q, D, H, W)`` (module docstring)."""
    from einops import rearrange

    from alise.metrics import nyquist_share

    f = rearrange(y.detach().float(), "b q d h w -> (b h w) (q d)")
    f = f - f.mean(0, keepdim=True)
    sv = torch.linalg.svdvals(f.double())
    p = sv / sv.sum().clamp(min=1e-30)
    erank = float(torch.exp(-(p * torch.log(p.clamp(min=1e-30))).sum()))
    maps = rearrange(y[0].detach().float(), "q d h w -> (q d) h w").cpu().numpy()
    return {"emb_std": float(f.std(0).mean()), "emb_erank": erank, "nyquist_share": nyquist_share(maps)}


def band_mean_baseline(view: SITSBatch) -> Tensor:
    """l_rec (Eq. 11) of predicting each band's mean over the clear pixels of ``view``.

    Args:
        view: targets, ``x (B, T, C, H, W)`` normalised reflectance.

    Returns:
        Scalar, normalised units² (comparable with ``rec``).
    """
    mask = (view.valid_pixels & view.valid_dates[:, :, None, None])[:, :, None].float()  # (B, T, 1, H, W)
    total = (view.x.float() * mask).sum(dim=(0, 1, 3, 4))  # (C,)
    count = mask.sum(dim=(0, 1, 3, 4)).clamp(min=1)
    mean = (total / count)[None, None, :, None, None]  # (1, 1, C, 1, 1)
    return reconstruction_loss(view.x, mean.expand_as(view.x), view.valid_pixels, view.valid_dates)


class PretrainModule(L.LightningModule):
    """ALISE pre-training as a LightningModule.

    Args:
        config: the model configuration as a dict (:meth:`ALISEConfig.to_dict`).
        norm: normalisation statistics as a dict (:meth:`NormStats.to_dict`), stored in the model.
        lr: maximum learning rate (paper: 1e-3); t_0, t_mult: warm-restart period (2 epochs, ×2).
        seed: run seed, for the per-step reseeding.

    Both dicts are saved as hyper-parameters, so a checkpoint rebuilds its model alone.
    """

    def __init__(self, config: dict, norm: dict, lr: float = 1e-3, t_0: int = 2, t_mult: int = 2, seed: int = 0):
        super().__init__()
        self.save_hyperparameters()
        from alise.model.network import ALISE

        self.model = ALISE(ALISEConfig.from_dict(config), norm=NormStats.from_dict(norm))

    # ------------------------------------------------------------------ optimisation
    def configure_optimizers(self):
        opt = torch.optim.Adam(self.model.parameters(), lr=self.hparams.lr)
        sched = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=self.hparams.t_0, T_mult=self.hparams.t_mult)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "epoch"}}

    def lr_scheduler_step(self, scheduler, metric) -> None:
        """Lightning's own stepping is replaced by ``step(epoch)`` in :meth:`on_train_epoch_start`."""

    def on_train_epoch_start(self) -> None:
        sched = self.lr_schedulers()
        sched.step(self.current_epoch)  # lr(e) of SGDR with restarts, a function of e alone

    # ------------------------------------------------------------------ steps
    def on_train_batch_start(self, batch, batch_idx) -> None:
        seed_everything_for(self.hparams.seed, _DROPOUT, self.current_epoch, self.global_step, self.global_rank)

    def training_step(self, batch: tuple[SITSBatch, SITSBatch], batch_idx: int) -> Tensor:
        view_a, view_b = batch
        out = self.model.pretrain_step(view_a, view_b)
        bs = view_a.x.shape[0]
        for k in TERMS:
            self.log(f"train/{k}", out[k].detach(), on_step=True, on_epoch=False, prog_bar=k == "loss", batch_size=bs)
        self.log("train/lr", self.optimizers().param_groups[0]["lr"], on_step=True, on_epoch=False, batch_size=bs)
        return out["loss"]

    def validation_step(self, batch: tuple[SITSBatch, SITSBatch], batch_idx: int) -> None:
        view_a, view_b = batch
        out = self.model.pretrain_step(view_a, view_b)
        baseline = cross_reconstruction_loss(band_mean_baseline(view_a), band_mean_baseline(view_b))
        bs = view_a.x.shape[0]
        for k in TERMS:
            self.log(f"val/{k}", out[k], on_step=False, on_epoch=True, prog_bar=k == "loss", batch_size=bs, sync_dist=True)
        self.log("val/rec_baseline", baseline, on_step=False, on_epoch=True, batch_size=bs, sync_dist=True)
        if batch_idx == 0:
            y = self.model.encode(view_a.x, view_a.days, view_a.valid_dates)
            for k, v in embedding_health(y).items():
                self.log(f"val/{k}", v, on_step=False, on_epoch=True, batch_size=bs, sync_dist=True)

    # ------------------------------------------------------------------ checkpoint extras
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["alise_rng"] = collect_rng_state()

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        if "alise_rng" in checkpoint:
            restore_rng_state(checkpoint["alise_rng"])
