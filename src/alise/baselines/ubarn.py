"""U-BARN: the SSTE of ALISE without its projector, pre-trained as a masked auto-encoder ([P] §IV-C-1).

U-BARN (Dumeur, Valero, Inglada, IEEE JSTARS 2024; [8] in [P]) is the spatio-spectro-temporal
encoder Ψ that ALISE builds on: a per-date U-Net followed by a Transformer over each pixel's dates.
It gives one feature map per acquisition, ``(B, T, D, H, W)``, and is pre-trained with a
BERT-like pretext task: some acquisitions of the input are corrupted and the network must
recover them. ALISE's paper re-trains it "with the same pre-training configuration as ALISE"
(§IV-C-1), which we follow:

* same data pipeline (:class:`alise.data.PretrainDataset`): random ``crop × crop`` (64) windows of
  N = ``n_dates`` (60) consecutive dates, batches of 2 series, Adam lr 1e-3, cosine annealing with
  warm restarts (T_0 = 2 epochs, T_mult = 2), lowest validation loss kept;
* corruption: a fraction ``mask_ratio`` (0.5, our choice: ALISE's cross-reconstruction also
  recovers half of the 60 dates, the other view) of each series' *real* dates is drawn at
  random; their images are replaced by 0 (the per-band median in normalised units) while their
  dates stay in the positional encoding, so the Transformer knows *when* to reconstruct;
* reconstruction head: one ``Linear(D → C)`` shared by all dates, ``(B, T, D, H, W) → (B, T, C, H, W)``;
* loss: the Eq. 11 reduction of :func:`alise.model.losses.reconstruction_loss` restricted to the
  corrupted dates and their clear pixels (clouds never enter the loss, as in ALISE).

Export (``save``): an ordinary ALISE model directory (``config.json`` + ``model.safetensors``,
loadable by :func:`alise.model.io.load`) whose U-Net and Transformer weights are U-BARN's, plus
``ubarn.json`` (marker: kind, mask ratio, pre-training record) and ``ubarn_head.safetensors``
(the reconstruction head). The temporal projector, decoder and latent projector of that
directory are untouched random initialisations: use ``model.sste(...)``, never ``encode``.
:func:`load_ubarn` refuses a plain ALISE directory (no ``ubarn.json``).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import torch
from torch import Tensor, nn

from alise.batch import SITSBatch, collate
from alise.model.config import ALISEConfig
from alise.errors import AliseError
from alise.model.losses import reconstruction_loss
from alise.normalise import NormStats

MARKER = "ubarn.json"
HEAD_FILE = "ubarn_head.safetensors"


class UBARN(nn.Module):
    """U-BARN encoder (ALISE's SSTE) + per-date reconstruction head.

    Args:
        config: architecture; only the U-Net and Transformer fields matter (paper defaults).
        norm: normalisation statistics that go with the weights.
        mask_ratio: fraction of real dates corrupted per series during pre-training.

    Attributes:
        alise: an :class:`alise.model.ALISE` whose ``sste`` is U-BARN (the other blocks are unused).
        head: ``Linear(D → C)`` applied at every date.
    """

    def __init__(self, config: ALISEConfig = ALISEConfig(), norm: NormStats | None = None, mask_ratio: float = 0.5):
        super().__init__()
        from alise.model.network import ALISE

        if not 0.0 < mask_ratio < 1.0:
            raise AliseError(f"U-BARN mask_ratio must be in (0, 1), got {mask_ratio}")
        self.alise = ALISE(config, norm)
        self.head = nn.Linear(config.d_model, config.in_channels)
        self.mask_ratio = float(mask_ratio)

    @property
    def config(self) -> ALISEConfig:
        return self.alise.config

    @property
    def norm(self) -> NormStats:
        return self.alise.norm

    def encoder_modules(self) -> dict[str, nn.Module]:
        """The trainable blocks of U-BARN: U-Net and Transformer (no temporal projector)."""
        return {"unet": self.alise.unet, "transformer": self.alise.transformer}

    def sste(self, x: Tensor, days: Tensor, valid_dates: Tensor) -> Tensor:
        """Per-date features: ``x (B, T, C, H, W)`` normalised, ``days (B, T)`` days since 2014-03-03,
        ``valid_dates (B, T)`` True = real → ``(B, T, D, H, W)`` (meaningless at padded dates)."""
        return self.alise.sste(x, days, valid_dates)

    def reconstruct(self, x: Tensor, days: Tensor, valid_dates: Tensor) -> Tensor:
        """``(B, T, C, H, W)`` normalised reflectance predicted at every date from the features."""
        f = self.sste(x, days, valid_dates).movedim(2, -1)  # (B, T, H, W, D)
        return self.head(f).movedim(-1, 2)  # (B, T, C, H, W)

    def corrupt(self, batch: SITSBatch, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """Draw the corrupted dates: ``(x_corrupted (B, T, C, H, W), masked (B, T) bool)``.

        Each series gets ``max(1, round(mask_ratio · T_real))`` corrupted dates among its real
        ones, but always keeps at least one uncorrupted date.
        """
        valid = batch.valid_dates.bool()
        score = torch.rand(valid.shape, generator=generator).to(valid.device)
        score = score.masked_fill(~valid, 2.0)  # padded dates sort last, never picked
        n_real = valid.sum(dim=1)  # (B,)
        n_mask = (n_real.float() * self.mask_ratio).round().long().clamp(min=1)
        n_mask = torch.minimum(n_mask, (n_real - 1).clamp(min=0))
        rank = score.argsort(dim=1).argsort(dim=1)  # (B, T) rank of each date's score
        masked = (rank < n_mask[:, None]) & valid
        x = batch.x.masked_fill(masked[:, :, None, None, None], 0.0)
        return x, masked

    def pretrain_step(self, batch: SITSBatch, generator: torch.Generator | None = None) -> dict[str, Tensor]:
        """Masked-acquisition reconstruction loss of one batch: ``{"loss", "masked_fraction"}``."""
        x, masked = self.corrupt(batch, generator)
        x_hat = self.reconstruct(x, batch.days, batch.valid_dates)
        loss = reconstruction_loss(batch.x, x_hat, batch.valid_pixels, masked)
        frac = masked.sum() / batch.valid_dates.sum().clamp(min=1)
        return {"loss": loss, "masked_fraction": frac.detach()}

    def trainable_parameters(self) -> int:
        return sum(p.numel() for m in self.encoder_modules().values() for p in m.parameters())

    # ------------------------------------------------------------------ files
    def save(self, directory: str | os.PathLike, record: dict | None = None, overwrite: bool = False) -> Path:
        """Write the ALISE-compatible directory described in the module docstring (atomically)."""
        from safetensors.torch import save_file

        from alise.model.directory import save
        from alise.outputs import atomic_dir, check_output

        dest = check_output(directory, overwrite)
        with atomic_dir(dest, overwrite=overwrite) as tmp:
            save(self.alise, tmp, overwrite=True)  # replaces the empty temporary dir by a full model dir
            head = {k: v.detach().cpu().contiguous().clone() for k, v in self.head.state_dict().items()}
            save_file(head, str(tmp / HEAD_FILE), metadata={"format": "alise-ubarn-head"})
            meta = {"kind": "ubarn", "mask_ratio": self.mask_ratio, "encoder": "use sste(); projector/decoder are untrained",
                    "pretraining": record or {}}
            (tmp / MARKER).write_text(json.dumps(meta, indent=2, default=str) + "\n")
        return dest


def is_ubarn_dir(directory: str | os.PathLike) -> bool:
    return (Path(directory) / MARKER).is_file()


def load_ubarn(directory: str | os.PathLike) -> UBARN:
    """Load a directory written by :meth:`UBARN.save` (eval mode)."""
    from safetensors.torch import load_file

    from alise.model.io import load

    d = Path(directory)
    if not is_ubarn_dir(d):
        raise AliseError(f"{d}: not a U-BARN model directory (no {MARKER}); pre-train one with "
                         "'alise compare ... --models ubarn-fr' or pass ubarn=DIR of such a directory")
    meta = json.loads((d / MARKER).read_text())
    alise = load(d)
    model = UBARN(alise.config, alise.norm, mask_ratio=float(meta.get("mask_ratio", 0.5)))
    model.alise = alise
    if (d / HEAD_FILE).is_file():
        model.head.load_state_dict(load_file(str(d / HEAD_FILE)))
    return model.eval()


def pretrain_ubarn(sources, norm: NormStats, config: ALISEConfig, *, steps: int, batch_size: int = 2, crop: int = 64,
                   samples_per_epoch: int | None = None, lr: float = 1e-3, seed: int = 0, val_sources=None,
                   mask_ratio: float = 0.5, progress: bool = False, min_clear: float = 0.5) -> tuple[UBARN, dict]:
    """Pre-train U-BARN for ``steps`` optimiser steps with ALISE's recipe (module docstring).

    Returns ``(model in eval mode with the lowest-validation-loss weights, record dict)``.
    Validation: ``val_sources`` (default: the training sources) with centre crops, a fixed date
    window and fixed corrupted dates, evaluated at the end of every epoch. ``min_clear``: the date
    filter of ALISE's data recipe (``alise pretrain --min-clear``), recorded in the model.
    """
    import copy

    from tqdm.auto import tqdm

    from alise.data import PretrainDataset

    if steps < 1:
        raise AliseError(f"U-BARN pre-training needs at least one step (got {steps})")
    torch.manual_seed(seed)
    model = UBARN(config, norm, mask_ratio)
    model.alise.input_min_clear = float(min_clear)
    train = PretrainDataset(sources, norm, crop=crop, n_dates=config.n_dates, samples_per_epoch=samples_per_epoch,
                            seed=seed, min_clear=min_clear)
    val = PretrainDataset(val_sources or sources, norm, crop=crop, n_dates=config.n_dates, seed=seed, center=True,
                          min_clear=min_clear)
    params = [p for m in model.encoder_modules().values() for p in m.parameters()] + list(model.head.parameters())
    opt = torch.optim.Adam(params, lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=2, T_mult=2)
    per_epoch = max(1, math.ceil(len(train) / batch_size))
    best, best_loss, history, step, epoch = None, math.inf, [], 0, 0
    bar = tqdm(total=steps, desc="U-BARN pre-training", unit="step", disable=not progress, leave=False)
    while step < steps:
        sched.step(epoch)  # lr of epoch e, a function of e alone (as alise.train.module)
        train.set_epoch(epoch)
        order = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed * 7919 + epoch)).tolist()
        model.train()
        for s in range(0, per_epoch * batch_size, batch_size):
            if step >= steps:
                break
            batch = collate([train[i] for i in order[s:s + batch_size]])
            out = model.pretrain_step(batch, torch.Generator().manual_seed(seed * 104729 + step))
            opt.zero_grad(set_to_none=True)
            out["loss"].backward()
            opt.step()
            history.append({"step": step, "epoch": epoch, "loss": float(out["loss"].detach()), "lr": opt.param_groups[0]["lr"]})
            step += 1
            bar.update(1)
        v = validation_loss(model, val, seed)
        history[-1]["val_loss"] = v
        if v < best_loss:
            best, best_loss = copy.deepcopy(model.state_dict()), v
        epoch += 1
    bar.close()
    model.load_state_dict(best)
    record = {"task": "masked acquisition reconstruction", "steps": steps, "epochs": epoch, "batch_size": batch_size,
              "min_clear": min_clear,
              "crop": crop, "n_dates": config.n_dates, "lr": lr, "mask_ratio": mask_ratio, "seed": seed,
              "best_val_loss": best_loss, "history": history}
    return model.eval(), record


@torch.no_grad()
def validation_loss(model: UBARN, val, seed: int) -> float:
    """Mean masked-reconstruction loss over ``val`` (fixed crops, dates and corrupted dates)."""
    model.eval()
    first = {}
    for i in range(len(val)):  # centre crops repeat per tile: one sample per (source, window) is enough
        k, window, _ = val.draw(i)
        first.setdefault((k, window), i)
    losses = [float(model.pretrain_step(collate([val[i]]), torch.Generator().manual_seed(seed + i))["loss"])
              for i in first.values()]
    return sum(losses) / max(len(losses), 1)
