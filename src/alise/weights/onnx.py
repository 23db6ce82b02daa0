"""Import the authors' published ONNX encoders into our model format.

The ALISE authors publish their encoders as ONNX graphs (the paper's encoder on its data record; the
Sentinel-2 branch of MALICE in ``openeo_malice``). PyTorch's exporter rewrites some parameters on
the way out; this module reads the graph's initializers with the ``onnx`` package (no onnxruntime
needed), undoes those rewrites and returns the tensors under the exporting module's own names:

* convolutions whose BatchNorm was folded in appear as anonymous ``onnx::Conv_*`` initializers; their
  module path is recovered from the name of the ``Conv`` node that consumes them;
* ``nn.MultiheadAttention.in_proj`` appears split into three ``MatMul`` (q, k, v, transposed) plus
  three ``Add`` (biases); they are transposed and concatenated back into ``in_proj_weight (3D, D)``
  and ``in_proj_bias (3D,)``;
* plain ``Linear`` weights that became ``MatMul`` operands are transposed back to ``(out, in)``;
* the temporal projector's learned queries are the constant operand of ``/temp_proj/Expand``.

:func:`read_onnx_encoder` returns that dictionary plus a description of the variant; the mapping
onto :class:`alise.model.ALISE` lives in :mod:`alise.weights.malice`. A graph this module does not understand
is refused with an :class:`~alise.errors.AliseError` naming what is missing.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch

from alise.errors import AliseError

#: Names of the exported tensors, as the authors' modules call them (the one definition of the
#: export's layout: :mod:`alise.weights.malice` and :mod:`alise.weights.published` read these).
UNET_PREFIX = "encoder.ubarn.patch_encoding.hss_encoding.my_model."
_TRANSFORMER_SCOPE = "encoder.ubarn.temporal_encoder"
TRANSFORMER_PREFIX = f"{_TRANSFORMER_SCOPE}.layer_stack."

_NODE = "^/" + _TRANSFORMER_SCOPE.replace(".", "/") + r"/layer_stack\.(\d+)/"
_MHA = re.compile(_NODE + r"attn/mha/(MatMul|Add)(?:_(\d))?$")
_FFN = re.compile(_NODE + r"conv_block/block/(linear[12])/MatMul$")


def _module_path(node_name: str) -> str:
    """``/a/b/conv/conv.0/Conv`` → ``a.b.conv.0``: drop a scope repeated as the prefix of the next."""
    parts = [p for p in node_name.strip("/").split("/")[:-1]]
    kept = [p for i, p in enumerate(parts) if not (i + 1 < len(parts) and parts[i + 1].startswith(p + "."))]
    return ".".join(kept)


def _pe_base(graph) -> float | None:
    """Base ``T`` of the sinusoidal date encoding, from the exported denominator ``T^(2i/d)`` (shape (1, 1, d))."""
    from onnx import AttributeProto, numpy_helper

    for node in graph.node:
        if node.op_type == "Constant" and "/pe_encoding/" in node.name:
            for a in node.attribute:
                if a.type == AttributeProto.TENSOR:
                    t = numpy_helper.to_array(a.t).ravel().astype(np.float64)
                    if t.size >= 4 and t[0] == 1.0 and t[2] > 1.0:
                        return float(round(t[2] ** (t.size / 2.0)))  # t[2] = T^(2/d)
    return None


def read_onnx_encoder(path: str | Path) -> tuple[dict[str, torch.Tensor], dict]:
    """Read an ALISE-family ONNX encoder's weights under the exporting module's names.

    Args:
        path: an ``.onnx`` file exported from the authors' code (inputs ``sits (B, T, C, H, W)``,
            ``tpe (B, T)`` days since 2014-03-03, ``padd_mask (B, T)`` True = padded).

    Returns:
        ``(tensors, facts)``: tensors keyed like ``encoder.ubarn.patch_encoding.hss_encoding.my_model.in_conv.conv.conv.0.weight``,
        ``encoder.ubarn.temporal_encoder.layer_stack.0.attn.mha.in_proj_weight``, ``temp_proj.fc1_k.weight``,
        ``temp_proj.queries`` — the layout of ``malice_s2_encoder.safetensors``; ``facts`` holds what the
        weights alone do not tell (``pe_base``, the date-encoding constant; ``producer``, ``opset``).
    """
    import onnx
    from onnx import numpy_helper

    path = Path(path)
    if not path.is_file():
        raise AliseError(f"ONNX file not found: {path}")
    try:
        model = onnx.load(str(path))
    except Exception as e:  # the onnx package raises several types on garbage input
        raise AliseError(f"cannot read {path} as an ONNX model: {type(e).__name__}: {e}") from None
    graph = model.graph
    inputs = [i.name for i in graph.input]
    if inputs[:3] != ["sits", "tpe", "padd_mask"]:
        raise AliseError(f"{path.name}: inputs {inputs} are not those of an ALISE-family encoder (sits, tpe, padd_mask)")
    arrays = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    out: dict[str, np.ndarray] = {}
    # Named initializers (not rewritten by the exporter) keep their module path.
    for name, arr in arrays.items():
        if not name.startswith("onnx::"):
            out[name.removeprefix("repr_encoder.")] = arr
    mha: dict[tuple[int, str, int], np.ndarray] = {}
    for node in graph.node:
        consts = [i for i in node.input if i in arrays and i.startswith("onnx::")]
        if not consts:
            continue
        name = node.name
        if node.op_type == "Conv":
            key = _module_path(name).removeprefix("encoder/").replace("/", ".")
            w, b = consts
            out[f"{key}.weight"], out[f"{key}.bias"] = arrays[w], arrays[b]
        elif m := _MHA.match(name):
            layer, op, idx = int(m.group(1)), m.group(2), int(m.group(3) or 0)
            mha[(layer, op, idx)] = arrays[consts[0]]
        elif m := _FFN.match(name):
            out[f"{TRANSFORMER_PREFIX}{m.group(1)}.conv_block.block.{m.group(2)}.weight"] = arrays[consts[0]].T
        elif name == "/temp_proj/Expand":
            out["temp_proj.queries"] = arrays[consts[0]]
        elif name == "/temp_proj/fc1_k/MatMul":
            out["temp_proj.fc1_k.weight"] = arrays[consts[0]].T
        else:
            raise AliseError(f"{path.name}: unexpected constant in node {name} ({node.op_type}); not an ALISE-family graph we know")
    for layer in sorted({k[0] for k in mha}):
        try:
            w = [mha[(layer, "MatMul", i)].T for i in range(3)]  # q, k, v; MatMul operands are (in, out)
            b = [mha[(layer, "Add", i)] for i in range(3)]
        except KeyError as e:
            raise AliseError(f"{path.name}: attention of layer {layer} is incomplete (missing {e})") from None
        pre = f"{TRANSFORMER_PREFIX}{layer}.attn.mha."
        out[pre + "in_proj_weight"] = np.concatenate(w, axis=0)
        out[pre + "in_proj_bias"] = np.concatenate(b, axis=0)
    if "temp_proj.queries" not in out or "temp_proj.fc1_k.weight" not in out:
        raise AliseError(f"{path.name}: no temporal projector (learned queries + key projection) found")
    pe_base = _pe_base(graph)
    if pe_base is None:
        raise AliseError(f"{path.name}: could not find the positional-encoding constant of the date encoding")
    facts = {
        "pe_base": pe_base,
        "producer": f"{model.producer_name} {model.producer_version}".strip(),
        "opset": int(model.opset_import[0].version) if model.opset_import else None,
        "source": path.name,
    }
    tensors = {k: torch.from_numpy(np.array(v, dtype=np.float32, copy=True)) for k, v in sorted(out.items())}
    return tensors, facts
