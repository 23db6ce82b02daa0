"""The authors' published MALICE S2 encoder as an :class:`~alise.model.ALISE` configuration.

No checkpoint of the ALISE paper model is public; the closest published weights are the Sentinel-2
branch of MALICE (same authors' group, ALISE encoder architecture), shipped as an ONNX export and
converted to ``weights/alise/malice_s2_encoder.safetensors`` (its README describes every layer).
It differs from the paper's configuration only in options our single code path already has:

============== ===================== ========================================================
option         paper                 MALICE export
============== ===================== ========================================================
down_kernel    4 (padding 1)         2 (padding 0), also for the transposed convolutions
encoder_norm   GroupNorm(4)          BatchNorm …
fold_bn        False                 … folded into every conv layer by the exporter (conv+ReLU)
block          "postnorm"            "double_ln" (the same LayerNorm before and after attention)
pe_base        1000                  10000
proj_d_k       16 (scale 1/4)        64 (scale 1/8)
============== ===================== ========================================================

The ConvTranspose+BatchNorm pairs keep their BatchNorm (with running statistics). The export has
no decoder and no latent projector: those stay freshly initialised. Licence of the weights:
AGPL-3.0-or-later (see the weights README).
"""

from __future__ import annotations

import re

import torch
from torch import Tensor

from alise.errors import AliseError
from alise.model.config import ALISEConfig
from alise.model.directory import check_state
from alise.normalise import NormStats
from alise.weights.onnx import TRANSFORMER_PREFIX as _TRANSFORMER
from alise.weights.onnx import UNET_PREFIX as _UNET

# (pattern on the export key after its prefix, replacement giving our key) — applied in order.
_RULES: list[tuple[str, str]] = [
    (rf"^{re.escape(_UNET)}in_conv\.conv\.conv\.0\.(weight|bias)$", r"unet.in_conv.0.0.\1"),
    (rf"^{re.escape(_UNET)}in_conv\.conv\.conv\.3\.(weight|bias)$", r"unet.in_conv.1.0.\1"),
    (rf"^{re.escape(_UNET)}down_blocks\.(\d+)\.(down|conv1|conv2)\.conv\.0\.(weight|bias)$", r"unet.down_blocks.\1.\2.0.\3"),
    (rf"^{re.escape(_UNET)}up_blocks\.(\d+)\.(conv1|conv2)\.conv\.0\.(weight|bias)$", r"unet.up_blocks.\1.\2.0.\3"),
    (rf"^{re.escape(_UNET)}up_blocks\.(\d+)\.skip_conv\.0\.(weight|bias)$", r"unet.up_blocks.\1.skip_conv.0.\2"),
    (rf"^{re.escape(_UNET)}up_blocks\.(\d+)\.up\.([01])\.(weight|bias|running_mean|running_var)$", r"unet.up_blocks.\1.up.\2.\3"),
    (rf"^{re.escape(_UNET)}out_conv\.conv\.conv\.0\.(weight|bias)$", r"unet.out_conv.0.\1"),
    (rf"^{re.escape(_TRANSFORMER)}(\d+)\.attn\.mha\.(in_proj_weight|in_proj_bias)$", r"transformer.layers.\1.\2"),
    (rf"^{re.escape(_TRANSFORMER)}(\d+)\.attn\.mha\.out_proj\.(weight|bias)$", r"transformer.layers.\1.out_proj.\2"),
    (rf"^{re.escape(_TRANSFORMER)}(\d+)\.conv_block\.block\.(linear1|linear2)\.(weight|bias)$", r"transformer.layers.\1.\2.\3"),
    (rf"^{re.escape(_TRANSFORMER)}(\d+)\.norm\.(weight|bias)$", r"transformer.layers.\1.norm1.\2"),
    (rf"^{re.escape(_TRANSFORMER)}(\d+)\.norm2\.(weight|bias)$", r"transformer.layers.\1.norm2.\2"),
    (r"^temp_proj\.fc1_k\.weight$", "projector.key.weight"),
]


def malice_config(**overrides) -> ALISEConfig:
    """The configuration that reproduces the MALICE S2 export (see the module table)."""
    cfg = ALISEConfig(down_kernel=2, encoder_norm="batch", fold_bn=True, block="double_ln",
                      pe_base=10000.0, proj_heads=2, proj_d_k=64, n_q=10)
    return cfg.replace(**overrides) if overrides else cfg


def malice_norm() -> NormStats:
    """Normalisation of the export = the paper statistics (``dataset_s2.csv``, weights README)."""
    return NormStats.paper()


def _rename(key: str) -> str | None:
    for pattern, repl in _RULES:
        if re.match(pattern, key):
            return re.sub(pattern, repl, key)
    return None


def malice_state_dict(tensors: dict[str, Tensor]) -> dict[str, Tensor]:
    """Map the export's tensors (keys of ``malice_s2_encoder.safetensors``) onto our state-dict keys.

    Args:
        tensors: the 98 export tensors (from the safetensors file, or rebuilt from the ONNX
            initialisers with the same names and layouts).

    Returns:
        Encoder state dict of ``ALISE(malice_config())``: every ``unet.*``, ``transformer.*`` and
        ``projector.*`` key, including BatchNorm ``num_batches_tracked`` (set to 0). Learned queries
        ``[heads, 1, Q, d_k]`` are squeezed to ``[heads, Q, d_k]``.

    Raises:
        AliseError: on an unknown key or a missing tensor.
    """
    out: dict[str, Tensor] = {}
    for key, value in tensors.items():
        if key == "temp_proj.queries":
            if value.dim() == 4 and value.shape[1] == 1:
                value = value.squeeze(1)
            out["projector.queries"] = value
            continue
        new = _rename(key)
        if new is None:
            raise AliseError(f"unexpected tensor {key!r} in the MALICE export: not an S2 encoder weight")
        out[new] = value
    for key in [k for k in out if k.endswith(".running_mean")]:
        out[key.replace(".running_mean", ".num_batches_tracked")] = torch.tensor(0, dtype=torch.long)
    return out


def load_malice(tensors: dict[str, Tensor], norm: NormStats | None = None, config: ALISEConfig | None = None):
    """Build ``ALISE(config or malice_config())`` and load the export's tensors into its encoder.

    The decoder and latent projector are not in the export and stay freshly initialised.
    Raises :class:`AliseError` if any encoder weight is missing or has the wrong shape.
    """
    from alise.model.network import ALISE

    model = ALISE(config or malice_config(), norm=malice_norm() if norm is None else norm)
    state = malice_state_dict(tensors)
    own = model.state_dict()
    encoder_keys = {k for k in own if k.split(".")[0] in ("unet", "transformer", "projector")}
    check_state(state, own, "MALICE export", keys=encoder_keys)
    model.load_state_dict(state, strict=False)
    return model
