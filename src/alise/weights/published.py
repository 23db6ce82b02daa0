"""Published encoders → :class:`alise.model.ALISE`.

:mod:`alise.weights.onnx` reads an ONNX export's tensors under the exporting module's names;
:mod:`alise.weights.malice` maps those names onto ours. This module infers the architecture variant from the
tensors themselves (so an export with other widths, depths or projector sizes is read correctly or
refused with a clear message) and builds the model.
"""

from __future__ import annotations

import csv
from pathlib import Path

from torch import Tensor

from alise.errors import AliseError
from alise.normalise import S2_BANDS, NormStats
from alise.weights.onnx import TRANSFORMER_PREFIX
from alise.weights.onnx import UNET_PREFIX as _UNET


def infer_variant(tensors: dict[str, Tensor], pe_base: float) -> dict:
    """ALISEConfig overrides that match ``tensors`` (export names, see :func:`read_onnx_encoder`)."""
    try:
        in_w = tensors[_UNET + "in_conv.conv.conv.0.weight"]
        down = tensors[_UNET + "down_blocks.0.down.conv.0.weight"]
        queries = tensors["temp_proj.queries"]
        key = tensors["temp_proj.fc1_k.weight"]
    except KeyError as e:
        raise AliseError(f"ONNX export lacks {e.args[0]}: not an ALISE-family encoder") from None
    n_down = len({k.split("down_blocks.")[1].split(".")[0] for k in tensors if "down_blocks." in k})
    enc = [int(in_w.shape[0])] + [int(tensors[_UNET + f"down_blocks.{i}.conv1.conv.0.weight"].shape[0]) for i in range(n_down)]
    dec = [int(tensors[_UNET + f"up_blocks.{i}.conv1.conv.0.weight"].shape[0]) for i in reversed(range(n_down))]
    dec = dec + [enc[-1]]
    layers = {k.split("layer_stack.")[1].split(".")[0] for k in tensors if "layer_stack." in k}
    d_model = int(key.shape[1])
    heads, d_k = int(queries.shape[0]), int(queries.shape[-1])
    folded = not any(k.endswith("running_mean") and ".conv" in k for k in tensors)
    return dict(
        in_channels=int(in_w.shape[1]),
        encoder_widths=tuple(enc),
        decoder_widths=tuple(dec),
        down_kernel=int(down.shape[-1]),
        d_model=d_model,
        n_layers=len(layers),
        d_ffn=int(tensors[TRANSFORMER_PREFIX + "0.conv_block.block.linear1.weight"].shape[0]),
        n_q=int(queries.shape[-2]),
        proj_heads=heads,
        proj_d_k=d_k,
        pe_base=float(pe_base),
        fold_bn=folded,
    )


def import_onnx(path: str | Path, norm: NormStats | None = None):
    """Read an ONNX encoder and return ``(ALISE model in eval mode, facts)``.

    ``facts`` holds the source name, producer, opset, the date-encoding base and the variant.
    """
    from alise.weights.malice import load_malice, malice_config
    from alise.weights.onnx import read_onnx_encoder

    tensors, facts = read_onnx_encoder(path)
    variant = infer_variant(tensors, facts["pe_base"])
    try:
        config = malice_config(**variant)
    except AliseError as e:
        raise AliseError(f"{Path(path).name}: unsupported variant {variant}: {e}") from None
    model = load_malice(tensors, norm=norm, config=config)
    model.eval()
    facts = dict(facts, variant={k: (list(v) if isinstance(v, tuple) else v) for k, v in variant.items()})
    return model, facts


def read_stats_csv(path: str | Path) -> NormStats:
    """Read the authors' normalisation CSV: rows ``med``, ``qmin``, ``qmax``, one column per band.

    The first column holds the row name; a header row of band names is optional (default order
    B02 … B12).
    """
    p = Path(path)
    if not p.is_file():
        raise AliseError(f"statistics file not found: {p}")
    rows: dict[str, list[float]] = {}
    header: list[str] | None = None
    with open(p, newline="") as f:
        for line in csv.reader(f):
            if not line or not any(c.strip() for c in line):
                continue
            name = line[0].strip().lower()
            if name in ("med", "median", "qmin", "qmax"):
                try:
                    rows["median" if name == "med" else name] = [float(v) for v in line[1:] if v.strip()]
                except ValueError:
                    raise AliseError(f"{p}: non-numeric value in row {line[0]!r}") from None
            elif header is None:
                header = [c.strip() for c in line[1:] if c.strip()]
    if set(rows) != {"median", "qmin", "qmax"}:
        raise AliseError(f"{p}: expected rows med, qmin and qmax; found {sorted(rows)}")
    bands = tuple(header) if header and len(header) == len(rows["median"]) else S2_BANDS
    return NormStats(tuple(rows["median"]), tuple(rows["qmin"]), tuple(rows["qmax"]), bands)
