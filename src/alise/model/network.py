"""The ALISE model: encoder, decoder and latent projector, following the paper's figures ([P] §III, Fig. 1–3).

    x (B, T, C, H, W) ──UNet per date──▶ (B, T, D, H, W) ──+PE(days)──▶ Transformer per pixel   [SSTE Ψ]
                      ──temporal projector (n_q learned queries)──▶ Y (B, Q, D, H, W)          [Eq. 1]
    Y ──decoder(target days)──▶ x̂ (B, T', C, H, W)                                             [Eq. 8–9]
    Y ──latent projector──▶ Z (B, Q, d_emb, H, W)                                              [Fig. 12]

Methods mirror the figure: :meth:`ALISE.sste`, :meth:`ALISE.encode`, :meth:`ALISE.decode`,
:meth:`ALISE.project`, and :meth:`ALISE.pretrain_step` (Eq. 2, 5–7, 10–11). Inputs are the
normalised reflectances of :mod:`alise.normalise` (``model.norm`` holds the statistics that belong
to the model) and dates as days since 2014-03-03; ``valid_dates`` is True for real acquisitions.

Inputs may be numpy arrays or torch tensors (numpy is converted to float32 tensors on the model's
device; results are torch tensors); ``valid_dates`` defaults to every date real, and ``days`` /
``valid_dates`` of shape ``(T,)`` are shared by the B series.

Autograd. :meth:`ALISE.encode` and :meth:`ALISE.decode` record no autograd graph by default when
the model is in eval mode (``model.eval()``, how :func:`alise.load` returns it): they run under
``torch.no_grad()`` and return plain tensors with ``requires_grad == False`` (not inference
tensors: they can feed a trained head). In training mode (``model.train()``), or when an input
requires grad, they follow PyTorch's grad mode as any module does. ``grad=True`` always follows
PyTorch's grad mode (fine-tuning an encoder kept in eval mode), ``grad=False`` never records.
:meth:`ALISE.sste`, the per-date building block that fine-tuned networks (U-BARN) call in either
mode, follows PyTorch's grad mode unless given ``grad=False``/``None``.

Input checks. In eval mode, inputs that look like digital numbers instead of normalised
reflectance, or day-of-year / Unix-epoch days instead of days since 2014-03-03, raise one
:class:`~alise.errors.AliseInputWarning` per process and kind (:func:`_input_warnings`).

Padded dates never reach the UNet (only real frames are encoded, then scattered into zeros, so
BatchNorm never sees padding, docs/reference.md P4) and are masked as attention keys; the aligned output
does not depend on padding, on the number of dates, or on the other samples of the batch (eval).
"""

from __future__ import annotations

import contextlib
import math
import os
import warnings
from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.utils.checkpoint
from einops import rearrange, repeat
from torch import Tensor, nn

from alise.batch import SITSBatch
from alise.model.config import ALISEConfig
from alise.errors import AliseError, AliseInputWarning
from alise.model.losses import cross_reconstruction_loss, covariance_loss, invariance_loss, reconstruction_loss
from alise.model.nn import (CrossReconstructionDecoder, LatentProjector, SpatialSpectralEncoder, TemporalProjector,
                      TemporalTransformer, date_encoding)
from alise.normalise import NormStats


#: Per GroupNorm layer, ``(mean, rstd)`` each ``(T, G)`` (see :meth:`ALISE.encode`).
GroupStatsArg = list[tuple[Tensor, Tensor]] | None

#: What the model methods take for an array: a torch tensor, a numpy array (or a nested sequence).
ArrayLike = Tensor | np.ndarray | Sequence


def _n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


class ALISE(nn.Module):
    """ALISE encoder + pre-training heads, built from one :class:`ALISEConfig`.

    Attributes:
        config: the architecture (frozen dataclass).
        norm: normalisation statistics that go with the weights (not a parameter).
        unet, transformer, projector: the encoder (SSTE + temporal projector).
        decoder: cross-reconstruction decoder; latent: latent projector.
    """

    def __init__(self, config: ALISEConfig = ALISEConfig(), norm: NormStats | None = None):
        super().__init__()
        self.config = config.validate()
        self.norm = NormStats.paper() if norm is None else norm
        #: Dates whose clear fraction over an input is below this are left out when the model encodes
        #: it downstream (the filter of its pre-training data, ``alise pretrain --min-clear``; 0 =
        #: every date). Saved in config.json (``input.min_clear``); :mod:`alise.data.subset`.
        self.input_min_clear = 0.0
        if len(self.norm.bands) != config.in_channels:
            raise AliseError(f"normalisation statistics have {len(self.norm.bands)} bands but the model "
                             f"expects in_channels={config.in_channels}")
        c = config
        self.unet = SpatialSpectralEncoder(c)
        self.transformer = TemporalTransformer(c)
        self.projector = TemporalProjector(c.d_model, c.n_q, c.proj_heads, c.proj_d_k)
        self.decoder = CrossReconstructionDecoder(c.d_model, c.in_channels, c.pe_base)
        self.latent = LatentProjector(c.d_model, c.d_proj_hidden, c.d_emb)

    # ------------------------------------------------------------------ encoder
    def set_channels_last(self, enabled: bool = True) -> "ALISE":
        """Run the UNet in ``channels_last`` memory format (often faster on CPU); returns self."""
        self.unet.set_channels_last(enabled)
        return self

    def for_inference(self, device: torch.device | str = "cpu") -> "ALISE":
        """A copy of this model for encoding on ``device``: eval mode, BatchNorm folded into the
        UNet's convolutions, ``channels_last`` UNet on CPU (docs/performance.md). Same outputs as
        ``self.eval().encode`` to float rounding; the copy is not meant for training or saving.
        """
        import copy

        device = torch.device(device)
        model = copy.deepcopy(self).to(device).eval()
        model.unet.fold_batchnorm()
        return model.set_channels_last(device.type == "cpu")

    def _device(self) -> torch.device:
        p = next(self.parameters(), None)
        return torch.device("cpu") if p is None else p.device

    def _grad_context(self, grad: bool | None, *inputs: Tensor):
        """The autograd context of :meth:`encode` / :meth:`decode` (module docstring, "Autograd")."""
        if grad is None:
            grad = self.training or any(v.requires_grad for v in inputs)
        return contextlib.nullcontext() if grad else torch.no_grad()

    def _inputs(self, x: ArrayLike, days: ArrayLike, valid_dates: ArrayLike | None) -> tuple[Tensor, Tensor, Tensor]:
        """numpy / sequences → tensors: ``x`` float32 on the model's device (a float tensor is kept as
        it is, an integer one becomes float32), ``days`` float32 and ``valid_dates`` bool on ``x``'s
        device; ``(T,)`` days / valid_dates are shared by the B series; no valid_dates: all True."""
        if not isinstance(x, Tensor):
            x = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(self._device())
        elif not x.is_floating_point():
            x = x.float()
        days = _as_days(days, x.device)
        lead = tuple(x.shape[:2]) if x.dim() == 5 else None
        if days.dim() == 1 and lead is not None:
            days = days.expand(lead[0], days.shape[0])
        if valid_dates is None:
            valid_dates = torch.ones(lead if lead is not None else days.shape, dtype=torch.bool, device=x.device)
        else:
            if not isinstance(valid_dates, Tensor):
                valid_dates = torch.from_numpy(np.asarray(valid_dates, dtype=bool))
            valid_dates = valid_dates.to(device=x.device)
            if valid_dates.dim() == 1 and lead is not None:
                valid_dates = valid_dates.expand(lead[0], valid_dates.shape[0])
        return x, days, valid_dates

    def _check(self, x: Tensor, days: Tensor, valid_dates: Tensor) -> Tensor:
        if x.dim() != 5:
            raise AliseError(f"model input must be (B, T, C, H, W), got shape {tuple(x.shape)}")
        b, t, c, h, w = x.shape
        if c != self.config.in_channels:
            raise AliseError(f"model expects {self.config.in_channels} bands ({', '.join(self.norm.bands)}), "
                             f"input has {c}")
        if tuple(days.shape) != (b, t) or tuple(valid_dates.shape) != (b, t):
            raise AliseError(f"days {tuple(days.shape)} and valid_dates {tuple(valid_dates.shape)} must be (B, T) = {(b, t)}")
        m = self.config.multiple
        if h % m or w % m or min(h, w) < 2 * m:
            raise AliseError(f"image size {h}×{w} not supported: H and W must be multiples of {m} "
                             f"and at least {2 * m} pixels")
        valid_dates = valid_dates.to(torch.bool)
        if t == 0 or not bool(valid_dates.any(dim=1).all()):
            raise AliseError("every series of the batch needs at least one valid (non-padded) date")
        return valid_dates

    def frames_per_chunk(self, h: int, w: int, chunk_frames: int | None = None) -> int | None:
        """Frames per UNet call: as given; in eval mode by default so that one chunk's widest
        activation stays near 64 MB (memory bounded whatever T; no effect on the result)."""
        if chunk_frames is not None:
            if chunk_frames <= 0:
                raise AliseError(f"chunk_frames must be a positive number of frames, got {chunk_frames}")
            return chunk_frames
        if self.training:
            return None  # BatchNorm statistics must see the whole batch of frames
        widest = max(self.config.encoder_widths[0], self.config.decoder_widths[0], self.config.d_model)
        return max(1, (64 << 20) // (4 * widest * h * w))

    def _sse(self, x: Tensor, valid_dates: Tensor, chunk_frames: int | None = None,
             group_stats: GroupStatsArg = None) -> Tensor:
        """UNet on the real frames only, scattered back into zeros: ``(B, T, C, H, W) → (B, T, D, H, W)``.

        Frames go through the UNet in chunks of ``chunk_frames`` (see :meth:`frames_per_chunk`);
        the UNet works frame by frame, so chunking does not change the output in eval mode.
        ``group_stats``: see :meth:`encode`.
        """
        b, t, _, h, w = x.shape
        frames = rearrange(x, "b t c h w -> (b t) c h w")
        flat_valid = valid_dates.reshape(-1)
        step = self.frames_per_chunk(h, w, chunk_frames)

        def unet(idx: Tensor) -> Tensor:  # frames idx (n,) of the (b t) axis → (n, D, H, W)
            stats = None
            if group_stats is not None:
                dates = idx % t
                stats = [(m.index_select(0, dates), r.index_select(0, dates)) for m, r in group_stats]
            return self.unet(frames.index_select(0, idx), stats)

        if bool(flat_valid.all()) and (step is None or step >= frames.shape[0]):
            if group_stats is None:
                return rearrange(self.unet(frames), "(b t) d h w -> b t d h w", b=b)
            return rearrange(unet(torch.arange(b * t, device=x.device)), "(b t) d h w -> b t d h w", b=b)
        idx = flat_valid.nonzero().squeeze(1)
        step = idx.numel() if step is None else step
        out = None
        # A loop over chunks of frames (bounded memory), not over single dates.
        for s in range(0, idx.numel(), step):
            part = unet(idx[s:s + step])  # (n, D, H, W)
            if out is None:
                out = part.new_zeros((flat_valid.numel(), *part.shape[1:]))
            if torch.is_grad_enabled():
                out = out.index_copy(0, idx[s:s + step], part)
            else:
                out.index_copy_(0, idx[s:s + step], part)  # in place: one full-size buffer
        return rearrange(out, "(b t) d h w -> b t d h w", b=b)

    def _per_pixel(self, f: Tensor, days: Tensor, valid_dates: Tensor, chunk_pixels: int | None,
                   fn: Callable[[Tensor, Tensor], Tensor]) -> Tensor:
        """Add PE, then ``fn`` on every pixel's date sequence ``(n, T, D)``, in chunks of pixels → ``(B·H·W, ...)``.

        Chunks are cut from ``f`` as views, so the full ``(B·H·W, T, D)`` copy is never made when
        ``chunk_pixels`` is set (bounded memory for long series).
        """
        b, t, d, h, w = f.shape
        pe = date_encoding(days, d, self.config.pe_base)[..., None, None]  # (B, T, D, 1, 1), broadcast over H, W
        f = f + pe if torch.is_grad_enabled() else f.add_(pe)  # in place when no graph needs f
        if chunk_pixels is not None and chunk_pixels <= 0:
            raise AliseError(f"chunk_pixels must be a positive number of pixels, got {chunk_pixels}")
        recompute = False
        if chunk_pixels is None and not torch.is_grad_enabled():
            chunk_pixels = _default_chunk_pixels(t, d, f.device)
        elif chunk_pixels is None and self.training and f.device.type == "cpu" and b * h * w * t > TRAIN_RECOMPUTE_TOKENS:
            # Training on CPU: cache-sized chunks run under activation checkpointing (their
            # activations are recomputed, in cache, during backward; dropout masks are replayed),
            # instead of one call whose (B·H·W, heads, T, T) attention tensors live in DRAM.
            tokens = int(os.environ.get("ALISE_TRAIN_CHUNK_TOKENS", TRAIN_CHUNK_TOKENS))
            chunk_pixels, recompute = max(1, tokens // t), True
        n = h * w
        if chunk_pixels is None or chunk_pixels >= b * n:
            seq = rearrange(f, "b t d h w -> (b h w) t d")
            return fn(seq, repeat(valid_dates, "b t -> (b hw) t", hw=n))
        if recompute:
            # One split of one (B·H·W, T, D) copy: its backward is one concatenation, where slicing
            # the 5-D map chunk by chunk would allocate a full-size zero gradient per chunk.
            seqs = rearrange(f, "b t d h w -> (b h w) t d").split(chunk_pixels)
            valid = repeat(valid_dates, "b t -> (b hw) t", hw=n).split(chunk_pixels)
            return torch.cat([torch.utils.checkpoint.checkpoint(fn, q, v, use_reentrant=False)
                              for q, v in zip(seqs, valid)])
        flat = rearrange(f, "b t d h w -> b t d (h w)")
        outs, out = [], None
        # Loops over series and chunks of pixels (bounded memory), not over single pixels or dates.
        for i in range(b):
            for s in range(0, n, chunk_pixels):
                seq = rearrange(flat[i, :, :, s:s + chunk_pixels], "t d n -> n t d").contiguous()
                r = fn(seq, valid_dates[i:i + 1].expand(seq.shape[0], t))
                if torch.is_grad_enabled():
                    outs.append(r)
                    continue
                if out is None:  # without autograd: straight into the result, no concatenation copy
                    out = r.new_empty((b * n, *r.shape[1:]))
                out[i * n + s:i * n + s + r.shape[0]] = r
        return torch.cat(outs) if outs else out  # (B·H·W, ...) in (b h w) order

    def sste(self, x: ArrayLike, days: ArrayLike, valid_dates: ArrayLike | None = None, chunk_pixels: int | None = None,
             chunk_frames: int | None = None, *, grad: bool | None = True) -> Tensor:
        """Spatio-spectro-temporal encoder Ψ (U-BARN, [P] §III-A).

        Args:
            x: ``(B, T, C, H, W)`` normalised reflectance (``model.norm.apply(dn)``; values at padded
                dates are ignored), a torch tensor or a numpy array (→ float32 on the model's device).
            days: ``(B, T)`` (or ``(T,)``, shared by the B series) days since 2014-03-03
                (:func:`alise.days_since_origin`).
            valid_dates: ``(B, T)`` (or ``(T,)``) bool, True = real acquisition; default all True.
            chunk_pixels: run the Transformer on at most this many pixel sequences at a time
                (default without autograd: cache-sized chunks on CPU, about 256 MB of activations
                per chunk on GPU; with autograd: all).
            chunk_frames: run the UNet on at most this many frames at a time (default in eval
                mode: chunks of about 64 MB per activation; in train mode: all frames).
            grad: True (default): autograd as PyTorch's grad mode says, as any module (U-BARN
                networks fine-tune through ``sste`` in train and in eval mode); False: never;
                None: as :meth:`encode`'s default (none in eval mode).

        Returns:
            ``(B, T, D, H, W)`` torch tensor; entries at padded dates are meaningless.
        """
        x, days, valid_dates = self._inputs(x, days, valid_dates)
        valid_dates = self._check(x, days, valid_dates)
        if not self.training:
            _input_warnings(x, days, valid_dates)
        b, _, _, h, w = x.shape
        with self._grad_context(grad, x, days):
            out = self._per_pixel(self._sse(x, valid_dates, chunk_frames), days, valid_dates, chunk_pixels,
                                  self.transformer)
            return rearrange(out, "(b h w) t d -> b t d h w", b=b, h=h, w=w)

    def encode(self, x: ArrayLike, days: ArrayLike, valid_dates: ArrayLike | None = None,
               chunk_pixels: int | None = None, chunk_frames: int | None = None, group_stats: GroupStatsArg = None,
               *, grad: bool | None = None) -> Tensor:
        """Aligned representation Y = temporal projector(Ψ(x)) ([P] Eq. 1).

        From digital numbers and dates: ``model.encode(model.norm.apply(dn),
        alise.days_since_origin(dates))``, or :func:`alise.encode_array` (whole rasters, cloud
        masks, the date selection of ``alise encode``).

        Args: as :meth:`sste` (``x`` normalised reflectance ``(B, T, C, H, W)``, numpy or torch;
            ``days`` days since 2014-03-03; ``valid_dates`` optional), and
            group_stats: for GroupNorm UNets, optional ``(mean, rstd)`` pair per GroupNorm layer
                (``model.unet.group_norms()`` order), each ``(T, G)``: the statistics of every date
                of ``x``'s T axis, used instead of each frame's own (same for the B series). With
                statistics estimated once over a raster (:mod:`alise.encode.groupstats`) the UNet
                is the same function on every tile, so tiles blend seamlessly. None: GroupNorm as
                in the paper (statistics of each frame of ``x``).
            grad: None (default): no autograd graph in eval mode (``torch.no_grad``, the result has
                ``requires_grad == False``); in train mode or when ``x``/``days`` require grad,
                PyTorch's grad mode decides. True: PyTorch's grad mode decides (e.g. fine-tuning an
                encoder kept in eval mode). False: never.

        Returns:
            ``(B, Q, D, H, W)`` float torch tensor on the model's device, independent of T, of
            padding and of the batch (eval mode).

        Warns:
            AliseInputWarning: once per process, in eval mode, when ``x`` looks like digital
                numbers or ``days`` like day-of-year / days since 1970 (:func:`_input_warnings`).
        """
        x, days, valid_dates = self._inputs(x, days, valid_dates)
        valid_dates = self._check(x, days, valid_dates)
        if not self.training:
            _input_warnings(x, days, valid_dates)
        b, _, _, h, w = x.shape

        def temporal(seq: Tensor, valid: Tensor) -> Tensor:  # (n, T, D) → (n, Q, D)
            return self.projector(self.transformer(seq, valid), valid)

        with self._grad_context(grad, x, days):
            out = self._per_pixel(self._sse(x, valid_dates, chunk_frames, group_stats), days, valid_dates,
                                  chunk_pixels, temporal)
            return rearrange(out, "(b h w) q d -> b q d h w", b=b, h=h, w=w)

    # ------------------------------------------------------------------ heads
    def decode(self, y: ArrayLike, days_target: ArrayLike, *, grad: bool | None = None) -> Tensor:
        """Reflectances at any target dates from Y ([P] Eq. 8–9): ``y (B, Q, D, H, W)``, ``days_target (B, T')``
        (or ``(T',)`` shared by the B series) days since 2014-03-03 → ``(B, T', C, H, W)`` normalised
        reflectance (gap-filling; ``model.norm.invert`` gives digital numbers). numpy or torch in, a
        torch tensor out; ``grad`` as in :meth:`encode` (no autograd graph in eval mode by default)."""
        if not isinstance(y, Tensor):
            y = torch.from_numpy(np.ascontiguousarray(y, dtype=np.float32)).to(self._device())
        days_target = _as_days(days_target, y.device)
        if days_target.dim() == 1 and y.dim() == 5:
            days_target = days_target.expand(y.shape[0], days_target.shape[0])
        if not self.training and days_target.numel():
            _input_warnings(None, days_target, None)
        with self._grad_context(grad, y, days_target):
            return self.decoder(y, days_target)

    def project(self, y: Tensor) -> Tensor:
        """Latent projector π_w: ``(B, Q, D, H, W) → (B, Q, d_emb, H, W)``."""
        return self.latent(y)

    # ------------------------------------------------------------------ pre-training
    def pretrain_step(self, view_a: SITSBatch, view_b: SITSBatch,
                      gather: Callable[[Tensor], Tensor] | None = None) -> dict[str, Tensor]:
        """Losses of one pre-training step ([P] Eq. 2, 5–7, 10–11).

        Both views (each ``x (B, T_v, C, H, W)``) are encoded as one 2B batch; A is reconstructed
        from Y^B at A's dates and B from Y^A (cross reconstruction only). The latent projector runs
        only when ``w_inv`` or ``w_cov`` is > 0, once per view (its BatchNorm sees one view).
        Views translated against each other (``SITSBatch.origin``, ``view_shift``) are compared
        on their overlap only (reconstruction and invariance); the covariance uses every pixel.

        Args:
            view_a, view_b: the two views of the same B series (same B, C, H, W).
            gather: optional distributed hook for :func:`alise.model.losses.covariance_loss`.

        Returns:
            Scalars ``{"loss", "rec", "inv", "cov"}``; ``loss = w_inv·inv + w_cov·cov + w_rec·rec``.
        """
        cfg = self.config
        b = view_a.x.shape[0]
        both = _stack_views(view_a, view_b)
        y = self.encode(both.x, both.days, both.valid_dates, grad=True)  # (2B, Q, D, H, W)
        y_a, y_b = y[:b], y[b:]
        # Translated views (view_shift > 0): compare them on the pixels they share. oa / ob index
        # the overlap in A's / B's own pixel grid; with the paper's views both are the full image.
        oa, ob = _overlap(view_a.origin, view_b.origin, y.shape[-2], y.shape[-1])
        # Rows :B reconstruct A from Y^B, rows B: reconstruct B from Y^A (Eq. 10), in one call, on the
        # overlap: Y^B at a place predicts A's dates at the same place.
        x_hat = self.decode(torch.cat([y_b[..., ob[0], ob[1]], y_a[..., oa[0], oa[1]]]), both.days, grad=True)
        l_ab = reconstruction_loss(both.x[:b, ..., oa[0], oa[1]], x_hat[:b], both.valid_pixels[:b, ..., oa[0], oa[1]],
                                   both.valid_dates[:b])
        l_ba = reconstruction_loss(both.x[b:, ..., ob[0], ob[1]], x_hat[b:], both.valid_pixels[b:, ..., ob[0], ob[1]],
                                   both.valid_dates[b:])
        rec = cross_reconstruction_loss(l_ab, l_ba)
        if cfg.w_inv > 0 or cfg.w_cov > 0:
            z_a, z_b = self.project(y_a), self.project(y_b)
            inv = invariance_loss(z_a[..., oa[0], oa[1]], z_b[..., ob[0], ob[1]])
            cov = covariance_loss(z_a, gather) + covariance_loss(z_b, gather)  # Eq. 7
        else:
            inv = cov = rec.new_zeros(())
        loss = cfg.w_inv * inv + cfg.w_cov * cov + cfg.w_rec * rec  # Eq. 2
        return {"loss": loss, "rec": rec, "inv": inv, "cov": cov}

    # ------------------------------------------------------------------ bookkeeping
    def param_counts(self) -> dict[str, int]:
        """Trainable parameter count of every block (docs/reference.md §11 for the paper configuration)."""
        counts = {"unet": _n_params(self.unet), "transformer": _n_params(self.transformer),
                  "projector": _n_params(self.projector)}
        counts["encoder_total"] = sum(counts.values())
        counts["decoder"] = _n_params(self.decoder)
        counts["latent_projector"] = _n_params(self.latent)
        return counts

    def encoder_modules(self) -> dict[str, nn.Module]:
        """The blocks that make up the encoder (what downstream tasks fine-tune or freeze)."""
        return {"unet": self.unet, "transformer": self.transformer, "projector": self.projector}

    def save(self, directory: str | os.PathLike, overwrite: bool = False) -> None:
        """Write ``directory/config.json`` + ``directory/model.safetensors`` atomically (see :mod:`alise.model.directory`)."""
        from alise.model.directory import save

        save(self, directory, overwrite=overwrite)


#: Inference chunk of the temporal part on CPU, in tokens (pixels × dates): about 8 k tokens keep
#: every (tokens, 3·D) activation of a layer in the L2/L3 caches. Measured on the 2-core CPU,
#: paper model, 64×64 pixels, T = 60: 0.87 s with 8 k-token chunks against 2.1 s in one call
#: (the Transformer's skinny K = 64 GEMMs and its LayerNorm/add/ReLU passes are memory-bound
#: when their operands come from DRAM); docs/performance.md.
CPU_CHUNK_TOKENS = 8192


#: Training on CPU: above this many tokens (series × pixels × dates) the temporal part runs in
#: chunks of :data:`TRAIN_CHUNK_TOKENS` tokens under activation checkpointing (docs/performance.md).
TRAIN_RECOMPUTE_TOKENS = 1 << 17
TRAIN_CHUNK_TOKENS = 16384


def _as_days(days: ArrayLike, device: torch.device) -> Tensor:
    """Days since 2014-03-03 as a float32 tensor on ``device`` (numpy, sequences or any tensor dtype)."""
    if not isinstance(days, Tensor):
        days = torch.from_numpy(np.asarray(days, dtype=np.float32))
    return days.to(device=device, dtype=torch.float32)


# ---------------------------------------------------------------------------------------------
# Input checks: warnings for inputs that are accepted but very probably a mistake.

#: Kinds of :class:`AliseInputWarning` already issued in this process (each is issued once).
_WARNED: set[str] = set()
_KINDS = frozenset({"dn", "doy", "epoch"})

#: Normalised values (``NormStats.apply``: clip to [q05, q95], minus the median, over q95 − q05)
#: lie in [−1, 1]; any other standardisation keeps the median |x| near 1. Digital numbers
#: (reflectance × 10 000) have a median in the hundreds or thousands and a maximum in the thousands.
DN_MEDIAN_ABS = 10.0
DN_MAX_ABS = 100.0
#: Every valid day in [0, 366]: day-of-year (or days since the first date). Sentinel-2A was launched
#: on 2015-06-23, day 477 since 2014-03-03; 2018 is days 1400–1764.
DOY_MAX = 366.0
#: Every valid day at least this: days since 1970-01-01 (numpy ``datetime64[D]`` as integers; the
#: launch of Sentinel-2A is Unix day 16 609), not since 2014-03-03 (day 15 000 is in 2055).
EPOCH_MIN = 15000.0
#: Values looked at by the digital-number test (a strided spatial sample of ``x``).
SAMPLE_VALUES = 1 << 16


def _warn_once(kind: str, message: str) -> None:
    if kind in _WARNED:
        return
    _WARNED.add(kind)
    # stacklevel: _warn_once ← _input_warnings ← encode / sste / decode ← the caller
    warnings.warn(message, AliseInputWarning, stacklevel=4)


def _input_warnings(x: Tensor | None, days: Tensor, valid: Tensor | None) -> None:
    """Warn (:class:`AliseInputWarning`, once per process and kind) when ``x (B, T, C, H, W)``
    looks like digital numbers (median |x| > :data:`DN_MEDIAN_ABS` or max |x| >
    :data:`DN_MAX_ABS` on a strided spatial sample of ≤ :data:`SAMPLE_VALUES` values of the valid
    dates, NaN counted as 0; padded dates are ignored as the model ignores them) or the valid
    ``days`` like day-of-year (all in [0, 366]) or days since 1970 (all ≥
    :data:`EPOCH_MIN`). Costs one small sample and one device synchronisation per call; nothing
    once every kind has been issued."""
    if _KINDS <= _WARNED:
        return
    with torch.no_grad():
        d = days.detach() if valid is None else days.detach()[valid]
        parts = [d.amin(), d.amax()]
        if x is not None:
            step = max(1, math.ceil(math.sqrt(x.numel() / SAMPLE_VALUES)))
            a = x.detach()[..., ::step, ::step]  # a view; the valid dates' part of it is copied
            a = torch.nan_to_num((a if valid is None else a[valid]).float().abs(), nan=0.0, posinf=0.0, neginf=0.0)
            parts += [a.median(), a.amax()]
        vals = torch.stack([v.float() for v in parts]).tolist()
    dmin, dmax = vals[0], vals[1]
    if x is not None and (vals[2] > DN_MEDIAN_ABS or vals[3] > DN_MAX_ABS):
        _warn_once("dn", f"the model input looks like digital numbers, not normalised reflectance (median |x| "
                         f"{vals[2]:.4g}, max |x| {vals[3]:.4g}; the model's normalisation gives values in [-1, 1]): "
                         "pass x = model.norm.apply(dn), or use alise.encode_array(dn, dates), which normalises")
    if 0.0 <= dmin and dmax <= DOY_MAX:
        _warn_once("doy", f"the dates look like day-of-year or days since the first date (every valid day is in "
                          f"[{dmin:g}, {dmax:g}]); the model expects days since 2014-03-03 (Sentinel-2 dates are "
                          "≥ 477, 2018 is 1400–1764): pass days = alise.days_since_origin(dates)")
    elif dmin >= EPOCH_MIN:
        _warn_once("epoch", f"the dates look like days since 1970-01-01 (every valid day is ≥ {dmin:g}); the model "
                            "expects days since 2014-03-03 (2018 is 1400–1764): pass days = "
                            "alise.days_since_origin(dates), or subtract 16 132 (2014-03-03 is Unix day 16 132)")


def _default_chunk_pixels(t: int, d: int, device: torch.device) -> int:
    """Pixel sequences per Transformer call at inference: cache-sized on CPU (:data:`CPU_CHUNK_TOKENS`),
    about 256 MB per ``(pixels, T, D)`` activation on accelerators (whatever T)."""
    if device.type == "cpu":
        return max(1, CPU_CHUNK_TOKENS // t)
    return max(256, (256 << 20) // (4 * t * d))


def _overlap(origin_a: tuple[int, int], origin_b: tuple[int, int], h: int, w: int) -> tuple[tuple[slice, slice], ...]:
    """Slices ``((rows, cols) in A, (rows, cols) in B)`` of the pixels two ``h × w`` views with
    top-left corners ``origin_a``, ``origin_b`` (same frame) have in common."""
    dy, dx = origin_b[0] - origin_a[0], origin_b[1] - origin_a[1]
    if abs(dy) >= h or abs(dx) >= w:
        raise ValueError(f"views translated by ({dy}, {dx}) px do not overlap ({h}×{w} px)")
    ra, rb = slice(max(0, dy), h + min(0, dy)), slice(max(0, -dy), h - max(0, dy))
    ca, cb = slice(max(0, dx), w + min(0, dx)), slice(max(0, -dx), w - max(0, dx))
    return (ra, ca), (rb, cb)


def _stack_views(a: SITSBatch, b: SITSBatch) -> SITSBatch:
    """Concatenate two view batches along B, right-padding the shorter one along T: ``x (2B, T_max, C, H, W)``."""
    if a.x.shape[0] != b.x.shape[0] or a.x.shape[2:] != b.x.shape[2:]:
        raise ValueError(f"views must share B, C, H, W: got {tuple(a.x.shape)} and {tuple(b.x.shape)}")
    t = max(a.x.shape[1], b.x.shape[1])

    def pad(v: Tensor) -> Tensor:  # right-pad dim 1 with zeros / False
        extra = t - v.shape[1]
        return v if extra == 0 else torch.cat([v, v.new_zeros((v.shape[0], extra, *v.shape[2:]))], dim=1)

    return SITSBatch(
        x=torch.cat([pad(a.x), pad(b.x)]),
        days=torch.cat([pad(a.days), pad(b.days)]),
        valid_dates=torch.cat([pad(a.valid_dates), pad(b.valid_dates)]),
        valid_pixels=torch.cat([pad(a.valid_pixels), pad(b.valid_pixels)]),
    )
